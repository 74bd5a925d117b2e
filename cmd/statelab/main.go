// Command statelab runs the lab: the stateful and the stateless library
// servers, each on its own or as replicas started by the comparison runner.
//
// Run "statelab -h" for the subcommands and "statelab SUBCOMMAND -h" for
// their flags. Every flag can also be set from an environment variable named
// STATELAB_ and the flag's name in capitals, e.g. STATELAB_ADDR.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/time/rate"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/matrix"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/sqlite"
	"github.com/statelab/statelab/internal/walkthrough"
	"github.com/statelab/statelab/perf"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
	"github.com/statelab/statelab/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "statelab: %v\n", err)
		os.Exit(1)
	}
}

const usage = `statelab — a hands-on lab for the REST stateless constraint.

Usage:
  statelab stateful  [flags]   the library server that keeps sessions in its memory (default 127.0.0.1:5001)
  statelab stateless [flags]   the library server that keeps nothing between requests (default 127.0.0.1:5002)
  statelab compare   [flags]   two strategies side by side: replicas behind load balancers, simulated users,
                               a scenario of restarts, crashes and scaling, a live feed and a report (make demo)
  statelab strategies          the ways the lab can keep a sign-in, where each keeps it, what it costs, what breaks it
  statelab matrix    [flags]   every strategy against every fault, measured on real processes: one table of what
                               users lost, and what each strategy costs per request (about 5 minutes; --quick 90 s)
  statelab walkthrough [flags] the classroom guide: starts its own servers and goes through the lesson
                               one HTTP exchange at a time, asking for predictions (make walkthrough)
  statelab perf      [flags]   what a request costs with each strategy: one server of each and a bare
                               net/http server under the same load, side by side (make perf)
  statelab baseline  [flags]   the bare net/http server statelab perf measures against (default 127.0.0.1:5003)

Run "statelab SUBCOMMAND -h" for a subcommand's flags. Every flag can also be
set through its environment variable (shown in the help), e.g. STATELAB_ADDR.
`

// run is the whole program, with its inputs passed in so tests can call it.
// stdin is read only by a server started with -exit-with-stdin and by the
// walkthrough (the student's answers); nil counts as an input that is
// already closed.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("name a subcommand: stateful, stateless, compare, strategies, matrix, walkthrough, perf or baseline")
	}
	switch cmd := args[1]; cmd {
	case "stateful", "stateless":
		return runServer(ctx, cmd, args[2:], getenv, stdin, stderr)
	case "compare":
		return runCompare(ctx, args[2:], getenv, stdout, stderr)
	case "walkthrough":
		return runWalkthrough(ctx, args[2:], getenv, stdin, stdout, stderr)
	case "strategies":
		return runStrategies(args[2:], getenv, stdout, stderr)
	case "matrix":
		return runMatrix(ctx, args[2:], getenv, stdout, stderr)
	case "perf":
		return runPerf(ctx, args[2:], getenv, stdout, stderr)
	case perf.BaselineCommand:
		return runBaseline(ctx, args[2:], getenv, stdin, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown subcommand %q", cmd)
	}
}

// serverConfig is what the flags of a server subcommand say.
type serverConfig struct {
	addr            string
	db              string
	replica         string
	logLevel        slog.Level
	logFormat       string
	shutdownTimeout time.Duration
	exitWithStdin   bool

	readCache bool

	sessionKey    string // stateful
	secureCookies bool
	sessionTTL    time.Duration
	sessions      string
	redisAddr     string

	jwtSecret     string // stateless
	jwtTTL        time.Duration
	emailOnlyKeys bool

	signIn api.SignInLimits
}

// keySweepEvery is how often a server forgets the idempotency keys older
// than library.IdempotencyKeyTTL.
const keySweepEvery = 10 * time.Minute

