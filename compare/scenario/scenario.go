// Package scenario is the lab's timeline model: a scenario names the two
// strategies, the replicas, the load and the events (restarts, crashes,
// scaling, store restarts, client restarts) that the runner plays on both
// sides at the same moments. It reads and validates scenario files and
// holds the ones compiled into the binary; it starts nothing.
package scenario

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/link"
	"github.com/statelab/statelab/compare/strategy"
)

//go:embed builtin/*.yaml
var builtin embed.FS

// Actions a scenario event can take.
const (
	ActionRestart        = "restart"
	ActionCrash          = "crash"
	ActionScale          = "scale"
	ActionRollingRestart = "rolling-restart"
	ActionPause          = "pause"
	ActionResume         = "resume"
	// ActionRestartStore restarts a side's shared session store (its
	// redis-server, which keeps nothing on disk); on a side without one it
	// is recorded as a no-op.
	ActionRestartStore = "restart-store"
	// ActionCrashRandom crashes a replica drawn at random every Every,
	// from At until Until: chaos. Expand turns it into crash events, drawn
	// from the run's seed, so both sides lose the same replica at the same
	// moment and a seed replays the same chaos.
	ActionCrashRandom = "crash-random"
	// ActionMark is a labelled moment that changes nothing: the timeline
	// records it, so a run can be cut into windows at it (the matrix's quiet
	// window starts at one).
	ActionMark = "mark"
	// ActionClientRestart makes a share of the users on both sides lose
	// everything their client kept (its cookie jar, its token, its cart),
	// as when a browser tab is closed: the fault on the client's side of
	// the trade.
	ActionClientRestart = "client-restart"
)

// DefaultClientRestartShare is the share of users a client-restart control
// hits when it names none.
const DefaultClientRestartShare = 0.5

// Kinds of event record that are not actions of their own: a scale action
// is recorded as one or the other.
const (
	KindScaleOut = "scale-out"
	KindScaleIn  = "scale-in"
)

// MinCrashEvery is the shortest interval crash-random takes: a crash
// waits for the replacement to be ready, which takes a few hundred
// milliseconds on a busy two-core machine.
const MinCrashEvery = 500 * time.Millisecond

// MaxReplicas bounds how many replicas a side may run: each is a real
// process, and the machine the lab targets has two cores.
const MaxReplicas = 16

// MaxRate bounds the open-loop rate per side: the runner, its balancers
// and the replicas share the lab's two cores.
const MaxRate = 5000

// MaxCalibrate bounds Calibrate: past it, even a scale-out to many times
// the replicas would not carry the load.
const MaxCalibrate = 10

// ValidateCalibrate checks a calibration factor against the CPU limit and
// the rate it needs: a replica's capacity means something only under a
// limit, and the rate is the load where the limit cannot be enforced.
func ValidateCalibrate(factor, replicaCPU, rate float64) error {
	switch {
	case factor == 0:
		return nil
	case factor < 1 || factor > MaxCalibrate:
		return fmt.Errorf("calibrate is %g; use 1 to %d (1.5 offers half as much again as the starting replicas carry), or 0 for none", factor, MaxCalibrate)
	case replicaCPU <= 0:
		return fmt.Errorf("calibrate %g needs a replica CPU limit (replica_cpu, --replica-cpu): without one a replica's capacity is the machine's", factor)
	case rate <= 0:
		return fmt.Errorf("calibrate %g needs a rate (--rate), the load offered where the CPU limit cannot be enforced", factor)
	}
	return nil
}

// MaxRateUsers bounds the open-loop pool per side; its users are load-test
// members counted down from the last (the simulated users count up).
const MaxRateUsers = 200

// MaxUsers bounds the simulated users per side: the seed has 1000
// load-test members, and each user of a run signs in as one of its own.
const MaxUsers = 500

