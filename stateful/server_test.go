package stateful_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/sqlite"
	"github.com/statelab/statelab/stateful"
)

// Helpers in this file start with "sv" (server). The shared library API
// and the memory store's full session table run in internal/api's suite;
// these tests cover what differs between the stores, end to end through
// NewServer.

const svAlice = `{"email":"alice@example.com","password":"wonderland"}`

// svDB opens a fresh, seeded database that lives as long as the test.
func svDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "lib.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// svReplica is one stateful server and its metrics.
type svReplica struct {
	http.Handler
	reg *prometheus.Registry
}

func svServer(t *testing.T, db *sqlite.DB, store stateful.SessionStore, replica string) svReplica {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := stateful.NewServer(api.Config{
		Replica:   replica,
		Store:     db,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
		Registry:  reg,
		Readiness: &api.Readiness{},
	}, store)
	return svReplica{Handler: h, reg: reg}
}

// svReply is an answer, read whole.
type svReply struct {
	status  int
	code    string
	message string
	data    json.RawMessage
	cookie  *http.Cookie // the session cookie it set, if any
}

// svDo serves one request with the cookie, if any.
func svDo(t testing.TB, h http.Handler, method, path, body string, cookie *http.Cookie) svReply {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var env struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Errorf("%s %s: body is not JSON: %v: %.200s", method, path, err, rec.Body.Bytes())
	}
	rep := svReply{status: rec.Code, code: env.Code, message: env.Message, data: env.Data}
	for _, c := range rec.Result().Cookies() {
		if c.Name == stateful.CookieName {
			rep.cookie = c
		}
	}
	return rep
}

// svMust serves one request and insists on its status and code.
func svMust(t testing.TB, h http.Handler, method, path, body string, cookie *http.Cookie, status int, code string) svReply {
	t.Helper()
	rep := svDo(t, h, method, path, body, cookie)
	if rep.status != status || rep.code != code {
		t.Fatalf("%s %s: got %d %q (%s), want %d %q", method, path, rep.status, rep.code, rep.message, status, code)
	}
	return rep
}

// svLogin logs alice in and returns her session cookie.
func svLogin(t testing.TB, h http.Handler) *http.Cookie {
	t.Helper()
	rep := svMust(t, h, "POST", "/api/auth/login", svAlice, nil, http.StatusOK, "")
	if rep.cookie == nil {
		t.Fatal("login set no session cookie")
	}
	return rep.cookie
}

// svCartCount returns the count of GET /api/cart.
func svCartCount(t testing.TB, h http.Handler, cookie *http.Cookie) int {
	t.Helper()
	var c struct{ Count int }
	if err := json.Unmarshal(svMust(t, h, "GET", "/api/cart", "", cookie, http.StatusOK, "").data, &c); err != nil {
		t.Fatal(err)
	}
	return c.Count
}

// svHasMetric reports whether the registry has a family of that name, and
// the sum of its histogram sample counts.
func svHasMetric(t *testing.T, reg *prometheus.Registry, name string) (bool, uint64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			var n uint64
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return true, n
		}
	}
	return false, 0
}

