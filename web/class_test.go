package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/web"
)

// classScenario: two replicas a side, one restart of replica 1 the
// teacher fires (--manual); held up afterwards.
const classScenario = `name: class
description: one restart, fired by the teacher
replicas: 2
duration: 30s
events:
  - at: 1s
    action: restart
    replica: 1
`

// The students of TestClassInBrowsers; one name needs escaping.
var classNames = []string{"Ada <b>&", "Björn", "Chiara", "Dev", "Emeka"}

// TestClassInBrowsers drives the projector and five students, each in a
// browser context of their own (incognito-like: their own cookies and
// storage), against a real runner with --class and --manual. A first try
// with a wrong code is refused; then each student joins, signs in on both
// sides, and puts a book in each side's cart. The teacher presses Next
// event on the projector: a restart of replica 1 on both sides. The
// projector's class panel then lists exactly the students whose
// memory-sticky session was on memory-sticky-1 (each student's own status
// line says which replica answered them), each of those students' pages
// says so, and no API-key student lost anything. A student's browser
// gets 403 when it tries to fire an event, and sees none of another
// student's borrows. With STATELAB_CLASS_SCREENSHOTS=dir it saves the
// projector (1280×720) and a student's page (390×844) there.
func TestClassInBrowsers(t *testing.T) {
	chromium := labtest.Chromium(t)
	bin := labtest.Binary(t)
	sc, err := scenario.Parse([]byte(classScenario), "class.yaml")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	lab, cl := startClassLab(t, bin, sc, 2)
	browser := newBrowser(t, chromium)

	proj := newIncognito(t, browser, projectorW, projectorH)
	exceptions := watchExceptions(proj)
	if err := chromedp.Do(proj, chromedp.Navigate(lab.url+"?view=projector&teacher="+cl.TeacherToken())); err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1f s: the lab and the browser are up", time.Since(began).Seconds())
	waitIn(t, proj, "the projector's class panel with the code and the Next button", 30*time.Second, fmt.Sprintf(`
		!document.querySelector('#class-panel').hidden && document.querySelector('.class-code').textContent === %q &&
		!document.querySelector('#btn-next').hidden && location.search === '?view=projector'`, cl.Code()))

	// The five join and fill their carts at the same time, as a room does.
	students := make([]*student, len(classNames))
	for i, name := range classNames {
		students[i] = &student{name: name, ctx: newIncognito(t, browser, 390, 844)}
	}
	var wg sync.WaitGroup
	for i, s := range students {
		wg.Go(func() {
			if err := s.enter(lab.url, cl.Code(), i == 0); err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%.1f s: the five students are in, signed in on both sides, a book in each cart", time.Since(began).Seconds())
	for _, s := range students {
		t.Logf("%s: session on %s", s.name, s.replica)
		if w := evalIn(t, s.ctx, `String(document.documentElement.scrollWidth)`); w != "390" {
			wide := evalIn(t, s.ctx, `[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391)
				.slice(0, 8).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ')`)
			t.Errorf("%s's page is %s px wide at 390: it scrolls sideways (%s)", s.name, w, wide)
		}
	}
	var wantLost []string
	for _, s := range students {
		if s.replica == "memory-sticky-1" {
			wantLost = append(wantLost, s.name)
		}
	}
	waitIn(t, proj, "the panel to count 5 students signed in on both sides", 15*time.Second, `
		document.querySelector('.class-count').dataset.students === '5' &&
		[...document.querySelectorAll('.class-sides tbody tr')].every((tr) => tr.querySelector('[data-k="signed-in"]').textContent === '5')`)

	// A student's browser cannot fire an event.
	if got := evalIn(t, students[1].ctx, `fetch('/api/control/next', {method: 'POST'}).then((r) => String(r.status))`); got != "403" {
		t.Errorf("a student's POST /api/control/next: %s, want 403", got)
	}
	// Nor see another student's borrows: Ada borrows, Björn lists his.
	ada, bjorn := students[0], students[1]
	ak := `document.querySelector('.side[data-side="apikey"]')`
	evalIn(t, ada.ctx, `(() => { `+ak+`.querySelectorAll('.results [data-act="borrow"]')[4].click(); return ''; })()`)
	waitIn(t, ada.ctx, "Ada's borrow", 10*time.Second, ak+`.querySelector('.msg').textContent.startsWith('Borrowed')`)
	evalIn(t, ada.ctx, `(() => { `+ak+`.querySelector('[data-act="borrows"]').click(); return ''; })()`)
	waitIn(t, ada.ctx, "Ada's borrows", 10*time.Second, ak+`.querySelectorAll('.borrows li').length === 1`)
	evalIn(t, bjorn.ctx, `(() => { `+ak+`.querySelector('[data-act="borrows"]').click(); return ''; })()`)
	if got := waitIn(t, bjorn.ctx, "Björn's borrows", 10*time.Second, ak+`.querySelector('.msg').textContent.includes('out,') && `+ak+`.querySelector('.msg').textContent`); !strings.HasPrefix(got, "0 books out") {
		t.Errorf("Björn's borrows: %q, want none (Ada's are hers)", got)
	}

	// The teacher fires the restart from the projector.
	t.Logf("%.1f s: the teacher presses Next event", time.Since(began).Seconds())
	evalIn(t, proj, `(() => { document.querySelector('#btn-next').click(); return ''; })()`)
	for _, s := range students {
		ms := `document.querySelector('.verdict[data-side="memory-sticky"]')`
		got := waitIn(t, s.ctx, s.name+"'s verdicts", 30*time.Second, `
			(() => { const v = [...document.querySelectorAll('.verdict')];
			  return v.length === 2 && v.every((e) => !e.hidden && ['lost', 'kept'].includes(e.dataset.verdict)) ?
			    v.map((e) => e.dataset.side + '=' + e.dataset.verdict + ': ' + e.textContent).join(' | ') : ''; })()`)
		t.Logf("%s: %s", s.name, got)
		verdict := evalIn(t, s.ctx, ms+`.dataset.verdict`)
		text := evalIn(t, s.ctx, ms+`.textContent`)
		if lost := slices.Contains(wantLost, s.name); lost {
			if verdict != "lost" || !strings.Contains(text, "Your session was on memory-sticky-1, which restarted: you must sign in again and your cart (1 book) is gone") {
				t.Errorf("%s, whose session was on memory-sticky-1: %s %q", s.name, verdict, text)
			}
		} else if verdict != "kept" || !strings.Contains(text, "nothing happened to your session") {
			t.Errorf("%s, whose session was on %s: %s %q", s.name, s.replica, verdict, text)
		}
		if v := evalIn(t, s.ctx, `document.querySelector('.verdict[data-side="apikey"]').dataset.verdict`); v != "kept" {
			t.Errorf("%s's API key: %s, want kept", s.name, v)
		}
	}
	t.Logf("%.1f s: every student's page has said what happened to them", time.Since(began).Seconds())
	panel := waitIn(t, proj, "the panel to list the students who lost their sign-in", 15*time.Second, fmt.Sprintf(`
		(() => {
			const row = (side) => document.querySelector('.class-sides tr[data-side="' + side + '"]');
			const ms = row('memory-sticky'), ak = row('apikey');
			if (!ms || !ak || ms.querySelector('.unheard') || +ms.querySelector('[data-k="lost"]').dataset.n !== %d) return '';
			return JSON.stringify({
				lost: [...ms.querySelectorAll('[data-k="lost"] .name')].map((e) => e.textContent),
				carts: ms.querySelector('[data-k="carts"]').textContent,
				akLost: ak.querySelector('[data-k="lost"]').dataset.n,
				akCarts: ak.querySelector('[data-k="carts"]').textContent,
				tags: document.querySelectorAll('#class-panel .name b').length,
			});
		})()`, len(wantLost)))
	var got struct {
		Lost                   []string
		Carts, AkLost, AkCarts string
		Tags                   int
	}
	if err := json.Unmarshal([]byte(panel), &got); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got.Lost)
	slices.Sort(wantLost)
	if !slices.Equal(got.Lost, wantLost) || got.Carts != fmt.Sprint(len(wantLost)) {
		t.Errorf("the projector lists %q with %s carts lost; want exactly %q, whose sessions were on memory-sticky-1", got.Lost, got.Carts, wantLost)
	}
	if got.AkLost != "0" || got.AkCarts != "0" {
		t.Errorf("the projector's apikey row: %s lost, %s carts; want 0 and 0", got.AkLost, got.AkCarts)
	}
	if got.Tags != 0 {
		t.Errorf("a student's name became markup on the projector")
	}
	// The projector view still fits 1280×720 with the panel.
	if fit := evalIn(t, proj, `(() => { const r = document.querySelector('#class-panel').getBoundingClientRect();
		return r.bottom <= innerHeight && document.documentElement.scrollHeight <= innerHeight ? 'fits' : 'panel bottom ' + r.bottom + ', page ' + document.documentElement.scrollHeight; })()`); fit != "fits" {
		t.Errorf("the projector view at 1280×720 with the class panel: %s", fit)
	}
	if ex := exceptions(); len(ex) > 0 {
		t.Errorf("the projector threw: %v", ex)
	}

	if dir := os.Getenv("STATELAB_CLASS_SCREENSHOTS"); dir != "" {
		time.Sleep(1500 * time.Millisecond) // one more poll at the final layout
		shot := func(ctx context.Context, name string) {
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		shot(proj, "class-projector.png")
		for _, s := range students {
			if slices.Contains(wantLost, s.name) {
				shot(s.ctx, "student.png")
				break
			}
		}
	}
}

// student is one student's browser context.
type student struct {
	name    string
	ctx     context.Context
	replica string // the memory-sticky replica that holds the session
}

// enter has the student open the join page, join (with a wrong code
// first when typo is set: the page must refuse it), sign in on both
// sides and put a book in each side's cart, and notes the replica that
// holds the session.
func (s *student) enter(base, code string, typo bool) error {
	page := base + "join?code=" + code
	if typo {
		page = base + "join"
	}
	if err := chromedp.Do(s.ctx, chromedp.Navigate(page)); err != nil {
		return err
	}
	steps := []struct{ do, until string }{
		{``, `!document.querySelector('#join').hidden`},
	}
	if typo {
		steps = append(steps,
			struct{ do, until string }{fmt.Sprintf(`document.querySelector('#name').value = %q; document.querySelector('#code').value = 'ZZZZZZ';
				document.querySelector('#join-form').requestSubmit();`, s.name),
				`document.querySelector('#join-error').textContent.includes("not this class's code") && document.body.dataset.joined !== 'true'`},
			struct{ do, until string }{fmt.Sprintf(`document.querySelector('#code').value = %q;`, strings.ToLower(code)), `true`})
	} else {
		steps = append(steps, struct{ do, until string }{fmt.Sprintf(`document.querySelector('#name').value = %q;`, s.name), `true`})
	}
	steps = append(steps, struct{ do, until string }{`document.querySelector('#join-form').requestSubmit();`,
		`document.body.dataset.joined === 'true' && document.querySelectorAll('.side').length === 2`})
	for i, side := range []string{"memory-sticky", "apikey"} {
		col := fmt.Sprintf(`document.querySelector('.side[data-side=%q]')`, side)
		steps = append(steps,
			struct{ do, until string }{col + `.querySelector('[data-act="signin"]').click();`, col + `.querySelector('.status').dataset.signedIn === 'true'`},
			struct{ do, until string }{col + `.querySelector('form.search').requestSubmit();`, col + `.querySelectorAll('.results li').length > 4`},
			struct{ do, until string }{fmt.Sprintf(`%s.querySelectorAll('.results [data-act="add"]')[%d].click();`, col, i), col + `.querySelectorAll('.cart li').length === 1`})
	}
	for _, st := range steps {
		if st.do != "" {
			if _, err := chromedp.Run(s.ctx, chromedp.Evaluate[any](`(() => { `+st.do+` return null; })()`)); err != nil {
				return fmt.Errorf("%s: %w", st.do, err)
			}
		}
		if _, err := chromedp.Run(s.ctx, chromedp.Poll[any](st.until, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			text, _ := chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 1500)`))
			return fmt.Errorf("after %q, waiting for %s: %w\npage:\n%s", st.do, st.until, err, text)
		}
	}
	var err error
	s.replica, err = chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.querySelector('.side[data-side="memory-sticky"] .status').dataset.replica`))
	return err
}

// startClassLab runs a --class --manual comparison in this process, on
// free ports, with the pages mounted, held up until the test ends.
func startClassLab(t *testing.T, bin string, sc scenario.Scenario, users int) (*lab, *class.Class) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sides, err := strategy.ParsePair("memory-sticky,apikey")
	if err != nil {
		t.Fatal(err)
	}
	r, err := compare.New(ctx, compare.Config{
		Binary: bin, Scenario: sc, Sides: sides, Users: users, Seed: 1, Think: 150 * time.Millisecond,
		Addr: ln.Addr().String(), BalancerAddrs: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		ReportDir: filepath.Join(dir, "report"), WorkDir: filepath.Join(dir, "work"), Hold: true, Manual: true, Class: true,
		Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Dashboard: web.Handler(),
	})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	l := &lab{url: "http://" + ln.Addr().String() + "/", cancel: cancel, done: make(chan error, 1)}
	go func() {
		_, err := r.Run(ctx, ln)
		l.done <- err
	}()
	t.Cleanup(func() { l.stop(t) })
	return l, r.Class()
}

// newBrowser starts one headless Chromium for many browser contexts.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// newIncognito opens a tab of the given size in a browser context of its
// own: cookies, storage and cache apart from every other, as a separate
// person's browser.
func newIncognito(t *testing.T, browser context.Context, width, height int64) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	return ctx
}

// waitIn polls a JavaScript expression in the page until it is truthy and
// returns its value as text; on a timeout it says what the page shows.
func waitIn(t *testing.T, ctx context.Context, what string, timeout time.Duration, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[any](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 1500)`))
		t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, text)
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// evalIn evaluates an expression (awaiting a promise) and returns it as
// text.
func evalIn(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}
