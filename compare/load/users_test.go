package load_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/api"
)

// rtFake is one replica of one side reduced to what a simulated user
// touches: sign-in, books, the cart (stateful), borrows. It keeps its
// sessions (stateful) or credentials (stateless) in memory, and forgets
// one on purpose when loseOn says so, as a restarted replica or another
// replica behind round robin would.
type rtFake struct {
	side  string
	stats *load.SideStats // read at the moment of the loss
	// loseOn is asked about every signed-in request: n counts the requests
	// of the session from 1. The first time it says yes, the fake forgets
	// the session and answers 401.
	loseOn func(n int, method, path string) bool

	mu        sync.Mutex
	seen      []string // "METHOD /path?query" of every request, in order
	logins    int
	sessions  map[string]*rtSession
	nextID    int64
	loss      *rtLoss
	checkouts [][]int64 // the books of every checkout answered 201, in order
}

type rtSession struct {
	n    int
	cart []int64 // stateful: the server's cart
}

// rtLoss is what the fake knew when it forgot a user.
type rtLoss struct {
	cart    []int64     // the books the user had chosen: the server's cart, or the stateless user's checkout
	logins  int         // sign-ins so far
	before  load.Totals // the user's counters just before it saw the 401
	request string
}

func rtStartFake(t *testing.T, side string, loseOn func(int, string, string) bool) (*rtFake, string) {
	t.Helper()
	f := &rtFake{side: side, stats: load.NewSideStats(), loseOn: loseOn, sessions: map[string]*rtSession{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func rtAnswer(w http.ResponseWriter, status int, code string, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"success": status < 400}
	if code != "" {
		body["code"] = code
	}
	if data != nil {
		body["data"] = data
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (f *rtFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, r.Method+" "+r.URL.RequestURI())
	route := r.Method + " " + r.URL.Path
	var body struct {
		BookID  int64   `json:"book_id"`
		BookIDs []int64 `json:"book_ids"`
	}
	if r.ContentLength > 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			rtAnswer(w, http.StatusBadRequest, "bad_request", nil)
			return
		}
	}

	switch route {
	case "POST /api/auth/login", "POST /api/auth/generate-key", "POST /api/auth/token":
		f.logins++
		key := "cred-" + strconv.Itoa(f.logins)
		if route == "POST /api/auth/token" {
			// Shaped as a JWT, so an observer can read its claims.
			key = "e30." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+strconv.Itoa(f.logins)+`"}`)) + ".sig"
		}
		f.sessions[key] = &rtSession{}
		switch route {
		case "POST /api/auth/login":
			http.SetCookie(w, &http.Cookie{Name: "statelab_session", Value: key, Path: "/"})
			// What a sticky balancer adds: a routing cookie, which is no
			// part of the credential.
			http.SetCookie(w, &http.Cookie{Name: balancer.RouteCookie, Value: "r-1", Path: "/"})
			rtAnswer(w, http.StatusOK, "", map[string]string{"email": "u@example.org"})
		case "POST /api/auth/generate-key":
			rtAnswer(w, http.StatusCreated, "", map[string]string{"api_key": key})
		default:
			rtAnswer(w, http.StatusOK, "", map[string]any{"access_token": key, "token_type": "Bearer"})
		}
		return
	}

	var key string
	lostCode := "session_lost"
	if f.side == strategy.CredentialCookie {
		c, err := r.Cookie("statelab_session")
		if err != nil {
			rtAnswer(w, http.StatusUnauthorized, "login_required", nil)
			return
		}
		key = c.Value
	} else {
		key, lostCode = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "invalid_token"
	}
	sess := f.sessions[key]
	if sess == nil {
		rtAnswer(w, http.StatusUnauthorized, lostCode, nil)
		return
	}
	sess.n++
	if f.loss == nil && f.loseOn != nil && f.loseOn(sess.n, r.Method, r.URL.Path) {
		cart := slices.Clone(sess.cart)
		if f.side == strategy.CredentialAPIKey {
			cart = slices.Clone(body.BookIDs)
		}
		f.loss = &rtLoss{cart: cart, logins: f.logins, before: f.stats.Totals(), request: route}
		delete(f.sessions, key)
		rtAnswer(w, http.StatusUnauthorized, lostCode, nil)
		return
	}

	switch {
	case route == "GET /api/books":
		q := r.URL.Query()
		limit, offset := 20, 0
		if v := q.Get("limit"); v != "" {
			limit, _ = strconv.Atoi(v)
		}
		if v := q.Get("offset"); v != "" {
			offset, _ = strconv.Atoi(v)
		}
		books := make([]map[string]any, limit)
		for i := range books {
			books[i] = map[string]any{"id": offset + i + 1, "available": true}
		}
		rtAnswer(w, http.StatusOK, "", books)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/books/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/api/books/"))
		rtAnswer(w, http.StatusOK, "", map[string]any{"id": id, "available": true})
	case route == "POST /api/cart/items" && f.side == strategy.CredentialCookie:
		sess.cart = append(sess.cart, body.BookID)
		rtAnswer(w, http.StatusCreated, "", sess.cart)
	case route == "GET /api/cart" && f.side == strategy.CredentialCookie:
		rtAnswer(w, http.StatusOK, "", sess.cart)
	case route == "POST /api/cart/checkout" && f.side == strategy.CredentialCookie:
		rtAnswer(w, http.StatusCreated, "", f.borrow(sess.cart))
		sess.cart = nil
	case route == "POST /api/borrows":
		rtAnswer(w, http.StatusCreated, "", f.borrow(body.BookIDs))
	case route == "GET /api/borrows":
		rtAnswer(w, http.StatusOK, "", []any{})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/borrows/") && strings.HasSuffix(r.URL.Path, "/return"):
		rtAnswer(w, http.StatusOK, "", nil)
	default:
		rtAnswer(w, http.StatusNotFound, "not_found", nil)
	}
}

