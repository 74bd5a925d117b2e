package matrix

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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
	"github.com/statelab/statelab/internal/store"
)

// Defaults of a full matrix and of a quick one (--quick): the full one fits
// in five minutes on the lab's 2-core machine, the quick one in ninety
// seconds, the time the project's test may take.
const (
	DefaultUsers  = 20
	DefaultWindow = 8 * time.Second
	DefaultWarmup = 3 * time.Second
	QuickUsers    = 12 // with fewer, a hash ring's scale-out could now and then move nobody
	QuickWindow   = 2 * time.Second
	QuickWarmup   = 2 * time.Second
	// MaxUsers bounds the users per side: both sides' users and the
	// revocation probes' members must fit among the seed's load-test
	// members.
	MaxUsers = 200
)

// LatestFile is where the matrix command leaves a copy of its page, and
// where a runner's dashboard looks for it to serve at /matrix: relative to
// the directory the lab runs in, like ./reports.
const LatestFile = "reports/matrix.html"

// DefaultStrategies are the matrix's rows when none are named: every
// strategy, and the mistake a stateless server can still make.
func DefaultStrategies() []string {
	return append(strategy.Names(), "jwt"+strategy.OwnSecretsSuffix)
}

// Config is what a matrix run needs. cmd/statelab fills it from flags.
type Config struct {
	Binary     string              // the statelab binary the replicas run
	Strategies []strategy.Strategy // the rows, in order
	Faults     []Fault             // the columns (ParseFaults keeps their order)
	Users      int                 // simulated users per side, the same in every run
	Replicas   int                 // replicas per side at the start of every run
	Warmup     time.Duration       // the users sign in before the first window
	Window     time.Duration       // each fault's window: the fault, then its effects settling
	Think      time.Duration       // mean think time between a user's steps
	Seed       int64               // same seed, same journeys, in every run
	Quick      bool                // recorded in matrix.json: the run used --quick's sizes
	// Addr is the runner's address in every run: the live dashboard of the
	// pair being measured, its feed, and /matrix.
	Addr string
	// ReportDir gets matrix.json, matrix.md, matrix.html, and each run's
	// own report under runs/.
	ReportDir string
	WorkDir   string // the runs' databases and logs
	// Store and StoreURL choose the shared resource store of every run, as
	// statelab compare's do: SQLite by default, or PostgreSQL.
	Store, StoreURL string
	// ReadCache is the replicas' read cache in every run, as statelab
	// compare's --read-cache sets it; the zero value is exact.
	ReadCache library.ReadCache
	// Latency and Jitter put a link on every hop of every run, as
	// statelab compare's --latency and --jitter do.
	Latency, Jitter time.Duration
	// Hosts and HostsSubnet put every process of every run on a host of
	// its own, as statelab compare's --hosts and --hosts-subnet do.
	Hosts       string
	HostsSubnet netip.Prefix
	// Latest, when set, gets a copy of matrix.html: the file the
	// dashboard serves at /matrix.
	Latest string
	// RequireTools makes a strategy whose tool is missing (redis-server)
	// an error, as CI wants, instead of a skipped row.
	RequireTools bool
	Stdout       io.Writer // progress and the table
	Interactive  bool      // Stdout is a terminal: redraw the progress line in place
	Logger       *slog.Logger
	Dashboard    http.Handler // served at / on Addr during each run
}

// Given says which of the sizes --quick changes were chosen explicitly.
type Given struct{ Users, Window, Warmup bool }

// Shrink makes cfg a quick matrix (--quick): QuickUsers, QuickWindow and
// QuickWarmup, except for the sizes given says were chosen explicitly,
// which win; matrix.json records that the run was quick.
func (cfg *Config) Shrink(given Given) {
	cfg.Quick = true
	if !given.Users {
		cfg.Users = QuickUsers
	}
	if !given.Window {
		cfg.Window = QuickWindow
	}
	if !given.Warmup {
		cfg.Warmup = QuickWarmup
	}
}

