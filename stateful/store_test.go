package stateful_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

// msSave saves a new session holding cart and returns its id and cookie.
func msSave(t testing.TB, store stateful.SessionStore, cart ...int64) (string, *http.Cookie) {
	t.Helper()
	sess := &stateful.Session{Member: msAlice, Cart: cart}
	rec := httptest.NewRecorder()
	if err := store.Save(rec, httptest.NewRequest("POST", "/api/auth/login", nil), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if sess.ID == "" {
		t.Fatalf("Save left the new session without an id")
	}
	return sess.ID, msCookie(t, rec)
}

// msCookie returns the session cookie a response set.
func msCookie(t testing.TB, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == stateful.CookieName {
			if found != nil {
				t.Fatalf("response set %s twice; Set-Cookie: %q", stateful.CookieName, rec.Header().Values("Set-Cookie"))
			}
			found = c
		}
	}
	if found == nil {
		t.Fatalf("response set no %s cookie; Set-Cookie: %q", stateful.CookieName, rec.Header().Values("Set-Cookie"))
	}
	return found
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
	b := fmt.Appendf(nil, "%s|%d|%s|", name, ts, base64.URLEncoding.EncodeToString([]byte(id)))
	mac := hmac.New(sha256.New, key)
	mac.Write(b[:len(b)-1])
	b = append(b, mac.Sum(nil)...)[len(name)+1:]
	return base64.URLEncoding.EncodeToString(b)
}

// msTampered returns the cookie with one bit of its last byte flipped.
func msTampered(t testing.TB, c *http.Cookie) *http.Cookie {
	t.Helper()
	raw, err := base64.URLEncoding.DecodeString(c.Value)
	if err != nil {
		t.Fatalf("cookie value is not base64: %v", err)
	}
	raw[len(raw)-1] ^= 1
	return &http.Cookie{Name: c.Name, Value: base64.URLEncoding.EncodeToString(raw)}
}

func TestMemoryStoreLoad(t *testing.T) {
	clock := msNewClock()
	store := stateful.NewMemoryStore(msKey, msOptions, clock.Now)
	id, cookie := msSave(t, store)

	// Another replica: the same key, its own memory.
	_, replicaCookie := msSave(t, stateful.NewMemoryStore(msKey, msOptions, clock.Now))
	// A server signing with another key.
	_, foreignCookie := msSave(t, stateful.NewMemoryStore(msOtherKey, msOptions, clock.Now))
	old := &http.Cookie{Name: stateful.CookieName, Value: msSignedAt(msKey, stateful.CookieName, "gone", time.Now().Add(-30*24*time.Hour).Unix())}

	tests := []struct {
		name    string
		cookies []*http.Cookie
		want    error
	}{
		{"no cookie", nil, stateful.ErrNoCookie},
		{"another cookie only", []*http.Cookie{{Name: "theme", Value: "dark"}}, stateful.ErrNoCookie},
		{"own cookie", []*http.Cookie{cookie}, nil},
		{"another replica's cookie", []*http.Cookie{replicaCookie}, stateful.ErrSessionLost},
		{"another key's cookie", []*http.Cookie{foreignCookie}, stateful.ErrInvalidCookie},
		{"tampered cookie", []*http.Cookie{msTampered(t, cookie)}, stateful.ErrInvalidCookie},
		{"garbage cookie", []*http.Cookie{{Name: stateful.CookieName, Value: "not-a-cookie"}}, stateful.ErrInvalidCookie},
		{"empty cookie", []*http.Cookie{{Name: stateful.CookieName, Value: ""}}, stateful.ErrInvalidCookie},
		// An old genuine cookie whose session is gone is lost, not forged.
		{"month-old cookie", []*http.Cookie{old}, stateful.ErrSessionLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, err := store.Load(msRequest(tt.cookies...))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Load: got error %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				if sess != nil {
					t.Errorf("Load failed with %v but returned session %+v", err, sess)
				}
				return
			}
			if sess.ID != id || sess.Member != msAlice {
				t.Errorf("Load: got id %q member %v, want %q %v", sess.ID, sess.Member, id, msAlice)
			}
		})
	}
}

