package balancer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/hostcheck"
	"github.com/statelab/statelab/internal/library"
)

// Backend is one replica the balancer may send requests to.
type Backend struct {
	ID   string
	Addr string // host:port
}

// Config is what New needs. Both sides of a comparison get
// the same balancer; Side only labels its metrics, logs and error answers.
type Config struct {
	Side        string                // the side's name (its strategy, e.g. "memory-sticky"): a label only
	Logger      *slog.Logger          // nil: no logs
	Registerer  prometheus.Registerer // nil: no metrics
	HealthEvery time.Duration         // active health check interval; 0 means 250ms
	// Transport carries requests and health checks to the replicas. nil
	// means a tuned *http.Transport: keep-alives, 64 idle connections per
	// replica, a one-second dial timeout, no proxy from the environment and
	// no transparent gzip, so responses pass through exactly as sent.
	// Another Transport must, as net/http's does, send a request it does
	// not deem idempotent again by itself only when nothing of it was
	// written: the balancer judges what may have reached a replica by it.
	Transport http.RoundTripper
	// Dial, when set, makes the default Transport's connections, within
	// the same one-second timeout: a balancer on a host of its own (package
	// hosts) dials from inside it. Unused with a Transport.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Policy chooses the replica for each request; nil means RoundRobin.
	Policy Policy
	// SlowChecks is how many health checks in a row must time out before a
	// backend leaves rotation; 0 means 3. A replica under a CPU limit that
	// it saturates answers its checks late but is alive; Kubernetes gives
	// such a pod 30 s (3 failed probes, 10 s apart) before it stops
	// sending it traffic.
	SlowChecks int
	// RetryWithin is how long a request may have been in the balancer for
	// a retry after a failure that may have reached a replica to start;
	// 0 means 10s.
	RetryWithin time.Duration
	// MaxBuffered bounds the bytes buffered for a retry at once, over all
	// requests (request bodies, and answers read whole); 0 means 32 MiB. A request whose body would
	// take it over the bound is answered 503 CodeBodiesFull at once rather
	// than held: 300 clients each trickling a 1 MiB body would otherwise
	// hold 300 MiB of the runner's memory.
	MaxBuffered int64
	// Addr is the address the balancer listens on (host:port), the one
	// name besides localhost it answers for (hostcheck): a request with
	// another name in Host is answered 421 misdirected_request, so a page
	// that reached the balancer by DNS rebinding cannot use the replicas
	// behind it. Empty means the local address each connection came in
	// on, which serves a balancer reached by IP address or localhost.
	Addr string
}

// The codes of the balancer's own answers, in the envelope's code field.
const (
	// CodeNoBackend (503): no replica was in service to take the request.
	CodeNoBackend = "no_backend"
	// CodeBadGateway (502): the replica failed before it finished
	// answering; the request may or may not have been processed.
	CodeBadGateway = "bad_gateway"
	// CodeBodiesFull (503): the balancer already buffers as many request
	// bodies as Config.MaxBuffered allows; the request was not sent.
	CodeBodiesFull = "bodies_full"
)

