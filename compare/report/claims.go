package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
)

// The lesson's claims (docs/LESSON.md, "Every claim, and where it is
// shown"): four benefits of a stateless server and four costs.
const (
	ClaimScalability  = "scalability"
	ClaimReliability  = "reliability"
	ClaimSimplicity   = "simplicity"
	ClaimVisibility   = "visibility"
	ClaimBytes        = "bytes-per-request"
	ClaimAuth         = "auth-per-request"
	ClaimConversation = "no-server-conversation"
	ClaimRevocation   = "revocation"
)

// The verdicts a claim can get from a run.
const (
	Held        = "held"
	NotHeld     = "did not hold"
	NotMeasured = "not measured"
)

// The answers to "after logout or key revocation, is the old credential
// refused?", as the matrix's revocation probe gives them.
const (
	RevokedAtOnce      = "at once"      // the old credential was refused right after
	RevokedAfterExpiry = "after expiry" // nothing can revoke it: it works until it expires
	RevokedNever       = "never"        // the revocation answered OK, yet the old credential still works
	RevokedUnknown     = "unknown"      // the probe could not tell
)

// Claim is one of the lesson's claims, judged by the numbers one run
// measured: what each side measured, the verdict those numbers give, and
// why, in numbers. Nothing in it is written ahead of the run.
type Claim struct {
	ID string `json:"id"`
	// Claim is the claim in the lesson's words.
	Claim string `json:"claim"`
	// Measured says, per side, what the run measured for the claim.
	Measured map[string]string `json:"measured"`
	Verdict  string            `json:"verdict"`
	Why      string            `json:"why"`
}

// claimWords are the claims in the lesson's words, in the order tables
// show them.
var claimWords = []struct{ id, words string }{
	{ClaimScalability, "Scalability: any replica can answer any request, so a replica added takes its share at once"},
	{ClaimReliability, "Reliability: a replica that stops loses no one's sign-in"},
	{ClaimSimplicity, "Simplicity: no sessions to store, share or lose on the server"},
	{ClaimVisibility, "Visibility: one request says who is asking, without a lookup"},
	{ClaimBytes, "Cost: more bytes in every request"},
	{ClaimAuth, "Cost: authentication on every request"},
	{ClaimConversation, "Cost: the client keeps the conversation and sends it"},
	{ClaimRevocation, "Cost: a self-contained token cannot be recalled"},
}

// Evidence is what one side of a run measured that bears on the claims.
// Claims reads it from a Report; the walkthrough and the matrix fill it from
// what they measured themselves.
type Evidence struct {
	Side      string
	Stateless bool
	// Mistake is true for a strategy deployed wrong on purpose (every
	// replica with its own secret): what it measured is shown, but a claim
	// about a working deployment is not judged by it.
	Mistake bool

	// ScaleOut is what the first scale-out did on this side; nil without
	// one.
	ScaleOut *ScaleEvidence

	// Stops counts the events that stopped one of the side's replicas or
	// its session store (a restart, a crash, a scale-in), and LostAtStops
	// the sign-ins its users lost from each until the next event.
	Stops       int
	LostAtStops int64

	// Parts are the strategy's moving parts; SessionsHeld is the most
	// sessions its replicas said they held at once, nil when none of them
	// counts any (a stateless server keeps none).
	Parts        strategy.Parts
	SessionsHeld *float64

	// Observed is one authenticated request as an observer saw it; nil
	// when none was observed.
	Observed *load.ObservedRequest

	// Sized counts the requests whose bytes were counted; CredentialBytes
	// and RoutingBytes are, per request, what the credential and the
	// balancer's routing cookies took.
	Sized           int64
	CredentialBytes float64
	RoutingBytes    float64

	// Identifications counts the requests whose caller a replica looked
	// for, IdentifyUS the typical time it took (a run's median, the
	// walkthrough's mean), and RoundTrips the calls to
	// a shared service per request it cost.
	Identifications int64
	IdentifyUS      float64
	RoundTrips      float64

	// Journeys counts the journeys completed; RequestsPerJourney and
	// BytesPerJourney are what one took (the bytes a median).
	Journeys           int64
	RequestsPerJourney float64
	BytesPerJourney    float64

	// Revocation is what the revocation probe saw (RevokedAtOnce, ...),
	// "" when nothing was revoked.
	Revocation string
}

