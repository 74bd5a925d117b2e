package load_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/load"
)

// TestHeaderBytes checks how a request's header is split between the
// credential and the balancer's routing cookies.
func TestHeaderBytes(t *testing.T) {
	for _, tt := range []struct {
		name                string
		header              http.Header
		credential, routing int64
	}{
		{"none", http.Header{}, 0, 0},
		{"bearer", http.Header{"Authorization": {"Bearer abc"}}, int64(len("Authorization: Bearer abc\r\n")), 0},
		{"session only", http.Header{"Cookie": {"statelab_session=xyz"}}, int64(len("Cookie: statelab_session=xyz\r\n")), 0},
		{"session and route", http.Header{"Cookie": {"statelab_session=xyz; " + balancer.RouteCookie + "=m-1"}},
			int64(len("Cookie: statelab_session=xyz; "+balancer.RouteCookie+"=m-1\r\n") - len(balancer.RouteCookie+"=m-1; ")), int64(len(balancer.RouteCookie + "=m-1; "))},
		{"route only", http.Header{"Cookie": {balancer.HashKeyCookie + "=k"}}, 0, int64(len("Cookie: " + balancer.HashKeyCookie + "=k\r\n"))},
	} {
		c, r := load.HeaderBytes(tt.header)
		if c != tt.credential || r != tt.routing {
			t.Errorf("%s: credential %d, routing %d; want %d, %d", tt.name, c, r, tt.credential, tt.routing)
		}
	}
}

// TestObserve checks what an observer reads of a request: a JWT's claims,
// and nothing of an opaque id but its length.
func TestObserve(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"7","role":"member"}`)) + ".c2ln"
	for _, tt := range []struct {
		name     string
		header   http.Header
		readable bool
		want     []string
		not      []string
	}{
		{"jwt", http.Header{"Authorization": {"Bearer " + jwt}}, true, []string{`"sub":"7"`, `"role":"member"`, "GET /api/books 200 Authorization: Bearer <a JWT"}, []string{jwt}},
		{"api key", http.Header{"Authorization": {"Bearer secretkey123"}}, false, []string{"Bearer <opaque, 12 characters>"}, []string{"secretkey123"}},
		{"session", http.Header{"Cookie": {"statelab_session=abcdef; " + balancer.RouteCookie + "=m-2"}}, false,
			[]string{"statelab_session=<opaque, 6 characters>", balancer.RouteCookie + "=m-2"}, []string{"abcdef"}},
		{"a token that only looks like a JWT", http.Header{"Authorization": {"Bearer a.b.c"}}, false, []string{"<opaque, 5 characters>"}, nil},
	} {
		o := load.Observe("GET", "/api/books", 200, tt.header)
		if o.Readable != tt.readable {
			t.Errorf("%s: readable %v, want %v (%s)", tt.name, o.Readable, tt.readable, o.Line)
		}
		for _, w := range tt.want {
			if !strings.Contains(o.Line, w) {
				t.Errorf("%s: %q lacks %q", tt.name, o.Line, w)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(o.Line, w) {
				t.Errorf("%s: %q writes out %q", tt.name, o.Line, w)
			}
		}
	}
}
