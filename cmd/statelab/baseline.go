package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/perf"
)

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
	return perf.ServeBaseline(ctx, ln, replica)
}
