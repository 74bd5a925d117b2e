package compare

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/strategy"
)

// Report is what a run found, as written to report.json.
type Report struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description"`
	StartedAt   time.Time `json:"started_at"`
	DurationS   float64   `json:"duration_s"`
	// Interrupted is true when the run was stopped (Ctrl-C) before the
	// scenario's end: the numbers cover only the part that ran.
	Interrupted bool  `json:"interrupted"`
	Users       int   `json:"users_per_side"`
	Seed        int64 `json:"seed"`
	// OpenLoop is the open-loop load; absent without one.
	OpenLoop *OpenLoopInfo `json:"open_loop,omitempty"`
	// ReplicaCPU is the replicas' CPU limit and how the kernel enforced
	// it, or why it did not; absent when no limit was asked for.
	ReplicaCPU *cpulimit.Enforcement `json:"replica_cpu,omitempty"`
	// Sides holds each side's strategy and totals, keyed by the strategy's
	// name; SideOrder gives the columns' order.
	Sides     map[string]SideReport `json:"sides"`
	SideOrder []string              `json:"side_order"`
	// Unexpected lists, per side, what the 5xx answers and connection
	// errors said, and how often.
	Unexpected  map[string]map[string]int64 `json:"unexpected"`
	Events      []EventRecord               `json:"events"`
	Consistency Consistency                 `json:"consistency"`
	Timeline    TimelineStats               `json:"timeline"`
}

// SideReport is one side of a run: the strategy, what its users counted,
// how its balancer shared the requests out after each scale event, and the
// balancer's retries by the reason the try before them failed.
type SideReport struct {
	strategy.Strategy
	Totals
	Balance []BalanceWindow `json:"balance"`
	// Phases are the stretches between events: load offered, throughput,
	// latency, timeouts and each replica's CPU.
	Phases []Phase `json:"phases"`
	// ReplicaCPU is each replica's CPU over the whole run.
	ReplicaCPU []ReplicaCPUUse `json:"replica_cpu,omitempty"`
	// Costs is what the side paid for its way of keeping a sign-in.
	Costs Costs `json:"costs"`
	// LBRetryBy is the balancer's retries by the reason the try before
	// them failed.
	LBRetryBy map[string]balancer.RetryCount `json:"lb_retries_by_reason"`
}

// TimelineStats says how well the runner kept to its schedule and how fast
// replicas came up, both measured.
type TimelineStats struct {
	MaxLateMS    float64            `json:"max_late_ms"`
	FeedMaxGapMS float64            `json:"feed_max_gap_ms"`
	ReadyMSP50   map[string]float64 `json:"replica_ready_ms_p50"`
	ReadyMSMax   map[string]float64 `json:"replica_ready_ms_max"`
	ReplicaStart map[string]int     `json:"replica_starts"`
}

// Consistency is the end-of-run check of the shared database.
type Consistency struct {
	OK                     bool  `json:"ok"`
	BorrowsExist           Check `json:"borrows_exist"`
	NoNegativeAvailability Check `json:"no_negative_availability"`
	CopiesAddUp            Check `json:"copies_add_up"`
	// KeysAppliedOnce: no Idempotency-Key made the same borrow twice.
	KeysAppliedOnce Check `json:"keys_applied_once"`
	// BorrowsOnce: every borrow a user was answered 201 for was named by
	// one answer only, and made once.
	BorrowsOnce Check `json:"borrows_exactly_once"`
}

// checks returns the checks with what each says, in the order reports show
// them.
func (c Consistency) checks() []struct {
	name string
	c    Check
} {
	return []struct {
		name string
		c    Check
	}{
		{"every borrow answered 201 exists", c.BorrowsExist},
		{"every borrow answered 201 exists exactly once", c.BorrowsOnce},
		{"no idempotency key was applied twice", c.KeysAppliedOnce},
		{"no negative availability", c.NoNegativeAvailability},
		{"copies add up", c.CopiesAddUp},
	}
}

