package compare

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/feed"
	"github.com/statelab/statelab/compare/hosts"
	"github.com/statelab/statelab/compare/link"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/measure"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/httpserve"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/privfile"
	"github.com/statelab/statelab/internal/seed"
	"github.com/statelab/statelab/internal/services"
	"github.com/statelab/statelab/internal/store"
	"github.com/statelab/statelab/stateful"
)

// Config is everything a comparison run needs. cmd/statelab fills it from
// flags.
type Config struct {
	Binary   string // the statelab binary the replicas run (os.Executable())
	Scenario scenario.Scenario
	// Sides are the two strategies put side by side, left column first.
	Sides [2]strategy.Strategy
	Users int // simulated users per side
	Seed  int64
	Think time.Duration // mean think time between a user's steps
	Addr  string        // the runner's own address: metrics, feed, controls, dashboard
	// BalancerAddrs are the two sides' balancers, in the order of Sides.
	BalancerAddrs [2]string
	ReportDir     string // where report.json and report.md go
	WorkDir       string // the shared database, the replicas' log, the services' directories
	Hold          bool   // keep everything up after the timeline, until ctx is done
	// Manual holds each scenario event until someone fires it (POST
	// /api/control/next, the dashboard's Next event button) instead of
	// playing it at its time: a teacher goes on when the class is ready.
	Manual bool
	// Class lets students join with their own browsers (package class):
	// the runner forwards /s/{side}/ to each side's balancer, counts each
	// student's requests, and only the teacher's token presses the
	// controls. Users may then be 0.
	Class       bool
	Stdout      io.Writer // progress, summary
	Interactive bool      // Stdout is a terminal: redraw the progress line in place
	Logger      *slog.Logger
	// Dashboard, when set, is served at / on the runner's address.
	Dashboard http.Handler
	// FileSD, when set, is the Prometheus file_sd file the runner keeps
	// listing itself (at Addr) and every replica in service (package filesd).
	FileSD string
	// Timeouts of the runner's and the balancers' servers; zero fields
	// are httpserve.Defaults().
	Timeouts httpserve.Timeouts

	// Rate is the open-loop load: requests per second per side that arrive
	// whether or not the side keeps up (see OpenLoopConfig), from a pool
	// of RateUsers signed-in users per side, each request with Deadline
	// (DefaultDeadline when zero) and at most MaxOutstanding in flight
	// (DefaultMaxOutstanding when zero). 0 sends none: only the Users.
	Rate           float64
	RateUsers      int
	Deadline       time.Duration
	MaxOutstanding int
	// ReplicaCPU is every replica's CPU limit in cores, enforced by the
	// kernel where the machine allows it (package cpulimit); 0 sets none.
	ReplicaCPU float64
	// Calibrate, above 0, sets Rate before the clock starts from what one
	// replica answers per second under ReplicaCPU (calibrate.go, measured
	// by package measure); Rate is the load where the limit is not enforced.
	Calibrate float64
	// NoReadCache starts every replica with --read-cache=false, so every
	// read asks the database (the capacity scenario's read_cache: false).
	NoReadCache bool
	// ReadCache, unless NoReadCache is set, is the replicas' read cache
	// mode (--read-cache): ReadCacheNotify answers from memory until
	// PostgreSQL notifies a change.
	ReadCache library.ReadCache
	// Store is the shared resource store: "sqlite" (the default, a file in
	// WorkDir) or "postgres" (a private PostgreSQL the runner starts, or
	// the database StoreURL names, whose password, if any, reaches the
	// replicas through their environment).
	Store    string
	StoreURL string
	// Latency, when above 0, puts a link (package link) on every hop the
	// lab controls — each balancer to each of its replicas, the replicas
	// to each shared service (redis-server, PostgreSQL) — holding the
	// bytes for Latency (± Jitter) each way, so a round trip across one
	// costs 2·Latency. Whole milliseconds.
	Latency time.Duration
	Jitter  time.Duration
	// Hosts is where the processes run: hosts.Local (or ""), all on this
	// machine's one network stack, or hosts.Netns, every replica, each
	// balancer and each shared service on a host of its own (package
	// hosts: a network namespace on the run's bridge; Linux, root), with
	// addresses from HostsSubnet (the zero Prefix: a free /24 inside
	// 198.18.0.0/15). The runner, its users and its dashboard stay in the
	// runner's own namespace: the users reach the balancers over the bridge,
	// and the dashboard stays on Addr.
	Hosts       string
	HostsSubnet netip.Prefix
	// OnEvent, when set, is called by the timeline just before it plays
	// each scenario event, with the time since the users started and every
	// side's counters at that instant, keyed by strategy name: what a
	// caller needs to cut the run into windows that begin exactly where
	// their events begin (the matrix does). It must not block for long: the
	// timeline waits for it.
	OnEvent func(at time.Duration, e scenario.Event, totals map[string]load.Totals)
	// Pace, when set, lets the timeline wait rather than keep to the
	// scenario's clock; without it every event starts at its time,
	// however long the one before took.
	Pace *Pace
	// Probe, when set, is called once the users have stopped and the
	// report's numbers are taken, while the replicas and balancers are still
	// up, with each side's balancer URL keyed by strategy name. Its requests
	// are not counted in the report. The matrix asks its revocation
	// questions here.
	Probe func(ctx context.Context, balancers map[string]string)

	// maxOutstandingFromRate: MaxOutstanding is the default for the rate,
	// to be worked out again once calibration has set it.
	maxOutstandingFromRate bool
}

