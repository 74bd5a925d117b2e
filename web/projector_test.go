package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/web"
)

// The projector view's promises, for the back row of a classroom.
const (
	projectorW, projectorH = 1280, 720
	minLabelPx             = 18 // every label and caption
	minTotalPx             = 28 // the totals
)

// TestProjectorView loads ?view=projector at 1280×720, as a classroom
// projector shows it, with the default pair after a scale-out to four
// replicas and a restart, in a manual run, and checks that the totals,
// the "what just happened" line, the three charts (successful requests/s,
// sessions lost/s with the event markers, sessions held per replica), their
// captions and the Next event button all lie inside the viewport with no
// scrolling; that labels are at least 18 px and totals at least 28 px; and
// that Next event posts to the runner.
func TestProjectorView(t *testing.T) {
	chromium := labtest.Chromium(t)
	sides := pair(t, "memory-sticky,apikey")
	feed := &fakeFeed{replicas: 4, next: &compare.PendingEvent{Event: scenario.Event{Action: scenario.ActionCrash, Replica: 2}, Index: 2, Of: 5}}
	feed.Set(sides, on(12, "restart", sides, map[string]float64{"memory-sticky": 12}))
	var nexts atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("GET /api/feed", feed)
	mux.HandleFunc("POST /api/control/next", func(w http.ResponseWriter, r *http.Request) {
		nexts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"success":true,"message":"fired","data":[]}`)
	})
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := newTab(t, chromium, projectorW, projectorH)
	exceptions := watchExceptions(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?view=projector")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the projector view to draw both columns and the restart", 15*time.Second, `
		document.body.classList.contains('projector') &&
		[0, 1].every((c) => {
			const ok = document.querySelector('.cell[data-col="' + c + '"][data-chart="ok"] .plot > svg');
			return ok && +ok.dataset.n >= 3;
		}) && document.querySelector('#what').textContent.startsWith('at 12 s')`)
	// Let one more poll redraw at the final layout.
	time.Sleep(1500 * time.Millisecond)
	if out := os.Getenv("STATELAB_PROJECTOR_DEBUG"); out != "" {
		png, _ := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		_ = os.WriteFile(out, png, 0o644)
	}

	got := evalString(t, ctx, `JSON.stringify((() => {
		const vw = window.innerWidth, vh = window.innerHeight;
		const el = (name, e) => {
			if (!e) return { name, missing: true };
			const r = e.getBoundingClientRect();
			return { name, left: r.left, top: r.top, right: r.right, bottom: r.bottom, shown: r.width > 0 && r.height > 0 };
		};
		const must = [el('totals', document.querySelector('#totals')), el('what just happened', document.querySelector('.what-box')),
			el('next event', document.querySelector('#btn-next'))];
		for (const chart of ['ok', 'loss', 'sessions']) {
			for (const c of [0, 1]) must.push(el(chart + ' chart, column ' + c, document.querySelector('.cell[data-col="' + c + '"][data-chart="' + chart + '"]')));
			must.push(el(chart + ' caption', document.querySelector('.chart-caption[data-chart="' + chart + '"]')));
		}
		for (const c of [0, 1]) must.push(el('event markers, column ' + c, document.querySelector('.cell[data-col="' + c + '"][data-chart="events"] .marker')));
		// Every piece of text inside what must be shown, and its size.
		const small = [];
		const texts = document.querySelectorAll('.top *, #totals th, .what-box *, .col-head h2, .cell:not([hidden]) .cap, .cell:not([hidden]) svg text, .chart-caption:not([hidden])');
		for (const t of texts) {
			if (!t.textContent.trim() || t.closest('[hidden]') || getComputedStyle(t).display === 'none') continue;
			const px = parseFloat(getComputedStyle(t).fontSize);
			if (px < `+fmt.Sprint(minLabelPx)+`) small.push(t.tagName + ' ' + JSON.stringify(t.textContent.trim().slice(0, 30)) + ' ' + px + 'px');
		}
		const totals = [...document.querySelectorAll('#totals td')].map((td) => parseFloat(getComputedStyle(td).fontSize));
		const hiddenCharts = ['errors', 'latency', 'up'].filter((c) => {
			const e = document.querySelector('.cell[data-chart="' + c + '"]');
			return e && e.getBoundingClientRect().height > 0;
		});
		const columns = document.querySelectorAll('#totals thead th').length - 1;
		return { vw, vh, scrollW: document.documentElement.scrollWidth, scrollH: document.documentElement.scrollHeight, must, small, totals, columns, hiddenCharts };
	})())`)
	var page struct {
		VW, VH, ScrollW, ScrollH float64
		Must                     []struct {
			Name                     string
			Missing, Shown           bool
			Left, Top, Right, Bottom float64
		}
		Small        []string
		Totals       []float64
		Columns      int
		HiddenCharts []string
	}
	if err := json.Unmarshal([]byte(got), &page); err != nil {
		t.Fatal(err)
	}
	if page.VW != projectorW || page.VH != projectorH {
		t.Fatalf("the viewport is %v×%v, want %d×%d", page.VW, page.VH, projectorW, projectorH)
	}
	if page.ScrollW > page.VW || page.ScrollH > page.VH {
		t.Errorf("the page is %v×%v: it scrolls in a %v×%v viewport", page.ScrollW, page.ScrollH, page.VW, page.VH)
	}
	for _, e := range page.Must {
		switch {
		case e.Missing:
			t.Errorf("%s: not on the page", e.Name)
		case !e.Shown:
			t.Errorf("%s: not shown", e.Name)
		case e.Left < 0 || e.Top < 0 || e.Right > page.VW || e.Bottom > page.VH:
			t.Errorf("%s lies at (%.0f,%.0f)–(%.0f,%.0f), outside the %v×%v viewport", e.Name, e.Left, e.Top, e.Right, e.Bottom, page.VW, page.VH)
		}
	}
	for _, s := range page.Small {
		t.Errorf("text smaller than %d px: %s", minLabelPx, s)
	}
	if page.Columns < 5 || len(page.Totals) != 2*page.Columns {
		t.Errorf("%d totals under %d headings, want every heading's total for both sides", len(page.Totals), page.Columns)
	}
	for _, px := range page.Totals {
		if px < minTotalPx {
			t.Errorf("a total is %v px, want at least %d", px, minTotalPx)
		}
	}
	if len(page.HiddenCharts) > 0 {
		t.Errorf("the projector view shows %v too: it keeps three charts", page.HiddenCharts)
	}

	// The teacher's button fires the waiting event.
	if got := evalString(t, ctx, `document.querySelector('#btn-next').textContent`); got != "▶ Next event: crash (2 of 5)" {
		t.Errorf("the Next event button says %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("btn-next"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the runner to get POST /api/control/next", 5*time.Second, `true`)
	deadline := time.Now().Add(5 * time.Second)
	for nexts.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if nexts.Load() != 1 {
		t.Errorf("the runner got %d POST /api/control/next, want 1", nexts.Load())
	}
	if ex := exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %v", ex)
	}
}

// TestEveryChartHasACaption: in the full view, one sentence under every
// pair of charts says what it shows and why it moves; the projector view
// button is there.
func TestEveryChartHasACaption(t *testing.T) {
	chromium := labtest.Chromium(t)
	sides := pair(t, "memory-sticky,apikey")
	feed := &fakeFeed{}
	feed.Set(sides, nil)
	mux := http.NewServeMux()
	mux.Handle("GET /api/feed", feed)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := newTab(t, chromium, 1400, 950)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, ctx, "the charts and their captions", 10*time.Second, `
		(() => {
			const charts = [...new Set([...document.querySelectorAll('.cell[data-chart]')].map((c) => c.dataset.chart))].filter((c) => c !== 'events');
			if (charts.length < 6) return '';
			return JSON.stringify(charts.map((c) => {
				const cap = document.querySelector('.chart-caption[data-chart="' + c + '"]');
				const cell = document.querySelector('.cell[data-col="1"][data-chart="' + c + '"]');
				return { chart: c, caption: cap ? cap.textContent : '', below: !!cap && cap.getBoundingClientRect().top >= cell.getBoundingClientRect().bottom - 1 };
			}));
		})()`)
	var caps []struct {
		Chart, Caption string
		Below          bool
	}
	if err := json.Unmarshal([]byte(got), &caps); err != nil {
		t.Fatal(err)
	}
	for _, c := range caps {
		if len(c.Caption) < 40 || c.Caption[len(c.Caption)-1] != '.' || !c.Below {
			t.Errorf("chart %s: caption %q (below it: %v); want one sentence under it", c.Chart, c.Caption, c.Below)
		}
	}
	if got := evalString(t, ctx, `document.querySelector('#btn-view').textContent`); got != "▣ Projector view" {
		t.Errorf("the view button says %q", got)
	}
	if got := evalString(t, ctx, `String(document.querySelector('#btn-next').hidden)`); got != "true" {
		t.Errorf("a run that plays its own clock shows a Next event button (hidden = %s)", got)
	}
}

// TestClockAndPendingMarkers: after the timeline the clock no longer says
// "t = 30 s of 20 s", and an event one side is still carrying out (a drain
// takes a while) is marked as under way, not as "scale in −0".
func TestClockAndPendingMarkers(t *testing.T) {
	chromium := labtest.Chromium(t)
	sides := pair(t, "memory-sticky,apikey")
	feed := &fakeFeed{phase: "holding", duration: 20}
	// The scale-in is recorded on the right side only: the left one is
	// still draining its replica.
	recs := on(25, "scale-in", sides, nil)
	feed.Set(sides, recs[1:])
	mux := http.NewServeMux()
	mux.Handle("GET /api/feed", feed)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := newTab(t, chromium, 1400, 950)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	clock := waitFor(t, ctx, "the clock", 10*time.Second, `document.querySelector('#clock').textContent`)
	if clock != "t = 30 s · the timeline ended at 20 s" {
		t.Errorf("the clock says %q after a 20 s timeline, 30 s in", clock)
	}
	got := waitFor(t, ctx, "the scale-in markers", 10*time.Second, `
		(() => {
			const l = document.querySelector('.cell[data-col="0"][data-chart="events"] .marker[data-kind="scale-in"] text');
			const r = document.querySelector('.cell[data-col="1"][data-chart="events"] .marker[data-kind="scale-in"] text');
			return l && r ? l.textContent + '|' + r.textContent : '';
		})()`)
	left, right, _ := strings.Cut(got, "|")
	if left != "▼ scale in…" {
		t.Errorf("the side still draining is marked %q, want it under way", left)
	}
	if right != "▼ scale in −1" {
		t.Errorf("the side done is marked %q, want the one replica it removed", right)
	}
}
