package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"sync"
	"time"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
)

// DefaultDeadline is how long an open-loop request waits for its answer
// before the user gives up: a timeout, a user-visible failure.
const DefaultDeadline = 2 * time.Second

// DefaultRateUsers is the size of the pool of signed-in users the
// open-loop requests come from.
const DefaultRateUsers = 10

// ConnsPerUser is how many requests one open-loop user has in flight at
// most, on as many connections; the rest wait in line for one, as in a
// browser or an app's connection pool, and their deadlines run while they
// wait. Each user of the pool stands for a busy client (dozens of requests
// a second), so it gets more than a browser's 6 connections per host.
const ConnsPerUser = 16

// signInTimeout bounds one open-loop user's sign-in. It is longer than a
// request's deadline: a person waits longer for a login than for a page,
// and a sign-in (a bcrypt comparison) on a replica short of CPU is slow.
// The requests waiting for it still time out at their own deadlines.
const signInTimeout = 10 * time.Second

// OpenLoopConfig describes one side's open-loop load: requests that arrive
// at a rate, whether or not the side keeps up, as real users' requests do.
// The simulated users of UserConfig wait for each answer and then think;
// when a side slows down they slow down with it, and the load it gets
// falls to what it can carry. Open-loop arrivals do not wait.
type OpenLoopConfig struct {
	// Credential is what the pool's users sign in for (as UserConfig's).
	Credential string
	BaseURL    string   // the side's balancer
	Emails     []string // one signed-in user per email: the pool the requests come from
	Password   string
	// Rate is the mean number of arrivals per second; the gaps between
	// them are exponential (a Poisson process), drawn from Seed.
	Rate float64
	// Deadline bounds each request, from its arrival to the end of its
	// answer; past it the request is cancelled and counted as a timeout.
	Deadline time.Duration
	// MaxOutstanding caps the requests in flight. An arrival beyond it is
	// not sent and counts as a timeout (SideStats.Drop), so a side that
	// has stopped answering cannot make the runner hold ever more requests.
	MaxOutstanding int
	Seed           int64
	Stats          *SideStats
	Gate           *Gate
}

// DefaultMaxOutstanding is the cap on a side's outstanding open-loop
// requests for a rate and a deadline: twice what the rate can have in
// flight when every request waits its whole deadline, so that the cap
// drops arrivals only when cancelled requests do not end.
func DefaultMaxOutstanding(rate float64, deadline time.Duration) int {
	return max(16, int(math.Ceil(2*rate*deadline.Seconds())))
}

// OpenLoop sends one side's open-loop requests.
type OpenLoop struct {
	cfg   OpenLoopConfig
	users []*poolUser
	slots chan struct{} // one per request outstanding
	wg    sync.WaitGroup
}

// poolUser is one signed-in user of the pool. Many of its requests may be
// in flight at once, as from a person's open browser tabs.
type poolUser struct {
	cfg    *OpenLoopConfig
	email  string
	client *http.Client
	api    *client.Client // of the side's balancer, through client

	mu       sync.Mutex
	signedIn bool
	cred     client.Credential // a stateless user's bearer token (a session lives in the jar)
	gen      uint64            // counts sign-ins, so a 401 for an old sign-in is not a new loss
	signing  chan struct{}     // open while a sign-in is under way
	failed   Outcome           // what the last failed sign-in saw
	lost     bool              // the next sign-in is forced by a loss
}

// NewOpenLoop returns the open-loop load of one side; nothing is sent
// until SignIn and Run.
func NewOpenLoop(cfg OpenLoopConfig) *OpenLoop {
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.MaxOutstanding <= 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding(cfg.Rate, cfg.Deadline)
	}
	o := &OpenLoop{cfg: cfg, slots: make(chan struct{}, cfg.MaxOutstanding)}
	for _, email := range cfg.Emails {
		// Each user has its own connections, at most ConnsPerUser, like
		// a browser.
		t := &http.Transport{MaxConnsPerHost: ConnsPerUser, MaxIdleConnsPerHost: ConnsPerUser, IdleConnTimeout: 30 * time.Second}
		u := &poolUser{cfg: &o.cfg, email: email, client: &http.Client{Transport: t}}
		if cfg.Credential == strategy.CredentialCookie {
			// The session cookie, and a balancer's routing cookie, are
			// this user's alone.
			u.client.Jar, _ = cookiejar.New(nil) // never fails without options
		}
		u.api = client.New(cfg.BaseURL, u.client)
		o.users = append(o.users, u)
	}
	return o
}

