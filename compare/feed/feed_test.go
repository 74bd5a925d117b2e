package feed

import (
	"testing"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
)

// TestFeedHistoryAndWindow: the history keeps the newest HistoryLimit
// samples, leaves the costs out, and each sample's latency window covers
// only the requests answered since the one before.
func TestFeedHistoryAndWindow(t *testing.T) {
	n := 0
	buckets := load.NewSideStats().Buckets()
	f := New(func() Sample {
		n++
		if n%2 == 0 {
			buckets[0]++ // one fast answer every other sample
		}
		return Sample{ElapsedS: float64(n), Sides: map[string]SideSample{
			"a": {Buckets: append([]uint64(nil), buckets...), Costs: &report.Costs{}},
		}}
	})
	if got := f.Latest().ElapsedS; got != 1 {
		t.Fatalf("Latest before any sample: elapsed %v, want a fresh one (1)", got)
	}
	for range HistoryLimit + 10 {
		f.take()
	}
	h := f.History(-1)
	if len(h) != HistoryLimit {
		t.Fatalf("history holds %d samples, want %d", len(h), HistoryLimit)
	}
	if h[len(h)-1].ElapsedS != float64(n) || h[0].ElapsedS != float64(n-HistoryLimit+1) {
		t.Errorf("history from %v to %v, want the newest %d up to %d", h[0].ElapsedS, h[len(h)-1].ElapsedS, HistoryLimit, n)
	}
	for _, s := range h {
		if s.Sides["a"].Costs != nil {
			t.Fatal("the history carries costs; only the newest sample does")
		}
		if w := s.Sides["a"].LatencyWindowMS; (w != nil) != (int(s.ElapsedS)%2 == 0) {
			t.Fatalf("sample %v: window %v; want one only where a request was answered since the last sample", s.ElapsedS, w)
		}
	}
	if got := len(f.History(float64(n - 3))); got != 3 {
		t.Errorf("History(since n-3) = %d samples, want 3", got)
	}
}
