package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/hostcheck"
	"github.com/statelab/statelab/internal/library"
)

// Handler serves the runner's address: /metrics, the JSON feed, the live
// controls and, when configured, the dashboard, each only to a request
// whose Host names the runner (guardHost). No page may frame anything it
// serves (see noFraming).
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+FeedRoute, r.handleFeed)
	mux.Handle("POST "+ControlRoute+"{action}", r.guardControl(http.HandlerFunc(r.handleControl)))
	r.classRoutes(mux)
	if r.cfg.Dashboard != nil {
		mux.Handle("/", r.cfg.Dashboard)
	} else {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "statelab comparison runner\n\n  GET  /api/feed                 the numbers, once a second (JSON; ?history=SECONDS for the samples since then)\n  GET  /metrics                  the same numbers for Prometheus\n  POST /api/control/ACTION       restart, crash, scale-up, scale-down, restart-store, client-restart, pause, resume (both sides at once);\n                                 next: fire the event a --manual run waits on\n")
		})
	}
	var h http.Handler = mux
	if r.class != nil {
		h = r.class.TeacherGate(mux)
	}
	return noFraming(r.guardHost(h))
}

// classRoutes mounts a class's routes: the join page and API, the
// student's own standing, the QR code of the join URL (the teacher's),
// and each side's API under /s/{side}/ (forward). Without --class they
// answer 404 and say how to start a class.
func (r *Runner) classRoutes(mux *http.ServeMux) {
	if r.class == nil {
		noClass := func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "code": library.ENOTFOUND,
				"message": "This run has no class: start it with statelab compare --class to let students join with their own browsers."})
		}
		mux.HandleFunc("/api/class/", noClass)
		mux.HandleFunc("/join", noClass)
		mux.HandleFunc("/s/", noClass)
		return
	}
	mux.Handle("POST /api/class/join", r.class.HandleJoin())
	mux.Handle("GET /api/class/me", r.class.HandleMe())
	mux.Handle("GET /api/class/qr.png", r.class.HandleQR())
	mux.HandleFunc("GET /join", func(w http.ResponseWriter, req *http.Request) {
		if r.cfg.Dashboard == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "code": library.ENOTFOUND,
				"message": "This runner serves no pages (no dashboard): students join through POST /api/class/join."})
			return
		}
		// The page is web's join.html, at /join so that it is short to
		// type; its script and style sheet sit next to it at /.
		page := req.Clone(req.Context())
		page.URL.Path, page.URL.RawPath = "/join.html", ""
		r.cfg.Dashboard.ServeHTTP(w, page)
	})
	for _, s := range r.sides {
		mux.Handle(class.SidePrefix(s.name)+"/", r.class.Forward(s.name, s.url))
	}
}

// guardHost answers 421 to a request whose Host does not name this runner
// (hostAllowed). With DNS rebinding, attacker.example is made to resolve
// to 127.0.0.1, and the attacker's page reads the runner as its own
// origin: the feed, the metrics, the dashboard, and presses the controls.
// The Host header still says attacker.example, and only this check
// catches it.
func (r *Runner) guardHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.hostAllowed(req.Host) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]any{"success": false, "code": library.EMISDIRECTED,
				"message": fmt.Sprintf("This runner answers only for its own address (%s) or localhost, 127.0.0.1 or [::1] on its port, not for Host %q: a page that reached it under another name (DNS rebinding) may neither read it nor press its buttons.", r.cfg.Addr, req.Host)})
			return
		}
		next.ServeHTTP(w, req)
	})
}

// noFraming forbids every page to show the runner's answers in a frame:
// a page on another port could otherwise lay the dashboard, at opacity
// 0.02, under its own buttons, and a click there would crash replicas
// (clickjacking). A dashboard handler may set a fuller
// Content-Security-Policy in its place; web's pages keep frame-ancestors
// 'none' in theirs.
func noFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, req)
	})
}

