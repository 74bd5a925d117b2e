package stateful_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/stateful"
)

// Helpers in this file start with "ms" (MemoryStore) so they cannot collide
// with helpers of other test files in this package.

var (
	msKey      = []byte("0123456789abcdef0123456789abcdef")
	msOtherKey = []byte("fedcba9876543210fedcba9876543210")
	msAlice    = library.Member{ID: 1, Email: "alice@example.com", Name: "Alice Liddell", Role: library.RoleMember}
	msOptions  = sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode}
)

// msClock is a clock a test moves by hand.
type msClock struct {
	mu sync.Mutex
	t  time.Time
}

func msNewClock() *msClock { return &msClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *msClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *msClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// msSave saves a new session holding values and returns its id and cookie.
func msSave(t testing.TB, store *stateful.MemoryStore, values map[any]any) (string, *http.Cookie) {
	t.Helper()
	sess := sessions.NewSession(store, stateful.CookieName)
	opts := msOptions
	sess.Options = &opts
	for k, v := range values {
		sess.Values[k] = v
	}
	rec := httptest.NewRecorder()
	if err := store.Save(httptest.NewRequest("POST", "/api/auth/login", nil), rec, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return sess.ID, msCookie(t, rec)
}

// msCookie returns the session cookie a response set.
func msCookie(t testing.TB, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == stateful.CookieName {
			return c
		}
	}
	t.Fatalf("response set no %s cookie; Set-Cookie: %q", stateful.CookieName, rec.Header().Values("Set-Cookie"))
	return nil
}

// msRequest returns a request that carries the cookies.
func msRequest(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/api/cart", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

// msSignedAt returns a genuine cookie value for id as securecookie would
// have signed it with key at the Unix time ts: the way to get a cookie from
// the past without waiting for it.
func msSignedAt(key []byte, name, id string, ts int64) string {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(id); err != nil {
		panic(err)
	}
	b := fmt.Appendf(nil, "%s|%d|%s|", name, ts, base64.URLEncoding.EncodeToString(buf.Bytes()))
	mac := hmac.New(sha256.New, key)
	mac.Write(b[:len(b)-1])
	b = append(b, mac.Sum(nil)...)[len(name)+1:]
	return base64.URLEncoding.EncodeToString(b)
}

func TestMemoryStoreNew(t *testing.T) {
	clock := msNewClock()
	store := stateful.NewMemoryStore(msKey, msOptions, clock.Now)
	id, cookie := msSave(t, store, map[any]any{"member": msAlice})

	// Another replica: the same key, its own memory.
	replica := stateful.NewMemoryStore(msKey, msOptions, clock.Now)
	_, replicaCookie := msSave(t, replica, map[any]any{"member": msAlice})
	// A server signing with another key.
	foreign := stateful.NewMemoryStore(msOtherKey, msOptions, clock.Now)
	_, foreignCookie := msSave(t, foreign, map[any]any{"member": msAlice})

	tampered := *cookie
	raw, err := base64.URLEncoding.DecodeString(cookie.Value)
	if err != nil {
		t.Fatalf("cookie value is not base64: %v", err)
	}
	raw[len(raw)-1] ^= 1 // one bit of the MAC
	tampered.Value = base64.URLEncoding.EncodeToString(raw)
	old := &http.Cookie{Name: stateful.CookieName, Value: msSignedAt(msKey, stateful.CookieName, "gone", time.Now().Add(-30*24*time.Hour).Unix())}

	tests := []struct {
		name    string
		cookies []*http.Cookie
		want    error
		wantID  string
	}{
		{"no cookie", nil, stateful.ErrNoCookie, ""},
		{"another cookie only", []*http.Cookie{{Name: "theme", Value: "dark"}}, stateful.ErrNoCookie, ""},
		{"own cookie", []*http.Cookie{cookie}, nil, id},
		{"another replica's cookie", []*http.Cookie{replicaCookie}, stateful.ErrSessionLost, ""},
		{"another key's cookie", []*http.Cookie{foreignCookie}, stateful.ErrInvalidCookie, ""},
		{"tampered cookie", []*http.Cookie{&tampered}, stateful.ErrInvalidCookie, ""},
		{"garbage cookie", []*http.Cookie{{Name: stateful.CookieName, Value: "not-a-cookie"}}, stateful.ErrInvalidCookie, ""},
		{"empty cookie", []*http.Cookie{{Name: stateful.CookieName, Value: ""}}, stateful.ErrInvalidCookie, ""},
		// An old genuine cookie whose session is gone is lost, not forged.
		{"month-old cookie", []*http.Cookie{old}, stateful.ErrSessionLost, "gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, err := store.New(msRequest(tt.cookies...), stateful.CookieName)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("New: got error %v, want %v", err, tt.want)
			}
			if sess == nil {
				t.Fatalf("New returned a nil session")
			}
			if got, want := sess.IsNew, tt.want != nil; got != want {
				t.Errorf("IsNew: got %v, want %v", got, want)
			}
			if tt.wantID != "" && sess.ID != tt.wantID {
				t.Errorf("ID: got %q, want %q", sess.ID, tt.wantID)
			}
			if tt.want != nil && len(sess.Values) != 0 {
				t.Errorf("Values of a new session: got %v, want none", sess.Values)
			}
		})
	}
}

