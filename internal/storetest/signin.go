package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// signInT0 is a fixed instant the sign-in cases count from, so the window
// and the backoff do not depend on the clock.
var signInT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// admit asks db to admit one attempt and returns the ticket, or the wait
// of a refusal (any other error fails the test).
func admit(t testing.TB, db Store, email, device string, at time.Time) (library.SignInTicket, time.Duration) {
	t.Helper()
	tk, err := db.AdmitSignIn(context.Background(), library.SignInAttempt{Email: email, Device: device, At: at})
	if err == nil {
		return tk, 0
	}
	var e *library.Error
	if !errors.As(err, &e) || e.Code != library.ETOOMANYREQUESTS || e.RetryAfter <= 0 {
		t.Fatalf("AdmitSignIn(%s, %q, %v): got %v, want a ticket or %s with a wait", email, device, at, err, library.ETOOMANYREQUESTS)
	}
	return library.SignInTicket{}, e.RetryAfter
}

// fail admits one attempt, which must be admitted, and settles it failed.
func fail(t testing.TB, db Store, email, device string, at time.Time) {
	t.Helper()
	tk, wait := admit(t, db, email, device, at)
	if wait > 0 {
		t.Fatalf("attempt at %v: refused for %v, want admitted", at.Sub(signInT0), wait)
	}
	if err := db.SettleSignIn(context.Background(), tk, true); err != nil {
		t.Fatal(err)
	}
}

// testSignIn_Backoff: an untrusted client gets SignInFreeFailures failures
// at once, then waits SignInBackoffBase, doubling with each failure up to
// SignInBackoffMax; a sign-in that did not fail counts nothing; another
// account is not touched.
func testSignIn_Backoff(t *testing.T, be Backend) {
	db := be.fresh(t)
	ctx := context.Background()
	const email = "alice@example.com"

	// Right passwords, at one instant: none counts.
	for range 3 * library.SignInFreeFailures {
		tk, wait := admit(t, db, email, "", signInT0)
		if wait > 0 {
			t.Fatalf("a sign-in after sign-ins that did not fail: refused for %v", wait)
		}
		if err := db.SettleSignIn(ctx, tk, false); err != nil {
			t.Fatal(err)
		}
	}
	for range library.SignInFreeFailures {
		fail(t, db, email, "", signInT0)
	}
	at := signInT0
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		_, wait := admit(t, db, email, "", at)
		if wait != want {
			t.Fatalf("failure %d: wait %v, want %v", library.SignInFreeFailures+i+1, wait, want)
		}
		if _, early := admit(t, db, email, "", at.Add(want-time.Millisecond)); early <= 0 {
			t.Fatalf("failure %d: admitted %v early", library.SignInFreeFailures+i+1, time.Millisecond)
		}
		at = at.Add(want)
		fail(t, db, email, "", at)
	}
	// Malformed or refused attempts were never admitted, so never counted:
	// bob's account is untouched, and unknown accounts count the same.
	for _, other := range []string{"bob@example.com", "nobody@example.com"} {
		tk, wait := admit(t, db, other, "", at)
		if wait > 0 {
			t.Fatalf("%s: refused for %v after %s's failures", other, wait, email)
		}
		if err := db.SettleSignIn(ctx, tk, false); err != nil {
			t.Fatal(err)
		}
	}
	for range library.SignInFreeFailures {
		fail(t, db, "nobody@example.com", "", at)
	}
	if _, wait := admit(t, db, "nobody@example.com", "", at); wait != library.SignInBackoffBase {
		t.Errorf("an unknown account after %d failures: wait %v, want %v, as for a member", library.SignInFreeFailures, wait, library.SignInBackoffBase)
	}
}

// testSignIn_HourlyBudget: past the backoff, an untrusted client gets at
// most MaxUntrustedSignInFailures failures an hour, and the next one
// when the oldest leaves the window.
func testSignIn_HourlyBudget(t *testing.T, be Backend) {
	db := be.fresh(t)
	const email = "bob@example.com"
	at := signInT0
	failures := 0
	for end := signInT0.Add(library.SignInFailureWindow - time.Minute); at.Before(end); {
		tk, wait := admit(t, db, email, "", at)
		if wait > 0 {
			at = at.Add(wait)
			continue
		}
		if err := db.SettleSignIn(context.Background(), tk, true); err != nil {
			t.Fatal(err)
		}
		failures++
	}
	if failures != library.MaxUntrustedSignInFailures {
		t.Fatalf("failures admitted in %v: %d, want %d", library.SignInFailureWindow-time.Minute, failures, library.MaxUntrustedSignInFailures)
	}
	_, wait := admit(t, db, email, "", at)
	if next := at.Add(wait); next.Before(signInT0.Add(library.SignInFailureWindow)) {
		t.Errorf("over the budget: next try at %v, want once the first failure (at 0s) is an hour old", next.Sub(signInT0))
	}
	late := signInT0.Add(library.SignInFailureWindow + library.SignInBackoffMax)
	if _, wait := admit(t, db, email, "", late); wait > 0 {
		t.Errorf("an hour after the first failure: refused for %v", wait)
	}
}

// testSignIn_TrustedDevice: while untrusted clients wait, a device the
// account trusts is admitted, with MaxDeviceSignInFailures failures of
// its own, then waits like any client; its successes count nothing.
func testSignIn_TrustedDevice(t *testing.T, be Backend) {
	db := be.fresh(t)
	ctx := context.Background()
	const email = "alice@example.com"
	for range library.SignInFreeFailures {
		fail(t, db, email, "", signInT0)
	}
	if _, wait := admit(t, db, email, "", signInT0); wait == 0 {
		t.Fatal("an untrusted client after the free failures: admitted, want a wait")
	}
	for i := range 10 {
		tk, wait := admit(t, db, email, "device-1", signInT0)
		if wait > 0 {
			t.Fatalf("trusted device, sign-in %d: refused for %v", i+1, wait)
		}
		if err := db.SettleSignIn(ctx, tk, false); err != nil {
			t.Fatal(err)
		}
	}
	for range library.MaxDeviceSignInFailures {
		fail(t, db, email, "device-1", signInT0)
	}
	if _, wait := admit(t, db, email, "device-1", signInT0); wait == 0 {
		t.Errorf("a device after %d failures of its own: admitted, want a wait", library.MaxDeviceSignInFailures)
	}
	if _, wait := admit(t, db, email, "device-2", signInT0); wait > 0 {
		t.Errorf("another trusted device: refused for %v", wait)
	}
}

// testSignIn_AcrossHandles: attempts admitted at once through two handles
// (two replicas) are serialised by the store: exactly SignInFreeFailures
// of 40 are admitted, and a failure counted through one is seen through
// the other.
func testSignIn_AcrossHandles(t *testing.T, be Backend) {
	name := be.New(t)
	stores := []Store{be.Open(t, name), be.Open(t, name)}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%2].AdmitSignIn(context.Background(), library.SignInAttempt{Email: "alice@example.com", At: signInT0})
			if err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			} else if library.ErrorCode(err) != library.ETOOMANYREQUESTS {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if admitted != library.SignInFreeFailures {
		t.Errorf("admitted at once across two handles: %d of 40, want %d", admitted, library.SignInFreeFailures)
	}
	if _, wait := admit(t, stores[1], "alice@example.com", "", signInT0); wait != library.SignInBackoffBase {
		t.Errorf("through the other handle: wait %v, want %v", wait, library.SignInBackoffBase)
	}
}