// ScaleEvidence is what a scale-out did on one side: how much of the
// requests the new replicas took, and, under an open-loop load, what the
// side carried before and after.
type ScaleEvidence struct {
	From, To int // replicas before and after
	// AddedShare is the share of the requests after the scale-out that
	// the new replicas took, all of them together; FairShare is theirs by
	// count, (To−From)/To.
	AddedShare, FairShare float64
	// Capacity is true when the side had an open-loop load, so that
	// Before and After (2xx per second in the settled phases around the
	// scale-out) and Offered (the rate offered before it) say what the
	// replicas could carry.
	Capacity               bool
	Before, After, Offered float64
}

// Conditions are what the run's identification times were measured
// under: the read cache off, or concurrent writes emptying it.
type Conditions struct {
	NoReadCache bool
	// WritesPerS counts the borrows and returns of every side per second:
	// each commit empties every replica's read cache.
	WritesPerS float64
}

// Saturated reports whether the offered load was more than the replicas
// before the scale-out carried: only then can a scale-out add throughput.
func (s *ScaleEvidence) Saturated() bool { return s.Capacity && s.Before < 0.9*s.Offered }

// Claims judges each of the lesson's claims by what rep measured.
func Claims(rep *Report) []Claim {
	var ev []Evidence
	for _, name := range rep.SideOrder {
		ev = append(ev, rep.Evidence(name))
	}
	return Judge(ev, rep.Conditions())
}

// stopKinds are the event kinds that stop a replica or a session store.
var stopKinds = []string{scenario.ActionRestart, scenario.ActionCrash, scenario.KindScaleIn, scenario.ActionRestartStore}

// Evidence reads one side's evidence from the report.
func (rep *Report) Evidence(name string) Evidence {
	s := rep.Sides[name]
	e := Evidence{Side: name, Stateless: s.Server == strategy.Stateless, Mistake: s.OwnSecrets, Parts: s.Strategy.Parts(),
		Observed: s.Costs.Observed, Sized: s.Costs.Requests, CredentialBytes: s.Costs.CredentialBytesMean, RoutingBytes: s.Costs.RoutingCookieBytesMean,
		Identifications: s.Costs.Identifications, IdentifyUS: s.Costs.IdentifyUSP50, RoundTrips: s.Costs.SharedRoundTripsPerRequest,
		Journeys: s.JourneysCompleted, BytesPerJourney: s.Costs.JourneyBytesP50, Revocation: rep.Revocations[name]}
	if e.Journeys > 0 {
		e.RequestsPerJourney = float64(s.Requests) / float64(e.Journeys)
	}
	for _, ev := range rep.Events {
		if ev.Side == name && ev.Replica != "" && ev.Error == "" && slices.Contains(stopKinds, ev.Kind) {
			e.Stops++
		}
	}
	for _, l := range rep.Losses {
		if sl, ok := l.Sides[name]; ok && slices.Contains(stopKinds, l.Kind) {
			e.LostAtStops += sl.SessionsLost
		}
	}
	for _, p := range rep.Series[name] {
		var held float64
		counted := false
		for _, r := range p.Replicas {
			if r.Sessions != nil {
				held += *r.Sessions
				counted = true
			}
		}
		if counted && (e.SessionsHeld == nil || held > *e.SessionsHeld) {
			e.SessionsHeld = &held
		}
	}
	e.ScaleOut = scaleEvidence(rep, name)
	return e
}

