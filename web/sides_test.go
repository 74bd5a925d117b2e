package web_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/web"
)

// feedBody is what GET /api/feed answers; Sides is empty in a feed from
// before strategies, which the page must still draw.
type feedBody struct {
	Scenario  string                `json:"scenario"`
	DurationS float64               `json:"duration_s"`
	Users     int                   `json:"users"`
	Sides     []strategy.Strategy   `json:"sides,omitempty"`
	Now       compare.Sample        `json:"now"`
	Events    []report.EventRecord  `json:"events"`
	History   []compare.Sample      `json:"history"`
	Manual    bool                  `json:"manual"`
	Next      *compare.PendingEvent `json:"next,omitempty"`
	// Kinds words the events, as the runner's feed does.
	Kinds []scenario.Kind `json:"kinds"`
	// Network is what lies between the processes: a map, so a test can
	// give the fields branches add (hosts, subnet) before report.Network
	// has them.
	Network map[string]any `json:"network,omitempty"`
	// Class is a --class run's students; the student page shows its join
	// form only when the feed has one.
	Class *class.Feed `json:"class,omitempty"`
}

// pair returns the two strategies of "A,B", as statelab compare --sides
// reads them.
func pair(t *testing.T, sides string) []strategy.Strategy {
	t.Helper()
	p, err := strategy.ParsePair(sides)
	if err != nil {
		t.Fatal(err)
	}
	return p[:]
}

// legacy stands for a runner from before strategies: its feed has no
// "sides", and the page falls back to the two sides such a runner ran.
var legacy = []strategy.Strategy{
	{Name: "stateful", Server: strategy.Stateful, Sessions: strategy.SessionsMemory},
	{Name: "stateless", Server: strategy.Stateless},
}

// fakeFeed is a test double of the runner's feed: a fixed 30 seconds of a
// run of two sides with three replicas each, and the events the test
// gives it. Set swaps the whole run, as a runner started again would.
type fakeFeed struct {
	mu     sync.Mutex
	sides  []strategy.Strategy
	events []report.EventRecord
	// replicas per side; 0 is 3.
	replicas int
	// next, when set, makes the feed a manual run's, waiting on it.
	next *compare.PendingEvent
	// phase of every sample ("" is running) and the scenario's duration
	// (0 is 120 s).
	phase    string
	duration float64
	// costs, when set, gives each side's costs in the newest sample, as
	// the runner's feed does (its history carries none).
	costs map[string]report.Costs
	// network, when set, is the feed's network, and every replica has a
	// link of its own.
	network map[string]any
	// journeys, when set, makes every sample count the journeys its users
	// completed (journeys_completed): 2 a second; unset, the feed has no
	// such count, as a runner from before load.Totals had it.
	journeys bool
}

func (f *fakeFeed) Set(sides []strategy.Strategy, events []report.EventRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sides, f.events = sides, events
}

const fakeElapsed = 30

func (f *fakeFeed) sample(at float64) compare.Sample {
	s := compare.Sample{ElapsedS: at, Phase: cmp.Or(f.phase, "running"), Sides: map[string]compare.SideSample{}}
	n := int64(at)
	for j, sd := range f.sides {
		var ss compare.SideSample
		ss.Requests, ss.OK, ss.Availability = 20*n, 20*n, 1
		ss.Borrows = 3 * n
		ss.LatencyWindowMS = &load.Percentile{P50: 2, P95: 5, P99: 9}
		for i := range cmp.Or(f.replicas, 3) {
			rep := compare.ReplicaInfo{ID: fmt.Sprintf("%s-%d", sd.Name, i+1), Addr: "127.0.0.1:1", PID: 1000 + i}
			if f.network != nil {
				rep.Addr, rep.Link = fmt.Sprintf("127.0.0.1:%d", 41000+10*j+i), fmt.Sprintf("127.0.0.1:%d", 42000+10*j+i)
			}
			// Every replica's CPU, as its cgroup (or process) counts it.
			cores := 0.05 * float64(i+1)
			rep.CPUCores = &cores
			// Only a replica that keeps sessions in its memory counts them.
			if sd.HoldsSessionsInProcess() {
				v, u := float64(10+i), float64(8+i)
				rep.Sessions, rep.SessionsInUse = &v, &u
			}
			ss.Replicas = append(ss.Replicas, rep)
		}
		s.Sides[sd.Name] = ss
	}
	return s
}