// borrow makes a borrow record for each book. The caller holds f.mu.
func (f *rtFake) borrow(books []int64) []map[string]int64 {
	f.checkouts = append(f.checkouts, slices.Clone(books))
	recs := make([]map[string]int64, len(books))
	for i, b := range books {
		f.nextID++
		recs[i] = map[string]int64{"id": f.nextID, "book_id": b}
	}
	return recs
}

// snapshot returns what the fake has seen so far, under its lock.
func (f *rtFake) snapshot() (seen []string, logins int, loss *rtLoss, checkouts [][]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen), f.logins, f.loss, slices.Clone(f.checkouts)
}

// rtRunUser starts a simulated user against url and returns the function
// that stops it and waits until it has.
func rtRunUser(t *testing.T, side, url string, seed int64, stats *load.SideStats, gate *load.Gate) func() {
	t.Helper()
	u := load.NewUser(load.UserConfig{
		Credential: side, BaseURL: url, Email: "u@example.org", Password: "pw", Seed: seed,
		Client: &http.Client{Timeout: 5 * time.Second}, Stats: stats, Gate: gate, Think: time.Millisecond,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// rtEventually polls cond until it holds or within passes.
func rtEventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUserLosesSession has a fake forget the user once, at a chosen
// request, and checks what the user counts: the loss with the cart items it
// believed it had, and the forced sign-in that follows.
func TestUserLosesSession(t *testing.T) {
	tests := []struct {
		name   string
		side   string
		loseOn func(n int, method, path string) bool
		// wantCart: the user had chosen books when it was forgotten.
		wantCart bool
	}{
		{name: "stateful, first request", side: strategy.CredentialCookie, loseOn: func(n int, _, _ string) bool { return n == 1 }},
		{name: "stateful, after 5 requests", side: strategy.CredentialCookie, loseOn: func(n int, _, _ string) bool { return n == 6 }},
		{name: "stateful, after 10 requests", side: strategy.CredentialCookie, loseOn: func(n int, _, _ string) bool { return n == 11 }},
		{name: "stateful, at checkout", side: strategy.CredentialCookie, loseOn: func(_ int, m, p string) bool { return p == "/api/cart/checkout" }, wantCart: true},
		{name: "stateless, first request", side: strategy.CredentialAPIKey, loseOn: func(n int, _, _ string) bool { return n == 1 }},
		{name: "stateless, at checkout", side: strategy.CredentialAPIKey, loseOn: func(_ int, m, p string) bool { return m == "POST" && p == "/api/borrows" }, wantCart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, url := rtStartFake(t, tt.side, tt.loseOn)
			stop := rtRunUser(t, tt.side, url, 7, f.stats, &load.Gate{})
			rtEventually(t, 10*time.Second, "a loss and the sign-in after it", func() bool {
				_, _, loss, checkouts := f.snapshot()
				done := loss != nil && f.stats.Totals().Relogins == 1
				if tt.side == strategy.CredentialAPIKey && tt.wantCart {
					// Wait for the checkout after the new sign-in too.
					done = done && len(checkouts) > 0
				}
				return done
			})
			stop()

			seen, logins, loss, checkouts := f.snapshot()
			got := f.stats.Totals()
			t.Logf("forgotten at request %s holding books %v", loss.request, loss.cart)
			if len(loss.cart) == 0 && tt.wantCart {
				t.Fatalf("the loss came at %s with no books chosen; the test wants some", loss.request)
			}
			if loss.before.SessionsLost != 0 || loss.before.Relogins != 0 || loss.logins != 1 {
				t.Errorf("before the 401: %d sessions lost, %d re-logins, %d sign-ins; want 0, 0, 1", loss.before.SessionsLost, loss.before.Relogins, loss.logins)
			}
			if logins < 2 {
				t.Errorf("%d sign-ins, want the first and the forced one", logins)
			}

			wantItems, wantSessionLost, wantInvalid := int64(len(loss.cart)), int64(1), int64(0)
			if tt.side == strategy.CredentialAPIKey {
				// A stateless user's cart is its own: it loses its
				// credential, never its cart. The server says
				// invalid_token, which is no session_lost outcome.
				wantItems, wantSessionLost, wantInvalid = 0, 0, 1
			}
			if got.SessionsLost != 1 || got.Relogins != 1 || got.CartItemsLost != wantItems ||
				got.SessionLost != wantSessionLost || got.InvalidCredential != wantInvalid || got.Errors4xx != 0 || got.LoginRequired != 0 {
				t.Errorf("after a loss at %s holding %v: %d sessions lost, %d re-logins, %d cart items lost, %d session_lost, %d invalid credential, %d other 4xx, %d login_required;\nwant 1, 1, %d, %d, %d, 0, 0",
					loss.request, loss.cart, got.SessionsLost, got.Relogins, got.CartItemsLost, got.SessionLost, got.InvalidCredential, got.Errors4xx, got.LoginRequired, wantItems, wantSessionLost, wantInvalid)
			}
			// A request cut short by stop() is seen by the fake but not
			// counted: the user never saw its answer.
			if d := int64(len(seen)) - got.Requests; d != 0 && d != 1 {
				t.Errorf("the user counted %d requests, the fake saw %d", got.Requests, len(seen))
			}

			if tt.side == strategy.CredentialAPIKey && tt.wantCart {
				// The first checkout after the new sign-in carries the
				// books chosen before the loss.
				if next := checkouts[0]; len(next) < len(loss.cart) || !slices.Equal(next[:len(loss.cart)], loss.cart) {
					t.Errorf("checkout after the re-login: books %v, want the kept cart %v first", next, loss.cart)
				}
			}
		})
	}
}

func TestGate(t *testing.T) {
	t.Run("pause and resume the users", func(t *testing.T) {
		f, url := rtStartFake(t, strategy.CredentialAPIKey, nil)
		gate := &load.Gate{}
		rtRunUser(t, strategy.CredentialAPIKey, url, 3, f.stats, gate)
		count := func() int { seen, _, _, _ := f.snapshot(); return len(seen) }
		rtEventually(t, 5*time.Second, "10 requests", func() bool { return count() >= 10 })

		gate.Pause()
		if !gate.Paused() {
			t.Fatal("Paused() = false after Pause")
		}
		// The step under way finishes; then nothing more.
		last, since := count(), time.Now()
		rtEventually(t, 5*time.Second, "the users to stop", func() bool {
			if n := count(); n != last {
				last, since = n, time.Now()
			}
			return time.Since(since) > 200*time.Millisecond
		})
		time.Sleep(300 * time.Millisecond) // nothing to poll for: this waits for what must not happen
		if n := count(); n != last {
			t.Fatalf("%d requests while paused", n-last)
		}

		gate.Resume()
		if gate.Paused() {
			t.Fatal("Paused() = true after Resume")
		}
		rtEventually(t, 5*time.Second, "the users to go on", func() bool { return count() > last+5 })
	})

	t.Run("wait", func(t *testing.T) {
		var g load.Gate
		if err := g.Wait(t.Context()); err != nil {
			t.Fatalf("Wait on an open gate = %v", err)
		}
		g.Pause()
		g.Pause() // twice is once
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if err := g.Wait(ctx); err != context.DeadlineExceeded {
			t.Errorf("Wait on a paused gate until ctx ends = %v, want %v", err, context.DeadlineExceeded)
		}
		waited := make(chan error)
		go func() { waited <- g.Wait(t.Context()) }()
		g.Resume()
		g.Resume() // twice is once, and does not panic
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("Wait after Resume = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Resume did not release Wait")
		}
	})
}

// TestUserSameSeed checks that a seed decides a user's journeys: two users
// with the same seed, each against its own fake, send the same requests.
func TestUserSameSeed(t *testing.T) {
	const n = 60
	for _, side := range []string{strategy.CredentialCookie, strategy.CredentialAPIKey} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			paths := map[int64][][]string{}
			for _, seed := range []int64{42, 42, 43} {
				f, url := rtStartFake(t, side, nil)
				stop := rtRunUser(t, side, url, seed, f.stats, &load.Gate{})
				rtEventually(t, 10*time.Second, fmt.Sprintf("%d requests", n), func() bool { seen, _, _, _ := f.snapshot(); return len(seen) >= n })
				stop()
				seen, _, _, _ := f.snapshot()
				paths[seed] = append(paths[seed], seen[:n])
			}
			if a, b := paths[42][0], paths[42][1]; !slices.Equal(a, b) {
				t.Errorf("same seed, different requests:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
			if slices.Equal(paths[42][0], paths[43][0]) {
				t.Errorf("seeds 42 and 43 sent the same %d requests: the seed decides nothing", n)
			}
		})
	}
}

