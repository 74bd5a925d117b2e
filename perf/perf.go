package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/privfile"
	"github.com/statelab/statelab/internal/services"
	"github.com/statelab/statelab/internal/store"
	"github.com/statelab/statelab/stateful"
)

// Bare names the bare net/http server's row.
const Bare = "bare"

// BaselineCommand is the statelab subcommand that serves the bare handler.
const BaselineCommand = "baseline"

// Path is one request every strategy is measured with.
type Path struct {
	Name   string `json:"name"`   // "book" or "page"
	Target string `json:"target"` // the request's path and query
}

// Paths are the requests Run can measure, by name.
var Paths = []Path{
	{Name: "book", Target: client.BookPath(1)},
	{Name: "page", Target: client.FindBooksPath(library.BookFilter{Limit: 50})},
}

// ParsePaths turns a comma-separated list of path names into Paths.
func ParsePaths(s string) ([]Path, error) {
	var out []Path
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(Paths, func(p Path) bool { return p.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown request %q: use book, page or both", name)
		}
		out = append(out, Paths[i])
	}
	return out, nil
}

// DefaultStrategies are the strategies Run measures unless told otherwise:
// one of each way of keeping a sign-in. memory, memory-sticky and
// memory-hash run the same replica and differ only in the balancer before
// it, so memory-sticky stands for the three.
var DefaultStrategies = []string{"memory-sticky", "redis", "cookie", "apikey", "jwt"}

// Config says what Run measures and how.
type Config struct {
	Binary     string              // the statelab binary to start servers from
	Strategies []strategy.Strategy // measured besides the bare server
	Paths      []Path
	Conns      int           // connections kept busy at once
	Duration   time.Duration // of one measured run
	Warmup     time.Duration // unmeasured load before each run
	Rounds     int           // runs per row, taking turns with the other rows
	WorkDir    string        // for the database, redis and the servers' log
	// NoPin leaves the processes where the scheduler puts them.
	NoPin bool
	// NoReadCache starts the replicas with --read-cache=false, so every
	// read asks the database: what the read cache saves is the difference.
	NoReadCache bool
	// Store and StoreURL choose the shared resource store, as statelab
	// compare's do (store.OpenShared): SQLite by default, or PostgreSQL.
	Store, StoreURL string
	Progress        io.Writer // a line per run; nil for none
	Logger          *slog.Logger
}

// Report is what Run measured.
type Report struct {
	Started  time.Time `json:"started"`
	Conns    int       `json:"connections"`
	Rounds   int       `json:"rounds"`
	Duration string    `json:"duration"`
	Warmup   string    `json:"warmup"`
	// Load names the load generator.
	Load string `json:"load_generator"`
	// Pinning says where the processes ran: "server on CPU 0, load on CPU
	// 1", or why they were not pinned.
	Pinning   string `json:"pinning"`
	Pinned    bool   `json:"pinned"`
	GoVersion string `json:"go_version"`
	// ReadCache says whether the replicas answered repeated reads from
	// their read cache (the default) or asked the database every time.
	ReadCache bool `json:"read_cache"`
	// Store is the shared resource store the replicas ran on: sqlite or
	// postgres.
	Store   string   `json:"store"`
	CPUs    int      `json:"cpus"`
	Rows    []Row    `json:"rows"`
	LoadAvg string   `json:"load_average,omitempty"` // /proc/loadavg at the start: how busy the machine was
	Skipped []string `json:"skipped,omitempty"`
}

