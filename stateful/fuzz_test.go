package stateful_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/stateful"
)

// fuzzHeldID is the one session the fuzzed store holds. A chosen id (put
// there by the test-only MemoryStore.Put) and a fixed signing time make its
// cookie the same in every fuzz worker and in the committed corpus.
const fuzzHeldID = "fuzz-held-session"

// fuzzSignedAt is when the seed cookies were signed; the store judges age
// by the held session's expiry, not by the cookie's timestamp.
const fuzzSignedAt = 1700000000

// FuzzSessionCookie sends arbitrary session cookie values to
// MemoryStore.Load. It must never panic, must say which of the three ways
// there is no session, and must find a session only for a cookie genuinely
// signed for the id it holds.
func FuzzSessionCookie(f *testing.F) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	store.Put(stateful.Session{ID: fuzzHeldID, Member: msAlice, Cart: []int64{1, 2}})

	valid := msSignedAt(msKey, stateful.CookieName, fuzzHeldID, fuzzSignedAt)
	if _, err := store.Load(msRequest(&http.Cookie{Name: stateful.CookieName, Value: valid})); err != nil {
		f.Fatalf("the seed cookie finds no session: %v", err)
	}
	for _, seed := range []string{
		valid,
		strings.TrimRight(valid, "="),
		valid[:len(valid)-4],
		valid + ";theme=dark",
		`"` + valid + `"`,
		msSignedAt(msKey, stateful.CookieName, "unknown-session", fuzzSignedAt),
		msSignedAt(msKey, "other_cookie", fuzzHeldID, fuzzSignedAt),
		msSignedAt(msOtherKey, stateful.CookieName, fuzzHeldID, fuzzSignedAt),
		msSignedAt(msKey, stateful.CookieName, fuzzHeldID, time.Now().Add(365*24*time.Hour).Unix()),
		"",
		"x",
		"====",
		"MTcwMDAwMDAwMHxhYmN8",
		"a|b|c|d",
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "/api/cart", nil)
		r.Header.Set("Cookie", stateful.CookieName+"="+value)
		sess, err := store.Load(r)
		if err != nil {
			if !errors.Is(err, stateful.ErrNoCookie) && !errors.Is(err, stateful.ErrInvalidCookie) && !errors.Is(err, stateful.ErrSessionLost) {
				t.Fatalf("Load(%q): got error %v, want ErrNoCookie, ErrInvalidCookie or ErrSessionLost", value, err)
			}
			if sess != nil {
				t.Fatalf("Load(%q) failed with %v but returned session %+v", value, err, sess)
			}
			if _, cerr := r.Cookie(stateful.CookieName); errors.Is(err, stateful.ErrNoCookie) != (cerr != nil) {
				t.Fatalf("Load(%q): got error %v, but the request's cookie lookup says %v", value, err, cerr)
			}
		} else {
			// base64 lets several spellings decode to one signed id, so
			// the oracle is the signed id, not the cookie's bytes.
			if sess.ID != fuzzHeldID {
				t.Fatalf("Load(%q) found session %q; the store holds only %q", value, sess.ID, fuzzHeldID)
			}
			if sess.Member != msAlice {
				t.Fatalf("Load(%q): got member %v, want %v", value, sess.Member, msAlice)
			}
		}
		if got := store.Len(); got != 1 {
			t.Fatalf("after Load(%q): got Len %v, want 1: a lookup must not add or drop sessions", value, got)
		}
	})
}
