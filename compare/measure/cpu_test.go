package measure_test

import (
	"os"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/measure"
	"github.com/statelab/statelab/compare/supervisor"
)

// TestCPUSample reads this test's own process as a replica: nothing from
// the first sample, its use in cores and as a share of the limit from a
// second one half a second later, and the highest share kept.
func TestCPUSample(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: a process's CPU time is read from it")
	}
	m := measure.NewCPUMeter(nil)
	reps := []supervisor.Replica{{ID: "x-1", PID: os.Getpid()}}
	cores, shares := m.Sample(reps, 0.5)
	if cores[0] != nil || shares[0] != nil {
		t.Fatalf("first sample: %v %v, want nothing", cores[0], shares[0])
	}
	for deadline := time.Now().Add(600 * time.Millisecond); time.Now().Before(deadline); {
	}
	cores, shares = m.Sample(reps, 0.5)
	if cores[0] == nil || shares[0] == nil || *cores[0] <= 0 || *shares[0] != *cores[0]/0.5 {
		t.Fatalf("second sample after spinning: cores %v, shares %v; want both, share = cores/limit", cores[0], shares[0])
	}
	if got := m.MaxShares()["x-1"]; got != *shares[0] {
		t.Errorf("MaxShares = %v, want %v", got, *shares[0])
	}
	if cores, _ := m.Sample(reps, 0); cores[0] != nil {
		t.Errorf("a sample right after another: %v, want nothing (under half a second)", *cores[0])
	}
}
