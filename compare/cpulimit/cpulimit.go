// Package cpulimit runs the comparison's replicas under a CPU limit that the
// kernel enforces, the way a container's resources.limits.cpu is enforced in
// production: one cgroup per replica with a CFS bandwidth quota (cgroup v2
// cpu.max, or cgroup v1 cpu.cfs_quota_us, whichever the machine has and the
// user may write), under a parent cgroup that belongs to one runner process
// and is removed when it ends. A non-root user on a cgroup v2 desktop gets a
// systemd user scope per replica instead, where systemd delegates the cpu
// controller. Where the machine offers none of these, Open says why and the
// replicas run unlimited: a limit is never pretended.
//
// The kernel, not this package, keeps a replica under its limit: in every
// period of 100 ms a replica's threads may run for quota microseconds in
// all, and are throttled until the next period once they have. A replica
// that needs more than its limit therefore answers more slowly, as an
// overloaded pod does.
package cpulimit

import (
	"fmt"
	"os/exec"
	"time"
)

// Period is the CFS period a quota is granted per: 100 ms, the kernel's and
// Kubernetes' default.
const Period = 100 * time.Millisecond

// MinCPUs and MaxCPUs bound a limit: the kernel refuses a quota under 1 ms
// per period, and a limit above the machine's cores limits nothing.
const (
	MinCPUs = 0.01
	MaxCPUs = 64
)

// How a limit is enforced: Enforcement.Mechanism.
const (
	MechanismCgroupV2 = "cgroup v2 cpu.max"
	MechanismCgroupV1 = "cgroup v1 cpu.cfs_quota_us"
	MechanismSystemd  = "systemd user scope CPUQuota (cgroup v2 cpu.max)"
)

// Enforcement says which limit was asked for and how the kernel enforces
// it, or why it does not.
type Enforcement struct {
	// CPUs is the limit asked for, in cores per replica.
	CPUs float64 `json:"cpus"`
	// Enforced is true when every replica runs in a cgroup whose quota the
	// kernel applies; false means the replicas run unlimited.
	Enforced bool `json:"enforced"`
	// Mechanism is one of the Mechanism constants; empty when not enforced.
	Mechanism string `json:"mechanism,omitempty"`
	// QuotaUS and PeriodUS are what the cgroup files say: quota
	// microseconds of CPU time per period.
	QuotaUS  int64 `json:"quota_us,omitempty"`
	PeriodUS int64 `json:"period_us,omitempty"`
	// Parent is the runner's own cgroup directory, the replicas' groups
	// below it; empty with a systemd scope per replica.
	Parent string `json:"parent,omitempty"`
	// Reason says why the limit is not enforced.
	Reason string `json:"reason,omitempty"`
	// LeftoversRemoved lists the groups of earlier runners that had died
	// without removing them, which Open removed.
	LeftoversRemoved []string `json:"leftovers_removed,omitempty"`
}

// String says it in a sentence, for the terminal and the report.
func (e Enforcement) String() string {
	if !e.Enforced {
		return fmt.Sprintf("%.2f CPU per replica asked for but NOT enforced: %s; the replicas run unlimited", e.CPUs, e.Reason)
	}
	where := ""
	if e.Parent != "" {
		where = " under " + e.Parent
	}
	return fmt.Sprintf("%.2f CPU per replica, enforced by the kernel: %s, %d µs per %d µs period%s", e.CPUs, e.Mechanism, e.QuotaUS, e.PeriodUS, where)
}

// Throttling is what a replica's cgroup says about its quota: how many
// periods it ran in, in how many it used its whole quota and was stopped,
// and for how long in all.
type Throttling struct {
	Periods   int64         `json:"periods"`
	Throttled int64         `json:"throttled"`
	Time      time.Duration `json:"-"`
}

// quotaUS is the quota for cpus cores per Period.
func quotaUS(cpus float64) int64 {
	return int64(cpus*float64(Period.Microseconds()) + 0.5)
}

// Validate checks a limit asked for.
func Validate(cpus float64) error {
	if cpus < MinCPUs || cpus > MaxCPUs {
		return fmt.Errorf("a replica's CPU limit is %g; use %g to %g cores (0.25 is a quarter of one core)", cpus, MinCPUs, float64(MaxCPUs))
	}
	return nil
}

// Confine is the supervisor's hook (supervisor.Config.Confine): it prepares
// cmd so that the process for replica id starts in its group, and returns
// the function to call once the process has started. An error from either
// fails the start, so no replica runs unlimited by mistake when the limit
// is enforced. When it is not, Confine changes nothing.
func (l *Limiter) Confine(id string, cmd *exec.Cmd) (func(pid int) error, error) {
	if !l.enf.Enforced {
		return nil, nil
	}
	return l.confine(id, cmd)
}

// Enforcement returns what Open found and did.
func (l *Limiter) Enforcement() Enforcement { return l.enf }
