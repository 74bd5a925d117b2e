package web_test

import (
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
	"github.com/statelab/statelab/web"
)

// feedSide is one entry of the feed's "sides": a strategy and where it keeps
// a sign-in. The page words every event from these properties.
type feedSide struct {
	Name       string `json:"name"`
	Strategy   string `json:"strategy"`
	Server     string `json:"server"`
	Sessions   string `json:"sessions"`
	Affinity   string `json:"affinity"`
	Credential string `json:"credential"`
	OwnSecrets bool   `json:"own_secrets"`
	Where      string `json:"where"`
}

// feedBody is what GET /api/feed answers; Sides is empty in a feed from
// before strategies, which the page must still draw.
type feedBody struct {
	Scenario  string                `json:"scenario"`
	DurationS float64               `json:"duration_s"`
	Users     int                   `json:"users"`
	Sides     []feedSide            `json:"sides,omitempty"`
	Now       compare.Sample        `json:"now"`
	Events    []compare.EventRecord `json:"events"`
	History   []compare.Sample      `json:"history"`
}

// The strategies the lab runs, as the runner describes them.
var (
	sideMemory = feedSide{Name: "memory", Strategy: "memory", Server: "stateful", Sessions: "memory", Affinity: "none", Credential: "cookie",
		Where: "process memory of the one replica that made the session"}
	sideMemorySticky = feedSide{Name: "memory-sticky", Strategy: "memory-sticky", Server: "stateful", Sessions: "memory", Affinity: "cookie", Credential: "cookie",
		Where: "process memory of one replica; the balancer pins each client to it"}
	sideRedis = feedSide{Name: "redis", Strategy: "redis", Server: "stateful", Sessions: "redis", Affinity: "none", Credential: "cookie",
		Where: "one redis-server every replica shares"}
	sideCookie = feedSide{Name: "cookie", Strategy: "cookie", Server: "stateful", Sessions: "cookie", Affinity: "none", Credential: "cookie",
		Where: "the client's cookie, encrypted and signed"}
	sideAPIKey = feedSide{Name: "apikey", Strategy: "apikey", Server: "stateless", Affinity: "none", Credential: "apikey",
		Where: "nowhere on the server: each request carries an API key, checked against the shared database"}
	sideJWTOwn = feedSide{Name: "jwt+own-secrets", Strategy: "jwt", Server: "stateless", Affinity: "none", Credential: "jwt", OwnSecrets: true,
		Where: "nowhere on the server: each request carries an HS256 JWT"}
	// legacy stands for a feed without "sides": the page falls back to the
	// two sides such a runner always ran.
	legacy = []feedSide{{Name: "stateful", Sessions: "memory"}, {Name: "stateless"}}
)

// fakeFeed is a test double of the runner's feed: a fixed 30 seconds of a
// run of two sides with three replicas each, and the events the test
// gives it. Set swaps the whole run, as a runner started again would.
type fakeFeed struct {
	mu     sync.Mutex
	sides  []feedSide
	events []compare.EventRecord
}

func (f *fakeFeed) Set(sides []feedSide, events []compare.EventRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sides, f.events = sides, events
}

const fakeElapsed = 30

func (f *fakeFeed) sample(at float64) compare.Sample {
	s := compare.Sample{ElapsedS: at, Phase: "running", Sides: map[string]compare.SideSample{}}
	n := int64(at)
	for _, sd := range f.sides {
		var ss compare.SideSample
		ss.Requests, ss.OK, ss.Availability = 20*n, 20*n, 1
		ss.LatencyWindowMS = &compare.Percentile{P50: 2, P95: 5, P99: 9}
		for i := range 3 {
			rep := compare.ReplicaInfo{ID: fmt.Sprintf("%s-%d", sd.Name, i+1), Addr: "127.0.0.1:1", PID: 1000 + i}
			// Only a replica that keeps sessions in its memory counts them.
			if sd.Sessions == "memory" {
				v := float64(10 + i)
				rep.Sessions = &v
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
	body := feedBody{Scenario: "fake", DurationS: 120, Users: 10, Now: f.sample(fakeElapsed), Events: f.events, History: []compare.Sample{}}
	if f.sides[0].Server != "" { // the legacy feed has no sides
		body.Sides = f.sides
	}
	for at := 0.0; at <= fakeElapsed; at++ {
		if at > since {
			body.History = append(body.History, f.sample(at))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// on returns one event at second at: a record per side, on replica 1 of
// each (replica 3 for a scale-in, none for a store restart).
func on(at float64, kind string, sides []feedSide, held map[string]float64) []compare.EventRecord {
	var recs []compare.EventRecord
	for _, sd := range sides {
		rec := compare.EventRecord{AtS: at, Kind: kind, Side: sd.Name, Replica: sd.Name + "-1", TookMS: 300, Source: "scenario"}
		if kind == "scale-in" {
			rec.Replica = sd.Name + "-3"
		}
		if kind == "restart-store" {
			rec.Replica = ""
			if sd.Sessions != "redis" {
				rec.Note = "no session store: nothing to restart"
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
	chromium := findChromium(t)
	feed := &fakeFeed{}
	mux := http.NewServeMux()
	mux.Handle("GET /api/feed", feed)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name   string
		sides  []feedSide
		kind   string
		held   map[string]float64
		want   []string // in the what-just-happened line, in this order
		strips [2]bool  // a counted sessions strip, per column
	}{
		{
			name: "memory-sticky vs apikey, crash", sides: []feedSide{sideMemorySticky, sideAPIKey}, kind: "crash",
			held: map[string]float64{"memory-sticky": 12},
			want: []string{
				"replica memory-sticky-1 was killed (SIGKILL) and started again: 12 sessions were lost with it",
				"replica apikey-1 was killed (SIGKILL) and started again: it holds no sessions, so nothing was lost",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "memory-sticky vs apikey, crash not counted", sides: []feedSide{sideMemorySticky, sideAPIKey}, kind: "crash",
			want: []string{
				"replica memory-sticky-1 was killed (SIGKILL) and started again: the sessions it held went with it (how many was not counted",
				"replica apikey-1 was killed (SIGKILL) and started again: it holds no sessions, so nothing was lost",
			},
			strips: [2]bool{true, false},
		},
		{
			name: "redis vs jwt with own secrets, restart", sides: []feedSide{sideRedis, sideJWTOwn}, kind: "restart",
			want: []string{
				"replica redis-1 restarted: sessions live outside the process, in the shared redis-server, so nothing went with it",
				"replica jwt+own-secrets-1 restarted: it holds no sessions, so nothing was lost (and each replica signs with its own secret",
			},
		},
		{
			name: "redis vs cookie, restart-store", sides: []feedSide{sideRedis, sideCookie}, kind: "restart-store",
			want: []string{
				"redis: the shared redis-server restarted: every session in redis was lost",
				"cookie: no session store: nothing to restart",
			},
		},
		{
			name: "memory vs cookie, scale-in", sides: []feedSide{sideMemory, sideCookie}, kind: "scale-in",
			want: []string{
				"memory-3 was removed: 12 sessions held there went with it",
				"cookie-3 was removed: sessions live outside the process, sealed in each client’s cookie, so nothing went with it",
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
			feed.Set(tt.sides, on(float64(at), tt.kind, tt.sides, tt.held))
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