// Matrix is what a matrix run measured, as written to matrix.json.
type Matrix struct {
	// Strategies are the rows, Faults the columns, both in order.
	Strategies []string `json:"strategies"`
	Faults     []string `json:"faults"`
	// Cells holds, per strategy and fault, what the users lost in the
	// fault's window; a cell that was not measured is absent.
	Cells map[string]map[string]*Cell `json:"cells"`
	// Costs holds, per strategy, what it paid on every request.
	Costs     map[string]*Costs `json:"costs"`
	Seed      int64             `json:"seed"`
	StartedAt time.Time         `json:"started_at"`

	// How it was measured.
	Quick    bool    `json:"quick"`
	Users    int     `json:"users_per_strategy"`
	Replicas int     `json:"replicas"`
	WarmupS  float64 `json:"warmup_s"`
	WindowS  float64 `json:"window_s"`
	ThinkMS  float64 `json:"think_ms"`
	// Store is the shared resource store the replicas ran on: sqlite or
	// postgres.
	Store string `json:"store"`
	// ReadCache is the replicas' read cache: exact, off or notify.
	ReadCache library.ReadCache `json:"read_cache"`
	// LatencyMS and JitterMS are the links' one-way delay and its
	// variation (0: no links).
	LatencyMS float64 `json:"latency_ms"`
	JitterMS  float64 `json:"jitter_ms"`
	// Hosts is where the runs' processes ran: local (this machine's
	// network stack, over loopback) or netns (each on a network namespace
	// of its own); HostsSubnet the subnet asked for with netns, if one was.
	Hosts       string `json:"hosts"`
	HostsSubnet string `json:"hosts_subnet,omitempty"`
	// DurationS is the wall time of the whole matrix.
	DurationS   float64     `json:"duration_s"`
	Interrupted bool        `json:"interrupted"`
	Runs        []RunRecord `json:"runs"`
	// Skipped names the strategies that could not run, and why.
	Skipped map[string]string `json:"skipped"`
	// About says, per strategy, where it keeps the sign-in and what breaks
	// it; FaultsDo, per fault, what happens.
	About    map[string]strategy.Strategy `json:"about"`
	FaultsDo map[string]string            `json:"faults_do"`
	// Claims are the lesson's claims, each judged by what the matrix's
	// runs measured of every strategy (report.Judge: the same rules as a
	// run's report).
	Claims []report.Claim `json:"claims"`
	// evidence is what each strategy's run measured that bears on the
	// claims, and conditions what its identification times were measured
	// under.
	evidence   map[string]report.Evidence
	conditions report.Conditions
}

// RunRecord is one run of the runner: two strategies side by side through
// the matrix's scenario.
type RunRecord struct {
	Sides []string `json:"sides"`
	// Filler names a side that ran only to make a pair (an odd number of
	// rows): its numbers are not in the matrix.
	Filler      string  `json:"filler,omitempty"`
	Report      string  `json:"report"` // its report.json, relative to the matrix's directory
	DurationS   float64 `json:"duration_s"`
	Interrupted bool    `json:"interrupted"`
	// Consistent is the run's check of the shared database: every borrow
	// answered 201 exists and every book's copies add up.
	Consistent bool    `json:"consistent"`
	MaxLateMS  float64 `json:"max_late_ms"` // how far behind schedule its timeline ran
	Error      string  `json:"error,omitempty"`
}

// Cell is what one strategy's users saw in one fault's window.
type Cell struct {
	// Applies is false when the fault cannot touch the strategy (a
	// session-store restart where there is none): the cell reads "n/a",
	// and its numbers are those of a quiet window.
	Applies bool `json:"applies"`
	Run     int  `json:"run"` // index in Matrix.Runs
	// FromS and ToS bound the window, in seconds since the run's users
	// started: from the fault's start to the next fault's start, which
	// comes at least three quarters of a window after the fault ended.
	FromS    float64 `json:"from_s"`
	ToS      float64 `json:"to_s"`
	Requests int64   `json:"requests"`
	// Failures are the requests a user saw fail: any answer but a 2xx or
	// a 409 (a borrow that lost a race, answered correctly), and requests
	// with no answer at all.
	Failures          int64   `json:"failures"`
	FailuresPer1000   float64 `json:"failures_per_1000"`
	SessionsLost      int64   `json:"sessions_lost"`
	Relogins          int64   `json:"forced_relogins"`
	CartItemsLost     int64   `json:"cart_items_lost"`
	Errors5xx         int64   `json:"errors_5xx"`
	ConnErrors        int64   `json:"conn_errors"`
	InvalidCredential int64   `json:"invalid_credential"`
	// Balance is how the balancer shared the requests out after a
	// scale-out, for that fault's cell.
	Balance *report.BalanceWindow `json:"balance,omitempty"`
}

// The glyphs of a cell, so the table reads without colour.
const (
	GlyphClean    = "✓" // no failed request, no sign-in lost
	GlyphFailures = "!" // requests failed, but nobody was signed out
	GlyphLost     = "✗" // sign-ins lost: users found themselves signed out
	GlyphNA       = "–" // the fault cannot touch this strategy
)