// TestServerStores runs one journey (login, cart, another replica, a
// tampered cookie, logout, the old cookie again) against each store, and
// checks the answers that tell the stores apart.
func TestServerStores(t *testing.T) {
	for _, k := range stKinds() {
		t.Run(k.name, func(t *testing.T) {
			db := svDB(t)
			a := svServer(t, db, k.open(t, msKey), "a")
			b := svServer(t, db, k.open(t, msKey), "b")

			cookie := svLogin(t, a)
			svMust(t, a, "GET", "/api/me", "", cookie, http.StatusOK, "")
			for _, id := range []int{1, 2} {
				rep := svMust(t, a, "POST", "/api/cart/items", fmt.Sprintf(`{"book_id":%d}`, id), cookie, http.StatusCreated, "")
				if rep.cookie != nil {
					cookie = rep.cookie // the cookie store's cookie carries the cart
				}
			}
			if got := svCartCount(t, a, cookie); got != 2 {
				t.Errorf("cart on a: got %d books, want 2", got)
			}
			if k.shared {
				if got := svCartCount(t, b, cookie); got != 2 {
					t.Errorf("cart on replica b: got %d books, want the same 2", got)
				}
			} else {
				svMust(t, b, "GET", "/api/cart", "", cookie, http.StatusUnauthorized, library.ESESSIONLOST)
			}
			svMust(t, a, "GET", "/api/me", "", msTampered(t, cookie), http.StatusUnauthorized, library.EINVALIDSESSION)

			rep := svMust(t, a, "POST", "/api/auth/logout", "", cookie, http.StatusOK, "")
			if rep.cookie == nil || rep.cookie.MaxAge >= 0 {
				t.Errorf("logout: got cookie %v, want it deleted", rep.cookie)
			}
			if k.revocable {
				svMust(t, a, "GET", "/api/me", "", cookie, http.StatusUnauthorized, library.ESESSIONLOST)
				svMust(t, b, "GET", "/api/me", "", cookie, http.StatusUnauthorized, library.ESESSIONLOST)
			} else {
				// The lesson: the server said goodbye, the copy still works.
				svMust(t, a, "GET", "/api/me", "", cookie, http.StatusOK, "")
				svMust(t, b, "GET", "/api/cart", "", cookie, http.StatusOK, "")
				if !strings.Contains(rep.message, "copy of the old cookie still works") {
					t.Errorf("logout message %q does not warn that a copy still works", rep.message)
				}
			}

			if ok, n := svHasMetric(t, a.reg, "statelab_session_store_seconds"); !ok || n == 0 {
				t.Errorf("statelab_session_store_seconds: present %v with %d samples, want samples", ok, n)
			}
			if ok, _ := svHasMetric(t, a.reg, "statelab_sessions_active"); ok != (k.name == "memory") {
				t.Errorf("statelab_sessions_active registered: got %v, want it only where the store counts (memory)", ok)
			}
		})
	}
}

// TestServerRedisOutage: while redis is down, requests get 503
// session_store_unavailable (never 500, never session_lost) and the
// replica reports itself not ready; when it is back, empty, the old cookie
// is session_lost.
func TestServerRedisOutage(t *testing.T) {
	store, _, srv := stRedis(t)
	h := svServer(t, svDB(t), store, "a")
	cookie := svLogin(t, h)
	svMust(t, h, "GET", "/api/ready", "", nil, http.StatusOK, "")

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/me", ""},
		{"GET", "/api/cart", ""},
		{"POST", "/api/cart/items", `{"book_id":1}`},
		{"POST", "/api/auth/logout", ""},
		{"POST", "/api/auth/login", svAlice},
	} {
		rep := svMust(t, h, r.method, r.path, r.body, cookie, http.StatusServiceUnavailable, library.ESESSIONSTORE)
		if !strings.Contains(rep.message, "session store (redis) cannot be reached") {
			t.Errorf("%s %s: message %q does not say the session store cannot be reached", r.method, r.path, rep.message)
		}
	}
	rep := svMust(t, h, "GET", "/api/ready", "", nil, http.StatusServiceUnavailable, library.ENOTREADY)
	if !strings.Contains(rep.message, "session store") {
		t.Errorf("/api/ready message %q does not name the session store", rep.message)
	}

	if err := srv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	svMust(t, h, "GET", "/api/ready", "", nil, http.StatusOK, "")
	svMust(t, h, "GET", "/api/me", "", cookie, http.StatusUnauthorized, library.ESESSIONLOST)
	svLogin(t, h)
}

