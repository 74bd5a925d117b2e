package compare

import (
	"context"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/api"
)

// Costs is what one side paid for its way of keeping a sign-in, measured in
// the run: on the users' side, counted by their HTTP clients; on the
// servers' side, read from the replica processes themselves.
type Costs struct {
	UserCosts
	ServerCosts
}

// ServerCosts is what one side's replica processes spent, by their own
// account.
type ServerCosts struct {
	// IdentifyUS is the mean time a replica spent finding a request's
	// member (found or not), from every replica process's
	// statelab_identify_seconds histogram, over Identifications requests.
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
}

// identReading is one replica process's statelab_identify_seconds
// histogram, summed over its methods.
type identReading struct {
	count uint64
	sum   float64
}

// identLog keeps the last reading of every replica process of a side, by
// pid: a histogram is cumulative, so the last reading of a process is all
// it did, and the side's total is the sum over its processes. A process is
// read once a second by the feed, again after it is drained for a graceful
// stop, and when the report is made; what a crashed process did after its
// last reading is lost with it (under a second).
type identLog struct {
	mu   sync.Mutex
	last map[int]identReading
}

func (l *identLog) set(pid int, r identReading) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[int]identReading{}
	}
	if r.count >= l.last[pid].count {
		l.last[pid] = r
	}
}

func (l *identLog) total() identReading {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t identReading
	for _, r := range l.last {
		t.count += r.count
		t.sum += r.sum
	}
	return t
}

// replicaReading is what one scrape of a replica's /metrics found.
type replicaReading struct {
	// sessions is the replica's statelab_sessions_active gauge; nil when
	// it keeps no count (a stateless server, a session sealed in the
	// cookie).
	sessions *float64
	ident    identReading
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
	if mf := families["statelab_sessions_active"]; mf != nil && len(mf.GetMetric()) > 0 {
		v := mf.GetMetric()[0].GetGauge().GetValue()
		rd.sessions = &v
	}
	rd.ident = identOf(families[api.IdentifyMetric])
	return rd, true
}

func identOf(mf *dto.MetricFamily) identReading {
	var r identReading
	for _, m := range mf.GetMetric() {
		r.count += m.GetHistogram().GetSampleCount()
		r.sum += m.GetHistogram().GetSampleSum()
	}
	return r
}

// readReplica scrapes one replica and keeps its identification reading.
func (r *Runner) readReplica(s *side, rep supervisor.Replica) *float64 {
	rd, ok := r.scrapeReplica(rep.Addr)
	if !ok {
		return nil
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
	var c ServerCosts
	id := s.ident.total()
	c.Identifications = int64(id.count)
	if id.count > 0 {
		c.IdentifyUS = id.sum / float64(id.count) * 1e6
	}
	cpu, _ := s.sup.CPUTime()
	c.CPUSeconds = cpu.Seconds()
	for _, n := range s.lb.Requests() {
		c.BalancedRequests += int64(n)
	}
	if c.BalancedRequests > 0 {
		c.CPUPerRequestUS = c.CPUSeconds / float64(c.BalancedRequests) * 1e6
	}
	return c
}