// Pace makes a timeline wait for its users and its events, so that the
// stretch after each event keeps its length however busy the machine is.
// Whatever it waits, it moves every later event, and the end of the run,
// later by as much.
type Pace struct {
	// Ready, when set, holds the first event until it returns true for
	// every side's counters (polled every 20 ms), or MaxWait has passed
	// (default 30 s): the matrix waits until every user has signed in.
	Ready   func(map[string]load.Totals) bool
	MaxWait time.Duration
	// MinGap is the least time from the end of one event to the start of
	// the next, and from the last one to the end of the run.
	MinGap time.Duration
}

// side is one half of the comparison: one strategy's replicas, their
// balancer, the users' counters.
type side struct {
	name     string // the strategy's name: the side's key everywhere
	st       strategy.Strategy
	sup      *supervisor.Supervisor
	lb       *balancer.Balancer
	stats    *load.SideStats
	url      string
	listener net.Listener
	// services are the side's private services its sessions live in (a
	// redis-server); none otherwise.
	services []*services.Service
	// balance follows each replica's share of the requests after every
	// scale event.
	balance measure.BalanceLog
	// open sends the side's open-loop requests; nil without a Rate.
	open *load.OpenLoop
	// phases are the stretches between events.
	phases measure.PhaseLog
	// cpu reads the replicas' CPU time.
	cpu *measure.CPUMeter
	// links are the side's links from its balancer to its replicas, by
	// replica address; nil without Config.Latency.
	links *link.Set
	// linkMu guards linked.
	linkMu sync.Mutex
	// linked is the replica id behind each replica address with a link.
	linked map[string]string
	// ident keeps what every replica process spent identifying callers.
	ident measure.IdentLog
	// lastWords keeps what each replica said of its sessions just before a
	// graceful stop, drained: what went with it.
	lastWords measure.LastWords
	// users are the side's simulated users, in the same order on both
	// sides, so a client-restart hits the same users on each.
	users []*load.User
}

// Runner plays a scenario on both sides at once.
type Runner struct {
	cfg    Config
	sides  []*side // in the order of Config.Sides
	gate   *load.Gate
	db     *store.Shared
	reg    *prometheus.Registry
	events *prometheus.CounterVec
	feed   *feed.Feed
	start  time.Time
	// scrapeClient reads the replicas' own metrics for the feed.
	scrapeClient *http.Client
	// limiter puts each replica under Config.ReplicaCPU; nil without one.
	limiter *cpulimit.Limiter
	// usersCtx is done once the users stop: no phase begins after it.
	usersCtx context.Context
	// links are the run's links to its shared services (redis-servers,
	// PostgreSQL); nil without Config.Latency. Each side keeps its own to
	// its replicas.
	links *link.Set
	// replicaDSN is the replicas' --db: the shared store's DSN, through
	// its link when there is one.
	replicaDSN string
	// lab holds the hosts of a run with Config.Hosts netns; nil otherwise.
	lab *hosts.Lab

	mu sync.Mutex
	// calibration is what calibrate measured; nil without it.
	calibration *report.Calibration
	log         []report.EventRecord
	phase       string
	maxLate     time.Duration
	// pending is, in manual mode, the event waiting to be fired; nil
	// otherwise.
	pending *PendingEvent
	// next hands the timeline, waiting in manual mode, the channel on
	// which to say how the event it then plays went.
	next chan chan error
	// class is the students of a --class run; nil otherwise.
	class *class.Class
}

// PendingEvent is, in manual mode, the scenario's next event, waiting for
// someone to fire it.
type PendingEvent struct {
	scenario.Event
	Index int `json:"index"` // 1 for the first event of the scenario
	Of    int `json:"of"`    // how many events the scenario has
}

// New prepares a run: the shared database, the listeners, the supervisors,
// and the private services (a redis-server) of a side whose sessions live
// in one (which Run stops). No replica starts until Run.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	r := &Runner{cfg: cfg, gate: &load.Gate{}, reg: prometheus.NewRegistry(), phase: "starting", next: make(chan chan error),
		scrapeClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}
	if err := r.openShared(ctx); err != nil {
		return nil, err
	}
	r.registerMetrics()
	fail := func(err error) (*Runner, error) {
		r.closeSides()
		r.db.Close()
		if cerr := r.lab.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if cerr := r.limiter.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	logFile, err := openReplicaLog(cfg.WorkDir)
	if err != nil {
		return fail(err)
	}
	for i, st := range cfg.Sides {
		s, err := r.newSide(ctx, i, st, logFile)
		if s != nil {
			r.sides = append(r.sides, s)
		}
		if err != nil {
			return fail(err)
		}
	}
	r.registerSideMetrics()
	r.feed = feed.New(r.sample)
	if err := r.newClass(); err != nil {
		return fail(err)
	}
	return r, nil
}

