package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
)

// Report is what a run found, as written to report.json.
type Report struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description"`
	StartedAt   time.Time `json:"started_at"`
	DurationS   float64   `json:"duration_s"`
	// Interrupted is true when the run was stopped (Ctrl-C) before the
	// scenario's end: the numbers cover only the part that ran.
	Interrupted bool `json:"interrupted"`
	// Manual is true when each event was fired by hand (--manual), not at
	// its time: the event times are when they were fired.
	Manual bool  `json:"manual"`
	Users  int   `json:"users_per_side"`
	Seed   int64 `json:"seed"`
	// OpenLoop is the open-loop load; absent without one.
	OpenLoop *OpenLoopInfo `json:"open_loop,omitempty"`
	// ReplicaCPU is the replicas' CPU limit and how the kernel enforced
	// it, or why it did not; absent when no limit was asked for.
	ReplicaCPU *cpulimit.Enforcement `json:"replica_cpu,omitempty"`
	// NoReadCache is true when the replicas ran with --read-cache=false.
	NoReadCache bool `json:"no_read_cache,omitempty"`
	// ReadCache is the replicas' read cache mode (library.ReadCache):
	// exact, off or notify.
	ReadCache string `json:"read_cache,omitempty"`
	// Store is the shared resource store the replicas ran on: sqlite or
	// postgres.
	Store string `json:"store"`
	// Network is what lies between the lab's processes.
	Network Network `json:"network"`
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
	// Losses says, event by event, what went with the replicas each event
	// stopped and what the users lost until the next event.
	Losses []EventLosses `json:"losses"`
	// Series is what the feed sampled once a second, per side (the last
	// HistoryLimit samples): the charts of report.html.
	Series map[string][]SeriesPoint `json:"series"`
	// Revocations is, per side, what a revocation probe saw
	// (RevokedAtOnce, ...); absent when nothing was revoked, as in a run of
	// statelab compare. The matrix probes it.
	Revocations map[string]string `json:"revocations,omitempty"`
	// Claims are the lesson's claims, each judged by this run's numbers
	// (see Claims); Write and PrintSummary work them out.
	Claims []Claim `json:"claims"`
}

// derive works out what follows from the counts: each side's borrows per
// second and moving parts, and the verdict on each claim. Write and
// PrintSummary call it, so that a report made by hand says the same.
func (rep *Report) derive() {
	for name, s := range rep.Sides {
		if rep.DurationS > 0 {
			s.BorrowsPerS = float64(s.Borrows) / rep.DurationS
			s.RequestsPerS = float64(s.Requests) / rep.DurationS
		}
		s.Parts = s.Strategy.Parts()
		rep.Sides[name] = s
	}
	rep.Claims = Claims(rep)
}

// SideReport is one side of a run: the strategy, what its users counted,
// how its balancer shared the requests out after each scale event, and the
// balancer's retries by the reason the try before them failed.
type SideReport struct {
	strategy.Strategy
	load.Totals
	// BorrowsPerS is what the users got done per second of the run: the
	// borrows answered 201. RequestsPerS is every request's rate, which a
	// chattier journey raises without getting more done.
	BorrowsPerS  float64 `json:"borrows_per_s"`
	RequestsPerS float64 `json:"requests_per_s"`
	// Parts are the strategy's moving parts.
	Parts   strategy.Parts  `json:"moving_parts"`
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
	// Replicas are the side's replicas at the end of the run.
	Replicas []Replica `json:"replicas"`
}

// HostsLocal is Network.Hosts when every process runs on this machine's
// one network stack, and reaches the others over loopback.
const HostsLocal = "local"

// HostsNetns is Network.Hosts when every replica, balancer and shared
// service runs on a network namespace of its own, with its own address in
// Network.Subnet, and reaches the others over the run's bridge.
const HostsNetns = "netns"

