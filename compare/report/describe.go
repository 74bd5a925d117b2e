package report

import (
	"fmt"
	"strings"

	"github.com/statelab/statelab/compare/scenario"
)

// DescribeControl says in words what a live control (or a manual run's
// Next) did, from the records it made: the message the dashboard shows
// beside the button.
func DescribeControl(action string, recs []EventRecord) string {
	switch action {
	case scenario.ActionPause:
		return "The simulated users are paused."
	case scenario.ActionResume:
		return "The simulated users go on."
	}
	var msg strings.Builder
	for _, rec := range recs {
		if rec.Kind == scenario.ActionRestartStore || rec.Kind == scenario.ActionClientRestart {
			fmt.Fprintf(&msg, "%s: %s. ", rec.Side, strings.TrimSuffix(rec.Note, "; live control"))
			continue
		}
		if rec.Replica == "" {
			continue
		}
		fmt.Fprintf(&msg, "%s: %s %s in %.0f ms", rec.Side, rec.Kind, rec.Replica, rec.TookMS)
		msg.WriteString(sessionsWent(rec))
		if rec.Error != "" {
			fmt.Fprintf(&msg, " (failed: %s)", rec.Error)
		}
		msg.WriteString(". ")
	}
	return strings.TrimSpace(msg.String())
}

// sessionsWent says what sessions went with a replica: those of users
// still using them, apart from the idle ones nobody would have come back
// for. It is empty when the replica counted none.
func sessionsWent(rec EventRecord) string {
	if rec.SessionsHeld == nil {
		return ""
	}
	held := *rec.SessionsHeld
	if rec.SessionsInUse == nil {
		return fmt.Sprintf("; %s it held in memory went with it", plural(held, "session", "sessions"))
	}
	inUse := min(*rec.SessionsInUse, held)
	s := fmt.Sprintf("; %s in use went with it", plural(inUse, "session", "sessions"))
	if idle := held - inUse; idle > 0 {
		s += fmt.Sprintf(" (and %.0f idle, left behind by users who had signed in again)", idle)
	}
	return s
}

// plural says n things, in the singular for one.
func plural(n float64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%.0f %s", n, many)
}
