package compare

import (
	"net/http"

	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/scenario"
)

// newClass makes the class of a --class run, with an account per student
// in the run's shared store; nothing without Config.Class.
func (r *Runner) newClass() error {
	if !r.cfg.Class {
		return nil
	}
	sides := make([]class.Side, len(r.sides))
	for i, s := range r.sides {
		sides[i] = class.Side{Name: s.name, Credential: s.st.Credential}
	}
	c, err := class.New(class.Config{Store: r.db, Sides: sides, Addr: r.cfg.Addr, Logger: r.cfg.Logger})
	if err != nil {
		return err
	}
	r.class = c
	return nil
}

// Class returns the run's class, nil without Config.Class: its code, its
// teacher's token and URLs, for the one who started the run.
func (r *Runner) Class() *class.Class { return r.class }

// classEvent tells the class that e begins on the sides, and returns what
// tells it that e is over, with the replicas it touched, so each
// student's next request judges what it did to them. Nothing without a
// class.
func (r *Runner) classEvent(e scenario.Event) func() {
	if r.class == nil {
		return func() {}
	}
	before := len(r.Events())
	r.class.EventBegan(e.Action, r.elapsed().Seconds(), r.simulatedLosses())
	return func() {
		kind := ""
		touched := map[string][]string{}
		for _, rec := range r.Events()[before:] {
			kind = rec.Kind
			if rec.Replica != "" {
				touched[rec.Side] = append(touched[rec.Side], rec.Replica)
			}
		}
		r.class.EventEnded(kind, touched)
	}
}

// simulatedLosses is what each side's simulated users have lost so far.
func (r *Runner) simulatedLosses() map[string]class.Simulated {
	out := make(map[string]class.Simulated, len(r.sides))
	for name, t := range r.Totals() {
		out[name] = class.Simulated{SessionsLost: t.SessionsLost, CartItemsLost: t.CartItemsLost}
	}
	return out
}

// classFeed is the feed's class; nil without one. Only the teacher's
// page is told the code.
func (r *Runner) classFeed(req *http.Request) *class.Feed {
	if r.class == nil {
		return nil
	}
	f := r.class.Snapshot(r.class.IsTeacher(req), r.simulatedLosses())
	return &f
}
