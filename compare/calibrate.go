package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
)

// ShippedCapacityReport is where a run of the capacity scenario on Linux
// as root lives in the repository, for a machine that cannot enforce the
// CPU limit (`make capacity-report` writes it again).
const ShippedCapacityReport = "docs/capacity/report.html"

// How calibration measures. A fixed rate cannot show a scale-out on every
// machine: on a quiet one two replicas carried it, on a busy one four did
// not. So the runner measures, before the clock starts, what one replica
// carries under its limit and what the runner itself can send, and offers
// what the starting replicas cannot carry.
const (
	// calibrateWarm is left out of the count: a replica's first requests
	// find SQLite's page cache cold and the quota of the current period
	// partly spent.
	calibrateWarm = time.Second
	// calibrateMeasure is 30 CFS periods, counted in calibrateWindows
	// windows of which the best counts: a window in which something else
	// on the machine held the replica back says less about what it can
	// carry than the others.
	calibrateMeasure = 3 * time.Second
	calibrateWindows = 3
	// calibratedQueue is how many requests may be outstanding per side, as
	// a share of what the rate has in flight when each request waits its
	// whole deadline (rate × deadline). The starting replicas carry at
	// most 1/Calibrate of the rate, so they hold a queue 0.4 × Calibrate
	// deadlines long (0.6 at 1.5): its slower requests miss their deadline,
	// as users of an overloaded service see. Four replicas hold 0.4 of a
	// deadline, and answer in time. The default, 2 × rate × deadline, let
	// the queue outgrow the deadline: every answer came late, the
	// cancelled requests closed their connections, and the replicas, busy
	// with new connections, never caught up (a run at 915/s: two replicas
	// carried 83/s, four 115/s).
	calibratedQueue = 0.4
	// calibrateUsers each keep load.ConnsPerUser requests in flight: 32
	// waiting requests keep a replica at its limit all the time, and are
	// few enough that none waits anywhere near its deadline.
	calibrateUsers = 2
	// generatorMeasure and generatorWorkers: the closed loop that measures
	// what the runner can send.
	generatorMeasure = time.Second
	generatorWorkers = 64
)

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
		r.cfg.ReplicaCPU, calibrateMeasure, calibrateUsers*load.ConnsPerUser)
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
		c.GeneratorRPS, err = generatorCapacity(ctx)
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
	c.MeasuredS, c.InFlight = calibrateMeasure.Seconds(), calibrateUsers*load.ConnsPerUser
	if err == nil && slices.Max(perReplica) <= 0 {
		err = errors.New("no replica answered a request")
	}
	if err != nil {
		c.Skipped = "the measurement failed: " + err.Error()
		r.setCalibration(c, r.cfg.Rate)
		fmt.Fprintf(out, "calibration: %s; offering the scenario's %g requests/s per side\n", c.Skipped, r.cfg.Rate)
		return nil
	}
	c.WantedRPS, c.Rate = calibratedRate(c.Factor, c.Replicas, perReplica, c.GeneratorRPS)
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
		r.cfg.MaxOutstanding, r.cfg.RateUsers = calibratedQueueOf(rate, r.cfg.Deadline, r.cfg.RateUsers)
	}
}

// calibratedRate is the rate calibration offers: factor × the starting
// replicas × the larger of the sides' capacities per replica, bounded by
// what the runner can send per side and by scenario.MaxRate; and the rate
// wanted before those bounds.
func calibratedRate(factor float64, replicas int, perReplica []float64, generator float64) (wanted, rate float64) {
	wanted = math.Round(factor * float64(replicas) * slices.Max(perReplica))
	return wanted, max(1, min(wanted, generator, scenario.MaxRate))
}

// calibratedQueueOf is how many requests may be outstanding per side at a
// calibrated rate (calibratedQueue), and how many users the pool needs so
// that each has a connection: one waiting in the client for a connection
// would spend its deadline where no replica can help it.
func calibratedQueueOf(rate float64, deadline time.Duration, users int) (maxOutstanding, poolUsers int) {
	maxOutstanding = max(1, int(math.Ceil(calibratedQueue*rate*deadline.Seconds())))
	need := (maxOutstanding + load.ConnsPerUser - 1) / load.ConnsPerUser
	return maxOutstanding, min(scenario.MaxRateUsers, max(users, need))
}