// TestUserRetriesWithTheSameKey puts a balancer that fails once in front of
// the fake: the first checkout is answered 502 by the "balancer" itself.
// The user sends it again with the same Idempotency-Key, and counts the
// retry; every write carries a key of its own, and no read carries one.
func TestUserRetriesWithTheSameKey(t *testing.T) {
	for _, side := range []string{strategy.CredentialAPIKey, strategy.CredentialCookie} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			f, _ := rtStartFake(t, side, nil)
			checkout := "/api/borrows"
			if side == strategy.CredentialCookie {
				checkout = "/api/cart/checkout"
			}
			type sent struct{ method, path, key string }
			var (
				mu     sync.Mutex
				log    []sent
				failed bool
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				log = append(log, sent{r.Method, r.URL.Path, r.Header.Get(api.IdempotencyKeyHeader)})
				fail := !failed && r.Method == http.MethodPost && r.URL.Path == checkout
				failed = failed || fail
				mu.Unlock()
				if fail {
					w.Header().Set(balancer.Header, side)
					rtAnswer(w, http.StatusBadGateway, "bad_gateway", nil)
					return
				}
				f.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			stop := rtRunUser(t, side, srv.URL, 7, f.stats, &load.Gate{})
			rtEventually(t, 10*time.Second, "a checkout after the failed one, answered", func() bool {
				return f.stats.Totals().UserRetriesSaved > 0
			})
			stop()

			mu.Lock()
			defer mu.Unlock()
			var checkouts []sent
			keys := map[string]int{}
			for _, s := range log {
				switch {
				case s.method == http.MethodGet && s.key != "":
					t.Errorf("%s %s carried an Idempotency-Key: a read needs none", s.method, s.path)
				case s.method != http.MethodGet && s.key == "":
					t.Errorf("%s %s carried no Idempotency-Key", s.method, s.path)
				case s.method != http.MethodGet:
					keys[s.key]++
				}
				if s.method == http.MethodPost && s.path == checkout {
					checkouts = append(checkouts, s)
				}
			}
			if len(checkouts) < 2 || checkouts[0].key != checkouts[1].key {
				t.Fatalf("checkouts sent: %+v; want the failed one sent again with the same key", checkouts)
			}
			for k, n := range keys {
				if n > 1 && k != checkouts[0].key {
					t.Errorf("key %s was sent with %d writes; want a fresh key for every write but the retried one", k, n)
				}
			}
			got := f.stats.Totals()
			if got.UserRetries != 1 || got.UserRetriesSaved != 1 || got.Errors5xx != 1 {
				t.Errorf("user retries %d (saved %d), 5xx %d; want 1 (1), 1", got.UserRetries, got.UserRetriesSaved, got.Errors5xx)
			}
		})
	}
}

