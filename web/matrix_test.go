package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statelab/statelab/web"
)

// TestMatrixPage checks what the dashboard serves at /matrix: the page the
// last matrix wrote, read afresh at each request, and before any matrix a
// 404 that says how to make one.
func TestMatrixPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reports", "matrix.html")
	srv := httptest.NewServer(web.MatrixPage(path))
	defer srv.Close()
	get := func(method string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	tests := []struct {
		name       string
		page       string // written before the request; "" leaves the file missing
		method     string
		wantStatus int
		wantBody   string
	}{
		{"no matrix yet", "", http.MethodGet, http.StatusNotFound, "statelab matrix --quick"},
		{"the last matrix", "<html>matrix one</html>", http.MethodGet, http.StatusOK, "matrix one"},
		{"a newer matrix, without a restart", "<html>matrix two</html>", http.MethodGet, http.StatusOK, "matrix two"},
		{"HEAD", "<html>matrix two</html>", http.MethodHead, http.StatusOK, ""},
		{"read-only", "<html>matrix two</html>", http.MethodPost, http.StatusMethodNotAllowed, "read-only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.page != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.page), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			status, h, body := get(tt.method)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s: %d %q, want %d with %q", tt.method, status, body, tt.wantStatus, tt.wantBody)
			}
			if status == http.StatusOK && !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want text/html", h.Get("Content-Type"))
			}
			if tt.page == "" && !strings.Contains(body, path) {
				t.Errorf("the 404 does not say where the page would be (%s): %s", path, body)
			}
		})
	}
}