// replicaCapacity is what the side's first replica answers per second
// (2xx) at its CPU limit: a load of calibrateUsers signed-in users that
// keeps its queue full, sent to the replica's own address, the balancer
// left out, counted in the best of calibrateWindows windows after
// calibrateWarm. The users are load-test members of their own, after the
// simulated users (the open-loop pools count down from the last member).
func (r *Runner) replicaCapacity(ctx context.Context, si int, s *side) (float64, error) {
	reps := s.sup.Replicas()
	if len(reps) == 0 {
		return 0, fmt.Errorf("%s: no replica in service", s.name)
	}
	rep := reps[0]
	var emails []string
	for j := range calibrateUsers {
		emails = append(emails, seed.LoadTestEmail(len(r.sides)*r.cfg.Users+si*calibrateUsers+j+1))
	}
	stats := load.NewSideStats()
	inFlight := calibrateUsers * load.ConnsPerUser
	ol := load.NewOpenLoop(load.OpenLoopConfig{
		Credential: s.st.Credential,
		BaseURL:    "http://" + rep.Addr,
		Emails:     emails,
		Password:   seed.LoadTestPassword,
		// Far more arrivals than the replica answers: those beyond the
		// requests in flight are dropped at once, so the replica always has
		// inFlight requests waiting, as a closed loop would keep it.
		Rate:           min(scenario.MaxRate, max(1000, 30_000*r.cfg.ReplicaCPU)),
		Deadline:       10 * time.Second,
		MaxOutstanding: inFlight,
		Seed:           r.cfg.Seed*7_919 + 101 + int64(si),
		Stats:          stats,
		Gate:           &load.Gate{},
	})
	signCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	signed := ol.SignIn(signCtx)
	cancel()
	if signed == 0 {
		return 0, fmt.Errorf("%s: no calibration user could sign in on %s", s.name, rep.ID)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ol.Run(runCtx) }()
	defer func() { stop(); <-done }()
	if !pause(ctx, calibrateWarm) {
		return 0, ctx.Err()
	}
	best := 0.0
	for range calibrateWindows {
		began, before := time.Now(), stats.Totals().OK
		if !pause(ctx, calibrateMeasure/calibrateWindows) {
			return 0, ctx.Err()
		}
		answered, took := stats.Totals().OK-before, time.Since(began)
		best = max(best, float64(answered)/took.Seconds())
	}
	return best, nil
}

// generatorBody stands for a replica's answer to a catalogue page: about
// the size of twenty books in the envelope.
var generatorBody = []byte(`{"success":true,"data":[` + strings.TrimSuffix(strings.Repeat(
	`{"id":101,"title":"A book of some length, as the catalogue has them","author":"An Author","isbn":"9780000000000","year":1999,"copies":3,"available":2},`, 20), ",") + `],"total":500}`)

// generatorCapacity is what the runner can send and have answered per
// second, all sides together: a closed loop of generatorWorkers requests,
// each through a balancer of the runner's own to a server in the runner's
// process that answers at once, counted for generatorMeasure. The server
// spends the runner's CPU where a replica would spend its own, so this is
// a little below what the runner sends to real replicas.
func generatorCapacity(ctx context.Context) (float64, error) {
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("the generator's measurement: %w", err)
	}
	sink := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(generatorBody)
	})}
	go func() { _ = sink.Serve(sinkLn) }()
	defer sink.Close()
	lb := balancer.New(balancer.Config{Side: "calibration"})
	lb.SetReadyBackends([]balancer.Backend{{ID: "sink", Addr: sinkLn.Addr().String()}})
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("the generator's measurement: %w", err)
	}
	lbSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: lb}
	go func() { _ = lbSrv.Serve(lbLn) }()
	defer lbSrv.Close()

	url := "http://" + lbLn.Addr().String() + client.FindBooksPath(library.BookFilter{Limit: 20})
	ctx, cancel := context.WithTimeout(ctx, generatorMeasure)
	defer cancel()
	var answered atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	// As the open-loop users have them: a transport per user, at most
	// ConnsPerUser connections each.
	for range generatorWorkers / load.ConnsPerUser {
		t := &http.Transport{MaxConnsPerHost: load.ConnsPerUser, MaxIdleConnsPerHost: load.ConnsPerUser}
		defer t.CloseIdleConnections()
		hc := &http.Client{Transport: t}
		for range load.ConnsPerUser {
			wg.Go(func() {
				for ctx.Err() == nil {
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					if err != nil {
						return
					}
					resp, err := hc.Do(req)
					if err != nil {
						continue
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == http.StatusOK && ctx.Err() == nil {
						answered.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return 0, err
	}
	return float64(answered.Load()) / time.Since(began).Seconds(), nil
}

// pause waits d, and reports false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
