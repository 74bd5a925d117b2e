//go:build !linux

package proccpu

import (
	"errors"
	"time"
)

// Of cannot read a running process's CPU time outside Linux.
func Of(int) (time.Duration, error) {
	return 0, errors.New("no /proc on this system: the CPU time of a running process is unknown")
}
