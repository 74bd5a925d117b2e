// Command statelab runs the lab: the stateful and the stateless library
// servers, each on its own or as replicas started by the comparison runner.
//
// Run "statelab -h" for the subcommands and "statelab SUBCOMMAND -h" for
// their flags. Every flag can also be set from an environment variable named
// STATELAB_ and the flag's name in capitals, e.g. STATELAB_ADDR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/statelab/statelab/perf"
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

// executable returns this binary, which every replica and server the lab
// starts runs.
func executable() (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the statelab binary to start the servers from: %w", err)
	}
	return bin, nil
}

// workDir returns dir, or, when it is empty, a new temporary directory
// whose name begins with "statelab-"+purpose, and the function that removes
// the directory workDir made (nothing for one it was given).
func workDir(dir, purpose string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "statelab-"+purpose+"-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}
