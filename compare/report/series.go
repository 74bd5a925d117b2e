package report

import (
	"cmp"
	"math"
	"slices"
)

// SeriesPoint is one side at one of the feed's samples, as the report keeps
// it for its charts: the counted totals (rates are differences of two of
// them, as on the dashboard) and what each replica said of its sessions.
type SeriesPoint struct {
	T                 float64        `json:"t"`
	Requests          int64          `json:"requests"`
	OK                int64          `json:"ok"`
	SessionsLost      int64          `json:"sessions_lost"`
	CartItemsLost     int64          `json:"cart_items_lost"`
	Failed            int64          `json:"failed"` // 5xx and connection errors
	ClientSignInsLost int64          `json:"client_sign_ins_lost"`
	Replicas          []ReplicaPoint `json:"replicas"`
}

// ReplicaPoint is one replica at one sample: its sessions, held and in use,
// where it counts them.
type ReplicaPoint struct {
	ID       string   `json:"id"`
	Sessions *float64 `json:"sessions,omitempty"`
	InUse    *float64 `json:"in_use,omitempty"`
}

// EventLosses is what one event cost each side: the sessions that went with
// the replicas it stopped, as the replicas counted them, and what the users
// counted from the event until the next one (or the end of the run).
type EventLosses struct {
	AtS    float64 `json:"at_s"`
	ToS    float64 `json:"to_s"`
	Kind   string  `json:"kind"` // an event's kind, or "start" for the stretch before the first event
	Source string  `json:"source,omitempty"`
	Note   string  `json:"note,omitempty"`
	// Sides holds each side's losses, keyed by strategy name.
	Sides map[string]SideLosses `json:"sides"`
}

// SideLosses is one side's part of EventLosses.
type SideLosses struct {
	// Replicas names the replicas the event touched on this side.
	Replicas []string `json:"replicas,omitempty"`
	// InUseDropped and IdleDropped are the sessions the stopped replicas
	// held, in use and idle, by their own count; nil where no replica
	// counted (a stateless side, a store that cannot count).
	InUseDropped *float64 `json:"in_use_dropped,omitempty"`
	IdleDropped  *float64 `json:"idle_dropped,omitempty"`
	// The users' counts over the window.
	SessionsLost      int64 `json:"sessions_lost"`
	CartItemsLost     int64 `json:"cart_items_lost"`
	Failed            int64 `json:"failed"`
	ClientSignInsLost int64 `json:"client_sign_ins_lost"`
}

// sameEvent reports whether two records belong to one event: same kind,
// same source, started within two seconds (a rolling restart's records
// spread over its length, but they start together on both sides).
func sameEvent(a EventLosses, e EventRecord) bool {
	return a.Kind == e.Kind && a.Source == e.Source && math.Abs(a.AtS-e.AtS) < 2
}

// LossesPerEvent groups the event records into events and counts, for each
// side, what went with each event and what the users lost until the next.
// The stretch before the first event is the first entry, so losses that no
// event caused (a round-robin balancer's) are shown too. end is when the
// run ended.
func LossesPerEvent(events []EventRecord, series map[string][]SeriesPoint, sides []string, end float64) []EventLosses {
	var groups []EventLosses
	for _, e := range events {
		i := slices.IndexFunc(groups, func(g EventLosses) bool { return sameEvent(g, e) })
		if i < 0 {
			groups = append(groups, EventLosses{AtS: e.AtS, Kind: e.Kind, Source: e.Source, Note: e.Note, Sides: map[string]SideLosses{}})
			i = len(groups) - 1
		}
		g := &groups[i]
		g.AtS = min(g.AtS, e.AtS)
		if e.Side == "both" || e.Side == "" {
			continue
		}
		sl := g.Sides[e.Side]
		if e.Replica != "" {
			sl.Replicas = append(sl.Replicas, e.Replica)
		}
		if e.SessionsHeld != nil {
			held := *e.SessionsHeld
			inUse := held
			if e.SessionsInUse != nil {
				inUse = min(*e.SessionsInUse, held)
			}
			sl.InUseDropped = addPtr(sl.InUseDropped, inUse)
			sl.IdleDropped = addPtr(sl.IdleDropped, held-inUse)
		}
		g.Sides[e.Side] = sl
	}
	slices.SortStableFunc(groups, func(a, b EventLosses) int { return cmp.Compare(a.AtS, b.AtS) })
	start := EventLosses{AtS: 0, Kind: "start", Sides: map[string]SideLosses{}}
	if len(groups) == 0 || groups[0].AtS > 0 {
		groups = append([]EventLosses{start}, groups...)
	}
	for i := range groups {
		groups[i].ToS = end
		if i+1 < len(groups) {
			groups[i].ToS = groups[i+1].AtS
		}
		for _, name := range sides {
			from, to := at(series[name], groups[i].AtS), at(series[name], groups[i].ToS)
			sl := groups[i].Sides[name]
			sl.SessionsLost = to.SessionsLost - from.SessionsLost
			sl.CartItemsLost = to.CartItemsLost - from.CartItemsLost
			sl.Failed = to.Failed - from.Failed
			sl.ClientSignInsLost = to.ClientSignInsLost - from.ClientSignInsLost
			groups[i].Sides[name] = sl
		}
	}
	return groups
}

// at returns the last point taken at or before t (the zero point before
// the first): the counts as they stood at t, to within a sample.
func at(pts []SeriesPoint, t float64) SeriesPoint {
	i, _ := slices.BinarySearchFunc(pts, t, func(p SeriesPoint, t float64) int {
		if p.T <= t {
			return -1
		}
		return 1
	})
	if i == 0 {
		return SeriesPoint{}
	}
	return pts[i-1]
}

func addPtr(p *float64, v float64) *float64 {
	if p != nil {
		v += *p
	}
	return &v
}