// rtCountingListener counts the bytes the server reads from its clients.
type rtCountingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l rtCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return rtCountingConn{Conn: c, read: l.read}, nil
}

type rtCountingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c rtCountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestUserCountsBytes runs a user with its own counting client against a
// fake that counts what it reads off the wire, and checks that the user's
// account of the bytes it sent is the server's, request for request, and
// that whole journeys and authenticated reads are counted.
func TestUserCountsBytes(t *testing.T) {
	for _, side := range []string{strategy.CredentialCookie, strategy.CredentialAPIKey, strategy.CredentialJWT} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			f := &rtFake{side: side, stats: load.NewSideStats(), loseOn: func(int, string, string) bool { return false }, sessions: map[string]*rtSession{}}
			srv := httptest.NewUnstartedServer(f)
			read := &atomic.Int64{}
			srv.Listener = rtCountingListener{Listener: srv.Listener, read: read}
			srv.Start()
			t.Cleanup(srv.Close)

			client, sent := load.NewUserClient(5 * time.Second)
			u := load.NewUser(load.UserConfig{
				Credential: side, BaseURL: srv.URL, Email: "u@example.org", Password: "pw", Seed: 3,
				Client: client, Sent: sent, Stats: f.stats, Gate: &load.Gate{}, Think: time.Millisecond,
			})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); u.Run(ctx) }()
			rtEventually(t, 10*time.Second, "three whole journeys", func() bool { return f.stats.UserCosts().Journeys >= 3 })
			cancel()
			<-done
			client.CloseIdleConnections()

			c := f.stats.UserCosts()
			tot := f.stats.Totals()
			if c.Requests != tot.Requests {
				t.Errorf("%d requests sized, %d counted: every answered request has a size", c.Requests, tot.Requests)
			}
			// The client wrote every byte the user counted, and at most one
			// request more: the one the end of the run cut short, which the
			// user never saw answered.
			counted := int64(math.Round(c.RequestBytesMean * float64(c.Requests)))
			if got := sent.Load(); got < counted || got > counted+2*int64(c.RequestBytesP50)+512 {
				t.Errorf("the client wrote %d bytes; the user counted %d over %d requests", got, counted, c.Requests)
			}
			// The server may still be reading the request cut short.
			rtEventually(t, 5*time.Second, "the server to read what the client wrote", func() bool { return sent.Load() == read.Load() })
			if c.RequestBytesP50 < 60 || c.JourneyBytesP50 < 5*c.RequestBytesP50 {
				t.Errorf("median request %.0f bytes, median journey %.0f bytes: a journey is many requests", c.RequestBytesP50, c.JourneyBytesP50)
			}
			if c.Reads == 0 || c.Reads >= tot.Requests || c.ReadLatencyMS.P50 <= 0 {
				t.Errorf("%d authenticated reads of %d requests, p50 %.3f ms: the reads are the GETs, not the sign-ins", c.Reads, tot.Requests, c.ReadLatencyMS.P50)
			}
			if tot.JourneysCompleted != c.Journeys || tot.JourneysCompleted < 3 {
				t.Errorf("%d journeys completed, %d sized: each finished journey counts once in both", tot.JourneysCompleted, c.Journeys)
			}
			// The routing cookie is counted apart from the credential:
			// "statelab_route=r-1; " on every request after the sign-in.
			wantRouting := side == strategy.CredentialCookie
			if got := c.RoutingCookieBytesMean > 0; got != wantRouting || c.RoutingCookieBytesMean > 20 {
				t.Errorf("routing cookie %.1f bytes per request; want between 0 and 20, and 0 only without one", c.RoutingCookieBytesMean)
			}
			if c.CredentialBytesMean <= 0 {
				t.Errorf("credential %.1f bytes per request, want more than 0", c.CredentialBytesMean)
			}
			o := c.Observed
			if o == nil {
				t.Fatal("no request observed")
			}
			if o.Readable != (side == strategy.CredentialJWT) || strings.Contains(o.Line, "cred-") {
				t.Errorf("observed %+v: only the JWT is readable, and no opaque credential is written out", o)
			}
		})
	}
}

