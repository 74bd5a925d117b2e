package compare

import (
	"sync"

	"github.com/statelab/statelab/compare/feed"
	"github.com/statelab/statelab/compare/filesd"
	"github.com/statelab/statelab/compare/report"
)

// The feed's types, as the runner's History and the dashboard's tests
// name them.
type (
	Sample      = feed.Sample
	SideSample  = feed.SideSample
	ReplicaInfo = feed.ReplicaInfo
)

// HistoryLimit bounds the feed's history (feed.HistoryLimit).
const HistoryLimit = feed.HistoryLimit

// sample is the runner's snapshot function for the feed.
func (r *Runner) sample() Sample {
	r.mu.Lock()
	phase := r.phase
	r.mu.Unlock()
	s := Sample{ElapsedS: r.elapsed().Seconds(), Phase: phase, Paused: r.gate.Paused(), Sides: map[string]SideSample{}}
	for _, sd := range r.sides {
		reps := sd.sup.Replicas()
		info := make([]ReplicaInfo, len(reps))
		var wg sync.WaitGroup
		for i, rep := range reps {
			info[i] = ReplicaInfo{ID: rep.ID, Addr: rep.Addr, PID: rep.PID, Restarts: rep.Restarts, Link: sd.linkOf(rep.Addr)}
			wg.Go(func() {
				c := r.readReplica(sd, rep)
				info[i].Sessions, info[i].SessionsInUse = c.Held, c.InUse
			})
		}
		wg.Wait()
		cores, shares := sd.cpu.Sample(reps, r.cpuLimit())
		for i := range info {
			info[i].CPUCores, info[i].CPUShare = cores[i], shares[i]
		}
		buckets := sd.stats.Buckets()
		costs := report.Costs{UserCosts: sd.stats.UserCosts(), ServerCosts: r.spent(sd)}
		s.Sides[sd.name] = SideSample{Totals: sd.stats.Totals(), Replicas: info, Buckets: buckets, Costs: &costs}
	}
	return s
}

// targetsChanged is called whenever a side's set of replicas changes. It
// rewrites Config.FileSD with the runner and the replicas in service now.
//
// The two sides' supervisors call it concurrently; r.mu makes one rewrite
// wait for the other, and each reads both sides' sets inside the lock, so
// the last file written holds every change. A failed write is logged and
// the run goes on: Prometheus is an extra, the lab works without it.
func (r *Runner) targetsChanged() {
	if r.cfg.FileSD == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var replicas []filesd.TargetSide
	for _, s := range r.sides {
		replicas = append(replicas, filesd.TargetSide{Strategy: s.name, Server: s.st.Server, Replicas: s.sup.Replicas()})
	}
	if err := filesd.WriteFileSD(r.cfg.FileSD, filesd.TargetGroups(r.cfg.Addr, replicas)); err != nil && r.cfg.Logger != nil {
		r.cfg.Logger.Warn("prometheus targets not written", "path", r.cfg.FileSD, "err", err)
	}
}
