package compare_test

import (
	"math"
	"testing"

	"github.com/statelab/statelab/compare/report"
)

func TestHistogramQuantile(t *testing.T) {
	// Cumulative counts at the bounds 1, 2, 4 (and 10 samples in all: 2
	// above the last bound).
	h := report.Histogram{Count: 10, Sum: 30, Buckets: map[float64]uint64{1: 2, 2: 6, 4: 8}}
	tests := []struct {
		q, want float64
	}{
		{0.1, 0.5}, // rank 1 in (0, 1]: halfway
		{0.2, 1},   // rank 2: the top of the first bucket
		{0.4, 1.5}, // rank 4 in (1, 2], which holds ranks 3-6
		{0.5, 1.75},
		{0.8, 4},  // rank 8: the top of the last bucket
		{0.95, 4}, // above the last bound: the last bound
	}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := (report.Histogram{}).Quantile(.5); got != 0 {
		t.Errorf("empty histogram: %v, want 0", got)
	}

	sum := h.Add(report.Histogram{Count: 2, Sum: 1, Buckets: map[float64]uint64{1: 2, 2: 2, 4: 2}})
	if sum.Count != 12 || sum.Sum != 31 || sum.Buckets[1] != 4 || sum.Buckets[2] != 8 || sum.Buckets[4] != 10 {
		t.Errorf("Add: %+v", sum)
	}
	if h.Buckets[1] != 2 {
		t.Error("Add changed its receiver")
	}
}
