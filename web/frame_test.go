package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/httpserve"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/web"
)

// framedRunner is a runner of a class, as statelab compare --class mounts
// it: compare.Runner's own handler (its Host check, its framing headers,
// its class routes) over the pages cmd/statelab gives it, the dashboard
// at /, the matrix page at /matrix and the student page at /join. The
// runner runs no replica: only its feed is the test's, one that moves on
// a second at every poll so that a dashboard that rendered shows it. It
// counts the requests for the pages' scripts and for the feed, which only
// a page that rendered makes.
type framedRunner struct {
	url                     string
	appJS, studentJS, feeds atomic.Int64
	matrixHeading           string
}

func startFramedRunner(t *testing.T) *framedRunner {
	t.Helper()
	fr := &framedRunner{matrixHeading: "the strategy matrix"}
	matrix := filepath.Join(t.TempDir(), "matrix.html")
	page := `<!doctype html><html><head><meta charset="utf-8"><style>h1 { color: #0072B2 }</style></head>` +
		`<body><h1 id="matrix-heading">` + fr.matrixHeading + `</h1></body></html>`
	if err := os.WriteFile(matrix, []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	sides := pair(t, "memory-sticky,apikey")
	sample := func(n int64) compare.Sample {
		s := compare.Sample{ElapsedS: float64(n), Phase: "running", Sides: map[string]compare.SideSample{}}
		for _, sd := range sides {
			ss := compare.SideSample{Totals: load.Totals{Requests: 10 * n, OK: 10 * n, Availability: 1, LatencyMS: load.Percentile{P50: 2, P95: 9, P99: 20}}}
			ss.LatencyWindowMS = &load.Percentile{P50: 2, P95: 9, P99: 20}
			if sd.HoldsSessionsInProcess() {
				ss.SessionLost, ss.SessionsLost, ss.CartItemsLost = n, n, n
				v := float64(n % 7)
				ss.Replicas = []compare.ReplicaInfo{{ID: sd.Name + "-1", Addr: "127.0.0.1:1", PID: 1000, Sessions: &v}}
			}
			s.Sides[sd.Name] = ss
		}
		return s
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fr.url = "http://" + ln.Addr().String()
	sc, err := scenario.Load("quick")
	if err != nil {
		t.Fatal(err)
	}
	pages := http.NewServeMux() // cmd/statelab's dashboard(matrixFile)
	pages.Handle("/", web.Handler())
	pages.Handle("/matrix", web.MatrixPage(matrix))
	dir := t.TempDir()
	r, err := compare.New(t.Context(), compare.Config{
		Binary: "/nonexistent/statelab", Scenario: sc, Sides: [2]strategy.Strategy{sides[0], sides[1]}, Users: 0, Seed: 1, Think: time.Second,
		Addr: ln.Addr().String(), BalancerAddrs: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		ReportDir: filepath.Join(dir, "report"), WorkDir: filepath.Join(dir, "work"), Manual: true, Class: true,
		Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Dashboard: pages,
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	runner := r.Handler()
	srv := httpserve.New(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/app.js":
			fr.appJS.Add(1)
		case "/student.js":
			fr.studentJS.Add(1)
		case "/api/feed":
			n := fr.feeds.Add(1)
			body := feedBody{Scenario: "framed", DurationS: 600, Users: 10, Sides: sides, Now: sample(n), History: []compare.Sample{},
				Class: &class.Feed{Sides: map[string]class.SideFeed{}}}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		runner.ServeHTTP(w, req)
	}), httpserve.Timeouts{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return fr
}

// TestPagesCannotBeFramed is the clickjacking attack: a page on another
// origin (another port of the same host) frames the dashboard, the matrix
// page and the student page of a class runner, as a page that hides them
// at opacity 0.02 under its own buttons would. Chromium must refuse to
// render any frame: no page's script is fetched (app.js, student.js), the
// feed never polled, and no frame holds the page's content. Opened by
// itself each page still works under its Content-Security-Policy, with no
// violation: the dashboard polls, the matrix page keeps its inline style,
// the student page reads the feed and asks the runner to join.
func TestPagesCannotBeFramed(t *testing.T) {
	chromium := labtest.Chromium(t)
	runner := startFramedRunner(t)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><h1>win a prize</h1>
<iframe id="dashboard" src="%[1]s/" width="900" height="600" style="opacity: .02"></iframe>
<iframe id="matrix" src="%[1]s/matrix" width="900" height="600" style="opacity: .02"></iframe>
<iframe id="student" src="%[1]s/join" width="900" height="600" style="opacity: .02"></iframe>
</body></html>`, runner.url)
	}))
	t.Cleanup(attacker.Close)

	ctx := newTab(t, chromium, 1400, 950)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.cspViolations = []; document.addEventListener('securitypolicyviolation',
			(e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`,
	}); err != nil {
		t.Fatal(err)
	}

	// Framed on another origin.
	if err := chromedp.Do(ctx, chromedp.Navigate(attacker.URL)); err != nil {
		t.Fatal(err)
	}
	var frames map[string]*cdp.Frame
	deadline := time.Now().Add(15 * time.Second)
	for {
		tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		frames = map[string]*cdp.Frame{}
		for _, child := range tree.FrameTree.ChildFrames {
			if u := child.Frame.URL; u != "" && u != "about:blank" {
				frames[child.Frame.Name] = child.Frame // navigated: to the page, or to the error page
			}
		}
		if len(frames) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the attacker's frames did not finish navigating: %v", frames)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A dashboard that rendered fetches its script at once and polls the
	// feed every second: give it the time to.
	if err := chromedp.Do(ctx, chromedp.Sleep(2500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	iframes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("iframe")))
	if err != nil {
		t.Fatal(err)
	}
	content := map[string]string{"dashboard": "#btn-crash", "matrix": "#matrix-heading", "student": "#join-form"}
	for _, n := range iframes {
		name := n.AttributeValue("id")
		f := frames[name]
		if f == nil {
			t.Fatalf("no frame %q in %v", name, frames)
		}
		want := runner.url + map[string]string{"dashboard": "/", "matrix": "/matrix", "student": "/join"}[name]
		if strings.HasPrefix(f.URL, runner.url) || f.UnreachableURL != want {
			t.Errorf("the %s framed on another origin: document %q (blocked: %q), want the browser's error page in place of %s", name, f.URL, f.UnreachableURL, want)
		}
		found, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(content[name]), chromedp.FromNode(n), chromedp.AtLeast(0)))
		if err != nil {
			t.Fatal(err)
		}
		if len(found) > 0 {
			t.Errorf("the %s framed on another origin rendered its content (%s)", name, content[name])
		}
	}
	if js, student, feeds := runner.appJS.Load(), runner.studentJS.Load(), runner.feeds.Load(); js != 0 || student != 0 || feeds != 0 {
		t.Errorf("the framed pages fetched app.js %d times, student.js %d times and polled the feed %d times, want 0, 0 and 0: they ran", js, student, feeds)
	}

	// Opened by itself, the dashboard renders and polls under its policy.
	exceptions := watchExceptions(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(runner.url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the dashboard to draw three polls of the feed", 20*time.Second, `+document.body.dataset.elapsed >= 3`)
	waitFor(t, ctx, "the legends, in colour", 10*time.Second, `
		(() => {
			const colours = [...document.querySelectorAll('.legend-item > span:first-child')].map((s) => getComputedStyle(s).color);
			return colours.includes('rgb(213, 94, 0)') && colours.includes('rgb(0, 158, 115)'); // vermillion, green
		})()`)
	if v := evalString(t, ctx, `JSON.stringify(window.cspViolations)`); v != "[]" {
		t.Errorf("the dashboard broke its own Content-Security-Policy: %s", v)
	}
	if ex := exceptions(); len(ex) > 0 {
		t.Errorf("the dashboard threw: %v", ex)
	}

	// So does the matrix page, with its inline style.
	if err := chromedp.Do(ctx, chromedp.Navigate(runner.url+"/matrix")); err != nil {
		t.Fatal(err)
	}
	got := evalString(t, ctx, `(() => { const h = document.querySelector('#matrix-heading');
		return h ? h.textContent + ' ' + getComputedStyle(h).color : ''; })()`)
	if want := runner.matrixHeading + " rgb(0, 114, 178)"; got != want {
		t.Errorf("the matrix page opened by itself: %q, want %q (its text, in its inline style's colour)", got, want)
	}
	if v := evalString(t, ctx, `JSON.stringify(window.cspViolations)`); v != "[]" {
		t.Errorf("the matrix page broke its own Content-Security-Policy: %s", v)
	}

	// And the student page, whose script reads the feed, shows the join
	// form and asks the runner to join.
	if err := chromedp.Do(ctx, chromedp.Navigate(runner.url+"/join")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the student page's join form", 10*time.Second, `!document.querySelector('#join').hidden`)
	evalString(t, ctx, `(() => { document.querySelector('#name').value = 'mallory'; document.querySelector('#code').value = 'ZZZZZZ';
		document.querySelector('#join-form').requestSubmit(); return ''; })()`)
	if msg := waitFor(t, ctx, "the runner's answer to a wrong code", 10*time.Second, `document.querySelector('#join-error').textContent`); !strings.Contains(msg, "not this class's code") {
		t.Errorf("the student page, after joining with a wrong code, says %q; want the runner's word on the code", msg)
	}
	if v := evalString(t, ctx, `JSON.stringify(window.cspViolations)`); v != "[]" {
		t.Errorf("the student page broke its own Content-Security-Policy: %s", v)
	}
	if ex := exceptions(); len(ex) > 0 {
		t.Errorf("the student page threw: %v", ex)
	}
}
