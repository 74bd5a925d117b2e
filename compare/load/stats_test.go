// These tests are inside package load, unlike the others: they feed the
// Prometheus collector counts they know, through SideStats' unexported
// counters, to check that /metrics says exactly what Totals (the feed, the
// report) says.

package load

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/statelab/statelab/compare/strategy"
)

func TestClassify(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:8001: connect: connection refused")
	tests := []struct {
		name   string
		status int
		code   string
		err    error
		want   Outcome
	}{
		{"200", 200, "", nil, OutcomeOK},
		{"201 borrow", 201, "", nil, OutcomeOK},
		{"204", 204, "", nil, OutcomeOK},
		{"401 session_lost", 401, "session_lost", nil, OutcomeSessionLost},
		{"401 login_required", 401, "login_required", nil, OutcomeLoginRequired},
		{"401 invalid_token", 401, "invalid_token", nil, OutcomeInvalidCredential},
		{"401 invalid_session", 401, "invalid_session", nil, OutcomeInvalidCredential},
		{"invalid_token code on a 403", 403, "invalid_token", nil, OutcomeOther4xx},
		{"503 session store down", 503, "session_store_unavailable", nil, Outcome5xx},
		{"401 unauthorized", 401, "unauthorized", nil, OutcomeOther4xx},
		{"401 without a code", 401, "", nil, OutcomeOther4xx},
		{"session_lost code on a 400", 400, "session_lost", nil, OutcomeOther4xx},
		{"409 conflict", 409, "conflict", nil, OutcomeConflict},
		{"400", 400, "bad_request", nil, OutcomeOther4xx},
		{"404", 404, "not_found", nil, OutcomeOther4xx},
		{"413", 413, "payload_too_large", nil, OutcomeOther4xx},
		{"500", 500, "internal", nil, Outcome5xx},
		{"502 from the balancer", 502, "bad_gateway", nil, Outcome5xx},
		{"503 no replica", 503, "no_backend", nil, Outcome5xx},
		{"transport error", 0, "", refused, OutcomeConnError},
		// The status line arrived but the body did not: the user got no answer.
		{"body cut short", 200, "", errors.New("unexpected EOF"), OutcomeConnError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.status, tt.code, tt.err); got != tt.want {
				t.Errorf("Classify(%d, %q, %v) = %v, want %v", tt.status, tt.code, tt.err, got, tt.want)
			}
		})
	}
}

// TestOutcomeNames pins the outcome label values: dashboards and
// Prometheus queries use them.
func TestOutcomeNames(t *testing.T) {
	want := []string{"ok", "session_lost", "login_required", "conflict", "invalid_credential", "error_4xx", "error_5xx", "conn_error", "timeout"}
	for o := range numOutcomes {
		if o.String() != want[o] {
			t.Errorf("Outcome(%d).String() = %q, want %q", o, o.String(), want[o])
		}
	}
}

// rtObserve records n requests with outcome o, each taking d.
func rtObserve(s *SideStats, o Outcome, n int, d time.Duration) {
	for range n {
		s.Observe(o, d)
	}
}

func TestTotals(t *testing.T) {
	t.Run("zero", func(t *testing.T) {
		got := NewSideStats().Totals()
		if got != (Totals{}) {
			t.Errorf("Totals() of nothing = %+v, want all zero (availability 0, not NaN)", got)
		}
	})

	t.Run("arithmetic", func(t *testing.T) {
		s := NewSideStats()
		counts := map[Outcome]int{OutcomeOK: 70, OutcomeSessionLost: 9, OutcomeLoginRequired: 2, OutcomeConflict: 10, OutcomeOther4xx: 4, Outcome5xx: 3, OutcomeConnError: 2}
		for o, n := range counts {
			rtObserve(s, o, n, time.Millisecond)
		}
		s.SessionLost(3)
		s.SessionLost(0)
		s.Relogin()
		s.Borrowed(11, 12)
		s.Borrowed(13)
		s.Returned()

		got := s.Totals()
		want := Totals{
			Requests: 100, OK: 70, SessionLost: 9, LoginRequired: 2, Conflicts: 10, Errors4xx: 4, Errors5xx: 3, ConnErrors: 2,
			SessionsLost: 2, CartItemsLost: 3, Relogins: 1, Borrows: 3, Returns: 1,
			// 409s are the library answering correctly: not held against availability.
			Availability: 70.0 / 90.0,
		}
		got.LatencyMS = Percentile{}
		if got != want {
			t.Errorf("Totals() = %+v\nwant       %+v", got, want)
		}
		if ids := s.BorrowIDs(); len(ids) != 3 || ids[0] != 11 || ids[2] != 13 {
			t.Errorf("BorrowIDs() = %v, want [11 12 13]", ids)
		}
	})

	t.Run("only conflicts", func(t *testing.T) {
		s := NewSideStats()
		rtObserve(s, OutcomeConflict, 5, time.Millisecond)
		if got := s.Totals(); got.Requests != 5 || got.Availability != 0 {
			t.Errorf("Totals() = %+v, want 5 requests and availability 0 (nothing was served)", got)
		}
	})

	t.Run("all ok", func(t *testing.T) {
		s := NewSideStats()
		rtObserve(s, OutcomeOK, 7, time.Millisecond)
		rtObserve(s, OutcomeConflict, 3, time.Millisecond)
		if got := s.Totals().Availability; got != 1 {
			t.Errorf("availability = %v, want exactly 1", got)
		}
	})
}

