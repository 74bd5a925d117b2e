package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

// Kinds of credential: how a client signs in and what it sends after. The
// values are the compare/strategy package's credential names.
const (
	// KindSession is a session cookie from POST /api/auth/login
	// (stateful): the server, or the cookie itself, keeps the session.
	KindSession = "cookie"
	// KindAPIKey is an opaque key from POST /api/auth/generate-key
	// (stateless), checked against the shared database on every request
	// and revoked with DELETE /api/auth/keys/{key_id}.
	KindAPIKey = "apikey"
	// KindJWT is a signed token from POST /api/auth/token (stateless),
	// checked by its signature alone; nothing revokes it before it
	// expires.
	KindJWT = "jwt"
)

// CookieName is the name of the stateful server's session cookie.
const CookieName = stateful.CookieName

// Credential is what a signed-in client sends with every request: one
// header and its value. A copy of it works for anyone who sends it.
type Credential struct {
	// Kind is KindSession, KindAPIKey or KindJWT when a sign-in made it.
	Kind string
	// Header is "Cookie" or "Authorization"; "" sends nothing.
	Header string
	Value  string
	// KeyID names an API key, to revoke it.
	KeyID string
	// Expires is how long the credential was issued for, as the server
	// said (a JWT's expires_in, a cookie's Max-Age); 0 when it did not.
	Expires time.Duration
}

// Bearer returns the credential that sends an API key or a JWT as
// Authorization: Bearer <token>.
func Bearer(token string) Credential {
	return Credential{Header: "Authorization", Value: stateless.TokenType + " " + token}
}

// Session returns the credential that sends a session id in the session
// cookie.
func Session(id string) Credential {
	return Cookies([]*http.Cookie{{Name: CookieName, Value: id}})
}

// Cookies returns the credential that sends cookies, as a browser sends
// them back: the session's and any a balancer set to route by. Expires is
// the longest Max-Age among them.
func Cookies(cookies []*http.Cookie) Credential {
	cred := Credential{Kind: KindSession, Header: "Cookie"}
	r := &http.Request{Header: http.Header{}}
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		if c.MaxAge > 0 {
			cred.Expires = max(cred.Expires, time.Duration(c.MaxAge)*time.Second)
		}
	}
	cred.Value = r.Header.Get("Cookie")
	return cred
}

// Set puts the credential in h.
func (c Credential) Set(h http.Header) {
	if c.Header != "" {
		h.Set(c.Header, c.Value)
	}
}

// Line is the credential's header line as it goes on the wire, without
// the line's end.
func (c Credential) Line() string { return c.Header + ": " + c.Value }

// SignInPath is the route that hands out a credential of kind.
func SignInPath(kind string) (string, error) {
	switch kind {
	case KindSession:
		return LoginPath, nil
	case KindAPIKey:
		return GenerateKeyPath, nil
	case KindJWT:
		return TokenPath, nil
	}
	return "", fmt.Errorf("no way to sign in for a credential %q: use %s, %s or %s", kind, KindSession, KindAPIKey, KindJWT)
}

// SignInRequest is the request that signs in for a credential of kind.
func SignInRequest(kind string, creds Credentials) (Request, error) {
	path, err := SignInPath(kind)
	return Request{Method: http.MethodPost, Path: path, Body: creds}, err
}