func parseServerFlags(name string, args []string, getenv func(string) string, stderr io.Writer) (serverConfig, error) {
	c := serverConfig{}
	fs := newFlagSet("statelab "+name, getenv, stderr)
	defAddr := "127.0.0.1:5001"
	if name == "stateless" {
		defAddr = "127.0.0.1:5002"
	}
	fs.String(&c.addr, "addr", defAddr, "`host:port` to listen on (port 0 picks a free one)")
	fs.String(&c.db, "db", "./data/library.db", "SQLite `file` of the shared resource state (created and seeded when missing)")
	fs.Bool(&c.readCache, "read-cache", true, "answer repeated reads (a book, a page of books, an API key) from this process's memory while the shared database is unchanged; every commit, by any process, empties it at once (-read-cache=false asks SQLite every time, to measure what it saves)")
	fs.String(&c.replica, "replica-id", strconv.Itoa(os.Getpid()), "this process's replica `id`, in logs, metrics and the "+api.ReplicaHeader+" header")
	fs.Func("log-level", "log `level`: debug, info, warn or error (default info)", c.logLevel.UnmarshalText)
	fs.String(&c.logFormat, "log-format", "text", "log `format`: text or json")
	fs.Duration(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish after SIGTERM")
	fs.Bool(&c.exitWithStdin, "exit-with-stdin", false, "exit (gracefully) when standard input closes: the comparison runner holds a pipe to every replica, so no replica outlives it, even when the runner is killed")
	def := api.DefaultSignInLimits()
	var accountRate, addrRate float64
	fs.Float64(&accountRate, "sign-in-rate", float64(def.AccountRate), "sign-ins per second allowed per account on this replica (429 too_many_requests with Retry-After beyond it)")
	fs.Int(&c.signIn.AccountBurst, "sign-in-burst", def.AccountBurst, "sign-ins per account allowed at once before -sign-in-rate applies")
	fs.Float64(&addrRate, "sign-in-addr-rate", float64(def.AddrRate), "sign-ins per second allowed per client address (IPv4 or IPv6 /64) on this replica")
	fs.Int(&c.signIn.AddrBurst, "sign-in-addr-burst", def.AddrBurst, "sign-ins per client address allowed at once before -sign-in-addr-rate applies")
	fs.Bool(&c.signIn.LimitLoopback, "sign-in-limit-loopback", false, "apply the per-address limit to loopback clients too; off by default because the simulated users and every request through the lab's balancers come from 127.0.0.1 (the per-account limit always applies)")
	switch name {
	case "stateful":
		fs.Secret(&c.sessionKey, "session-key", "`secret` that signs session cookies, at least 32 bytes; give every replica the same one (default: random, so cookies die with the process)")
		fs.Bool(&c.secureCookies, "secure-cookies", false, "mark the session cookie Secure (only sent over HTTPS)")
		fs.Duration(&c.sessionTTL, "session-ttl", 24*time.Hour, "how long a session is kept after its last change (at least 1s)")
		fs.String(&c.sessions, "sessions", "memory", "the `store` that keeps sessions between requests:"+storeList())
		fs.String(&c.redisAddr, stateful.RedisServer.AddrFlag, "127.0.0.1:6379", "`host:port` of the redis server that keeps sessions with -sessions redis")
	case "stateless":
		fs.Secret(&c.jwtSecret, "jwt-secret", "`secret` that signs JWTs, at least 32 bytes; give every replica the same one (default: random, so tokens die with the process)")
		fs.Duration(&c.jwtTTL, "jwt-ttl", 15*time.Minute, "how long an issued JWT is valid")
		fs.Bool(&c.emailOnlyKeys, "insecure-email-only-keys", false, "UNSAFE, for the seed lesson only: POST /api/auth/generate-key gives a key for an email alone and registers unknown emails without a password, so anyone who knows an email gets that account, and the answers tell which accounts exist. Never on a shared machine")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.signIn.AccountRate, c.signIn.AddrRate = rate.Limit(accountRate), rate.Limit(addrRate)
	if accountRate <= 0 || addrRate <= 0 || c.signIn.AccountBurst < 1 || c.signIn.AddrBurst < 1 {
		return c, errors.New("sign-in rates must be positive and bursts at least 1")
	}
	if name == "stateful" && !slices.Contains(stateful.StoreNames(), c.sessions) {
		return c, fmt.Errorf("-sessions %q: use %s", c.sessions, strings.Join(stateful.StoreNames(), ", "))
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, fmt.Errorf("-log-format %q: use text or json", c.logFormat)
	}
	if c.sessionTTL < 0 || c.jwtTTL < 0 || c.shutdownTimeout < 0 {
		return c, errors.New("durations must not be negative")
	}
	if name == "stateless" && c.jwtTTL < time.Second {
		// A JWT's expiry is in whole seconds: a shorter TTL issues tokens
		// that are already expired, which would look like a lesson.
		return c, fmt.Errorf("-jwt-ttl %s: use at least 1s", c.jwtTTL)
	}
	if name == "stateful" && c.sessionTTL < time.Second {
		// The cookie's Max-Age is in whole seconds, and 0 would mean
		// "never expires": a sub-second TTL cannot say what it means.
		return c, fmt.Errorf("-session-ttl %s: use at least 1s", c.sessionTTL)
	}
	for _, s := range []struct{ flag, value string }{{"session-key", c.sessionKey}, {"jwt-secret", c.jwtSecret}} {
		if s.value != "" && len(s.value) < 32 {
			return c, fmt.Errorf("-%s is %d bytes; use at least 32 (e.g. openssl rand -hex 32)", s.flag, len(s.value))
		}
	}
	return c, nil
}

// runServer runs one replica of the stateful or stateless server until ctx
// is cancelled, then drains it.
func runServer(ctx context.Context, name string, args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) error {
	c, err := parseServerFlags(name, args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, c.logFormat, c.logLevel).With("server", name, "replica", c.replica)

	ctx, stdinClosed, cancel := watchStdin(ctx, c.exitWithStdin, stdin)
	defer cancel()

	var opts []sqlite.Option
	if !c.readCache {
		opts = append(opts, sqlite.WithoutCache())
	}
	store, err := sqlite.Open(ctx, c.db, opts...)
	if err != nil {
		return fmt.Errorf("open database %s: %w", c.db, err)
	}
	defer store.Close()
	// Every replica sweeps the idempotency keys past their day; it stops
	// before the store closes (defers run last in, first out).
	sweepCtx, stopSweep := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() { defer close(swept); api.SweepIdempotencyKeys(sweepCtx, store, keySweepEvery, logger) }()
	defer func() { stopSweep(); <-swept }()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prometheus.WrapRegistererWith(prometheus.Labels{"server": name, "replica": c.replica}, reg).MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_read_cache_hits_total",
			Help: "Reads (a book, a page of books, an API key) answered from this process's read cache while the shared database was unchanged.",
		}, func() float64 { return float64(store.CacheStats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_read_cache_misses_total",
			Help: "Cacheable reads that went to SQLite: the first of their kind since the last commit anywhere, or one that met a commit being written (both counters stay 0 with -read-cache=false).",
		}, func() float64 { return float64(store.CacheStats().Misses) }),
	)
	readiness := &api.Readiness{}
	cfg := api.Config{
		Replica: c.replica, Store: store, Logger: logger, Registry: reg, Readiness: readiness,
		SignIn: api.NewSignInLimiter(c.signIn, time.Now),
	}

	var handler http.Handler
	switch name {
	case "stateful":
		key, err := secretOrRandom(c.sessionKey, "session-key", logger)
		if err != nil {
			return err
		}
		opts := sessions.Options{
			Path: "/", MaxAge: int(c.sessionTTL.Seconds()), HttpOnly: true, Secure: c.secureCookies, SameSite: http.SameSiteLaxMode,
		}
		sessStore, err := stateful.OpenStore(c.sessions, stateful.StoreConfig{Key: key, Cookie: opts, RedisAddr: c.redisAddr, Now: time.Now})
		if err != nil {
			return err
		}
		if cl, ok := sessStore.(io.Closer); ok {
			defer cl.Close()
		}
		attrs := []any{"store", sessStore.Name(), "kept", sessStore.Where(c.replica)}
		if slices.Contains(sessStore.Needs(), stateful.RedisServer) {
			attrs = append(attrs, "redis_addr", c.redisAddr)
		}
		logger.Info("session store", attrs...)
		handler = stateful.NewServer(cfg, sessStore)
	case "stateless":
		secret, err := secretOrRandom(c.jwtSecret, "jwt-secret", logger)
		if err != nil {
			return err
		}
		var opts []stateless.Option
		if c.emailOnlyKeys {
			logger.Warn("-insecure-email-only-keys is on: an email alone gets an API key and registers an account without a password; anyone who knows an email can act as that member. Use it only to show the seed's original flow, never on a shared machine",
				"env", strategy.EnvName("insecure-email-only-keys"))
			opts = append(opts, stateless.InsecureEmailOnlyKeys())
		}
		handler = stateless.NewServer(cfg, stateless.NewTokens(secret, c.jwtTTL, time.Now), time.Now, opts...)
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another statelab running? pick another port with -addr)", c.addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening", "addr", "http://"+ln.Addr().String(), "db", c.db, "pid", os.Getpid())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	select {
	case <-stdinClosed:
		logger.Info("standard input closed: the runner is gone")
	default:
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", c.shutdownTimeout)
	readiness.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// watchStdin returns a context that ends when stdin closes, if exit is
// set, and a channel closed at that moment. The runner holds the write end
// of this pipe: however the runner ends, even by SIGKILL, the kernel closes
// it, and the replica follows.
func watchStdin(ctx context.Context, exit bool, stdin io.Reader) (context.Context, <-chan struct{}, context.CancelFunc) {
	closed := make(chan struct{})
	if !exit {
		return ctx, closed, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		if stdin != nil {
			_, _ = io.Copy(io.Discard, stdin)
		}
		close(closed)
		cancel()
	}()
	return ctx, closed, cancel
}

// runBaseline runs the bare net/http server that statelab perf measures
// the strategies against: no router, metrics, authentication or database.
// It takes the flags the supervisor gives every replica.
func runBaseline(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) error {
	fs := newFlagSet("statelab baseline", getenv, stderr)
	var (
		addr, replica string
		exitWithStdin bool
	)
	fs.String(&addr, "addr", "127.0.0.1:5003", "`host:port` to listen on (port 0 picks a free one)")
	fs.String(&replica, "replica-id", strconv.Itoa(os.Getpid()), "this process's replica `id`, in the "+api.ReplicaHeader+" header")
	fs.Bool(&exitWithStdin, "exit-with-stdin", false, "exit when standard input closes (statelab perf holds a pipe to it, so the server never outlives it)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: statelab baseline [flags]\n\nThe bare net/http server statelab perf measures every strategy against: it answers\nevery request with the same JSON book, with nothing in between.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, _, cancel := watchStdin(ctx, exitWithStdin, stdin)
	defer cancel()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           perf.BareHandler(replica),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	return srv.Shutdown(shutdownCtx)
}

// runPerf measures what a request costs with each strategy against the
// bare server, in real processes (make perf).
func runPerf(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab perf", getenv, stderr)
	var (
		strategies, paths, jsonOut, workDir string
		conns, rounds                       int
		duration, warmup                    time.Duration
		noPin, quiet, noReadCache           bool
	)
	fs.String(&strategies, "strategies", strings.Join(perf.DefaultStrategies, ","), "the `strategies` to measure besides the bare server: any of "+strings.Join(strategy.Names(), ", ")+" (memory, memory-sticky and memory-hash run the same replica; only their balancers differ)")
	fs.String(&paths, "requests", "book,page", "the `requests` to measure: book (GET /api/books/1), page (GET /api/books?limit=50), or both")
	fs.Int(&conns, "connections", 64, "keep-alive connections kept busy at once (a closed loop, as wrk does)")
	fs.Int(&rounds, "rounds", 3, "measured runs per row; rows take turns, and a row reports its median")
	fs.Duration(&duration, "duration", 2*time.Second, "how long each measured run lasts")
	fs.Duration(&warmup, "warmup", 300*time.Millisecond, "unmeasured load before each run")
	fs.Bool(&noReadCache, "no-read-cache", false, "start the replicas with -read-cache=false, so every read asks SQLite: run once with and once without to see what the cache saves")
	fs.Bool(&noPin, "no-pin", false, "leave the servers and the load generator where the scheduler puts them, instead of one CPU each")
	fs.String(&jsonOut, "json", "", "also write the report as JSON to `file`")
	fs.String(&workDir, "work-dir", "", "`dir`ectory for the database, redis-server and the servers' log (default: a temporary one, removed afterwards)")
	fs.Bool(&quiet, "quiet", false, "print only the table, no line per run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sts []strategy.Strategy
	for name := range strings.SplitSeq(strategies, ",") {
		st, err := strategy.Parse(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		if st.OwnSecrets {
			return fmt.Errorf("-strategies %s: one replica has no other replica to disagree with; leave the %s suffix out", st.Name, strategy.OwnSecretsSuffix)
		}
		sts = append(sts, st)
	}
	ps, err := perf.ParsePaths(paths)
	if err != nil {
		return err
	}
	if conns < 1 || rounds < 1 || duration <= 0 || warmup < 0 {
		return errors.New("-connections and -rounds must be at least 1, -duration positive, -warmup not negative")
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the statelab binary to start the servers from: %w", err)
	}
	if workDir == "" {
		workDir, err = os.MkdirTemp("", "statelab-perf-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(workDir)
	}
	cfg := perf.Config{
		Binary: bin, Strategies: sts, Paths: ps, Conns: conns, Duration: duration, Warmup: warmup,
		Rounds: rounds, WorkDir: workDir, NoPin: noPin, NoReadCache: noReadCache, Progress: stderr,
		Logger: newLogger(stderr, "text", slog.LevelWarn),
	}
	if quiet {
		cfg.Progress = nil
	}
	rep, err := perf.Run(ctx, cfg)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		fmt.Fprintln(stderr, "statelab perf: interrupted; the servers it started are stopped")
		return nil
	}
	if err != nil {
		return err
	}
	rep.WriteTable(stdout)
	if jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	for _, row := range rep.Rows {
		if row.Failed > 0 {
			return fmt.Errorf("%s %s: %d requests failed (first: %s)", row.Strategy, row.Path, row.Failed, row.FirstFailure)
		}
	}
	return nil
}

// runCompare runs the comparison: replicas of both servers behind balancers,
// simulated users, a scenario timeline, a report.
func runCompare(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab compare", getenv, stderr)
	var (
		scenarioName, addr, leftAddr, rightAddr, reportDir, workDir, logFormat string
		sides                                                                  string
		users, replicas                                                        int
		seed                                                                   int64
		duration, think                                                        time.Duration
		hold, manual                                                           bool
		logLevel                                                               slog.Level
	)
	logLevel = slog.LevelWarn
	fs.String(&sides, "sides", "", "the two `strategies` to put side by side, left column first: any two of "+strings.Join(strategy.Names(), ", ")+", each optionally with the suffix "+strategy.OwnSecretsSuffix+" (statelab strategies explains them); default: the scenario's own sides, else "+defaultSides)
	fs.String(&scenarioName, "scenario", "default", "scenario `name or file`: a YAML/JSON file (see compare/scenario/builtin/default.yaml) or a built-in one:"+scenarioList())
	fs.Bool(&manual, "manual", false, "hold each scenario event until it is fired (the dashboard's Next event button, or POST /api/control/next), then run as long after the last one as the scenario does")
	fs.Duration(&duration, "duration", 0, "run this long instead of the scenario's duration (events after it are dropped)")
	fs.Int(&users, "users", 20, "simulated users per side (when not given: the scenario's users, if it names a number, else this default)")
	fs.Int(&replicas, "replicas", 0, "replicas per side at the start, instead of the scenario's")
	fs.Int64(&seed, "seed", 1, "seed of the users' decisions: the same seed gives the same journeys")
	fs.Duration(&think, "think", 150*time.Millisecond, "mean think time between a user's steps")
	fs.String(&addr, "addr", "127.0.0.1:8080", "the runner's `host:port`: dashboard, /api/feed, /metrics")
	fs.String(&leftAddr, "left-addr", "127.0.0.1:8001", "`host:port` of the first side's load balancer")
	fs.String(&rightAddr, "right-addr", "127.0.0.1:8002", "`host:port` of the second side's load balancer")
	fs.String(&reportDir, "report", "", "`dir`ectory for report.json and report.md (default ./reports/<start time>)")
	fs.String(&workDir, "work-dir", "", "`dir`ectory for the shared database and the replicas' log (default: a temporary one, removed afterwards)")
	fs.Bool(&hold, "hold", false, "after the timeline, keep replicas, balancers and the dashboard up until Ctrl-C")
	var fileSD, matrixFile string
	fs.String(&matrixFile, "matrix", matrix.LatestFile, "the `file` the dashboard serves at /matrix: the page statelab matrix last made (its -latest)")
	fs.String(&fileSD, "file-sd", "./data/file_sd/statelab.json", "Prometheus file_sd `file` the runner keeps listing itself and every live replica, for scripts/prometheus.yml (make prometheus); -file-sd= writes none")
	fs.Func("log-level", "runner log `level`: debug, info, warn or error (default warn)", logLevel.UnmarshalText)
	fs.String(&logFormat, "log-format", "text", "log `format`: text or json")
	var (
		replicaCPU, rate          float64
		rateUsers, maxOutstanding int
		deadline                  time.Duration
		readCache                 bool
	)
	// The help quotes the built-in capacity scenario's load.
	capacityDefaults, _ := scenario.Load("capacity")
	fs.Float64(&replicaCPU, "replica-cpu", 0, "run every replica under a CPU limit of this many `cores` (0.25: a quarter of one), enforced by the kernel like a container's resources.limits.cpu: a cgroup per replica with a CFS quota (cgroup v2 cpu.max or v1 cpu.cfs_quota_us; root, or a systemd user scope). Where the machine cannot enforce it the runner says so and runs unlimited. 0 with no limit; when unset, the scenario's (capacity: "+fmt.Sprint(capacityDefaults.ReplicaCPU)+")")
	fs.Float64(&rate, "rate", 0, "open-loop load: `requests` per second per side that arrive whether or not the side keeps up, from --rate-users signed-in users, each with --deadline; when unset, the scenario's (capacity: "+fmt.Sprint(capacityDefaults.Rate)+"); 0 sends none")
	fs.Int(&rateUsers, "rate-users", 0, "signed-in `users` per side the --rate requests come from (default: the scenario's, else "+strconv.Itoa(load.DefaultRateUsers)+")")
	fs.Int(&maxOutstanding, "max-outstanding", 0, "at most this many --rate `requests` outstanding per side; an arrival beyond them is dropped and counts as a timeout (default: the scenario's, else twice what the rate has in flight when every request waits its whole deadline)")
	fs.Bool(&readCache, "read-cache", true, "let the replicas answer repeated reads from their read cache while the shared database is unchanged (statelab stateful -h); when unset, the scenario's (capacity: off, so each request costs what an uncached one does)")
	fs.Duration(&deadline, "deadline", 0, "how long a --rate request waits for its answer; past it, it counts as a timeout, a failure the user sees (default: the scenario's, else "+load.DefaultDeadline.String()+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true }) // the command line and the environment
	sc, err := scenario.Load(scenarioName)
	if err != nil {
		return err
	}
	if sides == "" {
		sides = cmp.Or(sc.Sides, defaultSides)
	}
	pair, err := strategy.ParsePair(sides)
	if err != nil {
		return err
	}
	if replicas > 0 {
		sc.Replicas = replicas
	}
	if duration > 0 {
		sc.Shorten(duration)
	}
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("scenario %s: %w", scenarioName, err)
	}
	load := resolveLoad(sc, set, compareLoad{users: users, replicaCPU: replicaCPU, rate: rate, rateUsers: rateUsers, deadline: deadline, maxOutstanding: maxOutstanding, readCache: readCache})
	if think <= 0 {
		return errors.New("-think must be positive")
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the statelab binary to start replicas from: %w", err)
	}
	if reportDir == "" {
		reportDir = filepath.Join("reports", time.Now().Format("20060102-150405"))
	}
	if workDir == "" {
		workDir, err = os.MkdirTemp("", "statelab-compare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(workDir)
	}
	logger := newLogger(stderr, logFormat, logLevel).With("component", "compare")

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another lab running? pick another address with -addr)", addr, err)
	}
	r, err := compare.New(ctx, compare.Config{
		Binary: bin, Scenario: sc, Sides: pair, Users: load.users, Seed: seed, Think: think,
		Addr: ln.Addr().String(), BalancerAddrs: [2]string{leftAddr, rightAddr},
		ReportDir: reportDir, WorkDir: workDir, Hold: hold, Manual: manual, Stdout: stdout, Interactive: isTerminal(stdout), Logger: logger,
		FileSD:    fileSD,
		Dashboard: dashboard(matrixFile),
		Rate:      load.rate, RateUsers: load.rateUsers, Deadline: load.deadline, ReplicaCPU: load.replicaCPU, MaxOutstanding: load.maxOutstanding,
		NoReadCache: !load.readCache,
	})
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "statelab compare: %s vs %s, scenario %q, %s, %d users and %d replica(s) per side\ndashboard and feed: http://%s/\n", pair[0].Name, pair[1].Name, sc.Name, sc.Duration.Std(), load.users, sc.Replicas, ln.Addr())
	if manual && len(sc.Events) > 0 {
		fmt.Fprintf(stdout, "manual: each of the %d event(s) waits until you fire it: the dashboard's Next event button, or\n  curl -X POST http://%s/api/control/next\n", len(sc.Events), ln.Addr())
	}
	_, err = r.Run(ctx, ln)
	return err
}