// Balancer is a load balancer whose Policy chooses the replica for each
// request. With RoundRobin, the default, there is no stickiness:
// consecutive requests of one client go to different replicas, which is
// what exposes state kept in one replica's memory. CookieAffinity and
// HashAffinity keep a client on one replica, the first with a routing
// cookie the balancer sets, the second with a hash of the client's session
// cookie, and so hide that state until its replica goes away.
//
// Whatever the policy, a request that could not connect to a replica (it
// never reached a server) is retried on the next replica in the policy's
// order, and the replica that refused leaves rotation until a health check
// passes. A request that may have reached a replica (the connection was
// reset or closed before any response header came back: the process died)
// is retried only when sending it twice is safe: GET, HEAD, PUT, DELETE
// and OPTIONS always, a POST only when it carries an Idempotency-Key (the
// client's word that the server will not make its change twice). A POST
// without a key is never sent again: it may have been processed, and
// sending it again could borrow a book twice. Those retries are bounded:
// at most two of them, and none once the request has spent
// Config.RetryWithin in the balancer. Whether a try may have reached a
// replica is decided by what was written, on any of the Transport's own
// attempts: a request written whole counts as sent, whatever error ends it,
// and so does one whose headers went out when the Transport may have sent it
// again by itself after part of it left (Go's Transport does that for a
// request it deems idempotent; a refused dial there does not mean the first
// attempt never left). X-Idempotency-Key is removed before a request goes
// to a replica: the replicas honour only Idempotency-Key, but the Transport
// reads either as a promise that a POST may be sent twice.
// Request bodies up to 1 MiB are buffered so
// they can be sent again; a larger body is streamed to one replica with no
// retry: the replica rejects it with its own 413 anyway, and the balancer
// stays out of that judgement. The bytes buffered at once are bounded
// (Config.MaxBuffered); past that, 503 bodies_full.
//
// An answer to a request that may be sent again is read whole before any
// of it goes on (up to 256 KiB, within the same bound of buffered bytes), so
// a replica that dies in the middle of its answer is one more failure that
// may have reached it: retried as above, where a proxy that streams would
// hand the client an answer cut off. Answers pass through otherwise
// untouched, Set-Cookie included; a policy may only add to them
// (CookieAffinity adds its cookie). The
// balancer's own answers (503 no_backend or bodies_full, 502 bad_gateway) use the
// project's JSON envelope and carry X-Statelab-Balancer: <side>.
type Balancer struct {
	side      string
	addr      string // Config.Addr
	logger    *slog.Logger
	every     time.Duration
	retryWait time.Duration // Config.RetryWithin
	transport http.RoundTripper
	health    *http.Client
	metrics   *metrics // nil: no metrics
	errorLog  *log.Logger
	buffers   bufferPool
	bodies    *semaphore.Weighted // request-body bytes buffered at once (Config.MaxBuffered)
	policy    Policy
	slowAfter int // Config.SlowChecks

	rotation atomic.Pointer[snapshot] // ready and not draining, read without a lock per request

	mu       sync.Mutex
	backends []*backend
	// retired holds backends SetBackends took away (a replica replaced on
	// a new address) while requests were still in flight on them, so that
	// WaitIdle can wait for those before the old process is stopped.
	retired []*backend
	early   map[string]bool // MarkReady calls for ids SetBackends has not brought yet
	// requests counts the requests handed to each backend ID, kept by ID
	// rather than in the backend so a replica restarted on a new address
	// goes on counting where it left off.
	requests map[string]*atomic.Uint64
	// retries counts the retries by reason and outcome, kept whether or
	// not there is a Registerer, for the runner's report.
	retries map[retryKey]*atomic.Uint64
}

// retryKey is one reason a try failed and what the retry that followed it
// came to.
type retryKey struct{ reason, outcome string }

// snapshot is the rotation as one request sees it.
type snapshot struct {
	backends []*backend
	public   []Backend // the same backends, for the Policy; never modified once stored
}

// backend is a Backend and what the balancer knows about it. The fields
// below the comment change under Balancer.mu only.
type backend struct {
	Backend
	inRotation atomic.Bool // a copy of ready && !draining for the request path

	// inflight counts requests handed to this backend whose answers have
	// not been read to the end: what a drain waits for.
	inflight atomic.Int64
	// requests is the Balancer's counter for this ID, set once at creation.
	requests *atomic.Uint64

	ready    bool
	draining bool
	// slow counts consecutive health checks that timed out. A replica
	// leaves rotation after slowChecks of them, not at the first: on a
	// busy two-core machine one slow answer says little, and taking every
	// replica out at once would turn a slow lab into a broken one.
	slow int
	// gen counts the decisions made outside health checks (MarkReady, a
	// refused connection), so a check that started before one of them
	// cannot undo it with a stale answer.
	gen uint64
}

// Why a try failed, as statelab_lb_retries_total labels the retry that
// followed it.
const (
	ReasonRefused = "refused" // nothing listened on the replica's port: the process is gone (never sent)
	ReasonDial    = "dial"    // the connection could not be made for another reason, e.g. a timeout (never sent)
	ReasonReset   = "reset"   // the connection was reset or broken after the request went out
	ReasonEOF     = "eof"     // the replica closed the connection before any response header, or in an answer being read whole
	ReasonOther   = "other"   // any other failure before a response header
)

// What a retry came to.
const (
	OutcomeAnswered = "answered" // a replica answered the retry: the client never saw the failure
	OutcomeFailed   = "failed"   // the retry failed too
)

const (
	// maxRetries bounds the retries of a request that may have reached a
	// replica. Refused connections reached nothing and are tried on every
	// replica in rotation, as before.
	maxRetries = 2
	// defaultRetryWithin bounds the time a request may have spent in the
	// balancer for a retry to start: a client that has waited that long
	// is better told than kept waiting for a second try. It is long enough
	// for a sign-in queued behind others' bcrypt on a busy machine, and
	// shorter than a typical client timeout (the simulated users wait 15s).
	defaultRetryWithin = 10 * time.Second

	maxBody = 1 << 20 // the largest body buffered for a retry; the replicas accept no more either
	// maxAnswer is the largest answer read whole before it is passed on
	// (readAnswer); the API's answers are a few KiB at most.
	maxAnswer = 256 << 10
	// defaultMaxBuffered is 32 bodies of the largest size; the lab's own
	// users send bodies of a few dozen bytes.
	defaultMaxBuffered = 32 << 20
	healthTimeout      = 500 * time.Millisecond
	defaultEvery       = 250 * time.Millisecond
	maxEarly           = 64 // early MarkReady ids remembered at most
	slowChecks         = 3  // timed-out health checks in a row that take a backend out, by default
)