// TestServerCookieTooLarge: a cart that would push the cookie past what
// the store may set is refused with 400 cookie_too_large, and the session
// (the last good cookie) keeps its cart. The limit is made small here:
// MaxCartItems keeps a real cart far below MaxCookieBytes.
func TestServerCookieTooLarge(t *testing.T) {
	db := svDB(t)
	probe := svLogin(t, svServer(t, db, stateful.NewCookieStore(msKey, msOptions, 0, time.Now), "probe"))
	limit := len(stateful.CookieName) + 1 + len(probe.Value) + 30
	h := svServer(t, db, stateful.NewCookieStore(msKey, msOptions, limit, time.Now), "a")

	cookie := svLogin(t, h)
	added := 0
	for id := 1; id <= stateful.MaxCartItems; id++ {
		rep := svDo(t, h, "POST", "/api/cart/items", fmt.Sprintf(`{"book_id":%d}`, id), cookie)
		if rep.status == http.StatusCreated {
			cookie, added = rep.cookie, added+1
			continue
		}
		if rep.status != http.StatusBadRequest || rep.code != library.ECOOKIETOOLARGE {
			t.Fatalf("add book %d: got %d %q (%s), want 201, or 400 %s", id, rep.status, rep.code, rep.message, library.ECOOKIETOOLARGE)
		}
		if !strings.Contains(rep.message, "would exceed the 4096 bytes a browser keeps") {
			t.Errorf("message %q does not say what happened", rep.message)
		}
		if rep.cookie != nil {
			t.Errorf("a refused add set a cookie: %v", rep.cookie)
		}
		if added == 0 {
			t.Fatalf("the first book was refused already; the test's limit %d is too small", limit)
		}
		if got := svCartCount(t, h, cookie); got != added {
			t.Errorf("cart after the refusal: got %d books, want the %d added before", got, added)
		}
		return
	}
	t.Fatalf("%d books fit into a %d-byte cookie; want a refusal", added, limit)
}

// TestServerLogoutRace is issue 12's hardening item 7: with add-to-cart
// requests of the same cookie in flight, a logout must stay a logout. A
// request that loaded the session before the logout and saves it after
// must not bring it back. Each trial hammers the cart from several
// goroutines, logs out in the middle, and then asks /api/me.
func TestServerLogoutRace(t *testing.T) {
	const trials, workers = 8, 6
	for _, k := range stKinds() {
		if !k.revocable {
			continue // the cookie store cannot revoke at all; see TestServerStores
		}
		t.Run(k.name, func(t *testing.T) {
			h := svServer(t, svDB(t), k.open(t, msKey), "a")
			for trial := range trials {
				cookie := svLogin(t, h)
				var (
					saves     atomic.Int64
					loggedOut atomic.Bool
					wg        sync.WaitGroup
				)
				for w := range workers {
					wg.Go(func() {
						add := fmt.Sprintf(`{"book_id":%d}`, w+1)
						remove := fmt.Sprintf("/api/cart/items/%d", w+1)
						// Keep saving until the logout is seen, and then
						// some: a request that loses the race still runs.
						for after := 0; after < 50; {
							if loggedOut.Load() {
								after++
							}
							rep := svDo(t, h, "POST", "/api/cart/items", add, cookie)
							if rep.status == http.StatusCreated {
								saves.Add(1)
							}
							rep2 := svDo(t, h, "DELETE", remove, "", cookie)
							if rep2.status == http.StatusOK {
								saves.Add(1)
							}
							for _, r := range []svReply{rep, rep2} {
								// Concurrent saves overwrite each other's
								// carts (404, 409); nothing else may happen.
								switch r.status {
								case http.StatusOK, http.StatusCreated, http.StatusNotFound, http.StatusConflict, http.StatusUnauthorized:
								default:
									t.Errorf("trial %d: cart request got %d %q", trial, r.status, r.code)
									return
								}
							}
						}
					})
				}
				for saves.Load() < 2*workers {
					time.Sleep(time.Millisecond)
				}
				svMust(t, h, "POST", "/api/auth/logout", "", cookie, http.StatusOK, "")
				loggedOut.Store(true)
				wg.Wait()
				if rep := svDo(t, h, "GET", "/api/me", "", cookie); rep.status != http.StatusUnauthorized || rep.code != library.ESESSIONLOST {
					t.Fatalf("trial %d: /api/me with the logged-out cookie after concurrent cart requests: got %d %q, want 401 %s",
						trial, rep.status, rep.code, library.ESESSIONLOST)
				}
			}
		})
	}
}