// scaleEvidence reads what the side's first scale-out did: the share its
// new replicas took in the balance window after it, and with an open-loop
// load the settled phases before and after it.
func scaleEvidence(rep *Report, name string) *ScaleEvidence {
	s := rep.Sides[name]
	added := map[string]bool{}
	for _, ev := range rep.Events {
		if ev.Side == name && ev.Kind == scenario.KindScaleOut && ev.Error == "" {
			added[ev.Replica] = true
		}
	}
	var w *BalanceWindow
	for i := range s.Balance {
		if s.Balance[i].After == scenario.KindScaleOut {
			w = &s.Balance[i]
			break
		}
	}
	if w == nil || len(w.Shares) == 0 || len(added) == 0 {
		return nil
	}
	se := &ScaleEvidence{To: len(w.Shares)}
	for _, id := range slices.Sorted(maps.Keys(w.Shares)) {
		if added[id] {
			se.AddedShare += w.Shares[id]
		} else {
			se.From++
		}
	}
	if se.From == se.To {
		return nil // the window is of a later scale-out's replicas
	}
	se.FairShare = float64(se.To-se.From) / float64(se.To)
	if rep.OpenLoop == nil {
		return se
	}
	var before, after *Phase
	for i := range s.Phases {
		p := &s.Phases[i]
		if p.During || p.Settling {
			continue
		}
		if p.After == scenario.KindScaleOut {
			after = p
			break
		}
		before = p
	}
	if before != nil && after != nil {
		se.Capacity, se.Before, se.After, se.Offered = true, before.ThroughputRPS, after.ThroughputRPS, before.OfferedRPS
	}
	return se
}

// Judge gives each claim its verdict from the sides' evidence. The rules
// are all here: a claim of a benefit holds when every stateless side shows
// it; a claim of a cost holds when every stateless side pays more than
// every stateful one. A claim the run has no evidence for is not measured,
// and says what evidence it would need. A side deployed wrong on purpose
// (Mistake) is measured but judges nothing.
func Judge(sides []Evidence, cond Conditions) []Claim {
	var less, full []Evidence
	for _, e := range sides {
		switch {
		case e.Mistake:
		case e.Stateless:
			less = append(less, e)
		default:
			full = append(full, e)
		}
	}
	var out []Claim
	for _, cw := range claimWords {
		c := Claim{ID: cw.id, Claim: cw.words, Measured: map[string]string{}}
		judge := judges[cw.id]
		for _, e := range sides {
			c.Measured[e.Side] = judge.measured(e)
		}
		switch {
		case len(less) == 0:
			c.Verdict, c.Why = NotMeasured, "no side of this run is a stateless server deployed as it should be"
		default:
			c.Verdict, c.Why = judge.verdict(less, full, cond)
		}
		out = append(out, c)
	}
	return out
}

// judge is one claim's rules: what a side's evidence says in words, and
// the verdict of all of it.
type judge struct {
	measured func(Evidence) string
	verdict  func(stateless, stateful []Evidence, cond Conditions) (string, string)
}

var judges = map[string]judge{
	ClaimScalability:  {scaleMeasured, scaleVerdict},
	ClaimReliability:  {reliabilityMeasured, reliabilityVerdict},
	ClaimSimplicity:   {simplicityMeasured, simplicityVerdict},
	ClaimVisibility:   {visibilityMeasured, visibilityVerdict},
	ClaimBytes:        {bytesMeasured, bytesVerdict},
	ClaimAuth:         {authMeasured, authVerdict},
	ClaimConversation: {conversationMeasured, conversationVerdict},
	ClaimRevocation:   {revocationMeasured, revocationVerdict},
}

// each applies f to every side and joins what it says.
func each(es []Evidence, f func(Evidence) string) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, e.Side+" "+f(e))
	}
	return strings.Join(parts, ", ")
}

// comparedTo adds the stateful sides' numbers to a sentence, when there
// are any.
func comparedTo(why string, stateful []Evidence, f func(Evidence) string) string {
	if len(stateful) == 0 {
		return why
	}
	return why + "; against " + each(stateful, f)
}

