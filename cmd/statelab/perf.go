package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/perf"
)

// runPerf measures what a request costs with each strategy against the
// bare server, in real processes (make perf).
func runPerf(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab perf", getenv, stderr)
	var (
		strategies, paths, jsonOut, dir string
		conns, rounds                   int
		duration, warmup                time.Duration
		noPin, quiet, noReadCache       bool
	)
	fs.String(&strategies, "strategies", strings.Join(perf.DefaultStrategies, ","), "the `strategies` to measure besides the bare server: any of "+strings.Join(strategy.Names(), ", ")+" (memory, memory-sticky and memory-hash run the same replica; only their balancers differ)")
	fs.String(&paths, "requests", "book,page", "the `requests` to measure: "+perfRequests()+", or both")
	fs.Int(&conns, "connections", 64, "keep-alive connections kept busy at once (a closed loop, as wrk does)")
	fs.Int(&rounds, "rounds", 3, "measured runs per row; rows take turns, and a row reports its median")
	fs.Duration(&duration, "duration", 2*time.Second, "how long each measured run lasts")
	fs.Duration(&warmup, "warmup", 300*time.Millisecond, "unmeasured load before each run")
	fs.Bool(&noReadCache, "no-read-cache", false, "start the replicas with -read-cache=false, so every read asks the database: run once with and once without to see what the cache saves")
	var st storeFlags
	st.add(fs)
	fs.Bool(&noPin, "no-pin", false, "leave the servers and the load generator where the scheduler puts them, instead of one CPU each")
	fs.String(&jsonOut, "json", "", "also write the report as JSON to `file`")
	fs.String(&dir, "work-dir", "", "`dir`ectory for the database, redis-server and the servers' log (default: a temporary one, removed afterwards)")
	fs.Bool(&quiet, "quiet", false, "print only the table, no line per run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := st.check(getenv); err != nil {
		return err
	}
	sts, err := strategy.ParseList(strategies)
	if err != nil {
		return err
	}
	for _, st := range sts {
		if st.OwnSecrets {
			return fmt.Errorf("-strategies %s: one replica has no other replica to disagree with; leave the %s suffix out", st.Name, strategy.OwnSecretsSuffix)
		}
	}
	ps, err := perf.ParsePaths(paths)
	if err != nil {
		return err
	}
	if conns < 1 || rounds < 1 || duration <= 0 || warmup < 0 {
		return errors.New("-connections and -rounds must be at least 1, -duration positive, -warmup not negative")
	}
	bin, err := executable()
	if err != nil {
		return err
	}
	dir, cleanup, err := workDir(dir, "perf")
	if err != nil {
		return err
	}
	defer cleanup()
	cfg := perf.Config{
		Binary: bin, Strategies: sts, Paths: ps, Conns: conns, Duration: duration, Warmup: warmup,
		Rounds: rounds, WorkDir: dir, NoPin: noPin, NoReadCache: noReadCache, Store: st.kind, StoreURL: st.url, Progress: stderr,
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

// perfRequests names each request perf can measure with what it sends,
// for -h: book (GET /api/books/1), page (…).
func perfRequests() string {
	var named []string
	for _, p := range perf.Paths {
		named = append(named, p.Name+" (GET "+p.Target+")")
	}
	return strings.Join(named, ", ")
}
