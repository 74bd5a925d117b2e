package compare

import (
	"context"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/api"
)

// identLog keeps the last reading of every replica process of a side, by
// pid: a histogram is cumulative, so the last reading of a process is all
// it did, and the side's total is the sum over its processes. A process is
// read once a second by the feed, again after it is drained for a graceful
// stop, and when the report is made; what a crashed process did after its
// last reading is lost with it (under a second).
//
// It keeps the processes' calls to shared services (SharedCallsMetric)
// the same way: a counter is cumulative too.
type identLog struct {
	mu    sync.Mutex
	last  map[int]report.Histogram
	calls map[int]float64
}

func (l *identLog) set(pid int, r report.Histogram, calls float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.calls = map[int]report.Histogram{}, map[int]float64{}
	}
	if r.Count >= l.last[pid].Count {
		l.last[pid] = r
	}
	l.calls[pid] = max(l.calls[pid], calls)
}

func (l *identLog) total() (report.Histogram, float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t report.Histogram
	for _, r := range l.last {
		t = t.Add(r)
	}
	var calls float64
	for _, c := range l.calls {
		calls += c
	}
	return t, calls
}

// replicaReading is what one scrape of a replica's /metrics found.
type replicaReading struct {
	// sessions holds the replica's statelab_sessions_active and
	// statelab_sessions_in_use gauges; nil when it keeps no count (a
	// stateless server, a session sealed in the cookie).
	sessions sessionCount
	ident    report.Histogram
	// sharedCalls is the replica's calls to shared services, every
	// service together (api.SharedCallsMetric).
	sharedCalls float64
}

// scrapeReplica reads a replica's own /metrics. The numbers are the
// replica's, not the runner's guess: the drop to zero sessions at a
// restart is a real process's empty memory.
func (r *Runner) scrapeReplica(addr string) (replicaReading, bool) {
	var rd replicaReading
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return rd, false
	}
	resp, err := r.scrapeClient.Do(req)
	if err != nil {
		return rd, false
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return rd, false
	}
	gauge := func(name string) *float64 {
		mf := families[name]
		if mf == nil || len(mf.GetMetric()) == 0 {
			return nil
		}
		v := mf.GetMetric()[0].GetGauge().GetValue()
		return &v
	}
	rd.sessions = sessionCount{held: gauge(api.SessionsActiveMetric), inUse: gauge(api.SessionsInUseMetric)}
	rd.ident = identOf(families[api.IdentifyMetric])
	for _, m := range families[api.SharedCallsMetric].GetMetric() {
		rd.sharedCalls += m.GetCounter().GetValue()
	}
	return rd, true
}

func identOf(mf *dto.MetricFamily) report.Histogram {
	r := report.Histogram{Buckets: map[float64]uint64{}}
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		r.Count += h.GetSampleCount()
		r.Sum += h.GetSampleSum()
		for _, b := range h.GetBucket() {
			r.Buckets[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	return r
}

// readReplica scrapes one replica, keeps its identification reading and
// returns what it said of its sessions.
func (r *Runner) readReplica(s *side, rep supervisor.Replica) sessionCount {
	rd, ok := r.scrapeReplica(rep.Addr)
	if !ok {
		return sessionCount{}
	}
	s.ident.set(rep.PID, rd.ident, rd.sharedCalls)
	return rd.sessions
}

// serverCosts reads every replica of the side in service now, then adds up
// what all its processes spent.
func (r *Runner) serverCosts(s *side) report.ServerCosts {
	var wg sync.WaitGroup
	for _, rep := range s.sup.Replicas() {
		wg.Go(func() { r.readReplica(s, rep) })
	}
	wg.Wait()
	return r.spent(s)
}

// spent adds up what the side's processes spent, from their last readings:
// the feed's once a second, or serverCosts' fresh ones.
func (r *Runner) spent(s *side) report.ServerCosts {
	var c report.ServerCosts
	id, calls := s.ident.total()
	c.Identifications = int64(id.Count)
	c.SharedRoundTrips = int64(calls)
	if id.Count > 0 {
		c.IdentifyUS = id.Sum / float64(id.Count) * 1e6
		c.IdentifyUSP50 = id.Quantile(.5) * 1e6
		c.SharedRoundTripsPerRequest = calls / float64(id.Count)
	}
	cpu, _ := s.sup.CPUTime()
	c.CPUSeconds = cpu.Seconds()
	for _, n := range s.lb.Requests() {
		c.BalancedRequests += int64(n)
	}
	if s.redis != nil {
		cpu, _ := s.redis.CPUTime()
		c.StoreCPUSeconds = cpu.Seconds()
	}
	if c.BalancedRequests > 0 {
		c.CPUPerRequestUS = c.CPUSeconds / float64(c.BalancedRequests) * 1e6
		c.StoreCPUPerRequestUS = c.StoreCPUSeconds / float64(c.BalancedRequests) * 1e6
	}
	return c
}
