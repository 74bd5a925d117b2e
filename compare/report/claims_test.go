package report_test

import (
	"strings"
	"testing"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
)

// ceSides returns made-up evidence of a stateful side and a stateless one
// under which every claim holds: the stateless side scaled, lost nothing,
// has fewer parts and a readable JWT, and pays more bytes, more time and
// more bytes per journey, with a credential that outlives its revocation.
func ceSides() []report.Evidence {
	held := 40.0
	return []report.Evidence{
		{
			Side: "memory-sticky", Parts: rtStrategy("memory-sticky").Parts(), SessionsHeld: &held,
			ScaleOut: &report.ScaleEvidence{From: 2, To: 4, AddedShare: 0.03, FairShare: 0.5},
			Stops:    3, LostAtStops: 41,
			Observed: &load.ObservedRequest{Line: "GET /api/me 200 Cookie: statelab_session=<opaque, 88 characters>", Opaque: []string{"statelab_session cookie, 88 characters"}},
			Sized:    700, CredentialBytes: 120, RoutingBytes: 30,
			Identifications: 500, IdentifyUS: 13, RoundTrips: 0,
			Journeys: 40, RequestsPerJourney: 14, BytesPerJourney: 4000,
			Revocation: report.RevokedAtOnce,
		},
		{
			Side: "jwt", Stateless: true, Parts: rtStrategy("jwt").Parts(),
			ScaleOut: &report.ScaleEvidence{From: 2, To: 4, AddedShare: 0.49, FairShare: 0.5},
			Stops:    3,
			Observed: &load.ObservedRequest{Line: "GET /api/me 200 Authorization: Bearer <a JWT>", Readable: true, Claims: map[string]any{"sub": "7", "exp": 1.7e9}},
			Sized:    700, CredentialBytes: 320,
			Identifications: 500, IdentifyUS: 20, RoundTrips: 0,
			Journeys: 40, RequestsPerJourney: 10, BytesPerJourney: 5200,
			Revocation: report.RevokedAfterExpiry,
		},
	}
}

// TestJudge feeds made-up numbers both ways, and none, and checks that
// every claim gets each verdict from the numbers alone: held when they
// support it, did not hold (saying why, with the numbers) when they
// undercut it, and not measured when the run has no evidence.
func TestJudge(t *testing.T) {
	type change func(stateful, stateless *report.Evidence)
	tests := []struct {
		claim   string
		notHeld change
		none    change
		// why is a number the verdict must quote when it did not hold.
		why string
	}{
		{report.ClaimScalability,
			func(_, l *report.Evidence) { l.ScaleOut.AddedShare = 0.05 },
			func(_, l *report.Evidence) { l.ScaleOut = nil }, "5%"},
		{report.ClaimReliability,
			func(_, l *report.Evidence) { l.LostAtStops = 7 },
			func(_, l *report.Evidence) { l.Stops = 0 }, "7 sign-ins lost"},
		{report.ClaimSimplicity,
			func(f, l *report.Evidence) { f.Parts = rtStrategy("cookie").Parts() },
			nil, "1 moving part"},
		{report.ClaimVisibility,
			func(_, l *report.Evidence) {
				l.Observed = &load.ObservedRequest{Opaque: []string{"bearer token, 43 characters"}}
			},
			func(_, l *report.Evidence) { l.Observed = nil }, "43 characters"},
		{report.ClaimBytes,
			func(_, l *report.Evidence) { l.CredentialBytes = 62 },
			func(_, l *report.Evidence) { l.Sized = 0 }, "62 B credential"},
		{report.ClaimAuth,
			func(_, l *report.Evidence) { l.IdentifyUS = 9.5 },
			func(_, l *report.Evidence) { l.Identifications = 0 }, "9.5 µs"},
		{report.ClaimConversation,
			func(_, l *report.Evidence) { l.BytesPerJourney = 3100 },
			func(_, l *report.Evidence) { l.Journeys = 0 }, "3100 B per journey"},
		{report.ClaimRevocation,
			func(_, l *report.Evidence) { l.Revocation = report.RevokedAtOnce },
			func(_, l *report.Evidence) { l.Revocation = "" }, "refused at once"},
	}
	for _, c := range report.Judge(ceSides(), report.Conditions{WritesPerS: 3}) {
		if c.ID == "" || c.Claim == "" || len(c.Measured) != 2 || c.Why == "" {
			t.Errorf("claim %+v: every claim has an id, words, a measurement per side and a reason", c)
		}
	}
	find := func(sides []report.Evidence, id string) report.Claim {
		for _, c := range report.Judge(sides, report.Conditions{WritesPerS: 3}) {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("no claim %s", id)
		return report.Claim{}
	}
	if got := len(report.Judge(ceSides(), report.Conditions{})); got != len(tests) {
		t.Errorf("%d claims judged, want the lesson's %d", got, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.claim, func(t *testing.T) {
			if c := find(ceSides(), tt.claim); c.Verdict != report.Held {
				t.Errorf("supporting numbers: %s (%s), want %s", c.Verdict, c.Why, report.Held)
			}
			sides := ceSides()
			tt.notHeld(&sides[0], &sides[1])
			c := find(sides, tt.claim)
			if c.Verdict != report.NotHeld || !strings.Contains(c.Why, tt.why) {
				t.Errorf("undercutting numbers: %s (%s), want %s quoting %q", c.Verdict, c.Why, report.NotHeld, tt.why)
			}
			if tt.none != nil {
				sides := ceSides()
				tt.none(&sides[0], &sides[1])
				if c := find(sides, tt.claim); c.Verdict != report.NotMeasured {
					t.Errorf("no evidence: %s (%s), want %s", c.Verdict, c.Why, report.NotMeasured)
				}
			}
			// With no stateless side there is nothing to judge, nor with
			// one deployed wrong on purpose.
			if c := find(ceSides()[:1], tt.claim); c.Verdict != report.NotMeasured {
				t.Errorf("no stateless side: %s, want %s", c.Verdict, report.NotMeasured)
			}
			mistake := ceSides()
			mistake[1].Mistake = true
			if c := find(mistake, tt.claim); c.Verdict != report.NotMeasured || c.Measured["jwt"] == "" {
				t.Errorf("a stateless side with its own secrets: %s, measured %q; want %s, and its numbers shown", c.Verdict, c.Measured["jwt"], report.NotMeasured)
			}
		})
	}
}

// TestJudgeCapacity checks the scalability rule under an open-loop load:
// a throughput gain when the load exceeded the replicas, and no verdict on
// throughput when it did not.
func TestJudgeCapacity(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		before, after, offerd float64
		want, why             string
	}{
		{"gained", 270, 465, 480, report.Held, "270 → 465 2xx/s"},
		{"no gain", 270, 280, 480, report.NotHeld, "1.04×"},
		{"not saturated", 560, 560, 560, report.Held, "already carried 560 of the 560/s offered"},
	} {
		sides := ceSides()
		sides[1].ScaleOut = &report.ScaleEvidence{From: 2, To: 4, AddedShare: 0.5, FairShare: 0.5, Capacity: true, Before: tt.before, After: tt.after, Offered: tt.offerd}
		for _, c := range report.Judge(sides, report.Conditions{}) {
			if c.ID == report.ClaimScalability && (c.Verdict != tt.want || !strings.Contains(c.Why, tt.why)) {
				t.Errorf("%s: %s (%s), want %s quoting %q", tt.name, c.Verdict, c.Why, tt.want, tt.why)
			}
		}
	}
}