func pct(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }

func scaleMeasured(e Evidence) string {
	s := e.ScaleOut
	switch {
	case s == nil:
		return "no scale-out"
	case s.Saturated():
		return fmt.Sprintf("%.0f → %.0f 2xx/s from %d to %d replicas (%.2f×); new replicas took %s of requests (fair: %s)",
			s.Before, s.After, s.From, s.To, s.After/s.Before, pct(s.AddedShare), pct(s.FairShare))
	}
	return fmt.Sprintf("new replicas took %s of requests (fair: %s)", pct(s.AddedShare), pct(s.FairShare))
}

// scaledOK says whether a scale-out paid off: more throughput when the load
// exceeded the replicas before it, or else at least half a fair share of
// the requests for the new replicas at once.
func scaledOK(s *ScaleEvidence) bool {
	if s.Saturated() {
		return s.Before > 0 && s.After >= 1.25*s.Before
	}
	return s.AddedShare >= s.FairShare/2
}

func scaleVerdict(less, full []Evidence, _ Conditions) (string, string) {
	var failed []string
	for _, e := range less {
		if e.ScaleOut == nil {
			return NotMeasured, "no scale-out on " + e.Side + " in this scenario (the scaling and capacity scenarios have one)"
		}
		if !scaledOK(e.ScaleOut) {
			failed = append(failed, e.Side+" "+scaleMeasured(e))
		}
	}
	why := each(less, scaleMeasured)
	var unsaturated []string
	for _, e := range less {
		if e.ScaleOut.Capacity && !e.ScaleOut.Saturated() {
			unsaturated = append(unsaturated, fmt.Sprintf("%s's %d replicas already carried %.0f of the %.0f/s offered", e.Side, e.ScaleOut.From, e.ScaleOut.Before, e.ScaleOut.Offered))
		}
	}
	if len(unsaturated) > 0 {
		why += "; no throughput gain could show: " + strings.Join(unsaturated, ", ")
	}
	why = comparedTo(why, full, scaleMeasured)
	if len(failed) > 0 {
		return NotHeld, "the stateless side did not gain: " + why
	}
	return Held, why
}

// reliabilityMeasured says what a side lost at the events that stopped its
// replicas.
func reliabilityMeasured(e Evidence) string {
	if e.Stops == 0 {
		return "no replica stopped"
	}
	return fmt.Sprintf("%s lost after %s", count64(e.LostAtStops, "sign-in", "sign-ins"), count(e.Stops, "stop", "stops"))
}

func reliabilityVerdict(less, full []Evidence, _ Conditions) (string, string) {
	lost := false
	for _, e := range less {
		if e.Stops == 0 {
			return NotMeasured, "no event stopped a replica of " + e.Side + " (restart, crash, scale-in)"
		}
		lost = lost || e.LostAtStops > 0
	}
	why := comparedTo(each(less, reliabilityMeasured), full, reliabilityMeasured)
	if lost {
		return NotHeld, "the stateless side lost sign-ins: " + why
	}
	return Held, why
}

func simplicityMeasured(e Evidence) string {
	s := count(e.Parts.Count(), "moving part", "moving parts")
	switch {
	case e.SessionsHeld == nil:
		s += ", no session counted on a replica"
	default:
		s += fmt.Sprintf(", up to %s held by its replicas", count(int(*e.SessionsHeld), "session", "sessions"))
	}
	return s
}

func simplicityVerdict(less, full []Evidence, _ Conditions) (string, string) {
	if len(full) == 0 {
		return NotMeasured, "no stateful side to compare with"
	}
	fewest := full[0]
	for _, e := range full {
		if e.Parts.Count() < fewest.Parts.Count() {
			fewest = e
		}
	}
	why := comparedTo(each(less, simplicityMeasured), full, simplicityMeasured)
	for _, e := range less {
		if e.SessionsHeld != nil && *e.SessionsHeld > 0 {
			return NotHeld, "a stateless side's replicas held sessions: " + why
		}
		if e.Parts.Count() >= fewest.Parts.Count() {
			return NotHeld, fmt.Sprintf("%s needs as many moving parts as %s (%d): %s", e.Side, fewest.Side, fewest.Parts.Count(), why)
		}
	}
	return Held, why
}