// Check is one invariant.
type Check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (r *Runner) report(ctx context.Context) *Report {
	r.mu.Lock()
	start, maxLate := r.start, r.maxLate
	r.mu.Unlock()
	rep := &Report{
		Scenario:    r.cfg.Scenario.Name,
		Description: r.cfg.Scenario.Description,
		StartedAt:   start.UTC(),
		DurationS:   r.elapsed().Seconds(),
		Users:       r.cfg.Users,
		Seed:        r.cfg.Seed,
		OpenLoop:    r.openLoopInfo(),
		ReplicaCPU:  r.enforcement(),
		Interrupted: ctx.Err() != nil,
		Sides:       map[string]SideReport{},
		Unexpected:  map[string]map[string]int64{},
		Events:      r.Events(),
		Timeline: TimelineStats{
			MaxLateMS:    float64(maxLate.Microseconds()) / 1000,
			FeedMaxGapMS: float64(r.feed.MaxGap().Microseconds()) / 1000,
			ReadyMSP50:   map[string]float64{},
			ReadyMSMax:   map[string]float64{},
			ReplicaStart: map[string]int{},
		},
	}
	var borrowIDs []int64
	for _, s := range r.sides {
		rep.Sides[s.name] = SideReport{Strategy: s.st, Totals: s.stats.Totals(), Balance: s.balance.windows(),
			Phases: s.phases.phases(s.stats, r.cpuLimit()), ReplicaCPU: r.replicaCPU(s),
			Costs: Costs{UserCosts: s.stats.UserCosts(), ServerCosts: r.serverCosts(s)}, LBRetryBy: s.stats.BalancerRetries()}
		rep.SideOrder = append(rep.SideOrder, s.name)
		rep.Unexpected[s.name] = s.stats.UnexpectedSamples()
		borrowIDs = append(borrowIDs, s.stats.BorrowIDs()...)
		d := s.sup.ReadyDurations()
		rep.Timeline.ReplicaStart[s.name] = len(d)
		if len(d) > 0 {
			slices.Sort(d)
			rep.Timeline.ReadyMSP50[s.name] = float64(d[len(d)/2].Microseconds()) / 1000
			rep.Timeline.ReadyMSMax[s.name] = float64(d[len(d)-1].Microseconds()) / 1000
		}
	}
	rep.Consistency = r.checkConsistency(context.WithoutCancel(ctx), borrowIDs)
	return rep
}

// checkConsistency checks the shared database after the run: every borrow a
// user was answered 201 for exists, and the copies add up.
func (r *Runner) checkConsistency(ctx context.Context, borrowIDs []int64) Consistency {
	var c Consistency
	var missing []int64
	var errs []string
	for _, id := range borrowIDs {
		ok, err := r.db.BorrowExists(ctx, id)
		if err != nil {
			errs = append(errs, err.Error())
			break
		}
		if !ok {
			missing = append(missing, id)
		}
	}
	c.BorrowsExist = Check{OK: len(missing) == 0 && len(errs) == 0,
		Detail: fmt.Sprintf("%d borrow(s) answered 201, %d missing from the database %v", len(borrowIDs), len(missing), missing)}
	if len(errs) > 0 {
		c.BorrowsExist.Detail += "; " + strings.Join(errs, "; ")
	}
	db, err := r.db.CheckConsistency(ctx)
	if err != nil {
		c.NoNegativeAvailability = Check{Detail: "could not check: " + err.Error()}
		c.CopiesAddUp, c.KeysAppliedOnce, c.BorrowsOnce = c.NoNegativeAvailability, c.NoNegativeAvailability, c.NoNegativeAvailability
	} else {
		c.NoNegativeAvailability = Check{OK: len(db.NegativeAvailability) == 0,
			Detail: fmt.Sprintf("%d books checked, %d with negative availability %v", db.Books, len(db.NegativeAvailability), db.NegativeAvailability)}
		c.CopiesAddUp = Check{OK: len(db.Mismatched) == 0,
			Detail: fmt.Sprintf("available copies + %d active borrows = copies for all but %d book(s) %v", db.ActiveBorrows, len(db.Mismatched), db.Mismatched)}
		c.KeysAppliedOnce = Check{OK: len(db.AppliedTwice) == 0,
			Detail: fmt.Sprintf("%d borrow(s) made under an Idempotency-Key, %d of them sharing key and book with another %v", db.KeyedBorrows, len(db.AppliedTwice), db.AppliedTwice)}
		c.BorrowsOnce = borrowsOnce(borrowIDs, db.AppliedTwice)
	}
	c.OK = c.BorrowsExist.OK && c.BorrowsOnce.OK && c.KeysAppliedOnce.OK && c.NoNegativeAvailability.OK && c.CopiesAddUp.OK
	return c
}

