package compare

import (
	"testing"

	"github.com/statelab/statelab/compare/scenario"
)

// TestEveryKindIsPlayed checks the seam a new fault kind goes through: an
// action scenario.Kinds lets a scenario ask for is played by exactly one
// implementation here, on each side or on the run as a whole as its entry
// says, and nothing is implemented that the table does not name.
func TestEveryKindIsPlayed(t *testing.T) {
	for _, k := range scenario.Kinds {
		_, side := sideActions[k.Action]
		_, run := runActions[k.Action]
		switch {
		case k.RecordOnly || k.Takes == scenario.TakesInterval:
			// Records of other actions, and crash-random, which Expand
			// turns into crashes before the runner sees it.
			if side || run {
				t.Errorf("%s: implemented, but no event asks for it", k.Action)
			}
		case side && run:
			t.Errorf("%s: implemented twice", k.Action)
		case k.BothSides && !run:
			t.Errorf("%s: acts on the run as a whole, but runActions does not play it", k.Action)
		case !k.BothSides && !side:
			t.Errorf("%s: acts on each side, but sideActions does not play it", k.Action)
		}
	}
	for action := range sideActions {
		if _, ok := scenario.KindOf(action); !ok {
			t.Errorf("sideActions plays %q, which scenario.Kinds does not name", action)
		}
	}
	for action := range runActions {
		if _, ok := scenario.KindOf(action); !ok {
			t.Errorf("runActions plays %q, which scenario.Kinds does not name", action)
		}
	}
}
