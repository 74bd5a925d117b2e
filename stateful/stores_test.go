package stateful_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/redisserver"
	"github.com/statelab/statelab/stateful"
)

// Helpers in this file start with "st" (store table).

// stKind is one kind of session store and what it promises.
type stKind struct {
	name string
	// open returns a store with the given key. Two stores one test opens
	// are two replicas: for redis they share one redis server.
	open func(t *testing.T, key []byte) stateful.SessionStore
	// shared: a second replica finds the first one's sessions.
	shared bool
	// revocable: after Destroy, a copy of the old cookie is refused.
	revocable bool
}

// stKinds returns the three stores. The redis one starts a private
// redis-server for the test the first time it is opened (see labtest.Redis).
func stKinds() []stKind {
	return []stKind{
		{"memory", func(t *testing.T, key []byte) stateful.SessionStore {
			return stateful.NewMemoryStore(key, msOptions, time.Now)
		}, false, true},
		{"redis", stRedisOpener(), true, true},
		{"cookie", func(t *testing.T, key []byte) stateful.SessionStore {
			return stateful.NewCookieStore(key, msOptions, 0, time.Now)
		}, true, false},
	}
}

// stRedisOpener returns an open function whose stores, within one test,
// share one redis server.
func stRedisOpener() func(t *testing.T, key []byte) stateful.SessionStore {
	servers := map[*testing.T]*redisserver.Server{}
	return func(t *testing.T, key []byte) stateful.SessionStore {
		srv, ok := servers[t]
		if !ok {
			srv = labtest.Redis(t)
			servers[t] = srv
		}
		s := stateful.NewRedisStore(srv.Addr(), srv.Password(), key, msOptions)
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// TestSessionStores is the conformance suite every SessionStore runs: the
// three ways of having no session, the round trip, what another replica
// makes of a cookie, and what a logout leaves behind.
func TestSessionStores(t *testing.T) {
	for _, k := range stKinds() {
		t.Run(k.name, func(t *testing.T) {
			store := k.open(t, msKey)
			if got := store.Name(); got != k.name {
				t.Errorf("Name: got %q, want %q", got, k.name)
			}
			// What the store says of itself is what the cases below find.
			if got := store.Shared(); got != k.shared {
				t.Errorf("Shared: got %v, want %v", got, k.shared)
			}
			if got := store.Revocable(); got != k.revocable {
				t.Errorf("Revocable: got %v, want %v", got, k.revocable)
			}
			id, cookie := msSave(t, store, 3, 1, 4)
			_, foreign := msSave(t, k.open(t, msOtherKey))
			replica := k.open(t, msKey)

			wantReplica := stateful.ErrSessionLost
			if k.shared {
				wantReplica = nil
			}
			tests := []struct {
				name    string
				store   stateful.SessionStore
				cookies []*http.Cookie
				want    error
			}{
				{"no cookie", store, nil, stateful.ErrNoCookie},
				{"own cookie", store, []*http.Cookie{cookie}, nil},
				{"another replica", replica, []*http.Cookie{cookie}, wantReplica},
				{"another key's cookie", store, []*http.Cookie{foreign}, stateful.ErrInvalidCookie},
				{"tampered cookie", store, []*http.Cookie{msTampered(t, cookie)}, stateful.ErrInvalidCookie},
				{"garbage cookie", store, []*http.Cookie{{Name: stateful.CookieName, Value: "garbage"}}, stateful.ErrInvalidCookie},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					sess, err := tt.store.Load(msRequest(tt.cookies...))
					if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
						t.Fatalf("Load: got error %v, want %v", err, tt.want)
					}
					if err != nil {
						return
					}
					if sess.ID != id || sess.Member != msAlice || !slices.Equal(sess.Cart, []int64{3, 1, 4}) {
						t.Errorf("Load: got %+v, want id %q, %v and cart [3 1 4]", sess, id, msAlice)
					}
				})
			}

			t.Run("sessions per member", func(t *testing.T) {
				// A store of its own, so the sessions above do not count.
				store := k.open(t, msKey)
				var cookies []*http.Cookie
				for range library.MaxSessionsPerMember + 1 {
					_, c := msSave(t, store)
					cookies = append(cookies, c)
				}
				bob := &stateful.Session{Member: library.Member{ID: 2, Email: "bob@example.com", Name: "Bob", Role: library.RoleMember}}
				rec := httptest.NewRecorder()
				if err := store.Save(rec, httptest.NewRequest("POST", "/api/auth/login", nil), bob); err != nil {
					t.Fatal(err)
				}
				var wantOldest error // the client keeps a sealed cookie: nothing to cap
				if k.revocable {
					wantOldest = stateful.ErrSessionLost
				}
				if _, err := store.Load(msRequest(cookies[0])); !errors.Is(err, wantOldest) || (wantOldest == nil && err != nil) {
					t.Errorf("the oldest of %d sessions of one member: got error %v, want %v", len(cookies), err, wantOldest)
				}
				for i, c := range append(cookies[1:], msCookie(t, rec)) {
					if _, err := store.Load(msRequest(c)); err != nil {
						t.Errorf("session %d: %v; only the oldest beyond %d ends", i+1, err, library.MaxSessionsPerMember)
					}
				}
			})

			t.Run("logout", func(t *testing.T) {
				_, cookie := msSave(t, store, 5)
				sess, err := store.Load(msRequest(cookie))
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				inFlight, err := store.Load(msRequest(cookie))
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				rec := httptest.NewRecorder()
				if err := store.Destroy(rec, msRequest(cookie), sess); err != nil {
					t.Fatalf("Destroy: %v", err)
				}
				if c := msCookie(t, rec); c.MaxAge >= 0 || c.Value != "" {
					t.Errorf("Destroy's cookie: got MaxAge %d value %q, want it deleted", c.MaxAge, c.Value)
				}
				var wantCopy error // the cookie store cannot strike a session off
				if k.revocable {
					wantCopy = stateful.ErrSessionLost
				}
				if _, err := store.Load(msRequest(cookie)); !errors.Is(err, wantCopy) || (wantCopy == nil && err != nil) {
					t.Errorf("Load with a copy of the logged-out cookie: got error %v, want %v", err, wantCopy)
				}
				inFlight.Cart = append(inFlight.Cart, 6)
				if err := store.Save(httptest.NewRecorder(), msRequest(cookie), inFlight); !errors.Is(err, wantCopy) || (wantCopy == nil && err != nil) {
					t.Errorf("Save of a session loaded before the logout: got error %v, want %v", err, wantCopy)
				}
				if _, err := store.Load(msRequest(cookie)); !errors.Is(err, wantCopy) || (wantCopy == nil && err != nil) {
					t.Errorf("Load after that Save: got error %v, want %v", err, wantCopy)
				}
			})
		})
	}
}

