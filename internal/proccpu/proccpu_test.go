//go:build linux

package proccpu_test

import (
	"os"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/proccpu"
)

// TestOfSelf burns some CPU and checks that the kernel's account of this
// process grows by about as much.
func TestOfSelf(t *testing.T) {
	before, err := proccpu.Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy := time.Now()
	x := 0
	for time.Since(busy) < 300*time.Millisecond {
		x++
	}
	after, err := proccpu.Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// On a busy machine the loop gets less than its wall time; it cannot
	// get none of it, and the account is in 10 ms ticks.
	if got := after - before; got < 10*time.Millisecond || got > 5*time.Second {
		t.Errorf("CPU time grew by %v over a 300 ms busy loop (%d turns)", got, x)
	}
}

func TestOfGone(t *testing.T) {
	if _, err := proccpu.Of(1 << 30); err == nil {
		t.Error("no error for a pid that does not exist")
	}
}
