package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/matrix"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/store"
)

const matrixUsage = `Usage: statelab matrix [flags]

Runs every strategy (rows) against every fault (columns) on real replica processes,
behind the real balancer, with the simulated users of statelab compare, and prints one
table: in each cell what the users lost in a window that starts with the fault and ends
where the next one starts. Beside each row, what the strategy costs on every request,
measured in the same runs. The strategies run two at a time, each run playing every
fault in turn; the same seed gives the same journeys in every run.

A full matrix takes about 5 minutes on a 2-core machine; --quick about 90 seconds.
Ctrl-C stops it: no process is left behind, and it says which cells were finished.

Flags:
`

// runMatrix measures every strategy against every fault and writes the
// table, matrix.json, matrix.md and matrix.html.
func runMatrix(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab matrix", getenv, stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, matrixUsage)
		fs.PrintDefaults()
	}
	var f matrixFlags
	f.add(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.config(fs.set(), getenv)
	if err != nil {
		return err
	}
	dir, cleanup, err := workDir(f.dir, "matrix")
	if err != nil {
		return err
	}
	defer cleanup()
	cfg.WorkDir = dir
	cfg.Stdout, cfg.Interactive = stdout, isTerminal(stdout)
	cfg.Logger = newLogger(stderr, f.logFormat, f.logLevel).With("component", "matrix")
	m, runErr := matrix.Run(ctx, cfg)
	if m == nil {
		return runErr
	}
	if err := writeMatrix(stdout, m, cfg.ReportDir, cfg.Latest); err != nil {
		return errors.Join(runErr, err)
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

// matrixFlags are statelab matrix's flags.
type matrixFlags struct {
	strategies, faults, addr, reportDir, dir, latest, logFormat string
	users, replicas                                             int
	seed                                                        int64
	window, warmup, think                                       time.Duration
	quick                                                       bool
	logLevel                                                    slog.Level
	st                                                          storeFlags
	readCache                                                   library.ReadCache
	lk                                                          linkFlags
	hf                                                          hostsFlags
}

func (f *matrixFlags) add(fs *flagSet) {
	f.logLevel = slog.LevelWarn
	fs.String(&f.strategies, "strategies", strings.Join(matrix.DefaultStrategies(), ","), "the rows: a comma-separated `list` of strategies ("+strings.Join(strategy.Names(), ", ")+"), each optionally with the suffix "+strategy.OwnSecretsSuffix)
	fs.String(&f.faults, "faults", strings.Join(matrix.FaultNames(), ","), "the columns: a comma-separated `list` of faults, played in the order shown here whatever the order given")
	fs.Bool(&f.quick, "quick", false, fmt.Sprintf("a smaller matrix in about 90 seconds: %d users, %s windows after a %s warm-up (flags given explicitly still win)", matrix.QuickUsers, matrix.QuickWindow, matrix.QuickWarmup))
	fs.Int(&f.users, "users", matrix.DefaultUsers, "simulated users per strategy, the same in every run")
	fs.Int(&f.replicas, "replicas", 2, "replicas per strategy at the start of every run (at least 2)")
	fs.Duration(&f.window, "window", matrix.DefaultWindow, "how long each fault's window lasts: the fault, then its effects settling, before the next fault")
	fs.Duration(&f.warmup, "warmup", matrix.DefaultWarmup, "how long the users sign in before the first window")
	fs.Duration(&f.think, "think", 150*time.Millisecond, "mean think time between a user's steps")
	fs.Int64(&f.seed, "seed", 1, "seed of the users' decisions: the same seed gives the same journeys")
	fs.String(&f.addr, "addr", "127.0.0.1:8080", "the runner's `host:port` during each run: the live dashboard of the pair being measured, and /matrix")
	fs.String(&f.reportDir, "report", "", "`dir`ectory for matrix.json, matrix.md, matrix.html and each run's report under runs/ (default ./reports/matrix-<start time>)")
	fs.String(&f.latest, "latest", matrix.LatestFile, "a `file` that gets a copy of matrix.html, which the dashboard serves at /matrix (statelab compare -matrix); -latest= writes none")
	fs.String(&f.dir, "work-dir", "", "`dir`ectory for the runs' databases and logs (default: a temporary one, removed afterwards)")
	f.st.add(fs)
	fs.Var(&f.readCache, "read-cache", "the replicas' read cache `mode` in every run, given with = (-read-cache=notify; a bare -read-cache is true; statelab stateful -h): true (exact), false (off), or notify (-store postgres only: no round trip on a hit, stale until PostgreSQL's notification arrives)")
	f.lk.add(fs, "")
	f.hf.add(fs)
	fs.Func("log-level", "runner log `level`: debug, info, warn or error (default warn)", f.logLevel.UnmarshalText)
	fs.String(&f.logFormat, "log-format", "text", "log `format`: text or json")
}

// config checks the flags and turns them into the matrix's configuration;
// set names the flags given explicitly. The caller adds the work
// directory, the output and the logger.
func (f *matrixFlags) config(set map[string]bool, getenv func(string) string) (matrix.Config, error) {
	if err := f.st.check(getenv); err != nil {
		return matrix.Config{}, err
	}
	if err := f.lk.check(); err != nil {
		return matrix.Config{}, err
	}
	if f.readCache.Mode() == library.ReadCacheNotify && store.Chosen(f.st.kind, f.st.url) != store.Postgres {
		return matrix.Config{}, errors.New("-read-cache notify needs -store postgres: it is PostgreSQL's (LISTEN/NOTIFY), and SQLite's exact cache already costs no round trip")
	}
	if err := f.hf.check(); err != nil {
		return matrix.Config{}, err
	}
	sts, err := strategy.ParseList(f.strategies)
	if err != nil {
		return matrix.Config{}, err
	}
	fts, err := matrix.ParseFaults(f.faults)
	if err != nil {
		return matrix.Config{}, err
	}
	if f.think <= 0 {
		return matrix.Config{}, errors.New("-think must be positive")
	}
	bin, err := executable()
	if err != nil {
		return matrix.Config{}, err
	}
	if f.reportDir == "" {
		f.reportDir = filepath.Join("reports", "matrix-"+time.Now().Format("20060102-150405"))
	}
	cfg := matrix.Config{
		Binary: bin, Strategies: sts, Faults: fts, Users: f.users, Replicas: f.replicas,
		Warmup: f.warmup, Window: f.window, Think: f.think, Seed: f.seed,
		Addr: f.addr, ReportDir: f.reportDir, Latest: f.latest, Store: f.st.kind, StoreURL: f.st.url, ReadCache: f.readCache,
		Latency: f.lk.latency, Jitter: f.lk.jitter, Hosts: f.hf.mode, HostsSubnet: f.hf.subnet,
		RequireTools: getenv("CI") != "",
		Dashboard:    dashboard(f.latest),
	}
	if f.quick {
		cfg.Shrink(matrix.Given{Users: set["users"], Window: set["window"], Warmup: set["warmup"]})
	}
	return cfg, nil
}

// writeMatrix prints the table and writes the matrix's files to dir, and
// a copy of its page to latest (none when latest is empty).
func writeMatrix(stdout io.Writer, m *matrix.Matrix, dir, latest string) error {
	m.PrintTable(stdout)
	if err := m.Write(dir); err != nil {
		return fmt.Errorf("write the matrix: %w", err)
	}
	fmt.Fprintf(stdout, "\nmatrix: %s (matrix.json, matrix.md, matrix.html)\n", dir)
	if copied, err := m.WriteLatest(dir, latest); err != nil {
		return err
	} else if copied {
		fmt.Fprintf(stdout, "the dashboard's /matrix now shows it (%s)\n", latest)
	}
	return nil
}
