package web

import (
	"embed"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"os"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard's files: index.html at /, app.js and
// style.css next to it. Mount it at / on the runner's address, where the
// page finds /api/feed and /api/control.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above; this cannot fail
	}
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard's files are read-only", http.StatusMethodNotAllowed)
			return
		}
		// The files change with the binary; a stale app.js against a new
		// feed would draw nonsense, so the browser always asks.
		w.Header().Set("Cache-Control", "no-cache")
		noFraming(w, DashboardCSP)
		fileServer.ServeHTTP(w, r)
	})
}

// MatrixPage serves the page "statelab matrix" last wrote at path (its
// matrix.html, copied there), read at every request, so a new matrix shows
// without restarting anything. Until a matrix has been made it answers 404
// with a page that says how to make one. The page is self-contained; it
// needs nothing else from the runner.
func MatrixPage(path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the matrix page is read-only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		noFraming(w, MatrixCSP)
		b, err := os.ReadFile(path)
		if err != nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, noMatrix, html.EscapeString(path))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	})
}

// The pages' Content-Security-Policy. Each forbids every page to frame it
// (frame-ancestors 'none'): the dashboard's buttons crash replicas, and a
// page on another port could otherwise show it at opacity 0.02 under its
// own "click here" (clickjacking).
const (
	// DashboardCSP lets the dashboard load only its own files and poll
	// its own runner: no inline script or style, nothing from elsewhere.
	// The data: image is the page's empty icon.
	DashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// MatrixCSP fits the matrix page, one self-contained file whose only
	// style is inline and that runs no script at all.
	MatrixCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// noFraming sets a page's security headers: its Content-Security-Policy,
// and X-Frame-Options for browsers that know only that.
func noFraming(w http.ResponseWriter, csp string) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
}

const noMatrix = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>statelab: no matrix yet</title></head>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>No strategy matrix yet</h1>
<p>The matrix measures every way of keeping a sign-in against every fault, on real processes, and
writes its page to <code>%s</code>, which this page shows. Make one with</p>
<pre>statelab matrix           # about 5 minutes
statelab matrix --quick   # about 90 seconds</pre>
<p><a href="/">Back to the dashboard</a></p>
</body></html>
`
