package scenario_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/scenario"
)

// rtDur turns a Go duration into a scenario Duration.
func rtDur(d time.Duration) scenario.Duration { return scenario.Duration(d) }

func TestParseScenario(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want scenario.Scenario
	}{
		{
			name: "no events",
			in:   "name: calm\nduration: 30s\nreplicas: 1\n",
			want: scenario.Scenario{Name: "calm", Duration: rtDur(30 * time.Second), Replicas: 1},
		},
		{
			name: "every action",
			in: `name: all
description: every action once
duration: 2m
replicas: 2
events:
  - {at: 5s, action: restart, replica: 2, note: a deploy}
  - {at: 10s, action: crash}
  - {at: 15s, action: scale, replicas: 4}
  - {at: 15s, action: restart, replica: 4}
  - {at: 20s, action: rolling-restart}
  - {at: 25s, action: pause}
  - {at: 30s, action: resume}
  - {at: 1m, action: scale, replicas: 16}
  - {at: 119s, action: scale, replicas: 1}
`,
			want: scenario.Scenario{
				Name: "all", Description: "every action once", Duration: rtDur(2 * time.Minute), Replicas: 2,
				Events: []scenario.Event{
					{At: rtDur(5 * time.Second), Action: scenario.ActionRestart, Replica: 2, Note: "a deploy"},
					{At: rtDur(10 * time.Second), Action: scenario.ActionCrash},
					{At: rtDur(15 * time.Second), Action: scenario.ActionScale, Replicas: 4},
					{At: rtDur(15 * time.Second), Action: scenario.ActionRestart, Replica: 4},
					{At: rtDur(20 * time.Second), Action: scenario.ActionRollingRestart},
					{At: rtDur(25 * time.Second), Action: scenario.ActionPause},
					{At: rtDur(30 * time.Second), Action: scenario.ActionResume},
					{At: rtDur(time.Minute), Action: scenario.ActionScale, Replicas: 16},
					{At: rtDur(119 * time.Second), Action: scenario.ActionScale, Replicas: 1},
				},
			},
		},
		{
			name: "the load",
			in:   "name: load\nduration: 30s\nreplicas: 2\nusers: 0\nreplica_cpu: 0.25\nrate: 300\nrate_users: 12\ndeadline: 1500ms\nmax_outstanding: 160\n",
			want: scenario.Scenario{Name: "load", Duration: rtDur(30 * time.Second), Replicas: 2, Users: new(0),
				ReplicaCPU: 0.25, Rate: 300, RateUsers: 12, Deadline: rtDur(1500 * time.Millisecond), MaxOutstanding: 160},
		},
		{
			name: "JSON is YAML too",
			in:   `{"name": "j", "duration": "1m30s", "replicas": 16, "events": [{"at": "0s", "action": "crash", "replica": 16}]}`,
			want: scenario.Scenario{Name: "j", Duration: rtDur(90 * time.Second), Replicas: 16,
				Events: []scenario.Event{{At: 0, Action: scenario.ActionCrash, Replica: 16}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scenario.Parse([]byte(tt.in), "good.yaml")
			if err != nil {
				t.Fatalf("ParseScenario: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseScenarioErrors(t *testing.T) {
	const head = "name: bad\nduration: 20s\nreplicas: 2\n"
	tests := []struct {
		name string
		in   string
		want []string // each must appear in the error
	}{
		{"empty file", "", []string{"the file is empty"}},
		{"only comments", "# nothing yet\n", []string{"the file is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1: cannot unmarshal !!seq"}},
		{"missing name", "duration: 20s\nreplicas: 2\n", []string{"name is missing"}},
		{"missing duration", "name: bad\nreplicas: 2\n", []string{"duration must be positive, e.g. duration: 90s"}},
		{"zero duration", "name: bad\nduration: 0s\nreplicas: 2\n", []string{"duration must be positive"}},
		{"negative duration", "name: bad\nduration: -5s\nreplicas: 2\n", []string{"duration must be positive"}},
		{"bad duration", "name: bad\nduration: abc\nreplicas: 2\n", []string{`line 2: "abc" is not a duration (use e.g. 30s or 2m)`}},
		{"duration without unit", "name: bad\nduration: 90\nreplicas: 2\n", []string{`line 2: "90" is not a duration`}},
		{"duration is a list", "name: bad\nduration: [1]\nreplicas: 2\n", []string{"line 2: want a duration like 30s or 2m"}},
		{"replicas 0", "name: bad\nduration: 20s\nreplicas: 0\n", []string{"replicas is 0; use 1 to 16"}},
		{"replicas missing", "name: bad\nduration: 20s\n", []string{"replicas is 0; use 1 to 16"}},
		{"replicas 17", "name: bad\nduration: 20s\nreplicas: 17\n", []string{"replicas is 17; use 1 to 16"}},
		{"replicas not a number", "name: bad\nduration: 20s\nreplicas: two\n", []string{"line 3: cannot unmarshal !!str `two` into int"}},
		{"unknown field", head + "replica: 3\n", []string{"line 4: field replica not found in type scenario.Scenario"}},
		{"unknown event field", head + "events:\n  - {at: 5s, action: restart, replcia: 1}\n", []string{"line 5: field replcia not found in type scenario.Event"}},
		{"bad event time", head + "events:\n  - {at: soon, action: restart}\n", []string{`line 5: "soon" is not a duration`}},
		{
			"unknown action", head + "events:\n  - {at: 5s, action: explode}\n",
			[]string{`event 1: unknown action "explode"; use one of restart, crash, scale, rolling-restart, pause, resume`},
		},
		{"latency finer than a microsecond", head + "latency: 1500ns\n", []string{"latency is 1.5µs; use whole microseconds"}},
		{"negative latency", head + "latency: -1ms\n", []string{"latency is -1ms"}},
		{"missing action", head + "events:\n  - {at: 5s}\n", []string{`event 1: unknown action ""; use one of restart, crash`}},
		{
			"events out of order", head + "events:\n  - {at: 10s, action: restart}\n  - {at: 5s, action: crash}\n",
			[]string{"event 2 (crash at 5s): events must be in time order"},
		},
		{
			"event at the end", head + "events:\n  - {at: 20s, action: restart}\n",
			[]string{"event 1 (restart at 20s): at must be within the duration (0 to 20s)"},
		},
		{
			"event after the end", head + "events:\n  - {at: 1m, action: pause}\n",
			[]string{"event 1 (pause at 1m0s): at must be within the duration (0 to 20s)"},
		},
		{
			"event before the start", head + "events:\n  - {at: -1s, action: pause}\n",
			[]string{"event 1 (pause at -1s): at must be within the duration"},
		},
		{
			"restart replica 3 of 2", head + "events:\n  - {at: 5s, action: restart, replica: 3}\n",
			[]string{"event 1 (restart at 5s): replica 3 does not exist then (there are 2)"},
		},
		{
			"crash a replica scaled in", head + "events:\n  - {at: 5s, action: scale, replicas: 3}\n  - {at: 6s, action: crash, replica: 3}\n  - {at: 7s, action: scale, replicas: 1}\n  - {at: 8s, action: crash, replica: 2}\n",
			[]string{"event 4 (crash at 8s): replica 2 does not exist then (there are 1)"},
		},
		{
			"restart with replicas", head + "events:\n  - {at: 5s, action: restart, replicas: 2}\n",
			[]string{"event 1 (restart at 5s): use replica (which one), not replicas"},
		},
		{
			"scale to 0", head + "events:\n  - {at: 5s, action: scale, replicas: 0}\n",
			[]string{"event 1 (scale at 5s): replicas is 0; use 1 to 16"},
		},
		{
			"scale to 17", head + "events:\n  - {at: 5s, action: scale, replicas: 17}\n",
			[]string{"event 1 (scale at 5s): replicas is 17; use 1 to 16"},
		},
		{
			"rolling restart with replica", head + "events:\n  - {at: 5s, action: rolling-restart, replica: 1}\n",
			[]string{"event 1 (rolling-restart at 5s): this action takes no replica or replicas"},
		},
		{
			"pause with replicas", head + "events:\n  - {at: 5s, action: pause, replicas: 2}\n",
			[]string{"event 1 (pause at 5s): this action takes no replica or replicas"},
		},
		{"users -1", head + "users: -1\n", []string{"users is -1; use 0 to 500 per side"}},
		{"users 501", head + "users: 501\n", []string{"users is 501; use 0 to 500 per side"}},
		{"replica_cpu too small", head + "replica_cpu: 0.001\n", []string{"replica_cpu: a replica's CPU limit is 0.001; use 0.01 to 64 cores"}},
		{"replica_cpu negative", head + "replica_cpu: -1\n", []string{"replica_cpu: a replica's CPU limit is -1"}},
		{"rate negative", head + "rate: -5\n", []string{"rate is -5; use 0 (none) to 5000 requests per second per side"}},
		{"rate too high", head + "rate: 9000\n", []string{"rate is 9000"}},
		{"rate_users too many", head + "rate_users: 201\n", []string{"rate_users is 201; use 1 to 200"}},
		{"deadline too short", head + "deadline: 1ms\n", []string{"deadline is 1ms; use 10ms to 1m"}},
		{"max_outstanding negative", head + "max_outstanding: -1\n", []string{"max_outstanding is -1"}},
		{"deadline not a duration", head + "deadline: 2\n", []string{`line 4: "2" is not a duration`}},
		{
			"client-restart without share", head + "events:\n  - {at: 5s, action: client-restart}\n",
			[]string{"event 1 (client-restart at 5s): share is 0; give the part of the users whose client restarts, more than 0 and at most 1"},
		},
		{
			"client-restart of more than everyone", head + "events:\n  - {at: 5s, action: client-restart, share: 1.5}\n",
			[]string{"event 1 (client-restart at 5s): share is 1.5"},
		},
		{
			"client-restart of a replica", head + "events:\n  - {at: 5s, action: client-restart, share: 0.5, replica: 1}\n",
			[]string{"this action takes a share of the users, not replica or replicas"},
		},
		{
			"share on a restart", head + "events:\n  - {at: 5s, action: restart, share: 0.5}\n",
			[]string{"event 1 (restart at 5s): only client-restart takes a share"},
		},
		{"unknown sides", head + "sides: memory,nosuch\n", []string{`unknown strategy "nosuch"`}},
		{"one side", head + "sides: memory\n", []string{`sides "memory": name two strategies`}},
		{
			"crash-random without every", head + "events:\n  - {at: 5s, action: crash-random, until: 9s}\n",
			[]string{"every is 0s; use at least 500ms"},
		},
		{
			"crash-random that ends before it begins", head + "events:\n  - {at: 5s, action: crash-random, every: 1s, until: 4s}\n",
			[]string{"until must come after at and within the duration"},
		},
		{
			"crash-random past the end", head + "events:\n  - {at: 5s, action: crash-random, every: 1s, until: 10m}\n",
			[]string{"until must come after at and within the duration"},
		},
		{
			"crash-random with a replica", head + "events:\n  - {at: 5s, action: crash-random, every: 1s, until: 8s, replica: 2}\n",
			[]string{"crash-random picks the replica itself"},
		},
		{
			"every on a crash", head + "events:\n  - {at: 5s, action: crash, every: 1s}\n",
			[]string{"every and until belong to crash-random"},
		},
		{
			// Validation reports every problem at once, not the first.
			"several problems", "duration: 0s\nreplicas: 17\nevents:\n  - {at: 5s, action: explode}\n",
			[]string{"name is missing", "duration must be positive", "replicas is 17", "at must be within the duration", `unknown action "explode"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scenario.Parse([]byte(tt.in), "bad.yaml")
			if err == nil {
				t.Fatalf("ParseScenario(%q) = nil error, want %q", tt.in, tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "scenario bad.yaml: ") {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not say %q", msg, w)
				}
			}
		})
	}
}

// TestBuiltinScenarios checks that every scenario compiled into the binary
// parses and validates, and pins what the end-to-end test relies on.
func TestBuiltinScenarios(t *testing.T) {
	names := scenario.Names()
	for _, want := range []string{"default", "quick", "routing", "reliability", "scaling", "client"} {
		if !slices.Contains(names, want) {
			t.Errorf("BuiltinScenarios() = %v, want %q among them", names, want)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sc, err := scenario.Load(name)
			if err != nil {
				t.Fatalf("LoadScenario(%q): %v", name, err)
			}
			if sc.Name != name {
				t.Errorf("name: %q, want the file's name %q", sc.Name, name)
			}
			if sc.Description == "" {
				t.Error("no description: the terminal, report and dashboard show it")
			}
			if err := sc.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}

	// TestRunnerEndToEnd counts on these.
	quick, err := scenario.Load("quick")
	if err != nil {
		t.Fatal(err)
	}
	wantQuick := []scenario.Event{
		{At: rtDur(6 * time.Second), Action: scenario.ActionRestart, Replica: 1},
		{At: rtDur(12 * time.Second), Action: scenario.ActionScale, Replicas: 3},
	}
	for i := range quick.Events {
		quick.Events[i].Note = ""
	}
	if quick.Replicas != 2 || quick.Duration.Std() != 20*time.Second || !reflect.DeepEqual(quick.Events, wantQuick) || !quick.PlannedStops() {
		t.Errorf("quick = %+v, want 2 replicas for 20s, a restart of replica 1 at 6s and a scale to 3 at 12s", quick)
	}
	// One idea at a time: each of these shows one thing and nothing else.
	for _, tt := range []struct {
		name     string
		replicas int
		actions  []string
	}{
		{"routing", 2, nil},
		{"reliability", 1, []string{scenario.ActionRestart, scenario.ActionCrash}},
		{"scaling", 2, []string{scenario.ActionScale, scenario.ActionScale}},
		{"client", 1, []string{scenario.ActionClientRestart}},
		{"network", 2, nil},
	} {
		sc, err := scenario.Load(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range sc.Events {
			actions = append(actions, e.Action)
		}
		if sc.Replicas != tt.replicas || !slices.Equal(actions, tt.actions) {
			t.Errorf("%s: %d replicas, events %v; want %d replicas and %v", tt.name, sc.Replicas, actions, tt.replicas, tt.actions)
		}
	}
	if network, _ := scenario.Load("network"); network.Sides != "redis,jwt" || network.Latency.Std() != time.Millisecond || network.Duration.Std() > 30*time.Second {
		t.Errorf("network: sides %q, latency %s, duration %s; want redis,jwt at 1ms, 30s at most", network.Sides, network.Latency.Std(), network.Duration.Std())
	}
	if routing, _ := scenario.Load("routing"); routing.Sides != "memory,apikey" {
		t.Errorf("routing's sides are %q: with a sticky balancer it shows nothing; want memory,apikey", routing.Sides)
	}
	// The capacity lesson counts on these: two replicas that cannot carry
	// the rate, four that can, under a limit, with open-loop load only.
	capacity, err := scenario.Load("capacity")
	if err != nil {
		t.Fatal(err)
	}
	var scales []int
	for _, e := range capacity.Events {
		if e.Action == scenario.ActionScale {
			scales = append(scales, e.Replicas)
		}
	}
	if capacity.Replicas != 2 || !slices.Equal(scales, []int{4, 2}) || capacity.ReplicaCPU <= 0 || capacity.Rate <= 0 ||
		capacity.Users == nil || *capacity.Users != 0 || !capacity.PlannedStops() {
		t.Errorf("capacity = %+v, want 2 replicas scaled to 4 and back to 2, a CPU limit, a rate and no closed-loop users", capacity)
	}
	def, err := scenario.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	if def.PlannedStops() {
		t.Error("default.PlannedStops() = true, want false: it crashes a replica")
	}

	// The chaos of the issue: 4 replicas, a kill every 3 s for a minute.
	chaos, err := scenario.Load("chaos")
	if err != nil {
		t.Fatal(err)
	}
	crashes := chaos.Expand(1)
	if chaos.Replicas != 4 || chaos.PlannedStops() || len(crashes) != 20 || crashes[0].At.Std() != 10*time.Second || crashes[19].At.Std() != 67*time.Second {
		t.Errorf("chaos = %+v expands to %d crashes (first at %v); want 4 replicas, 20 kills from 10 s to 67 s", chaos, len(crashes), crashes[0].At.Std())
	}
}

func TestScenarioExpand(t *testing.T) {
	sc := scenario.Scenario{Name: "chaos", Duration: rtDur(20 * time.Second), Replicas: 3, Events: []scenario.Event{
		{At: rtDur(time.Second), Action: scenario.ActionCrashRandom, Every: rtDur(2 * time.Second), Until: rtDur(10 * time.Second)},
		{At: rtDur(5 * time.Second), Action: scenario.ActionScale, Replicas: 1},
		{At: rtDur(12 * time.Second), Action: scenario.ActionRestart, Replica: 1},
	}}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	got := sc.Expand(7)
	var at []time.Duration
	for _, e := range got {
		at = append(at, e.At.Std())
		if e.Action == scenario.ActionCrash && (e.Replica < 1 || e.Replica > 3 || e.At.Std() > 5*time.Second && e.Replica != 1) {
			t.Errorf("crash %+v: want a replica among those there are then (3, then 1 after the scale at 5 s)", e)
		}
	}
	want := []time.Duration{1, 3, 5, 5, 7, 9, 12}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(at, want) {
		t.Errorf("events at %v, want %v: the crashes every 2 s from 1 s until 10 s among the scenario's own", at, want)
	}
	if got[2].Action != scenario.ActionScale {
		t.Errorf("at 5 s: %s first, want the scale, then the crash", got[2].Action)
	}
	if again := sc.Expand(7); !reflect.DeepEqual(again, got) {
		t.Error("Expand(7) twice gave two different chaoses: the seed alone must decide")
	}
	differ := false
	for seed := int64(1); seed < 10 && !differ; seed++ {
		differ = !reflect.DeepEqual(sc.Expand(seed), got)
	}
	if !differ {
		t.Error("every seed gave the same chaos")
	}
}

func TestLoadScenarioFile(t *testing.T) {
	dir := t.TempDir()
	want := scenario.Scenario{
		Name: "mine", Description: "from a file", Duration: rtDur(45 * time.Second), Replicas: 3,
		Events: []scenario.Event{
			{At: rtDur(10 * time.Second), Action: scenario.ActionCrash, Replica: 3},
			{At: rtDur(20 * time.Second), Action: scenario.ActionScale, Replicas: 5},
		},
	}
	files := map[string]string{
		"mine.yaml": `name: mine
description: from a file
duration: 45s
replicas: 3
events:
  - at: 10s
    action: crash
    replica: 3
  - at: 20s
    action: scale
    replicas: 5
`,
		"mine.json": `{
  "name": "mine",
  "description": "from a file",
  "duration": "45s",
  "replicas": 3,
  "events": [
    {"at": "10s", "action": "crash", "replica": 3},
    {"at": "20s", "action": "scale", "replicas": 5}
  ]
}
`,
	}
	for name, body := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := scenario.Load(path)
			if err != nil {
				t.Fatalf("LoadScenario(%s): %v", path, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}

	t.Run("invalid file", func(t *testing.T) {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte("name: bad\nduration: 20s\nreplicas: 2\nevents:\n  - {at: 5s, action: restart, replica: 3}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := scenario.Load(path)
		if err == nil || !strings.Contains(err.Error(), "scenario "+path+": ") || !strings.Contains(err.Error(), "replica 3 does not exist then") {
			t.Errorf("LoadScenario(%s) = %v, want an error naming the file and the missing replica", path, err)
		}
	})

	t.Run("missing", func(t *testing.T) {
		for _, name := range []string{"nosuch", filepath.Join(dir, "nosuch.yaml")} {
			_, err := scenario.Load(name)
			if err == nil {
				t.Fatalf("LoadScenario(%q) = nil error", name)
			}
			msg := err.Error()
			// The error lists the built-in scenarios, whatever they are.
			for _, want := range append([]string{`no scenario "` + name + `"`, "YAML/JSON file"}, scenario.Names()...) {
				if !strings.Contains(msg, want) {
					t.Errorf("LoadScenario(%q) = %q, does not say %q", name, msg, want)
				}
			}
		}
	})
}

func TestPlannedStops(t *testing.T) {
	tests := []struct {
		name    string
		actions []string
		want    bool
	}{
		{"no events", nil, true},
		{"restarts and scaling", []string{scenario.ActionRestart, scenario.ActionScale, scenario.ActionRollingRestart, scenario.ActionPause, scenario.ActionResume}, true},
		{"a crash", []string{scenario.ActionRestart, scenario.ActionCrash}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := scenario.Scenario{Name: "p", Duration: rtDur(time.Minute), Replicas: 2}
			for i, a := range tt.actions {
				s.Events = append(s.Events, scenario.Event{At: rtDur(time.Duration(i) * time.Second), Action: a})
			}
			if got := s.PlannedStops(); got != tt.want {
				t.Errorf("PlannedStops() with %v = %v, want %v", tt.actions, got, tt.want)
			}
		})
	}
}

// TestKinds checks the table every layer words events from: each action a
// scenario may ask for validates with the fields its entry says it takes,
// and every kind has a word and a symbol for the charts.
func TestKinds(t *testing.T) {
	for _, k := range scenario.Kinds {
		if k.Word == "" || k.Symbol == "" || k.Color == "" || k.Does == "" {
			t.Errorf("%s: word %q, symbol %q, color %q, does %q: want all four", k.Action, k.Word, k.Symbol, k.Color, k.Does)
		}
		if k.Control && k.Busy == "" {
			t.Errorf("%s: a control with no words for while it runs", k.Action)
		}
		if got := scenario.WordOf(k.Action); got != k.Word {
			t.Errorf("WordOf(%q) = %q, want %q", k.Action, got, k.Word)
		}
		if k.RecordOnly {
			continue
		}
		e := scenario.Event{At: rtDur(time.Second), Action: k.Action}
		switch k.Takes {
		case scenario.TakesReplica:
			e.Replica = 1
		case scenario.TakesReplicas:
			e.Replicas = 3
		case scenario.TakesShare:
			e.Share = 0.5
		case scenario.TakesInterval:
			e.Every, e.Until = rtDur(time.Second), rtDur(5*time.Second)
		}
		sc := scenario.Scenario{Name: "k", Duration: rtDur(10 * time.Second), Replicas: 2, Events: []scenario.Event{e}}
		if err := sc.Validate(); err != nil {
			t.Errorf("%s with what it takes: %v", k.Action, err)
		}
		if k.Takes != scenario.TakesReplicas {
			e.Replicas = 2
			sc.Events = []scenario.Event{e}
			if err := sc.Validate(); err == nil {
				t.Errorf("%s with replicas: 2, which it does not take: valid", k.Action)
			}
		}
	}
	if got := scenario.WordOf("no-such-kind"); got != "no-such-kind" {
		t.Errorf("WordOf an unknown kind = %q, want the kind itself", got)
	}
}