// SignIn signs every user of the pool in before the arrivals begin, so the
// first seconds of the run measure the load, not a crowd at the login
// form. It returns how many users are signed in when all have tried, or
// when ctx is done.
func (o *OpenLoop) SignIn(ctx context.Context) int {
	var wg sync.WaitGroup
	for _, u := range o.users {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, _, _, err := u.ready(ctx, ctx); err == nil {
					return
				}
				sleepCtx(ctx, 200*time.Millisecond) // a 429 or a slow start: try again
			}
		})
	}
	wg.Wait()
	n := 0
	for _, u := range o.users {
		u.mu.Lock()
		if u.signedIn {
			n++
		}
		u.mu.Unlock()
	}
	return n
}

// Run sends requests at the configured rate until ctx is done, then waits
// for those still outstanding. While the gate is paused nothing arrives.
func (o *OpenLoop) Run(ctx context.Context) {
	defer o.wg.Wait()
	if o.cfg.Rate <= 0 || len(o.users) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(uint64(o.cfg.Seed), 0x0be9))
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	next := time.Now()
	for {
		if o.cfg.Gate.Paused() {
			if o.cfg.Gate.Wait(ctx) != nil {
				return
			}
			next = time.Now() // the arrivals of the pause never came
		}
		next = next.Add(time.Duration(rng.ExpFloat64() / o.cfg.Rate * float64(time.Second)))
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return // the timer and the end came together: no arrival after the end
		}
		// Behind schedule (a busy runner), the arrivals that are due go
		// out at once: the load offered stays what was asked for.
		o.arrive(ctx, o.users[rng.IntN(len(o.users))], openLoopPath(rng))
	}
}

// openLoopPath draws what an arrival asks for: mostly catalogue searches,
// which cost a replica the most CPU per byte the runner has to carry, and
// pages and single books.
func openLoopPath(rng *rand.Rand) string {
	switch n := rng.IntN(4); n {
	case 0:
		return client.FindBooksPath(library.BookFilter{Limit: 20, Offset: rng.IntN(500)})
	case 1:
		return client.BookPath(int64(1 + rng.IntN(500)))
	default:
		return client.FindBooksPath(library.BookFilter{Available: new(true), Query: searchWords[rng.IntN(len(searchWords))]})
	}
}

// arrive sends one request, unless too many are outstanding already.
func (o *OpenLoop) arrive(ctx context.Context, u *poolUser, path string) {
	ph := o.cfg.Stats.Offer()
	select {
	case o.slots <- struct{}{}:
	default:
		o.cfg.Stats.Drop(ph)
		return
	}
	o.wg.Go(func() {
		defer func() { <-o.slots }()
		u.act(ctx, ph, path)
	})
}

// act is one user action: GET path, after signing in first if the user is
// signed out. Its one outcome and its latency, from the arrival to the end
// of the answer, are what the user saw; a sign-in on the way is part of it.
func (u *poolUser) act(runCtx context.Context, ph int, path string) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(runCtx, u.cfg.Deadline)
	defer cancel()
	cred, gen, failed, err := u.ready(runCtx, ctx)
	if err != nil {
		if runCtx.Err() == nil {
			u.cfg.Stats.ObserveFrom(ph, failed, time.Since(start))
		}
		return
	}
	req, err := u.api.With(cred).NewRequest(ctx, client.Request{Method: http.MethodGet, Path: path})
	if err != nil {
		return
	}
	sent := time.Now()
	a, err := u.send(req)
	if runCtx.Err() != nil {
		return // the run ended mid-request: not something a user saw
	}
	o := classifyOpen(ctx, a, err)
	u.cfg.Stats.ObserveFrom(ph, o, time.Since(start))
	if o == OutcomeOK {
		// An authenticated read, as the users' GETs are: timed from its
		// sending, a sign-in on the way left out.
		u.cfg.Stats.ObserveRead(time.Since(sent))
	}
	u.unexpected(o, http.MethodGet, path, a, err)
	if a.Status == http.StatusUnauthorized {
		u.lose(gen)
	}
}

// classifyOpen is Classify, with a request cut off by its deadline counted
// as a timeout rather than a connection error.
func classifyOpen(ctx context.Context, a answer, err error) Outcome {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return OutcomeTimeout
	}
	return Classify(a.Status, a.Code, err)
}

