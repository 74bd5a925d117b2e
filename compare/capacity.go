package compare

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/measure"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/internal/seed"
)

// startOpenLoop prepares each side's open-loop load and signs its pool in,
// before the clock of the run starts: the first phase measures the load,
// not a crowd at the login form.
func (r *Runner) startOpenLoop(ctx context.Context) error {
	if r.cfg.Rate <= 0 {
		return nil
	}
	if err := r.calibrate(ctx); err != nil {
		return err // stopped while calibrating
	}
	for si, s := range r.sides {
		var emails []string
		for j := range r.cfg.RateUsers {
			// Counted down from the last load-test member; the simulated
			// users count up from the first.
			emails = append(emails, seed.LoadTestEmail(seed.LoadTestUsers-si*r.cfg.RateUsers-j))
		}
		s.open = load.NewOpenLoop(load.OpenLoopConfig{
			Credential:     s.st.Credential,
			BaseURL:        s.url,
			Emails:         emails,
			Password:       seed.LoadTestPassword,
			Rate:           r.cfg.Rate,
			Deadline:       r.cfg.Deadline,
			MaxOutstanding: r.cfg.MaxOutstanding,
			Seed:           r.cfg.Seed*7_919 + int64(si),
			Stats:          s.stats,
			Gate:           r.gate,
		})
	}
	fmt.Fprintf(r.cfg.Stdout, "open-loop load: %g requests/s per side from %d signed-in users each, deadline %s, at most %d outstanding; signing them in ...\n",
		r.cfg.Rate, r.cfg.RateUsers, r.cfg.Deadline, r.cfg.MaxOutstanding)
	signCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	signed := make([]int, len(r.sides))
	took := make([]time.Duration, len(r.sides))
	_ = r.bothSides(signCtx, func(ctx context.Context, s *side) error {
		began := time.Now()
		i := slices.Index(r.sides, s)
		signed[i] = s.open.SignIn(ctx)
		took[i] = time.Since(began)
		return nil
	})
	if err := ctx.Err(); err != nil {
		return err // stopped while signing in
	}
	for i, s := range r.sides {
		fmt.Fprintf(r.cfg.Stdout, "%-14s %d of %d users signed in in %.1f s\n", s.name, signed[i], r.cfg.RateUsers, took[i].Seconds())
	}
	return nil
}

// phaseMark is a side's counters now, for the phase log.
func (r *Runner) phaseMark(s *side, after string, st measure.Stage) measure.Mark {
	reps := s.sup.Replicas()
	return measure.Mark{
		At:       r.since(time.Now()),
		After:    after,
		Stage:    st,
		Replicas: len(reps),
		Totals:   s.stats.Totals(),
		CPU:      s.cpu.All(reps),
	}
}

// markPhase begins a new phase on one side.
func (r *Runner) markPhase(s *side, after string, st measure.Stage) {
	s.phases.Mark(s.stats, r.phaseMark(s, after, st))
}

// markPhases begins a new phase on both sides at once.
func (r *Runner) markPhases(after string) {
	for _, s := range r.sides {
		r.markPhase(s, after, measure.Settled)
	}
}

// markOver begins the phase after an event that is over. With an
// open-loop load, its first deadline is a settling phase of its own: the
// requests that queued before the event end in it, answered or given up.
func (r *Runner) markOver(ctx context.Context, s *side, after string) {
	if r.cfg.Rate <= 0 {
		r.markPhase(s, after, measure.Settled)
		return
	}
	r.markPhase(s, after, measure.Settling)
	n := s.phases.Count()
	go func() {
		t := time.NewTimer(r.cfg.Deadline)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		s.phases.MarkIfLast(s.stats, n, r.phaseMark(s, after, measure.Settled))
	}()
}

// cpuLimit is the replicas' CPU limit when the kernel enforces it, else 0:
// a share of a limit that is not applied would mean nothing.
func (r *Runner) cpuLimit() float64 {
	if r.limiter == nil || !r.limiter.Enforcement().Enforced {
		return 0
	}
	return r.cfg.ReplicaCPU
}

// replicaCPU reports every replica's CPU over the run.
func (r *Runner) replicaCPU(s *side) []report.ReplicaCPUUse {
	var enf cpulimit.Enforcement
	if r.limiter != nil {
		enf = r.limiter.Enforcement()
	}
	used := s.cpu.All(s.sup.Replicas())
	maxShare := s.cpu.MaxShares()
	var out []report.ReplicaCPUUse
	for _, id := range slices.Sorted(maps.Keys(used)) {
		u := report.ReplicaCPUUse{Replica: id, CPUS: used[id].Seconds(), MaxShare: maxShare[id]}
		if th, ok := r.limiter.Throttling(id); ok {
			u.Periods, u.ThrottledPeriods, u.ThrottledS = th.Periods, th.Throttled, th.Time.Seconds()
			if th.Periods > 0 && enf.QuotaUS > 0 {
				u.QuotaShare = used[id].Seconds() / (float64(th.Periods) * float64(enf.QuotaUS) / 1e6)
			}
		}
		out = append(out, u)
	}
	return out
}

// openLoopInfo returns the open-loop load, nil without one.
func (r *Runner) openLoopInfo() *report.OpenLoopInfo {
	r.mu.Lock() // calibrate may be setting the rate
	defer r.mu.Unlock()
	if r.cfg.Rate <= 0 {
		return nil
	}
	return &report.OpenLoopInfo{Rate: r.cfg.Rate, RateUsers: r.cfg.RateUsers, DeadlineMS: float64(r.cfg.Deadline.Milliseconds()), MaxOutstanding: r.cfg.MaxOutstanding,
		Calibration: r.calibration}
}

// enforcement returns the replicas' CPU limit and how it is enforced, nil
// when none was asked for.
func (r *Runner) enforcement() *cpulimit.Enforcement {
	if r.limiter == nil {
		return nil
	}
	e := r.limiter.Enforcement()
	return &e
}

// goMaxProcs is the environment that sizes a CPU-limited replica's Go
// scheduler to its limit: GOMAXPROCS=1 under one core. The runtime's own
// choice never goes below 2, and a second thread that spins looking for
// work each time a request wakes the process burns the quota of a replica
// that is far from busy, so the same replica would carry less the less it
// had to do.
func (r *Runner) goMaxProcs() []string {
	if r.cpuLimit() == 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(max(1, int(r.cfg.ReplicaCPU)))}
}

// slowChecks is how many timed-out health checks in a row take a replica
// out of its balancer's rotation. Under a CPU limit, a saturated replica
// answers its checks late and the balancer's default (3, under a second)
// would take it out and hand its load, and with sticky sessions its users,
// to the others: a cascade the lesson is not about. So a CPU-limited run
// waits as long as a Kubernetes readiness probe does by default (3
// failures 10 s apart): 30 s of checks every 250 ms. A replica that died
// still leaves at once: its connections are refused.
func (r *Runner) slowChecks() int {
	if r.cfg.ReplicaCPU > 0 {
		return 120
	}
	return 0
}

// phaseCtx is done once the users have stopped, when no phase may begin.
func (r *Runner) phaseCtx() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.usersCtx == nil {
		return context.Background()
	}
	return r.usersCtx
}