// Header is set on the balancer's own answers (503 no_backend, 502
// bad_gateway), to the side's name, so a client can tell them from a
// replica's.
const Header = "X-Statelab-Balancer"

// errNoBackend means the request reached no replica: none was in
// rotation, or every one tried refused the connection.
var errNoBackend = errors.New("no replica could be reached")

// errBodiesFull means buffering the request's body would take the
// balancer over Config.MaxBuffered.
var errBodiesFull = errors.New("too many request-body bytes buffered")

// New returns a balancer with no backends; SetBackends gives it
// some and Run keeps their health current.
func New(cfg Config) *Balancer {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("strategy", cfg.Side)
	every := cfg.HealthEvery
	if every <= 0 {
		every = defaultEvery
	}
	transport := cfg.Transport
	if transport == nil {
		dial := (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext
		if cfg.Dial != nil {
			dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				ctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				return cfg.Dial(ctx, network, addr)
			}
		}
		transport = &http.Transport{
			DialContext:           dial,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       30 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		}
	}
	retryWait := cfg.RetryWithin
	if retryWait <= 0 {
		retryWait = defaultRetryWithin
	}
	maxBuffered := cfg.MaxBuffered
	if maxBuffered <= 0 {
		maxBuffered = defaultMaxBuffered
	}
	b := &Balancer{
		side:      cfg.Side,
		addr:      cfg.Addr,
		logger:    logger,
		every:     every,
		retryWait: retryWait,
		transport: transport,
		health: &http.Client{
			Transport:     transport,
			Timeout:       healthTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		// ReverseProxy reports a replica that died mid-answer through this
		// logger; that is one line per request, so only at debug level.
		errorLog:  slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		early:     map[string]bool{},
		requests:  map[string]*atomic.Uint64{},
		retries:   map[retryKey]*atomic.Uint64{},
		policy:    cfg.Policy,
		slowAfter: cfg.SlowChecks,
		bodies:    semaphore.NewWeighted(maxBuffered),
	}
	if b.slowAfter <= 0 {
		b.slowAfter = slowChecks
	}
	for _, reason := range []string{ReasonRefused, ReasonDial, ReasonReset, ReasonEOF, ReasonOther} {
		for _, outcome := range []string{OutcomeAnswered, OutcomeFailed} {
			b.retries[retryKey{reason, outcome}] = new(atomic.Uint64)
		}
	}
	if b.policy == nil {
		b.policy = RoundRobin()
	}
	b.rotation.Store(&snapshot{})
	if cfg.Registerer != nil {
		b.metrics = newMetrics(cfg.Registerer, cfg.Side, logger)
		b.metrics.inRotation.Set(0)
	}
	return b
}

// SetBackends replaces the set of backends. A backend whose ID and Addr
// were already known keeps its state (ready, draining); any other starts
// out of rotation until a health check passes or MarkReady is called.
func (b *Balancer) SetBackends(backends []Backend) { b.setBackends(backends, false) }

// SetReadyBackends is SetBackends for backends the caller has seen answer
// ready (the supervisor's set holds only such processes): a backend it
// brings is in rotation at once, in the same step as the one it replaces
// leaves. So a replica restarted on a new address under the same ID — a
// surge restart, the new process ready before the old one stops — leaves
// no moment with nobody in rotation, even when it is the only replica.
func (b *Balancer) SetReadyBackends(backends []Backend) { b.setBackends(backends, true) }

func (b *Balancer) setBackends(backends []Backend, ready bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := make(map[string]*backend, len(b.backends))
	for _, be := range b.backends {
		old[be.ID] = be
	}
	next := make([]*backend, 0, len(backends))
	for _, nb := range backends {
		if be, ok := old[nb.ID]; ok && be.Addr == nb.Addr {
			next = append(next, be)
			delete(old, nb.ID)
			continue
		}
		be := &backend{Backend: nb, requests: b.requests[nb.ID]}
		if be.requests == nil {
			be.requests = new(atomic.Uint64)
			b.requests[nb.ID] = be.requests
		}
		if b.early[nb.ID] || ready {
			be.ready = true
			delete(b.early, nb.ID)
		}
		next = append(next, be)
	}
	b.retired = slices.DeleteFunc(b.retired, func(be *backend) bool { return be.inflight.Load() == 0 })
	for _, gone := range old {
		gone.inRotation.Store(false) // a request holding an old snapshot skips it on retry
		if gone.inflight.Load() > 0 {
			b.retired = append(b.retired, gone)
		}
	}
	b.backends = next
	b.rebuildLocked()
}

// MarkReady puts a backend in rotation now: the supervisor has seen its
// /api/ready answer 200 itself. It also ends a drain, since a replica that
// answers ready again is a new process. A MarkReady that arrives before the
// SetBackends that brings the backend is remembered for it.
func (b *Balancer) MarkReady(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	be := b.findLocked(id)
	if be == nil {
		if len(b.early) >= maxEarly { // only ids that never came can fill it: forget them
			clear(b.early)
		}
		b.early[id] = true
		return
	}
	be.gen++
	be.ready, be.draining = true, false
	b.rebuildLocked()
}

// Drain takes a backend out of rotation before a planned stop: new requests
// go elsewhere, the ones in flight finish. It stays out, whatever the health
// checks say, until MarkReady or a SetBackends that gives its ID a new Addr.
// It drains the backend with be's ID only while that backend is at be.Addr:
// a process already replaced under the same ID on another address is out
// of rotation anyway, and its successor must not be drained in its stead.
func (b *Balancer) Drain(be Backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.findLocked(be.ID); cur != nil && cur.Addr == be.Addr && !cur.draining {
		cur.draining = true
		b.rebuildLocked()
		b.logger.Info("backend draining", "replica", be.ID, "addr", be.Addr)
	}
}

// WaitIdle waits until the backend with be's ID at be.Addr — in rotation,
// drained, or already replaced by SetBackends — has finished every request
// the balancer handed it, so the process can be stopped with nothing in
// flight on any of its connections. It returns early when ctx is done.
func (b *Balancer) WaitIdle(ctx context.Context, be Backend) error {
	b.mu.Lock()
	var found *backend
	for _, c := range slices.Concat(b.backends, b.retired) {
		if c.ID == be.ID && c.Addr == be.Addr {
			found = c
			break
		}
	}
	b.mu.Unlock()
	if found == nil {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for found.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s at %s still has %d request(s) in flight: %w", be.ID, be.Addr, found.inflight.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// InRotation returns the backends new requests may go to: ready and not
// draining.
func (b *Balancer) InRotation() []Backend {
	public := b.rotation.Load().public
	return append(make([]Backend, 0, len(public)), public...)
}

// Requests returns how many requests the balancer handed to each backend
// ID since it was made, for every ID it has been given: the same count as
// statelab_balancer_requests_total summed over codes, kept whether or not
// there is a Registerer, so that a runner can compute each replica's share
// of the traffic after a scale event. A request is counted when it ends.
func (b *Balancer) Requests() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]uint64, len(b.requests))
	for id, n := range b.requests {
		out[id] = n.Load()
	}
	return out
}

