package compare

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/statelab/statelab/compare/strategy"
)

// Handler serves the runner's address: /metrics, the JSON feed, the live
// controls and, when configured, the dashboard.
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/feed", r.handleFeed)
	mux.HandleFunc("POST /api/control/{action}", r.handleControl)
	if r.cfg.Dashboard != nil {
		mux.Handle("/", r.cfg.Dashboard)
	} else {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "statelab comparison runner\n\n  GET  /api/feed                 the numbers, once a second (JSON; ?history=SECONDS for the samples since then)\n  GET  /metrics                  the same numbers for Prometheus\n  POST /api/control/ACTION       restart, crash, scale-up, scale-down, restart-store, pause, resume (both sides at once)\n")
		})
	}
	return mux
}

// feedBody is what GET /api/feed answers.
type feedBody struct {
	// Sides are the two strategies, in column order; Now, History and
	// Events name a side by its strategy's name.
	Sides     []strategy.Strategy `json:"sides"`
	Scenario  string              `json:"scenario"`
	DurationS float64             `json:"duration_s"`
	Users     int                 `json:"users"`
	Now       Sample              `json:"now"`
	Events    []EventRecord       `json:"events"`
	History   []Sample            `json:"history,omitempty"`
}

func (r *Runner) handleFeed(w http.ResponseWriter, req *http.Request) {
	body := feedBody{
		Sides:     r.cfg.Sides[:],
		Scenario:  r.cfg.Scenario.Name,
		DurationS: r.cfg.Scenario.Duration.Std().Seconds(),
		Users:     r.cfg.Users,
		Now:       r.feed.Latest(),
		Events:    r.Events(),
	}
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
	n := len(r.sides[0].sup.Replicas())
	e := Event{Note: "live control"}
	switch action {
	case "restart", "crash":
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
	case "scale-up", "scale-down":
		e.Action = ActionScale
		e.Replicas = n + 1
		if action == "scale-down" {
			e.Replicas = n - 1
		}
		if e.Replicas < 1 || e.Replicas > MaxReplicas {
			writeJSON(w, http.StatusConflict, map[string]any{"success": false, "code": "conflict", "message": fmt.Sprintf("each side already runs %d replica(s); the lab allows 1 to %d", n, MaxReplicas)})
			return
		}
	case "pause", "resume", ActionRestartStore:
		e.Action = action
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "code": "not_found", "message": "unknown control " + strconv.Quote(action) + "; use restart, crash, scale-up, scale-down, restart-store, pause or resume"})
		return
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
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": describe(action, recs), "data": recs})
}

// describe says in words what a control did.
func describe(action string, recs []EventRecord) string {
	switch action {
	case "pause":
		return "The simulated users are paused."
	case "resume":
		return "The simulated users go on."
	}
	var msg strings.Builder
	for _, rec := range recs {
		if rec.Kind == ActionRestartStore {
			fmt.Fprintf(&msg, "%s: %s. ", rec.Side, strings.TrimSuffix(rec.Note, "; live control"))
			continue
		}
		if rec.Replica == "" {
			continue
		}
		fmt.Fprintf(&msg, "%s: %s %s in %.0f ms", rec.Side, rec.Kind, rec.Replica, rec.TookMS)
		if rec.SessionsHeld != nil {
			fmt.Fprintf(&msg, "; %.0f session(s) it held in memory went with it", *rec.SessionsHeld)
		}
		if rec.Error != "" {
			fmt.Fprintf(&msg, " (failed: %s)", rec.Error)
		}
		msg.WriteString(". ")
	}
	return strings.TrimSpace(msg.String())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