// send does one request and reads the answer; the body is decoded only
// when its code matters (a 401 or a 5xx), which spares the runner's CPU.
func (u *poolUser) send(req *http.Request) (answer, error) {
	resp, err := u.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	if s := resp.StatusCode; s == http.StatusUnauthorized || s >= 500 || client.IsSignIn(req.URL.Path) {
		// A body that is no envelope leaves the code empty.
		r, err := client.ReadResponse(resp)
		if err != nil {
			return answer{}, err
		}
		return answer{*r}, nil
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return answer{}, err
	}
	var a answer
	a.Status = resp.StatusCode
	return a, nil
}

// unexpected records what a 5xx or a transport error said.
func (u *poolUser) unexpected(o Outcome, method, path string, a answer, err error) {
	switch o {
	case OutcomeConnError:
		u.cfg.Stats.Unexpected(fmt.Sprintf("%s %s: no answer: %v", method, routeOf(path), err))
	case Outcome5xx:
		u.cfg.Stats.Unexpected(fmt.Sprintf("%s %s: %d %s", method, routeOf(path), a.Status, a.Code))
	}
}

// ready returns the user's credential, signing in first when the user is
// signed out; a sign-in already under way is waited for. The sign-in runs
// on runCtx, bounded by signInTimeout, so a slow one can finish for the
// requests after this one; this request waits only until ctx is done. On
// failure, failed is what this request saw: a timeout, or what the
// sign-in was answered.
func (u *poolUser) ready(runCtx, ctx context.Context) (cred client.Credential, gen uint64, failed Outcome, err error) {
	u.mu.Lock()
	if u.signedIn {
		defer u.mu.Unlock()
		return u.cred, u.gen, OutcomeOK, nil
	}
	ch := u.signing
	if ch == nil {
		ch = make(chan struct{})
		u.signing = ch
		go u.signIn(runCtx, ch)
	}
	u.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return client.Credential{}, 0, OutcomeTimeout, ctx.Err()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.signedIn {
		return client.Credential{}, 0, u.failed, errors.New("sign-in failed: " + u.failed.String())
	}
	return u.cred, u.gen, OutcomeOK, nil
}

// signIn signs the user in and closes done.
func (u *poolUser) signIn(runCtx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(runCtx, signInTimeout)
	defer cancel()
	cred, o, err := u.postSignIn(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	defer close(done)
	u.signing = nil
	if err != nil || o != OutcomeOK {
		u.failed = o
		return
	}
	u.signedIn, u.cred = true, cred
	u.gen++
	u.cfg.Stats.SignedIn()
	if u.lost {
		u.cfg.Stats.Relogin()
		u.lost = false
	}
}

// postSignIn asks for a session or a token. Its answer is not an outcome
// of its own: the user action that needed it reports it.
func (u *poolUser) postSignIn(ctx context.Context) (client.Credential, Outcome, error) {
	var none client.Credential
	sr, err := client.SignInRequest(u.cfg.Credential, client.Credentials{Email: u.email, Password: u.cfg.Password})
	if err != nil {
		return none, OutcomeConnError, err
	}
	req, err := u.api.NewRequest(ctx, sr)
	if err != nil {
		return none, OutcomeConnError, err
	}
	a, err := u.send(req)
	o := classifyOpen(ctx, a, err)
	u.unexpected(o, sr.Method, sr.Path, a, err)
	if err != nil || o != OutcomeOK {
		return none, o, err
	}
	if u.cfg.Credential == strategy.CredentialCookie {
		return none, OutcomeOK, nil // the jar holds the session cookie
	}
	cred, err := client.SignedIn(u.cfg.Credential, &a.Response, nil, nil)
	if err != nil {
		return none, OutcomeOther4xx, fmt.Errorf("sign-in answer without a token: %v", err)
	}
	return cred, OutcomeOK, nil
}

// lose records that the server no longer knows the user's sign-in number
// gen; a 401 for an older sign-in, answered after a new one, is not a loss.
func (u *poolUser) lose(gen uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.signedIn || u.gen != gen {
		return
	}
	u.signedIn, u.cred, u.lost = false, client.Credential{}, true
	u.cfg.Stats.SessionLost(0) // the pool's users keep no cart
}

// sleepCtx pauses for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
