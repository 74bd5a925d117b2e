package load

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/statelab/statelab/compare/balancer"
)

// RoutingCookies are the cookies a balancer sets to route a client (see
// compare/balancer's affinity policies): routing state, not a credential,
// so a request's bytes count them apart.
var RoutingCookies = []string{balancer.RouteCookie, balancer.HashKeyCookie}

// isRouting reports whether a cookie is one of RoutingCookies.
func isRouting(name string) bool { return slices.Contains(RoutingCookies, name) }

// HeaderBytes splits what a request's sign-in and routing take of its
// header on the wire: its Cookie lines (the client adds the jar's cookies to
// the request it is given) and its Authorization line, each
// "Name: value\r\n". A routing cookie's share of a Cookie line is its
// "name=value" and the "; " that joins it to the next; when a line holds
// routing cookies only, the whole line is routing. Everything else is the
// credential.
func HeaderBytes(h http.Header) (credential, routing int64) {
	for _, v := range h.Values("Authorization") {
		credential += int64(len("Authorization") + len(": ") + len(v) + len("\r\n"))
	}
	for _, v := range h.Values("Cookie") {
		line := int64(len("Cookie") + len(": ") + len(v) + len("\r\n"))
		var route int64
		others := false
		for part := range strings.SplitSeq(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if isRouting(name) {
				route += int64(len(strings.TrimSpace(part)) + len("; "))
			} else {
				others = true
			}
		}
		if !others {
			route = line
		}
		route = min(route, line)
		routing += route
		credential += line - route
	}
	return credential, routing
}

// ObservedRequest is what an observer of one request (an access log, a
// proxy, a monitor) learns of its caller from the request alone, with no
// secret and no lookup.
type ObservedRequest struct {
	// Line is the request as an access log would show it: method, route,
	// status, and each credential header with its value as far as it can
	// be read. A value that cannot be read is shown by its length only, so
	// no live credential is written anywhere.
	Line string `json:"line"`
	// Readable is true when the credential names its caller in the request
	// itself: a JWT whose claims decode with no secret. An opaque id (a
	// session cookie, an API key) means something only to whoever can look
	// it up.
	Readable bool `json:"readable"`
	// Claims are what a readable credential says, decoded.
	Claims map[string]any `json:"claims,omitempty"`
	// Opaque names the credentials that could not be read, with their
	// length: "session_id cookie, 88 characters".
	Opaque []string `json:"opaque,omitempty"`
}

// Observe returns what an observer learns from a request with header h,
// answered status: its credential headers read as far as they can be.
func Observe(method, route string, status int, h http.Header) ObservedRequest {
	o := ObservedRequest{}
	var shown []string
	for _, v := range h.Values("Authorization") {
		scheme, token, ok := strings.Cut(v, " ")
		if !ok {
			scheme, token = "", v
		}
		if claims, ok := jwtClaims(token); ok {
			o.Readable, o.Claims = true, claims
			b, _ := json.Marshal(claims) // a map of JSON values always marshals
			shown = append(shown, fmt.Sprintf("Authorization: %s <a JWT of %d characters; its claims, read with no secret: %s>", scheme, len(token), b))
			continue
		}
		o.Opaque = append(o.Opaque, fmt.Sprintf("%s token, %d characters", strings.ToLower(scheme), len(token)))
		shown = append(shown, fmt.Sprintf("Authorization: %s <opaque, %d characters>", scheme, len(token)))
	}
	for _, v := range h.Values("Cookie") {
		var parts []string
		for part := range strings.SplitSeq(v, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name == "" {
				continue
			}
			if isRouting(name) {
				// Routing state names a replica or a random key: not a
				// secret, and in plain sight on purpose.
				parts = append(parts, name+"="+value)
				continue
			}
			o.Opaque = append(o.Opaque, fmt.Sprintf("%s cookie, %d characters", name, len(value)))
			parts = append(parts, fmt.Sprintf("%s=<opaque, %d characters>", name, len(value)))
		}
		shown = append(shown, "Cookie: "+strings.Join(parts, "; "))
	}
	if len(shown) == 0 {
		shown = append(shown, "no credential")
	}
	o.Line = fmt.Sprintf("%s %s %d %s", method, route, status, strings.Join(shown, " "))
	return o
}

// jwtClaims decodes the payload of a token shaped as a JWT (three
// base64url parts, the middle one a JSON object), without checking its
// signature: reading one needs no secret.
func jwtClaims(token string) (map[string]any, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil || len(claims) == 0 {
		return nil, false
	}
	return claims, true
}
