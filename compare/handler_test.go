package compare_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/httpserve"
)

// TestHandlerForbidsFraming: whatever the runner answers, a page may not
// show it in a frame (clickjacking of the controls); web's pages are
// checked in a real browser in web/frame_test.go.
func TestHandlerForbidsFraming(t *testing.T) {
	_, addr := newControlRunner(t, httpserve.Timeouts{})
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/api/feed"},
		{http.MethodGet, "/metrics"},
		{http.MethodGet, "/no-such-page"},
		{http.MethodPost, "/api/control/pause"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+addr+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp, xfo := resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Frame-Options")
		if !strings.Contains(csp, "frame-ancestors 'none'") || xfo != "DENY" {
			t.Errorf("%s %s: Content-Security-Policy %q, X-Frame-Options %q; want frame-ancestors 'none' and DENY", tt.method, tt.path, csp, xfo)
		}
	}
}

// TestHostCheckedOnEveryRoute: a page that reached the runner under
// another name (DNS rebinding) reads nothing, not the feed, the metrics
// nor the dashboard, as it presses no control; the runner's own names
// still get every route.
func TestHostCheckedOnEveryRoute(t *testing.T) {
	_, addr := newControlRunner(t, httpserve.Timeouts{})
	_, port, _ := net.SplitHostPort(addr)
	paths := []string{"/", "/api/feed", "/api/feed?history=0", "/metrics", "/no-such-page"}
	tests := []struct {
		host       string
		wantStatus int // 0: anything but 421
	}{
		{host: addr},
		{host: "localhost:" + port},
		{host: "[::1]:" + port},
		{host: "attacker.example:" + port, wantStatus: http.StatusMisdirectedRequest},
		{host: "attacker.example", wantStatus: http.StatusMisdirectedRequest},
		{host: "localhost:1", wantStatus: http.StatusMisdirectedRequest},
		{host: "10.0.0.1:" + port, wantStatus: http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		for _, path := range paths {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var env struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&env)
			resp.Body.Close()
			switch {
			case tt.wantStatus == 0 && resp.StatusCode == http.StatusMisdirectedRequest:
				t.Errorf("GET %s with Host %q: 421, want the route's answer", path, tt.host)
			case tt.wantStatus != 0 && (resp.StatusCode != tt.wantStatus || env.Code != "misdirected_request" || env.Message == ""):
				t.Errorf("GET %s with Host %q: %d %q, want 421 misdirected_request with a message", path, tt.host, resp.StatusCode, env.Code)
			}
		}
	}
}