func (f *fakeFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	since, _ := strconv.ParseFloat(r.URL.Query().Get("history"), 64)
	body := feedBody{Scenario: "fake", DurationS: cmp.Or(f.duration, 120), Users: 10, Now: f.sample(fakeElapsed), Events: f.events, History: []compare.Sample{},
		Manual: f.next != nil, Next: f.next, Kinds: scenario.Kinds, Network: f.network}
	for name, c := range f.costs {
		ss := body.Now.Sides[name]
		ss.Costs = &c
		body.Now.Sides[name] = ss
	}
	if f.sides[0].Name != legacy[0].Name {
		body.Sides = f.sides
	}
	for at := 0.0; at <= fakeElapsed; at++ {
		if at > since {
			body.History = append(body.History, f.sample(at))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(withJourneys(body, f.journeys))
}

// withJourneys returns the feed with journeys_completed in every side of
// every sample, 2 a second, as load.Totals counts them, or, unless counted,
// without it, as a runner from before the count: set or taken out in the
// JSON, so the test means the same whether load.Totals has the field or not.
func withJourneys(body feedBody, counted bool) map[string]any {
	b, _ := json.Marshal(body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	samples := []any{m["now"]}
	if h, ok := m["history"].([]any); ok {
		samples = append(samples, h...)
	}
	for _, s := range samples {
		s := s.(map[string]any)
		for _, ss := range s["sides"].(map[string]any) {
			if counted {
				ss.(map[string]any)["journeys_completed"] = 2 * int(s["elapsed_s"].(float64))
			} else {
				delete(ss.(map[string]any), "journeys_completed")
			}
		}
	}
	return m
}

// on returns one event at second at, as the runner records it: a record
// per side, on replica 1 of each (replica 3 for a scale-in; for a store
// restart, the redis-server or none, each side's words before the
// scenario's note).
func on(at float64, kind string, sides []strategy.Strategy, held map[string]float64) []report.EventRecord {
	const note = "the scenario's note"
	var recs []report.EventRecord
	for _, sd := range sides {
		rec := report.EventRecord{AtS: at, Kind: kind, Side: sd.Name, Replica: sd.Name + "-1", TookMS: 300, Source: "scenario", Note: note}
		switch kind {
		case "scale-in":
			rec.Replica = sd.Name + "-3"
		case "restart-store":
			rec.Replica = "redis-server"
			rec.Note = "redis-server restarted without persistence: every session it held is gone; " + note
			if !sd.NeedsRedis() {
				rec.Replica = ""
				rec.Note = "no session store to restart: " + sd.Where + "; " + note
			}
		}
		if v, ok := held[sd.Name]; ok {
			rec.SessionsHeld = &v
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestDashboardSides feeds the page pairs of strategies and checks that it
// follows the feed's sides: the column headings name them, the sessions
// strip is drawn for the side whose replicas count sessions, and "what just
// happened" says what an event cost each side from where that side keeps
// its sessions, not from its name.
func TestDashboardSides(t *testing.T) {
	chromium := labtest.Chromium(t)
	feed := &fakeFeed{}
	mux := http.NewServeMux()
	mux.Handle("GET /api/feed", feed)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name   string
		sides  []strategy.Strategy
		kind   string
		held   map[string]float64
		inUse  map[string]float64
		want   []string // in the what-just-happened line, in this order
		strips [2]bool  // a counted sessions strip, per column
	}{
		{
			name: "memory-sticky vs apikey, crash", sides: pair(t, "memory-sticky,apikey"), kind: "crash",
			held: map[string]float64{"memory-sticky": 12},
			want: []string{
				"replica memory-sticky-1 was killed (SIGKILL) and started again: 12 sessions were lost with it",
				"replica apikey-1 was killed (SIGKILL) and started again: it holds no sessions, so nothing was lost",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "memory-sticky vs apikey, crash not counted", sides: pair(t, "memory-sticky,apikey"), kind: "crash",
			want: []string{
				"replica memory-sticky-1 was killed (SIGKILL) and started again: the sessions it held went with it (how many was not counted",
				"replica apikey-1 was killed (SIGKILL) and started again: it holds no sessions, so nothing was lost",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "redis vs jwt with own secrets, restart", sides: pair(t, "redis,jwt+own-secrets"), kind: "restart",
			want: []string{
				"replica redis-1 restarted: sessions live outside the process, in the shared redis-server, so nothing went with it",
				"replica jwt+own-secrets-1 restarted: it holds no sessions, so nothing was lost (and each replica signs with its own secret",
			},
		},
		{
			name: "redis vs cookie, restart-store", sides: pair(t, "redis,cookie"), kind: "restart-store",
			want: []string{
				"(the scenario: the scenario's note) — ",
				"redis: the shared redis-server restarted: every session in redis was lost",
				"cookie: no session store to restart: each session is sealed in its client’s cookie",
			},
		},
		{
			name: "memory-hash vs apikey, restart-store", sides: pair(t, "memory-hash,apikey"), kind: "restart-store",
			want: []string{
				"memory-hash: no session store to restart: each replica holds its sessions in its own memory",
				"apikey: no session store to restart: its replicas hold no sessions; each request carries its API key",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "memory vs cookie, scale-in", sides: pair(t, "memory,cookie"), kind: "scale-in",
			want: []string{
				"memory-3 was removed: 12 sessions held there went with it",
				"cookie-3 was removed: sessions live outside the process, sealed in each client’s cookie, so nothing went with it",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "memory-sticky vs apikey, restart with sessions in use", sides: pair(t, "memory-sticky,apikey"), kind: "restart",
			held: map[string]float64{"memory-sticky": 12}, inUse: map[string]float64{"memory-sticky": 9},
			want: []string{
				"replica memory-sticky-1 restarted: 9 sessions in use were lost with it (and 3 idle, left behind by earlier sign-ins)",
				"replica apikey-1 restarted: it holds no sessions, so nothing was lost",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "memory vs apikey, scale-in counted after the drain", sides: pair(t, "memory,apikey"), kind: "scale-in",
			held: map[string]float64{"memory": 7}, inUse: map[string]float64{"memory": 7},
			want: []string{
				"memory-3 was removed: 7 sessions in use went with it",
				"apikey-3 was removed: it holds no sessions, so nothing was lost",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "a feed without sides", sides: legacy, kind: "restart",
			held: map[string]float64{"stateful": 5},
			want: []string{
				"replica stateful-1 restarted: 5 sessions were lost with it",
				"replica stateless-1 restarted: it holds no sessions, so nothing was lost",
			},
			strips: [2]bool{true, false},
		},
	}

	feed.Set(tests[0].sides, nil)
	ctx := newTab(t, chromium, 1400, 950)
	exceptions := watchExceptions(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	// One page for every case: a Set with other sides is a runner started
	// again, which the page must notice on its own. Each case's event has a
	// second of its own, so the page is known to show this case's.
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := 10 + i
			recs := on(float64(at), tt.kind, tt.sides, tt.held)
			for i := range recs {
				if v, ok := tt.inUse[recs[i].Side]; ok {
					recs[i].SessionsInUse = &v
				}
			}
			feed.Set(tt.sides, recs)
			want := []string{tt.sides[0].Name, tt.sides[1].Name}
			wantJS, _ := json.Marshal(want)
			waitFor(t, ctx, "the columns to be "+strings.Join(want, " and "), 10*time.Second, fmt.Sprintf(`
				(() => {
					const want = %s;
					const heads = [...document.querySelectorAll('.col-head')].map((h) => h.querySelector('h2').textContent);
					const rows = [...document.querySelectorAll('#totals tbody tr')].map((r) => r.querySelector('.side-tag').textContent);
					const drawn = document.querySelector('.cell[data-col="1"][data-chart="ok"] .plot > svg');
					return JSON.stringify(heads) === JSON.stringify(want) && JSON.stringify(rows) === JSON.stringify(want) &&
						drawn && +drawn.dataset.n >= 3 && document.querySelector('#what').textContent.startsWith('at %d s');
				})()`, wantJS, at))

			for i, sd := range tt.sides {
				if sd.Where == "" {
					continue
				}
				got := evalString(t, ctx, fmt.Sprintf(`document.querySelector('.col-head[data-col="%d"] span').textContent`, i))
				if got != sd.Where {
					t.Errorf("column %d says %q under its name, want %q", i, got, sd.Where)
				}
			}
			for i, want := range tt.strips {
				got := evalString(t, ctx, fmt.Sprintf(`(() => {
					const svg = document.querySelector('.cell[data-col="%d"][data-chart="sessions"] .plot > svg');
					const strips = [...svg.querySelectorAll('.strip')];
					return svg.dataset.counted + ' ' + strips.length + ' ' + strips.map((g) => g.dataset.last).join(',');
				})()`, i))
				counted, rest, _ := strings.Cut(got, " ")
				if (counted == "1") != want {
					t.Errorf("column %d (%s): sessions strip counted = %s, want %v (%s)", i, tt.sides[i].Name, counted, want, got)
				}
				if want && rest != "3 10,11,12" {
					t.Errorf("column %d (%s): strips and their last counts = %q, want 3 strips at 10,11,12", i, tt.sides[i].Name, rest)
				}
			}

			what := evalString(t, ctx, `document.querySelector('#what').textContent`)
			t.Logf("what just happened: %s", what)
			rest := what
			for _, w := range tt.want {
				_, after, ok := strings.Cut(rest, w)
				if !ok {
					t.Errorf("the line does not say %q (in this order)", w)
					continue
				}
				rest = after
			}
		})
	}
	if ex := exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %v", ex)
	}
}