// RetryCount is how many retries the balancer made after tries that failed
// for one reason, and what they came to. Answered counts the requests the
// retries saved: each saved request has exactly one retry that a replica
// answered.
type RetryCount struct {
	Answered uint64 `json:"answered"`
	Failed   uint64 `json:"failed"`
}

// Retries returns the retries since the balancer was made, by the reason
// the try before them failed (ReasonRefused, ReasonReset, ...): the same
// counts as statelab_lb_retries_total, kept whether or not there is a
// Registerer.
func (b *Balancer) Retries() map[string]RetryCount {
	out := map[string]RetryCount{}
	for k, n := range b.retries {
		c := out[k.reason]
		if k.outcome == OutcomeAnswered {
			c.Answered = n.Load()
		} else {
			c.Failed = n.Load()
		}
		out[k.reason] = c
	}
	return out
}

// Run checks every backend's GET /api/ready each HealthEvery until ctx is
// done. A failing check takes a backend out of rotation, a passing one puts
// it back unless it is draining.
func (b *Balancer) Run(ctx context.Context) {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		b.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Balancer) checkAll(ctx context.Context) {
	type probe struct {
		be  *backend
		gen uint64
	}
	b.mu.Lock()
	probes := make([]probe, len(b.backends))
	for i, be := range b.backends {
		probes[i] = probe{be, be.gen}
	}
	b.mu.Unlock()

	results := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() { results[i] = b.check(ctx, p.be.Addr) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // a check cut short by shutdown says nothing about the replica
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	changed := false
	for i, p := range probes {
		be := p.be
		if be.gen != p.gen || b.findLocked(be.ID) != be {
			continue // decided since the check began, or no longer ours
		}
		ok := results[i] == nil
		if !ok && timedOut(results[i]) {
			be.slow++
			if be.slow < b.slowAfter {
				continue
			}
		} else {
			be.slow = 0
		}
		if ok == be.ready {
			continue
		}
		be.ready, changed = ok, true
		if ok {
			b.logger.Info("backend healthy", "replica", be.ID, "addr", be.Addr)
		} else {
			b.logger.Info("backend out of rotation", "replica", be.ID, "addr", be.Addr, "reason", "health check", "err", results[i])
		}
	}
	if changed {
		b.rebuildLocked()
	}
}

func (b *Balancer) check(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+client.ReadyPath, nil)
	if err != nil {
		return err
	}
	resp, err := b.health.Do(req)
	if err != nil {
		return err
	}
	// Read what is left so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("status " + strconv.Itoa(resp.StatusCode))
	}
	return nil
}