// validate checks the config and fills in what it leaves to defaults.
func (cfg *Config) validate() error {
	if err := cfg.validateLoad(); err != nil {
		return err
	}
	cfg.resolveLoad()
	if err := cfg.Scenario.Validate(); err != nil {
		return err
	}
	if err := link.Validate(cfg.Latency, cfg.Jitter); err != nil {
		return err
	}
	mode, err := hosts.ParseMode(cfg.Hosts)
	if err != nil {
		return err
	}
	cfg.Hosts = mode
	if mode == hosts.Netns && cfg.StoreURL != "" {
		return errors.New("--hosts netns puts the replicas on hosts with no route beyond the lab's bridge, so they cannot reach the database of --store-url; use --store postgres (a private PostgreSQL on a host of its own), or --hosts local")
	}
	if cfg.Sides[0].Name == "" || cfg.Sides[0].Name == cfg.Sides[1].Name {
		return errors.New("name two different strategies for the sides (statelab strategies lists them)")
	}
	for _, st := range cfg.Sides {
		if err := st.LookServices(); err != nil {
			return fmt.Errorf("strategy %s: %w", st.Name, err)
		}
	}
	return nil
}

// openShared opens what both sides share: the hosts (first: a machine
// that cannot have them stops the run before anything has started), the
// shared store, the links to it and the CPU limiter. On an error it closes
// what it opened.
func (r *Runner) openShared(ctx context.Context) error {
	lab, err := openLab(ctx, r.cfg)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, r.cfg, lab)
	if err != nil {
		lab.Close()
		return err
	}
	r.lab, r.db, r.replicaDSN = lab, db, db.DSN
	if r.cfg.Latency > 0 {
		r.links = r.newLinks()
		if host := db.Host(); host != "" {
			addr, err := r.links.To(host)
			if err == nil {
				r.replicaDSN, err = db.DSNVia(addr)
			}
			if err != nil {
				r.links.Close()
				db.Close()
				lab.Close()
				return fmt.Errorf("a link to the shared store: %w", err)
			}
		}
	}
	if r.cfg.ReplicaCPU > 0 {
		if r.limiter, err = cpulimit.Open(r.cfg.ReplicaCPU, r.cfg.Logger); err != nil {
			r.closeLinks()
			db.Close()
			lab.Close()
			return err
		}
	}
	return nil
}

// registerMetrics registers the runner's own metrics: the Go runtime's,
// the process's and the events played.
func (r *Runner) registerMetrics() {
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_scenario_events_total",
		Help: "Events played on the replicas, by kind (restart, crash, scale-out, scale-in, restart-store), strategy, server and source (scenario or control).",
	}, []string{"kind", "strategy", "server", "source"})
	r.reg.MustRegister(r.events)
}

// registerSideMetrics registers the sides' users' counters and replicas up.
func (r *Runner) registerSideMetrics() {
	sources := make([]load.Source, len(r.sides))
	for i, s := range r.sides {
		sources[i] = load.Source{Stats: s.stats, Strategy: s.name, Server: s.st.Server}
	}
	r.reg.MustRegister(load.NewCollector(sources))
	for _, s := range r.sides {
		sup := s.sup
		r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "statelab_replicas_up",
			Help:        "Replica processes running and ready, by strategy and server.",
			ConstLabels: prometheus.Labels{"strategy": s.name, "server": s.st.Server},
		}, func() float64 { return float64(len(sup.Replicas())) }))
	}
}

// openReplicaLog opens the replicas' log. It is for the one running the
// lab: it can hold what a replica logged about a request (privfile).
func openReplicaLog(dir string) (*os.File, error) {
	return privfile.Open(filepath.Join(dir, "replicas.log"), os.O_APPEND)
}

// newSide starts one side's balancer listening, and the services its
// sessions live in (internal/services), and makes its supervisor, which
// starts no replica yet. A side returned with an error is to be closed
// with the others.
func (r *Runner) newSide(ctx context.Context, i int, st strategy.Strategy, logFile *os.File) (*side, error) {
	ln, lbHost, err := r.listenBalancer(i, st)
	if err != nil {
		return nil, err
	}
	s := &side{name: st.Name, st: st, stats: load.NewSideStats(), listener: ln, url: "http://" + ln.Addr().String(),
		cpu: measure.NewCPUMeter(r.limiter)}
	endpoints, err := r.startServices(ctx, i, s)
	if err != nil {
		return s, err
	}
	if r.links != nil {
		s.links, s.linked = r.newLinks(), map[string]string{}
	}
	policy, err := balancer.ParseAffinity(st.Affinity)
	if err != nil {
		return s, err
	}
	bc := balancer.Config{Side: st.Name, Logger: r.cfg.Logger, Registerer: r.reg, Policy: policy, SlowChecks: r.slowChecks()}
	if lbHost != nil {
		bc.Dial = lbHost.DialContext // from the balancer's host, over the bridge
	}
	s.lb = balancer.New(bc)
	s.stats.CountRetries(s.lb.Retries)
	s.sup = r.newSupervisor(s, strategy.ReplicaConfig{DB: r.replicaDSN, NoReadCache: r.cfg.NoReadCache, ReadCache: r.cfg.ReadCache, ShutdownTimeout: 5 * time.Second, Services: endpoints}, logFile)
	return s, nil
}

// listenBalancer listens on the side's balancer address: on the
// balancer's own host with hosts, on the port asked for, where the users
// reach it over the bridge.
func (r *Runner) listenBalancer(i int, st strategy.Strategy) (net.Listener, *hosts.Host, error) {
	addr := r.cfg.BalancerAddrs[i]
	var lbHost *hosts.Host
	listen := net.Listen
	if r.lab != nil {
		var err error
		if lbHost, err = r.lab.Host("lb-" + st.Name); err != nil {
			return nil, nil, fmt.Errorf("%s balancer: %w", st.Name, err)
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, nil, fmt.Errorf("%s balancer: address %q: %w", st.Name, addr, err)
		}
		addr = net.JoinHostPort(lbHost.IP(), port)
		listen = lbHost.Listen
	}
	ln, err := listen("tcp", addr)
	if err != nil {
		flagName := [2]string{"left-addr", "right-addr"}[i]
		return nil, nil, fmt.Errorf("%s balancer: listen on %s: %w (is another lab running? pick another address with -%s)", st.Name, addr, err, flagName)
	}
	return ln, lbHost, nil
}