// Glyph says what kind of loss the cell shows.
func (c *Cell) Glyph() string {
	switch {
	case !c.Applies:
		return GlyphNA
	case c.SessionsLost > 0:
		// By the losses in the window, not the re-logins: a user signs in
		// again a moment after its loss, and that moment may fall in the
		// next window, whose fault did not cause it.
		return GlyphLost
	case c.Failures > 0:
		return GlyphFailures
	}
	return GlyphClean
}

// Costs is what a strategy paid, measured in its run.
type Costs struct {
	report.Costs
	Revocation Revocation `json:"revocation"`
}

// Complete reports whether every cell of every strategy that was not
// skipped was measured, with its costs.
func (m *Matrix) Complete() bool {
	return !m.Interrupted && m.missing() == 0 && len(m.Costs)+len(m.Skipped) == len(m.Strategies)
}

// window is one fault's stretch of the scenario.
type window struct {
	fault Fault
	at    time.Duration // planned start
}

// Scenario returns the scenario every run of cfg plays: the users sign in
// during the warm-up, then each fault starts its own window.
func Scenario(cfg Config) (scenario.Scenario, error) {
	sc, _, err := plan(cfg)
	return sc, err
}

func plan(cfg Config) (scenario.Scenario, []window, error) {
	sc := scenario.Scenario{
		Name:        "matrix",
		Description: fmt.Sprintf("one window of %s per fault (%s), after %s of sign-ins", cfg.Window, faultList(cfg.Faults), cfg.Warmup),
		Replicas:    cfg.Replicas,
	}
	n := cfg.Replicas
	var ws []window
	at := cfg.Warmup
	for _, f := range cfg.Faults {
		var e scenario.Event
		e, n = f.event(n)
		e.At = scenario.Duration(at)
		sc.Events = append(sc.Events, e)
		ws = append(ws, window{fault: f, at: at})
		at += cfg.Window
	}
	sc.Duration = scenario.Duration(at)
	if err := sc.Validate(); err != nil {
		return sc, nil, fmt.Errorf("the matrix's scenario: %w", err)
	}
	return sc, ws, nil
}

func faultList(fs []Fault) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// failsAtRest reports whether a strategy loses sign-ins with no event at
// all: sessions in one process's memory behind round robin, or a secret per
// replica for a signed credential. Such strategies storm the servers with
// re-logins (bcrypt), so they share runs with each other, not with a
// strategy whose latency they would spoil.
func failsAtRest(st strategy.Strategy) bool {
	if st.HoldsSessionsInProcess() && st.Affinity == balancer.AffinityNone {
		return true
	}
	return st.OwnSecrets && st.Credential != strategy.CredentialAPIKey
}

// Pairs groups the strategies two by two for the runs: those that fail at
// rest first, with each other, then the rest in the order given. An odd one
// out is paired with a filler whose numbers are dropped.
func Pairs(sts []strategy.Strategy) [][2]strategy.Strategy {
	var order []strategy.Strategy
	for _, st := range sts {
		if failsAtRest(st) {
			order = append(order, st)
		}
	}
	for _, st := range sts {
		if !failsAtRest(st) {
			order = append(order, st)
		}
	}
	var out [][2]strategy.Strategy
	for i := 0; i < len(order); i += 2 {
		if i+1 < len(order) {
			out = append(out, [2]strategy.Strategy{order[i], order[i+1]})
			continue
		}
		out = append(out, [2]strategy.Strategy{order[i], filler(order[i], sts)})
	}
	return out
}

// filler picks a strategy to run beside a lone one: another row if there is
// one (it is measured twice, and its first measurement kept), else the
// first strategy of the lab that is not the lone one.
func filler(lone strategy.Strategy, sts []strategy.Strategy) strategy.Strategy {
	for _, st := range sts {
		if st.Name != lone.Name && !failsAtRest(st) {
			return st
		}
	}
	for _, st := range strategy.All() {
		if st.Name != lone.Name && !failsAtRest(st) {
			return st
		}
	}
	return strategy.All()[0]
}

// probeTimeout bounds the revocation probes of one run: a few sign-ins and
// a few dozen requests, which a busy machine may slow to seconds.
const probeTimeout = time.Minute

// mark is the users' counters at the start of one window.
type mark struct {
	at     time.Duration
	totals map[string]load.Totals
}

