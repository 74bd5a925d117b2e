//go:build !linux

package perf

import (
	"errors"
	"time"
)

var errNoProc = errors.New("CPU accounting and pinning need Linux (/proc and sched_setaffinity)")

func cpuTime(pid int) (time.Duration, error) { return 0, errNoProc }

func allowedCPUs() ([]int, error) { return nil, errNoProc }

func pin(pid int, cpus ...int) error { return errNoProc }

const canPin = false
