package walkthrough

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/strategy"
)

// seen is what the walkthrough's steps measured that bears on the
// lesson's claims. The walkthrough ends by judging each claim from it, with
// the rules a run's report uses (report.Judge), so the verdicts come from
// this walkthrough's numbers and from nowhere else.
type seen struct {
	// restartLost says, per side, whether the restart of step 3 cost the
	// side's client its sign-in.
	restartLost map[string]bool
	// addedShare is, per side, the share of step 4's ten requests the
	// replica with the fewest successes answered with a 2xx: a replica
	// added takes its share only if it can answer.
	addedShare map[string]float64
	// sessionsHeld is what the stateful replicas said they held in step 6.
	sessionsHeld float64
	// cost is what step 5 measured per credential ("c", "k", "j").
	cost map[string]credCost
	// revoked is, per credential, what step 5's revocation did.
	revoked map[string]string
}

// credCost is what step 5 measured of one credential.
type credCost struct {
	bytes      int64 // the credential's header line on the wire
	identify   time.Duration
	roundTrips float64
	observed   load.ObservedRequest
}

// share records how step 4's ten requests of a side were answered: okBy
// counts the 2xx by the replica that answered.
func (s *seen) share(side string, okBy map[string]int) {
	least := ten
	for _, id := range []string{side + "-1", side + "-2"} {
		least = min(least, okBy[id])
	}
	if s.addedShare == nil {
		s.addedShare = map[string]float64{}
	}
	s.addedShare[side] = float64(least) / ten
}

// headerOf makes a header of a "Name: value" line.
func headerOf(line string) http.Header {
	name, value, _ := strings.Cut(line, ": ")
	return http.Header{name: {value}}
}

// us formats a duration in microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

// evidence turns what the steps measured into the claims' evidence: the
// cookie of the stateful server (its memory store behind round robin, as
// steps 3 and 4 ran it), and the API key and the JWT of the stateless one.
func (w *walk) evidence() []report.Evidence {
	sides := []struct {
		key, name, strategy, side string
	}{
		{"c", "cookie", "memory", stateful},
		{"k", "API key", "apikey", stateless},
		{"j", "JWT", "jwt", stateless},
	}
	var out []report.Evidence
	for _, s := range sides {
		st, _ := strategy.Parse(s.strategy) // the names are the lab's own
		c := w.seen.cost[s.key]
		e := report.Evidence{Side: s.name, Stateless: s.side == stateless, Parts: st.Parts(),
			ScaleOut: &report.ScaleEvidence{From: 1, To: 2, AddedShare: w.seen.addedShare[s.side], FairShare: 0.5},
			Stops:    1, Sized: int64(w.cfg.Requests), CredentialBytes: float64(c.bytes),
			Identifications: int64(w.cfg.Requests), IdentifyUS: float64(c.identify) / float64(time.Microsecond), RoundTrips: c.roundTrips,
			Revocation: w.seen.revoked[s.key]}
		if w.seen.restartLost[s.side] {
			e.LostAtStops = 1
		}
		if o := c.observed; o.Line != "" {
			e.Observed = &o
		}
		if s.side == stateful {
			held := w.seen.sessionsHeld
			e.SessionsHeld = &held
		}
		out = append(out, e)
	}
	return out
}

// claims ends the walkthrough with the lesson's claims, each judged by
// what the steps measured.
func (w *walk) claims() {
	w.t.para("The lesson's claims, judged by what this walkthrough measured (the rules of the " +
		"comparison's report; \"not measured\" where the walkthrough has no evidence of its own):")
	for _, c := range report.Judge(w.evidence(), report.Conditions{NoReadCache: true}) {
		w.t.line(fmt.Sprintf("  %-13s %s", c.Verdict, c.Claim))
		w.t.line(fmt.Sprintf("  %13s %s", "", c.Why))
	}
	w.t.blank()
}