// defaultSides is the pair statelab compare puts side by side when neither
// the command line nor the scenario names one: what a real team would run
// against a stateless API.
const defaultSides = "memory-sticky,apikey"

// storeList lists the session stores with their one-line usage, for -h.
func storeList() string {
	var b strings.Builder
	for _, k := range stateful.StoreKinds() {
		fmt.Fprintf(&b, "\n  %-7s %s", k.Name(), k.Usage)
	}
	return b.String()
}

// scenarioList lists the built-in scenarios with their one-line
// descriptions, for -h.
func scenarioList() string {
	var b strings.Builder
	for _, sc := range scenario.Builtins() {
		fmt.Fprintf(&b, "\n  %-12s %s", sc.Name, sc.Description)
	}
	return b.String() + "\n"
}

// compareLoad is the load statelab compare puts on the sides.
type compareLoad struct {
	users                     int
	replicaCPU, rate          float64
	rateUsers, maxOutstanding int
	deadline                  time.Duration
	readCache                 bool
}

// resolveLoad takes each part of the load from its flag when the command
// line or the environment set it (set names those flags), else from the
// scenario, else from the flag's default.
func resolveLoad(sc scenario.Scenario, set map[string]bool, flags compareLoad) compareLoad {
	l := flags
	if !set["users"] && sc.Users != nil {
		l.users = *sc.Users
	}
	if !set["replica-cpu"] {
		l.replicaCPU = sc.ReplicaCPU
	}
	if !set["rate"] {
		l.rate = sc.Rate
	}
	if !set["rate-users"] {
		l.rateUsers = cmp.Or(sc.RateUsers, load.DefaultRateUsers)
	}
	if !set["deadline"] {
		l.deadline = cmp.Or(sc.Deadline.Std(), load.DefaultDeadline)
	}
	if !set["max-outstanding"] {
		l.maxOutstanding = sc.MaxOutstanding
	}
	if !set["read-cache"] && sc.ReadCache != nil {
		l.readCache = *sc.ReadCache
	}
	return l
}

