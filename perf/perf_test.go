package perf_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/redisserver"
	"github.com/statelab/statelab/perf"
)

// TestMain removes the statelab binary the end-to-end test builds.
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// TestRunMeasuresEveryStrategy runs the whole measurement, briefly, on real
// processes: the bare server and one replica of each default strategy, each
// signed in and loaded, with the servers' CPU time read from the kernel.
// It checks what the numbers must be whatever the machine's speed; the
// speeds themselves are make perf's business, not a test's.
func TestRunMeasuresEveryStrategy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six servers")
	}
	names := perf.DefaultStrategies
	if _, err := redisserver.LookPath(); err != nil && os.Getenv("CI") == "" {
		// Off CI the other strategies still run; under CI a missing
		// redis-server is a broken image, and the skipped row fails the test.
		t.Logf("measuring without redis: %v", err)
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "redis" })
	}
	var sts []strategy.Strategy
	for _, n := range names {
		st, err := strategy.Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	var progress bytes.Buffer
	rep, err := perf.Run(t.Context(), perf.Config{
		Binary: labtest.Binary(t), Strategies: sts, Paths: perf.Paths,
		Conns: 4, Rounds: 2, Duration: 150 * time.Millisecond, Warmup: 20 * time.Millisecond,
		WorkDir: t.TempDir(), Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, &progress)
	}

	if len(rep.Skipped) > 0 {
		t.Errorf("skipped %q; with CI set, every program the test needs must be installed", rep.Skipped)
	}
	// One row for the bare server, then one per strategy and request, in
	// the order asked for.
	var got []string
	for _, r := range rep.Rows {
		got = append(got, r.Strategy+" "+r.Path)
	}
	want := []string{perf.Bare + " any"}
	for _, n := range names {
		want = append(want, n+" book", n+" page")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows: got %q, want %q", got, want)
	}
	for _, r := range rep.Rows {
		t.Run(r.Strategy+"/"+r.Path, func(t *testing.T) {
			if r.Failed != 0 || r.OK == 0 {
				t.Errorf("got %d ok and %d failed (first: %s), want some ok and none failed", r.OK, r.Failed, r.FirstFailure)
			}
			if len(r.PerRound) != 2 || r.PerSecond <= 0 {
				t.Errorf("rounds %v, median %v: want 2 rounds and a positive median", r.PerRound, r.PerSecond)
			}
			if r.P50Ms <= 0 || r.P99Ms < r.P50Ms {
				t.Errorf("p50 %v ms, p99 %v ms: want 0 < p50 <= p99", r.P50Ms, r.P99Ms)
			}
			if r.ServerCPUMicros <= 0 {
				t.Errorf("server CPU per request %v µs: the kernel counted none", r.ServerCPUMicros)
			}
			if r.Strategy != "redis" && r.StoreCPUMicros != 0 {
				t.Errorf("session store CPU per request %v µs for a strategy without one", r.StoreCPUMicros)
			}
			if r.Strategy == perf.Bare && (r.Ratio != 1 || r.CPURatio != 1) {
				t.Errorf("the bare server's ratios to itself: got %v and %v by CPU, want 1", r.Ratio, r.CPURatio)
			}
			if r.CPURatio <= 0 {
				t.Errorf("ratio by CPU time: got %v, want > 0", r.CPURatio)
			}
		})
	}
	cpus, _ := perf.AllowedCPUs()
	if rep.Pinned != (len(cpus) >= 2) {
		t.Errorf("pinned %v (%s) with CPUs %v", rep.Pinned, rep.Pinning, cpus)
	}
	if n := runtime.GOMAXPROCS(0); n != runtime.NumCPU() && len(cpus) >= 2 {
		t.Errorf("GOMAXPROCS after Run: got %d, want it restored to %d", n, runtime.NumCPU())
	}

	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, w := range []string{"bare", "any (one fixed book)", "GET /api/books/1", "GET /api/books?limit=50", "× bare", "server µs/req"} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("table does not show %q:\n%s", w, &table)
		}
	}
}

// TestBareHandler checks that the yardstick answers like a book would.
func TestBareHandler(t *testing.T) {
	for _, path := range []string{"/api/books/1", "/api/ready", "/anything"} {
		w := httptest.NewRecorder()
		perf.BareHandler("bare-1").ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		var env struct {
			Success bool         `json:"success"`
			Data    library.Book `json:"data"`
		}
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &env) != nil || !env.Success || env.Data.ID != 1 {
			t.Errorf("GET %s: got %d %s, want 200 and a book", path, w.Code, w.Body)
		}
		if got := w.Header().Get(api.ReplicaHeader); got != "bare-1" {
			t.Errorf("GET %s: %s = %q, want bare-1", path, api.ReplicaHeader, got)
		}
	}
}

func TestWriteTableWarnsOfABusyMachine(t *testing.T) {
	for _, tt := range []struct {
		load string
		cpus int
		warn bool
	}{
		{"0.52 0.80 1.10", 2, false},
		{"2.00 3.00 3.00", 2, false},
		{"7.31 8.00 6.00", 2, true},
		{"", 2, false},
	} {
		var b bytes.Buffer
		(&perf.Report{LoadAvg: tt.load, CPUs: tt.cpus}).WriteTable(&b)
		if got := strings.Contains(b.String(), "warning: the machine was busy"); got != tt.warn {
			t.Errorf("load %q on %d CPUs: warned %v, want %v:\n%s", tt.load, tt.cpus, got, tt.warn, &b)
		}
	}
}

func TestPercentileAndMedian(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var d []time.Duration
		for _, n := range ns {
			d = append(d, time.Duration(n)*time.Millisecond)
		}
		return d
	}
	for _, tt := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	} {
		if got := perf.Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %v): got %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := perf.Median(tt.xs); got != tt.want {
			t.Errorf("Median(%v): got %v, want %v", tt.xs, got, tt.want)
		}
	}
}
