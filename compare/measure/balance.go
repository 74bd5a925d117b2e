package measure

import (
	"maps"
	"slices"
	"sync"

	"github.com/statelab/statelab/compare/report"
)

// BalanceLog keeps a side's balance windows.
type BalanceLog struct {
	mu      sync.Mutex
	current *report.BalanceWindow
	start   map[string]uint64 // the balancer's counts when the current window began
	done    []report.BalanceWindow
}

// open starts a window after a scale event; counts are the balancer's
// per-replica request counts now, ids the replicas in service.
func (l *BalanceLog) Open(at float64, after string, counts map[string]uint64, ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current = &report.BalanceWindow{FromS: at, After: after, Requests: map[string]uint64{}}
	l.start = map[string]uint64{}
	for _, id := range ids {
		l.current.Requests[id] = 0
		l.start[id] = counts[id]
	}
}

// close ends the open window, if any, at the balancer's counts now.
func (l *BalanceLog) Close(at float64, counts map[string]uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current
	if w == nil {
		return
	}
	l.current = nil
	w.ToS = at
	var total uint64
	for id, n := range l.start {
		w.Requests[id] = counts[id] - n
		total += w.Requests[id]
	}
	w.Shares = map[string]float64{}
	if total > 0 && len(w.Requests) > 0 {
		for id, n := range w.Requests {
			w.Shares[id] = float64(n) / float64(total)
		}
		w.Imbalance = slices.Max(slices.Collect(maps.Values(w.Shares))) * float64(len(w.Shares))
	}
	l.done = append(l.done, *w)
}

// windows returns the finished windows.
func (l *BalanceLog) Windows() []report.BalanceWindow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.done)
}