// markDown takes a backend out of rotation after it refused a connection.
func (b *Balancer) markDown(be *backend, cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	be.gen++
	if !be.ready {
		return
	}
	be.ready = false
	if b.findLocked(be.ID) == be {
		b.rebuildLocked()
		b.logger.Info("backend out of rotation", "replica", be.ID, "addr", be.Addr, "reason", "connect failed", "err", cause)
	}
}

func (b *Balancer) findLocked(id string) *backend {
	for _, be := range b.backends {
		if be.ID == id {
			return be
		}
	}
	return nil
}

// rebuildLocked publishes a new rotation snapshot; b.mu must be held.
func (b *Balancer) rebuildLocked() {
	snap := &snapshot{}
	for _, be := range b.backends {
		in := be.ready && !be.draining
		be.inRotation.Store(in)
		if in {
			snap.backends = append(snap.backends, be)
			snap.public = append(snap.public, be.Backend)
		}
	}
	b.rotation.Store(snap)
	if b.metrics != nil {
		b.metrics.inRotation.Set(float64(len(snap.backends)))
	}
}

// ServeHTTP proxies r to the backend the policy chooses.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{b: b, in: r, began: time.Now()}
	// Deferred, so a request cut off by a replica dying mid-answer (which
	// ReverseProxy ends with panic(http.ErrAbortHandler)) is counted too.
	defer ex.count()

	if !b.hostAllowed(r) {
		ex.status = http.StatusMisdirectedRequest
		b.writeError(w, ex.status, library.EMISDIRECTED, fmt.Sprintf("The %s balancer answers only for its own address or localhost on its port, not for Host %q: a page that reached it under another name (DNS rebinding) may not use it.", b.side, r.Host))
		return
	}

	err := ex.readBody(r)
	defer ex.releaseBody()
	if errors.Is(err, errBodiesFull) {
		ex.status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
		b.writeError(w, ex.status, CodeBodiesFull, "The "+b.side+" balancer is holding as many request bodies as it may; try again in a moment.")
		return
	}
	if err != nil {
		ex.status = http.StatusBadRequest
		b.writeError(w, ex.status, "bad_request", "The balancer could not read the request body: the client stopped sending it.")
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    ex,
		ErrorHandler: ex.fail,
		ErrorLog:     b.errorLog,
		BufferPool:   &b.buffers,
	}
	proxy.ServeHTTP(w, r)
}

// rewrite keeps the path, query and Host of the inbound request; the
// exchange fills in the replica's address for each try.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "replica.invalid"
	pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	pr.SetXForwarded()
	// The Transport would take it as a promise no replica makes (see
	// Balancer) and send a POST that carries it twice.
	pr.Out.Header.Del(xIdempotencyKey)
}

// xIdempotencyKey is the header Go's Transport treats, like
// Idempotency-Key, as making a POST safe to replay; the replicas ignore it.
const xIdempotencyKey = "X-Idempotency-Key"

// exchange is one request's way through the balancer. It is the
// ReverseProxy's Transport, which is where a try can fail and the next begin.
type exchange struct {
	b          *Balancer
	in         *http.Request // as the client sent it: what the policy sees
	began      time.Time     // when the request reached the balancer
	orderBuf   [8]int        // room for the policy's order without an allocation of its own
	body       []byte        // the buffered body (or, when !replayable, its first part)
	replayable bool          // body is all of it: a refused connection may be retried
	held       int64         // bytes of Balancer.bodies this request holds
	backend    *backend
	status     int
}

