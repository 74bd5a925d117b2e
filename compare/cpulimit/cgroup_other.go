//go:build !linux

package cpulimit

import (
	"log/slog"
	"os/exec"
	"runtime"
	"time"
)

// Limiter is a CPU limit that cannot be enforced outside Linux: there are
// no cgroups. Open says so, and the replicas run unlimited.
type Limiter struct{ enf Enforcement }

// Open returns a Limiter whose Enforcement says that the limit is not
// enforced, and why.
func Open(cpus float64, _ *slog.Logger) (*Limiter, error) {
	if err := Validate(cpus); err != nil {
		return nil, err
	}
	return &Limiter{enf: Enforcement{CPUs: cpus, Reason: "cgroups exist only on Linux, and this is " + runtime.GOOS}}, nil
}

func (l *Limiter) confine(string, *exec.Cmd) (func(int) error, error) { return nil, nil }

// Usage is never available outside Linux.
func (l *Limiter) Usage(string) (time.Duration, bool) { return 0, false }

// Throttling is never available outside Linux.
func (l *Limiter) Throttling(string) (Throttling, bool) { return Throttling{}, false }

// Shelter has nothing to do outside Linux.
func (l *Limiter) Shelter() error { return nil }

// Close has nothing to remove.
func (l *Limiter) Close() error { return nil }
