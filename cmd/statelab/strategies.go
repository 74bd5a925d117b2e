package main

import (
	"fmt"
	"io"

	"github.com/statelab/statelab/compare/strategy"
)

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
