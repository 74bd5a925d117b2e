package perf_test

import (
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statelab/statelab/perf"
)

// TestPinAndCPUTime pins a real process and reads its CPU time back from
// the kernel.
func TestPinAndCPUTime(t *testing.T) {
	cpus, err := perf.AllowedCPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("AllowedCPUs: %v, %v", cpus, err)
	}
	// A busy child: sh spinning in a loop.
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	last := cpus[len(cpus)-1]
	if err := perf.Pin(cmd.Process.Pid, last); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(cmd.Process.Pid, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(last) {
		t.Errorf("affinity after Pin(%d): %d CPUs, CPU %d set: %v", last, set.Count(), last, set.IsSet(last))
	}
	before, err := perf.CPUTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, err := perf.CPUTime(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time of a spinning process stayed at %v for 5s", before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := perf.Pin(999999999, last); err == nil {
		t.Error("Pin of a process that does not exist: got nil, want an error")
	}
}