// readBody buffers the request's body so that it can be sent again, once
// its bytes are reserved in Balancer.bodies (errBodiesFull when they cannot
// be); releaseBody gives them back.
func (ex *exchange) readBody(r *http.Request) error {
	ex.replayable = true
	switch {
	case r.ContentLength == 0:
		return nil
	case r.ContentLength > maxBody:
		ex.replayable = false
		return nil
	case r.ContentLength > 0:
		if !ex.hold(r.ContentLength) {
			return errBodiesFull
		}
		ex.body = make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, ex.body)
		return err
	}
	// Unknown length (chunked): reserve the most it may take, read up to
	// one byte over the limit, and give back what it did not take.
	if !ex.hold(maxBody + 1) {
		return errBodiesFull
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	ex.body = body
	if err != nil {
		return err
	}
	ex.replayable = len(body) <= maxBody
	if ex.replayable {
		ex.give(ex.held - int64(len(body)))
	}
	// A body over the limit is streamed with its first part: that part
	// stays reserved until the request ends.
	return nil
}

// hold reserves n bytes of Balancer.bodies for this request, without
// waiting: a client that cannot be served now is told so at once.
func (ex *exchange) hold(n int64) bool {
	if !ex.b.bodies.TryAcquire(n) {
		return false
	}
	ex.held += n
	if m := ex.b.metrics; m != nil {
		m.buffered.Add(float64(n))
	}
	return true
}

// give gives back n of the bytes hold reserved.
func (ex *exchange) give(n int64) {
	if n <= 0 {
		return
	}
	ex.b.bodies.Release(n)
	ex.held -= n
	if m := ex.b.metrics; m != nil {
		m.buffered.Sub(float64(n))
	}
}

// releaseBody gives back every byte hold reserved.
func (ex *exchange) releaseBody() { ex.give(ex.held) }

// RoundTrip sends req to the backends in rotation, in the policy's order,
// until one answers, or a failure that may have reached a replica cannot
// be retried (see Balancer).
func (ex *exchange) RoundTrip(req *http.Request) (*http.Response, error) {
	b := ex.b
	snap := b.rotation.Load()
	if len(snap.backends) == 0 {
		closeBody(req)
		return nil, errNoBackend
	}
	order := b.policy.Order(ex.orderBuf[:0], ex.in, snap.public)
	var (
		failed  *backend // the last backend whose try failed, counted as a retry when another try follows
		reason  string   // why it failed
		sent    int      // retries after failures that may have reached a replica
		lastErr error    // the last failure that may have reached a replica
	)
	for _, i := range order {
		if i < 0 || i >= len(snap.backends) {
			continue // a policy's mistake costs it a try, not the balancer a panic
		}
		be := snap.backends[i]
		if failed != nil && !ex.replayable {
			break // the body was handed to the first try and cannot be sent again
		}
		// Count the request in before looking at the backend's state, so a
		// Drain that begins now either turns this request away here or
		// finds it counted and waits for it (WaitIdle).
		be.inflight.Add(1)
		if !be.inRotation.Load() {
			be.inflight.Add(-1)
			continue // taken out since the snapshot: drained, or refused another request
		}
		if failed != nil && b.metrics != nil {
			b.metrics.retries.WithLabelValues(failed.ID).Inc()
		}
		ex.backend = be
		var wrote written
		resp, err := b.transport.RoundTrip(ex.try(req, be, &wrote))
		if err == nil && retrySafe(ex.in) {
			err = ex.readAnswer(resp)
		}
		if err == nil {
			if failed != nil {
				ex.countRetry(reason, OutcomeAnswered)
			}
			ex.status = resp.StatusCode
			resp.Body = &countedBody{ReadCloser: resp.Body, be: be}
			b.policy.Answered(ex.in, resp, be.Backend)
			return resp, nil
		}
		be.inflight.Add(-1)
		if failed != nil {
			ex.countRetry(reason, OutcomeFailed)
		}
		if req.Context().Err() != nil {
			return nil, err // the client went away: no one is left to answer
		}
		reason = failureReason(err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// Nobody listens there: the process is gone. A dial that
			// timed out only says the replica is slow to accept (an
			// overloaded machine); the health checks judge that.
			b.markDown(be, err)
		}
		// What was written decides, not the last error alone: when the
		// Transport wrote the request, the connection failed and its own
		// retry could not connect, the dial error hides an attempt that
		// may have been processed (written.reached).
		reached := wrote.reached(req, err)
		if reached && neverSent(err) {
			reason = ReasonOther
		}
		if reached {
			// The request may have reached the replica, which may have
			// made its change before it died.
			lastErr = err
			if !retrySafe(ex.in) || sent >= maxRetries || time.Since(ex.began) > b.retryWait {
				return nil, err
			}
			sent++
		}
		failed = be
	}
	ex.backend = nil
	closeBody(req)
	if lastErr != nil {
		// Every replica left to try refused, after one that may have
		// received the request: say what the client must know, that it
		// may have been processed.
		return nil, lastErr
	}
	return nil, errNoBackend
}

