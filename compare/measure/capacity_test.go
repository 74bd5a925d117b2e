package measure_test

import (
	"testing"
	"time"

	"github.com/statelab/statelab/compare/measure"
	"github.com/statelab/statelab/compare/scenario"
)

// TestCalibratedRate feeds the rate's arithmetic what calibration would
// measure on a quiet machine and on a busy one: the rate follows what a
// replica carries, so the starting replicas fall short of it on both, and
// what the runner can send bounds it.
func TestCalibratedRate(t *testing.T) {
	tests := []struct {
		name       string
		perReplica []float64
		generator  float64
		wantWanted float64
		wantRate   float64
	}{
		{name: "quiet machine", perReplica: []float64{324, 283}, generator: 4927, wantWanted: 972, wantRate: 972},
		{name: "busy machine", perReplica: []float64{150, 181}, generator: 2100, wantWanted: 543, wantRate: 543},
		{name: "the runner is the bound", perReplica: []float64{300, 300}, generator: 700, wantWanted: 900, wantRate: 700},
		{name: "the lab's bound", perReplica: []float64{3000, 1000}, generator: 50_000, wantWanted: 9000, wantRate: scenario.MaxRate},
		{name: "one side failed to measure", perReplica: []float64{0, 200}, generator: 5000, wantWanted: 600, wantRate: 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wanted, rate := measure.CalibratedRate(1.5, 2, tt.perReplica, tt.generator)
			if wanted != tt.wantWanted || rate != tt.wantRate {
				t.Errorf("measure.CalibratedRate(1.5, 2, %v, %g) = %g, %g; want %g, %g", tt.perReplica, tt.generator, wanted, rate, tt.wantWanted, tt.wantRate)
			}
		})
	}
}

// TestCalibratedQueue checks that the queue allowed grows with the rate,
// and that the pool has a connection for every request outstanding.
func TestCalibratedQueue(t *testing.T) {
	tests := []struct {
		rate      float64
		deadline  time.Duration
		users     int
		wantMax   int
		wantUsers int
	}{
		{rate: 971, deadline: time.Second, users: 10, wantMax: 389, wantUsers: 25},
		{rate: 543, deadline: time.Second, users: 10, wantMax: 218, wantUsers: 14},
		{rate: 100, deadline: time.Second, users: 10, wantMax: 40, wantUsers: 10}, // the scenario's pool is enough
		{rate: 5000, deadline: 10 * time.Second, users: 10, wantMax: 20_000, wantUsers: scenario.MaxRateUsers},
	}
	for _, tt := range tests {
		gotMax, gotUsers := measure.CalibratedQueue(tt.rate, tt.deadline, tt.users)
		if gotMax != tt.wantMax || gotUsers != tt.wantUsers {
			t.Errorf("CalibratedQueue(%g, %s, %d) = %d, %d; want %d, %d", tt.rate, tt.deadline, tt.users, gotMax, gotUsers, tt.wantMax, tt.wantUsers)
		}
	}
}
