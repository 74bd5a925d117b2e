package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
)

// searchWords are what simulated users type into the search box.
var searchWords = []string{"the", "go", "war", "history", "love", "programming", "science", "night", "king", "world", "data", "man"}

// Gate pauses and resumes the simulated users.
type Gate struct {
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

// Pause makes users wait before their next request.
func (g *Gate) Pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused {
		g.paused, g.resume = true, make(chan struct{})
	}
}

// Resume lets users go on.
func (g *Gate) Resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		g.paused = false
		close(g.resume)
	}
}

// Paused reports whether users are paused.
func (g *Gate) Paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// Wait returns when users may go on, or ctx is done.
func (g *Gate) Wait(ctx context.Context) error {
	g.mu.Lock()
	paused, ch := g.paused, g.resume
	g.mu.Unlock()
	if !paused {
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UserConfig describes one simulated user.
type UserConfig struct {
	// Credential is what the user signs in for and sends on every request:
	// strategy.CredentialCookie (a session, and a cart the server keeps),
	// CredentialAPIKey or CredentialJWT (a bearer token, and a cart the user
	// keeps itself).
	Credential string
	BaseURL    string // the side's balancer
	Email      string
	Password   string
	Seed       int64 // same seed, same decisions on both sides
	Client     *http.Client
	Stats      *SideStats
	Gate       *Gate
	// Think is the pause between steps; a user draws from [Think/2, Think*3/2].
	Think time.Duration
	// StartAfter delays the first sign-in, so a crowd of users does not
	// hit the servers (and bcrypt) in the same millisecond.
	StartAfter time.Duration
	// Sent, when set, counts the bytes Client writes on its connections
	// (NewUserClient makes such a client). Only this user may use Client
	// then: the user reads how much each of its requests put on the wire
	// from the difference.
	Sent *atomic.Int64
}

// User is a simulated library user. It keeps its own record of what it
// believes — signed in or not, what its cart holds, which books it has out —
// and counts what it loses when the server forgets it.
type User struct {
	cfg    UserConfig
	rng    *mrand.Rand
	client *http.Client
	api    *client.Client // of the side's balancer, through client

	signedIn bool
	cred     client.Credential // stateless: the bearer token (a session lives in the jar)
	cart     []int64           // what the user believes its cart holds
	borrowed []int64           // borrow ids it has out
	lostOnce bool              // the next sign-in is forced by a loss
	// journeyBytes adds up what the requests of the journey under way
	// put on the wire.
	journeyBytes int64
	// restart is set by RestartClient from another goroutine; the user's
	// own goroutine acts on it before its next request.
	restart atomic.Bool
}

// RestartClient makes the user lose everything its client kept before its
// next request, as a closed browser tab does: the cookie jar (a session
// cookie, a balancer's routing cookie), the bearer token, and the cart it
// kept itself. What the server keeps (a session, until it expires; the
// member's loans, which the server lists) stays where it is.
func (u *User) RestartClient() { u.restart.Store(true) }

// forget acts on RestartClient and counts what went: a sign-in, if the
// user had one, and the cart the user believed it had.
func (u *User) forget() {
	if u.sessionCart() {
		jar, _ := cookiejar.New(nil) // cookiejar.New never fails without options
		u.client.Jar = jar
	}
	u.cfg.Stats.ClientLost(u.signedIn, len(u.cart))
	if u.signedIn {
		u.lostOnce = true
	}
	u.signedIn = false
	u.cred = client.Credential{}
	u.cart = nil
}

// NewUser returns a user; a user with a session gets its own cookie jar,
// which also keeps a balancer's routing cookie.
func NewUser(cfg UserConfig) *User {
	u := &User{cfg: cfg, rng: mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x5eed)), client: cfg.Client}
	if u.sessionCart() {
		jar, _ := cookiejar.New(nil) // cookiejar.New never fails without options
		c := *cfg.Client
		c.Jar = jar
		u.client = &c
	}
	u.api = client.New(cfg.BaseURL, u.client)
	return u
}

// NewUserClient returns an HTTP client for one simulated user and the
// counter of the bytes it writes on its connections: the request line, the
// headers and the body, as they went out, cookies and credentials included.
// A user has its own, as a browser does, so the difference in the counter
// across one request is that request's size on the wire.
func NewUserClient(timeout time.Duration) (*http.Client, *atomic.Int64) {
	sent := &atomic.Int64{}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &countingConn{Conn: c, sent: sent}, nil
			},
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     30 * time.Second,
		},
	}, sent
}