// readAnswer reads a replica's answer to a request that may be sent again
// whole, before any of it goes to the client, when it is at most maxAnswer
// bytes and Balancer.bodies has room for it: a replica that dies in the
// middle of its answer then costs a retry, as one that dies before its
// headers does, rather than an answer cut off that the client cannot use.
// A larger answer, or one with no room to hold it, streams through as
// before. The bytes stay reserved until the request ends.
func (ex *exchange) readAnswer(resp *http.Response) error {
	n := resp.ContentLength
	if n > maxAnswer {
		return nil
	}
	reserve := n
	if n < 0 {
		reserve = maxAnswer + 1
	}
	if !ex.hold(reserve) {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		resp.Body.Close()
		ex.give(reserve)
		return err
	}
	if len(body) > maxAnswer {
		// Longer than its length said it would be, or of unknown length
		// and long: what was read goes first, the rest streams.
		resp.Body = prefixed{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return nil
	}
	ex.give(reserve - int64(len(body)))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// countRetry counts one retry, by the reason the try before it failed and
// what it came to.
func (ex *exchange) countRetry(reason, outcome string) {
	ex.b.retries[retryKey{reason, outcome}].Add(1)
	if m := ex.b.metrics; m != nil {
		m.lbRetries.WithLabelValues(reason, outcome).Inc()
	}
}

// retrySafe reports whether a request may be sent again after it may have
// reached a replica: the methods RFC 9110 calls idempotent, and a POST or
// PATCH whose client sent an Idempotency-Key.
func retrySafe(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return r.Header.Get(api.IdempotencyKeyHeader) != ""
}

// failureReason names why a try failed.
func failureReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case neverSent(err):
		return ReasonDial
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ReasonReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonEOF
	}
	return ReasonOther
}

// try is req addressed to be, with a fresh copy of the buffered body; wrote
// is set once the Transport has written its headers on any attempt.
func (ex *exchange) try(req *http.Request, be *backend, wrote *written) *http.Request {
	trace := &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.headers.Store(true) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.whole.Store(true)
			}
		},
	}
	// A shallow copy the Transport may own.
	out := req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	u := *req.URL
	u.Host = be.Addr
	out.URL = &u
	switch {
	case !ex.replayable:
		out.Body = prefixed{io.MultiReader(bytes.NewReader(ex.body), req.Body), req.Body}
	case len(ex.body) == 0:
		if req.Body != nil {
			out.Body = http.NoBody
		}
		out.ContentLength = 0
	default:
		body := ex.body
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.TransferEncoding = nil
		// GetBody lets the Transport itself resend the body when a pooled
		// keep-alive connection turns out to be closed before anything was
		// written, which happens after every replica restart.
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return out
}

// countedBody is a response body that counts its request out of the
// backend's in-flight requests when the ReverseProxy closes it, which it
// does on every path, a client that went away included.
type countedBody struct {
	io.ReadCloser
	be   *backend
	once sync.Once
}

func (c *countedBody) Close() error {
	c.once.Do(func() { c.be.inflight.Add(-1) })
	return c.ReadCloser.Close()
}

// closeBody honours the RoundTripper contract on paths that send nothing.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// timedOut reports whether a health check failed by taking too long,
// rather than by a refused connection or a status that says "not ready".
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// neverSent reports whether err means the request reached no server: the
// connection was never made. Everything else may have been processed.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// written is what the Transport's attempts at one try wrote, as their
// trace tells it (set from the Transport's writer goroutines).
type written struct {
	headers atomic.Bool // an attempt's headers went into its buffer: not necessarily onto the wire
	whole   atomic.Bool // an attempt wrote the whole request and flushed it
}

// reached reports whether a try of req that ended in err may have reached
// the replica. An attempt that wrote the whole request may have, and so
// may one that ended in anything but a dial error. A dial error ends the
// try when the Transport's own retry could not connect; what came before
// it depends on req. The Transport sends a request it deems idempotent
// (transportResends) again after an attempt that wrote part or all of it,
// so there a write that went wrong may have left bytes on the wire, and
// headers written count as sent: never a duplicate, at the price of a
// needless 502 when nothing had left. Any other request (a POST without a
// key) it sends again only after an attempt that wrote nothing (its
// nothingWrittenError: a kept-alive connection found closed), so a dial
// error with no whole write before it means no byte reached a replica,
// and the next replica may take it.
func (w *written) reached(req *http.Request, err error) bool {
	if w.whole.Load() || !neverSent(err) {
		return true
	}
	return transportResends(req) && w.headers.Load()
}

