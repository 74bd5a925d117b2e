package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/web"
)

// The projector view's promises, for the back row of a classroom.
const (
	projectorW, projectorH = 1280, 720
	minLabelPx             = 18  // every label and caption
	minTotalPx             = 28  // the totals
	minChartPx             = 120 // every chart, to carry to the back row
	maxEmptyPx             = 24  // left empty under the charts
)

// projectorCosts are the two sides' costs the projector's strip shows,
// as the runner's feed gives them.
var projectorCosts = map[string]report.Costs{
	"memory-sticky": {
		UserCosts:   load.UserCosts{RequestBytesMean: 323, CredentialBytesMean: 160, RequestBytesP50: 320, Requests: 600},
		ServerCosts: report.ServerCosts{IdentifyUSP50: 13, Identifications: 500, CPUPerRequestUS: 250, BalancedRequests: 600},
	},
	"apikey": {
		UserCosts:   load.UserCosts{RequestBytesMean: 215, CredentialBytesMean: 97, RequestBytesP50: 210, Requests: 600},
		ServerCosts: report.ServerCosts{IdentifyUSP50: 96, Identifications: 500, CPUPerRequestUS: 180, BalancedRequests: 600, SharedRoundTrips: 500, SharedRoundTripsPerRequest: 1},
	},
}

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
	feed := &fakeFeed{replicas: 4, next: &compare.PendingEvent{Event: scenario.Event{Action: scenario.ActionCrash, Replica: 2}, Index: 2, Of: 5},
		costs: projectorCosts, network: map[string]any{"hosts": "local", "latency_ms": 1, "jitter_ms": 0}, journeys: true}
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
		const box = (e) => { const r = e.getBoundingClientRect(); return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, height: r.height }; };
		const el = (name, e) => {
			if (!e) return { name, missing: true };
			const r = e.getBoundingClientRect();
			return { name, ...box(e), shown: r.width > 0 && r.height > 0 };
		};
		const must = [el('totals', document.querySelector('#totals')), el('cost strip', document.querySelector('#cost-strip')),
			el('what just happened', document.querySelector('.what-box')), el('next event', document.querySelector('#btn-next'))];
		const charts = [];
		for (const chart of ['ok', 'loss', 'sessions']) {
			for (const c of [0, 1]) {
				const cell = document.querySelector('.cell[data-col="' + c + '"][data-chart="' + chart + '"]');
				must.push(el(chart + ' chart, column ' + c, cell));
				const svg = cell && cell.querySelector('.plot > svg');
				if (svg) charts.push({ name: chart + ' chart, column ' + c, height: svg.getBoundingClientRect().height });
			}
		}
		for (const c of [0, 1]) must.push(el('event markers, column ' + c, document.querySelector('.cell[data-col="' + c + '"][data-chart="events"] .marker')));
		// Legends and labels cut short: an ellipsis (the box scrolls), a
		// legend item outside its chart's cell, or any text past the
		// right edge of its cell or of the screen.
		const cut = [];
		for (const v of document.querySelectorAll('.cell:not([hidden]) .cap, .cell:not([hidden]) .cap .v, .cell:not([hidden]) .cap .t')) {
			if (v.scrollWidth > v.clientWidth + 1) cut.push('legend ' + JSON.stringify(v.textContent.trim()) + ' is cut: ' + v.scrollWidth + ' px in ' + v.clientWidth);
		}
		for (const cell of document.querySelectorAll('.cell:not([hidden])')) {
			const cr = cell.getBoundingClientRect();
			for (const t of cell.querySelectorAll('.legend-item, svg text')) {
				const r = t.getBoundingClientRect();
				if (r.width > 0 && (r.right > cr.right + 1 || r.right > vw)) cut.push(JSON.stringify(t.textContent.trim()) + ' ends at ' + Math.round(r.right) + ', past its chart (' + Math.round(cr.right) + ')');
			}
		}
		for (const t of document.querySelectorAll('.top button, .top span, #totals th, #totals td, #cost-strip th, #cost-strip td, .what-box')) {
			const r = t.getBoundingClientRect();
			if (r.width > 0 && r.right > vw) cut.push(JSON.stringify(t.textContent.trim().slice(0, 30)) + ' ends at ' + Math.round(r.right) + ', past the screen');
		}
		// Every piece of text inside what must be shown, and its size.
		const small = [];
		const texts = document.querySelectorAll('.top *, #totals th, #cost-strip *, .what-box *, .col-head h2, .cell:not([hidden]) .cap, .cell:not([hidden]) svg text, .chart-caption:not([hidden])');
		for (const t of texts) {
			if (!t.textContent.trim() || t.closest('[hidden]') || getComputedStyle(t).display === 'none') continue;
			const px = parseFloat(getComputedStyle(t).fontSize);
			if (px < `+fmt.Sprint(minLabelPx)+`) small.push(t.tagName + ' ' + JSON.stringify(t.textContent.trim().slice(0, 30)) + ' ' + px + 'px');
		}
		const totals = [...document.querySelectorAll('#totals td')].map((td) => ({ k: td.dataset.k, text: td.textContent, px: parseFloat(getComputedStyle(td).fontSize) }));
		const heads = [...document.querySelectorAll('#totals thead th[data-k]')].map((th) => th.textContent);
		const strip = [...document.querySelectorAll('#cost-strip tr')].map((tr) => ({ side: tr.dataset.side, text: tr.textContent.replace(/\s+/g, ' ').trim(), height: tr.getBoundingClientRect().height,
			line: parseFloat(getComputedStyle(tr).lineHeight) || 1.2 * parseFloat(getComputedStyle(tr).fontSize) }));
		const hiddenCharts = ['errors', 'latency', 'up'].filter((c) => {
			const e = document.querySelector('.cell[data-chart="' + c + '"]');
			return e && e.getBoundingClientRect().height > 0;
		});
		const captions = [...document.querySelectorAll('.chart-caption')].filter((c) => c.getBoundingClientRect().height > 0).length;
		return { vw, vh, scrollW: document.documentElement.scrollWidth, scrollH: document.documentElement.scrollHeight, must, charts, cut, small, totals, heads, strip,
			hiddenCharts, captions, bottom: document.querySelector('#grid').getBoundingClientRect().bottom,
			net: ((n) => (n && !n.hidden ? n.textContent : ''))(document.querySelector('#net')),
			okTitle: ((t) => (t ? t.textContent : ''))(document.querySelector('.cell[data-col="0"][data-chart="ok"] .cap .t')) };
	})())`)
	var page struct {
		VW, VH, ScrollW, ScrollH float64
		Must                     []struct {
			Name                     string
			Missing, Shown           bool
			Left, Top, Right, Bottom float64
		}
		Charts []struct {
			Name   string
			Height float64
		}
		Cut, Small []string
		Totals     []struct {
			K, Text string
			PX      float64
		}
		Heads []string
		Strip []struct {
			Side, Text   string
			Height, Line float64
		}
		HiddenCharts []string
		Captions     int
		Bottom       float64
		Net, OKTitle string
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
	// Charts that carry to the back row: tall enough, nothing cut, and the
	// screen's height used, not left empty under them.
	if len(page.Charts) != 6 {
		t.Errorf("%d charts drawn, want 3 a side", len(page.Charts))
	}
	for _, c := range page.Charts {
		if c.Height < minChartPx {
			t.Errorf("%s is %.0f px tall, want at least %d", c.Name, c.Height, minChartPx)
		}
	}
	for _, c := range page.Cut {
		t.Errorf("cut short: %s", c)
	}
	if empty := page.VH - page.Bottom; empty > maxEmptyPx {
		t.Errorf("the charts end at %.0f px: %.0f px empty under them, want at most %d", page.Bottom, empty, maxEmptyPx)
	}
	for _, s := range page.Small {
		t.Errorf("text smaller than %d px: %s", minLabelPx, s)
	}
	if page.Captions != 0 {
		t.Errorf("%d chart captions shown: the projector leaves the sentences to the teacher", page.Captions)
	}
	if len(page.HiddenCharts) > 0 {
		t.Errorf("the projector view shows %v too: it keeps three charts", page.HiddenCharts)
	}

	// Outcomes first: what the users got done and who had to sign in again,
	// large; the requests a second, secondary and labelled so.
	if want := []string{"journeys done", "borrows / s", "signed in again", "sessions lost"}; !slices.Equal(page.Heads, want) {
		t.Errorf("the totals' headings are %q, want %q", page.Heads, want)
	}
	if len(page.Totals) != 2*len(page.Heads) {
		t.Errorf("%d totals under %d headings, want every heading's total for both sides", len(page.Totals), len(page.Heads))
	}
	for _, td := range page.Totals {
		if td.PX < minTotalPx {
			t.Errorf("the total %s is %v px, want at least %d", td.K, td.PX, minTotalPx)
		}
		// The fake feed counts 2 journeys and 3 borrows a second.
		switch td.K {
		case "journeys_completed":
			if td.Text != "60" {
				t.Errorf("journeys done shows %q 30 s in, want 60", td.Text)
			}
		case "borrows_per_s":
			if td.Text != "3" {
				t.Errorf("borrows / s shows %q, want 3", td.Text)
			}
		}
	}
	if page.OKTitle != "Successful requests / s (secondary)" {
		t.Errorf("the first chart is titled %q; want the requests a second said to be secondary", page.OKTitle)
	}

	// One line a side of what it pays per request.
	wantStrip := map[string][]string{
		"memory-sticky": {"323 B (credential 160 B)", "identify 13 µs", "CPU 250 µs", "0 shared round trips"},
		"apikey":        {"215 B (credential 97 B)", "identify 96 µs", "CPU 180 µs", "1.0 shared round trips"},
	}
	if len(page.Strip) != 2 {
		t.Errorf("the cost strip has %d lines, want one a side", len(page.Strip))
	}
	for _, line := range page.Strip {
		for _, w := range wantStrip[line.Side] {
			if !strings.Contains(line.Text, w) {
				t.Errorf("the cost strip's %s line %q does not say %q", line.Side, line.Text, w)
			}
		}
		if line.Height > 1.5*line.Line {
			t.Errorf("the cost strip's %s line is %.0f px tall: more than one line of %.0f px", line.Side, line.Height, line.Line)
		}
	}
	if page.Net != "links +1.0 ms" {
		t.Errorf("the projector says %q of the network, want the links' latency", page.Net)
	}

	// The teacher's button fires the waiting event.
	if got := evalString(t, ctx, `document.querySelector('#btn-next').textContent`); got != "▶ Next: crash (2 of 5)" {
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

	// A line too long for two lines (a crash beside a side whose replicas
	// each sign with their own secret) drops its title and takes the
	// smaller type; the charts give up what they must, and the page still
	// does not scroll.
	long := pair(t, "memory-sticky,jwt+own-secrets")
	feed.Set(long, on(14, "crash", long, map[string]float64{"memory-sticky": 12}))
	waitFor(t, ctx, "the long line", 15*time.Second, `document.querySelector('#what').textContent.startsWith('at 14 s') &&
		+document.querySelector('.cell[data-col="1"][data-chart="ok"] .plot > svg').dataset.n >= 3`)
	time.Sleep(1500 * time.Millisecond) // one more poll, at the final layout
	got = evalString(t, ctx, `JSON.stringify({
		tight: document.querySelector('.what-box').classList.contains('tight'),
		scrollH: document.documentElement.scrollHeight,
		what: document.querySelector('#what').textContent,
		heights: [...document.querySelectorAll('.cell:not([hidden]) .plot > svg')].filter((s) => s.closest('.cell').dataset.chart !== 'events').map((s) => s.getBoundingClientRect().height),
	})`)
	var tight struct {
		Tight   bool
		ScrollH float64
		What    string
		Heights []float64
	}
	if err := json.Unmarshal([]byte(got), &tight); err != nil {
		t.Fatal(err)
	}
	t.Logf("a long line: %+v", tight)
	if !tight.Tight {
		t.Errorf("the line %q kept its title and its size", tight.What)
	}
	if tight.ScrollH > projectorH {
		t.Errorf("with a long line the page is %v px tall: it scrolls", tight.ScrollH)
	}
	if ex := exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %v", ex)
	}
}

// TestFullView: in the full view, one sentence under every pair of charts
// says what it shows and why it moves; the totals put what the users got
// done first and the traffic after it, as secondary, with "—" for what the
// runner does not count (a runner before journeys_completed); the header
// says what lies between the processes, and each side lists where its
// replicas listen and their links; the projector view button is there.
func TestFullView(t *testing.T) {
	chromium := labtest.Chromium(t)
	sides := pair(t, "memory-sticky,apikey")
	feed := &fakeFeed{network: map[string]any{"hosts": "netns", "subnet": "198.18.0.0/24", "latency_ms": 2, "jitter_ms": 0.5}}
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

	// Outcomes first, then the traffic, labelled secondary. The fake feed
	// sends 20 requests and 3 borrows a second, and no journeys_completed.
	got = waitFor(t, ctx, "the totals' rates", 10*time.Second, `
		(() => {
			const td = (k) => document.querySelector('#totals tr[data-col="0"] td[data-k="' + k + '"]').textContent;
			return td('borrows_per_s') === '–' ? '' : JSON.stringify({
				heads: [...document.querySelectorAll('#totals thead th[data-k]')].map((th) => th.textContent),
				groups: [...document.querySelectorAll('#totals thead tr.groups th[colspan]')].map((th) => th.textContent + ' ' + th.colSpan),
				journeys: td('journeys_completed'), borrows: td('borrows_per_s'), requests: td('requests_per_s'),
				secondary: getComputedStyle(document.querySelector('#totals td[data-k="requests_per_s"]')).fontSize,
				headline: getComputedStyle(document.querySelector('#totals td[data-k="borrows_per_s"]')).fontSize,
				strip: !document.querySelector('#cost-strip').hidden,
			});
		})()`)
	var totals struct {
		Heads, Groups               []string
		Journeys, Borrows, Requests string
		Secondary, Headline         string
		Strip                       bool
	}
	if err := json.Unmarshal([]byte(got), &totals); err != nil {
		t.Fatal(err)
	}
	want := []string{"journeys done", "borrows / s", "signed in again", "sessions lost", "cart items lost", "requests / s", "requests", "availability", "timeouts", "saved by a retry"}
	if !slices.Equal(totals.Heads, want) {
		t.Errorf("the totals' headings are %q, want %q", totals.Heads, want)
	}
	if len(totals.Groups) != 2 || !strings.HasPrefix(totals.Groups[0], "what the users got done") || totals.Groups[1] != "traffic (secondary) 5" {
		t.Errorf("the totals' groups are %q; want what the users got done, then the traffic, secondary", totals.Groups)
	}
	if totals.Journeys != "—" || totals.Borrows != "3" || totals.Requests != "20" {
		t.Errorf("journeys done %q, borrows / s %q, requests / s %q; want —, 3, 20", totals.Journeys, totals.Borrows, totals.Requests)
	}
	px := func(s string) float64 { v, _ := strconv.ParseFloat(strings.TrimSuffix(s, "px"), 64); return v }
	if sec, head := px(totals.Secondary), px(totals.Headline); sec == 0 || sec >= head {
		t.Errorf("requests / s is %s, the headline %s: want the secondary smaller", totals.Secondary, totals.Headline)
	}
	if totals.Strip {
		t.Errorf("the full view shows the projector's cost strip; it has the cost panel")
	}

	// No legend loses its end in the full view either.
	if got := evalString(t, ctx, `JSON.stringify([...document.querySelectorAll('.cell:not([hidden])')].flatMap((cell) => {
		const cr = cell.getBoundingClientRect();
		return [...cell.querySelectorAll('.cap .v, .legend-item')].filter((e) => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > cr.right + 1).map((e) => e.textContent);
	}))`); got != "[]" {
		t.Errorf("legends cut short: %s", got)
	}

	// The network, and where each replica listens.
	if got := evalString(t, ctx, `document.querySelector('#net').textContent`); got != "a host each on 198.18.0.0/24 · links +2.0 ms each way ± 0.5 ms" {
		t.Errorf("the header says %q of the network", got)
	}
	for c, want := range []string{
		"on 127.0.0.1: #1 :41000 (link :42000) · #2 :41001 (link :42001) · #3 :41002 (link :42002)",
		"on 127.0.0.1: #1 :41010 (link :42010) · #2 :41011 (link :42011) · #3 :41012 (link :42012)",
	} {
		if got := evalString(t, ctx, fmt.Sprintf(`document.querySelector('.cell[data-col="%d"][data-chart="up"] .addrs').textContent`, c)); got != want {
			t.Errorf("column %d lists its replicas as %q, want %q", c, got, want)
		}
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
