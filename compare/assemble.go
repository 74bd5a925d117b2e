package compare

import (
	"context"
	"slices"

	"github.com/statelab/statelab/compare/feed"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/internal/library"
)

func (r *Runner) report(ctx context.Context) *report.Report {
	r.mu.Lock()
	start, maxLate := r.start, r.maxLate
	r.mu.Unlock()
	rep := &report.Report{
		Scenario:    r.cfg.Scenario.Name,
		Description: r.cfg.Scenario.Description,
		StartedAt:   start.UTC(),
		DurationS:   r.elapsed().Seconds(),
		Users:       r.cfg.Users,
		Seed:        r.cfg.Seed,
		OpenLoop:    r.openLoopInfo(),
		ReplicaCPU:  r.enforcement(),
		NoReadCache: r.cfg.NoReadCache,
		ReadCache:   r.readCache(),
		Store:       r.db.Kind,
		Network:     r.network(),
		Interrupted: ctx.Err() != nil,
		Manual:      r.cfg.Manual,
		Sides:       map[string]report.SideReport{},
		Unexpected:  map[string]map[string]int64{},
		Events:      r.Events(),
		Timeline: report.TimelineStats{
			MaxLateMS:    float64(maxLate.Microseconds()) / 1000,
			FeedMaxGapMS: float64(r.feed.MaxGap().Microseconds()) / 1000,
			ReadyMSP50:   map[string]float64{},
			ReadyMSMax:   map[string]float64{},
			ReplicaStart: map[string]int{},
		},
	}
	var borrowIDs []int64
	for _, s := range r.sides {
		rep.Sides[s.name] = report.SideReport{Strategy: s.st, Totals: s.stats.Totals(), Balance: s.balance.Windows(),
			Phases: s.phases.Phases(s.stats, r.cpuLimit()), ReplicaCPU: r.replicaCPU(s),
			Costs: report.Costs{UserCosts: s.stats.UserCosts(), ServerCosts: r.serverCosts(s)}, LBRetryBy: s.stats.BalancerRetries(),
			Replicas: s.replicas()}
		rep.SideOrder = append(rep.SideOrder, s.name)
		rep.Unexpected[s.name] = s.stats.UnexpectedSamples()
		borrowIDs = append(borrowIDs, s.stats.BorrowIDs()...)
		d := s.sup.ReadyDurations()
		rep.Timeline.ReplicaStart[s.name] = len(d)
		if len(d) > 0 {
			slices.Sort(d)
			rep.Timeline.ReadyMSP50[s.name] = float64(d[len(d)/2].Microseconds()) / 1000
			rep.Timeline.ReadyMSMax[s.name] = float64(d[len(d)-1].Microseconds()) / 1000
		}
	}
	rep.Consistency = r.checkConsistency(context.WithoutCancel(ctx), borrowIDs)
	rep.Series = feed.Series(r.feed.History(-1), rep.SideOrder)
	rep.Losses = report.LossesPerEvent(rep.Events, rep.Series, rep.SideOrder, rep.DurationS)
	return rep
}

// readCache names the replicas' read cache mode, for the report.
func (r *Runner) readCache() string {
	if r.cfg.NoReadCache {
		return string(library.ReadCacheOff)
	}
	return string(r.cfg.ReadCache.Mode())
}

// network is what lies between the run's processes.
func (r *Runner) network() report.Network {
	n := report.Network{Hosts: report.HostsLocal,
		LatencyMS: float64(r.cfg.Latency.Microseconds()) / 1000, JitterMS: float64(r.cfg.Jitter.Microseconds()) / 1000}
	if r.lab != nil {
		n.Hosts, n.Subnet = report.HostsNetns, r.lab.Subnet().String()
	}
	return n
}

// replicas are the side's replicas in service now, each with its link.
func (s *side) replicas() []report.Replica {
	reps := s.sup.Replicas()
	out := make([]report.Replica, len(reps))
	for i, rep := range reps {
		out[i] = report.Replica{Name: rep.ID, Addr: rep.Addr, Link: s.linkOf(rep.Addr)}
	}
	return out
}

// checkConsistency checks the shared database after the run: every borrow a
// user was answered 201 for exists, and the copies add up.
func (r *Runner) checkConsistency(ctx context.Context, borrowIDs []int64) report.Consistency {
	var c report.Consistency
	var missing []int64
	var err error
	for _, id := range borrowIDs {
		var ok bool
		if ok, err = r.db.BorrowExists(ctx, id); err != nil {
			break
		}
		if !ok {
			missing = append(missing, id)
		}
	}
	c.BorrowsExist = report.BorrowsCheck(len(borrowIDs), missing, err)
	db, err := r.db.CheckConsistency(ctx)
	c.NoNegativeAvailability, c.CopiesAddUp = report.CopiesChecks(db, err)
	c.KeysAppliedOnce, c.BorrowsOnce = report.KeysChecks(db, err, borrowIDs)
	c.OK = c.BorrowsExist.OK && c.BorrowsOnce.OK && c.KeysAppliedOnce.OK && c.NoNegativeAvailability.OK && c.CopiesAddUp.OK
	return c
}