// Scenario is a timeline of events played on both sides at the same moments.
type Scenario struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description"`
	// Sides names the two strategies the scenario is written for ("A,B"),
	// used when the command line names none; empty: the lab's default pair.
	Sides    string   `yaml:"sides,omitempty" json:"sides,omitempty"`
	Duration Duration `yaml:"duration" json:"duration"`
	Replicas int      `yaml:"replicas" json:"replicas"`
	Events   []Event  `yaml:"events" json:"events"`

	// The load, each field optional; a flag of statelab compare that is
	// set wins over it.

	// Users is how many simulated users each side gets (--users, which
	// overrides it); nil leaves the flag's default. 0 is a load of
	// open-loop requests alone.
	Users *int `yaml:"users,omitempty" json:"users,omitempty"`
	// ReplicaCPU is every replica's CPU limit in cores (--replica-cpu).
	ReplicaCPU float64 `yaml:"replica_cpu,omitempty" json:"replica_cpu,omitempty"`
	// ReadCache false starts the replicas with --read-cache=false
	// (--read-cache overrides it); absent, the cache is on.
	ReadCache *bool `yaml:"read_cache,omitempty" json:"read_cache,omitempty"`
	// Rate is the open-loop load in requests per second per side (--rate),
	// from RateUsers signed-in users (--rate-users), each request with
	// Deadline (--deadline).
	Rate      float64  `yaml:"rate,omitempty" json:"rate,omitempty"`
	RateUsers int      `yaml:"rate_users,omitempty" json:"rate_users,omitempty"`
	Deadline  Duration `yaml:"deadline,omitempty" json:"deadline,omitempty"`
	// MaxOutstanding caps the open-loop requests outstanding per side
	// (--max-outstanding); 0 is twice what the rate has in flight when every
	// request waits its whole deadline.
	MaxOutstanding int `yaml:"max_outstanding,omitempty" json:"max_outstanding,omitempty"`
	// Calibrate, when set, replaces Rate by a measurement made before the
	// clock starts (--calibrate): what one replica answers per second under
	// its CPU limit, times Replicas, times Calibrate (1.5: half as much
	// again as the starting replicas carry), bounded by what the runner can
	// send. Rate stays the load where no limit can be enforced.
	Calibrate float64 `yaml:"calibrate,omitempty" json:"calibrate,omitempty"`

	// Latency is the one-way delay of every link between the lab's
	// processes (--latency, which overrides it): balancer to replica,
	// replica to each shared service. Whole milliseconds; absent, no links.
	Latency Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
}

// Event is one step of a scenario.
type Event struct {
	At       Duration `yaml:"at" json:"at"`
	Action   string   `yaml:"action" json:"action"`
	Replica  int      `yaml:"replica,omitempty" json:"replica,omitempty"`
	Replicas int      `yaml:"replicas,omitempty" json:"replicas,omitempty"`
	// Share is, for client-restart, the part of each side's users whose
	// client loses what it kept: 0.5 is half of them.
	Share float64 `yaml:"share,omitempty" json:"share,omitempty"`
	// Every and Until are crash-random's interval and end.
	Every Duration `yaml:"every,omitempty" json:"every,omitempty"`
	Until Duration `yaml:"until,omitempty" json:"until,omitempty"`
	Note  string   `yaml:"note,omitempty" json:"note,omitempty"`
}

// Duration is a time.Duration written as "90s" or "2m" in scenario files.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like 30s or 2m", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 30s or 2m)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalText reads a Go duration string, as MarshalText writes it, so a
// scenario read back from JSON (the feed's next event) is the same.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. 30s or 2m)", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go does ("1m30s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Names lists the names of the scenarios compiled into the binary.
func Names() []string {
	entries, _ := fs.ReadDir(builtin, "builtin")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
	}
	return names
}

// Builtins returns every scenario compiled into the binary, by name: what
// statelab compare -h lists, each with its one-line description.
func Builtins() []Scenario {
	var all []Scenario
	for _, name := range Names() {
		if sc, err := Load(name); err == nil {
			all = append(all, sc)
		}
	}
	return all
}

