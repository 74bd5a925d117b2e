package load_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/strategy"
)

// olFake is a side reduced to what an open-loop user touches: a sign-in
// that hands out a session cookie or a token, and GET requests, answered
// after a delay, that honour the credential until the fake forgets it.
type olFake struct {
	delay time.Duration
	// forgetEvery, when above 0, makes the fake forget a credential on
	// every n-th GET it answers: a 401 session_lost (or invalid_token).
	forgetEvery int64

	mu      sync.Mutex
	valid   map[string]bool
	signIns int
	gets    atomic.Int64
	block   chan struct{} // when set, GETs wait for it to close
}

func olStart(t *testing.T, f *olFake) string {
	t.Helper()
	f.valid = map[string]bool{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *olFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/auth/") {
		f.mu.Lock()
		f.signIns++
		cred := "cred-" + strconv.Itoa(f.signIns)
		f.valid[cred] = true
		f.mu.Unlock()
		if r.URL.Path == "/api/auth/login" {
			http.SetCookie(w, &http.Cookie{Name: "session_id", Value: cred, Path: "/"})
			rtAnswer(w, http.StatusOK, "", map[string]any{"email": "x"})
			return
		}
		rtAnswer(w, http.StatusCreated, "", map[string]any{"api_key": cred})
		return
	}
	if f.block != nil {
		<-f.block
	}
	time.Sleep(f.delay)
	cred := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if c, err := r.Cookie("session_id"); err == nil {
		cred = c.Value
	}
	n := f.gets.Add(1)
	f.mu.Lock()
	ok := f.valid[cred]
	if ok && f.forgetEvery > 0 && n%f.forgetEvery == 0 {
		delete(f.valid, cred)
		ok = false
	}
	f.mu.Unlock()
	if !ok {
		rtAnswer(w, http.StatusUnauthorized, "session_lost", nil)
		return
	}
	rtAnswer(w, http.StatusOK, "", []any{})
}

func olConfig(url, credential string, users int, stats *load.SideStats) load.OpenLoopConfig {
	var emails []string
	for i := range users {
		emails = append(emails, "user"+strconv.Itoa(i)+"@example.com")
	}
	return load.OpenLoopConfig{
		Credential: credential, BaseURL: url, Emails: emails, Password: "pw",
		Rate: 200, Deadline: time.Second, Seed: 1, Stats: stats, Gate: &load.Gate{},
	}
}

// olRun signs the pool in, then sends arrivals for d.
func olRun(t *testing.T, o *load.OpenLoop, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	o.Run(ctx)
}

func TestOpenLoopSignsInOnceAndSends(t *testing.T) {
	for _, credential := range []string{strategy.CredentialCookie, strategy.CredentialAPIKey} {
		t.Run(credential, func(t *testing.T) {
			f := &olFake{}
			stats := load.NewSideStats()
			o := load.NewOpenLoop(olConfig(olStart(t, f), credential, 4, stats))
			if n := o.SignIn(t.Context()); n != 4 {
				t.Fatalf("SignIn: %d of 4 signed in", n)
			}
			stats.BeginPhase()
			began := time.Now()
			olRun(t, o, 500*time.Millisecond)
			elapsed := time.Since(began)
			tot := stats.Totals()
			// Poisson arrivals at 200/s: within a generous band of 200 × elapsed,
			// whatever the machine's load (late arrivals go out at once).
			want := 200 * elapsed.Seconds()
			if float64(tot.Offered) < 0.6*want || float64(tot.Offered) > 1.4*want {
				t.Errorf("offered %d in %v, want about %.0f", tot.Offered, elapsed, want)
			}
			// Arrivals still in flight when the run is cancelled are not
			// answered; on a busy machine many may be. None may be dropped
			// or time out, and every answer is a 2xx.
			if tot.OK != tot.Requests || tot.Requests == 0 || tot.Requests > tot.Offered || tot.Dropped != 0 || tot.Timeouts != 0 {
				t.Errorf("totals %+v: every arrival should be one request answered 2xx", tot)
			}
			if tot.SignIns != 4 || f.signIns != 4 {
				t.Errorf("sign-ins: counted %d, the server saw %d; want 4 (one per user, before the arrivals)", tot.SignIns, f.signIns)
			}
			if p := stats.Phase(0); p.Offered != tot.Offered || p.Outcomes[load.OutcomeOK] != tot.OK {
				t.Errorf("phase 0 %+v, want the whole run %+v", p, tot)
			}
		})
	}
}