// countingConn counts the bytes written on a connection.
type countingConn struct {
	net.Conn
	sent *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

// sessionCart reports whether the user signs in for a session, whose cart
// the server keeps (in its memory, in redis or sealed in the cookie), rather
// than for a bearer token with a cart of its own.
func (u *User) sessionCart() bool { return u.cfg.Credential == strategy.CredentialCookie }

// errLost ends a journey: the server no longer knows the user.
type errLost struct{ code string }

func (e errLost) Error() string { return "signed out by the server: " + e.code }

// Run loops over journeys until ctx is done.
func (u *User) Run(ctx context.Context) {
	if u.cfg.StartAfter > 0 {
		t := time.NewTimer(u.cfg.StartAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	for ctx.Err() == nil {
		if err := u.cfg.Gate.Wait(ctx); err != nil {
			return
		}
		if !u.signedIn {
			if err := u.signIn(ctx); err != nil {
				u.think(ctx, 4)
				continue
			}
		}
		u.journey(ctx)
	}
}

// think pauses for a random think time times factor.
func (u *User) think(ctx context.Context, factor float64) {
	d := time.Duration(factor * float64(u.cfg.Think) * (0.5 + u.rng.Float64()))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// answer is what the user read of a response; its zero value is no answer
// at all.
type answer struct{ client.Response }

// CodeClientRestart is the code of the errLost a user meets when its own
// client forgot its sign-in (RestartClient), not the server.
const CodeClientRestart = "client_restart"

// Retries a user makes of a request that got no answer from a replica.
const (
	maxUserRetries = 2
	userRetryPause = 250 * time.Millisecond // doubled for the second
)

// do sends one request, counts its outcome, and turns a 401 into errLost.
// A write (any method but GET and HEAD) carries a fresh Idempotency-Key, as
// a careful client sends it: the balancer may then retry it on another
// replica, and when the user itself gets no answer from any replica (the
// connection failed, or the balancer answered 502, 503 or 504 itself) it
// sends the same request again with the same key, at most twice. A request
// the user's client gave up waiting for is not sent again: it is still
// being worked on, and a second copy would only lengthen the queue. The server makes
// the change once; a retry of a change already made gets its answer.
//
// A sign-in is a write too. The servers do not remember its key, but
// sending it twice is safe: a second key, token or session that nobody
// uses.
func (u *User) do(ctx context.Context, method, path string, body any) (answer, error) {
	if u.restart.Swap(false) {
		hadSignIn := u.signedIn
		u.forget()
		if hadSignIn && !client.IsSignIn(path) {
			// The request would go out without the credential the user
			// meant to send: the user notices, as after a lost session,
			// and signs in again.
			return answer{}, errLost{CodeClientRestart}
		}
	}
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		payload = b
	}
	var key string
	if method != http.MethodGet && method != http.MethodHead {
		key = client.NewIdempotencyKey()
	}
	for attempt := 0; ; attempt++ {
		a, again, err := u.send(ctx, method, path, payload, key)
		if attempt > 0 && ctx.Err() == nil {
			u.cfg.Stats.UserRetried(!again)
		}
		if again && attempt < maxUserRetries && ctx.Err() == nil {
			t := time.NewTimer(userRetryPause << attempt)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		if err != nil {
			return a, err
		}
		if a.Status == http.StatusUnauthorized && u.signedIn {
			u.lose()
			return a, errLost{a.Code}
		}
		return a, nil
	}
}

// send makes one try of a request and counts what came back. again says
// that no replica answered it: no HTTP answer at all, or the balancer's own
// 502, 503 or 504.
func (u *User) send(ctx context.Context, method, path string, payload []byte, key string) (a answer, again bool, err error) {
	req, err := u.api.With(u.cred).NewRequest(ctx, client.Request{Method: method, Path: path, Body: payload, IdempotencyKey: key})
	if err != nil {
		return answer{}, false, err
	}
	ph := u.cfg.Stats.Offer()
	var sentBefore int64
	if u.cfg.Sent != nil {
		sentBefore = u.cfg.Sent.Load()
	}
	start := time.Now()
	resp, err := u.client.Do(req)
	fromBalancer := false
	if err == nil {
		// A body that is no envelope leaves the code empty.
		r, rerr := client.ReadResponse(resp)
		if rerr != nil {
			err = rerr
		} else {
			a.Response = *r
			fromBalancer = r.Header.Get(balancer.Header) != ""
		}
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		// The run ended mid-request: that is not something the user saw.
		return a, false, ctx.Err()
	}
	o := Classify(a.Status, a.Code, err)
	u.cfg.Stats.ObserveFrom(ph, o, took)
	if u.cfg.Sent != nil {
		sent := u.cfg.Sent.Load() - sentBefore
		u.journeyBytes += sent
		if err == nil {
			u.cfg.Stats.Sent(sent)
			u.cfg.Stats.Credential(HeaderBytes(req.Header))
		}
	}
	if method == http.MethodGet && o == OutcomeOK {
		// Every GET a user sends is made with its credential: sign-ins
		// are POSTs.
		u.cfg.Stats.ObserveRead(took)
		u.cfg.Stats.ObserveRequest(Observe(method, routeOf(path), a.Status, req.Header))
	}
	switch o {
	case OutcomeConnError:
		u.cfg.Stats.Unexpected(fmt.Sprintf("%s %s: no answer: %v", method, routeOf(path), err))
	case Outcome5xx:
		u.cfg.Stats.Unexpected(fmt.Sprintf("%s %s: %d %s", method, routeOf(path), a.Status, a.Code))
	}
	again = (err != nil && !timedOut(err)) || (fromBalancer && a.Status >= 502 && a.Status <= 504)
	return a, again, err
}

// timedOut reports whether the user's own client gave up waiting. That is
// no network error: the request is still being worked on, so sending it
// again would only add to the queue that made it slow.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// lose records what went with a session the server no longer has.
func (u *User) lose() {
	lostItems := 0
	if u.sessionCart() {
		lostItems = len(u.cart) // the cart lived in the session
		u.cart = nil
	}
	u.cfg.Stats.SessionLost(lostItems)
	u.signedIn = false
	u.cred = client.Credential{}
	u.lostOnce = true
}

func (u *User) signIn(ctx context.Context) error {
	req, err := client.SignInRequest(u.cfg.Credential, client.Credentials{Email: u.cfg.Email, Password: u.cfg.Password})
	if err != nil {
		return err
	}
	a, err := u.do(ctx, req.Method, req.Path, req.Body)
	if err != nil {
		return err
	}
	if a.Status != http.StatusOK && a.Status != http.StatusCreated {
		return fmt.Errorf("sign in: status %d %s", a.Status, a.Code)
	}
	if !u.sessionCart() {
		// A session's cookies are in the jar; a token is sent by hand.
		if u.cred, err = client.SignedIn(u.cfg.Credential, &a.Response, nil, nil); err != nil {
			return err
		}
	}
	u.cfg.Stats.SignedIn()
	if u.lostOnce {
		u.cfg.Stats.Relogin()
		u.lostOnce = false
	}
	u.signedIn = true
	return nil
}

// Steps of a journey, in order.
const (
	stepBrowse = iota
	stepSearch
	stepFillCart
	stepCheckout
	stepListBorrows
	stepReturnAll
)

// journey is one visit: browse, search, pick books into the cart, check
// out, look at the loans, return them. When the server forgets the user
// half-way, the user does what a person does: signs in again and carries on
// where it was. A stateful user finds its cart gone and fills it again.
func (u *User) journey(ctx context.Context) {
	steps := [...]func(context.Context) error{
		stepBrowse: u.browse, stepSearch: u.search, stepFillCart: u.fillCart,
		stepCheckout: u.checkout, stepListBorrows: u.listBorrows, stepReturnAll: u.returnAll,
	}
	u.journeyBytes = 0
	for i := 0; i < len(steps); {
		if err := u.cfg.Gate.Wait(ctx); err != nil {
			return
		}
		err := steps[i](ctx)
		if _, lost := err.(errLost); lost {
			u.think(ctx, 3) // a person takes a moment to notice and log in again
			if err := u.signIn(ctx); err != nil {
				return // Run signs in again before the next journey
			}
			if i == stepCheckout && len(u.cart) == 0 {
				i = stepFillCart
			}
			continue
		} else if err != nil {
			return
		}
		u.think(ctx, 1)
		i++
	}
	if ctx.Err() != nil {
		// One cut short by the end of the run is not counted.
		return
	}
	u.cfg.Stats.JourneyDone()
	if u.cfg.Sent != nil {
		// A whole journey, sign-ins it was forced into included.
		u.cfg.Stats.Journey(u.journeyBytes)
	}
}

// routeOf names a request path by its route, without ids or queries, so
// error samples group.
func routeOf(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func (u *User) browse(ctx context.Context) error {
	_, err := u.do(ctx, http.MethodGet, client.FindBooksPath(library.BookFilter{Limit: 20, Offset: u.rng.IntN(500)}), nil)
	return err
}

func (u *User) search(ctx context.Context) error {
	_, err := u.do(ctx, http.MethodGet, client.FindBooksPath(library.BookFilter{Available: new(true), Query: searchWords[u.rng.IntN(len(searchWords))]}), nil)
	return err
}

func (u *User) fillCart(ctx context.Context) error {
	a, err := u.do(ctx, http.MethodGet, client.FindBooksPath(library.BookFilter{Available: new(true), Limit: 50, Offset: u.rng.IntN(450)}), nil)
	if err != nil || a.Status != http.StatusOK {
		return err
	}
	var books []library.Book
	if err := json.Unmarshal(a.Data, &books); err != nil || len(books) == 0 {
		return nil
	}
	want := 1 + u.rng.IntN(3)
	for _, i := range u.rng.Perm(len(books)) {
		if len(u.cart) >= want {
			break
		}
		id := books[i].ID
		if _, err := u.do(ctx, http.MethodGet, client.BookPath(id), nil); err != nil {
			return err
		}
		if u.sessionCart() {
			a, err := u.do(ctx, http.MethodPost, client.CartItemsPath, client.CartInput{BookID: id})
			if err != nil {
				return err
			}
			// 409 is "already in your cart": a retried add the server
			// had made before it died. The book is there all the same.
			if a.Status != http.StatusCreated && a.Status != http.StatusConflict {
				continue
			}
		}
		u.cart = append(u.cart, id)
		u.think(ctx, 0.5)
	}
	if u.sessionCart() {
		_, err := u.do(ctx, http.MethodGet, client.CartPath, nil)
		return err
	}
	return nil
}

func (u *User) checkout(ctx context.Context) error {
	if len(u.cart) == 0 {
		return nil
	}
	var a answer
	var err error
	if u.sessionCart() {
		a, err = u.do(ctx, http.MethodPost, client.CheckoutPath, nil)
	} else {
		a, err = u.do(ctx, http.MethodPost, client.BorrowsPath, client.BorrowBooksInput{BookIDs: u.cart})
	}
	if err != nil {
		return err
	}
	switch a.Status {
	case http.StatusCreated:
		var recs []library.BorrowRecord
		if err := json.Unmarshal(a.Data, &recs); err != nil {
			return err
		}
		ids := make([]int64, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		u.cfg.Stats.Borrowed(ids...)
		u.borrowed = append(u.borrowed, ids...)
		u.cart = nil
	case http.StatusConflict:
		// Someone took the last copy first: empty the cart and move on.
		if u.sessionCart() {
			for _, id := range u.cart {
				if _, err := u.do(ctx, http.MethodDelete, client.CartItemPath(id), nil); err != nil {
					return err
				}
			}
		}
		u.cart = nil
	}
	return nil
}

func (u *User) listBorrows(ctx context.Context) error {
	_, err := u.do(ctx, http.MethodGet, client.BorrowsPath, nil)
	return err
}

func (u *User) returnAll(ctx context.Context) error {
	for len(u.borrowed) > 0 {
		id := u.borrowed[0]
		a, err := u.do(ctx, http.MethodPost, client.ReturnPath(id), nil)
		if err != nil {
			return err
		}
		if a.Status == http.StatusOK {
			u.cfg.Stats.Returned()
		}
		if a.Status < 500 {
			// Returned, or already returned (a retry after a lost answer):
			// either way it is no longer out.
			u.borrowed = u.borrowed[1:]
		}
		u.think(ctx, 0.5)
	}
	return nil
}