func TestMemoryStoreRoundTrip(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	id, cookie := msSave(t, store, map[any]any{"member": msAlice, "cart": []int64{3, 1, 4}})

	sess, err := store.Get(msRequest(cookie), stateful.CookieName)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if sess.IsNew {
		t.Errorf("IsNew: got %v, want %v", sess.IsNew, false)
	}
	if sess.ID != id {
		t.Errorf("ID: got %q, want %q", sess.ID, id)
	}
	if got := sess.Values["member"]; got != msAlice {
		t.Errorf("member: got %v, want %v", got, msAlice)
	}
	if got, want := sess.Values["cart"], []int64{3, 1, 4}; !slices.Equal(got.([]int64), want) {
		t.Errorf("cart: got %v, want %v", got, want)
	}
	if got, want := sess.Options.MaxAge, msOptions.MaxAge; got != want {
		t.Errorf("Options.MaxAge: got %v, want %v", got, want)
	}

	// Saving the found session again keeps its id and its cookie working.
	sess.Values["cart"] = []int64{2}
	rec := httptest.NewRecorder()
	if err := store.Save(msRequest(cookie), rec, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	again, err := store.New(msRequest(msCookie(t, rec)), stateful.CookieName)
	if err != nil {
		t.Fatalf("New after a second Save: %v", err)
	}
	if again.ID != id {
		t.Errorf("ID after a second Save: got %q, want %q", again.ID, id)
	}
	if got, want := again.Values["cart"], []int64{2}; !slices.Equal(got.([]int64), want) {
		t.Errorf("cart after a second Save: got %v, want %v", got, want)
	}
	if got, want := store.Len(), 1; got != want {
		t.Errorf("Len: got %v, want %v", got, want)
	}
}

func TestMemoryStoreValuesAreCopies(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	sess := sessions.NewSession(store, stateful.CookieName)
	opts := msOptions
	sess.Options = &opts
	in := []int64{10, 20}
	sess.Values["cart"] = in
	rec := httptest.NewRecorder()
	if err := store.Save(httptest.NewRequest("POST", "/", nil), rec, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	cookie := msCookie(t, rec)

	// Changing what was saved, after the Save, must not reach the store.
	in[0] = -1
	sess.Values["extra"] = true

	first, err := store.New(msRequest(cookie), stateful.CookieName)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cart := first.Values["cart"].([]int64)
	cart[1] = -2                           // a handler changing its copy in place
	first.Values["cart"] = append(cart, 3) // and growing it without saving
	delete(first.Values, "cart")

	second, err := store.New(msRequest(cookie), stateful.CookieName)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, want := second.Values["cart"], []int64{10, 20}; !slices.Equal(got.([]int64), want) {
		t.Errorf("stored cart: got %v, want %v", got, want)
	}
	if _, ok := second.Values["extra"]; ok {
		t.Errorf("stored values: got %v, want no \"extra\"", second.Values)
	}
}

func TestMemoryStoreExpiry(t *testing.T) {
	clock := msNewClock()
	store := stateful.NewMemoryStore(msKey, msOptions, clock.Now)
	ttl := time.Duration(msOptions.MaxAge) * time.Second
	_, cookie := msSave(t, store, map[any]any{"member": msAlice})
	_, other := msSave(t, store, map[any]any{"member": msAlice})

	steps := []struct {
		advance time.Duration
		want    error
		wantLen int
	}{
		{0, nil, 2},
		{ttl - time.Second, nil, 2},
		{time.Second, stateful.ErrSessionLost, 1}, // New drops the expired session it found
		{time.Hour, stateful.ErrSessionLost, 1},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		sess, err := store.New(msRequest(cookie), stateful.CookieName)
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Fatalf("step %d: got error %v, want %v", i, err, s.want)
		}
		if got, want := sess.IsNew, s.want != nil; got != want {
			t.Errorf("step %d: IsNew: got %v, want %v", i, got, want)
		}
		if got := store.Len(); got != s.wantLen {
			t.Errorf("step %d: Len: got %v, want %v", i, got, s.wantLen)
		}
	}

	// The other expired session is never asked for again; the sweep of
	// the next Save (more than a minute after the last) drops it.
	msSave(t, store, map[any]any{"member": msAlice})
	if got, want := store.Len(), 1; got != want {
		t.Errorf("Len after the sweep: got %v, want %v", got, want)
	}
	if _, err := store.New(msRequest(other), stateful.CookieName); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("swept session: got error %v, want %v", err, stateful.ErrSessionLost)
	}
}