func TestOpenLoopDeadline(t *testing.T) {
	f := &olFake{delay: 300 * time.Millisecond}
	stats := load.NewSideStats()
	cfg := olConfig(olStart(t, f), strategy.CredentialJWT, 2, stats)
	cfg.Deadline = 50 * time.Millisecond
	cfg.Rate = 100
	o := load.NewOpenLoop(cfg)
	if n := o.SignIn(t.Context()); n != 2 {
		t.Fatalf("SignIn: %d of 2 signed in", n)
	}
	olRun(t, o, 300*time.Millisecond)
	tot := stats.Totals()
	if tot.Timeouts == 0 || tot.Timeouts != tot.Requests || tot.ConnErrors != 0 {
		t.Errorf("totals %+v: every request outlived its deadline and must count as a timeout, not a connection error", tot)
	}
	// A timeout is counted when its deadline passes, not when the slow
	// answer would have come.
	if tot.LatencyMS.P99 > 200 {
		t.Errorf("p99 %.0f ms with a 50 ms deadline", tot.LatencyMS.P99)
	}
}

func TestOpenLoopDropsAtTheCap(t *testing.T) {
	f := &olFake{block: make(chan struct{})}
	stats := load.NewSideStats()
	cfg := olConfig(olStart(t, f), strategy.CredentialAPIKey, 2, stats)
	cfg.MaxOutstanding = 3
	o := load.NewOpenLoop(cfg)
	if n := o.SignIn(t.Context()); n != 2 {
		t.Fatalf("SignIn: %d of 2 signed in", n)
	}
	stats.BeginPhase()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	<-ctx.Done()
	close(f.block) // let the three outstanding requests end
	<-done
	tot := stats.Totals()
	if tot.Dropped == 0 || tot.Dropped != tot.Offered-3 {
		t.Errorf("offered %d, dropped %d: with 3 requests held, every later arrival is dropped", tot.Offered, tot.Dropped)
	}
	if tot.Timeouts < tot.Dropped {
		t.Errorf("timeouts %d < dropped %d: a dropped arrival is a timeout", tot.Timeouts, tot.Dropped)
	}
	if p := stats.Phase(0); p.Dropped != tot.Dropped {
		t.Errorf("phase 0 dropped %d, want %d", p.Dropped, tot.Dropped)
	}
}

// TestOpenLoopLosesAndSignsInAgain checks that a 401 counts one lost
// sign-in however many requests of that sign-in were in flight, and that
// the user signs in again at its next request.
func TestOpenLoopLosesAndSignsInAgain(t *testing.T) {
	f := &olFake{forgetEvery: 25, delay: 5 * time.Millisecond}
	stats := load.NewSideStats()
	o := load.NewOpenLoop(olConfig(olStart(t, f), strategy.CredentialCookie, 1, stats))
	if n := o.SignIn(t.Context()); n != 1 {
		t.Fatalf("SignIn: %d of 1 signed in", n)
	}
	olRun(t, o, 600*time.Millisecond)
	tot := stats.Totals()
	f.mu.Lock()
	signIns := f.signIns
	f.mu.Unlock()
	if tot.SessionsLost == 0 {
		t.Fatalf("totals %+v: the fake forgot the session, the user lost nothing", tot)
	}
	// Every loss but perhaps the last was followed by a sign-in.
	if tot.Relogins < tot.SessionsLost-1 || int64(signIns) != tot.SignIns || tot.SignIns != 1+tot.Relogins {
		t.Errorf("lost %d, re-logins %d, sign-ins %d (server %d)", tot.SessionsLost, tot.Relogins, tot.SignIns, signIns)
	}
	if tot.SessionsLost > tot.SessionLost {
		t.Errorf("%d sessions lost from %d answers of 401: one answer cannot lose two", tot.SessionsLost, tot.SessionLost)
	}
}

// TestOpenLoopPause checks that nothing arrives while the users are paused.
func TestOpenLoopPause(t *testing.T) {
	f := &olFake{}
	stats := load.NewSideStats()
	cfg := olConfig(olStart(t, f), strategy.CredentialJWT, 1, stats)
	cfg.Gate.Pause()
	o := load.NewOpenLoop(cfg)
	o.SignIn(t.Context())
	olRun(t, o, 200*time.Millisecond)
	if tot := stats.Totals(); tot.Offered != 0 {
		t.Errorf("offered %d while paused", tot.Offered)
	}
}

func TestDefaultMaxOutstanding(t *testing.T) {
	for _, tt := range []struct {
		rate     float64
		deadline time.Duration
		want     int
	}{{480, 2 * time.Second, 1920}, {1, time.Second, 16}, {100, 500 * time.Millisecond, 100}} {
		if got := load.DefaultMaxOutstanding(tt.rate, tt.deadline); got != tt.want {
			t.Errorf("DefaultMaxOutstanding(%g, %v) = %d, want %d", tt.rate, tt.deadline, got, tt.want)
		}
	}
}
