//go:build unix

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/statelab/statelab/internal/labtest"
)

// TestCrossOriginBorrowRefused replays issue 12's attack in a real
// headless Chromium. Alice is logged in on a real stateful server; a page
// served from another port of the same host (same-site, so the SameSite=Lax
// session cookie goes along) tries to borrow a book in her name with a
// no-cors fetch, with and without a text/plain body, and with a text/plain
// form. Nothing may be borrowed and the server must have answered 403; a
// borrow from the server's own origin, in the same browser, still works.
func TestCrossOriginBorrowRefused(t *testing.T) {
	chromium := labtest.Chromium(t)
	bin := statelabBinary(t)
	srv := newReplica(t, bin, "stateful", "csrf", freeAddrs(t, 1)[0], "--db", filepath.Join(t.TempDir(), "library.db"))
	srv.waitReady(t)
	origin := "http://" + srv.addr

	alice := login{"alice@example.com", "wonderland"}
	sess := cred{cookie: srv.must(t, "POST", "/api/auth/login", alice, cred{}, http.StatusOK).Cookie}
	shelf := data[[]book](t, srv.must(t, "GET", "/api/books?available=true&limit=2", nil, sess, http.StatusOK))
	if len(shelf) != 2 {
		t.Fatalf("want 2 books on the shelf, got %d", len(shelf))
	}
	target, own := shelf[0], shelf[1]

	// The attacker's page, on another port of 127.0.0.1.
	borrowURL := fmt.Sprintf("%s/api/books/%d/borrow", origin, target.ID)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>free books</title>
<form id="f" method="POST" action=%[1]q enctype="text/plain"><input name='{"borrower_name":"' value='x"}'></form>
<script>
async function attack() {
  await fetch(%[1]q, {method: 'POST', mode: 'no-cors', credentials: 'include'}).catch(() => {});
  await fetch(%[1]q, {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'}, body: '{}'}).catch(() => {});
  return 'fetched';
}
</script>`, borrowURL)
	}))
	t.Cleanup(attacker.Close)

	ctx := newBrowser(t, chromium)
	// Alice logs in from the server's own origin, in the browser, and
	// borrows one book there: same-origin requests are unaffected.
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/api/health")); err != nil {
		t.Fatal(err)
	}
	status := evalAwait(t, ctx, `fetch('/api/auth/login', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({email: 'alice@example.com', password: 'wonderland'})})
		.then(() => fetch('/api/books/`+fmt.Sprint(own.ID)+`/borrow', {method: 'POST'})).then((r) => String(r.status))`)
	if status != "201" {
		t.Fatalf("same-origin borrow from the browser: got %s, want 201", status)
	}

	before := forbiddenBorrows(t, srv)
	if err := chromedp.Do(ctx, chromedp.Navigate(attacker.URL)); err != nil {
		t.Fatal(err)
	}
	fetched := evalAwait(t, ctx, `attack()`)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('f').submit()`)); err != nil {
		t.Fatal(err)
	}
	// The page navigates away under the poll, which fails it: poll again.
	landed := `location.origin === ` + jsString(origin) + ` && !!document.body && document.body.innerText.length > 0`
	for deadline := time.Now().Add(10 * time.Second); ; {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](landed))
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the form post did not land on the server within 10s (last: %v, %v)", ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	where := evalAwait(t, ctx, `location.href`)
	body := evalAwait(t, ctx, `document.body.innerText`)
	if fetched != "fetched" {
		t.Errorf("the attack page's fetches: got %q", fetched)
	}
	if !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, "Cross-origin request refused") {
		t.Errorf("the form post landed on %s showing %q; want the 403 forbidden envelope that says why", where, body)
	}
	if got := forbiddenBorrows(t, srv) - before; got != 3 {
		t.Errorf("the server answered %v borrows with 403 during the attack; want 3 (two fetches, one form)", got)
	}

	recs := data[[]borrowData](t, srv.must(t, "GET", "/api/borrows", nil, sess, http.StatusOK))
	if slices.ContainsFunc(recs, func(r borrowData) bool { return r.BookID == target.ID }) {
		t.Errorf("book %d was borrowed in alice's name by a page on another origin: %+v", target.ID, recs)
	}
	if len(recs) != 1 || recs[0].BookID != own.ID {
		t.Errorf("alice's borrows: got %+v, want only book %d, borrowed from the server's own origin", recs, own.ID)
	}
}

// forbiddenBorrows reads from the server's /metrics how many borrows of one
// book it has answered 403.
func forbiddenBorrows(t *testing.T, r *replica) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, m := range families["statelab_http_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["route"] == "/api/books/{id}/borrow" && labels["code"] == "403" {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// evalAwait evaluates js in the page, waits for the promise it may
// return, and returns its value as a string.
func evalAwait(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, func(p *runtime.EvaluateParams) { await := true; p.AwaitPromise = &await }))
	if err != nil {
		t.Fatalf("evaluate %.60s: %v", js, err)
	}
	return v
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// newBrowser starts a headless Chromium for the test.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}