// stRedis returns a redis store on a private server, a plain client on the
// same server for looking at its keys, and the server.
func stRedis(t *testing.T) (*stateful.RedisStore, *redis.Client, *redisserver.Server) {
	t.Helper()
	srv := labtest.Redis(t)
	store := stateful.NewRedisStore(srv.Addr(), srv.Password(), msKey, msOptions)
	t.Cleanup(func() { store.Close() })
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: srv.Password(), DisableIdentity: true})
	t.Cleanup(func() { client.Close() })
	return store, client, srv
}

func TestRedisStoreKeys(t *testing.T) {
	store, client, _ := stRedis(t)
	ctx := t.Context()
	id, cookie := msSave(t, store, 2)
	key := stateful.RedisKeyPrefix + id

	ttl, err := client.TTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if max := time.Duration(msOptions.MaxAge) * time.Second; ttl <= 0 || ttl > max {
		t.Errorf("TTL of %s: got %v, want the session TTL %v", key, ttl, max)
	}
	raw, err := client.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw, `"email":"alice@example.com"`) || !strings.Contains(raw, `"cart":[2]`) {
		t.Errorf("stored value: got %s, want the member and the cart as JSON", raw)
	}

	sess, err := store.Load(msRequest(cookie))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Destroy(httptest.NewRecorder(), msRequest(cookie), sess); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS %s after logout: got %d, %v; want 0: logout deletes the key", key, n, err)
	}
}

// TestRedisStoreNeedsPassword: the lab's redis-server refuses a store that
// does not know its password, and serves one that does.
func TestRedisStoreNeedsPassword(t *testing.T) {
	srv := labtest.Redis(t)
	for _, tt := range []struct {
		name, password string
		ok             bool
	}{
		{"none", "", false},
		{"wrong", "not-" + srv.Password(), false},
		{"right", srv.Password(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := stateful.NewRedisStore(srv.Addr(), tt.password, msKey, msOptions)
			defer store.Close()
			err := store.Ping(t.Context())
			if tt.ok {
				if err != nil {
					t.Fatalf("Ping with the password: %v", err)
				}
				_, cookie := msSave(t, store, 1)
				if _, err := store.Load(msRequest(cookie)); err != nil {
					t.Errorf("Load with the password: %v", err)
				}
				return
			}
			if !errors.Is(err, stateful.ErrStoreUnavailable) || !strings.Contains(err.Error(), "AUTH") && !strings.Contains(err.Error(), "WRONGPASS") {
				t.Errorf("Ping: got %v, want %v for NOAUTH or WRONGPASS", err, stateful.ErrStoreUnavailable)
			}
			err = store.Save(httptest.NewRecorder(), msRequest(), &stateful.Session{Member: msAlice})
			if !errors.Is(err, stateful.ErrStoreUnavailable) {
				t.Errorf("Save: got %v, want %v", err, stateful.ErrStoreUnavailable)
			}
		})
	}
}

