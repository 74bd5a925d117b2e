package compare

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/api"
)

// Costs is what one side paid for its way of keeping a sign-in, measured in
// the run: on the users' side, counted by their HTTP clients; on the
// servers' side, read from the replica processes themselves.
type Costs struct {
	load.UserCosts
	ServerCosts
}

// ServerCosts is what one side's replica processes spent, by their own
// account.
type ServerCosts struct {
	// IdentifyUSP50 and IdentifyUS are the median (estimated from the
	// buckets, as histogram_quantile does) and the mean of the time a
	// replica spent finding a request's member, found or not, over
	// Identifications requests, from every replica process's
	// statelab_identify_seconds histogram. Both are wall time in the
	// process: the mean also holds the moments a busy machine made the
	// process wait; the median mostly does not.
	IdentifyUSP50   float64 `json:"identify_us_p50"`
	IdentifyUS      float64 `json:"identify_us_mean"`
	Identifications int64   `json:"identifications"`
	// CPUSeconds is the CPU time (user and system) of every replica process
	// that lived in the run, by the kernel's account: it does not grow when
	// the machine is busy with something else, as a latency does.
	CPUSeconds float64 `json:"server_cpu_s"`
	// BalancedRequests counts the requests the balancer handed the
	// replicas, and CPUPerRequestUS is CPUSeconds divided by them.
	BalancedRequests int64   `json:"balanced_requests"`
	CPUPerRequestUS  float64 `json:"server_cpu_per_request_us"`
	// StoreCPUSeconds is the CPU time of the side's session store (its
	// redis-server processes), 0 for a side without one, and
	// StoreCPUPerRequestUS the same divided by BalancedRequests: the part of
	// the cost the replicas' own account does not show.
	StoreCPUSeconds      float64 `json:"store_cpu_s"`
	StoreCPUPerRequestUS float64 `json:"store_cpu_per_request_us"`
}

// Histogram is a Prometheus histogram read from a replica's /metrics, or
// the sum of several: the count and sum of the samples, and the cumulative
// count at each bucket's upper bound. Histograms of one metric share their
// bounds, so they add bucket by bucket.
type Histogram struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64
}

// Add returns h and o summed.
func (h Histogram) Add(o Histogram) Histogram {
	out := Histogram{Count: h.Count + o.Count, Sum: h.Sum + o.Sum, Buckets: map[float64]uint64{}}
	for b, n := range h.Buckets {
		out.Buckets[b] += n
	}
	for b, n := range o.Buckets {
		out.Buckets[b] += n
	}
	return out
}

// Quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: it finds the bucket that holds it and interpolates linearly inside
// it (from 0 for the first bucket). A quantile above the last bound is the
// last bound; an empty histogram's is 0.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var lo float64
	var below uint64
	for _, b := range slices.Sorted(maps.Keys(h.Buckets)) {
		n := h.Buckets[b]
		if float64(n) >= rank {
			if n == below {
				return b
			}
			return lo + (b-lo)*(rank-float64(below))/float64(n-below)
		}
		lo, below = b, n
	}
	return lo
}

// identLog keeps the last reading of every replica process of a side, by
// pid: a histogram is cumulative, so the last reading of a process is all
// it did, and the side's total is the sum over its processes. A process is
// read once a second by the feed, again after it is drained for a graceful
// stop, and when the report is made; what a crashed process did after its
// last reading is lost with it (under a second).
type identLog struct {
	mu   sync.Mutex
	last map[int]Histogram
}

func (l *identLog) set(pid int, r Histogram) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[int]Histogram{}
	}
	if r.Count >= l.last[pid].Count {
		l.last[pid] = r
	}
}

func (l *identLog) total() Histogram {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t Histogram
	for _, r := range l.last {
		t = t.Add(r)
	}
	return t
}

// replicaReading is what one scrape of a replica's /metrics found.
type replicaReading struct {
	// sessions holds the replica's statelab_sessions_active and
	// statelab_sessions_in_use gauges; nil when it keeps no count (a
	// stateless server, a session sealed in the cookie).
	sessions sessionCount
	ident    Histogram
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
	return rd, true
}

func identOf(mf *dto.MetricFamily) Histogram {
	r := Histogram{Buckets: map[float64]uint64{}}
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
	s.ident.set(rep.PID, rd.ident)
	return rd.sessions
}

// serverCosts reads every replica of the side in service now, then adds up
// what all its processes spent.
func (r *Runner) serverCosts(s *side) ServerCosts {
	var wg sync.WaitGroup
	for _, rep := range s.sup.Replicas() {
		wg.Go(func() { r.readReplica(s, rep) })
	}
	wg.Wait()
	return r.spent(s)
}

// spent adds up what the side's processes spent, from their last readings:
// the feed's once a second, or serverCosts' fresh ones.
func (r *Runner) spent(s *side) ServerCosts {
	var c ServerCosts
	id := s.ident.total()
	c.Identifications = int64(id.Count)
	if id.Count > 0 {
		c.IdentifyUS = id.Sum / float64(id.Count) * 1e6
		c.IdentifyUSP50 = id.Quantile(.5) * 1e6
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