// Run measures the matrix. It returns what was measured even when a run
// failed or ctx was cancelled (Interrupted then says so, and the cells not
// measured are absent); the error says what went wrong.
func Run(ctx context.Context, cfg Config) (*Matrix, error) {
	began := time.Now()
	if cfg.Users < 1 || cfg.Users > MaxUsers {
		return nil, fmt.Errorf("users is %d; use 1 to %d per strategy", cfg.Users, MaxUsers)
	}
	if cfg.Replicas < 2 {
		return nil, fmt.Errorf("replicas is %d; the matrix needs at least 2 per strategy (a round-robin balancer over one replica shows nothing)", cfg.Replicas)
	}
	if cfg.Window < time.Second || cfg.Warmup < time.Second {
		return nil, errors.New("the warm-up and each window must last at least 1s: users need time to notice a fault")
	}
	if len(cfg.Strategies) == 0 || len(cfg.Faults) == 0 {
		return nil, errors.New("name at least one strategy and one fault")
	}
	for i, st := range cfg.Strategies {
		if slices.ContainsFunc(cfg.Strategies[:i], func(o strategy.Strategy) bool { return o.Name == st.Name }) {
			return nil, fmt.Errorf("strategy %s is named twice", st.Name)
		}
	}
	sc, windows, err := plan(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	m := &Matrix{
		Cells: map[string]map[string]*Cell{}, Costs: map[string]*Costs{}, Seed: cfg.Seed, StartedAt: began.UTC(),
		Quick: cfg.Quick, Users: cfg.Users, Replicas: cfg.Replicas, Store: store.Chosen(cfg.Store, cfg.StoreURL), ReadCache: cfg.ReadCache.Mode(),
		LatencyMS: float64(cfg.Latency.Microseconds()) / 1000, JitterMS: float64(cfg.Jitter.Microseconds()) / 1000,
		Hosts:   cmp.Or(cfg.Hosts, report.HostsLocal),
		WarmupS: cfg.Warmup.Seconds(), WindowS: cfg.Window.Seconds(), ThinkMS: float64(cfg.Think.Microseconds()) / 1000,
		Runs: []RunRecord{}, Skipped: map[string]string{}, About: map[string]strategy.Strategy{}, FaultsDo: map[string]string{},
		Claims: []report.Claim{}, evidence: map[string]report.Evidence{},
	}
	if cfg.HostsSubnet.IsValid() {
		m.HostsSubnet = cfg.HostsSubnet.String()
	}
	for _, f := range cfg.Faults {
		m.Faults = append(m.Faults, f.Name)
		m.FaultsDo[f.Name] = f.Does
	}
	var rows []strategy.Strategy
	for _, st := range cfg.Strategies {
		m.Strategies = append(m.Strategies, st.Name)
		m.About[st.Name] = st
		if err := st.LookServices(); err != nil {
			if cfg.RequireTools {
				return nil, fmt.Errorf("strategy %s cannot run: %w (CI is set, so a missing tool is a failure, not a skipped row)", st.Name, err)
			}
			m.Skipped[st.Name] = err.Error()
			fmt.Fprintf(cfg.Stdout, "skipping %s: %v\n", st.Name, err)
			continue
		}
		rows = append(rows, st)
	}
	if len(rows) == 0 {
		return m, errors.New("no strategy can run")
	}

	runs := Pairs(rows)
	prog := newProgress(cfg, len(runs), sc.Duration.Std(), windows)
	fmt.Fprintf(cfg.Stdout, "statelab matrix: %d strategies × %d faults in %d runs of %s (%d users and %d replicas per strategy, %s windows), about %s\n",
		len(rows), len(cfg.Faults), len(runs), sc.Duration.Std(), cfg.Users, cfg.Replicas, cfg.Window, prog.estimate().Round(time.Second))
	var errs []error
	for i, pair := range runs {
		if ctx.Err() != nil {
			break
		}
		run, err := measure(ctx, cfg, sc, windows, i, pair, m, prog)
		m.Runs = append(m.Runs, run)
		if err != nil {
			errs = append(errs, fmt.Errorf("run %d (%s, %s): %w", i+1, pair[0].Name, pair[1].Name, err))
		}
	}
	prog.stop()
	m.judge()
	m.DurationS = time.Since(began).Seconds()
	m.Interrupted = ctx.Err() != nil
	if m.Interrupted {
		errs = append(errs, fmt.Errorf("interrupted: %w", context.Cause(ctx)))
	}
	return m, errors.Join(errs...)
}

// measure plays the scenario on one pair and fills the pair's cells and
// costs in m.
func measure(ctx context.Context, cfg Config, sc scenario.Scenario, windows []window, idx int, pair [2]strategy.Strategy, m *Matrix, prog *progress) (RunRecord, error) {
	dirName := fmt.Sprintf("%d-%s-%s", idx+1, pair[0].Name, pair[1].Name)
	run := RunRecord{Sides: []string{pair[0].Name, pair[1].Name}, Report: filepath.ToSlash(filepath.Join("runs", dirName, "report.json"))}
	pr := &pairRun{pair: pair, kept: map[string]bool{}, revocations: map[string]Revocation{}}
	for _, st := range pair {
		if _, done := m.Costs[st.Name]; done || !slices.Contains(m.Strategies, st.Name) {
			run.Filler = st.Name
			continue
		}
		pr.kept[st.Name] = true
	}

	began := time.Now()
	prog.startRun(idx, pair)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		run.Error = fmt.Sprintf("listen on %s: %v", cfg.Addr, err)
		return run, fmt.Errorf("listen on %s: %w (is another lab running? pick another address with -addr)", cfg.Addr, err)
	}
	r, err := compare.New(ctx, pr.config(cfg, sc, dirName, ln.Addr().String(), prog))
	if err != nil {
		ln.Close()
		run.Error = err.Error()
		return run, err
	}
	prog.dashboard(ln.Addr().String())
	rep, err := r.Run(ctx, ln)
	run.DurationS = time.Since(began).Seconds()
	prog.endRun(time.Since(began))
	if rep == nil {
		if err == nil {
			err = errors.New("the runner returned no report")
		}
		run.Error = err.Error()
		return run, err
	}
	run.Interrupted = rep.Interrupted
	run.Consistent = rep.Consistency.OK
	run.MaxLateMS = rep.Timeline.MaxLateMS
	if err != nil {
		run.Error = err.Error()
	}

	pr.mu.Lock()
	defer pr.mu.Unlock()
	ends := windowEnds(pr.marks, windows, rep)
	for _, st := range pair {
		if !pr.kept[st.Name] {
			continue
		}
		m.fillCells(st, idx, windows, pr.marks, ends, rep.Sides[st.Name].Balance)
		if !rep.Interrupted {
			m.keepCosts(st.Name, rep, pr.revocations[st.Name])
		}
	}
	if !rep.Consistency.OK && err == nil {
		err = errors.New("the shared database's consistency check failed; see " + run.Report)
	}
	return run, err
}