func TestLatencyPercentiles(t *testing.T) {
	s := NewSideStats()
	// 1 ms to 100 ms, in no particular order.
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(100) {
		s.Observe(OutcomeOK, time.Duration(i+1)*time.Millisecond)
	}
	got := s.Totals().LatencyMS
	// A percentile is the upper bound of its bucket, and the bounds grow by
	// 10%: never below the truth, at most 10% above it.
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", got.P50, 50}, {"p95", got.P95, 95}, {"p99", got.P99, 99}} {
		if c.got < c.want || c.got > c.want*1.1 {
			t.Errorf("%s = %.2f ms, want %v ms to %.1f ms", c.name, c.got, c.want, c.want*1.1)
		}
	}

	one := NewSideStats()
	one.Observe(OutcomeOK, 3*time.Second)
	if p := one.Totals().LatencyMS; p.P50 < 3000 || p.P50 > 3300 || p.P50 != p.P99 {
		t.Errorf("one request of 3s: %+v, want every percentile within 10%% above 3000 ms", p)
	}
}

// The servers the tests count for, and the strategy each side runs.
const (
	Stateful  = strategy.Stateful
	Stateless = strategy.Stateless
)

// sidesOf makes the runner's sides of SideStats keyed by server: the
// stateful one runs memory, the stateless one apikey.
func sidesOf(m map[string]*SideStats) []Source {
	var out []Source
	for _, server := range []string{Stateful, Stateless} {
		if st, ok := m[server]; ok {
			name := map[string]string{Stateful: "memory", Stateless: "apikey"}[server]
			out = append(out, Source{Stats: st, Strategy: name, Server: server})
		}
	}
	return out
}

// TestSideStatsConcurrent is for -race: users record while the feed,
// the terminal and /metrics read.
func TestSideStatsConcurrent(t *testing.T) {
	s := NewSideStats()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(sidesOf(map[string]*SideStats{Stateful: s})))
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s.Observe(Outcome(i%int(numOutcomes)), time.Duration(i)*time.Microsecond)
				if i%10 == 0 {
					s.SessionLost(1)
					s.Relogin()
					s.Borrowed(int64(w*each + i))
					s.Returned()
				}
			}
		}()
	}
	done := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		var last int64
		for {
			select {
			case <-done:
				return
			default:
			}
			tot := s.Totals()
			if tot.Requests < last {
				readErr <- errors.New("requests went down")
				return
			}
			last = tot.Requests
			_ = s.BorrowIDs()
			if _, err := reg.Gather(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	got := s.Totals()
	if got.Requests != writers*each || got.SessionsLost != writers*each/10 || got.Borrows != writers*each/10 || len(s.BorrowIDs()) != writers*each/10 {
		t.Errorf("after %d concurrent requests: %+v, %d borrow ids", writers*each, got, len(s.BorrowIDs()))
	}
}

// TestStatsCollector checks that /metrics passes the Prometheus linter and
// says exactly what Totals says: the feed, the terminal, the report and
// /metrics all read the same counters and can never disagree.
func TestStatsCollector(t *testing.T) {
	sides := map[string]*SideStats{Stateful: NewSideStats(), Stateless: NewSideStats()}
	rtObserve(sides[Stateful], OutcomeOK, 40, 2*time.Millisecond)
	rtObserve(sides[Stateful], OutcomeSessionLost, 12, 800*time.Microsecond)
	rtObserve(sides[Stateful], OutcomeLoginRequired, 1, time.Millisecond)
	rtObserve(sides[Stateful], OutcomeConflict, 2, 5*time.Millisecond)
	rtObserve(sides[Stateful], Outcome5xx, 1, 3*time.Second)
	for range 12 {
		sides[Stateful].SessionLost(2)
	}
	for range 11 {
		sides[Stateful].Relogin()
	}
	sides[Stateful].Borrowed(1, 2)
	rtObserve(sides[Stateless], OutcomeOK, 90, time.Millisecond)
	rtObserve(sides[Stateless], OutcomeOther4xx, 3, time.Millisecond)
	rtObserve(sides[Stateless], OutcomeConnError, 1, 15*time.Second)
	sides[Stateless].Borrowed(3, 4, 5, 6)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(sidesOf(sides)))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// got[metric][server][outcome] is the value /metrics shows.
	got := map[string]map[string]map[string]float64{}
	hist := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			server := labels["server"]
			if mf.GetName() == "statelab_client_request_duration_seconds" {
				hist[server] = m.GetHistogram()
				continue
			}
			if got[mf.GetName()] == nil {
				got[mf.GetName()] = map[string]map[string]float64{}
			}
			if got[mf.GetName()][server] == nil {
				got[mf.GetName()][server] = map[string]float64{}
			}
			got[mf.GetName()][server][labels["outcome"]] = m.GetCounter().GetValue()
		}
	}
	for server, s := range sides {
		tot := s.Totals()
		want := map[string]map[string]int64{
			"statelab_client_requests_total": {
				"ok": tot.OK, "session_lost": tot.SessionLost, "login_required": tot.LoginRequired, "conflict": tot.Conflicts,
				"error_4xx": tot.Errors4xx, "error_5xx": tot.Errors5xx, "conn_error": tot.ConnErrors,
				"invalid_credential": tot.InvalidCredential, "timeout": tot.Timeouts,
			},
			"statelab_client_offered_requests_total": {"": tot.Offered},
			"statelab_client_dropped_requests_total": {"": tot.Dropped},
			"statelab_client_sessions_lost_total":    {"": tot.SessionsLost},
			"statelab_client_cart_items_lost_total":  {"": tot.CartItemsLost},
			"statelab_client_relogins_total":         {"": tot.Relogins},
			"statelab_client_borrows_total":          {"": tot.Borrows},
		}
		var sum float64
		for name, byOutcome := range want {
			if len(got[name][server]) != len(byOutcome) {
				t.Errorf("%s{server=%q}: series %v, want %d", name, server, got[name][server], len(byOutcome))
			}
			for outcome, v := range byOutcome {
				if g, ok := got[name][server][outcome]; !ok || g != float64(v) {
					t.Errorf("%s{server=%q,outcome=%q} = %v, want %d as in Totals", name, server, outcome, g, v)
				}
				if name == "statelab_client_requests_total" {
					sum += got[name][server][outcome]
				}
			}
		}
		if sum != float64(tot.Requests) {
			t.Errorf("requests of %s by outcome add up to %v, want %d", server, sum, tot.Requests)
		}

		h := hist[server]
		if h == nil {
			t.Fatalf("no latency histogram for %s", server)
		}
		if h.GetSampleCount() != uint64(tot.Requests) {
			t.Errorf("latency histogram of %s counts %d, want %d requests", server, h.GetSampleCount(), tot.Requests)
		}
		var prev uint64
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() < prev {
				t.Errorf("%s: bucket le=%v holds %d, fewer than the one before (%d)", server, b.GetUpperBound(), b.GetCumulativeCount(), prev)
			}
			prev = b.GetCumulativeCount()
		}
		if n := len(h.GetBucket()); n < 10 || n > 50 {
			t.Errorf("%s: %d buckets; want a handful per decade, not every internal one", server, n)
		}
	}
	wantSum := 40*0.002 + 12*0.0008 + 0.001 + 2*0.005 + 3
	if g := hist[Stateful].GetSampleSum(); math.Abs(g-wantSum) > 1e-9 {
		t.Errorf("stateful latency sum = %v s, want %v s", g, wantSum)
	}

	// What an operator reads: the exposition text.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP statelab_client_sessions_lost_total Sessions the simulated users lost: a 401 while they believed they were signed in.