// TestServerRedisReplicasShareLogout: two replicas on one redis are one
// session store; a logout on one is a logout on both.
func TestServerRedisReplicasShareLogout(t *testing.T) {
	srv := labtest.Redis(t)
	db := svDB(t)
	open := func() stateful.SessionStore {
		s := stateful.NewRedisStore(srv.Addr(), srv.Password(), msKey, msOptions)
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := svServer(t, db, open(), "a"), svServer(t, db, open(), "b")
	cookie := svLogin(t, a)
	svMust(t, b, "POST", "/api/cart/items", `{"book_id":3}`, cookie, http.StatusCreated, "")
	if got := svCartCount(t, a, cookie); got != 1 {
		t.Errorf("cart on a after an add on b: got %d, want 1", got)
	}
	svMust(t, b, "POST", "/api/auth/logout", "", cookie, http.StatusOK, "")
	svMust(t, a, "GET", "/api/me", "", cookie, http.StatusUnauthorized, library.ESESSIONLOST)
}

// TestCookieSessionLifetime is issue 22 (8): a sealed cookie whose holder
// keeps writing its cart was re-sealed with a fresh expiry every time, so
// a copy of it lived for ever. Now every seal ends CookieLifetime after
// the sign-in: the holder, writing every half hour within the one-hour
// TTL, is signed out then (401 session_lost), and so is any copy.
func TestCookieSessionLifetime(t *testing.T) {
	clock := msNewClock()
	h := svServer(t, svDB(t), stateful.NewCookieStore(msKey, msOptions, 0, clock.Now), "a")
	signedIn := clock.Now()
	cookie := svLogin(t, h)
	var refusedAt time.Duration
	var copies []*http.Cookie
	for step := 0; clock.Now().Sub(signedIn) < 2*stateful.CookieLifetime; step++ {
		clock.Advance(30 * time.Minute)
		path, method, body := "/api/cart/items", "POST", `{"book_id":3}`
		if step%2 == 1 {
			path, method, body = "/api/cart/items/3", "DELETE", ""
		}
		rep := svDo(t, h, method, path, body, cookie)
		if rep.status != http.StatusOK && rep.status != http.StatusCreated {
			if rep.status != http.StatusUnauthorized || rep.code != library.ESESSIONLOST {
				t.Fatalf("cart write at %v: %d %s, want a write or 401 %s", clock.Now().Sub(signedIn), rep.status, rep.code, library.ESESSIONLOST)
			}
			refusedAt = clock.Now().Sub(signedIn)
			break
		}
		if rep.cookie == nil {
			t.Fatalf("cart write at %v set no cookie", clock.Now().Sub(signedIn))
		}
		cookie = rep.cookie
		copies = append(copies, rep.cookie)
	}
	if refusedAt != stateful.CookieLifetime {
		t.Errorf("a session re-sealed every 30 minutes was refused %v after sign-in, want at %v (0: never, in %v)", refusedAt, stateful.CookieLifetime, 2*stateful.CookieLifetime)
	}
	for i, c := range copies {
		if rep := svDo(t, h, "GET", "/api/cart", "", c); rep.status != http.StatusUnauthorized || rep.code != library.ESESSIONLOST {
			t.Errorf("the copy sealed %v after sign-in, used %v after: %d %s, want 401 %s",
				time.Duration(i+1)*30*time.Minute, clock.Now().Sub(signedIn), rep.status, rep.code, library.ESESSIONLOST)
		}
	}
}