// dashboard is what a runner serves at /: the live page, and at /matrix the
// page the last matrix wrote.
func dashboard(matrixFile string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.Handle("/matrix", web.MatrixPage(matrixFile))
	return mux
}

// runMatrix measures every strategy against every fault and writes the
// table, matrix.json, matrix.md and matrix.html.
func runMatrix(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab matrix", getenv, stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: statelab matrix [flags]

Runs every strategy (rows) against every fault (columns) on real replica processes,
behind the real balancer, with the simulated users of statelab compare, and prints one
table: in each cell what the users lost in a window that starts with the fault and ends
where the next one starts. Beside each row, what the strategy costs on every request,
measured in the same runs. The strategies run two at a time, each run playing every
fault in turn; the same seed gives the same journeys in every run.

A full matrix takes about 5 minutes on a 2-core machine; --quick about 90 seconds.
Ctrl-C stops it: no process is left behind, and it says which cells were finished.

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		strategies, faults, addr, reportDir, workDir, latest, logFormat string
		users, replicas                                                 int
		seed                                                            int64
		window, warmup, think                                           time.Duration
		quick                                                           bool
		logLevel                                                        slog.Level
	)
	logLevel = slog.LevelWarn
	fs.String(&strategies, "strategies", strings.Join(matrix.DefaultStrategies(), ","), "the rows: a comma-separated `list` of strategies ("+strings.Join(strategy.Names(), ", ")+"), each optionally with the suffix "+strategy.OwnSecretsSuffix)
	fs.String(&faults, "faults", strings.Join(matrix.FaultNames(), ","), "the columns: a comma-separated `list` of faults, played in the order shown here whatever the order given")
	fs.Bool(&quick, "quick", false, fmt.Sprintf("a smaller matrix in about 90 seconds: %d users, %s windows after a %s warm-up (flags given explicitly still win)", matrix.QuickUsers, matrix.QuickWindow, matrix.QuickWarmup))
	fs.Int(&users, "users", matrix.DefaultUsers, "simulated users per strategy, the same in every run")
	fs.Int(&replicas, "replicas", 2, "replicas per strategy at the start of every run (at least 2)")
	fs.Duration(&window, "window", matrix.DefaultWindow, "how long each fault's window lasts: the fault, then its effects settling, before the next fault")
	fs.Duration(&warmup, "warmup", matrix.DefaultWarmup, "how long the users sign in before the first window")
	fs.Duration(&think, "think", 150*time.Millisecond, "mean think time between a user's steps")
	fs.Int64(&seed, "seed", 1, "seed of the users' decisions: the same seed gives the same journeys")
	fs.String(&addr, "addr", "127.0.0.1:8080", "the runner's `host:port` during each run: the live dashboard of the pair being measured, and /matrix")
	fs.String(&reportDir, "report", "", "`dir`ectory for matrix.json, matrix.md, matrix.html and each run's report under runs/ (default ./reports/matrix-<start time>)")
	fs.String(&latest, "latest", matrix.LatestFile, "a `file` that gets a copy of matrix.html, which the dashboard serves at /matrix (statelab compare -matrix); -latest= writes none")
	fs.String(&workDir, "work-dir", "", "`dir`ectory for the runs' databases and logs (default: a temporary one, removed afterwards)")
	fs.Func("log-level", "runner log `level`: debug, info, warn or error (default warn)", logLevel.UnmarshalText)
	fs.String(&logFormat, "log-format", "text", "log `format`: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["users"] {
			users = matrix.QuickUsers
		}
		if !set["window"] {
			window = matrix.QuickWindow
		}
		if !set["warmup"] {
			warmup = matrix.QuickWarmup
		}
	}
	var sts []strategy.Strategy
	for _, name := range strings.Split(strategies, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		st, err := strategy.Parse(name)
		if err != nil {
			return err
		}
		sts = append(sts, st)
	}
	fts, err := matrix.ParseFaults(faults)
	if err != nil {
		return err
	}
	if think <= 0 {
		return errors.New("-think must be positive")
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the statelab binary to start replicas from: %w", err)
	}
	if reportDir == "" {
		reportDir = filepath.Join("reports", "matrix-"+time.Now().Format("20060102-150405"))
	}
	if workDir == "" {
		workDir, err = os.MkdirTemp("", "statelab-matrix-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(workDir)
	}
	cfg := matrix.Config{
		Binary: bin, Strategies: sts, Faults: fts, Users: users, Replicas: replicas,
		Warmup: warmup, Window: window, Think: think, Seed: seed, Quick: quick,
		Addr: addr, ReportDir: reportDir, WorkDir: workDir, Latest: latest,
		RequireTools: getenv("CI") != "",
		Stdout:       stdout, Interactive: isTerminal(stdout),
		Logger:    newLogger(stderr, logFormat, logLevel).With("component", "matrix"),
		Dashboard: dashboard(latest),
	}
	m, runErr := matrix.Run(ctx, cfg)
	if m == nil {
		return runErr
	}
	m.PrintTable(stdout)
	if err := m.Write(reportDir); err != nil {
		return errors.Join(runErr, fmt.Errorf("write the matrix: %w", err))
	}
	fmt.Fprintf(stdout, "\nmatrix: %s (matrix.json, matrix.md, matrix.html)\n", reportDir)
	if latest != "" && m.Complete() {
		if err := matrix.CopyFile(filepath.Join(reportDir, "matrix.html"), latest); err != nil {
			return errors.Join(runErr, fmt.Errorf("copy matrix.html to %s: %w", latest, err))
		}
		fmt.Fprintf(stdout, "the dashboard's /matrix now shows it (%s)\n", latest)
	}
	if runErr != nil {
		if done := m.Finished(); len(done) < len(m.Strategies)*len(m.Faults) {
			fmt.Fprintf(stdout, "finished cells (%d of %d): %s\n", len(done), len(m.Strategies)*len(m.Faults), strings.Join(done, ", "))
		}
		if ctx.Err() != nil {
			return nil // Ctrl-C: the matrix said what it finished, and stopped every process
		}
	}
	return runErr
}