// guardControl lets only the runner's own pages and programs on this
// machine press the buttons. A control crashes replicas, so two browser
// attacks matter: a page on another origin posting to the runner
// (cross-origin protection refuses it), and DNS rebinding (guardHost,
// in front of every route, refuses it).
//
// In a class the students' browsers are on the runner's own origin too,
// so there only the teacher presses the buttons: a request must carry the
// teacher's token (the cookie the teacher's URL set, or Authorization:
// Bearer for a program); a student's browser gets 403.
func (r *Runner) guardControl(next http.Handler) http.Handler {
	csrf := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := csrf.Check(req); err != nil {
			writeJSON(w, http.StatusForbidden, map[string]any{"success": false, "code": library.EFORBIDDEN,
				"message": "Cross-origin request refused: only the runner's own dashboard may press its controls, not a page from another origin."})
			return
		}
		if r.class != nil && !r.class.IsTeacher(req) {
			writeJSON(w, http.StatusForbidden, map[string]any{"success": false, "code": library.EFORBIDDEN,
				"message": "In a class only the teacher fires events, pauses or scales: open the teacher's URL statelab compare --class printed (it carries ?teacher=), or send its token as Authorization: Bearer."})
			return
		}
		if ct := req.Header.Get("Content-Type"); req.ContentLength != 0 && !strings.HasPrefix(ct, "application/json") {
			// A control reads no body; a form or text/plain body is what a
			// page's form would send.
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"success": false, "code": library.EMEDIATYPE,
				"message": fmt.Sprintf("A control takes no body, or a JSON one; this one is %q.", ct)})
			return
		}
		next.ServeHTTP(w, req)
	})
}

// hostAllowed reports whether a request's Host names this runner: its own
// address, or a loopback name with its port (hostcheck, which the
// balancers and the replicas share).
func (r *Runner) hostAllowed(host string) bool {
	return hostcheck.Names{Addr: r.cfg.Addr}.Allowed(host)
}

// The runner's own routes, beside the dashboard's pages: the feed, and a
// control is ControlRoute followed by its action (NextRoute fires the
// event a --manual run waits on).
const (
	FeedRoute    = "/api/feed"
	ControlRoute = "/api/control/"
	NextRoute    = ControlRoute + "next"
)

// feedBody is what GET /api/feed answers.
type feedBody struct {
	// Sides are the two strategies, in column order; Now, History and
	// Events name a side by its strategy's name.
	Sides     []strategy.Strategy `json:"sides"`
	Scenario  string              `json:"scenario"`
	DurationS float64             `json:"duration_s"`
	Users     int                 `json:"users"`
	// ReplicaCPU is the replicas' CPU limit and how the kernel enforces it
	// (or why not); absent when no limit was asked for.
	ReplicaCPU *cpulimit.Enforcement `json:"replica_cpu,omitempty"`
	// OpenLoop is the open-loop load; absent without one.
	OpenLoop *report.OpenLoopInfo `json:"open_loop,omitempty"`
	Now      Sample               `json:"now"`
	Events   []report.EventRecord `json:"events"`
	History  []Sample             `json:"history,omitempty"`
	// Manual is true when each scenario event waits to be fired; Next is
	// then the one waiting, if any.
	Manual bool          `json:"manual"`
	Next   *PendingEvent `json:"next,omitempty"`
	// Store is the shared resource store: sqlite or postgres.
	Store string `json:"store"`
	// Network is what lies between the lab's processes; each replica in
	// Now says its own address and its link's.
	Network report.Network `json:"network"`
	// Kinds words every kind of event for the page's markers and
	// controls: the same table the report words them from.
	Kinds []scenario.Kind `json:"kinds"`
	// Class is the students of a --class run and what the last event did
	// to them; absent without a class. Only the teacher's page gets its
	// code and join URLs.
	Class *class.Feed `json:"class,omitempty"`
}

