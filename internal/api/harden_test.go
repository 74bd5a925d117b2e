package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

// TestStatelessEmailOnlyKeys keeps the seed lesson's key flow, now behind
// stateless.InsecureEmailOnlyKeys: an email alone registers an account
// without a password and gets a key, and so does anyone who names it later.
func TestStatelessEmailOnlyKeys(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	cfg := newConfig(t, db, "a")
	l := newLab(t, db, map[string]*server{
		"": serve(t, stateless.NewServer(cfg, stateless.NewTokens(testKey, tokenTTL, time.Now), time.Now, stateless.InsecureEmailOnlyKeys()), cfg, "stateless", library.EINVALIDTOKEN),
	})
	runTable(t, l, []apiCase{
		{name: "key for alice without password", method: "POST", path: "/api/auth/generate-key", body: `{"email":"alice@example.com"}`, wantStatus: 401, wantCode: library.EUNAUTHORIZED},
		{name: "key for a new email registers it", serial: true, method: "POST", path: "/api/auth/generate-key", body: `{"email":" Newbie@Example.com "}`, wantStatus: 201, check: wantKey("newbie", "newbie@example.com")},
		{name: "the new member's key works", serial: true, who: "newbie", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("newbie@example.com", library.RoleMember)},
		{name: "anyone gets another key for it", serial: true, method: "POST", path: "/api/auth/generate-key", body: `{"email":"newbie@example.com"}`, wantStatus: 201, check: wantKey("newbie2", "newbie@example.com")},
		{name: "no token without a password", serial: true, method: "POST", path: "/api/auth/token", body: credentialsJSON("newbie@example.com", "anything"), wantStatus: 401, wantCode: library.EUNAUTHORIZED},
	})
}

