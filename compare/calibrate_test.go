package compare

import (
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
)

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