// runStrategies prints the table of strategies: the names every place that
// picks a side takes.
func runStrategies(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab strategies", getenv, stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: statelab strategies\n\nPrints the ways the lab can keep a sign-in: the names statelab compare --sides takes.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	strategy.WriteTable(stdout)
	return nil
}

// runWalkthrough runs the classroom guide: it starts its own replicas from
// this binary, and reads the student's answers from stdin.
func runWalkthrough(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab walkthrough", getenv, stderr)
	var (
		auto, noColor, verbose bool
		step, requests         int
	)
	fs.Bool(&auto, "auto", false, "run without pauses and without asking for predictions (for CI and projecting)")
	fs.Int(&step, "step", 1, "start at step `n` (1-"+strconv.Itoa(walkthrough.Steps)+"); the steps before it run silently")
	fs.Bool(&noColor, "no-color", false, "print no ANSI colors (also when $NO_COLOR is set or stdout is not a terminal)")
	fs.Int(&requests, "requests", walkthrough.DefaultRequests, "requests per credential when step 5 measures bytes and time")
	fs.Bool(&verbose, "verbose", false, "show the servers' own logs on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if step < 1 || step > walkthrough.Steps {
		return fmt.Errorf("-step %d: the steps are 1 to %d", step, walkthrough.Steps)
	}
	if requests < 1 {
		return errors.New("-requests must be at least 1")
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the statelab binary to start the servers from: %w", err)
	}
	cfg := walkthrough.Config{
		Binary: bin, Out: stdout, In: stdin, Auto: auto, Step: step, Requests: requests,
		Color: !noColor && getenv("NO_COLOR") == "" && isTerminal(stdout),
	}
	if verbose {
		cfg.Log = stderr
	}
	err = walkthrough.Run(ctx, cfg)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // Ctrl-C: the walkthrough said so, and stopped its servers
	}
	return err
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newLogger returns a slog logger writing text or JSON to w.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// secretOrRandom returns the configured secret, or a random one with a
// warning that says what that costs.
func secretOrRandom(secret, flagName string, logger *slog.Logger) ([]byte, error) {
	if secret != "" {
		return []byte(secret), nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make random %s: %w", flagName, err)
	}
	logger.Warn("no -"+flagName+" given: using a random one, so other replicas and a restarted process will not accept what this one signs",
		"env", strategy.EnvName(flagName))
	return b, nil
}

