package compare_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/statelab/statelab/compare"
)

// TestHandlerForbidsFraming: whatever the runner answers, a page may not
// show it in a frame (clickjacking of the controls); web's pages are
// checked in a real browser in web/frame_test.go.
func TestHandlerForbidsFraming(t *testing.T) {
	_, addr := newControlRunner(t, compare.Timeouts{})
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