func visibilityMeasured(e Evidence) string {
	o := e.Observed
	switch {
	case o == nil:
		return "no request observed"
	case o.Readable:
		return "readable: " + strings.Join(slices.Sorted(maps.Keys(o.Claims)), ", ")
	}
	return "opaque: " + strings.Join(o.Opaque, ", ")
}

func visibilityVerdict(less, full []Evidence, _ Conditions) (string, string) {
	var opaque []string
	for _, e := range less {
		if e.Observed == nil {
			return NotMeasured, "no authenticated request of " + e.Side + " was observed"
		}
		if !e.Observed.Readable {
			opaque = append(opaque, e.Side)
		}
	}
	why := comparedTo(each(less, visibilityMeasured), full, visibilityMeasured)
	if len(opaque) > 0 {
		return NotHeld, "the stateless credential of " + strings.Join(opaque, " and ") + " is an opaque id, which names its caller only to whoever looks it up in the shared database: " + why
	}
	return Held, why
}

func bytesMeasured(e Evidence) string {
	if e.Sized == 0 {
		return "not sized"
	}
	s := fmt.Sprintf("%.0f B credential", e.CredentialBytes)
	if e.RoutingBytes > 0 {
		s += fmt.Sprintf(" + %.0f B routing cookie", e.RoutingBytes)
	}
	return s + " per request"
}

// costVerdict holds a cost claim when every stateless side's value is
// above every stateful side's. measured says what each side paid, ok
// whether the side has the number at all.
func costVerdict(less, full []Evidence, value func(Evidence) float64, ok func(Evidence) bool, measured func(Evidence) string, missing string) (string, string) {
	if len(full) == 0 {
		return NotMeasured, "no stateful side to compare with"
	}
	for _, e := range append(slices.Clone(less), full...) {
		if !ok(e) {
			return NotMeasured, e.Side + ": " + missing
		}
	}
	why := comparedTo(each(less, measured), full, measured)
	for _, l := range less {
		for _, f := range full {
			if value(l) <= value(f) {
				return NotHeld, fmt.Sprintf("%s paid no more than %s: %s", l.Side, f.Side, why)
			}
		}
	}
	return Held, why
}

func bytesVerdict(less, full []Evidence, _ Conditions) (string, string) {
	return costVerdict(less, full, func(e Evidence) float64 { return e.CredentialBytes + e.RoutingBytes },
		func(e Evidence) bool { return e.Sized > 0 }, bytesMeasured, "no request was sized")
}

func authMeasured(e Evidence) string {
	if e.Identifications == 0 {
		return "no identification timed"
	}
	return fmt.Sprintf("%.1f µs to identify, %.2f shared round trips per request", e.IdentifyUS, e.RoundTrips)
}

func authVerdict(less, full []Evidence, cond Conditions) (string, string) {
	v, why := costVerdict(less, full, func(e Evidence) float64 { return e.IdentifyUS },
		func(e Evidence) bool { return e.Identifications > 0 }, authMeasured, "no identification was timed")
	if v == NotMeasured {
		return v, why
	}
	return v, why + "; " + cond.describe()
}

// describe says what the identification times were measured under.
func (c Conditions) describe() string {
	switch {
	case c.NoReadCache:
		return "measured with the read cache off: every key was looked up in the database"
	case c.WritesPerS > 0:
		return fmt.Sprintf("measured under concurrent writes (%.1f borrows and returns a second, each commit emptying every replica's read cache)", c.WritesPerS)
	}
	return "measured with the read cache on and no writes: a cached key costs no lookup, so the API key's price is understated"
}