// TestUserDoesNotRetryATimeout answers a write only after the user's
// client has given up: the request is still being worked on, so the user
// does not send it again.
func TestUserDoesNotRetryATimeout(t *testing.T) {
	t.Parallel()
	f, _ := rtStartFake(t, strategy.CredentialAPIKey, nil)
	var (
		mu       sync.Mutex
		attempts int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/auth/generate-key" {
			mu.Lock()
			attempts++
			n := attempts
			mu.Unlock()
			if n == 1 {
				time.Sleep(300 * time.Millisecond)
			}
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u := load.NewUser(load.UserConfig{
		Credential: strategy.CredentialAPIKey, BaseURL: srv.URL, Email: "u@example.org", Password: "pw", Seed: 1,
		Client: &http.Client{Timeout: 100 * time.Millisecond}, Stats: f.stats, Gate: &load.Gate{}, Think: time.Millisecond,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	rtEventually(t, 10*time.Second, "a sign-in after the one that timed out", func() bool { return f.stats.Totals().SignIns > 0 })
	cancel()
	<-done
	if got := f.stats.Totals(); got.UserRetries != 0 || got.ConnErrors != 1 {
		t.Errorf("user retries %d, connection errors %d; want 0 and 1: a timeout is not sent again at once", got.UserRetries, got.ConnErrors)
	}
}