// SignedIn reads the credential of kind out of a sign-in's answer. jar,
// when not nil, is the cookie jar of the client that signed in: a session
// credential then holds every cookie the jar keeps for u, the balancer's
// routing cookie too; without one it holds the cookies the answer set.
func SignedIn(kind string, resp *Response, jar http.CookieJar, u *url.URL) (Credential, error) {
	if err := resp.Err(); err != nil {
		return Credential{}, fmt.Errorf("sign in: %w", err)
	}
	switch kind {
	case KindSession:
		var set []*http.Cookie
		for _, c := range resp.Cookies() {
			if c.MaxAge >= 0 { // < 0 deletes the cookie
				set = append(set, c)
			}
		}
		cookies := set
		if jar != nil && u != nil {
			cookies = jar.Cookies(u)
		}
		cred := Cookies(cookies)
		cred.Expires = Cookies(set).Expires
		for _, c := range cookies {
			if c.Name == CookieName && c.Value != "" {
				return cred, nil
			}
		}
		return Credential{}, fmt.Errorf("sign in: %s %s answered %d without a %s cookie", resp.Method, resp.Path, resp.Status, CookieName)
	case KindAPIKey:
		var k KeyIssued
		if err := resp.Decode(&k); err != nil {
			return Credential{}, fmt.Errorf("sign in: %w", err)
		}
		if k.APIKey == "" {
			return Credential{}, fmt.Errorf("sign in: %s %s answered %d without a key", resp.Method, resp.Path, resp.Status)
		}
		cred := Bearer(k.APIKey)
		cred.Kind, cred.KeyID = KindAPIKey, k.KeyID
		return cred, nil
	case KindJWT:
		var t TokenIssued
		if err := resp.Decode(&t); err != nil {
			return Credential{}, fmt.Errorf("sign in: %w", err)
		}
		if t.AccessToken == "" {
			return Credential{}, fmt.Errorf("sign in: %s %s answered %d without a token", resp.Method, resp.Path, resp.Status)
		}
		cred := Bearer(t.AccessToken)
		cred.Kind, cred.Expires = KindJWT, time.Duration(t.ExpiresIn)*time.Second
		return cred, nil
	}
	_, err := SignInPath(kind)
	return Credential{}, err
}

// SignIn signs in for a credential of kind and returns it; c itself does
// not send it (see With). A session's cookies also stay in c's cookie jar,
// when it has one.
func (c *Client) SignIn(ctx context.Context, kind string, creds Credentials) (Credential, error) {
	req, err := SignInRequest(kind, creds)
	if err != nil {
		return Credential{}, err
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return Credential{}, fmt.Errorf("sign in: %w", err)
	}
	var u *url.URL
	if c.hc.Jar != nil {
		if u, err = url.Parse(c.base); err != nil {
			return Credential{}, err
		}
	}
	return SignedIn(kind, resp, c.hc.Jar, u)
}

// Login signs in to the stateful server for a session.
func (c *Client) Login(ctx context.Context, creds Credentials) (Credential, error) {
	return c.SignIn(ctx, KindSession, creds)
}

// GenerateKey signs in to the stateless server for an API key.
func (c *Client) GenerateKey(ctx context.Context, creds Credentials) (Credential, error) {
	return c.SignIn(ctx, KindAPIKey, creds)
}

// Token signs in to the stateless server for a JWT.
func (c *Client) Token(ctx context.Context, creds Credentials) (Credential, error) {
	return c.SignIn(ctx, KindJWT, creds)
}

// ErrNotRevocable is Revoke's answer for a JWT: the server keeps nothing
// it could strike it off.
var ErrNotRevocable = errors.New("a JWT cannot be revoked: it is valid until it expires")

// RevokeRequest is the request that revokes cred, sent with cred itself:
// POST /api/auth/logout for a session, DELETE /api/auth/keys/{key_id} for
// an API key. A JWT has none: ErrNotRevocable.
func RevokeRequest(cred Credential) (Request, error) {
	switch {
	case cred.Kind == KindSession:
		return Request{Method: http.MethodPost, Path: LogoutPath}, nil
	case cred.Kind == KindAPIKey && cred.KeyID != "":
		return Request{Method: http.MethodDelete, Path: KeyPath(cred.KeyID)}, nil
	case cred.Kind == KindJWT:
		return Request{}, ErrNotRevocable
	}
	return Request{}, fmt.Errorf("cannot tell how to revoke a credential of kind %q (key id %q)", cred.Kind, cred.KeyID)
}

// Revoke revokes cred the only way its kind offers, sending cred with the
// request whatever c sends.
func (c *Client) Revoke(ctx context.Context, cred Credential) error {
	req, err := RevokeRequest(cred)
	if err != nil {
		return err
	}
	return c.With(cred).call(ctx, req, nil)
}