// TestJudgeConditions checks that the time to identify a caller says what
// it was measured under.
func TestJudgeConditions(t *testing.T) {
	for _, tt := range []struct {
		cond report.Conditions
		want string
	}{
		{report.Conditions{NoReadCache: true}, "read cache off"},
		{report.Conditions{WritesPerS: 4.25}, "concurrent writes (4.2 borrows and returns a second"},
		{report.Conditions{}, "read cache on and no writes"},
	} {
		for _, c := range report.Judge(ceSides(), tt.cond) {
			if c.ID == report.ClaimAuth && !strings.Contains(c.Why, tt.want) {
				t.Errorf("%+v: %q lacks %q", tt.cond, c.Why, tt.want)
			}
		}
	}
}

// TestClaimsOfAReport checks that Claims reads a report's numbers into the
// evidence: the fixed report's scale-out, restart, costs and journeys.
func TestClaimsOfAReport(t *testing.T) {
	rep := rtReport(true, false)
	got := map[string]report.Claim{}
	for _, c := range report.Claims(rep) {
		got[c.ID] = c
	}
	for _, tt := range []struct{ id, side, want string }{
		{report.ClaimReliability, rtLeft, "18 sign-ins lost after 1 stop"},
		{report.ClaimReliability, rtRight, "0 sign-ins lost after 1 stop"},
		{report.ClaimScalability, rtLeft, "new replicas took 3% of requests (fair: 33%)"},
		{report.ClaimBytes, rtLeft, "150 B credential + 15 B routing cookie per request"},
		{report.ClaimSimplicity, rtLeft, "2 moving parts, up to 7 sessions held by its replicas"},
		{report.ClaimSimplicity, rtRight, "1 moving part, no session counted on a replica"},
		{report.ClaimRevocation, rtRight, "not revoked"},
	} {
		if m := got[tt.id].Measured[tt.side]; m != tt.want {
			t.Errorf("%s, %s: measured %q, want %q", tt.id, tt.side, m, tt.want)
		}
	}
	if v := got[report.ClaimReliability].Verdict; v != report.Held {
		t.Errorf("reliability: %s, want %s", v, report.Held)
	}
	if v := got[report.ClaimRevocation].Verdict; v != report.NotMeasured {
		t.Errorf("revocation with nothing revoked: %s, want %s", v, report.NotMeasured)
	}
	// The scale-out of the right side failed, so its share is no evidence.
	if v := got[report.ClaimScalability].Verdict; v != report.NotMeasured {
		t.Errorf("scalability when the stateless side's scale-out failed: %s, want %s", v, report.NotMeasured)
	}
}
