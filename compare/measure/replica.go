package measure

import (
	"context"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/internal/api"
)

// SessionCount is what a stateful replica said of its sessions: how many
// it holds, and how many of those a request used lately. Either is nil
// when the replica does not count it or did not answer.
type SessionCount struct {
	Held, InUse *float64
}

// Reading is what one scrape of a replica's /metrics found.
type Reading struct {
	// Sessions holds the replica's statelab_sessions_active and
	// statelab_sessions_in_use gauges; nil when it keeps no count (a
	// stateless server, a session sealed in the cookie).
	Sessions SessionCount
	Ident    report.Histogram
	// SharedCalls is the replica's calls to shared services, every
	// service together (api.SharedCallsMetric).
	SharedCalls float64
}

// Scrape reads a replica's own /metrics at addr through hc. The numbers
// are the replica's, not the runner's guess: the drop to zero sessions at
// a restart is a real process's empty memory.
func Scrape(hc *http.Client, addr string) (Reading, bool) {
	var rd Reading
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return rd, false
	}
	resp, err := hc.Do(req)
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
	rd.Sessions = SessionCount{Held: gauge(api.SessionsActiveMetric), InUse: gauge(api.SessionsInUseMetric)}
	rd.Ident = identOf(families[api.IdentifyMetric])
	for _, m := range families[api.SharedCallsMetric].GetMetric() {
		rd.SharedCalls += m.GetCounter().GetValue()
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

// IdentLog keeps the last reading of every replica process of a side, by
// pid: a histogram is cumulative, so the last reading of a process is all
// it did, and the side's total is the sum over its processes. A process is
// read once a second by the feed, again after it is drained for a graceful
// stop, and when the report is made; what a crashed process did after its
// last reading is lost with it (under a second).
//
// It keeps the processes' calls to shared services (SharedCallsMetric)
// the same way: a counter is cumulative too.
type IdentLog struct {
	mu    sync.Mutex
	last  map[int]report.Histogram
	calls map[int]float64
}

// Set keeps what process pid said in rd, unless an earlier reading of it
// counted more.
func (l *IdentLog) Set(pid int, rd Reading) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.calls = map[int]report.Histogram{}, map[int]float64{}
	}
	if rd.Ident.Count >= l.last[pid].Count {
		l.last[pid] = rd.Ident
	}
	l.calls[pid] = max(l.calls[pid], rd.SharedCalls)
}

// Total adds up every process's last reading: the identifications and the
// calls to shared services.
func (l *IdentLog) Total() (report.Histogram, float64) {
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

// LastWords keeps, by replica id, the session counts a replica reported
// after it was drained and before it was sent SIGTERM: what went with it.
type LastWords struct {
	mu sync.Mutex
	by map[string]SessionCount
}

// Set keeps what replica id said last.
func (l *LastWords) Set(id string, c SessionCount) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]SessionCount{}
	}
	l.by[id] = c
}

// Take returns and forgets what the replica last said, if it said anything.
func (l *LastWords) Take(id string) (SessionCount, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.by[id]
	delete(l.by, id)
	return c, ok
}
