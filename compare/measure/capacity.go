package measure

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
)

// How calibration measures (the runner's calibrate, Config.Calibrate). A fixed rate cannot show a scale-out on every
// machine: on a quiet one two replicas carried it, on a busy one four did
// not. So the runner measures, before the clock starts, what one replica
// carries under its limit and what the runner itself can send, and offers
// what the starting replicas cannot carry.
const (
	// replicaWarm is left out of the count: a replica's first requests
	// find SQLite's page cache cold and the quota of the current period
	// partly spent.
	replicaWarm = time.Second
	// ReplicaMeasure is 30 CFS periods, counted in replicaWindows
	// windows of which the best counts: a window in which something else
	// on the machine held the replica back says less about what it can
	// carry than the others.
	ReplicaMeasure = 3 * time.Second
	replicaWindows = 3
	// queueShare is how many requests may be outstanding per side, as
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
	queueShare = 0.4
	// ReplicaUsers each keep load.ConnsPerUser requests in flight: 32
	// waiting requests keep a replica at its limit all the time, and are
	// few enough that none waits anywhere near its deadline.
	ReplicaUsers = 2
	// generatorMeasure and generatorWorkers: the closed loop that measures
	// what the runner can send.
	generatorMeasure = time.Second
	generatorWorkers = 64
)

// CalibratedRate is the rate calibration offers: factor × the starting
// replicas × the larger of the sides' capacities per replica, bounded by
// what the runner can send per side and by scenario.MaxRate; and the rate
// wanted before those bounds.
func CalibratedRate(factor float64, replicas int, perReplica []float64, generator float64) (wanted, rate float64) {
	wanted = math.Round(factor * float64(replicas) * slices.Max(perReplica))
	return wanted, max(1, min(wanted, generator, scenario.MaxRate))
}

// CalibratedQueue is how many requests may be outstanding per side at a
// calibrated rate (queueShare), and how many users the pool needs so
// that each has a connection: one waiting in the client for a connection
// would spend its deadline where no replica can help it.
func CalibratedQueue(rate float64, deadline time.Duration, users int) (maxOutstanding, poolUsers int) {
	maxOutstanding = max(1, int(math.Ceil(queueShare*rate*deadline.Seconds())))
	need := (maxOutstanding + load.ConnsPerUser - 1) / load.ConnsPerUser
	return maxOutstanding, min(scenario.MaxRateUsers, max(users, need))
}

// ReplicaLoad is the load ReplicaCapacity sends one replica.
type ReplicaLoad struct {
	Side, Replica string // the side's strategy and the replica's id, for errors
	Addr          string // the replica's own address: the balancer left out
	Credential    string // what the users sign in for (the strategy's)
	Emails        []string
	CPU           float64 // the replica's CPU limit in cores
	Seed          int64
}

// ReplicaCapacity is what one replica answers per second (2xx) at its CPU
// limit: a load of ReplicaUsers signed-in users (l.Emails, load-test
// members) that keeps its queue full, sent to the replica's own address,
// counted in the best of replicaWindows windows after replicaWarm.
func ReplicaCapacity(ctx context.Context, l ReplicaLoad) (float64, error) {
	stats := load.NewSideStats()
	inFlight := ReplicaUsers * load.ConnsPerUser
	ol := load.NewOpenLoop(load.OpenLoopConfig{
		Credential: l.Credential,
		BaseURL:    "http://" + l.Addr,
		Emails:     l.Emails,
		Password:   seed.LoadTestPassword,
		// Far more arrivals than the replica answers: those beyond the
		// requests in flight are dropped at once, so the replica always has
		// inFlight requests waiting, as a closed loop would keep it.
		Rate:           min(scenario.MaxRate, max(1000, 30_000*l.CPU)),
		Deadline:       10 * time.Second,
		MaxOutstanding: inFlight,
		Seed:           l.Seed,
		Stats:          stats,
		Gate:           &load.Gate{},
	})
	signCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	signed := ol.SignIn(signCtx)
	cancel()
	if signed == 0 {
		return 0, fmt.Errorf("%s: no calibration user could sign in on %s", l.Side, l.Replica)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ol.Run(runCtx) }()
	defer func() { stop(); <-done }()
	if !pause(ctx, replicaWarm) {
		return 0, ctx.Err()
	}
	best := 0.0
	for range replicaWindows {
		began, before := time.Now(), stats.Totals().OK
		if !pause(ctx, ReplicaMeasure/replicaWindows) {
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

// GeneratorCapacity is what the runner can send and have answered per
// second, all sides together: a closed loop of generatorWorkers requests,
// each through a balancer of the runner's own to a server in the runner's
// process that answers at once, counted for generatorMeasure. The server
// spends the runner's CPU where a replica would spend its own, so this is
// a little below what the runner sends to real replicas.
func GeneratorCapacity(ctx context.Context) (float64, error) {
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
