package compare

import (
	"context"
	"sync"
	"time"
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
	Totals
	Replicas []ReplicaInfo `json:"replicas"`
}

// ReplicaInfo is one running replica.
type ReplicaInfo struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
}

// Feed takes a sample of the runner's counters once a second and keeps a
// bounded history of them. It reads the same SideStats as /metrics.
type Feed struct {
	r       *Runner
	mu      sync.Mutex
	history []Sample
}

func newFeed(r *Runner) *Feed { return &Feed{r: r} }

func (f *Feed) run(ctx context.Context) {
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
	s := f.r.sample()
	f.mu.Lock()
	defer f.mu.Unlock()
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
			out = append(out, s)
		}
	}
	return out
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
		return f.r.sample()
	}
	return s
}

func (r *Runner) sample() Sample {
	r.mu.Lock()
	phase := r.phase
	r.mu.Unlock()
	s := Sample{ElapsedS: r.elapsed().Seconds(), Phase: phase, Paused: r.gate.Paused(), Sides: map[string]SideSample{}}
	for _, sd := range r.sides {
		reps := sd.sup.Replicas()
		info := make([]ReplicaInfo, len(reps))
		for i, rep := range reps {
			info[i] = ReplicaInfo{ID: rep.ID, Addr: rep.Addr, PID: rep.PID, Restarts: rep.Restarts}
		}
		s.Sides[sd.name] = SideSample{Totals: sd.stats.Totals(), Replicas: info}
	}
	return s
}
