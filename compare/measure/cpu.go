package measure

import (
	"maps"
	"sync"
	"time"

	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/proccpu"
)

// CPUMeter reads each replica's CPU time since its slot was first used:
// from the replica's cgroup when the kernel enforces a limit there (which
// counts every process that ran in it), otherwise from its process, adding
// the CPU time of the processes a restart or a crash replaced.
type CPUMeter struct {
	limiter *cpulimit.Limiter // nil: no limit asked for
	mu      sync.Mutex
	procs   map[string]*procCPU      // by replica id, when read from the process
	last    map[string]time.Duration // by replica id: the last count read
	// seen is each replica's CPU time at the feed's previous Sample, and
	// maxShare its highest share of its limit in one Sample.
	seen     map[string]reading
	maxShare map[string]float64
}

// reading is a replica's CPU time at one moment.
type reading struct {
	used time.Duration
	at   time.Time
}

// procCPU follows the processes of one replica id.
type procCPU struct {
	pid  int
	last time.Duration // the current process's CPU time when last read
	base time.Duration // the CPU time of the processes before it
}

// NewCPUMeter returns a meter that reads a replica's cgroup through l
// when l enforces a limit there (l may be nil), its process otherwise.
func NewCPUMeter(l *cpulimit.Limiter) *CPUMeter {
	return &CPUMeter{limiter: l, procs: map[string]*procCPU{}, last: map[string]time.Duration{}, seen: map[string]reading{}, maxShare: map[string]float64{}}
}

// usage returns the replica's CPU time, and false when it cannot be read.
func (m *CPUMeter) Usage(rep supervisor.Replica) (time.Duration, bool) {
	if d, ok := m.limiter.Usage(rep.ID); ok {
		m.mu.Lock()
		m.last[rep.ID] = d
		m.mu.Unlock()
		return d, true
	}
	u, err := proccpu.Of(rep.PID)
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.procs[rep.ID]
	if p == nil {
		p = &procCPU{pid: rep.PID}
		m.procs[rep.ID] = p
	}
	if p.pid != rep.PID {
		// A new process under this id: the one before it is gone, and
		// the kernel's final count of it is in its exit status.
		if rep.LastExit != nil {
			p.base += rep.LastExit.UserTime() + rep.LastExit.SystemTime()
		} else {
			p.base += p.last
		}
		p.pid, p.last = rep.PID, 0
	}
	if err != nil {
		return 0, false
	}
	p.last = u
	m.last[rep.ID] = p.base + u
	return p.base + u, true
}

// all returns the CPU time of every replica in reps, and of every replica
// read before that is no longer in service (its group's count, or the last
// count of its process), so a phase that ends after a scale-in still has
// what its removed replicas used.
func (m *CPUMeter) All(reps []supervisor.Replica) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, rep := range reps {
		if d, ok := m.Usage(rep); ok {
			out[rep.ID] = d
		}
	}
	m.mu.Lock()
	gone := map[string]time.Duration{}
	for id, d := range m.last {
		if _, ok := out[id]; !ok {
			gone[id] = d
		}
	}
	m.mu.Unlock()
	for id, d := range gone {
		if u, ok := m.limiter.Usage(id); ok {
			d = u
		}
		out[id] = d
	}
	return out
}

// Sample returns each replica's CPU use since the previous Sample, in
// cores, and as a share of limit when limit is above 0; nil for a replica
// without two readings half a second apart. It keeps each replica's
// highest share (MaxShares).
func (m *CPUMeter) Sample(reps []supervisor.Replica, limit float64) (cores, shares []*float64) {
	now := time.Now()
	used := make([]time.Duration, len(reps))
	ok := make([]bool, len(reps))
	for i, rep := range reps {
		used[i], ok[i] = m.Usage(rep)
	}
	cores, shares = make([]*float64, len(reps)), make([]*float64, len(reps))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, rep := range reps {
		if !ok[i] {
			continue
		}
		prev, seen := m.seen[rep.ID]
		m.seen[rep.ID] = reading{used: used[i], at: now}
		dt := now.Sub(prev.at).Seconds()
		// Less than half a second says little: the one sample the feed
		// takes before its first tick, and the one it takes at the end.
		if !seen || dt < 0.5 || used[i] < prev.used {
			continue
		}
		c := (used[i] - prev.used).Seconds() / dt
		cores[i] = &c
		if limit > 0 {
			share := c / limit
			shares[i] = &share
			m.maxShare[rep.ID] = max(m.maxShare[rep.ID], share)
		}
	}
	return cores, shares
}

// MaxShares returns each replica's highest share of its limit in one
// Sample.
func (m *CPUMeter) MaxShares() map[string]float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.maxShare)
}