// transportResends reports whether net/http's Transport may send req
// again by itself after a failure that may have come after some of it was
// written: a request it deems idempotent (its GET, HEAD, OPTIONS and
// TRACE, or any with an Idempotency-Key or X-Idempotency-Key header). It
// errs on the side of yes: the Transport also wants a body it can rewind.
func transportResends(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// fail is the ReverseProxy's ErrorHandler: nothing has been written yet.
func (ex *exchange) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNoBackend) {
		ex.status = http.StatusServiceUnavailable
		ex.b.writeError(w, ex.status, CodeNoBackend, "No "+ex.b.side+" replica could take the request; try again in a moment.")
		return
	}
	ex.status = http.StatusBadGateway
	ex.b.writeError(w, ex.status, CodeBadGateway, "The "+ex.b.side+" replica failed before it finished answering; the request may or may not have been processed.")
}

func (ex *exchange) count() {
	backend := "none"
	if ex.backend != nil {
		backend = ex.backend.ID
		ex.backend.requests.Add(1)
	}
	if m := ex.b.metrics; m != nil {
		m.requests.WithLabelValues(backend, strconv.Itoa(ex.status)).Inc()
	}
}

// hostAllowed reports whether r's Host names the balancer (Config.Addr).
func (b *Balancer) hostAllowed(r *http.Request) bool {
	addr := b.addr
	if addr == "" {
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok {
			return false
		}
		addr = local.String()
	}
	return hostcheck.Names{Addr: addr}.Allowed(r.Host)
}

// writeError answers for the balancer itself, in the project's envelope,
// with a header that tells it apart from a replica's answer.
func (b *Balancer) writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set(Header, b.side)
	api.Encode(w, status, api.Envelope{Success: false, Code: code, Message: message})
}

// prefixed is a body whose first part was already read from the client:
// reading gives the whole body, closing closes the client's.
type prefixed struct {
	io.Reader
	io.Closer
}

// bufferPool reuses ReverseProxy's 32 KiB copy buffers, which it would
// otherwise allocate for every response.
type bufferPool struct{ p sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *bufferPool) Put(b []byte) { p.p.Put(&b) }

// metrics are the balancer's series, already curried with its side.
type metrics struct {
	requests   *prometheus.CounterVec // backend, code
	retries    *prometheus.CounterVec // backend
	lbRetries  *prometheus.CounterVec // reason, outcome
	inRotation prometheus.Gauge
	buffered   prometheus.Gauge
}

// newMetrics registers the balancer's metrics. Both balancers of a run
// share one registry, so the second finds the vectors already there and
// uses them with its own side label.
func newMetrics(reg prometheus.Registerer, side string, logger *slog.Logger) *metrics {
	requests := register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_balancer_requests_total",
		Help: "Requests through the balancer, by strategy (the side), backend (the replica the request went to, or none) and the status code sent to the client.",
	}, []string{"strategy", "backend", "code"}))
	retries := register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_balancer_retries_total",
		Help: "Requests sent on to the next replica because the try on this backend failed before any response header (refused, reset, closed), by strategy and backend.",
	}, []string{"strategy", "backend"}))
	lbRetries := register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_lb_retries_total",
		Help: "Retries the balancer made, by strategy, the reason the try before failed (refused, dial, reset, eof, other) and the outcome (answered: a replica answered the retry, and the client never saw the failure; failed).",
	}, []string{"strategy", "reason", "outcome"}))
	inRotation := register(reg, logger, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "statelab_balancer_backends_in_rotation",
		Help: "Backends the balancer sends new requests to: ready and not draining, by strategy.",
	}, []string{"strategy"}))
	buffered := register(reg, logger, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "statelab_balancer_buffered_bytes",
		Help: "Bytes the balancer holds now, by strategy: request bodies it may send again and answers it reads whole before passing them on; at most its MaxBuffered, beyond which a request body is answered 503 bodies_full (an answer streams instead).",
	}, []string{"strategy"}))
	labels := prometheus.Labels{"strategy": side}
	m := &metrics{
		requests:   requests.MustCurryWith(labels),
		retries:    retries.MustCurryWith(labels),
		lbRetries:  lbRetries.MustCurryWith(labels),
		inRotation: inRotation.With(labels),
		buffered:   buffered.With(labels),
	}
	for _, reason := range []string{ReasonRefused, ReasonDial, ReasonReset, ReasonEOF, ReasonOther} {
		for _, outcome := range []string{OutcomeAnswered, OutcomeFailed} {
			m.lbRetries.WithLabelValues(reason, outcome)
		}
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name. Any other failure is logged and c is used unregistered: the
// balancer's job is to carry traffic, not to stop a run over a metric.
func register[C prometheus.Collector](reg prometheus.Registerer, logger *slog.Logger, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	logger.Error("balancer metric not registered", "err", err)
	return c
}