// pairRun is what one run's callbacks collect while the runner plays it:
// the users' counters at the start of each window and the revocation
// probes' findings, for the strategies whose cells the run fills (kept;
// the other side is a filler).
type pairRun struct {
	pair        [2]strategy.Strategy
	kept        map[string]bool
	mu          sync.Mutex
	marks       []mark
	revocations map[string]Revocation
}

// config is the runner's configuration for one run of the pair, with the
// callbacks that pace the timeline, mark the windows and probe revocation.
func (pr *pairRun) config(cfg Config, sc scenario.Scenario, dirName, addr string, prog *progress) compare.Config {
	return compare.Config{
		Binary: cfg.Binary, Scenario: sc, Sides: pr.pair, Users: cfg.Users, Seed: cfg.Seed, Think: cfg.Think,
		Addr: addr, BalancerAddrs: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		ReportDir: filepath.Join(cfg.ReportDir, "runs", dirName), WorkDir: filepath.Join(cfg.WorkDir, dirName),
		Store: cfg.Store, StoreURL: cfg.StoreURL, Latency: cfg.Latency, Jitter: cfg.Jitter,
		ReadCache: cfg.ReadCache, NoReadCache: cfg.ReadCache.Mode() == library.ReadCacheOff,
		Hosts: cfg.Hosts, HostsSubnet: cfg.HostsSubnet,
		Stdout: io.Discard, Logger: cfg.Logger, Dashboard: cfg.Dashboard,
		// On a busy machine the first sign-ins (bcrypt) and a slow event
		// (a rolling restart waiting for its requests) would eat into the
		// windows after them: the timeline waits instead.
		Pace: &compare.Pace{
			Ready: func(t map[string]load.Totals) bool {
				for _, st := range pr.pair {
					if t[st.Name].SignIns < int64(cfg.Users) {
						return false
					}
				}
				return true
			},
			MinGap: cfg.Window * 3 / 4,
		},
		OnEvent: func(at time.Duration, _ scenario.Event, totals map[string]load.Totals) {
			pr.mu.Lock()
			pr.marks = append(pr.marks, mark{at: at, totals: totals})
			k := len(pr.marks)
			pr.mu.Unlock()
			prog.window(k - 1)
		},
		Probe: func(ctx context.Context, balancers map[string]string) {
			prog.probing()
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			for i, st := range pr.pair {
				if !pr.kept[st.Name] {
					continue
				}
				rev := ProbeRevocation(ctx, st, balancers[st.Name], probeMember(i), cfg.Replicas)
				pr.mu.Lock()
				pr.revocations[st.Name] = rev
				pr.mu.Unlock()
			}
		},
	}
}

