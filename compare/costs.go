package compare

import (
	"sync"

	"github.com/statelab/statelab/compare/measure"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/supervisor"
)

// readReplica scrapes one replica, keeps its identification reading and
// returns what it said of its sessions.
func (r *Runner) readReplica(s *side, rep supervisor.Replica) measure.SessionCount {
	rd, ok := measure.Scrape(r.scrapeClient, rep.Addr)
	if !ok {
		return measure.SessionCount{}
	}
	s.ident.Set(rep.PID, rd)
	return rd.Sessions
}

// serverCosts reads every replica of the side in service now, then adds up
// what all its processes spent.
func (r *Runner) serverCosts(s *side) report.ServerCosts {
	var wg sync.WaitGroup
	for _, rep := range s.sup.Replicas() {
		wg.Go(func() { r.readReplica(s, rep) })
	}
	wg.Wait()
	return r.spent(s)
}

// spent adds up what the side's processes spent, from their last readings:
// the feed's once a second, or serverCosts' fresh ones.
func (r *Runner) spent(s *side) report.ServerCosts {
	var c report.ServerCosts
	id, calls := s.ident.Total()
	c.Identifications = int64(id.Count)
	c.SharedRoundTrips = int64(calls)
	if id.Count > 0 {
		c.IdentifyUS = id.Sum / float64(id.Count) * 1e6
		c.IdentifyUSP50 = id.Quantile(.5) * 1e6
		c.SharedRoundTripsPerRequest = calls / float64(id.Count)
	}
	cpu, _ := s.sup.CPUTime()
	c.CPUSeconds = cpu.Seconds()
	for _, n := range s.lb.Requests() {
		c.BalancedRequests += int64(n)
	}
	for _, svc := range s.services {
		cpu, _ := svc.CPUTime()
		c.StoreCPUSeconds += cpu.Seconds()
	}
	if c.BalancedRequests > 0 {
		c.CPUPerRequestUS = c.CPUSeconds / float64(c.BalancedRequests) * 1e6
		c.StoreCPUPerRequestUS = c.StoreCPUSeconds / float64(c.BalancedRequests) * 1e6
	}
	return c
}
