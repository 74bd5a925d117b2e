package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/statelab/statelab/internal/walkthrough"
)

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
	bin, err := executable()
	if err != nil {
		return err
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
