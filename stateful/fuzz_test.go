package stateful_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/statelab/statelab/stateful"
)

// fuzzHeldID is the one session the fuzzed store holds. A chosen id (Save
// keeps an id that is already set) and a fixed signing time make its cookie
// the same in every fuzz worker and in the committed corpus.
const fuzzHeldID = "fuzz-held-session"

// fuzzSignedAt is when the seed cookies were signed; the store judges age
// by the held session's expiry, not by the cookie's timestamp.
const fuzzSignedAt = 1700000000

// FuzzSessionCookie sends arbitrary session cookie values to
// MemoryStore.New. It must never panic, must say which of the three ways
// there is no session, and must find a session only for a cookie genuinely
// signed for the id it holds.
func FuzzSessionCookie(f *testing.F) {
	clock := msNewClock()
	opts := sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	store := stateful.NewMemoryStore(msKey, opts, clock.Now)
	held := sessions.NewSession(store, stateful.CookieName)
	held.ID = fuzzHeldID
	held.Options = &opts
	held.Values["member"] = msAlice
	held.Values["cart"] = []int64{1, 2}
	if err := store.Save(httptest.NewRequest("POST", "/", nil), httptest.NewRecorder(), held); err != nil {
		f.Fatalf("Save: %v", err)
	}

	valid := msSignedAt(msKey, stateful.CookieName, fuzzHeldID, fuzzSignedAt)
	if _, err := store.New(msRequest(&http.Cookie{Name: stateful.CookieName, Value: valid}), stateful.CookieName); err != nil {
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
		sess, err := store.New(r, stateful.CookieName)
		if sess == nil {
			t.Fatalf("New(%q) returned a nil session (error %v)", value, err)
		}
		if err != nil {
			if !errors.Is(err, stateful.ErrNoCookie) && !errors.Is(err, stateful.ErrInvalidCookie) && !errors.Is(err, stateful.ErrSessionLost) {
				t.Fatalf("New(%q): got error %v, want ErrNoCookie, ErrInvalidCookie or ErrSessionLost", value, err)
			}
			if !sess.IsNew || len(sess.Values) != 0 {
				t.Fatalf("New(%q) failed with %v but returned IsNew %v and values %v", value, err, sess.IsNew, sess.Values)
			}
			if _, cerr := r.Cookie(stateful.CookieName); errors.Is(err, stateful.ErrNoCookie) != (cerr != nil) {
				t.Fatalf("New(%q): got error %v, but the request's cookie lookup says %v", value, err, cerr)
			}
		} else {
			// base64 lets several spellings decode to one signed id, so
			// the oracle is the signed id, not the cookie's bytes.
			if sess.IsNew || sess.ID != fuzzHeldID {
				t.Fatalf("New(%q) found session %q (IsNew %v); the store holds only %q", value, sess.ID, sess.IsNew, fuzzHeldID)
			}
			if sess.Values["member"] != msAlice {
				t.Fatalf("New(%q): got member %v, want %v", value, sess.Values["member"], msAlice)
			}
		}
		if got := store.Len(); got != 1 {
			t.Fatalf("after New(%q): got Len %v, want 1: a lookup must not add or drop sessions", value, got)
		}
	})
}
