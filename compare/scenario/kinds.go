package scenario

import "strings"

// Takes says which of an event's fields an action reads; Validate refuses
// the others.
type Takes int

// What an action takes.
const (
	TakesNothing  Takes = iota // no replica, replicas or share
	TakesReplica               // replica: which one (0 or absent: the first)
	TakesReplicas              // replicas: how many there are to be
	TakesShare                 // share: the part of the users it hits
	TakesInterval              // every and until: a series of events
)

// Kind is one kind of event: what a scenario file, the dashboard's
// controls and the event records call it, what it does, and how the
// report and the dashboard word it. Adding a fault is one entry here plus
// its implementation in the runner (whose test fails for an action it
// cannot play).
type Kind struct {
	// Action is the name in scenario files, controls and event records.
	Action string `json:"action"`
	Takes  Takes  `json:"-"`
	// BothSides is true for an action that acts on the run as a whole
	// (the users, the timeline) rather than on each side's replicas or
	// store; it is recorded once per side all the same.
	BothSides bool `json:"-"`
	// RecordOnly is true for a kind an event record carries but no event
	// asks for: a scale action is recorded as a scale-out or a scale-in.
	RecordOnly bool `json:"-"`
	// Does says in one line what it does, for -h and the scenario docs.
	Does string `json:"does"`
	// Word names it on the report's and the dashboard's charts, Symbol
	// marks it there (with the word, so colour is never the only cue), and
	// Color is the dashboard palette's name for its marker.
	Word   string `json:"word"`
	Symbol string `json:"symbol"`
	Color  string `json:"color"`
	// Control is true for a kind the dashboard's buttons (POST
	// /api/control/{action}) may fire; Busy is what the dashboard says
	// while it runs, %n standing for the replica's number.
	Control bool   `json:"control,omitempty"`
	Busy    string `json:"busy,omitempty"`
}

// Kinds is every kind of event, in the order -h and errors list them.
var Kinds = []Kind{
	{Action: ActionRestart, Takes: TakesReplica, Does: "a graceful restart of one replica on each side (SIGTERM, drained, started again)",
		Word: "restart", Symbol: "↻", Color: "blue", Control: true, Busy: "restarting replica %n on both sides…"},
	{Action: ActionCrash, Takes: TakesReplica, Does: "one replica on each side killed with SIGKILL and started again",
		Word: "crash", Symbol: "✖", Color: "vermillion", Control: true, Busy: "killing replica %n on both sides…"},
	{Action: ActionScale, Takes: TakesReplicas, Does: "each side scaled to this many replicas: new ones start, removed ones are drained",
		Word: "scale", Symbol: "▲", Color: "green"},
	{Action: ActionRollingRestart, Does: "every replica on each side restarted gracefully, one after another",
		Word: "rolling restart", Symbol: "↻", Color: "blue"},
	{Action: ActionPause, BothSides: true, Does: "the simulated users stop sending",
		Word: "pause", Symbol: "❚❚", Color: "grey", Control: true, Busy: "pausing the simulated users…"},
	{Action: ActionResume, BothSides: true, Does: "the simulated users go on",
		Word: "resume", Symbol: "▶", Color: "grey", Control: true, Busy: "resuming the simulated users…"},
	{Action: ActionRestartStore, Does: "each side's shared session store (redis-server, no persistence) restarted; nothing on a side without one",
		Word: "store restart", Symbol: "⟲", Color: "purple", Control: true, Busy: "restarting the shared session store…"},
	{Action: ActionMark, BothSides: true, Does: "a labelled moment that changes nothing, to cut the run into windows",
		Word: "mark", Symbol: "•", Color: "grey"},
	{Action: ActionCrashRandom, Takes: TakesInterval, Does: "chaos: a replica drawn from the seed crashed every interval, the same one on both sides",
		Word: "crash", Symbol: "✖", Color: "vermillion"},
	{Action: ActionClientRestart, Takes: TakesShare, BothSides: true, Does: "a share of the users on both sides lose what their client kept (cookies, token, cart), like a closed browser tab",
		Word: "client restart", Symbol: "⊘", Color: "orange", Control: true, Busy: "half the users on each side close their browser tab…"},
	{Action: KindScaleOut, RecordOnly: true, Does: "replicas were added (a scale action)",
		Word: "scale out", Symbol: "▲", Color: "green"},
	{Action: KindScaleIn, RecordOnly: true, Does: "replicas were removed (a scale action)",
		Word: "scale in", Symbol: "▼", Color: "green"},
}

// KindOf returns the kind of an action or of an event record.
func KindOf(action string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Action == action {
			return k, true
		}
	}
	return Kind{}, false
}

// WordOf names an action or an event record's kind for a chart: its Word,
// or the name itself for a kind the table does not know.
func WordOf(kind string) string {
	if k, ok := KindOf(kind); ok {
		return k.Word
	}
	return kind
}

// actions lists every action a scenario may ask for, for the error that
// names them.
func actions() string {
	var names []string
	for _, k := range Kinds {
		if !k.RecordOnly {
			names = append(names, k.Action)
		}
	}
	return strings.Join(names, ", ")
}