// startServices starts the shared services the side's replicas need (its
// session store's), each a private one for this side, on a host of its
// own with hosts, and returns how the replicas reach each: across a link
// with Config.Latency.
func (r *Runner) startServices(ctx context.Context, i int, s *side) (map[stateful.Service]strategy.Endpoint, error) {
	endpoints := map[stateful.Service]strategy.Endpoint{}
	for _, svc := range s.st.Services() {
		name := services.Name(svc)
		sc := services.Config{Dir: filepath.Join(r.cfg.WorkDir, name+"-"+strconv.Itoa(i+1))}
		if r.lab != nil {
			h, err := r.lab.Host(name + "-" + s.name)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", s.name, svc.Program, err)
			}
			sc.Host = h
		}
		run, err := services.Start(ctx, svc, sc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		s.services = append(s.services, run)
		ep := strategy.Endpoint{Addr: run.Addr(), Secret: run.Secret()}
		if r.links != nil {
			if ep.Addr, err = r.links.To(run.Addr()); err != nil {
				return nil, fmt.Errorf("%s: a link to %s: %w", s.name, svc.Program, err)
			}
		}
		endpoints[svc] = ep
	}
	return endpoints, nil
}

// newSupervisor makes the side's supervisor: its replicas start with rc,
// join the balancer once ready, and are drained before a graceful stop.
func (r *Runner) newSupervisor(s *side, rc strategy.ReplicaConfig, logFile *os.File) *supervisor.Supervisor {
	var confine func(string, *exec.Cmd) (func(int) error, error)
	if r.limiter != nil {
		confine = r.limiter.Confine
	}
	freeAddr, start := r.placeReplicas()
	return supervisor.New(supervisor.Config{
		Side:     s.name,
		Command:  s.st.Server,
		Binary:   r.cfg.Binary,
		Args:     slices.Concat(s.st.ReplicaArgs(rc), r.hostsArgs()),
		Env:      slices.Concat(s.st.ReplicaEnv(rc), r.db.Env, r.goMaxProcs()),
		Log:      logFile,
		Logger:   r.cfg.Logger,
		Confine:  confine,
		FreeAddr: freeAddr,
		Start:    start,
		OnReady:  func(rep supervisor.Replica) { s.lb.MarkReady(rep.ID) },
		BeforeStop: func(rep supervisor.Replica) {
			// Drain, then wait for the requests already handed to the
			// replica, so a graceful stop interrupts nothing. A replica
			// a surge restart replaced is out of rotation already, on
			// its old address: only the wait is left.
			be := balancer.Backend{ID: rep.ID, Addr: s.balancerAddr(rep.Addr)}
			s.lb.Drain(be)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.lb.WaitIdle(ctx, be); err != nil {
				r.cfg.Logger.Warn("stopping a replica with requests in flight", "err", err)
			}
			// Its last word: what it spent identifying callers, and the
			// sessions it is about to take with it.
			s.lastWords.Set(rep.ID, r.readReplica(s, rep))
		},
		OnChange: func(reps []supervisor.Replica) {
			// The supervisor's set holds only replicas it has seen
			// ready, so they join the rotation at once: a replacement
			// takes over from the process it replaces in one step.
			s.lb.SetReadyBackends(s.backendsOf(reps, r.cfg.Logger))
			s.unlinkGone(reps, r.cfg.Logger)
			r.targetsChanged()
		},
	})
}

// resolveLoad fills in the open-loop load's defaults, once, so that every
// reader of the config sees the numbers the run uses.
func (cfg *Config) resolveLoad() {
	if cfg.Rate <= 0 {
		return
	}
	cfg.Deadline = cmp.Or(cfg.Deadline, load.DefaultDeadline)
	if cfg.Calibrate > 0 && cfg.MaxOutstanding == 0 {
		cfg.maxOutstandingFromRate = true // once the calibrated rate is known
	}
	cfg.MaxOutstanding = cmp.Or(cfg.MaxOutstanding, load.DefaultMaxOutstanding(cfg.Rate, cfg.Deadline))
}

// validateLoad checks the users, the open-loop load and the CPU limit.
func (cfg *Config) validateLoad() error {
	minUsers := 1
	if cfg.Rate > 0 || cfg.Class {
		minUsers = 0 // the open-loop load alone is a load, and so is a class
	}
	if cfg.Users < minUsers || cfg.Users > scenario.MaxUsers {
		return fmt.Errorf("users is %d; use %d to %d per side (the seed has 1000 load-test members)", cfg.Users, minUsers, scenario.MaxUsers)
	}
	if cfg.Rate < 0 || cfg.Rate > scenario.MaxRate {
		return fmt.Errorf("rate is %g; use 0 (no open-loop load) to %d requests per second per side", cfg.Rate, scenario.MaxRate)
	}
	if cfg.Rate > 0 {
		if cfg.RateUsers < 1 || cfg.RateUsers > scenario.MaxRateUsers {
			return fmt.Errorf("rate users is %d; use 1 to %d signed-in users per side for the open-loop load", cfg.RateUsers, scenario.MaxRateUsers)
		}
		if cfg.Deadline < 0 || cfg.Deadline > time.Minute || cfg.Deadline > 0 && cfg.Deadline < 10*time.Millisecond {
			return fmt.Errorf("deadline is %s; use 10ms to 1m", cfg.Deadline)
		}
		if cfg.MaxOutstanding < 0 {
			return fmt.Errorf("max outstanding is %d; use a positive number, or 0 for the default", cfg.MaxOutstanding)
		}
	}
	if cfg.ReplicaCPU != 0 {
		if err := cpulimit.Validate(cfg.ReplicaCPU); err != nil {
			return err
		}
	}
	return scenario.ValidateCalibrate(cfg.Calibrate, cfg.ReplicaCPU, cfg.Rate)
}