func (r *Runner) handleFeed(w http.ResponseWriter, req *http.Request) {
	body := feedBody{
		Sides:      r.cfg.Sides[:],
		Scenario:   r.cfg.Scenario.Name,
		DurationS:  r.cfg.Scenario.Duration.Std().Seconds(),
		Users:      r.cfg.Users,
		ReplicaCPU: r.enforcement(),
		OpenLoop:   r.openLoopInfo(),
		Events:     r.Events(),
		Now:        r.feed.Latest(),
		Manual:     r.cfg.Manual,
		Next:       r.Pending(),
		Store:      r.db.Kind,
		Network:    r.network(),
		Kinds:      scenario.Kinds,
		Class:      r.classFeed(req),
	}
	// Name only the events the newest sample shows the effect of, so the
	// page never says "two replicas were added" beside a count of replicas
	// up from before: an event shows at the first sample after it ended, a
	// second later at most. (A sample taken at once instead would make the
	// rates of that short interval spike.)
	body.Events = slices.DeleteFunc(body.Events, func(e report.EventRecord) bool {
		return e.AtS+e.TookMS/1000 > body.Now.ElapsedS
	})
	if v := req.URL.Query().Get("history"); v != "" {
		since, err := strconv.ParseFloat(v, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "code": "bad_request", "message": "history must be a number of seconds"})
			return
		}
		body.History = r.feed.History(since)
	}
	writeJSON(w, http.StatusOK, body)
}

// handleControl plays a live event on both sides: what an instructor's
// button does.
func (r *Runner) handleControl(w http.ResponseWriter, req *http.Request) {
	action := req.PathValue("action")
	if action == "next" {
		r.handleNext(w, req)
		return
	}
	n := len(r.sides[0].sup.Replicas())
	e := scenario.Event{Note: "live control"}
	k, ok := scenario.KindOf(action)
	switch {
	case action == "scale-up" || action == "scale-down":
		e.Action = scenario.ActionScale
		e.Replicas = n + 1
		if action == "scale-down" {
			e.Replicas = n - 1
		}
		if e.Replicas < 1 || e.Replicas > scenario.MaxReplicas {
			writeJSON(w, http.StatusConflict, map[string]any{"success": false, "code": "conflict", "message": fmt.Sprintf("each side already runs %d replica(s); the lab allows 1 to %d", n, scenario.MaxReplicas)})
			return
		}
	case !ok || !k.Control:
		writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "code": "not_found", "message": "unknown control " + strconv.Quote(action) + "; use " + controls()})
		return
	case k.Takes == scenario.TakesReplica:
		e.Action = action
		e.Replica = 1
		if v := req.URL.Query().Get("replica"); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 || i > n {
				writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "code": "bad_request", "message": fmt.Sprintf("replica must be 1 to %d", n)})
				return
			}
			e.Replica = i
		}
	case k.Takes == scenario.TakesShare:
		e.Action, e.Share = action, scenario.DefaultClientRestartShare
		if v := req.URL.Query().Get("share"); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1) {
				writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "code": "bad_request", "message": "share must be a number more than 0 and at most 1: the part of the users whose client restarts"})
				return
			}
			e.Share = f
		}
	default:
		e.Action = action
	}
	before := len(r.Events())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), time.Minute)
	defer cancel()
	err := r.Apply(ctx, e, "control")
	recs := r.Events()[before:]
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"success": false, "code": "internal", "message": err.Error(), "data": recs})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": report.DescribeControl(action, recs), "data": recs})
}

// handleNext fires the event a manual run is waiting on.
func (r *Runner) handleNext(w http.ResponseWriter, req *http.Request) {
	if !r.cfg.Manual {
		writeJSON(w, http.StatusConflict, map[string]any{"success": false, "code": "conflict",
			"message": "This run plays its scenario on its own clock; start it with --manual to fire each event with Next."})
		return
	}
	p := r.Pending()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), time.Minute)
	defer cancel()
	recs, err := r.Next(ctx)
	switch {
	case errors.Is(err, errNothingWaiting):
		msg := "No event is waiting: the scenario has played every event."
		if p != nil {
			msg = "The previous event is still being played; press Next again when it is over."
		} else if r.since(time.Now()) == 0 {
			msg = "The run has not started yet: the replicas are still starting."
		}
		writeJSON(w, http.StatusConflict, map[string]any{"success": false, "code": "conflict", "message": msg})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"success": false, "code": "internal", "message": err.Error(), "data": recs})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": report.DescribeControl(p.Action, recs), "data": recs})
	}
}

// controls lists what POST /api/control/{action} takes, for its 404.
func controls() string {
	var names []string
	for _, k := range scenario.Kinds {
		if k.Control {
			names = append(names, k.Action)
		}
	}
	return strings.Join(append(names, "scale-up", "scale-down", "next"), ", ")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