// windowEnds is where each window marked at marks ends: at the next
// window's start, and the last one at the end of the run, unless the run
// was cut short.
func windowEnds(marks []mark, windows []window, rep *report.Report) []mark {
	ends := append([]mark(nil), marks[min(1, len(marks)):]...)
	if !rep.Interrupted && len(marks) == len(windows) {
		final := map[string]load.Totals{}
		for name, sr := range rep.Sides {
			final[name] = sr.Totals
		}
		ends = append(ends, mark{at: time.Duration(rep.DurationS * float64(time.Second)), totals: final})
	}
	return ends
}

// fillCells sets st's cell of each window that ended: what its users met
// between the window's start and end, and after a scale-out how the
// balancer spread the load.
func (m *Matrix) fillCells(st strategy.Strategy, run int, windows []window, starts, ends []mark, balance []report.BalanceWindow) {
	for k, w := range windows {
		if k >= len(ends) {
			break
		}
		c := CellOf(starts[k].totals[st.Name], ends[k].totals[st.Name])
		c.Applies = w.fault.Applies(st)
		c.Run = run
		c.FromS, c.ToS = starts[k].at.Seconds(), ends[k].at.Seconds()
		if w.fault.Name == "scale-out" {
			for _, b := range balance {
				if b.After == "scale-out" {
					c.Balance = &b
					break
				}
			}
		}
		if m.Cells[st.Name] == nil {
			m.Cells[st.Name] = map[string]*Cell{}
		}
		m.Cells[st.Name][w.fault.Name] = c
	}
}

// keepCosts keeps what a whole run measured of one strategy: its costs,
// its revocation probe, its evidence for the claims and the run's
// conditions.
func (m *Matrix) keepCosts(name string, rep *report.Report, rev Revocation) {
	sr := rep.Sides[name]
	m.Costs[name] = &Costs{Costs: sr.Costs, Revocation: rev}
	ev := rep.Evidence(name)
	ev.Revocation = rev.Verdict
	m.evidence[name] = ev
	c := rep.Conditions()
	m.conditions.NoReadCache = c.NoReadCache
	m.conditions.WritesPerS = max(m.conditions.WritesPerS, c.WritesPerS)
}

// judge gives each claim its verdict from the evidence of every strategy
// that was measured, in the order of the rows.
func (m *Matrix) judge() {
	var ev []report.Evidence
	for _, st := range m.Strategies {
		if e, ok := m.evidence[st]; ok {
			ev = append(ev, e)
		}
	}
	if len(ev) > 0 {
		m.Claims = report.Judge(ev, m.conditions)
	}
}

// CellOf turns the users' counters at a window's start and end into the
// window's cell (Applies and the window's bounds are the caller's to set).
func CellOf(a, b load.Totals) *Cell {
	c := &Cell{
		Requests:          b.Requests - a.Requests,
		SessionsLost:      b.SessionsLost - a.SessionsLost,
		Relogins:          b.Relogins - a.Relogins,
		CartItemsLost:     b.CartItemsLost - a.CartItemsLost,
		Errors5xx:         b.Errors5xx - a.Errors5xx,
		ConnErrors:        b.ConnErrors - a.ConnErrors,
		InvalidCredential: b.InvalidCredential - a.InvalidCredential,
	}
	c.Failures = (b.Requests - b.OK - b.Conflicts) - (a.Requests - a.OK - a.Conflicts)
	if c.Requests > 0 {
		c.FailuresPer1000 = 1000 * float64(c.Failures) / float64(c.Requests)
	}
	return c
}

// probeMember is the seed's member a revocation probe signs in as on side
// i: one the simulated users never use (they count from the first
// load-test member; MaxUsers keeps them below these).
func probeMember(i int) string {
	return seed.LoadTestEmail(seed.LoadTestUsers - i)
}