// backendsOf is the balancer's view of the replicas: each at the address
// of its link, opened now for a replica new to the side, or at its own
// address without links.
func (s *side) backendsOf(reps []supervisor.Replica, logger *slog.Logger) []balancer.Backend {
	b := make([]balancer.Backend, len(reps))
	for i, rep := range reps {
		b[i] = balancer.Backend{ID: rep.ID, Addr: rep.Addr}
		if s.links == nil {
			continue
		}
		addr, err := s.links.To(rep.Addr)
		if err != nil {
			// Listening on 127.0.0.1:0 failed: the replica still serves,
			// without the latency, and the log says so.
			logger.Error("no link to a replica: it is reached without the latency", "replica", rep.ID, "addr", rep.Addr, "err", err)
			continue
		}
		s.linkMu.Lock()
		s.linked[rep.Addr] = rep.ID
		s.linkMu.Unlock()
		b[i].Addr = addr
	}
	return b
}

// balancerAddr is where the balancer reaches the replica at addr: its
// link, if it has one.
func (s *side) balancerAddr(addr string) string {
	if s.links != nil {
		if l, ok := s.links.Lookup(addr); ok {
			return l
		}
	}
	return addr
}

// linkOf is the address of the link to the replica at addr; "" without
// one.
func (s *side) linkOf(addr string) string {
	if s.links == nil {
		return ""
	}
	l, _ := s.links.Lookup(addr)
	return l
}

// unlinkGone removes the link of each replica no longer in the set, once
// the balancer has finished the requests it sent across it (a graceful
// stop has waited for them already; a crashed replica has none left that
// can finish).
func (s *side) unlinkGone(reps []supervisor.Replica, logger *slog.Logger) {
	if s.links == nil {
		return
	}
	in := map[string]bool{}
	for _, rep := range reps {
		in[rep.Addr] = true
	}
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	for addr, id := range s.linked {
		if in[addr] {
			continue
		}
		delete(s.linked, addr)
		be := balancer.Backend{ID: id, Addr: s.balancerAddr(addr)}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.lb.WaitIdle(ctx, be); err != nil {
				logger.Warn("closing a replica's link with requests in flight", "err", err)
			}
			s.links.Remove(addr)
		}()
	}
}

// closeSides undoes what New set up for the sides when it fails half-way.
func (r *Runner) closeSides() {
	for _, s := range r.sides {
		s.listener.Close()
		for _, svc := range s.services {
			_ = svc.Stop()
		}
	}
	r.closeLinks()
}

// closeLinks closes every link of the run; nothing without links.
func (r *Runner) closeLinks() {
	for _, s := range r.sides {
		if s.links != nil {
			s.links.Close()
		}
	}
	if r.links != nil {
		r.links.Close()
	}
}

// Registry returns the runner's metrics registry.
func (r *Runner) Registry() *prometheus.Registry { return r.reg }

// Run starts the replicas, the balancers and the users, plays the timeline,
// writes the report, and stops everything (after ctx is done, with Hold).
// It returns the report even when a consistency check failed; the error then
// says so.
func (r *Runner) Run(ctx context.Context, runnerListener net.Listener) (*report.Report, error) {
	// The hosts go last, once every process in them has stopped and the
	// shared store (a private PostgreSQL on a host) is closed.
	defer r.closeLab()
	defer r.db.Close()
	defer r.serve(ctx, runnerListener)()
	// The replicas' cgroups go once the replicas have: this runs after
	// stopAll. A runner killed before it gets here leaves them, and the
	// next runner removes them (cpulimit.Open).
	defer func() {
		if err := r.limiter.Close(); err != nil {
			r.cfg.Logger.Warn("cgroups left behind", "err", err)
		}
	}()
	// Whatever happens from here on, no replica (and no service)
	// outlives the runner.
	defer r.stopAll()

	if err := r.startReplicas(ctx); err != nil {
		return nil, err
	}
	if err := r.startOpenLoop(ctx); err != nil {
		return nil, err
	}
	usersCtx, stopUsers := context.WithCancel(ctx)
	users := r.startUsers(usersCtx)
	r.mu.Lock()
	r.start = time.Now()
	r.phase = "running"
	r.mu.Unlock()
	r.markPhases("start")
	// The open-loop arrivals begin with the first phase, so each one
	// counts in a phase.
	for _, s := range r.sides {
		if s.open != nil {
			users.wg.Go(func() { s.open.Run(usersCtx) })
		}
	}
	// The feed samples until Run returns, not until the users stop: its
	// last sample must carry the final numbers and the "finished" or
	// "holding" phase, and the replicas live controls change while holding.
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go r.feed.Run(feedCtx)
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); r.progress(usersCtx) }()

	timelineErr := r.playTimeline(ctx)
	stopUsers()
	users.stop()
	<-progressDone
	r.setPhase("finished")
	for _, s := range r.sides {
		s.balance.Close(r.elapsed().Seconds(), s.lb.Requests())
		s.phases.End(r.phaseMark(s, "", measure.Settled))
	}
	if timelineErr != nil && ctx.Err() == nil {
		return nil, timelineErr
	}
	return r.conclude(ctx, runnerListener)
}