// borrowsOnce checks that no two answers a user got named one borrow, and
// that no borrow a user got was made twice under its key (the twin would
// be a copy lent that nobody was told of).
func borrowsOnce(answered, appliedTwice []int64) Check {
	seen := make(map[int64]bool, len(answered))
	var named, doubled []int64
	for _, id := range answered {
		if seen[id] {
			named = append(named, id)
		}
		seen[id] = true
		if slices.Contains(appliedTwice, id) {
			doubled = append(doubled, id)
		}
	}
	return Check{OK: len(named) == 0 && len(doubled) == 0,
		Detail: fmt.Sprintf("%d borrow(s) answered 201: %d named by more than one answer %v, %d made twice under one key %v", len(answered), len(named), named, len(doubled), doubled)}
}

// Write puts report.json and report.md in dir.
func (rep *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	rep.markdown(&md)
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644)
}

// rows are the lines of the side-by-side table.
var rows = []struct {
	label string
	value func(SideReport) string
}{
	{"requests", func(t SideReport) string { return fmt.Sprint(t.Requests) }},
	{"ok (2xx)", func(t SideReport) string { return fmt.Sprint(t.OK) }},
	{"availability", func(t SideReport) string { return fmt.Sprintf("%.4f", t.Availability) }},
	{"401 session_lost", func(t SideReport) string { return fmt.Sprint(t.SessionLost) }},
	{"401 login_required", func(t SideReport) string { return fmt.Sprint(t.LoginRequired) }},
	{"409 conflict (lost a race)", func(t SideReport) string { return fmt.Sprint(t.Conflicts) }},
	{"401 invalid token/session", func(t SideReport) string { return fmt.Sprint(t.InvalidCredential) }},
	{"other 4xx", func(t SideReport) string { return fmt.Sprint(t.Errors4xx) }},
	{"5xx", func(t SideReport) string { return fmt.Sprint(t.Errors5xx) }},
	{"connection errors", func(t SideReport) string { return fmt.Sprint(t.ConnErrors) }},
	{"timeouts (past the deadline)", func(t SideReport) string { return fmt.Sprint(t.Timeouts) }},
	{"sessions lost", func(t SideReport) string { return fmt.Sprint(t.SessionsLost) }},
	{"cart items lost", func(t SideReport) string { return fmt.Sprint(t.CartItemsLost) }},
	{"forced re-logins", func(t SideReport) string { return fmt.Sprint(t.Relogins) }},
	{"borrows (201)", func(t SideReport) string { return fmt.Sprint(t.Borrows) }},
	{"balancer retries", func(t SideReport) string { return fmt.Sprint(t.LBRetries) }},
	{"balancer retries answered", func(t SideReport) string { return fmt.Sprint(t.LBRetriesSaved) }},
	{"user retries (same key)", func(t SideReport) string { return fmt.Sprint(t.UserRetries) }},
	{"latency p50 ms", func(t SideReport) string { return fmt.Sprintf("%.1f", t.LatencyMS.P50) }},
	{"latency p95 ms", func(t SideReport) string { return fmt.Sprintf("%.1f", t.LatencyMS.P95) }},
	{"latency p99 ms", func(t SideReport) string { return fmt.Sprintf("%.1f", t.LatencyMS.P99) }},
}

// costRows are the lines of the costs table in report.md.
var costRows = []struct {
	label string
	value func(Costs) string
}{
	{"request bytes, median", func(c Costs) string { return fmt.Sprintf("%.0f", c.RequestBytesP50) }},
	{"bytes per whole journey, median", func(c Costs) string { return fmt.Sprintf("%.0f", c.JourneyBytesP50) }},
	{"identifying the caller, µs per request (median)", func(c Costs) string { return fmt.Sprintf("%.1f", c.IdentifyUSP50) }},
	{"identifying the caller, µs per request (mean)", func(c Costs) string { return fmt.Sprintf("%.1f", c.IdentifyUS) }},
	{"server CPU per request, µs", func(c Costs) string { return fmt.Sprintf("%.0f", c.CPUPerRequestUS) }},
	{"authenticated reads p50 ms", func(c Costs) string { return fmt.Sprintf("%.1f", c.ReadLatencyMS.P50) }},
	{"authenticated reads p99 ms", func(c Costs) string { return fmt.Sprintf("%.1f", c.ReadLatencyMS.P99) }},
}