// Load returns the built-in scenario with the name, or else reads
// the file at nameOrPath (YAML, or JSON, which is YAML too).
func Load(nameOrPath string) (Scenario, error) {
	if b, err := builtin.ReadFile("builtin/" + nameOrPath + ".yaml"); err == nil {
		return Parse(b, nameOrPath)
	}
	b, err := os.ReadFile(nameOrPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Scenario{}, fmt.Errorf("no scenario %q: name a built-in one (%s) or a YAML/JSON file", nameOrPath, strings.Join(Names(), ", "))
	} else if err != nil {
		return Scenario{}, err
	}
	return Parse(b, nameOrPath)
}

// Parse reads and validates a scenario. source names it in errors.
func Parse(b []byte, source string) (Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); errors.Is(err, io.EOF) {
		// yaml says only "EOF" for a file with no document in it.
		return s, fmt.Errorf("scenario %s: the file is empty; it needs at least name, duration and replicas", source)
	} else if err != nil {
		return s, fmt.Errorf("scenario %s: %v", source, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("scenario %s: %w", source, err)
	}
	return s, nil
}

// Validate checks a scenario and says what to fix.
func (s *Scenario) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("name is missing"))
	}
	if s.Duration.Std() <= 0 {
		errs = append(errs, errors.New("duration must be positive, e.g. duration: 90s"))
	}
	if s.Replicas < 1 || s.Replicas > MaxReplicas {
		errs = append(errs, fmt.Errorf("replicas is %d; use 1 to %d", s.Replicas, MaxReplicas))
	}
	if s.Sides != "" {
		if _, err := strategy.ParsePair(s.Sides); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Users != nil && (*s.Users < 0 || *s.Users > MaxUsers) {
		errs = append(errs, fmt.Errorf("users is %d; use 0 to %d per side, or leave it out", *s.Users, MaxUsers))
	}
	if s.ReplicaCPU != 0 {
		if err := cpulimit.Validate(s.ReplicaCPU); err != nil {
			errs = append(errs, fmt.Errorf("replica_cpu: %w", err))
		}
	}
	if s.Rate < 0 || s.Rate > MaxRate {
		errs = append(errs, fmt.Errorf("rate is %g; use 0 (none) to %d requests per second per side", s.Rate, MaxRate))
	}
	if s.RateUsers < 0 || s.RateUsers > MaxRateUsers {
		errs = append(errs, fmt.Errorf("rate_users is %d; use 1 to %d", s.RateUsers, MaxRateUsers))
	}
	if s.MaxOutstanding < 0 {
		errs = append(errs, fmt.Errorf("max_outstanding is %d; use a positive number, or leave it out", s.MaxOutstanding))
	}
	if d := s.Deadline.Std(); d < 0 || d > time.Minute || d > 0 && d < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("deadline is %s; use 10ms to 1m", d))
	}
	if err := ValidateCalibrate(s.Calibrate, s.ReplicaCPU, s.Rate); err != nil {
		errs = append(errs, err)
	}
	if err := link.Validate(s.Latency.Std(), 0); err != nil {
		errs = append(errs, err)
	}
	n := s.Replicas
	for i, e := range s.Events {
		where := fmt.Sprintf("event %d (%s at %s)", i+1, e.Action, e.At.Std())
		if e.At.Std() < 0 || e.At.Std() >= s.Duration.Std() {
			errs = append(errs, fmt.Errorf("%s: at must be within the duration (0 to %s)", where, s.Duration.Std()))
		}
		if i > 0 && e.At.Std() < s.Events[i-1].At.Std() {
			errs = append(errs, fmt.Errorf("%s: events must be in time order", where))
		}
		k, ok := KindOf(e.Action)
		if !ok || k.RecordOnly {
			errs = append(errs, fmt.Errorf("event %d: unknown action %q; use one of %s", i+1, e.Action, actions()))
			continue
		}
		if e.Share != 0 && k.Takes != TakesShare {
			errs = append(errs, fmt.Errorf("%s: only client-restart takes a share", where))
		}
		if k.Takes != TakesInterval && (e.Every != 0 || e.Until != 0) {
			errs = append(errs, fmt.Errorf("%s: every and until belong to %s", where, ActionCrashRandom))
		}
		switch k.Takes {
		case TakesShare:
			if e.Replica != 0 || e.Replicas != 0 {
				errs = append(errs, fmt.Errorf("%s: this action takes a share of the users, not replica or replicas", where))
			}
			if e.Share <= 0 || e.Share > 1 {
				errs = append(errs, fmt.Errorf("%s: share is %g; give the part of the users whose client restarts, more than 0 and at most 1 (e.g. share: 0.5)", where, e.Share))
			}
		case TakesInterval:
			if e.Replica != 0 || e.Replicas != 0 {
				errs = append(errs, fmt.Errorf("%s: %s picks the replica itself; give every and until, not replica or replicas", where, e.Action))
			}
			if e.Every.Std() < MinCrashEvery {
				errs = append(errs, fmt.Errorf("%s: every is %s; use at least %s (each crash waits for the replacement to be ready)", where, e.Every.Std(), MinCrashEvery))
			}
			if e.Until.Std() <= e.At.Std() || e.Until.Std() > s.Duration.Std() {
				errs = append(errs, fmt.Errorf("%s: until must come after at and within the duration (%s)", where, s.Duration.Std()))
			}
		case TakesReplica:
			if e.Replicas != 0 {
				errs = append(errs, fmt.Errorf("%s: use replica (which one), not replicas", where))
			}
			if e.Replica < 0 || e.Replica > n {
				errs = append(errs, fmt.Errorf("%s: replica %d does not exist then (there are %d)", where, e.Replica, n))
			}
		case TakesReplicas:
			if e.Replicas < 1 || e.Replicas > MaxReplicas {
				errs = append(errs, fmt.Errorf("%s: replicas is %d; use 1 to %d", where, e.Replicas, MaxReplicas))
			}
			n = e.Replicas
		case TakesNothing:
			if e.Replica != 0 || e.Replicas != 0 {
				errs = append(errs, fmt.Errorf("%s: this action takes no replica or replicas", where))
			}
		}
	}
	return errors.Join(errs...)
}

