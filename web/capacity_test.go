package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/web"
)

// capacityFeed is a test double of a capacity run's feed: 450 requests a
// second offered on each side, 300 answered and 150 timed out; four
// replicas a side, of which the sticky side's last two are idle.
type capacityFeed struct {
	sides []strategy.Strategy
	enf   *cpulimit.Enforcement
}

func (f capacityFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sides := f.sides
	sample := func(at float64) compare.Sample {
		s := compare.Sample{ElapsedS: at, Phase: "running", Sides: map[string]compare.SideSample{}}
		n := int64(at)
		for _, sd := range sides {
			var ss compare.SideSample
			ss.Offered, ss.OK, ss.Timeouts, ss.Requests = 450*n, 300*n, 150*n, 450*n
			ss.LatencyWindowMS = &load.Percentile{P50: 400, P95: 900, P99: 1000}
			for i := range 4 {
				rep := compare.ReplicaInfo{ID: fmt.Sprintf("%s-%d", sd.Name, i+1), Addr: "127.0.0.1:1", PID: 1000 + i}
				share := 1.0
				if sd.HoldsSessionsInProcess() && i >= 2 {
					share = 0 // new sticky replicas: no user is pinned to them
				}
				cores := share * 0.1
				rep.CPUCores = &cores
				if f.enf.Enforced {
					rep.CPUShare = &share
				}
				ss.Replicas = append(ss.Replicas, rep)
			}
			s.Sides[sd.Name] = ss
		}
		return s
	}
	since, _ := strconv.ParseFloat(r.URL.Query().Get("history"), 64)
	body := struct {
		feedBody
		ReplicaCPU *cpulimit.Enforcement `json:"replica_cpu"`
		OpenLoop   *report.OpenLoopInfo  `json:"open_loop"`
	}{
		feedBody:   feedBody{Scenario: "capacity", DurationS: 45, Users: 0, Sides: sides, Now: sample(20), History: []compare.Sample{}},
		ReplicaCPU: f.enf,
		OpenLoop:   &report.OpenLoopInfo{Rate: 450, RateUsers: 10, DeadlineMS: 1000, MaxOutstanding: 900},
	}
	for at := 0.0; at <= 20; at++ {
		if at > since {
			body.History = append(body.History, sample(at))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// TestDashboardCapacity checks what the page draws of a capacity run: the
// offered rate beside the successful requests, the timeouts, each
// replica's CPU as a share of its limit, and the limit in the header; and,
// when the limit is not enforced, that the header says so and the CPU is
// drawn in cores.
func TestDashboardCapacity(t *testing.T) {
	chromium := labtest.Chromium(t)
	for _, tt := range []struct {
		name     string
		enf      cpulimit.Enforcement
		header   string
		labels   string // the CPU labels of the left column's strips
		capLabel string
	}{
		{
			name:     "enforced",
			enf:      cpulimit.Enforcement{CPUs: 0.1, Enforced: true, Mechanism: cpulimit.MechanismCgroupV1, QuotaUS: 10000, PeriodUS: 100000},
			header:   "each replica limited to 0.1 CPU by the kernel (cgroup v1 cpu.cfs_quota_us)",
			labels:   "cpu 100%,cpu 100%,cpu 0%,cpu 0%",
			capLabel: "CPU, top = its limit",
		},
		{
			name:     "not enforced",
			enf:      cpulimit.Enforcement{CPUs: 0.1, Reason: "no cgroup hierarchy with the cpu controller is mounted"},
			header:   "CPU limit 0.1 NOT enforced: replicas unlimited",
			labels:   "cpu 0.10,cpu 0.10,cpu 0.00,cpu 0.00",
			capLabel: "CPU 0–0.10 cores",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("GET /api/feed", capacityFeed{sides: pair(t, "memory-sticky,apikey"), enf: &tt.enf})
			mux.Handle("/", web.Handler())
			srv := httptest.NewServer(mux)
			defer srv.Close()

			ctx := newTab(t, chromium, 1400, 950)
			exceptions := watchExceptions(ctx)
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, ctx, "the page to draw the run", 10*time.Second,
				`(() => { const s = document.querySelector('.cell[data-col="1"][data-chart="ok"] .plot > svg'); return s && +s.dataset.n >= 10; })()`)

			header := evalString(t, ctx, `document.querySelector('#scenario').textContent`)
			for _, want := range []string{"450 requests/s offered a side (deadline 1.0 s)", tt.header} {
				if !strings.Contains(header, want) {
					t.Errorf("header %q does not say %q", header, want)
				}
			}
			got := evalString(t, ctx, `(() => {
				const s = document.querySelector('.cell[data-col="1"][data-chart="ok"] .plot > svg');
				return s.dataset.offered + ' ' + s.dataset.ok + ' ' + (s.querySelector('path.offered') ? 'line' : 'no line');
			})()`)
			if got != "450.0 300.0 line" {
				t.Errorf("the successful-requests chart: offered, ok and its offered line = %q, want 450.0 300.0 line", got)
			}
			if got := evalString(t, ctx, `document.querySelector('#totals tr[data-col="1"] td[data-k="timeouts"]').textContent`); got != "3,000" {
				t.Errorf("timeouts in the totals = %q, want 3,000", got)
			}
			if got := evalString(t, ctx, `document.querySelector('.cell[data-col="1"][data-chart="errors"] .cap .v').textContent`); !strings.Contains(got, "timeout (no answer by the deadline) 3,000") {
				t.Errorf("the errors' legend %q does not count the timeouts", got)
			}
			labels := evalString(t, ctx, `[...document.querySelectorAll('.cell[data-col="0"][data-chart="sessions"] .cpu-label')].map((l) => l.textContent).join(',')`)
			if labels != tt.labels {
				t.Errorf("the left side's CPU labels = %q, want %q", labels, tt.labels)
			}
			if got := evalString(t, ctx, `document.querySelector('.cell[data-col="1"][data-chart="sessions"] .cap .v').textContent`); !strings.Contains(got, tt.capLabel) {
				t.Errorf("the right side's strips say %q, want %q", got, tt.capLabel)
			}
			if ex := exceptions(); len(ex) > 0 {
				t.Errorf("the page threw: %v", ex)
			}
		})
	}
}