// columns returns the two sides in column order.
func (rep *Report) columns() []SideReport {
	cols := make([]SideReport, 0, len(rep.SideOrder))
	for _, name := range rep.SideOrder {
		cols = append(cols, rep.Sides[name])
	}
	return cols
}

// PrintSummary writes the side-by-side table and the consistency verdict.
func (rep *Report) PrintSummary(w io.Writer) {
	fmt.Fprintf(w, "\nscenario %s: %s (%.0f s, %d users per side)\n", rep.Scenario, rep.Description, rep.DurationS, rep.Users)
	if rep.Interrupted {
		fmt.Fprintln(w, "(interrupted before the end of the scenario: the numbers cover only the part that ran)")
	}
	fmt.Fprintln(w)
	cols := rep.columns()
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c.Name)
	}
	fmt.Fprintln(tw)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t", row.label)
		for _, c := range cols {
			fmt.Fprintf(tw, "%s\t", row.value(c))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, c := range cols {
		u := rep.Unexpected[c.Name]
		for _, m := range slices.Sorted(maps.Keys(u)) {
			fmt.Fprintf(w, "%s: %d × %s\n", c.Name, u[m], m)
		}
	}
	for _, c := range cols {
		for _, b := range c.Balance {
			fmt.Fprintf(w, "%s: after the %s at %.0f s, %s\n", c.Name, b.After, b.FromS, b.describe())
		}
	}
	if rep.OpenLoop != nil || rep.ReplicaCPU != nil {
		// The phases are the capacity lesson; other runs keep the
		// terminal short and have them in the report.
		fmt.Fprintln(w)
		rep.describeLoad(w)
		for _, c := range cols {
			fmt.Fprintf(w, "\n%s, phase by phase:\n", c.Name)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			for _, row := range phaseRows(c, rep.ReplicaCPU) {
				fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
			}
			tw.Flush()
		}
	}
	fmt.Fprintln(w)
	if rep.Consistency.OK {
		fmt.Fprintln(w, "consistency: ok — every borrow answered 201 is in the database exactly once, no idempotency key was applied twice, and every book's copies add up")
	} else {
		fmt.Fprintln(w, "!!! CONSISTENCY CHECK FAILED !!!")
		for _, c := range rep.Consistency.checks() {
			if !c.c.OK {
				fmt.Fprintln(w, "  - "+c.c.Detail)
			}
		}
	}
}

// describe says in words how the window's requests were shared out.
func (b BalanceWindow) describe() string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(b.Shares)) {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", id, 100*b.Shares[id]))
	}
	if len(parts) == 0 {
		return "no requests reached a replica before the next event"
	}
	return fmt.Sprintf("requests until %.0f s: %s (imbalance %.2f: the busiest replica's share ÷ a fair share)", b.ToS, strings.Join(parts, ", "), b.Imbalance)
}