func TestMemoryStoreMaxAgeZeroKeepsSession(t *testing.T) {
	clock := msNewClock()
	opts := msOptions
	opts.MaxAge = 0 // a browser-session cookie
	store := stateful.NewMemoryStore(msKey, opts, clock.Now)
	sess := sessions.NewSession(store, stateful.CookieName)
	sess.Options = &opts
	sess.Values["member"] = msAlice
	rec := httptest.NewRecorder()
	if err := store.Save(httptest.NewRequest("POST", "/", nil), rec, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	clock.Advance(48 * time.Hour)
	msSave(t, store, nil) // sweeps
	if _, err := store.New(msRequest(msCookie(t, rec)), stateful.CookieName); err != nil {
		t.Errorf("New two days later with MaxAge 0: got error %v, want %v", err, nil)
	}
}

func TestMemoryStoreSaveNegativeMaxAgeDeletes(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	_, cookie := msSave(t, store, map[any]any{"member": msAlice})
	_, keep := msSave(t, store, map[any]any{"member": msAlice})

	sess, err := store.New(msRequest(cookie), stateful.CookieName)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sess.Options.MaxAge = -1
	rec := httptest.NewRecorder()
	if err := store.Save(msRequest(cookie), rec, sess); err != nil {
		t.Fatalf("Save with MaxAge -1: %v", err)
	}
	gone := msCookie(t, rec)
	if gone.Value != "" || gone.MaxAge >= 0 {
		t.Errorf("deleting cookie: got value %q MaxAge %v, want value \"\" and MaxAge < 0", gone.Value, gone.MaxAge)
	}
	if got, want := store.Len(), 1; got != want {
		t.Errorf("Len: got %v, want %v", got, want)
	}
	if _, err := store.New(msRequest(cookie), stateful.CookieName); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("New with the deleted session's cookie: got error %v, want %v", err, stateful.ErrSessionLost)
	}
	if _, err := store.New(msRequest(keep), stateful.CookieName); err != nil {
		t.Errorf("New with another session's cookie: got error %v, want %v", err, nil)
	}
}