func TestRedisStoreOutage(t *testing.T) {
	store, _, srv := stRedis(t)
	_, cookie := msSave(t, store)
	if err := store.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := store.Load(msRequest(cookie)); !errors.Is(err, stateful.ErrStoreUnavailable) {
		t.Errorf("Load with redis down: got error %v, want %v", err, stateful.ErrStoreUnavailable)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Load with redis down took %v; an outage must be answered fast", took)
	}
	if err := store.Save(httptest.NewRecorder(), msRequest(), &stateful.Session{Member: msAlice}); !errors.Is(err, stateful.ErrStoreUnavailable) {
		t.Errorf("Save with redis down: got error %v, want %v", err, stateful.ErrStoreUnavailable)
	}
	if err := store.Ping(t.Context()); !errors.Is(err, stateful.ErrStoreUnavailable) {
		t.Errorf("Ping with redis down: got %v, want %v", err, stateful.ErrStoreUnavailable)
	}

	// Back, but empty: the session went with the process.
	if err := srv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := store.Ping(t.Context()); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
	if _, err := store.Load(msRequest(cookie)); !errors.Is(err, stateful.ErrSessionLost) {
		t.Errorf("Load after the restart: got error %v, want %v", err, stateful.ErrSessionLost)
	}
}

func TestCookieStore(t *testing.T) {
	clock := msNewClock()
	store := stateful.NewCookieStore(msKey, msOptions, 0, clock.Now)
	id, cookie := msSave(t, store, 1, 2)

	t.Run("sealed", func(t *testing.T) {
		raw, err := base64.URLEncoding.DecodeString(cookie.Value)
		if err != nil {
			t.Fatalf("cookie value is not base64: %v", err)
		}
		for _, secret := range []string{"alice", "Alice", id} {
			if strings.Contains(string(raw), secret) || strings.Contains(cookie.Value, secret) {
				t.Errorf("the cookie shows %q: the session must be encrypted", secret)
			}
		}
	})
	t.Run("no server memory", func(t *testing.T) {
		// A store made afresh, with nothing but the key, reads it.
		other := stateful.NewCookieStore(msKey, msOptions, 0, clock.Now)
		sess, err := other.Load(msRequest(cookie))
		if err != nil || sess.ID != id || !slices.Equal(sess.Cart, []int64{1, 2}) {
			t.Errorf("Load on another store: got %+v, %v; want session %q with cart [1 2]", sess, err, id)
		}
	})
	t.Run("cart growth raises the cookie's size", func(t *testing.T) {
		prev := len(cookie.Value)
		for n := 3; n <= 20; n++ {
			_, c := msSave(t, store, slices.Collect(func(yield func(int64) bool) {
				for i := range n {
					if !yield(int64(1000 + i)) {
						return
					}
				}
			})...)
			if len(c.Value) <= prev {
				t.Errorf("cookie with %d books: %d bytes, want more than the %d of one book fewer", n, len(c.Value), prev)
			}
			prev = len(c.Value)
		}
		if prev >= stateful.MaxCookieBytes/2 {
			t.Errorf("a full cart makes a %d-byte cookie; MaxCartItems should keep it far below %d", prev, stateful.MaxCookieBytes)
		}
	})
	t.Run("too large", func(t *testing.T) {
		big := make([]int64, 600)
		for i := range big {
			big[i] = 1_000_000_000_000 + int64(i)
		}
		rec := httptest.NewRecorder()
		err := store.Save(rec, msRequest(), &stateful.Session{Member: msAlice, Cart: big})
		if !errors.Is(err, stateful.ErrCookieTooLarge) {
			t.Errorf("Save of a 600-book cart: got error %v, want %v", err, stateful.ErrCookieTooLarge)
		}
		if got := rec.Header().Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("Set-Cookie after a refused Save: got %q, want none", got)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		clock.Advance(time.Duration(msOptions.MaxAge)*time.Second - time.Second)
		if _, err := store.Load(msRequest(cookie)); err != nil {
			t.Errorf("Load a second before expiry: %v", err)
		}
		clock.Advance(time.Second)
		if _, err := store.Load(msRequest(cookie)); !errors.Is(err, stateful.ErrSessionLost) {
			t.Errorf("Load at expiry: got error %v, want %v", err, stateful.ErrSessionLost)
		}
	})
}