func (rep *Report) markdown(w io.Writer) {
	fmt.Fprintf(w, "# statelab report: %s\n\n%s. Started %s, ran %.0f s with %d simulated users per side (seed %d).\n\n",
		rep.Scenario, rep.Description, rep.StartedAt.Format(time.RFC3339), rep.DurationS, rep.Users, rep.Seed)
	cols := rep.columns()
	for _, c := range cols {
		fmt.Fprintf(w, "- **%s** (%s server, balancer affinity %s): the sign-in lives %s.\n", c.Name, c.Server, c.Affinity, c.Where)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every number below was counted from what the simulated users' HTTP clients received through each side's load balancer. Availability is ok / (requests − 409 conflicts): a 409 is the library correctly refusing a borrow another user won, not an outage.")
	fmt.Fprintln(w)
	fmt.Fprint(w, "|")
	for _, c := range cols {
		fmt.Fprintf(w, " | %s", c.Name)
	}
	fmt.Fprint(w, " |\n|---|")
	for range cols {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, row := range rows {
		fmt.Fprintf(w, "| %s", row.label)
		for _, c := range cols {
			fmt.Fprintf(w, " | %s", row.value(c))
		}
		fmt.Fprintln(w, " |")
	}
	fmt.Fprintln(w, "\n## Phases: load, throughput, latency and CPU between events")
	fmt.Fprintln(w)
	rep.describeLoad(w)
	fmt.Fprintln(w, "A phase runs from one event to the next; an event that took a while (starting replicas, draining them) is a phase of its own, marked under way, and with an open-loop load so is the first deadline after it, marked settling: the requests that queued before the event end in it. A phase's requests are those that arrived in it, whenever they were answered, so a backlog built before a scale-out counts against the phase that built it. Offered counts them per second (open-loop arrivals included, sent or not), throughput those answered 2xx; p50 and p99 are their latency from arrival to answer, timeouts those with no answer by their deadline (dropped ones included). Sessions lost and CPU are counted as they happened; the busiest replica's CPU is its mean use over the phase, as a share of its limit when the kernel enforced one.")
	for _, c := range cols {
		fmt.Fprintf(w, "\n**%s**\n\n", c.Name)
		for i, row := range phaseRows(c, rep.ReplicaCPU) {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat("---:|", len(row)))
			}
		}
	}
	fmt.Fprintln(w, "\n## What the numbers say")
	fmt.Fprintln(w)
	for _, c := range cols {
		fmt.Fprintf(w, "- **%s.** %d sessions lost (%d cart items with them), %d forced re-logins, %d answers of 401 invalid_token or invalid_session. ",
			c.Name, c.SessionsLost, c.CartItemsLost, c.Relogins, c.InvalidCredential)
		fmt.Fprintf(w, "What breaks it: %s.", c.Breaks)
		if authed := c.OK - c.SignIns + c.SessionLost; c.SessionLost > 0 && authed > 0 {
			fmt.Fprintf(w, " Of %d requests made with a session (sign-ins left out), %d (%.0f%%) were session_lost.", authed, c.SessionLost, 100*float64(c.SessionLost)/float64(authed))
		}
		fmt.Fprintln(w)
	}
	crashes := 0
	for _, e := range rep.Events {
		if e.Kind == ActionCrash {
			crashes++
		}
	}
	var fivexx, conn []string
	for _, c := range cols {
		fivexx = append(fivexx, fmt.Sprintf("%s %d", c.Name, c.Errors5xx))
		conn = append(conn, fmt.Sprintf("%s %d", c.Name, c.ConnErrors))
	}
	if crashes > 0 {
		var retried []string
		for _, c := range cols {
			retried = append(retried, fmt.Sprintf("%s %d of %d (users themselves: %d)", c.Name, c.LBRetriesSaved, c.LBRetries, c.UserRetries))
		}
		fmt.Fprintf(w, "- **Crashes.** The scenario killed replicas with SIGKILL (%d kill(s) across both sides). A killed process cannot finish the requests it is working on. The balancer sends again, to another replica, those that are safe to send twice — reads, and writes that carry an Idempotency-Key, which the server makes once — and the users resend what no replica answered with the same key; retries a replica answered: %s. What was left shows as 5xx (%s) or connection errors (%s). A retry lands on a replica that never held a session kept in the killed process: that strategy loses the session all the same.\n",
			crashes, strings.Join(retried, ", "), strings.Join(fivexx, ", "), strings.Join(conn, ", "))
	} else {
		fmt.Fprintf(w, "- **Planned stops only.** Replicas were drained before they stopped, so no request should fail on either side: 5xx %s; connection errors %s.\n",
			strings.Join(fivexx, ", "), strings.Join(conn, ", "))
	}
	for _, c := range cols {
		for _, b := range c.Balance {
			fmt.Fprintf(w, "- **Balance, %s, after the %s at %.0f s.** %s.\n", c.Name, b.After, b.FromS, strings.ToUpper(b.describe()[:1])+b.describe()[1:])
		}
	}
	for _, c := range cols {
		if len(rep.Unexpected[c.Name]) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nWhat %s's 5xx answers and connection errors said:\n\n", c.Name)
		for _, m := range slices.Sorted(maps.Keys(rep.Unexpected[c.Name])) {
			fmt.Fprintf(w, "- %d × %s\n", rep.Unexpected[c.Name][m], m)
		}
	}
	fmt.Fprintln(w, "\n## What each side paid")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Request sizes are what the users' clients wrote on their connections (request line, headers, body); identification time is each replica's own statelab_identify_seconds histogram; CPU is the replica processes' own user and system time, divided by the requests their balancer handed them.")
	fmt.Fprintln(w)
	fmt.Fprint(w, "|")
	for _, c := range cols {
		fmt.Fprintf(w, " | %s", c.Name)
	}
	fmt.Fprint(w, " |\n|---|")
	for range cols {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, row := range costRows {
		fmt.Fprintf(w, "| %s", row.label)
		for _, c := range cols {
			fmt.Fprintf(w, " | %s", row.value(c.Costs))
		}
		fmt.Fprintln(w, " |")
	}
	fmt.Fprintln(w, "\n## Consistency of the shared database")
	fmt.Fprintln(w)
	for _, c := range rep.Consistency.checks() {
		mark := "ok"
		if !c.c.OK {
			mark = "**FAILED**"
		}
		fmt.Fprintf(w, "- %s: %s — %s\n", c.name, mark, c.c.Detail)
	}
	fmt.Fprintln(w, "\n## Events\n\n| at (s) | kind | side | replica | took (ms) | source | note | error |\n|---:|---|---|---|---:|---|---|---|")
	for _, e := range rep.Events {
		fmt.Fprintf(w, "| %.1f | %s | %s | %s | %.0f | %s | %s | %s |\n", e.AtS, e.Kind, e.Side, e.Replica, e.TookMS, e.Source, e.Note, e.Error)
	}
	fmt.Fprintf(w, "\nThe timeline ran at most %.1f ms behind schedule; the feed's longest gap between two samples was %.0f ms.", rep.Timeline.MaxLateMS, rep.Timeline.FeedMaxGapMS)
	for _, c := range cols {
		if _, ok := rep.Timeline.ReadyMSP50[c.Name]; ok {
			fmt.Fprintf(w, " %s replicas answered ready %.0f ms after they were started (median; slowest %.0f ms).", c.Name, rep.Timeline.ReadyMSP50[c.Name], rep.Timeline.ReadyMSMax[c.Name])
		}
	}
	fmt.Fprintln(w)
}

// describeLoad says what load the users put on the sides and under which
// CPU limit the replicas ran.
func (rep *Report) describeLoad(w io.Writer) {
	if o := rep.OpenLoop; o != nil {
		fmt.Fprintf(w, "Open-loop load: %g requests/s per side from %d signed-in users, each request with a deadline of %.0f ms, at most %d outstanding (arrivals beyond that are dropped and counted as timeouts); %d simulated users per side besides.\n",
			o.Rate, o.RateUsers, o.DeadlineMS, o.MaxOutstanding, rep.Users)
	}
	if e := rep.ReplicaCPU; e != nil {
		fmt.Fprintf(w, "Replica CPU: %s.\n", e)
	} else {
		fmt.Fprintln(w, "Replica CPU: no limit; every replica may use any core of the machine.")
	}
}

// phaseRows is a side's phases as table rows, the header first.
func phaseRows(c SideReport, enf *cpulimit.Enforcement) [][]string {
	cpuHead := "busiest replica CPU (cores)"
	if enf != nil && enf.Enforced {
		cpuHead = "busiest replica CPU (of its limit)"
	}
	rows := [][]string{{"from s", "to s", "after", "replicas", "offered/s", "throughput/s", "p50 ms", "p99 ms", "timeouts", "sessions lost", cpuHead}}
	for _, p := range c.Phases {
		busiest := "-"
		if id, v := busiestReplica(p.ReplicaCPUCores); id != "" {
			busiest = fmt.Sprintf("%.2f %s", v, id)
			if share, ok := p.ReplicaCPUShare[id]; ok {
				busiest = fmt.Sprintf("%.0f%% %s", 100*share, id)
			}
		}
		after := p.After
		switch {
		case p.During:
			after += " (under way)"
		case p.Settling:
			after += " (settling)"
		}
		rows = append(rows, []string{
			fmt.Sprintf("%.1f", p.FromS), fmt.Sprintf("%.1f", p.ToS), after, fmt.Sprint(p.Replicas),
			fmt.Sprintf("%.1f", p.OfferedRPS), fmt.Sprintf("%.1f", p.ThroughputRPS),
			fmt.Sprintf("%.1f", p.P50MS), fmt.Sprintf("%.1f", p.P99MS),
			fmt.Sprint(p.Timeouts), fmt.Sprint(p.SessionsLost), busiest,
		})
	}
	return rows
}

// busiestReplica returns the replica with the highest CPU use.
func busiestReplica(cores map[string]float64) (string, float64) {
	id, best := "", -1.0
	for _, k := range slices.Sorted(maps.Keys(cores)) {
		if cores[k] > best {
			id, best = k, cores[k]
		}
	}
	return id, best
}