// serve serves the runner's address and the sides' balancers, and returns
// what closes them.
func (r *Runner) serve(ctx context.Context, runnerListener net.Listener) (closeAll func()) {
	srv := httpserve.New(r.Handler(), r.cfg.Timeouts)
	go func() { _ = srv.Serve(runnerListener) }()
	lbCtx, stopLB := context.WithCancel(context.WithoutCancel(ctx))
	var servers []*http.Server
	for _, s := range r.sides {
		go s.lb.Run(lbCtx)
		hs := httpserve.New(s.lb, r.cfg.Timeouts)
		servers = append(servers, hs)
		go func() { _ = hs.Serve(s.listener) }()
	}
	return func() {
		for _, hs := range servers {
			hs.Close()
		}
		stopLB()
		srv.Close()
	}
}

// startReplicas puts the runner beside the replicas' CPU limit, says how
// it is enforced, and starts the scenario's replicas on both sides.
func (r *Runner) startReplicas(ctx context.Context) error {
	out := r.cfg.Stdout
	if err := r.limiter.Shelter(); err != nil {
		// The measurement still holds on a quiet machine: say so and go on.
		r.cfg.Logger.Warn("the runner stays in its own cgroup, where other programs may slow the load it sends", "err", err)
	}
	if r.limiter != nil {
		e := r.limiter.Enforcement()
		if e.Enforced {
			fmt.Fprintf(out, "replica CPU: %s\n", e)
		} else {
			fmt.Fprintf(out, "replica CPU: WARNING: %s\n", e)
		}
		if len(e.LeftoversRemoved) > 0 {
			fmt.Fprintf(out, "replica CPU: removed what runners killed before they could clean up left behind: %s\n", strings.Join(e.LeftoversRemoved, ", "))
		}
	}
	n := r.cfg.Scenario.Replicas
	fmt.Fprintf(out, "starting %d replica(s) per side ...\n", n)
	if err := r.bothSides(ctx, func(ctx context.Context, s *side) error { return s.sup.Scale(ctx, n) }); err != nil {
		return fmt.Errorf("start replicas: %w", err)
	}
	if r.lab != nil {
		fmt.Fprintf(out, "hosts: every replica, balancer and shared service on a network namespace of its own, on bridge %s, subnet %s; the runner is %s (`ip netns` lists them)\n",
			r.lab.Bridge(), r.lab.Subnet(), r.lab.Addr())
	}
	for _, s := range r.sides {
		fmt.Fprintf(out, "%-14s balancer %s (%s)\n", s.name, s.url, s.st.Where)
	}
	return nil
}

// userRun is the simulated users of a run, each going until the context
// startUsers was given is done.
type userRun struct {
	wg      sync.WaitGroup
	clients []*http.Client
}

// stop waits for the users (and whatever else joined wg) and closes their
// idle connections.
func (u *userRun) stop() {
	u.wg.Wait()
	for _, c := range u.clients {
		c.CloseIdleConnections()
	}
}

// startUsers starts Config.Users simulated users per side, until ctx is
// done; no phase begins after that.
func (r *Runner) startUsers(ctx context.Context) *userRun {
	r.mu.Lock()
	r.usersCtx = ctx
	r.mu.Unlock()
	run := &userRun{}
	for si, s := range r.sides {
		for i := range r.cfg.Users {
			client, sent := load.NewUserClient(15 * time.Second)
			run.clients = append(run.clients, client)
			u := load.NewUser(load.UserConfig{
				Credential: s.st.Credential,
				BaseURL:    s.url,
				Email:      seed.LoadTestEmail(si*r.cfg.Users + i + 1),
				Password:   seed.LoadTestPassword,
				Seed:       r.cfg.Seed*1_000_003 + int64(i),
				Client:     client,
				Sent:       sent,
				Stats:      s.stats,
				Gate:       r.gate,
				Think:      r.cfg.Think,
				// Users arrive over the first two seconds, in the same
				// order on both sides.
				StartAfter: time.Duration(i) * 2 * time.Second / time.Duration(r.cfg.Users),
			})
			r.mu.Lock() // a client-restart control may read them already
			s.users = append(s.users, u)
			r.mu.Unlock()
			run.wg.Go(func() { u.Run(ctx) })
		}
	}
	return run
}

// conclude makes the report once the users have stopped, lets the Probe
// ask its questions, writes the report, and holds with Hold.
func (r *Runner) conclude(ctx context.Context, runnerListener net.Listener) (*report.Report, error) {
	out := r.cfg.Stdout
	rep := r.report(ctx)
	if r.cfg.Probe != nil && ctx.Err() == nil {
		urls := map[string]string{}
		for _, s := range r.sides {
			urls[s.name] = s.url
		}
		r.cfg.Probe(ctx, urls)
	}
	if err := rep.Write(r.cfg.ReportDir); err != nil {
		return rep, err
	}
	rep.PrintSummary(out)
	fmt.Fprintf(out, "report: %s\n", r.cfg.ReportDir)

	if r.cfg.Hold && ctx.Err() == nil {
		r.setPhase("holding")
		fmt.Fprintf(out, "holding: replicas, balancers and %s stay up; Ctrl-C to stop\n", "http://"+runnerListener.Addr().String())
		<-ctx.Done()
	}
	if !rep.Consistency.OK {
		return rep, errors.New("CONSISTENCY CHECK FAILED: the shared database lost or invented a borrow; see the report")
	}
	return rep, nil
}