// Row is one strategy and one request.
type Row struct {
	Strategy string `json:"strategy"` // a strategy name, or Bare
	Server   string `json:"server"`   // the statelab subcommand
	Path     string `json:"path"`     // Path.Name, "any" for the bare server
	Target   string `json:"target"`
	// PerRound is the 200 answers per second of each round.
	PerRound []float64 `json:"per_round"`
	// PerSecond is the median of PerRound.
	PerSecond float64 `json:"requests_per_second"`
	// Ratio is PerSecond over the bare server's PerSecond in this run.
	Ratio float64 `json:"ratio_to_bare"`
	// CPURatio is the bare server's CPU time per answer over this row's:
	// the ratio of what one CPU could answer, whoever was the limit in
	// this run (the load generator, other work on the machine).
	CPURatio float64 `json:"cpu_ratio_to_bare"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	// ServerCPUMicros is the server process's CPU time (user and
	// system) per answer over every round, in microseconds.
	ServerCPUMicros float64 `json:"server_cpu_us_per_request"`
	// ServerBusy is the share of one CPU the server used while measured:
	// near 1 when the server was the limit, lower when something else
	// (the load generator, a lock) was.
	ServerBusy float64 `json:"server_busy"`
	// StoreCPUMicros is the session store's (redis-server's) CPU time per
	// answer; 0 for strategies without one.
	StoreCPUMicros float64 `json:"store_cpu_us_per_request,omitempty"`
	// LoadCPUMicros is the load generator's (this process's) CPU time per
	// answer: what asking cost, next to what answering did.
	LoadCPUMicros float64 `json:"load_cpu_us_per_request"`
	OK            int     `json:"ok"`
	Failed        int     `json:"failed"`
	FirstFailure  string  `json:"first_failure,omitempty"`
}

// server is one process Run measures, and its credential.
type server struct {
	name   string // a strategy name or Bare
	st     strategy.Strategy
	sup    *supervisor.Supervisor
	redis  services.Running // the service its sessions live in; nil without one
	addr   string
	pid    int
	header string
	value  string
}

// Run starts the servers, measures every row, stops the servers and returns
// the report. ctx ends it early.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Conns < 1 || cfg.Rounds < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 || len(cfg.Paths) == 0 {
		return nil, errors.New("perf: connections, rounds, duration and paths must be set")
	}
	b := &bench{cfg: cfg, logger: cfg.Logger, progress: cfg.Progress}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	if b.progress == nil {
		b.progress = io.Discard
	}
	rep := newReport(cfg)

	var loadCPU int
	b.serverCPU, loadCPU, rep.Pinned, rep.Pinning = chooseCPUs(cfg.NoPin)
	b.pinned = rep.Pinned
	if b.pinned {
		restore, err := pinSelf(loadCPU)
		if err != nil {
			return nil, fmt.Errorf("perf: pin the load generator to CPU %d: %w", loadCPU, err)
		}
		defer restore()
	}

	// The servers' log is for the one measuring: it can hold what a
	// server logged about a request. 0600 whatever the umask, and one left
	// by an older run is tightened too, as compare's replicas.log.
	logFile, err := privfile.Open(filepath.Join(cfg.WorkDir, "servers.log"), os.O_TRUNC)
	if err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	defer logFile.Close()
	b.logFile = logFile
	db, err := store.OpenShared(ctx, cfg.Store, cfg.StoreURL, cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	defer db.Close()
	rep.Store = db.Kind

	defer b.stopServers(ctx)
	if err := b.startServers(ctx, db, rep); err != nil {
		return nil, err
	}
	jobs := b.plan()
	if err := b.runRounds(ctx, jobs); err != nil {
		return nil, err
	}
	summarize(rep, jobs)
	return rep, nil
}

// bench is one Run's servers and what starting and measuring them needs.
type bench struct {
	cfg       Config
	logger    *slog.Logger
	progress  io.Writer
	logFile   io.Writer // the servers' log
	pinned    bool      // whether servers go on serverCPU
	serverCPU int
	servers   []*server // started, to be stopped
}

// newReport is the report's header: what Run was asked and where it runs.
func newReport(cfg Config) *Report {
	rep := &Report{
		Started: time.Now(), Conns: cfg.Conns, Rounds: cfg.Rounds,
		Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(),
		Load: "fasthttp client, closed loop", GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		ReadCache: !cfg.NoReadCache,
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return rep
}

// startServers starts the bare server, then each strategy's replica with
// what it needs beside it, and signs in to each once. A strategy whose
// services are not installed is skipped and named in rep.Skipped.
func (b *bench) startServers(ctx context.Context, db *store.Shared, rep *Report) error {
	if err := b.start(ctx, &server{name: Bare}, BaselineCommand, nil, nil); err != nil {
		return err
	}
	for _, st := range b.cfg.Strategies {
		s := &server{name: st.Name, st: st}
		if err := st.LookServices(); err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", st.Name, err))
			fmt.Fprintf(b.progress, "skipping %s: %v\n", st.Name, err)
			continue
		}
		services, err := s.startServices(ctx, b.cfg.WorkDir)
		if err != nil {
			return fmt.Errorf("perf: %s: %w", st.Name, err)
		}
		if b.pinned && s.redis != nil {
			// The session store belongs to the server's side.
			if err := pin(s.redis.PID(), b.serverCPU); err != nil {
				s.redis.Stop()
				return fmt.Errorf("perf: pin redis-server: %w", err)
			}
		}
		rc := strategy.ReplicaConfig{DB: db.DSN, NoReadCache: b.cfg.NoReadCache, Services: services}
		if err := b.start(ctx, s, st.Server, st.ReplicaArgs(rc), slices.Concat(st.ReplicaEnv(rc), db.Env)); err != nil {
			if s.redis != nil {
				s.redis.Stop()
			}
			return err
		}
		if err := s.signIn(ctx); err != nil {
			return fmt.Errorf("perf: %s: %w", st.Name, err)
		}
	}
	return nil
}

// start starts s as one replica of command, pinned to the server CPU when
// Run pins, and adds it to the servers stopServers stops.
func (b *bench) start(ctx context.Context, s *server, command string, args, env []string) error {
	if b.pinned {
		// The server sees one CPU, as it would pinned from birth.
		env = append(env, "GOMAXPROCS=1")
	}
	s.sup = supervisor.New(supervisor.Config{
		Side: s.name, Command: command, Binary: b.cfg.Binary, Args: args, Env: env,
		Log: b.logFile, Logger: b.logger,
	})
	b.servers = append(b.servers, s)
	if err := s.sup.Scale(ctx, 1); err != nil {
		return fmt.Errorf("perf: start %s: %w", s.name, err)
	}
	r := s.sup.Replicas()[0]
	s.addr, s.pid = r.Addr, r.PID
	if b.pinned {
		if err := pin(s.pid, b.serverCPU); err != nil {
			return fmt.Errorf("perf: pin %s to CPU %d: %w", s.name, b.serverCPU, err)
		}
	}
	return nil
}

// stopServers stops every server started and its session store, even when
// ctx has ended.
func (b *bench) stopServers(ctx context.Context) {
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	for _, s := range b.servers {
		if err := s.sup.Stop(stopCtx); err != nil {
			b.logger.Warn("stop server", "server", s.name, "err", err)
		}
		if s.redis != nil {
			if err := s.redis.Stop(); err != nil {
				b.logger.Warn("stop redis-server", "err", err)
			}
		}
	}
}

// job is one row being measured: a server, one request, and what its
// rounds have added up so far.
type job struct {
	s    *server
	t    *target
	row  *Row
	cpu  time.Duration // the server's
	rcpu time.Duration // its session store's
	lcpu time.Duration // the load generator's
	lats []time.Duration
}

// plan is the rows, in the order they are reported: each server with each
// path, the bare server with the first path only (it answers any path
// alike).
func (b *bench) plan() []*job {
	var jobs []*job
	for _, s := range b.servers {
		paths := b.cfg.Paths
		if s.name == Bare {
			paths = []Path{{Name: "any", Target: b.cfg.Paths[0].Target}}
		}
		for _, p := range paths {
			jobs = append(jobs, &job{
				s: s, t: newTarget(s.addr, p.Target, s.header, s.value, b.cfg.Conns),
				row: &Row{Strategy: s.name, Server: serverOf(s), Path: p.Name, Target: p.Target},
			})
		}
	}
	return jobs
}

// runRounds measures the jobs round by round; every round runs each once,
// so a slow spell of the machine touches all of them alike.
func (b *bench) runRounds(ctx context.Context, jobs []*job) error {
	for round := 1; round <= b.cfg.Rounds; round++ {
		for _, j := range jobs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := b.measure(ctx, j, round); err != nil {
				return err
			}
		}
	}
	return nil
}

// measure warms j's server up, then runs one measured round of it and adds
// what it answered and the CPU time each process spent to j.
func (b *bench) measure(ctx context.Context, j *job, round int) error {
	cfg := b.cfg
	if cfg.Warmup > 0 {
		j.t.run(ctx, cfg.Conns, cfg.Warmup)
	}
	cpu0, err := cpuTime(j.s.pid)
	if err != nil {
		return fmt.Errorf("perf: CPU time of %s: %w", j.s.name, err)
	}
	var rcpu0 time.Duration
	if j.s.redis != nil {
		rcpu0, _ = cpuTime(j.s.redis.PID())
	}
	lcpu0, _ := cpuTime(os.Getpid())
	res := j.t.run(ctx, cfg.Conns, cfg.Duration)
	lcpu1, _ := cpuTime(os.Getpid())
	j.lcpu += lcpu1 - lcpu0
	cpu1, err := cpuTime(j.s.pid)
	if err != nil {
		return fmt.Errorf("perf: CPU time of %s: %w", j.s.name, err)
	}
	if j.s.redis != nil {
		rcpu1, _ := cpuTime(j.s.redis.PID())
		j.rcpu += rcpu1 - rcpu0
	}
	j.cpu += cpu1 - cpu0
	j.row.OK += res.ok
	j.row.Failed += res.failed
	if j.row.FirstFailure == "" {
		j.row.FirstFailure = res.firstFail
	}
	j.lats = append(j.lats, res.latencies...)
	rps := float64(res.ok) / res.elapsed.Seconds()
	j.row.PerRound = append(j.row.PerRound, rps)
	j.row.ServerBusy += (cpu1 - cpu0).Seconds() / res.elapsed.Seconds() / float64(cfg.Rounds)
	fmt.Fprintf(b.progress, "round %d/%d  %-14s %-5s %9.0f req/s  server CPU %3.0f%%\n",
		round, cfg.Rounds, j.s.name, j.row.Path, rps, 100*(cpu1-cpu0).Seconds()/res.elapsed.Seconds())
	return nil
}

// summarize turns the jobs' sums into rep's rows: medians, percentiles,
// CPU time per answer, and each row's ratios to the bare server.
func summarize(rep *Report, jobs []*job) {
	var bareRate, bareCPU float64
	for _, j := range jobs {
		r := j.row
		r.PerSecond = median(r.PerRound)
		slices.Sort(j.lats)
		r.P50Ms = ms(percentile(j.lats, 50))
		r.P99Ms = ms(percentile(j.lats, 99))
		if n := r.OK + r.Failed; n > 0 {
			r.ServerCPUMicros = float64(j.cpu.Microseconds()) / float64(n)
			r.StoreCPUMicros = float64(j.rcpu.Microseconds()) / float64(n)
			r.LoadCPUMicros = float64(j.lcpu.Microseconds()) / float64(n)
		}
		if r.Strategy == Bare {
			bareRate, bareCPU = r.PerSecond, r.ServerCPUMicros
		}
		rep.Rows = append(rep.Rows, *r)
	}
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if bareRate > 0 {
			r.Ratio = r.PerSecond / bareRate
		}
		if r.ServerCPUMicros > 0 {
			r.CPURatio = bareCPU / r.ServerCPUMicros
		}
	}
}

// startServices starts what the strategy's replica needs beside it
// (Strategy.Services) and returns their addresses and passwords.
func (s *server) startServices(ctx context.Context, workDir string) (map[stateful.Service]strategy.Endpoint, error) {
	addrs := map[stateful.Service]strategy.Endpoint{}
	for _, svc := range s.st.Services() {
		run, err := services.Start(ctx, svc, services.Config{Dir: filepath.Join(workDir, services.Name(svc))})
		if err != nil {
			return nil, err
		}
		s.redis, addrs[svc] = run, strategy.Endpoint{Addr: run.Addr(), Secret: run.Secret()}
	}
	return addrs, nil
}

func serverOf(s *server) string {
	if s.name == Bare {
		return BaselineCommand
	}
	return s.st.Server
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// chooseCPUs picks a CPU for the servers and another for the load
// generator, when this process may use two and the system can pin.
func chooseCPUs(noPin bool) (serverCPU, loadCPU int, pinned bool, why string) {
	if noPin {
		return 0, 0, false, "not pinned (--no-pin): servers and load share every CPU"
	}
	if !canPin {
		return 0, 0, false, "not pinned: this system has no sched_setaffinity; servers and load share every CPU"
	}
	cpus, err := allowedCPUs()
	if err != nil || len(cpus) < 2 {
		return 0, 0, false, fmt.Sprintf("not pinned: fewer than two CPUs to use (%v, %v); servers and load share them", cpus, err)
	}
	return cpus[0], cpus[1], true, fmt.Sprintf("server on CPU %d (GOMAXPROCS=1), load generator on CPU %d", cpus[0], cpus[1])
}

// pinSelf pins this process (every thread, so every goroutine) to cpu and
// runs it on one P, and returns the function that undoes both.
func pinSelf(cpu int) (func(), error) {
	before, err := allowedCPUs()
	if err != nil {
		return nil, err
	}
	if err := pin(os.Getpid(), cpu); err != nil {
		return nil, err
	}
	procs := runtime.GOMAXPROCS(1)
	return func() {
		runtime.GOMAXPROCS(procs)
		_ = pin(os.Getpid(), before...)
	}, nil
}

// signIn gets the strategy's credential the way a client would, once.
func (s *server) signIn(ctx context.Context) error {
	alice := client.Credentials{Email: "alice@example.com", Password: "wonderland"}
	cred, err := client.New("http://"+s.addr, nil).SignIn(ctx, s.st.Credential, alice)
	if err != nil {
		return err
	}
	s.header, s.value = cred.Header, cred.Value
	return nil
}