// flagSet is a flag.FlagSet whose every flag falls back to an environment
// variable. The built-in default is what -h shows; a secret's value from the
// environment is never shown.
type flagSet struct {
	*flag.FlagSet
	getenv func(string) string
}

func newFlagSet(name string, getenv func(string) string, stderr io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flagSet{FlagSet: fs, getenv: getenv}
}

func (f *flagSet) String(p *string, name, def, usage string) {
	f.StringVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Secret(p *string, name, usage string) {
	f.StringVar(p, name, "", usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Bool(p *bool, name string, def bool, usage string) {
	f.BoolVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Int(p *int, name string, def int, usage string) {
	f.IntVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Float64(p *float64, name string, def float64, usage string) {
	f.Float64Var(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Int64(p *int64, name string, def int64, usage string) {
	f.Int64Var(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.DurationVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Func(name, usage string, fn func([]byte) error) {
	f.FlagSet.Func(name, usage+" [$"+strategy.EnvName(name)+"]", func(s string) error { return fn([]byte(s)) })
}

// Parse parses the command line, then fills every flag the command line did
// not set from its environment variable.
func (f *flagSet) Parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -; see -h)", f.Arg(0))
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var err error
	f.VisitAll(func(fl *flag.Flag) {
		v := f.getenv(strategy.EnvName(fl.Name))
		if set[fl.Name] || v == "" || err != nil {
			return
		}
		if e := f.Set(fl.Name, v); e != nil {
			err = fmt.Errorf("$%s=%q: %v", strategy.EnvName(fl.Name), v, e)
		}
	})
	return err
}
