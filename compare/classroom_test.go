//go:build linux

package compare_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/internal/labtest"
)

// clManualScenario is a class's run in --manual mode: one replica per
// side, so every user is on it; half the users' clients restart, then,
// long enough later for their old sessions to count as idle, the replica
// restarts. The event times only give the tail: the run goes on for
// duration - the last event's time after the last event is fired.
const clManualScenario = `name: class
description: a client-restart, then a restart, each fired by hand
replicas: 1
duration: 4s
events:
  - at: 1s
    action: client-restart
    share: 0.5
  - at: 2s
    action: restart
    replica: 1
`

// TestManualClassroomRun runs statelab compare --manual as a teacher
// would: each event waits for POST /api/control/next. It checks that
// nothing happens before Next, that a client-restart costs both sides the
// same users' sign-ins and carts, that the replica's own count tells the
// sessions of users still using them from those the restarted clients
// left behind, and that the report says so in report.json and report.html.
func TestManualClassroomRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statelab and runs about 20 s of real replica processes")
	}
	const users = 6
	file := filepath.Join(t.TempDir(), "class.yaml")
	if err := os.WriteFile(file, []byte(clManualScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	r := rtStartRunner(t, labtest.Binary(t), "--manual", "--scenario", file, "--users", fmt.Sprint(users))
	next := func() (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/api/control/next", nil)
		resp, err := rtClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	// waitPending waits until the feed shows event index waiting, and
	// returns the feed.
	waitPending := func(index int) clFeed {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var f clFeed
			if b, err := rtGet("http://" + r.addr + "/api/feed"); err == nil && json.Unmarshal(b, &f) == nil &&
				f.Next != nil && f.Next.Index == index && f.Now.Phase == compare.PhaseWaiting {
				return f
			}
			select {
			case <-r.exited:
				t.Fatalf("the runner exited while event %d should wait: %v", index, r.err)
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("event %d was not waiting within 30 s", index)
			}
		}
	}

	f := waitPending(1)
	if !f.Manual || f.Next.Of != 2 || f.Next.Action != scenario.ActionClientRestart {
		t.Errorf("the feed says manual %v, next %+v; want manual, the client-restart, 1 of 2", f.Manual, f.Next)
	}
	// Past the event's time in the scenario, nothing has happened: it
	// waits for the teacher. Every user signs in meanwhile (a user still
	// signing in when its client restarts has no sign-in to lose).
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		f = waitPending(1)
		if len(f.Events) != 0 {
			t.Fatalf("events before anyone pressed Next: %+v", f.Events)
		}
		signedIn := f.Now.ElapsedS > 1.5
		for _, ss := range f.Now.Sides {
			signedIn = signedIn && ss.SignIns >= users
		}
		if signedIn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every user signed in within 20 s: %+v", f.Now.Sides)
		}
	}
	status, body := next()
	if status != http.StatusOK {
		t.Fatalf("next: %d %v", status, body)
	}
	if msg, _ := body["message"].(string); !strings.Contains(msg, "3 of 6 users' clients forgot their cookies, tokens and carts") {
		t.Errorf("next said %q, want how many users' clients forgot what", msg)
	}

	// More than stateful.InUseWindow later, the sessions the restarted
	// clients left behind are idle.
	waitPending(2)
	time.Sleep(11 * time.Second)
	status, body = next()
	if status != http.StatusOK {
		t.Fatalf("second next: %d %v", status, body)
	}
	if status, body := next(); status != http.StatusConflict {
		t.Errorf("a third next, with nothing left to fire: %d %v, want 409", status, body)
	}

	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the runner did not end the run 2 s after the last event")
	}
	if r.err != nil {
		t.Fatalf("the runner failed: %v\n%s", r.err, r.out.String())
	}
	var rep report.Report
	b, err := os.ReadFile(filepath.Join(r.report, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Manual {
		t.Error("report.json: manual is false")
	}
	left, right := rep.SideOrder[0], rep.SideOrder[1]
	for _, side := range rep.SideOrder {
		tot := rep.Sides[side].Totals
		// The same three users on each side were signed in, and lost it
		// with their clients; none of it is a server's loss.
		if tot.ClientSignInsLost != 3 {
			t.Errorf("%s: %d sign-ins the clients forgot, want 3", side, tot.ClientSignInsLost)
		}
	}
	var restart *report.EventRecord
	for i, e := range rep.Events {
		if e.Kind == scenario.ActionRestart && e.Side == left {
			restart = &rep.Events[i]
		}
	}
	if restart == nil || restart.SessionsHeld == nil || restart.SessionsInUse == nil {
		t.Fatalf("report.json has no restart of %s with the sessions its replica held: %+v", left, rep.Events)
	}
	// Every user was signed in on the only replica, and each of the three
	// restarted clients left a session behind there.
	if held, inUse := *restart.SessionsHeld, *restart.SessionsInUse; inUse != users || held-inUse != 3 {
		t.Errorf("the replica held %v sessions, %v in use, at its restart; want %d in use and 3 idle (the restarted clients')", held, inUse, users)
	}
	for _, side := range rep.SideOrder {
		c := rep.Sides[side].Costs
		if c.CredentialBytesMean <= 0 || c.CredentialBytesMean >= c.RequestBytesMean || c.Identifications == 0 || c.Reads == 0 {
			t.Errorf("%s: costs %+v; want the credential's bytes as a part of each request's, identifications timed, reads counted", side, c)
		}
	}
	if rep.Sides[right].SessionsLost != 0 {
		t.Errorf("%s lost %d sessions at a restart", right, rep.Sides[right].SessionsLost)
	}
	if got := len(rep.Losses); got != 3 {
		t.Errorf("report.json has %d loss windows, want 3 (the start, the client-restart, the restart): %+v", got, rep.Losses)
	}

	page, err := os.ReadFile(filepath.Join(r.report, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(page, []byte("<svg ")); n != 3 {
		t.Errorf("report.html has %d charts, want 3", n)
	}
	if !bytes.Contains(page, []byte(">"+left+"-1</text>")) {
		t.Errorf("report.html draws no sessions strip for %s-1", left)
	}
}

// clFeed is the part of GET /api/feed a manual run adds.
type clFeed struct {
	Manual bool                  `json:"manual"`
	Next   *compare.PendingEvent `json:"next"`
	Now    compare.Sample        `json:"now"`
	Events []report.EventRecord  `json:"events"`
}
