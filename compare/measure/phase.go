package measure

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
)

// Mark is where a phase begins or the last one ends: the moment, the
// side's counters and each replica's CPU time then.
type Mark struct {
	idx      int     // the SideStats phase the requests arriving from here count in
	At       float64 // seconds since the run's start
	After    string  // the kind of event the phase follows ("start" first)
	Stage    Stage
	Replicas int
	Totals   load.Totals
	CPU      map[string]time.Duration // each replica's CPU time, by id
}

// Stage says which part of an event's aftermath a phase is.
type Stage int

const (
	Settled  Stage = iota // the state an event left the side in (or the start)
	UnderWay              // the event itself, until it was over
	Settling              // one deadline after it was over: its backlog ends
)

// minPhase is the shortest stretch a phase is made of: over less, a rate
// or a percentile says nothing.
const minPhase = 0.25

// PhaseLog keeps where a side's phases begin. The requests are counted by
// the phase they arrived in (SideStats.BeginPhase), so the phases are
// worked out once the run is over and every request has its answer.
type PhaseLog struct {
	mu    sync.Mutex
	marks []Mark
	last  *Mark // the end of the last phase, once the run is over
}

// mark begins a phase at m. A phase that would be shorter than minPhase
// (two events at once, or an event over at once) is not made: the open
// one is relabelled instead, so the phases still cover the whole run.
func (l *PhaseLog) Mark(stats *load.SideStats, m Mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.markLocked(stats, m)
}

func (l *PhaseLog) markLocked(stats *load.SideStats, m Mark) {
	if n := len(l.marks); n > 0 && m.At-l.marks[n-1].At < minPhase {
		a := &l.marks[n-1]
		a.After, a.Stage, a.Replicas = m.After, m.Stage, m.Replicas
		return
	}
	m.idx = stats.BeginPhase()
	l.marks = append(l.marks, m)
}

// markIfLast begins a phase at m unless another began since the n-th: the
// end of a settling stretch must not cut the phase of a later event.
func (l *PhaseLog) MarkIfLast(stats *load.SideStats, n int, m Mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.marks) == n && l.last == nil {
		l.markLocked(stats, m)
	}
}

// count returns how many phases have begun.
func (l *PhaseLog) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.marks)
}

// end ends the last phase at m.
func (l *PhaseLog) End(m Mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = &m
}

// phases returns the side's phases; the requests' counts are read from
// stats, the CPU shares are of limit (none when 0).
func (l *PhaseLog) Phases(stats *load.SideStats, limit float64) []report.Phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []report.Phase{} // [] in JSON when there are none, never null
	for i, a := range l.marks {
		var b Mark
		switch {
		case i+1 < len(l.marks):
			b = l.marks[i+1]
		case l.last != nil:
			b = *l.last
		default:
			continue // still open
		}
		dur := b.At - a.At
		if dur < minPhase {
			continue // the run ended right after an event
		}
		c := stats.Phase(a.idx)
		var n int64
		for _, v := range c.Outcomes {
			n += v
		}
		p := report.Phase{
			FromS: a.At, ToS: b.At, After: a.After, During: a.Stage == UnderWay, Settling: a.Stage == Settling, Replicas: a.Replicas,
			OfferedRPS:    float64(c.Offered) / dur,
			ThroughputRPS: float64(c.Outcomes[load.OutcomeOK]) / dur,
			Timeouts:      c.Outcomes[load.OutcomeTimeout],
			Dropped:       c.Dropped,
			Failed:        n - c.Outcomes[load.OutcomeOK] - c.Outcomes[load.OutcomeConflict],
			SessionsLost:  b.Totals.SessionsLost - a.Totals.SessionsLost,
			BorrowsPerS:   float64(b.Totals.Borrows-a.Totals.Borrows) / dur,
			P50MS:         load.Quantile(c.Buckets, .50) * 1000,
			P99MS:         load.Quantile(c.Buckets, .99) * 1000,
		}
		ids := slices.Sorted(maps.Keys(b.CPU))
		if len(ids) > 0 {
			p.ReplicaCPUCores = map[string]float64{}
			if limit > 0 {
				p.ReplicaCPUShare = map[string]float64{}
			}
		}
		for _, id := range ids {
			cores := (b.CPU[id] - a.CPU[id]).Seconds() / dur
			p.ReplicaCPUCores[id] = cores
			if limit > 0 {
				p.ReplicaCPUShare[id] = cores / limit
			}
		}
		out = append(out, p)
	}
	return out
}