func TestMemoryStoreRoundTrip(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	id, cookie := msSave(t, store, 3, 1, 4)

	sess, err := store.Load(msRequest(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if sess.ID != id {
		t.Errorf("ID: got %q, want %q", sess.ID, id)
	}
	if sess.Member != msAlice {
		t.Errorf("member: got %v, want %v", sess.Member, msAlice)
	}
	if want := []int64{3, 1, 4}; !slices.Equal(sess.Cart, want) {
		t.Errorf("cart: got %v, want %v", sess.Cart, want)
	}

	// Saving the loaded session again keeps its id and its cookie working.
	sess.Cart = []int64{2}
	rec := httptest.NewRecorder()
	if err := store.Save(rec, msRequest(cookie), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	again, err := store.Load(msRequest(msCookie(t, rec)))
	if err != nil {
		t.Fatalf("Load after a second Save: %v", err)
	}
	if again.ID != id {
		t.Errorf("ID after a second Save: got %q, want %q", again.ID, id)
	}
	if want := []int64{2}; !slices.Equal(again.Cart, want) {
		t.Errorf("cart after a second Save: got %v, want %v", again.Cart, want)
	}
	if got, want := store.Len(), 1; got != want {
		t.Errorf("Len: got %v, want %v", got, want)
	}
}

func TestMemoryStoreSessionsAreCopies(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	in := []int64{10, 20}
	sess := &stateful.Session{Member: msAlice, Cart: in}
	rec := httptest.NewRecorder()
	if err := store.Save(rec, httptest.NewRequest("POST", "/", nil), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	cookie := msCookie(t, rec)

	// Changing what was saved, after the Save, must not reach the store.
	in[0] = -1

	first, err := store.Load(msRequest(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	first.Cart[1] = -2                  // a handler changing its copy in place
	first.Cart = append(first.Cart, 3)  // and growing it without saving
	first.Member.Name = "The Red Queen" // or changing the member

	second, err := store.Load(msRequest(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := []int64{10, 20}; !slices.Equal(second.Cart, want) {
		t.Errorf("stored cart: got %v, want %v", second.Cart, want)
	}
	if second.Member != msAlice {
		t.Errorf("stored member: got %v, want %v", second.Member, msAlice)
	}
}

func TestMemoryStoreExpiry(t *testing.T) {
	clock := msNewClock()
	store := stateful.NewMemoryStore(msKey, msOptions, clock.Now)
	ttl := time.Duration(msOptions.MaxAge) * time.Second
	_, cookie := msSave(t, store)
	_, other := msSave(t, store)

	steps := []struct {
		advance time.Duration
		want    error
		wantLen int
	}{
		{0, nil, 2},
		{ttl - time.Second, nil, 2},
		{time.Second, stateful.ErrSessionLost, 1}, // Load drops the expired session it found
		{time.Hour, stateful.ErrSessionLost, 1},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		_, err := store.Load(msRequest(cookie))
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Fatalf("step %d: got error %v, want %v", i, err, s.want)
		}
		if got := store.Len(); got != s.wantLen {
			t.Errorf("step %d: Len: got %v, want %v", i, got, s.wantLen)
		}
	}

	// The other expired session is never asked for again; the sweep of
	// the next Save (more than a minute after the last) drops it.
	msSave(t, store)
	if got, want := store.Len(), 1; got != want {
		t.Errorf("Len after the sweep: got %v, want %v", got, want)
	}
	if _, err := store.Load(msRequest(other)); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("swept session: got error %v, want %v", err, stateful.ErrSessionLost)
	}
}

// TestMemoryStoreSaveAfterExpiry: a request that loaded a session just
// before it expired cannot bring it back by saving it.
func TestMemoryStoreSaveAfterExpiry(t *testing.T) {
	clock := msNewClock()
	store := stateful.NewMemoryStore(msKey, msOptions, clock.Now)
	_, cookie := msSave(t, store)
	sess, err := store.Load(msRequest(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	clock.Advance(time.Duration(msOptions.MaxAge) * time.Second)
	if err := store.Save(httptest.NewRecorder(), msRequest(cookie), sess); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("Save of an expired session: got error %v, want %v", err, stateful.ErrSessionLost)
	}
	if got := store.Len(); got != 0 {
		t.Errorf("Len: got %d, want 0", got)
	}
}

func TestMemoryStoreMaxAgeZeroKeepsSession(t *testing.T) {
	clock := msNewClock()
	opts := msOptions
	opts.MaxAge = 0 // a browser-session cookie
	store := stateful.NewMemoryStore(msKey, opts, clock.Now)
	_, cookie := msSave(t, store)
	clock.Advance(48 * time.Hour)
	msSave(t, store) // sweeps
	if _, err := store.Load(msRequest(cookie)); err != nil {
		t.Errorf("Load two days later with MaxAge 0: got error %v, want %v", err, nil)
	}
}

func TestMemoryStoreDestroy(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	_, cookie := msSave(t, store)
	_, keep := msSave(t, store)

	sess, err := store.Load(msRequest(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// A request in flight loaded the session before the logout.
	inFlight, err := store.Load(msRequest(cookie))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	rec := httptest.NewRecorder()
	if err := store.Destroy(rec, msRequest(cookie), sess); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	gone := msCookie(t, rec)
	if gone.Value != "" || gone.MaxAge >= 0 {
		t.Errorf("deleting cookie: got value %q MaxAge %v, want value \"\" and MaxAge < 0", gone.Value, gone.MaxAge)
	}
	if got, want := store.Len(), 1; got != want {
		t.Errorf("Len: got %v, want %v", got, want)
	}
	if _, err := store.Load(msRequest(cookie)); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("Load with the destroyed session's cookie: got error %v, want %v", err, stateful.ErrSessionLost)
	}
	// Its Save must not bring the session back.
	inFlight.Cart = append(inFlight.Cart, 7)
	if err := store.Save(httptest.NewRecorder(), msRequest(cookie), inFlight); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("Save after Destroy: got error %v, want %v", err, stateful.ErrSessionLost)
	}
	if _, err := store.Load(msRequest(cookie)); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("Load after Save after Destroy: got error %v, want %v", err, stateful.ErrSessionLost)
	}
	if _, err := store.Load(msRequest(keep)); err != nil {
		t.Errorf("Load with another session's cookie: got error %v, want %v", err, nil)
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
			id, c := msSave(t, store, 1, 2, 3)
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
			var got []byte
			codec := securecookie.New(msKey, nil)
			codec.SetSerializer(securecookie.NopEncoder{})
			if err := codec.Decode(stateful.CookieName, c.Value, &got); err != nil {
				t.Fatalf("decode cookie: %v", err)
			}
			if string(got) != id {
				t.Errorf("cookie holds: got %q, want the session id %q", got, id)
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
	var first *http.Cookie
	for i := range 5 {
		id, c := msSave(t, store, int64(i))
		ids = append(ids, id)
		if first == nil {
			first = c
		}
	}
	if got, want := store.Len(), 5; got != want {
		t.Errorf("Len after 5 saves: got %v, want %v", got, want)
	}
	if got, want := len(slices.Compact(slices.Sorted(slices.Values(ids)))), 5; got != want {
		t.Errorf("distinct session ids: got %v, want %v", got, want)
	}
	if err := store.Destroy(httptest.NewRecorder(), msRequest(first), &stateful.Session{ID: ids[0]}); err != nil {
		t.Fatal(err)
	}
	if err := store.Destroy(httptest.NewRecorder(), msRequest(), &stateful.Session{ID: "no such id"}); err != nil {
		t.Fatal(err)
	}
	if got, want := store.Len(), 4; got != want {
		t.Errorf("Len after Destroy: got %v, want %v", got, want)
	}
}

// TestMemoryStoreConcurrent is for -race: many requests save and read
// their own sessions and one shared session at once.
func TestMemoryStoreConcurrent(t *testing.T) {
	store := stateful.NewMemoryStore(msKey, msOptions, msNewClock().Now)
	_, shared := msSave(t, store, 1)

	const workers, rounds = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				// The shared session: read it, change the copy, save it.
				sess, err := store.Load(msRequest(shared))
				if err != nil {
					errs <- fmt.Errorf("worker %d: shared session: %w", w, err)
					return
				}
				sess.Cart[0] = int64(w)
				sess.Cart = append(sess.Cart, int64(i))
				if err := store.Save(httptest.NewRecorder(), msRequest(shared), sess); err != nil {
					errs <- err
					return
				}

				// An own session: saved, then found with its own cart.
				// A member of its own each time: the per-member cap
				// (TestSessionStores) is not what this test is about.
				m := msAlice
				m.ID = int64(1000 + w*rounds + i)
				own := &stateful.Session{Member: m, Cart: []int64{int64(w*rounds + i)}}
				rec := httptest.NewRecorder()
				if err := store.Save(rec, httptest.NewRequest("POST", "/", nil), own); err != nil {
					errs <- err
					return
				}
				got, err := store.Load(msRequest(rec.Result().Cookies()...))
				if err != nil {
					errs <- fmt.Errorf("worker %d: own session: %w", w, err)
					return
				}
				if got.Cart[0] != int64(w*rounds+i) {
					errs <- fmt.Errorf("worker %d: got cart %v, want [%v]", w, got.Cart, w*rounds+i)
					return
				}
				if i%10 == 0 {
					if err := store.Destroy(httptest.NewRecorder(), msRequest(), got); err != nil {
						errs <- err
						return
					}
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
	// Every worker destroyed 5 of its 50 own sessions; the shared one stays.
	if got, want := store.Len(), workers*(rounds-rounds/10)+1; got != want {
		t.Errorf("Len: got %v, want %v", got, want)
	}
}

// TestMemoryStoreInUse checks that a session counts as in use while
// requests keep using it, and as idle once they stop: the orphan a client
// leaves behind when it signs in again.
func TestMemoryStoreInUse(t *testing.T) {
	clock := msNewClock()
	store := stateful.NewMemoryStore(msKey, msOptions, clock.Now)
	const window = 10 * time.Second
	_, orphan := msSave(t, store, 1)
	_, kept := msSave(t, store, 2)
	_ = orphan // its client signed in again and never sends this cookie
	steps := []struct {
		advance time.Duration
		load    bool // the client of kept sends a request
		want    int
	}{
		{0, false, 2},                   // both just saved
		{window - time.Second, true, 2}, // kept is used, orphan still within the window
		{2 * time.Second, false, 1},     // orphan left the window; kept used 2 s ago
		{window, false, 0},              // nobody used anything for a whole window
		{0, true, 1},                    // a request brings kept back
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if s.load {
			if _, err := store.Load(msRequest(kept)); err != nil {
				t.Fatalf("step %d: load: %v", i, err)
			}
		}
		if got := store.InUse(window); got != s.want {
			t.Errorf("step %d: InUse: got %d, want %d", i, got, s.want)
		}
		if got := store.Len(); got != 2 {
			t.Errorf("step %d: Len: got %d, want 2: idle sessions are still held", i, got)
		}
	}
}