// Network is what lies between the lab's processes: where they run, and
// the links (package link) on every hop the lab controls — each balancer
// to its replicas, the replicas to each shared service.
type Network struct {
	// Hosts is where the processes run: HostsLocal or HostsNetns.
	Hosts string `json:"hosts"`
	// Subnet is, with HostsNetns, the run's subnet (CIDR): the runner's
	// address on the bridge and every host's are in it.
	Subnet string `json:"subnet,omitempty"`
	// LatencyMS is the one-way delay of every link, so a round trip
	// across one costs twice it; 0 when there are no links. JitterMS is
	// how far each delay may vary either way.
	LatencyMS float64 `json:"latency_ms"`
	JitterMS  float64 `json:"jitter_ms"`
}

// Replica is one replica process: its name, the address it listens on,
// and, with links, the address of the link its balancer reaches it through.
type Replica struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	Link string `json:"link,omitempty"`
}

// String says it in a sentence, for report.md.
func (n Network) String() string {
	where := "every process on this machine, over loopback"
	if n.Hosts == HostsNetns {
		where = "every replica, balancer and shared service on a network namespace of its own, each with its own address"
		if n.Subnet != "" {
			where += " in " + n.Subnet
		}
		where += ", over one bridge"
	}
	if n.LatencyMS <= 0 {
		return "Network: " + where + ", with no delay added between them."
	}
	jitter := ""
	if n.JitterMS > 0 {
		jitter = fmt.Sprintf(" (± %g ms)", n.JitterMS)
	}
	return fmt.Sprintf("Network: %s; every balancer-to-replica and replica-to-shared-service hop is a link that holds the bytes %g ms%s each way, so a round trip across one costs %g ms.",
		where, n.LatencyMS, jitter, 2*n.LatencyMS)
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

// BorrowsCheck says whether every one of n borrows answered 201 is in the
// database; missing lists those that are not, err a failed lookup.
func BorrowsCheck(n int, missing []int64, err error) Check {
	if err != nil {
		return Check{Detail: fmt.Sprintf("could not look the %s up: %v", count(n, "borrow answered 201", "borrows answered 201"), err)}
	}
	if len(missing) == 0 {
		if n == 1 {
			return Check{OK: true, Detail: "the one borrow answered 201 is in the database"}
		}
		return Check{OK: true, Detail: fmt.Sprintf("all %d borrows answered 201 are in the database", n)}
	}
	return Check{Detail: fmt.Sprintf("%d of %d borrows answered 201 are missing from the database: %s", len(missing), n, idList(missing))}
}

// CopiesChecks says whether any book has fewer than zero copies on the
// shelf, and whether each book's copies on the shelf and lent out add up
// to the copies it has.
func CopiesChecks(db library.Consistency, err error) (negative, addUp Check) {
	if err != nil {
		c := Check{Detail: "could not check: " + err.Error()}
		return c, c
	}
	negative = Check{OK: len(db.NegativeAvailability) == 0,
		Detail: fmt.Sprintf("none of the %s has fewer than zero copies on the shelf", count(db.Books, "book", "books"))}
	if !negative.OK {
		negative.Detail = fmt.Sprintf("%d of %d books have fewer than zero copies on the shelf: %s", len(db.NegativeAvailability), db.Books, idList(db.NegativeAvailability))
	}
	addUp = Check{OK: len(db.Mismatched) == 0,
		Detail: fmt.Sprintf("for every book, the copies on the shelf and the copies lent out (%d in all) add up to its copies", db.ActiveBorrows)}
	if !addUp.OK {
		addUp.Detail = fmt.Sprintf("for %d of %d books, the copies on the shelf and the copies lent out do not add up to its copies: %s", len(db.Mismatched), db.Books, idList(db.Mismatched))
	}
	return negative, addUp
}

// KeysChecks says whether an Idempotency-Key made a borrow twice, and
// whether each borrow a user was answered 201 for (answered) was named by
// one answer only and made once.
func KeysChecks(db library.Consistency, err error, answered []int64) (keys, once Check) {
	if err != nil {
		c := Check{Detail: "could not check: " + err.Error()}
		return c, c
	}
	keys = Check{OK: len(db.AppliedTwice) == 0,
		Detail: fmt.Sprintf("none of the %s made under an Idempotency-Key shares its key and book with another", count(db.KeyedBorrows, "borrow", "borrows"))}
	if !keys.OK {
		keys.Detail = fmt.Sprintf("%d of the %d borrows made under an Idempotency-Key share key and book with another: %s", len(db.AppliedTwice), db.KeyedBorrows, idList(db.AppliedTwice))
	}
	return keys, BorrowsOnce(answered, db.AppliedTwice)
}

// BorrowsOnce checks that no two answers a user got named one borrow, and
// that no borrow a user got was made twice under its key (the twin would
// be a copy lent that nobody was told of).
func BorrowsOnce(answered, appliedTwice []int64) Check {
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
	c := Check{OK: len(named) == 0 && len(doubled) == 0,
		Detail: fmt.Sprintf("each of the %s was named by one answer only and made once", count(len(answered), "borrow answered 201", "borrows answered 201"))}
	if c.OK {
		return c
	}
	var faults []string
	if len(named) > 0 {
		faults = append(faults, fmt.Sprintf("%d named by more than one answer (%s)", len(named), idList(named)))
	}
	if len(doubled) > 0 {
		faults = append(faults, fmt.Sprintf("%d made twice under one key (%s)", len(doubled), idList(doubled)))
	}
	c.Detail = fmt.Sprintf("of the %s, %s", count(len(answered), "borrow answered 201", "borrows answered 201"), strings.Join(faults, " and "))
	return c
}

// count says n things, in the singular for one.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// idList names the ids, "id 17" or "ids 17, 18, 19", at most 20 of them.
func idList(ids []int64) string {
	const most = 20
	var parts []string
	for i, id := range ids {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(ids)-most))
			break
		}
		parts = append(parts, strconv.FormatInt(id, 10))
	}
	if len(ids) == 1 {
		return "id " + parts[0]
	}
	return "ids " + strings.Join(parts, ", ")
}

