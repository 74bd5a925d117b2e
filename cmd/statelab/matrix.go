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
)

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
		strategies, faults, addr, reportDir, dir, latest, logFormat string
		users, replicas                                             int
		seed                                                        int64
		window, warmup, think                                       time.Duration
		quick                                                       bool
		logLevel                                                    slog.Level
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
	fs.String(&dir, "work-dir", "", "`dir`ectory for the runs' databases and logs (default: a temporary one, removed afterwards)")
	var st storeFlags
	st.add(fs)
	var lk linkFlags
	lk.add(fs, "")
	var hf hostsFlags
	hf.add(fs)
	fs.Func("log-level", "runner log `level`: debug, info, warn or error (default warn)", logLevel.UnmarshalText)
	fs.String(&logFormat, "log-format", "text", "log `format`: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := st.check(getenv); err != nil {
		return err
	}
	if err := lk.check(); err != nil {
		return err
	}
	if err := hf.check(); err != nil {
		return err
	}
	if quick {
		set := fs.set()
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
	sts, err := strategy.ParseList(strategies)
	if err != nil {
		return err
	}
	fts, err := matrix.ParseFaults(faults)
	if err != nil {
		return err
	}
	if think <= 0 {
		return errors.New("-think must be positive")
	}
	bin, err := executable()
	if err != nil {
		return err
	}
	if reportDir == "" {
		reportDir = filepath.Join("reports", "matrix-"+time.Now().Format("20060102-150405"))
	}
	dir, cleanup, err := workDir(dir, "matrix")
	if err != nil {
		return err
	}
	defer cleanup()
	cfg := matrix.Config{
		Binary: bin, Strategies: sts, Faults: fts, Users: users, Replicas: replicas,
		Warmup: warmup, Window: window, Think: think, Seed: seed, Quick: quick,
		Addr: addr, ReportDir: reportDir, WorkDir: dir, Latest: latest, Store: st.kind, StoreURL: st.url,
		Latency: lk.latency, Jitter: lk.jitter, Hosts: hf.mode, HostsSubnet: hf.subnet,
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
	if copied, err := m.WriteLatest(reportDir, latest); err != nil {
		return errors.Join(runErr, err)
	} else if copied {
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