# TYPE statelab_client_sessions_lost_total counter
statelab_client_sessions_lost_total{server="stateful",strategy="memory"} 12
statelab_client_sessions_lost_total{server="stateless",strategy="apikey"} 0
`), "statelab_client_sessions_lost_total"); err != nil {
		t.Error(err)
	}
}

func TestUserCosts(t *testing.T) {
	s := NewSideStats()
	if c := s.UserCosts(); c != (UserCosts{}) {
		t.Errorf("no requests: %+v, want zeros", c)
	}
	for _, n := range []int64{200, 200, 200, 300, 1000} {
		s.Sent(n)
	}
	for _, n := range []int64{5000, 1000, 3000} {
		s.Journey(n)
	}
	for range 9 {
		s.ObserveRead(time.Millisecond)
	}
	s.ObserveRead(time.Second)
	c := s.UserCosts()
	if c.RequestBytesP50 != 200 || c.RequestBytesMean != 380 || c.Requests != 5 {
		t.Errorf("request bytes: median %v, mean %v over %d; want 200, 380 over 5", c.RequestBytesP50, c.RequestBytesMean, c.Requests)
	}
	if c.JourneyBytesP50 != 3000 || c.Journeys != 3 {
		t.Errorf("journeys: median %v over %d; want 3000 over 3", c.JourneyBytesP50, c.Journeys)
	}
	// Percentiles are bucket bounds, within 10% above the truth.
	if c.Reads != 10 || c.ReadLatencyMS.P50 < 1 || c.ReadLatencyMS.P50 > 1.1 || c.ReadLatencyMS.P99 < 1000 || c.ReadLatencyMS.P99 > 1100 {
		t.Errorf("reads: %d, p50 %v ms, p99 %v ms; want 10, about 1 and about 1000", c.Reads, c.ReadLatencyMS.P50, c.ReadLatencyMS.P99)
	}
	// The reads do not touch the totals: they are counted by Observe too.
	if tot := s.Totals(); tot.Requests != 0 {
		t.Errorf("Totals counts %d requests; ObserveRead and Sent must not add any", tot.Requests)
	}
}