func TestMemoryStoreCookie(t *testing.T) {
	tests := []struct {
		name string
		opts sessions.Options
	}{
		{"lax", msOptions},
		{"strict and secure", sessions.Options{Path: "/api", MaxAge: 60, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := stateful.NewMemoryStore(msKey, tt.opts, msNewClock().Now)
			sess := sessions.NewSession(store, stateful.CookieName)
			opts := tt.opts
			sess.Options = &opts
			sess.Values["member"] = msAlice
			sess.Values["cart"] = []int64{1, 2, 3}
			rec := httptest.NewRecorder()
			if err := store.Save(httptest.NewRequest("POST", "/", nil), rec, sess); err != nil {
				t.Fatalf("Save: %v", err)
			}
			c := msCookie(t, rec)
			checks := []struct {
				what      string
				got, want any
			}{
				{"Name", c.Name, stateful.CookieName},
				{"HttpOnly", c.HttpOnly, tt.opts.HttpOnly},
				{"Secure", c.Secure, tt.opts.Secure},
				{"SameSite", c.SameSite, tt.opts.SameSite},
				{"Path", c.Path, tt.opts.Path},
				{"MaxAge", c.MaxAge, tt.opts.MaxAge},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s: got %v, want %v", ch.what, ch.got, ch.want)
				}
			}
			// The cookie carries the signed id and nothing else.
			var id string
			if err := securecookie.New(msKey, nil).Decode(stateful.CookieName, c.Value, &id); err != nil {
				t.Fatalf("decode cookie: %v", err)
			}
			if id != sess.ID {
				t.Errorf("cookie holds: got %q, want the session id %q", id, sess.ID)
			}
		})
	}
}

func TestMemoryStoreLen(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	if got, want := store.Len(), 0; got != want {
		t.Errorf("Len of a new store: got %v, want %v", got, want)
	}
	var ids []string
	for i := range 5 {
		id, _ := msSave(t, store, map[any]any{"n": i})
		ids = append(ids, id)
	}
	if got, want := store.Len(), 5; got != want {
		t.Errorf("Len after 5 saves: got %v, want %v", got, want)
	}
	if got, want := len(slices.Compact(slices.Sorted(slices.Values(ids)))), 5; got != want {
		t.Errorf("distinct session ids: got %v, want %v", got, want)
	}
	store.Delete(ids[0])
	store.Delete("no such id")
	if got, want := store.Len(), 4; got != want {
		t.Errorf("Len after Delete: got %v, want %v", got, want)
	}
}

// TestMemoryStoreConcurrent is for -race: many requests save and read
// their own sessions and one shared session at once.
func TestMemoryStoreConcurrent(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	_, shared := msSave(t, store, map[any]any{"member": msAlice, "cart": []int64{1}})

	const workers, rounds = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				// The shared session: read it, change the copy, save it.
				sess, err := store.New(msRequest(shared), stateful.CookieName)
				if err != nil {
					errs <- fmt.Errorf("worker %d: shared session: %w", w, err)
					return
				}
				cart := sess.Values["cart"].([]int64)
				cart[0] = int64(w)
				sess.Values["cart"] = append(cart, int64(i))
				if err := store.Save(msRequest(shared), httptest.NewRecorder(), sess); err != nil {
					errs <- err
					return
				}

				// An own session: saved, then found with its own values.
				own := sessions.NewSession(store, stateful.CookieName)
				opts := msOptions
				own.Options = &opts
				own.Values["n"] = w*rounds + i
				rec := httptest.NewRecorder()
				if err := store.Save(httptest.NewRequest("POST", "/", nil), rec, own); err != nil {
					errs <- err
					return
				}
				got, err := store.New(msRequest(rec.Result().Cookies()...), stateful.CookieName)
				if err != nil {
					errs <- fmt.Errorf("worker %d: own session: %w", w, err)
					return
				}
				if got.Values["n"] != w*rounds+i {
					errs <- fmt.Errorf("worker %d: got n %v, want %v", w, got.Values["n"], w*rounds+i)
					return
				}
				if i%10 == 0 {
					store.Delete(got.ID)
				}
				_ = store.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every worker deleted 5 of its 50 own sessions; the shared one stays.
	if got, want := store.Len(), workers*(rounds-rounds/10)+1; got != want {
		t.Errorf("Len: got %v, want %v", got, want)
	}
}
