package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/sqlite"
)

// The answers to "after logout or key revocation, is the old credential
// refused?".
const (
	RevokedAtOnce      = "at once"      // the old credential was refused right after
	RevokedAfterExpiry = "after expiry" // nothing can revoke it: it works until it expires
	RevokedNever       = "never"        // the revocation answered OK, yet the old credential still works
	RevokedUnknown     = "unknown"      // the probe could not tell (it says why)
)

// Revocation is what the revocation probe saw for one strategy, through
// its balancer, after its run.
type Revocation struct {
	Verdict string `json:"verdict"`
	// How says what the probe did, Saw what it got back.
	How string `json:"how"`
	Saw string `json:"saw"`
	// ExpiresS is how long the credential was issued for, as the server
	// said (a JWT's expires_in, a cookie's Max-Age); 0 when it did not say.
	ExpiresS float64 `json:"expires_s,omitempty"`
}

// probeCredential is a signed-in client's credential, as it can be sent
// again by anyone who kept a copy.
type probeCredential struct {
	header, value string // Cookie or Authorization, and its value
	keyID         string // an API key's id, to revoke it
	expires       time.Duration
}

// ProbeRevocation signs in as email through the strategy's balancer, uses
// the credential, revokes it the only way the strategy offers (logout,
// DELETE of the API key, or nothing for a JWT), then sends a copy of the
// old credential again, several times, so that it reaches every replica a
// round-robin balancer has. ctx bounds the whole probe.
func ProbeRevocation(ctx context.Context, st strategy.Strategy, base, email string, replicas int) Revocation {
	tries := 3 * replicas
	// No timeout of its own: ctx bounds the whole probe, and a sign-in
	// (bcrypt) on a busy machine may take seconds.
	p := &prober{base: base, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	defer p.client.CloseIdleConnections()
	cred, err := p.signIn(ctx, st, email)
	if err != nil {
		return Revocation{Verdict: RevokedUnknown, How: "sign in as " + email, Saw: err.Error()}
	}
	rev := Revocation{ExpiresS: cred.expires.Seconds()}
	if ok, _ := p.accepted(ctx, cred, tries, true); ok == 0 {
		rev.Verdict, rev.How = RevokedUnknown, "sign in, then GET /api/me with the credential"
		rev.Saw = fmt.Sprintf("the fresh credential was refused %d times out of %d: nothing to revoke", tries, tries)
		return rev
	}

	var revoke func() (int, string, error)
	switch st.Credential {
	case strategy.CredentialCookie:
		rev.How = "log in, POST /api/auth/logout, then send a copy of the old cookies to GET /api/me"
		revoke = func() (int, string, error) { return p.send(ctx, http.MethodPost, "/api/auth/logout", cred) }
	case strategy.CredentialAPIKey:
		rev.How = "get a key, DELETE /api/auth/keys/{id}, then send the old key to GET /api/me"
		revoke = func() (int, string, error) { return p.send(ctx, http.MethodDelete, "/api/auth/keys/"+cred.keyID, cred) }
	default:
		rev.How = "get a JWT, then send it to GET /api/me: the server offers no way to revoke one"
	}
	if revoke != nil {
		// On a round-robin balancer the logout may land on a replica that
		// never held the session: try until the one that did answers.
		status, code := 0, ""
		for range tries {
			status, code, err = revoke()
			if err != nil || status == http.StatusOK {
				break
			}
		}
		if err != nil || status != http.StatusOK {
			rev.Verdict = RevokedUnknown
			rev.Saw = fmt.Sprintf("the revocation was not answered 200 in %d tries (last: %d %s %v)", tries, status, code, err)
			return rev
		}
	}
	ok, codes := p.accepted(ctx, cred, tries, false)
	switch {
	case ok == 0:
		rev.Verdict = RevokedAtOnce
		rev.Saw = fmt.Sprintf("the old credential was refused %d times out of %d (%s)", tries, tries, codes)
	case revoke == nil:
		rev.Verdict = RevokedAfterExpiry
		rev.Saw = fmt.Sprintf("accepted %d times out of %d; it stays valid until it expires, %s after it was issued", ok, tries, cred.expires)
	default:
		rev.Verdict = RevokedNever
		rev.Saw = fmt.Sprintf("the revocation answered 200, yet a copy of the old credential was accepted %d times out of %d afterwards; only its expiry ends it, %s after it was issued", ok, tries, cred.expires)
	}
	return rev
}

type prober struct {
	base   string
	client *http.Client
}

// signIn gets a credential as the simulated users do, and keeps what a
// client would send again: for a cookie, every cookie the jar holds for the
// balancer (the session's and the balancer's routing cookie).
func (p *prober) signIn(ctx context.Context, st strategy.Strategy, email string) (probeCredential, error) {
	body := map[string]string{"email": email, "password": sqlite.LoadTestPassword}
	var cred probeCredential
	switch st.Credential {
	case strategy.CredentialCookie:
		jar, _ := cookiejar.New(nil) // never fails without options
		c := *p.client
		c.Jar = jar
		resp, err := post(ctx, &c, p.base+"/api/auth/login", body)
		if err != nil {
			return cred, err
		}
		if resp.status != http.StatusOK {
			return cred, fmt.Errorf("POST /api/auth/login answered %d %s", resp.status, resp.code)
		}
		for _, ck := range resp.cookies {
			if ck.MaxAge > 0 {
				cred.expires = max(cred.expires, time.Duration(ck.MaxAge)*time.Second)
			}
		}
		u, _ := url.Parse(p.base)
		var pairs []string
		for _, ck := range jar.Cookies(u) {
			pairs = append(pairs, ck.Name+"="+ck.Value)
		}
		cred.header, cred.value = "Cookie", strings.Join(pairs, "; ")
		return cred, nil
	case strategy.CredentialAPIKey:
		resp, err := post(ctx, p.client, p.base+"/api/auth/generate-key", body)
		if err != nil {
			return cred, err
		}
		var d struct {
			APIKey string `json:"api_key"`
			KeyID  string `json:"key_id"`
		}
		if resp.status != http.StatusCreated || json.Unmarshal(resp.data, &d) != nil || d.APIKey == "" {
			return cred, fmt.Errorf("POST /api/auth/generate-key answered %d %s", resp.status, resp.code)
		}
		cred.header, cred.value, cred.keyID = "Authorization", "Bearer "+d.APIKey, d.KeyID
		return cred, nil
	default:
		resp, err := post(ctx, p.client, p.base+"/api/auth/token", body)
		if err != nil {
			return cred, err
		}
		var d struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if resp.status != http.StatusOK || json.Unmarshal(resp.data, &d) != nil || d.AccessToken == "" {
			return cred, fmt.Errorf("POST /api/auth/token answered %d %s", resp.status, resp.code)
		}
		cred.header, cred.value = "Authorization", "Bearer "+d.AccessToken
		cred.expires = time.Duration(d.ExpiresIn) * time.Second
		return cred, nil
	}
}

// accepted sends GET /api/me with the credential tries times (or, with
// untilOK, until the first 200) and counts the 200s; codes lists what the
// refusals said.
func (p *prober) accepted(ctx context.Context, cred probeCredential, tries int, untilOK bool) (int, string) {
	ok := 0
	seen := map[string]int{}
	var order []string
	for range tries {
		status, code, err := p.send(ctx, http.MethodGet, "/api/me", cred)
		if err == nil && status == http.StatusOK {
			ok++
			if untilOK {
				break
			}
			continue
		}
		k := fmt.Sprintf("%d %s", status, code)
		if err != nil {
			k = err.Error()
		}
		if seen[k] == 0 {
			order = append(order, k)
		}
		seen[k]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d × %s", seen[k], k))
	}
	return ok, strings.Join(parts, ", ")
}

// send makes one request with a copy of the credential, as a client that
// kept it would, with no cookie jar to forget it.
func (p *prober) send(ctx context.Context, method, path string, cred probeCredential) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(cred.header, cred.value)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var env struct {
		Code string `json:"code"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(b, &env)
	return resp.StatusCode, env.Code, nil
}

// answer is what post read.
type answer struct {
	status  int
	code    string
	data    json.RawMessage
	cookies []*http.Cookie
}

func post(ctx context.Context, c *http.Client, url string, body any) (answer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	var env struct {
		Code string          `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, err
	}
	_ = json.Unmarshal(raw, &env)
	return answer{status: resp.StatusCode, code: env.Code, data: env.Data, cookies: resp.Cookies()}, nil
}
