package compare

import (
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/supervisor"
)

// clientRestart makes the same share of users on both sides lose what
// their clients kept. Which users is drawn from the run's seed and the
// number of events so far, so a run with the same seed picks the same ones.
func (r *Runner) clientRestart(e scenario.Event, source string) {
	n := r.cfg.Users
	k := min(n, max(1, int(math.Round(e.Share*float64(n)))))
	r.mu.Lock()
	picked := mrand.New(mrand.NewPCG(uint64(r.cfg.Seed), uint64(len(r.log)))).Perm(n)[:k]
	users := make([][]*load.User, len(r.sides))
	for i, s := range r.sides {
		users[i] = slices.Clone(s.users)
	}
	r.mu.Unlock()
	for si, s := range r.sides {
		for _, i := range picked {
			if i < len(users[si]) {
				users[si][i].RestartClient()
			}
		}
		note := fmt.Sprintf("%d of %d users' clients forgot their cookies, tokens and carts", k, n)
		if e.Note != "" {
			note += "; " + e.Note
		}
		r.events.WithLabelValues(e.Action, s.name, s.st.Server, source).Inc()
		r.record(report.EventRecord{AtS: r.elapsed().Seconds(), Kind: e.Action, Side: s.name, Source: source, Users: k, Note: note})
	}
}

// diffIDs returns the ids in a that are not in b.
func diffIDs(a, b []supervisor.Replica) []string {
	var ids []string
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y supervisor.Replica) bool { return y.ID == x.ID }) {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// played is what a side action did: the kind to record (a scale is a
// scale-out or a scale-in, a rolling restart a restart of each replica),
// the replicas or services it touched, a note for the record, and what
// went wrong.
type played struct {
	kind    string
	touched []string
	note    string
	err     error
}

// sideAction plays one kind of event on one side's replicas or store;
// before is the side's replicas as the event began.
type sideAction func(ctx context.Context, s *side, e scenario.Event, before []supervisor.Replica) played

// runAction plays one kind of event that acts on the run as a whole (the
// users, the timeline) and records it.
type runAction func(r *Runner, e scenario.Event, source string)

// sideActions and runActions implement scenario.Kinds: each action a
// scenario can ask for is played by exactly one of them (a test checks).
// crash-random is not here: Expand turns it into crashes.
var sideActions = map[string]sideAction{
	scenario.ActionRestart:        replicaAction((*supervisor.Supervisor).Restart),
	scenario.ActionCrash:          replicaAction((*supervisor.Supervisor).Crash),
	scenario.ActionRollingRestart: rollingRestart,
	scenario.ActionScale:          scale,
	scenario.ActionRestartStore:   restartStore,
}

var runActions = map[string]runAction{
	scenario.ActionPause: func(r *Runner, e scenario.Event, source string) {
		r.markPhases(e.Action)
		r.gate.Pause()
		r.recordRun(e, source)
	},
	scenario.ActionResume: func(r *Runner, e scenario.Event, source string) {
		r.markPhases(e.Action)
		r.gate.Resume()
		r.recordRun(e, source)
	},
	scenario.ActionMark:          (*Runner).recordRun,
	scenario.ActionClientRestart: (*Runner).clientRestart,
}

// recordRun records an event that acts on the run as a whole.
func (r *Runner) recordRun(e scenario.Event, source string) {
	r.record(report.EventRecord{AtS: r.elapsed().Seconds(), Kind: e.Action, Side: "both", Source: source, Note: e.Note})
}

// replicaAction plays an event on the replica the event names (the first
// when it names none).
func replicaAction(do func(*supervisor.Supervisor, context.Context, string) error) sideAction {
	return func(ctx context.Context, s *side, e scenario.Event, before []supervisor.Replica) played {
		idx := max(e.Replica, 1) - 1
		if idx >= len(before) {
			return played{kind: e.Action, err: fmt.Errorf("replica %d does not exist: %d running", idx+1, len(before))}
		}
		id := before[idx].ID
		return played{kind: e.Action, touched: []string{id}, err: do(s.sup, ctx, id)}
	}
}

func rollingRestart(ctx context.Context, s *side, e scenario.Event, before []supervisor.Replica) played {
	p := played{kind: scenario.ActionRestart}
	for _, rep := range before {
		p.touched = append(p.touched, rep.ID)
	}
	p.err = s.sup.RollingRestart(ctx)
	return p
}

func scale(ctx context.Context, s *side, e scenario.Event, before []supervisor.Replica) played {
	err := s.sup.Scale(ctx, e.Replicas)
	after := s.sup.Replicas()
	if len(after) < len(before) {
		return played{kind: scenario.KindScaleIn, touched: diffIDs(before, after), err: err}
	}
	return played{kind: scenario.KindScaleOut, touched: diffIDs(after, before), err: err}
}

// restartStore restarts the services the side's sessions live in, each
// as internal/services starts it.
func restartStore(ctx context.Context, s *side, e scenario.Event, before []supervisor.Replica) played {
	if len(s.services) == 0 {
		return played{kind: e.Action, note: "no session store to restart: " + s.st.Where}
	}
	p := played{kind: e.Action}
	var notes []string
	for _, svc := range s.services {
		p.touched = append(p.touched, svc.Program)
		p.err = errors.Join(p.err, svc.Restart(ctx))
		notes = append(notes, svc.Restarted())
	}
	p.note = strings.Join(notes, "; ")
	return p
}