// Write puts report.json, report.md and report.html in dir.
func (rep *Report) Write(dir string) error {
	rep.derive()
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
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	var page bytes.Buffer
	if err := rep.writeHTML(&page); err != nil {
		return fmt.Errorf("report.html: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "report.html"), page.Bytes(), 0o644)
}

// tableRow is a line of a table with one column per side.
type tableRow struct {
	label string
	cell  func(SideReport) string
}

// rows are the lines of the side-by-side table: what the users got done
// first, then how many requests it took and what became of them.
var rows = []tableRow{
	{"journeys completed", func(t SideReport) string { return fmt.Sprint(t.JourneysCompleted) }},
	{"borrows per second", func(t SideReport) string { return fmt.Sprintf("%.2f", t.BorrowsPerS) }},
	{"users who had to sign in again (forced re-logins)", func(t SideReport) string { return fmt.Sprint(t.Relogins) }},
	{"requests per second (secondary: a chattier journey sends more)", func(t SideReport) string { return fmt.Sprintf("%.1f", t.RequestsPerS) }},
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
	{"sign-ins the client forgot", func(t SideReport) string { return fmt.Sprint(t.ClientSignInsLost) }},
	{"cart items the client forgot", func(t SideReport) string { return fmt.Sprint(t.ClientCartItemsLost) }},
	{"borrows (201)", func(t SideReport) string { return fmt.Sprint(t.Borrows) }},
	{"balancer retries", func(t SideReport) string { return fmt.Sprint(t.LBRetries) }},
	{"balancer retries answered", func(t SideReport) string { return fmt.Sprint(t.LBRetriesSaved) }},
	{"user retries (same key)", func(t SideReport) string { return fmt.Sprint(t.UserRetries) }},
	{"latency p50 ms, all requests", func(t SideReport) string { return fmt.Sprintf("%.1f", t.LatencyMS.P50) }},
	{"latency p95 ms, all requests", func(t SideReport) string { return fmt.Sprintf("%.1f", t.LatencyMS.P95) }},
	{"latency p99 ms, all requests", func(t SideReport) string { return fmt.Sprintf("%.1f", t.LatencyMS.P99) }},
}

// costRows are the lines of the costs tables of report.md and report.html:
// what each side paid, like for like. Every value was measured in the run.
var costRows = []tableRow{
	{"request bytes, median", func(c SideReport) string { return fmt.Sprintf("%.0f", c.Costs.RequestBytesP50) }},
	{"of which the credential, mean", func(c SideReport) string { return fmt.Sprintf("%.0f", c.Costs.CredentialBytesMean) }},
	{"of which the balancer's routing cookie, mean", func(c SideReport) string { return fmt.Sprintf("%.0f", c.Costs.RoutingCookieBytesMean) }},
	{"bytes per whole journey, median", func(c SideReport) string { return fmt.Sprintf("%.0f", c.Costs.JourneyBytesP50) }},
	{"identifying the caller, µs per request (median)", func(c SideReport) string { return fmt.Sprintf("%.1f", c.Costs.IdentifyUSP50) }},
	{"identifying the caller, µs per request (mean)", func(c SideReport) string { return fmt.Sprintf("%.1f", c.Costs.IdentifyUS) }},
	{"server CPU per request, µs", func(c SideReport) string { return fmt.Sprintf("%.0f", c.Costs.CPUPerRequestUS) }},
	{"shared-service round trips per request", func(c SideReport) string { return fmt.Sprintf("%.2f", c.Costs.SharedRoundTripsPerRequest) }},
	{"authenticated reads p50 ms", func(c SideReport) string { return fmt.Sprintf("%.1f", c.Costs.ReadLatencyMS.P50) }},
	{"authenticated reads p99 ms", func(c SideReport) string { return fmt.Sprintf("%.1f", c.Costs.ReadLatencyMS.P99) }},
}

// costsNote says where each cost comes from, under the costs table.
const costsNote = "Like for like: request sizes are what the users' clients wrote on their connections (request line, headers, body), the credential is the part of them its sign-in took (the session cookie, or the Authorization header), and the routing cookie what a sticky balancer's own cookie took beside it, so the rest is what the same requests cost with neither. Identification time is each replica's own statelab_identify_seconds histogram, found or not; " + client.MePath + " and every other route do the same work on both sides apart from it. CPU is the replica processes' own user and system time, divided by the requests their balancer handed them. Shared-service round trips are the calls the replicas counted themselves making to identify callers and keep their sign-ins (redis commands of a session store, a pipeline as one; API keys looked up in the shared store, which its read cache may answer without a query), divided by the requests they identified; the calls of sign-ins and cart changes are in the count too. Read latency counts only authenticated GETs answered 2xx: sign-ins (bcrypt) and failures are left out, so a re-login storm does not pass for the price of a session."

// columns returns the two sides in column order.
func (rep *Report) columns() []SideReport {
	cols := make([]SideReport, 0, len(rep.SideOrder))
	for _, name := range rep.SideOrder {
		cols = append(cols, rep.Sides[name])
	}
	return cols
}

// PrintSummary writes the side-by-side table, the claims and the
// consistency verdict.
func (rep *Report) PrintSummary(w io.Writer) {
	rep.derive()
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
			fmt.Fprintf(tw, "%s\t", row.cell(c))
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
	fmt.Fprintln(w, "The lesson's claims, judged by this run's numbers:")
	for _, c := range rep.Claims {
		fmt.Fprintf(w, "  %-13s %s\n  %13s %s\n", c.Verdict, c.Claim, "", c.Why)
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
	fmt.Fprintf(w, "# statelab report: %s\n\n%s. Started %s, ran %.0f s with %d simulated users per side (seed %d).",
		rep.Scenario, strings.TrimSuffix(rep.Description, "."), rep.StartedAt.Format(time.RFC3339), rep.DurationS, rep.Users, rep.Seed)
	if rep.Manual {
		fmt.Fprint(w, " Each event was fired by hand (--manual): its time is when it was fired.")
	}
	if rep.Interrupted {
		fmt.Fprint(w, " The run was interrupted before the end of its scenario: the numbers cover only the part that ran.")
	}
	fmt.Fprint(w, "\n\n")
	cols := rep.columns()
	for _, c := range cols {
		fmt.Fprintf(w, "- **%s** (%s server, balancer affinity %s): the sign-in lives %s.\n", c.Name, c.Server, c.Affinity, c.Where)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every number below was counted from what the simulated users' HTTP clients received through each side's load balancer. Availability is ok / (requests − 409 conflicts): a 409 is the library correctly refusing a borrow another user won, not an outage.")
	fmt.Fprintln(w)
	mdTable(w, "", cols, rows)
	rep.markdownClaims(w)
	fmt.Fprintln(w, "\n## Phases: load, throughput, latency and CPU between events")
	fmt.Fprintln(w)
	rep.describeLoad(w)
	fmt.Fprintln(w, "A phase runs from one event to the next; an event that took a while (starting replicas, draining them) is a phase of its own, marked under way, and with an open-loop load so is the first deadline after it, marked settling: the requests that queued before the event end in it. A phase's requests are those that arrived in it, whenever they were answered, so a backlog built before a scale-out counts against the phase that built it. Offered counts them per second (open-loop arrivals included, sent or not), throughput those answered 2xx, borrows/s the borrows answered 201 as they happened; p50 and p99 are their latency from arrival to answer, timeouts those with no answer by their deadline (dropped ones included). Sessions lost and CPU are counted as they happened; the busiest replica's CPU is its mean use over the phase, as a share of its limit when the kernel enforced one.")
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
		fmt.Fprintf(w, "- **%s.** %s lost (%s with them), %s, %s of 401 invalid_token or invalid_session. ",
			c.Name, count64(c.SessionsLost, "session", "sessions"), count64(c.CartItemsLost, "cart item", "cart items"),
			count64(c.Relogins, "forced re-login", "forced re-logins"), count64(c.InvalidCredential, "answer", "answers"))
		fmt.Fprintf(w, "What breaks it: %s.", c.Breaks)
		if authed := c.OK - c.SignIns + c.SessionLost; c.SessionLost > 0 && authed > 0 {
			fmt.Fprintf(w, " Of %d requests made with a session (sign-ins left out), %d (%.0f%%) were session_lost.", authed, c.SessionLost, 100*float64(c.SessionLost)/float64(authed))
		}
		if c.ClientSignInsLost > 0 || c.ClientCartItemsLost > 0 {
			fmt.Fprintf(w, " Its users' own clients forgot %s and %s (client-restart): what a closed browser tab takes, on either side.",
				count64(c.ClientSignInsLost, "sign-in", "sign-ins"), count64(c.ClientCartItemsLost, "cart item", "cart items"))
		}
		fmt.Fprintln(w)
	}
	crashes := 0
	for _, e := range rep.Events {
		if e.Kind == scenario.ActionCrash {
			crashes++
		}
	}
	var fivexx, conn []string
	for _, c := range cols {
		fivexx = append(fivexx, fmt.Sprintf("%s %d", c.Name, c.Errors5xx))
		conn = append(conn, fmt.Sprintf("%s %d", c.Name, c.ConnErrors))
	}
	switch {
	case crashes > 0:
		var retried []string
		for _, c := range cols {
			retried = append(retried, fmt.Sprintf("%s %d of %d (users themselves: %d)", c.Name, c.LBRetriesSaved, c.LBRetries, c.UserRetries))
		}
		fmt.Fprintf(w, "- **Crashes.** The scenario killed replicas with SIGKILL (%s across both sides). A killed process cannot finish the requests it is working on. The balancer sends again, to another replica, those that are safe to send twice — reads, and writes that carry an Idempotency-Key, which the server makes once — and the users resend what no replica answered with the same key; retries a replica answered: %s. What was left shows as 5xx (%s) or connection errors (%s). A retry lands on a replica that never held a session kept in the killed process: that strategy loses the session all the same.",
			count(crashes, "kill", "kills"), strings.Join(retried, ", "), strings.Join(fivexx, ", "), strings.Join(conn, ", "))
	case len(rep.Events) > 0:
		fmt.Fprintf(w, "- **Planned stops only.** Replicas were drained before they stopped, so no request was cut off half-way. 5xx: %s; connection errors: %s.",
			strings.Join(fivexx, ", "), strings.Join(conn, ", "))
	}
	if len(rep.Events) > 0 {
		if rep.noBackend() {
			fmt.Fprint(w, " The 503 no_backend answers listed below came while a side had no replica in service (its only one was being replaced): draining protects the requests a replica already has, not the ones that arrive when none is left.")
		}
		fmt.Fprintln(w)
	}
	for _, c := range cols {
		for _, b := range c.Balance {
			d := b.describe()
			fmt.Fprintf(w, "- **Balance, %s, after the %s at %.0f s.** %s.\n", c.Name, b.After, b.FromS, strings.ToUpper(d[:1])+d[1:])
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
	fmt.Fprintln(w, costsNote+" Identification times were "+rep.Conditions().describe()+".")
	fmt.Fprintln(w)
	mdTable(w, "", cols, costRows)
	fmt.Fprintln(w, "\n## Moving parts")
	fmt.Fprintln(w)
	fmt.Fprintln(w, partsNote)
	fmt.Fprintln(w)
	mdTable(w, "", cols, partsRows())
	fmt.Fprintln(w, "\n## What one request tells an observer")
	fmt.Fprintln(w)
	fmt.Fprintln(w, observerNote)
	fmt.Fprintln(w)
	for _, c := range cols {
		fmt.Fprintf(w, "- **%s**: %s\n", c.Name, observedLine(c))
	}
	rep.markdownLosses(w)
	fmt.Fprintln(w, "\n## Consistency of the shared database")
	fmt.Fprintln(w)
	for _, c := range rep.Consistency.checks() {
		mark := "ok"
		if !c.c.OK {
			mark = "**FAILED**"
		}
		fmt.Fprintf(w, "- %s: %s — %s.\n", c.name, mark, c.c.Detail)
	}
	fmt.Fprintln(w, "\n## Events")
	fmt.Fprintln(w)
	if len(rep.Events) == 0 {
		fmt.Fprintln(w, "None: the scenario has no event, and no control was pressed.")
	} else {
		fmt.Fprintln(w, "| at (s) | kind | side | replica | took (ms) | source | note | error |\n|---:|---|---|---|---:|---|---|---|")
		for _, e := range rep.Events {
			fmt.Fprintf(w, "| %.1f | %s | %s | %s | %.0f | %s | %s | %s |\n", e.AtS, e.Kind, e.Side, e.Replica, e.TookMS, e.Source, e.Note, e.Error)
		}
	}
	fmt.Fprintln(w)
	if !rep.Manual && len(rep.Events) > 0 {
		fmt.Fprintf(w, "The timeline ran at most %.1f ms behind schedule. ", rep.Timeline.MaxLateMS)
	}
	fmt.Fprintf(w, "The feed's longest gap between two samples was %.0f ms.", rep.Timeline.FeedMaxGapMS)
	for _, c := range cols {
		if _, ok := rep.Timeline.ReadyMSP50[c.Name]; ok {
			fmt.Fprintf(w, " %s replicas answered ready %.0f ms after they were started (median; slowest %.0f ms).", c.Name, rep.Timeline.ReadyMSP50[c.Name], rep.Timeline.ReadyMSMax[c.Name])
		}
	}
	fmt.Fprintln(w)
}

// noBackend reports whether a balancer answered 503 no_backend: a request
// that found no replica in service.
func (rep *Report) noBackend() bool {
	for _, u := range rep.Unexpected {
		for m := range u {
			// The users write a 5xx as "METHOD /route: STATUS CODE".
			if strings.HasSuffix(m, " "+balancer.CodeNoBackend) {
				return true
			}
		}
	}
	return false
}

// mdTable writes a table with one column per side.
func mdTable(w io.Writer, head string, cols []SideReport, rows []tableRow) {
	fmt.Fprintf(w, "| %s", head)
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
			fmt.Fprintf(w, " | %s", row.cell(c))
		}
		fmt.Fprintln(w, " |")
	}
}

// markdownLosses writes the losses event by event.
func (rep *Report) markdownLosses(w io.Writer) {
	if len(rep.Losses) == 0 {
		return
	}
	fmt.Fprintln(w, "\n## Losses, event by event")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each row runs from an event to the next one (the first from the start of the run). \"Went with the replicas\" is what the replicas the event stopped said they held just before: sessions a request had used in the last 10 s, and idle ones, most of them left behind by users who had signed in again. The other columns are what the users counted in the row's stretch of time.")
	fmt.Fprintln(w)
	client := false
	for _, l := range rep.Losses {
		for _, sl := range l.Sides {
			client = client || sl.ClientSignInsLost > 0
		}
	}
	fmt.Fprint(w, "| from (s) | to (s) | event | side | went with the replicas: in use / idle | sessions lost | cart items lost | failed requests |")
	if client {
		fmt.Fprint(w, " sign-ins the clients forgot |")
	}
	fmt.Fprint(w, "\n|---:|---:|---|---|---:|---:|---:|---:|")
	if client {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, l := range rep.Losses {
		what := l.Kind
		if l.Kind == "start" {
			what = "(start)"
		}
		for _, name := range rep.SideOrder {
			sl := l.Sides[name]
			went := "–"
			if sl.InUseDropped != nil {
				went = fmt.Sprintf("%.0f / %.0f", *sl.InUseDropped, *sl.IdleDropped)
			}
			fmt.Fprintf(w, "| %.1f | %.1f | %s | %s | %s | %d | %d | %d |", l.AtS, l.ToS, what, name, went, sl.SessionsLost, sl.CartItemsLost, sl.Failed)
			if client {
				fmt.Fprintf(w, " %d |", sl.ClientSignInsLost)
			}
			fmt.Fprintln(w)
		}
	}
}

// count64 is count for counters.
func count64(n int64, one, many string) string { return count(int(n), one, many) }

// describeLoad says what load the users put on the sides and under which
// CPU limit the replicas ran.
func (rep *Report) describeLoad(w io.Writer) {
	if o := rep.OpenLoop; o != nil {
		fmt.Fprintf(w, "Open-loop load: %g requests/s per side from %d signed-in users, each request with a deadline of %.0f ms, at most %d outstanding (arrivals beyond that are dropped and counted as timeouts); %d simulated users per side besides.\n",
			o.Rate, o.RateUsers, o.DeadlineMS, o.MaxOutstanding, rep.Users)
		if o.Calibration != nil {
			fmt.Fprintln(w, o.Calibration)
		}
	}
	if e := rep.ReplicaCPU; e != nil {
		fmt.Fprintf(w, "Replica CPU: %s.\n", e)
	} else {
		fmt.Fprintln(w, "Replica CPU: no limit; every replica may use any core of the machine.")
	}
	if rep.Store == "postgres" {
		fmt.Fprintln(w, "Shared store: PostgreSQL; every replica reaches it over a TCP connection.")
	}
	if rep.Network.Hosts != "" {
		fmt.Fprintln(w, rep.Network)
	}
	if rep.NoReadCache {
		fmt.Fprintf(w, "Read cache: off (--read-cache=false): every read the replicas answered asked %s.\n", cmp.Or(map[string]string{"postgres": "PostgreSQL"}[rep.Store], "SQLite"))
	}
	if library.ReadCache(rep.ReadCache) == library.ReadCacheNotify {
		fmt.Fprintln(w, "Read cache: notify (--read-cache=notify) — answers from memory while no notification of a change has arrived; after a write on another replica, stale until its notification arrives.")
	}
}

// phaseRows is a side's phases as table rows, the header first.
func phaseRows(c SideReport, enf *cpulimit.Enforcement) [][]string {
	cpuHead := "busiest replica CPU (cores)"
	if enf != nil && enf.Enforced {
		cpuHead = "busiest replica CPU (of its limit)"
	}
	rows := [][]string{{"from s", "to s", "after", "replicas", "offered/s", "throughput/s", "borrows/s", "p50 ms", "p99 ms", "timeouts", "sessions lost", cpuHead}}
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
			fmt.Sprintf("%.1f", p.OfferedRPS), fmt.Sprintf("%.1f", p.ThroughputRPS), fmt.Sprintf("%.2f", p.BorrowsPerS),
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