// TestGenerateKeyOneAnswer: without the flag, a missing account and a wrong
// password get the same answer, and both pay for a bcrypt comparison, so
// neither the answer nor its timing tells which emails have accounts. A key
// for an account without a password (registered under the flag) is refused
// the same way.
func TestGenerateKeyOneAnswer(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	if _, err := db.CreateMember(t.Context(), library.Member{Email: "nopass@example.com", Name: "No Pass"}); err != nil {
		t.Fatal(err)
	}
	srv := newStateless(t, db, testKey, "a")
	post := func(email, password string) (int, string, time.Duration) {
		start := time.Now()
		resp, err := srv.client.Post(srv.url+"/api/auth/generate-key", "application/json", strings.NewReader(credentialsJSON(email, password)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env envelope
		if err := decodeJSON(resp, &env); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, env.Code + " " + env.Message, time.Since(start)
	}
	median := func(email, password string) (string, time.Duration) {
		var times []time.Duration
		var answer string
		for range 5 {
			status, a, d := post(email, password)
			answer = strconv.Itoa(status) + " " + a
			times = append(times, d)
		}
		slices.Sort(times)
		return answer, times[len(times)/2]
	}
	wrongAnswer, wrong := median("alice@example.com", "not-her-password")
	for _, c := range []struct{ name, email, password string }{
		{"no such account", "nobody@example.com", "whatever-password"},
		{"account without a password", "nopass@example.com", "whatever-password"},
	} {
		answer, took := median(c.email, c.password)
		if answer != wrongAnswer {
			t.Errorf("%s: answer %q, want the wrong password's %q", c.name, answer, wrongAnswer)
		}
		// bcrypt is ~50 ms a try; a lookup that skipped it would be 100
		// times faster. A factor of 3 either way leaves room for a busy
		// machine.
		if took < wrong/3 || took > 3*wrong {
			t.Errorf("%s: median %v, wrong password %v: want about the same", c.name, took, wrong)
		}
	}
	if !strings.HasPrefix(wrongAnswer, "401 unauthorized") {
		t.Errorf("wrong password: got %q, want 401 unauthorized", wrongAnswer)
	}
}

// TestSignInRateLimits: past the per-account burst, each sign-in route
// answers 429 too_many_requests with Retry-After, for right and wrong
// passwords alike, while another account goes on; the per-address limit
// applies to loopback clients only when asked to.
func TestSignInRateLimits(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	// A clock that never moves: no token comes back during the test.
	frozen := time.Now()
	clock := func() time.Time { return frozen }
	limited := func(limits api.SignInLimits, service string) *server {
		cfg := newConfig(t, db, service)
		cfg.SignIn = api.NewSignInLimiter(limits, clock)
		if service == "stateful" {
			return serve(t, stateful.NewServer(cfg, stateful.NewMemoryStore(testKey, sessionOptions, time.Now)), cfg, service, library.ELOGINREQUIRED)
		}
		return serve(t, stateless.NewServer(cfg, stateless.NewTokens(testKey, tokenTTL, time.Now), time.Now), cfg, service, library.EINVALIDTOKEN)
	}
	perAccount := api.SignInLimits{AccountRate: 1, AccountBurst: 3, AddrRate: 1, AddrBurst: 1}
	for _, tt := range []struct {
		server *server
		path   string
		ok     int
	}{
		{limited(perAccount, "stateful"), "/api/auth/login", 200},
		{limited(perAccount, "stateless"), "/api/auth/generate-key", 201},
		{limited(perAccount, "stateless"), "/api/auth/token", 200},
	} {
		t.Run(tt.path, func(t *testing.T) {
			try := func(email, password string) *http.Response {
				resp, err := tt.server.client.Post(tt.server.url+tt.path, "application/json", strings.NewReader(credentialsJSON(email, password)))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			// Loopback is exempt from the per-address burst of 1.
			for i, pw := range []string{"wrong-1", "wrong-2", "wonderland"} {
				want := 401
				if pw == "wonderland" {
					want = tt.ok
				}
				if got := try("alice@example.com", pw).StatusCode; got != want {
					t.Fatalf("sign-in %d: got %d, want %d", i+1, got, want)
				}
			}
			for _, pw := range []string{"wonderland", "wrong-4"} {
				resp := try("Alice@Example.com", pw)
				if resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("over the burst: got %d, want 429", resp.StatusCode)
				}
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
					t.Errorf("Retry-After: got %q, want whole seconds, at least 1", resp.Header.Get("Retry-After"))
				}
			}
			if got := try("bob@example.com", "builder").StatusCode; got != tt.ok {
				t.Errorf("another account: got %d, want %d", got, tt.ok)
			}
		})
	}

	t.Run("the 429 envelope", func(t *testing.T) {
		srv := limited(api.SignInLimits{AccountRate: 1, AccountBurst: 1, AddrRate: 1, AddrBurst: 1}, "stateless")
		l := newLab(t, db, map[string]*server{"": srv})
		runTable(t, l, []apiCase{
			{name: "first", serial: true, method: "POST", path: "/api/auth/token", body: credentialsJSON("bob@example.com", "nope"), wantStatus: 401, wantCode: library.EUNAUTHORIZED},
			{name: "second", serial: true, method: "POST", path: "/api/auth/token", body: credentialsJSON("bob@example.com", "builder"), wantStatus: 429, wantCode: library.ETOOMANYREQUESTS, check: wantMessage("try again in")},
		})
	})

	t.Run("loopback limited when asked", func(t *testing.T) {
		srv := limited(api.SignInLimits{AccountRate: 1, AccountBurst: 100, AddrRate: 1, AddrBurst: 2, LimitLoopback: true}, "stateless")
		var got []int
		for i := range 3 {
			resp, err := srv.client.Post(srv.url+"/api/auth/token", "application/json", strings.NewReader(credentialsJSON(fmt.Sprintf("user%d@example.com", i), "pw")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got = append(got, resp.StatusCode)
		}
		if want := []int{401, 401, 429}; !slices.Equal(got, want) {
			t.Errorf("three accounts from one address, burst 2: got %v, want %v", got, want)
		}
	})
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
