//go:build !linux

package supervisor

import (
	"errors"
	"syscall"
	"time"
)

// sysProcAttr has nothing to add outside Linux: the stdin pipe alone
// makes a replica exit with the runner.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// processCPU cannot read a running process's CPU time outside Linux; the
// time of processes that have exited is still counted.
func processCPU(int) (time.Duration, error) {
	return 0, errors.New("no /proc on this system")
}
