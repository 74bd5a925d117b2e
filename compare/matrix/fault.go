package matrix

import (
	"fmt"
	"strings"

	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
)

// Fault is one column of the matrix: what the timeline does at the start of
// its window.
type Fault struct {
	Name string `json:"name"`
	// Does says in a few words what happens to the replicas.
	Does string `json:"does"`
	// event returns the scenario event that plays the fault when each side
	// runs n replicas, and how many run after it.
	event func(n int) (scenario.Event, int)
	// applies reports whether the fault means anything to a strategy: a
	// restart of the session store does nothing to one that has none, and
	// its cell says "n/a".
	applies func(strategy.Strategy) bool
}

// Applies reports whether the fault can touch the strategy at all.
func (f Fault) Applies(st strategy.Strategy) bool { return f.applies == nil || f.applies(st) }

// The faults, in the order their windows are played and their columns
// shown. A fault another issue adds to the runner gets a line here. The
// scale-out follows the quiet window: a user who learns of a crash's loss
// only at its next request (on a busy machine, a second or more later) must
// not have it counted against the scale-out, where sticky routing is
// supposed to lose nothing.
var faults = []Fault{
	{
		Name: "none", Does: "steady traffic, no event: what routing alone costs",
		event: func(n int) (scenario.Event, int) {
			return scenario.Event{Action: scenario.ActionMark, Note: "matrix: a quiet window, no event"}, n
		},
	},
	{
		Name: "scale-out", Does: "two replicas added",
		event: func(n int) (scenario.Event, int) {
			return scenario.Event{Action: scenario.ActionScale, Replicas: n + 2, Note: "matrix: a scale-out"}, n + 2
		},
	},
	{
		Name: "restart", Does: "one replica restarted gracefully (drained, SIGTERM, a new process)",
		event: func(n int) (scenario.Event, int) {
			return scenario.Event{Action: scenario.ActionRestart, Replica: 1, Note: "matrix: a graceful restart"}, n
		},
	},
	{
		Name: "crash", Does: "one replica killed with SIGKILL, then a new process",
		event: func(n int) (scenario.Event, int) {
			return scenario.Event{Action: scenario.ActionCrash, Replica: min(2, n), Note: "matrix: a crash"}, n
		},
	},
	{
		Name: "scale-in", Does: "two replicas taken away (one, from two), drained first",
		event: func(n int) (scenario.Event, int) {
			to := n - 2
			if to < 1 {
				to = n - 1
			}
			return scenario.Event{Action: scenario.ActionScale, Replicas: to, Note: "matrix: a scale-in"}, to
		},
	},
	{
		Name: "rolling-restart", Does: "every replica restarted, one after another",
		event: func(n int) (scenario.Event, int) {
			return scenario.Event{Action: scenario.ActionRollingRestart, Note: "matrix: a rolling restart"}, n
		},
	},
	{
		Name: "restart-store", Does: "the shared session store (redis-server, no persistence) restarted",
		event: func(n int) (scenario.Event, int) {
			return scenario.Event{Action: scenario.ActionRestartStore, Note: "matrix: a session store restart"}, n
		},
		applies: hasServices,
	},
}

// hasServices reports whether the strategy's replicas share a service
// outside them (its session store's), which a restart-store restarts.
func hasServices(st strategy.Strategy) bool { return len(st.Services()) > 0 }

// Faults returns every fault, in the order of the matrix's columns.
func Faults() []Fault { return append([]Fault(nil), faults...) }

// FaultNames returns the names of Faults.
func FaultNames() []string {
	names := make([]string, len(faults))
	for i, f := range faults {
		names[i] = f.Name
	}
	return names
}

// ParseFaults reads a comma-separated list of fault names. The columns keep
// the matrix's own order, whatever the order of the list: the replica count
// a fault meets depends on the faults before it.
func ParseFaults(list string) ([]Fault, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		known := false
		for _, f := range faults {
			known = known || f.Name == n
		}
		if !known {
			return nil, fmt.Errorf("unknown fault %q: use %s", n, strings.Join(FaultNames(), ", "))
		}
		want[n] = true
	}
	var out []Fault
	for _, f := range faults {
		if want[f.Name] {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("faults %q: name at least one of %s", list, strings.Join(FaultNames(), ", "))
	}
	return out, nil
}