// Shorten makes the scenario end at d: events at d or later are dropped,
// and a crash-random that would go on past d stops there.
func (s *Scenario) Shorten(d time.Duration) {
	s.Duration = Duration(d)
	s.Events = slices.DeleteFunc(s.Events, func(e Event) bool { return e.At.Std() >= d })
	for i, e := range s.Events {
		if e.Action == ActionCrashRandom && e.Until.Std() > d {
			s.Events[i].Until = Duration(d)
		}
	}
}

// PlannedStops reports whether the scenario only has planned stops
// (graceful restarts and scale events), the case in which the stateless side
// must lose nothing at all.
func (s *Scenario) PlannedStops() bool {
	return !slices.ContainsFunc(s.Events, func(e Event) bool { return e.Action == ActionCrash || e.Action == ActionCrashRandom })
}

// Expand returns the events to play: the scenario's own, with each
// crash-random turned into crash events at At, At+Every, … before Until,
// each of a replica drawn from the ones there are then. The draws come from
// seed alone, so one seed gives the same chaos on both sides and in every
// run. A crash that would fall at the moment of another event comes after
// it.
func (s *Scenario) Expand(seed int64) []Event {
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc4a05))
	// replicasAt is how many replicas there are at t, scale events at t
	// included.
	replicasAt := func(t time.Duration) int {
		n := s.Replicas
		for _, e := range s.Events {
			if e.Action == ActionScale && e.At.Std() <= t {
				n = e.Replicas
			}
		}
		return n
	}
	var own, drawn []Event
	for _, e := range s.Events {
		if e.Action != ActionCrashRandom {
			own = append(own, e)
			continue
		}
		note := e.Note
		if note == "" {
			note = "chaos: a replica drawn at random is killed with SIGKILL"
		}
		for at := e.At.Std(); at < e.Until.Std(); at += e.Every.Std() {
			drawn = append(drawn, Event{At: Duration(at), Action: ActionCrash, Replica: 1 + rng.IntN(replicasAt(at)), Note: note})
		}
	}
	// The scenario's own events first, so a crash drawn for the moment of
	// a scale-in falls on a replica that is still there.
	out := append(own, drawn...)
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	return out
}