func conversationMeasured(e Evidence) string {
	if e.Journeys == 0 {
		return "no journey completed"
	}
	return fmt.Sprintf("%.1f requests and %.0f B per journey (%d completed)", e.RequestsPerJourney, e.BytesPerJourney, e.Journeys)
}

func conversationVerdict(less, full []Evidence, _ Conditions) (string, string) {
	return costVerdict(less, full, func(e Evidence) float64 { return e.BytesPerJourney },
		func(e Evidence) bool { return e.Journeys > 0 && e.BytesPerJourney > 0 }, conversationMeasured, "no journey was completed and sized")
}

func revocationMeasured(e Evidence) string {
	if e.Revocation == "" {
		return "not revoked"
	}
	return "refused " + e.Revocation
}

func revocationVerdict(less, full []Evidence, _ Conditions) (string, string) {
	var lasting []string
	for _, e := range less {
		switch e.Revocation {
		case "", RevokedUnknown:
			return NotMeasured, "nothing of " + e.Side + " was revoked in this run (statelab matrix and the walkthrough's step 5 revoke a credential)"
		case RevokedAtOnce:
		default:
			lasting = append(lasting, e.Side)
		}
	}
	why := comparedTo(each(less, revocationMeasured), full, revocationMeasured)
	if len(lasting) == 0 {
		return NotHeld, "every stateless credential here is looked up, so it was recalled at once: " + why
	}
	return Held, why
}

// Conditions are what the run's identification times were measured under.
func (rep *Report) Conditions() Conditions {
	c := Conditions{NoReadCache: rep.NoReadCache}
	if rep.DurationS > 0 {
		for _, s := range rep.Sides {
			c.WritesPerS += float64(s.Borrows+s.Returns) / rep.DurationS
		}
	}
	return c
}

// claimsNote says how to read the claims table.
const claimsNote = "Each claim of the lesson, with what this run measured for each side and the verdict those numbers give: held, did not hold (and why), or not measured when the scenario has no evidence for it. The rules are in compare/report/claims.go: a benefit holds when every stateless side shows it; a cost holds when every stateless side pays more than every stateful one."

// markdownClaims writes the claims table of report.md.
func (rep *Report) markdownClaims(w io.Writer) {
	fmt.Fprintln(w, "\n## The lesson's claims, judged by this run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, claimsNote)
	fmt.Fprintln(w)
	fmt.Fprint(w, "| claim |")
	for _, name := range rep.SideOrder {
		fmt.Fprintf(w, " %s |", name)
	}
	fmt.Fprint(w, " verdict | why |\n|---|")
	for range rep.SideOrder {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w, "---|---|")
	for _, c := range rep.Claims {
		fmt.Fprintf(w, "| %s |", c.Claim)
		for _, name := range rep.SideOrder {
			fmt.Fprintf(w, " %s |", c.Measured[name])
		}
		fmt.Fprintf(w, " **%s** | %s |\n", c.Verdict, c.Why)
	}
}

// partsNote says where the moving parts come from.
const partsNote = "What each side's deployment runs, shares and keeps beyond its replicas, its balancer and the shared database, worked out from the strategy's own description (statelab strategies prints every strategy's)."

// partsRows are the lines of the moving parts table.
func partsRows() []tableRow {
	var out []tableRow
	for i, head := range strategy.PartsHead {
		out = append(out, tableRow{head, func(c SideReport) string { return c.Strategy.PartsRow()[i] }})
	}
	return out
}

// observerNote says what the observed requests are.
const observerNote = "One authenticated read of this run, as an access log or a proxy in front of the replicas would record it: a credential that names its caller is shown as it reads, an opaque one by its length only (no live credential is written here)."

// observedLine is a side's observed request, or why there is none.
func observedLine(c SideReport) string {
	if c.Costs.Observed == nil {
		return "no authenticated read was answered 2xx"
	}
	return "`" + c.Costs.Observed.Line + "`"
}
