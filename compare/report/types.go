package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/statelab/statelab/compare/load"
)

// BalanceWindow is how one side's balancer shared the requests out among
// the replicas in the stretch after a scale event, until the next event on
// that side or the end of the run. Counted by the balancer as it handed
// requests over, so it is what really happened, not what the policy
// promises.
type BalanceWindow struct {
	FromS float64 `json:"from_s"`
	ToS   float64 `json:"to_s"`
	After string  `json:"after"` // the event that opened the window: scale-out or scale-in
	// Requests counts the requests each replica in service at FromS was
	// handed during the window.
	Requests map[string]uint64 `json:"requests"`
	// Shares are each replica's part of those requests.
	Shares map[string]float64 `json:"shares"`
	// Imbalance is the largest share divided by the fair share (1/replicas):
	// 1 is an even spread, 2 means one replica carried twice its part.
	Imbalance float64 `json:"imbalance"`
}

// Phase is one side's stretch of a run between two events (or the start
// and the end): the load offered, what got through, how long it took, and
// what each replica's CPU did meanwhile. The requests are those that
// arrived in the phase, whenever they were answered, so a backlog built up
// before a scale-out counts against the phase that built it; sessions lost
// and CPU are counted as they happened.
type Phase struct {
	FromS float64 `json:"from_s"`
	ToS   float64 `json:"to_s"`
	// After names what began the phase: "start", or the event's kind
	// (scale-out, scale-in, restart, crash, pause, ...).
	After string `json:"after"`
	// During is true when the phase is the event itself, from its start
	// until it was done (new replicas ready, old ones stopped); the phase
	// after it then begins once it was.
	During bool `json:"during,omitempty"`
	// Settling is true for the stretch of one deadline after an event was
	// over, when there is an open-loop load: every request that arrived
	// before the event was over has its answer, or gave up, by its end, so
	// the phase after it measures the new state of the side, not its
	// backlog.
	Settling bool `json:"settling,omitempty"`
	// Replicas is how many replicas were in service when it began.
	Replicas int `json:"replicas"`
	// OfferedRPS counts the requests the users started per second, open-
	// loop arrivals included whether or not they were sent.
	OfferedRPS float64 `json:"offered_rps"`
	// ThroughputRPS counts the requests of the phase answered 2xx, per
	// second of the phase: at most OfferedRPS.
	ThroughputRPS float64 `json:"throughput_rps"`
	// BorrowsPerS counts the borrows answered 201 in the phase, as they
	// happened, per second: what the users got done in it.
	BorrowsPerS float64 `json:"borrows_per_s"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	// P50MS and P99MS are the latency of the phase's requests, from
	// arrival to answer; a timeout counts with the time it waited.
	// Timeouts counts requests with no answer within their deadline,
	// Dropped ones included.
	Timeouts int64 `json:"timeouts"`
	Dropped  int64 `json:"dropped"`
	// Failed counts every answer that was neither a 2xx nor a 409 conflict:
	// timeouts, lost sessions, 5xx, connection errors.
	Failed       int64 `json:"failed"`
	SessionsLost int64 `json:"sessions_lost"`
	// ReplicaCPUCores is each replica's mean CPU use over the phase, in
	// cores, counted by its cgroup (or, without one, its process).
	ReplicaCPUCores map[string]float64 `json:"replica_cpu_cores,omitempty"`
	// ReplicaCPUShare is the same as a share of the replica's limit, when
	// the kernel enforced one.
	ReplicaCPUShare map[string]float64 `json:"replica_cpu_share,omitempty"`
}

// ReplicaCPUUse is what one replica's CPU did over a whole run.
type ReplicaCPUUse struct {
	Replica string  `json:"replica"`
	CPUS    float64 `json:"cpu_s"` // CPU time, every process of the replica id
	// MaxShare is the highest use in one feed sample (about a second), as
	// a share of the limit: above 1 only by the kernel's slack.
	MaxShare float64 `json:"max_share_1s,omitempty"`
	// Periods and ThrottledPeriods are the cgroup's CFS periods with work
	// to do, and those in which the replica used its whole quota and was
	// stopped; ThrottledS the time it spent stopped.
	Periods          int64   `json:"periods,omitempty"`
	ThrottledPeriods int64   `json:"throttled_periods,omitempty"`
	ThrottledS       float64 `json:"throttled_s,omitempty"`
	// QuotaShare is CPU time ÷ (quota × periods): the whole run's use of
	// the quota the kernel granted, at most 1 but for its slack.
	QuotaShare float64 `json:"quota_share,omitempty"`
}

// OpenLoopInfo says what open-loop load each side got.
type OpenLoopInfo struct {
	Rate           float64 `json:"rate"`            // arrivals per second per side, asked for
	RateUsers      int     `json:"rate_users"`      // signed-in users per side the requests come from
	DeadlineMS     float64 `json:"deadline_ms"`     // past it a request is a timeout
	MaxOutstanding int     `json:"max_outstanding"` // beyond it an arrival is dropped (and a timeout)
	// Calibration is how Rate was chosen, when the scenario measured it
	// before the clock started; absent when Rate was given.
	Calibration *Calibration `json:"calibration,omitempty"`
}

// Calibration is what the runner measured before the clock started to
// choose the open-loop rate: what one replica answers per second under its
// CPU limit, and what the runner itself can send.
type Calibration struct {
	// Factor and Replicas: the rate wanted is Factor × Replicas × the
	// larger of the sides' ReplicaRPS.
	Factor   float64 `json:"factor"`
	Replicas int     `json:"replicas"`
	// Skipped says why nothing was measured (the CPU limit is not
	// enforced here, or the measurement failed); Rate is then the
	// scenario's own.
	Skipped string `json:"skipped,omitempty"`
	// ReplicaRPS is, per side, the 2xx answers per second of one replica
	// under its CPU limit, in the best second of MeasuredS seconds of a
	// load that kept InFlight requests waiting for it.
	ReplicaRPS map[string]float64 `json:"replica_rps,omitempty"`
	MeasuredS  float64            `json:"measured_s,omitempty"`
	InFlight   int                `json:"in_flight,omitempty"`
	// GeneratorRPS is what the runner can send per side: answers per
	// second counted through a balancer of its own to a server in its own
	// process, shared by the sides.
	GeneratorRPS float64 `json:"generator_rps,omitempty"`
	WantedRPS    float64 `json:"wanted_rps,omitempty"`
	// Rate is the rate offered: WantedRPS, bounded by GeneratorRPS.
	Rate float64 `json:"rate"`
}

// String says what calibration found, in a sentence.
func (c Calibration) String() string {
	if c.Skipped != "" {
		return fmt.Sprintf("Calibration: skipped (%s); the scenario's own rate, %g requests/s per side, was offered.", c.Skipped, c.Rate)
	}
	var each []string
	for _, name := range slices.Sorted(maps.Keys(c.ReplicaRPS)) {
		each = append(each, fmt.Sprintf("%s %.0f/s", name, c.ReplicaRPS[name]))
	}
	s := fmt.Sprintf("Calibration: one replica at its CPU limit answered %s (the best second of %.0f, with %d requests in flight); the runner could send %.0f/s per side; %g × %d replicas × the larger capacity = %.0f/s",
		strings.Join(each, ", "), c.MeasuredS, c.InFlight, c.GeneratorRPS, c.Factor, c.Replicas, c.WantedRPS)
	if c.Rate < c.WantedRPS {
		return s + fmt.Sprintf(", more than the runner can send: %g/s per side was offered, so the scale-out may gain less than %g×.", c.Rate, c.Factor)
	}
	return s + fmt.Sprintf(": %g requests/s per side was offered.", c.Rate)
}

// EventRecord is one thing the timeline or a live control did to one
// replica (or the session store) of one side.
type EventRecord struct {
	AtS     float64 `json:"at_s"`
	Kind    string  `json:"kind"`
	Side    string  `json:"side"`
	Replica string  `json:"replica"`
	TookMS  float64 `json:"took_ms"`
	Source  string  `json:"source"` // "scenario" or "control"
	// SessionsHeld is how many sessions the replica reported holding just
	// before it stopped (a restart, a scale-in: after it was drained) or in
	// the feed's last sample before it was killed: what went with it.
	SessionsHeld *float64 `json:"sessions_held,omitempty"`
	// SessionsInUse is how many of those a request had used lately (the
	// replica's statelab_sessions_in_use): sessions of users still using
	// them. The rest were idle, most of them abandoned by users who had
	// signed in again; they went too, but nobody missed them.
	SessionsInUse *float64 `json:"sessions_in_use,omitempty"`
	// Users is, for a client-restart, how many of the side's users lost
	// what their clients kept.
	Users int    `json:"users,omitempty"`
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// Costs is what one side paid for its way of keeping a sign-in, measured in
// the run: on the users' side, counted by their HTTP clients; on the
// servers' side, read from the replica processes themselves.
type Costs struct {
	load.UserCosts
	ServerCosts
}

// ServerCosts is what one side's replica processes spent, by their own
// account.
type ServerCosts struct {
	// IdentifyUSP50 and IdentifyUS are the median (estimated from the
	// buckets, as histogram_quantile does) and the mean of the time a
	// replica spent finding a request's member, found or not, over
	// Identifications requests, from every replica process's
	// statelab_identify_seconds histogram. Both are wall time in the
	// process: the mean also holds the moments a busy machine made the
	// process wait; the median mostly does not.
	IdentifyUSP50   float64 `json:"identify_us_p50"`
	IdentifyUS      float64 `json:"identify_us_mean"`
	Identifications int64   `json:"identifications"`
	// CPUSeconds is the CPU time (user and system) of every replica process
	// that lived in the run, by the kernel's account: it does not grow when
	// the machine is busy with something else, as a latency does.
	CPUSeconds float64 `json:"server_cpu_s"`
	// BalancedRequests counts the requests the balancer handed the
	// replicas, and CPUPerRequestUS is CPUSeconds divided by them.
	BalancedRequests int64   `json:"balanced_requests"`
	CPUPerRequestUS  float64 `json:"server_cpu_per_request_us"`
	// StoreCPUSeconds is the CPU time of the side's session store (its
	// redis-server processes), 0 for a side without one, and
	// StoreCPUPerRequestUS the same divided by BalancedRequests: the part of
	// the cost the replicas' own account does not show.
	StoreCPUSeconds      float64 `json:"store_cpu_s"`
	StoreCPUPerRequestUS float64 `json:"store_cpu_per_request_us"`
	// SharedRoundTrips counts the calls every replica process made to a
	// shared service to identify its callers and keep their sign-ins (each
	// process's statelab_shared_calls_total: session store commands to
	// redis, API keys looked up in the shared store), and
	// SharedRoundTripsPerRequest divides them by Identifications: what a
	// request pays in round trips for its strategy, counted, not assumed.
	SharedRoundTrips           int64   `json:"shared_round_trips"`
	SharedRoundTripsPerRequest float64 `json:"shared_round_trips_per_request"`
}

// Histogram is a Prometheus histogram read from a replica's /metrics, or
// the sum of several: the count and sum of the samples, and the cumulative
// count at each bucket's upper bound. Histograms of one metric share their
// bounds, so they add bucket by bucket.
type Histogram struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64
}

// Add returns h and o summed.
func (h Histogram) Add(o Histogram) Histogram {
	out := Histogram{Count: h.Count + o.Count, Sum: h.Sum + o.Sum, Buckets: map[float64]uint64{}}
	for b, n := range h.Buckets {
		out.Buckets[b] += n
	}
	for b, n := range o.Buckets {
		out.Buckets[b] += n
	}
	return out
}

// Quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: it finds the bucket that holds it and interpolates linearly inside
// it (from 0 for the first bucket). A quantile above the last bound is the
// last bound; an empty histogram's is 0.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var lo float64
	var below uint64
	for _, b := range slices.Sorted(maps.Keys(h.Buckets)) {
		n := h.Buckets[b]
		if float64(n) >= rank {
			if n == below {
				return b
			}
			return lo + (b-lo)*(rank-float64(below))/float64(n-below)
		}
		lo, below = b, n
	}
	return lo
}
