package compare

import (
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/report"
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
			wanted, rate := calibratedRate(1.5, 2, tt.perReplica, tt.generator)
			if wanted != tt.wantWanted || rate != tt.wantRate {
				t.Errorf("calibratedRate(1.5, 2, %v, %g) = %g, %g; want %g, %g", tt.perReplica, tt.generator, wanted, rate, tt.wantWanted, tt.wantRate)
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
		gotMax, gotUsers := calibratedQueueOf(tt.rate, tt.deadline, tt.users)
		if gotMax != tt.wantMax || gotUsers != tt.wantUsers {
			t.Errorf("calibratedQueueOf(%g, %s, %d) = %d, %d; want %d, %d", tt.rate, tt.deadline, tt.users, gotMax, gotUsers, tt.wantMax, tt.wantUsers)
		}
	}
}

// TestCalibrationSays checks the sentence the terminal, report.md and
// report.html print: what was measured, and when the runner's own bound
// or a skipped measurement changed the rate, that it did.
func TestCalibrationSays(t *testing.T) {
	measured := report.Calibration{Factor: 1.5, Replicas: 2, ReplicaRPS: map[string]float64{"apikey": 324, "memory-sticky": 283},
		MeasuredS: 3, InFlight: 32, GeneratorRPS: 4927, WantedRPS: 972, Rate: 972}
	capped := measured
	capped.GeneratorRPS, capped.Rate = 700, 700
	skipped := report.Calibration{Factor: 1.5, Replicas: 2, Skipped: "the CPU limit is not enforced here", Rate: 560}
	for _, tt := range []struct {
		c    report.Calibration
		want []string
	}{
		{measured, []string{"apikey 324/s, memory-sticky 283/s", "972 requests/s per side was offered"}},
		{capped, []string{"more than the runner can send: 700/s per side was offered", "less than 1.5×"}},
		{skipped, []string{"skipped (the CPU limit is not enforced here)", "560 requests/s"}},
	} {
		got := tt.c.String()
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q lacks %q", got, w)
			}
		}
	}
}

// TestCalibrateWithoutLimit is a machine that cannot enforce the CPU
// limit (no limiter here): calibration measures nothing, keeps the
// scenario's rate and its default bound of outstanding requests, records
// why in the report, and points the user to the shipped report.
func TestCalibrateWithoutLimit(t *testing.T) {
	var out strings.Builder
	r := &Runner{cfg: Config{Calibrate: 1.5, Rate: 560, ReplicaCPU: 0.1, Deadline: time.Second, RateUsers: 10, Stdout: &out,
		Scenario: scenario.Scenario{Replicas: 2}}}
	r.cfg.resolveLoad()
	if err := r.calibrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	info := r.openLoopInfo()
	if info.Rate != 560 || info.MaxOutstanding != 1120 || info.RateUsers != 10 {
		t.Errorf("open loop %+v, want the scenario's 560/s, 1120 outstanding, 10 users", info)
	}
	if c := info.Calibration; c == nil || !strings.Contains(c.Skipped, "not enforced") || c.Rate != 560 {
		t.Errorf("calibration %+v, want it skipped because the limit is not enforced", c)
	}
	for _, want := range []string{"calibration: skipped", "gain will not show", ShippedCapacityReport, "make capacity-report"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the runner said %q; it lacks %q", out.String(), want)
		}
	}
}
