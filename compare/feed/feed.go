// Package feed keeps what the dashboard draws: a sample of the run once a
// second, taken by a snapshot function it is given (the runner's), in a
// bounded history, with each side's latency over the last second worked
// out between samples; and the report's series made from them. It knows
// nothing of what it samples.
package feed

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/measure"
	"github.com/statelab/statelab/compare/report"
)

// HistoryLimit bounds the feed's history: at one sample a second, the last
// 15 minutes. A longer run keeps its totals; only the oldest samples go.
const HistoryLimit = 900

// Sample is the state of the run at one moment, as the dashboard draws it.
type Sample struct {
	ElapsedS float64               `json:"elapsed_s"`
	Phase    string                `json:"phase"`
	Paused   bool                  `json:"paused"`
	Sides    map[string]SideSample `json:"sides"`
}

// SideSample is one side at one moment.
type SideSample struct {
	load.Totals
	// LatencyWindowMS holds the percentiles of the requests answered since
	// the previous sample, nil when there were none. The totals' percentiles
	// cover the whole run and hardly move after a minute; a restart's slow
	// second shows only in a window.
	LatencyWindowMS *load.Percentile `json:"latency_window_ms,omitempty"`
	Replicas        []ReplicaInfo    `json:"replicas"`
	// Costs is what the side has paid so far, as the report's costs: the
	// users' bytes and read latency, the replicas' own identification
	// time and CPU, read in this sample. The dashboard's cost panel draws
	// it.
	Costs *report.Costs `json:"costs,omitempty"`
	// Buckets is the side's latency histogram at this moment, from which
	// the feed works out LatencyWindowMS.
	Buckets []uint64 `json:"-"`
}

// ReplicaInfo is one running replica.
type ReplicaInfo struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	// Link is the address of the link the balancer reaches the replica
	// through (--latency); absent without links.
	Link string `json:"link,omitempty"`
	// Sessions is how many sessions the replica says it holds (its
	// statelab_sessions_active gauge); nil where the replica keeps no
	// sessions it can count (a stateless server, a session sealed in the
	// cookie), or when it did not answer in time.
	Sessions *float64 `json:"sessions,omitempty"`
	// SessionsInUse is how many of them a request used lately (its
	// statelab_sessions_in_use gauge): the sessions of users still using
	// them. The rest are idle, most of them left behind by users who
	// signed in again.
	SessionsInUse *float64 `json:"sessions_in_use,omitempty"`
	// CPUCores is the replica's CPU use since the previous sample, in
	// cores, counted by its cgroup (or its process); nil before it has
	// two readings.
	CPUCores *float64 `json:"cpu_cores,omitempty"`
	// CPUShare is CPUCores as a share of the replica's CPU limit, when
	// the kernel enforces one: 1 is a saturated replica.
	CPUShare *float64 `json:"cpu_share,omitempty"`
}

// Feed takes a sample once a second and keeps a bounded history of them.
// The samples come from a snapshot function (the runner's, which reads the
// same SideStats as /metrics), so the feed knows nothing of what it samples.
type Feed struct {
	snapshot func() Sample
	mu       sync.Mutex
	history  []Sample
	last     time.Time           // when the newest sample was taken
	maxGap   time.Duration       // the longest time between two samples: "once a second", measured
	buckets  map[string][]uint64 // each side's latency histogram at the newest sample
}

// New returns a feed that takes its samples from snapshot.
func New(snapshot func() Sample) *Feed { return &Feed{snapshot: snapshot} }

// Run takes a sample now and once a second until ctx is done, and a last
// one then.
func (f *Feed) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		f.take()
		select {
		case <-ctx.Done():
			f.take()
			return
		case <-t.C:
		}
	}
}

// take appends a sample of now.
func (f *Feed) take() {
	s := f.snapshot()
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.last.IsZero() {
		f.maxGap = max(f.maxGap, now.Sub(f.last))
	}
	f.last = now
	f.windowLatency(&s)
	if len(f.history) == HistoryLimit {
		copy(f.history, f.history[1:])
		f.history = f.history[:HistoryLimit-1]
	}
	f.history = append(f.history, s)
}

// History returns the samples taken since elapsed second since.
func (f *Feed) History(since float64) []Sample {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Sample{}
	for _, s := range f.history {
		if s.ElapsedS > since {
			out = append(out, withoutCosts(s))
		}
	}
	return out
}

// withoutCosts returns s without its sides' costs: the dashboard draws
// them from the newest sample only, so the history, which it fetches whole
// when it opens, need not carry them.
func withoutCosts(s Sample) Sample {
	sides := make(map[string]SideSample, len(s.Sides))
	for name, ss := range s.Sides {
		ss.Costs = nil
		sides[name] = ss
	}
	s.Sides = sides
	return s
}

// MaxGap returns the longest time between two consecutive samples.
func (f *Feed) MaxGap() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxGap
}

// SessionsOf returns the sessions a replica reported in the newest sample.
func (f *Feed) SessionsOf(side, id string) measure.SessionCount {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.history) == 0 {
		return measure.SessionCount{}
	}
	for _, rep := range f.history[len(f.history)-1].Sides[side].Replicas {
		if rep.ID == id {
			return measure.SessionCount{Held: rep.Sessions, InUse: rep.SessionsInUse}
		}
	}
	return measure.SessionCount{}
}

// Latest returns the newest sample, or a fresh one before the first tick.
func (f *Feed) Latest() Sample {
	f.mu.Lock()
	n := len(f.history)
	var s Sample
	if n > 0 {
		s = f.history[n-1]
	}
	f.mu.Unlock()
	if n == 0 {
		return f.snapshot()
	}
	return s
}

// windowLatency sets each side's percentiles of the requests answered since
// the previous sample. The caller holds f.mu.
func (f *Feed) windowLatency(s *Sample) {
	if f.buckets == nil {
		f.buckets = map[string][]uint64{}
	}
	for name, ss := range s.Sides {
		now := ss.Buckets
		win := slices.Clone(now)
		for i, prev := range f.buckets[name] {
			win[i] -= prev
		}
		f.buckets[name] = now
		var n uint64
		for _, c := range win {
			n += c
		}
		if n == 0 {
			continue
		}
		ss.LatencyWindowMS = &load.Percentile{P50: load.Quantile(win, .50) * 1000, P95: load.Quantile(win, .95) * 1000, P99: load.Quantile(win, .99) * 1000}
		s.Sides[name] = ss
	}
}

// Series turns the feed's samples into each side's series, for the report.
func Series(samples []Sample, sides []string) map[string][]report.SeriesPoint {
	out := make(map[string][]report.SeriesPoint, len(sides))
	for _, name := range sides {
		pts := []report.SeriesPoint{}
		for _, s := range samples {
			ss, ok := s.Sides[name]
			if !ok {
				continue
			}
			p := report.SeriesPoint{
				T: math.Round(s.ElapsedS*1000) / 1000, Requests: ss.Requests, OK: ss.OK,
				SessionsLost: ss.SessionsLost, CartItemsLost: ss.CartItemsLost,
				Failed: ss.Errors5xx + ss.ConnErrors, ClientSignInsLost: ss.ClientSignInsLost,
				Replicas: make([]report.ReplicaPoint, len(ss.Replicas)),
			}
			for i, rep := range ss.Replicas {
				p.Replicas[i] = report.ReplicaPoint{ID: rep.ID, Sessions: rep.Sessions, InUse: rep.SessionsInUse}
			}
			pts = append(pts, p)
		}
		out[name] = pts
	}
	return out
}