func (r *Runner) stopAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = r.bothSides(ctx, func(ctx context.Context, s *side) error {
		err := s.sup.Stop(ctx)
		for _, svc := range s.services {
			err = errors.Join(err, svc.Stop())
		}
		return err
	})
	r.closeLinks()
}

// bothSides runs fn on both sides at the same moment and waits for both.
func (r *Runner) bothSides(ctx context.Context, fn func(context.Context, *side) error) error {
	errs := make([]error, len(r.sides))
	var wg sync.WaitGroup
	for i, s := range r.sides {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(ctx, s) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Runner) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

// elapsed returns the time since the users started.
func (r *Runner) elapsed() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		return 0
	}
	return time.Since(r.start)
}

// playTimeline applies each event on both sides at its moment, then waits
// for the end of the scenario.
func (r *Runner) playTimeline(ctx context.Context) error {
	sc := r.cfg.Scenario
	if r.cfg.Manual {
		return r.playManually(ctx)
	}
	pace := r.cfg.Pace
	// shift is how far the timeline has moved later than the scenario's
	// clock, when a Pace made it wait.
	var shift time.Duration
	events := sc.Expand(r.cfg.Seed)
	for i, e := range events {
		due := r.start.Add(e.At.Std() + shift)
		if err := sleepUntil(ctx, due); err != nil {
			return nil
		}
		if i == 0 && pace != nil && pace.Ready != nil {
			if err := r.waitReady(ctx, pace); err != nil {
				return nil
			}
			shift += max(0, time.Since(due))
			due = time.Now()
		}
		late := time.Since(due)
		r.mu.Lock()
		r.maxLate = max(r.maxLate, late)
		r.mu.Unlock()
		if r.cfg.OnEvent != nil {
			r.cfg.OnEvent(r.elapsed(), e, r.Totals())
		}
		r.setPhase(e.Action)
		if err := r.Apply(ctx, e, "scenario"); err != nil {
			r.cfg.Logger.Warn("event failed", "action", e.Action, "err", err)
		}
		r.setPhase("running")
		if pace != nil && pace.MinGap > 0 {
			// The next event, or the end, comes no sooner than MinGap
			// after this one ended.
			next := sc.Duration.Std()
			if i+1 < len(events) {
				next = events[i+1].At.Std()
			}
			if earliest := time.Now().Add(pace.MinGap); earliest.After(r.start.Add(next + shift)) {
				shift = earliest.Sub(r.start.Add(next))
			}
		}
	}
	_ = sleepUntil(ctx, r.start.Add(sc.Duration.Std()+shift))
	return nil
}

// waitReady holds the timeline until the pace's Ready is satisfied, or
// MaxWait has passed, or ctx is done.
func (r *Runner) waitReady(ctx context.Context, pace *Pace) error {
	limit := time.Now().Add(cmp.Or(pace.MaxWait, 30*time.Second))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !pace.Ready(r.Totals()) && time.Now().Before(limit) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// PhaseWaiting is the runner's phase while, in manual mode, an event waits
// to be fired.
const PhaseWaiting = "waiting"

// playManually plays each event when it is fired (Next), then lets the
// users run for as long as the scenario gives them after its last event,
// so its aftermath shows as in a timed run.
func (r *Runner) playManually(ctx context.Context) error {
	sc := r.cfg.Scenario
	var last time.Duration
	for i, e := range sc.Events {
		r.mu.Lock()
		r.pending = &PendingEvent{Event: e, Index: i + 1, Of: len(sc.Events)}
		r.phase = PhaseWaiting
		r.mu.Unlock()
		var done chan error
		select {
		case done = <-r.next:
		case <-ctx.Done():
			return nil
		}
		r.mu.Lock()
		r.pending = nil
		r.phase = e.Action
		r.mu.Unlock()
		if r.cfg.OnEvent != nil {
			r.cfg.OnEvent(r.elapsed(), e, r.Totals())
		}
		err := r.Apply(ctx, e, "scenario")
		if err != nil {
			r.cfg.Logger.Warn("event failed", "action", e.Action, "err", err)
		}
		done <- err
		r.setPhase("running")
		last = e.At.Std()
	}
	_ = sleepUntil(ctx, time.Now().Add(sc.Duration.Std()-last))
	return nil
}

// Pending returns, in manual mode, the event waiting to be fired, or nil.
func (r *Runner) Pending() *PendingEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		return nil
	}
	p := *r.pending
	return &p
}

// errNothingWaiting is Next's answer when no event waits for it.
var errNothingWaiting = errors.New("no event is waiting to be fired")

