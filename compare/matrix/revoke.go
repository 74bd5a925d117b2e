package matrix

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"

	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/seed"
)

// The answers to "after logout or key revocation, is the old credential
// refused?".
const (
	RevokedAtOnce      = report.RevokedAtOnce      // the old credential was refused right after
	RevokedAfterExpiry = report.RevokedAfterExpiry // nothing can revoke it: it works until it expires
	RevokedNever       = report.RevokedNever       // the revocation answered OK, yet the old credential still works
	RevokedUnknown     = report.RevokedUnknown     // the probe could not tell (it says why)
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

// ProbeRevocation signs in as email through the strategy's balancer, uses
// the credential, revokes it the only way the strategy offers (logout,
// DELETE of the API key, or nothing for a JWT), then sends a copy of the
// old credential again, several times, so that it reaches every replica a
// round-robin balancer has. ctx bounds the whole probe.
func ProbeRevocation(ctx context.Context, st strategy.Strategy, base, email string, replicas int) Revocation {
	tries := 3 * replicas
	// No timeout of its own: ctx bounds the whole probe, and a sign-in
	// (bcrypt) on a busy machine may take seconds.
	p := &prober{base: base, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	defer p.hc.CloseIdleConnections()
	cred, err := p.signIn(ctx, st, email)
	if err != nil {
		return Revocation{Verdict: RevokedUnknown, How: "sign in as " + email, Saw: err.Error()}
	}
	rev := Revocation{ExpiresS: cred.Expires.Seconds()}
	if ok, _ := p.accepted(ctx, cred, tries, true); ok == 0 {
		rev.Verdict, rev.How = RevokedUnknown, "sign in, then GET "+client.MePath+" with the credential"
		rev.Saw = fmt.Sprintf("the fresh credential was refused %d times out of %d: nothing to revoke", tries, tries)
		return rev
	}

	revoke, err := client.RevokeRequest(cred)
	revocable := err == nil
	switch {
	case cred.Kind == client.KindSession:
		rev.How = fmt.Sprintf("log in, %s %s, then send a copy of the old cookies to GET %s", revoke.Method, revoke.Path, client.MePath)
	case cred.Kind == client.KindAPIKey:
		rev.How = fmt.Sprintf("get a key, %s %s, then send the old key to GET %s", revoke.Method, revoke.Path, client.MePath)
	default:
		rev.How = "get a JWT, then send it to GET " + client.MePath + ": the server offers no way to revoke one"
	}
	if revocable {
		// On a round-robin balancer the logout may land on a replica that
		// never held the session: try until the one that did answers.
		status, code := 0, ""
		for range tries {
			status, code, err = p.send(ctx, revoke, cred)
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
	case !revocable:
		rev.Verdict = RevokedAfterExpiry
		rev.Saw = fmt.Sprintf("accepted %d times out of %d; it stays valid until it expires, %s after it was issued", ok, tries, cred.Expires)
	default:
		rev.Verdict = RevokedNever
		rev.Saw = fmt.Sprintf("the revocation answered 200, yet a copy of the old credential was accepted %d times out of %d afterwards; only its expiry ends it, %s after it was issued", ok, tries, cred.Expires)
	}
	return rev
}

type prober struct {
	base string
	hc   *http.Client // without a cookie jar: a copy of the credential goes with each request
}

// signIn gets a credential as the simulated users do, and keeps what a
// client would send again: for a cookie, every cookie the jar holds for the
// balancer (the session's and the balancer's routing cookie).
func (p *prober) signIn(ctx context.Context, st strategy.Strategy, email string) (client.Credential, error) {
	hc := p.hc
	if st.Credential == strategy.CredentialCookie {
		jar, _ := cookiejar.New(nil) // never fails without options
		c := *p.hc
		c.Jar = jar
		hc = &c
	}
	return client.New(p.base, hc).SignIn(ctx, st.Credential, client.Credentials{Email: email, Password: seed.LoadTestPassword})
}

// accepted sends GET /api/me with the credential tries times (or, with
// untilOK, until the first 200) and counts the 200s; codes lists what the
// refusals said.
func (p *prober) accepted(ctx context.Context, cred client.Credential, tries int, untilOK bool) (int, string) {
	ok := 0
	seen := map[string]int{}
	var order []string
	for range tries {
		status, code, err := p.send(ctx, client.Request{Method: http.MethodGet, Path: client.MePath}, cred)
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
func (p *prober) send(ctx context.Context, r client.Request, cred client.Credential) (int, string, error) {
	resp, err := client.New(p.base, p.hc).With(cred).Do(ctx, r)
	if err != nil {
		return 0, "", err
	}
	return resp.Status, resp.Code, nil
}
