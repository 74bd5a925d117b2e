//go:build unix

package api_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system, every thread: the
// benchmark's own and the garbage collector's) this process has used.
// On a machine shared with other work a benchmark's wall time also counts
// the time it waited for a CPU; its CPU time does not.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