// Next fires the event a manual run is waiting on and returns once it has
// been played, with the records it made.
func (r *Runner) Next(ctx context.Context) ([]report.EventRecord, error) {
	done := make(chan error, 1)
	before := len(r.Events())
	select {
	case r.next <- done:
	default:
		return nil, errNothingWaiting
	}
	select {
	case err := <-done:
		return r.Events()[before:], err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Apply plays one event on both sides at once and records what happened
// to which replica.
func (r *Runner) Apply(ctx context.Context, e scenario.Event, source string) error {
	if play, ok := runActions[e.Action]; ok {
		play(r, e, source)
		return nil
	}
	play, ok := sideActions[e.Action]
	if !ok {
		return fmt.Errorf("unknown action %q", e.Action)
	}
	defer r.classEvent(e)()
	return r.bothSides(ctx, func(ctx context.Context, s *side) error {
		return r.applyToSide(ctx, s, e, source, play)
	})
}

// applyToSide plays an event on one side: it begins a new phase of the
// load and ends the balance window of an earlier scale event, plays it,
// then records each replica it touched with the sessions that went with it.
func (r *Runner) applyToSide(ctx context.Context, s *side, e scenario.Event, source string, play sideAction) error {
	before := s.sup.Replicas()
	// What each replica held a moment ago, from the feed: all there is
	// to know of a replica that is killed. A replica stopped gracefully
	// says it again itself once drained (BeforeStop).
	counts := map[string]measure.SessionCount{}
	for _, rep := range before {
		counts[rep.ID] = r.feed.SessionsOf(s.name, rep.ID)
		s.lastWords.Take(rep.ID)
	}
	start := time.Now()
	// Whatever this event does begins a new phase of the load.
	phaseKind := e.Action
	switch {
	case e.Action == scenario.ActionRollingRestart:
		phaseKind = scenario.ActionRestart
	case e.Action == scenario.ActionScale && e.Replicas > len(before):
		phaseKind = scenario.KindScaleOut
	case e.Action == scenario.ActionScale && e.Replicas < len(before):
		phaseKind = scenario.KindScaleIn
	}
	r.markPhase(s, phaseKind, measure.UnderWay)
	// Whatever this event does changes who gets the requests: the share
	// window of an earlier scale event ends here.
	s.balance.Close(r.since(start), s.lb.Requests())
	res := play(ctx, s, e, before)
	took := time.Since(start)
	// The phase after the event begins once it is done, so that a
	// scale-out's new replicas are in service from its first second.
	r.markOver(r.phaseCtx(), s, phaseKind)
	if res.kind == scenario.KindScaleOut || res.kind == scenario.KindScaleIn {
		var ids []string
		for _, rep := range s.sup.Replicas() {
			ids = append(ids, rep.ID)
		}
		s.balance.Open(r.since(time.Now()), res.kind, s.lb.Requests(), ids)
	}
	if len(res.touched) == 0 {
		res.touched = []string{""}
	}
	note := res.note
	if e.Note != "" {
		note = strings.TrimPrefix(note+"; "+e.Note, "; ")
	}
	for _, id := range res.touched {
		rec := report.EventRecord{AtS: r.since(start), Kind: res.kind, Side: s.name, Replica: id, TookMS: float64(took.Microseconds()) / 1000, Source: source, Note: note}
		if res.kind != scenario.KindScaleOut {
			c, ok := s.lastWords.Take(id)
			if !ok {
				c = counts[id]
			}
			rec.SessionsHeld, rec.SessionsInUse = c.Held, c.InUse
		}
		if res.err != nil {
			rec.Error = res.err.Error()
		}
		r.events.WithLabelValues(res.kind, s.name, s.st.Server, source).Inc()
		r.record(rec)
	}
	return res.err
}

// since returns t as seconds from the start of the run.
func (r *Runner) since(t time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		return 0
	}
	return t.Sub(r.start).Seconds()
}

func (r *Runner) record(rec report.EventRecord) {
	r.mu.Lock()
	r.log = append(r.log, rec)
	r.mu.Unlock()
}

// Totals returns every side's counters now, keyed by strategy name.
func (r *Runner) Totals() map[string]load.Totals {
	t := make(map[string]load.Totals, len(r.sides))
	for _, s := range r.sides {
		t[s.name] = s.stats.Totals()
	}
	return t
}

// History returns the feed's samples taken after elapsed second since: the
// numbers the dashboard drew, for a caller that wants them after Run.
func (r *Runner) History(since float64) []Sample { return r.feed.History(since) }

// Events returns what has happened so far.
func (r *Runner) Events() []report.EventRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]report.EventRecord{}, r.log...) // [] in JSON before the first event, never null
}

// progress prints a status line every second until ctx is done.
func (r *Runner) progress(ctx context.Context) {
	tty := r.cfg.Interactive
	t := time.NewTicker(time.Second)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(r.cfg.Stdout)
			}
			return
		case <-t.C:
		}
		n++
		line := r.statusLine()
		if tty {
			fmt.Fprintf(r.cfg.Stdout, "\r\033[K%s", line)
		} else if n%5 == 0 {
			fmt.Fprintln(r.cfg.Stdout, line)
		}
	}
}

func (r *Runner) statusLine() string {
	r.mu.Lock()
	phase := r.phase
	r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "[%3.0fs/%s] %-15s", r.elapsed().Seconds(), r.cfg.Scenario.Duration.Std(), phase)
	for _, s := range r.sides {
		t := s.stats.Totals()
		fmt.Fprintf(&b, " | %s: ok %5.1f%% of %d, %d sessions lost, %d cart items lost", s.name, 100*t.Availability, t.Requests, t.SessionsLost, t.CartItemsLost)
	}
	return b.String()
}
