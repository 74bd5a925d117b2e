package measure

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/load"
)

// TestPhases checks that a request counts in the phase it arrived in,
// whenever it is answered; that an event over at once relabels the open
// phase instead of making one too short for a rate; and the CPU shares.
func TestPhases(t *testing.T) {
	s := load.NewSideStats()
	var log PhaseLog
	cpu := func(a, b float64) map[string]time.Duration {
		return map[string]time.Duration{"x-1": time.Duration(a * float64(time.Second)), "x-2": time.Duration(b * float64(time.Second))}
	}
	log.Mark(s, Mark{At: 0, After: "start", Replicas: 2, CPU: cpu(0, 0)})
	// 10 arrivals in the first phase: 4 answered at once, 6 still out.
	var first []int
	for range 10 {
		first = append(first, s.Offer())
	}
	for _, ph := range first[:4] {
		s.ObserveFrom(ph, load.OutcomeOK, 10*time.Millisecond)
	}
	// A scale-out begins at 5 s and is over 0.1 s later: one phase, labelled
	// as the one after it, begins at 5 s.
	log.Mark(s, Mark{At: 5, After: "scale-out", Stage: UnderWay, Replicas: 2, CPU: cpu(0.5, 0.5)})
	log.Mark(s, Mark{At: 5.1, After: "scale-out", Replicas: 4, CPU: cpu(0.51, 0.51)})
	// The first phase's other 6 are answered now: 3 ok, 2 timeouts, 1 drop.
	for _, ph := range first[4:7] {
		s.ObserveFrom(ph, load.OutcomeOK, time.Second)
	}
	s.ObserveFrom(first[7], load.OutcomeTimeout, 2*time.Second)
	s.ObserveFrom(first[8], load.OutcomeTimeout, 2*time.Second)
	s.Drop(first[9])
	for range 20 {
		s.ObserveFrom(s.Offer(), load.OutcomeOK, time.Millisecond)
	}
	s.SessionLost(0)
	s.Borrowed(1, 2, 3, 4, 5)
	log.End(Mark{At: 15, Totals: s.Totals(), CPU: cpu(1.5, 0.6)})

	got := log.Phases(s, 0.1)
	if len(got) != 2 {
		t.Fatalf("%d phases, want 2: %+v", len(got), got)
	}
	a, b := got[0], got[1]
	if a.After != "start" || a.FromS != 0 || a.ToS != 5 || a.OfferedRPS != 2 || a.ThroughputRPS != 7.0/5 || a.Timeouts != 3 || a.Dropped != 1 || a.Failed != 3 {
		t.Errorf("first phase %+v: want 10 arrivals in 5 s, 7 ok, 3 timeouts of which 1 dropped", a)
	}
	if b.After != "scale-out" || b.During || b.Replicas != 4 || b.FromS != 5 || b.OfferedRPS != 2 || b.ThroughputRPS != 2 || b.Timeouts != 0 || b.SessionsLost != 1 {
		t.Errorf("second phase %+v: want the scale-out's, from 5 s with 4 replicas, 20 arrivals all ok in 10 s", b)
	}
	if a.BorrowsPerS != 0 || b.BorrowsPerS != 0.5 {
		t.Errorf("borrows per second %v, then %v: want none in the first phase, then 5 in 10 s", a.BorrowsPerS, b.BorrowsPerS)
	}
	if a.P99MS < 2000 || b.P99MS > 2 {
		t.Errorf("p99: first phase %.1f ms (its timeouts waited 2 s), second %.1f ms", a.P99MS, b.P99MS)
	}
	if math.Abs(b.ReplicaCPUCores["x-1"]-0.1) > 1e-9 || math.Abs(b.ReplicaCPUShare["x-1"]-1) > 1e-9 || math.Abs(b.ReplicaCPUShare["x-2"]-0.1) > 1e-9 {
		t.Errorf("second phase CPU %v, shares %v: want x-1 at its limit, x-2 at a tenth", b.ReplicaCPUCores, b.ReplicaCPUShare)
	}
	if got := log.Phases(s, 0); got[0].ReplicaCPUShare != nil {
		t.Errorf("shares %v without a limit", got[0].ReplicaCPUShare)
	}
}

// TestPhasesSettling checks that the end of a settling stretch begins the
// settled phase only when nothing else began since, and never after the
// run's end.
func TestPhasesSettling(t *testing.T) {
	s := load.NewSideStats()
	var log PhaseLog
	log.Mark(s, Mark{At: 0, After: "start"})
	log.Mark(s, Mark{At: 5, After: "scale-out", Stage: Settling})
	n := log.Count()
	log.MarkIfLast(s, n, Mark{At: 6, After: "scale-out"}) // one deadline later: settled
	stale := log.Count()
	log.Mark(s, Mark{At: 8, After: "restart", Stage: Settling})
	log.MarkIfLast(s, stale, Mark{At: 9, After: "scale-out"}) // a later event began: ignored
	last := log.Count()
	log.End(Mark{At: 12})
	log.MarkIfLast(s, last, Mark{At: 13, After: "restart"}) // after the end: ignored
	var got []string
	for _, p := range log.Phases(s, 0) {
		got = append(got, fmt.Sprintf("%s %v %g-%g", p.After, p.Settling, p.FromS, p.ToS))
	}
	want := []string{"start false 0-5", "scale-out true 5-6", "scale-out false 6-8", "restart true 8-12"}
	if !slices.Equal(got, want) {
		t.Errorf("phases %q, want %q", got, want)
	}
}
