package compare

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/measure"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/internal/seed"
)

// ShippedCapacityReport is where a run of the capacity scenario on Linux
// as root lives in the repository, for a machine that cannot enforce the
// CPU limit (`make capacity-report` writes it again).
const ShippedCapacityReport = "docs/capacity/report.html"

// calibrate sets the open-loop rate from what it measures, when the
// scenario asks for it (Config.Calibrate): Calibrate × the starting
// replicas × what one replica answers per second at its CPU limit, bounded
// by what the runner can send. Both sides get the same rate, so their
// numbers compare; it is worked out from the side whose replica carried
// more, so neither side's starting replicas carry it. Where the limit is
// not enforced, or the measurement fails, the rate stays the scenario's and
// the runner says why. It runs before the clock starts, on the replicas
// already up; its requests are not counted in the run.
func (r *Runner) calibrate(ctx context.Context) error {
	if r.cfg.Calibrate <= 0 {
		return nil
	}
	out := r.cfg.Stdout
	c := &report.Calibration{Factor: r.cfg.Calibrate, Replicas: r.cfg.Scenario.Replicas, Rate: r.cfg.Rate}
	if r.cpuLimit() == 0 {
		c.Skipped = "the CPU limit is not enforced here, so one replica's capacity would be the machine's, and a scale-out would add processes, not CPU"
		r.setCalibration(c, r.cfg.Rate)
		fmt.Fprintf(out, "calibration: skipped: %s. Offering the scenario's %g requests/s per side; the scale-out's gain will not show. %s holds a run where the limit was enforced (Linux, as root; make capacity-report makes a new one).\n",
			c.Skipped, r.cfg.Rate, ShippedCapacityReport)
		return nil
	}
	fmt.Fprintf(out, "calibration: one replica per side at its limit of %g CPU, %s with %d requests in flight ...\n",
		r.cfg.ReplicaCPU, measure.ReplicaMeasure, measure.ReplicaUsers*load.ConnsPerUser)
	perReplica := make([]float64, len(r.sides))
	err := r.bothSides(ctx, func(ctx context.Context, s *side) error {
		i := slices.Index(r.sides, s)
		var err error
		perReplica[i], err = r.replicaCapacity(ctx, i, s)
		return err
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		c.GeneratorRPS, err = measure.GeneratorCapacity(ctx)
		c.GeneratorRPS = math.Floor(c.GeneratorRPS / float64(len(r.sides)))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.ReplicaRPS = map[string]float64{}
	for i, s := range r.sides {
		// Rounded before the rate is worked out from it, so that the
		// report's numbers multiply to its rate.
		perReplica[i] = math.Round(perReplica[i])
		c.ReplicaRPS[s.name] = perReplica[i]
	}
	c.MeasuredS, c.InFlight = measure.ReplicaMeasure.Seconds(), measure.ReplicaUsers*load.ConnsPerUser
	if err == nil && slices.Max(perReplica) <= 0 {
		err = errors.New("no replica answered a request")
	}
	if err != nil {
		c.Skipped = "the measurement failed: " + err.Error()
		r.setCalibration(c, r.cfg.Rate)
		fmt.Fprintf(out, "calibration: %s; offering the scenario's %g requests/s per side\n", c.Skipped, r.cfg.Rate)
		return nil
	}
	c.WantedRPS, c.Rate = measure.CalibratedRate(c.Factor, c.Replicas, perReplica, c.GeneratorRPS)
	r.setCalibration(c, c.Rate)
	fmt.Fprintln(out, strings.Replace(c.String(), "Calibration: ", "calibration: ", 1))
	return nil
}

// setCalibration records what calibration found and the rate it set,
// under the lock: the dashboard may ask for the open-loop load meanwhile.
func (r *Runner) setCalibration(c *report.Calibration, rate float64) {
	cc := *c
	cc.ReplicaRPS = maps.Clone(c.ReplicaRPS)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calibration = &cc
	r.cfg.Rate = rate
	if r.cfg.maxOutstandingFromRate {
		if c.Skipped != "" {
			r.cfg.MaxOutstanding = load.DefaultMaxOutstanding(rate, r.cfg.Deadline)
			return
		}
		r.cfg.MaxOutstanding, r.cfg.RateUsers = measure.CalibratedQueue(rate, r.cfg.Deadline, r.cfg.RateUsers)
	}
}

// replicaCapacity is what the side's first replica answers per second at
// its CPU limit (measure.ReplicaCapacity). Its users are load-test members
// of their own, after the simulated users (the open-loop pools count down
// from the last member).
func (r *Runner) replicaCapacity(ctx context.Context, si int, s *side) (float64, error) {
	reps := s.sup.Replicas()
	if len(reps) == 0 {
		return 0, fmt.Errorf("%s: no replica in service", s.name)
	}
	var emails []string
	for j := range measure.ReplicaUsers {
		emails = append(emails, seed.LoadTestEmail(len(r.sides)*r.cfg.Users+si*measure.ReplicaUsers+j+1))
	}
	return measure.ReplicaCapacity(ctx, measure.ReplicaLoad{Side: s.name, Replica: reps[0].ID, Addr: reps[0].Addr, Credential: s.st.Credential,
		Emails: emails, CPU: r.cfg.ReplicaCPU, Seed: r.cfg.Seed*7_919 + 101 + int64(si)})
}
