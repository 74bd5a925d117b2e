package load

import (
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/internal/library"
)

// Outcome is what a simulated user saw of one request.
type Outcome int

// The outcomes, from what the client really received.
const (
	OutcomeOK                Outcome = iota // 2xx
	OutcomeSessionLost                      // 401 session_lost: a valid cookie the replica held no session for
	OutcomeLoginRequired                    // 401 login_required: no cookie at all
	OutcomeConflict                         // 409: a borrow lost the race for the last copy; the server answered correctly
	OutcomeInvalidCredential                // 401 invalid_token or invalid_session: a credential this replica cannot verify
	OutcomeOther4xx                         // any other 4xx (400, 404, …)
	Outcome5xx                              // 5xx, from a replica or from the balancer (502: the replica died mid-request)
	OutcomeConnError                        // no HTTP answer at all
	// OutcomeTimeout is an open-loop request that had no answer within its
	// deadline (the user gave up), or that was never sent because too many
	// requests were already outstanding (see SideStats.Drop).
	OutcomeTimeout
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "session_lost", "login_required", "conflict", "invalid_credential", "error_4xx", "error_5xx", "conn_error", "timeout"}

func (o Outcome) String() string { return outcomeNames[o] }

// Classify turns a status and an envelope code into an outcome; err is the
// transport error, if the client got no answer.
func Classify(status int, code string, err error) Outcome {
	switch {
	case err != nil:
		return OutcomeConnError
	case status >= 200 && status < 300:
		return OutcomeOK
	case status == 401 && code == library.ESESSIONLOST:
		return OutcomeSessionLost
	case status == 401 && code == library.ELOGINREQUIRED:
		return OutcomeLoginRequired
	case status == 401 && (code == library.EINVALIDTOKEN || code == library.EINVALIDSESSION):
		return OutcomeInvalidCredential
	case status == 409:
		return OutcomeConflict
	case status >= 400 && status < 500:
		return OutcomeOther4xx
	case status >= 500:
		return Outcome5xx
	default:
		return OutcomeOther4xx
	}
}

// latency buckets: upper bounds growing by 10% from 50 µs to about 2 min.
// Percentiles are read from them, so they are within 10% of the truth.
var latencyBounds = func() []float64 {
	var b []float64
	for v := 50e-6; v < 120; v *= 1.1 {
		b = append(b, v)
	}
	return b
}()

// SideStats counts what one side's users saw. Every number in the lab's
// terminal, report, feed and /metrics is read from here, so they can never
// disagree.
type SideStats struct {
	outcomes      [numOutcomes]atomic.Int64
	sessionsLost  atomic.Int64
	cartItemsLost atomic.Int64
	// clientSignIns and clientCartItems count what the users' own clients
	// forgot (a client-restart), apart from what the servers lost.
	clientSignIns   atomic.Int64
	clientCartItems atomic.Int64
	relogins        atomic.Int64
	borrows         atomic.Int64
	// journeysDone counts the journeys a user finished, from its first
	// step to its last: what the users got done.
	journeysDone atomic.Int64
	returns      atomic.Int64
	signIns      atomic.Int64
	// offered counts the requests the users started, the open-loop
	// arrivals included, whether or not they were sent: the load offered.
	offered atomic.Int64
	// dropped counts the open-loop arrivals that were never sent because
	// the side had too many requests outstanding; each is a timeout too.
	dropped     atomic.Int64
	userRetries atomic.Int64
	userSaved   atomic.Int64

	mu        sync.Mutex
	buckets   []uint64 // len(latencyBounds)+1, the last is +Inf
	sum       float64
	reads     []uint64 // the same buckets, for authenticated GETs answered 2xx
	borrowIDs []int64  // every borrow the users were answered 201 for
	// sizes counts the requests by their size on the wire; sizes repeat a
	// lot (the same routes, the same credential), so the map stays small
	// and the median is exact.
	sizes     map[int64]int64
	sentBytes int64
	sentN     int64
	credBytes int64 // of sentBytes, what the credential took (Cookie and Authorization headers)
	// routeBytes is, of sentBytes, what the balancer's routing cookies
	// took: kept apart from the credential, which they are not.
	routeBytes int64
	// observed is the first authenticated read answered 2xx, as an
	// observer of the request sees it.
	observed *ObservedRequest
	journeys []int64 // bytes of each whole journey, at most maxJourneys
	// unexpected counts the 5xx answers and transport errors by what they
	// said, so a report can explain them instead of only counting them.
	unexpected map[string]int64
	// phases count the requests by the phase they arrived in (see
	// BeginPhase); empty until the first phase begins.
	phases []*PhaseCount
	// lbRetries reads the retries of the side's balancer, counted there;
	// nil before CountRetries.
	lbRetries func() map[string]balancer.RetryCount
}

// PhaseCount is what became of the requests that arrived in one phase of
// a run, whenever they were answered: a request that arrived before a
// scale-out and timed out after it belongs to the phase before.
type PhaseCount struct {
	Offered  int64
	Dropped  int64
	Outcomes [numOutcomes]int64
	// Buckets are the latencies of the phase's answered requests, in the
	// buckets Quantile reads.
	Buckets []uint64
}

// BeginPhase makes the requests that arrive from now on count in a new
// phase, and returns its index.
func (s *SideStats) BeginPhase() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phases = append(s.phases, &PhaseCount{Buckets: make([]uint64, len(latencyBounds)+1)})
	return len(s.phases) - 1
}

// Phase returns the counts of phase i so far.
func (s *SideStats) Phase(i int) PhaseCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.phases) {
		return PhaseCount{Buckets: make([]uint64, len(latencyBounds)+1)}
	}
	p := *s.phases[i]
	p.Buckets = slices.Clone(p.Buckets)
	return p
}

// CountRetries makes the totals include the retries of the side's
// balancer, as its Retries reports them: requests the users never saw fail.
func (s *SideStats) CountRetries(retries func() map[string]balancer.RetryCount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lbRetries = retries
}

// BalancerRetries returns the balancer's retries by the reason the try
// before them failed; empty before CountRetries.
func (s *SideStats) BalancerRetries() map[string]balancer.RetryCount {
	s.mu.Lock()
	f := s.lbRetries
	s.mu.Unlock()
	if f == nil {
		return map[string]balancer.RetryCount{}
	}
	return f()
}

// maxUnexpectedKinds bounds how many different messages are kept.
const maxUnexpectedKinds = 20

// maxJourneys bounds how many journeys' sizes are kept: hours of users.
const maxJourneys = 1 << 16

// Unexpected records what a 5xx answer or a transport error said.
func (s *SideStats) Unexpected(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unexpected == nil {
		s.unexpected = map[string]int64{}
	}
	if _, ok := s.unexpected[msg]; ok || len(s.unexpected) < maxUnexpectedKinds {
		s.unexpected[msg]++
	} else {
		s.unexpected["(other messages)"]++
	}
}

// UnexpectedSamples returns the recorded messages and how often each came.
func (s *SideStats) UnexpectedSamples() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.unexpected)
}

// SignedIn records a successful sign-in (a login, a key or a JWT).
func (s *SideStats) SignedIn() { s.signIns.Add(1) }

// NewSideStats returns zeroed counters.
func NewSideStats() *SideStats {
	return &SideStats{buckets: make([]uint64, len(latencyBounds)+1), reads: make([]uint64, len(latencyBounds)+1), sizes: map[int64]int64{}}
}

// Observe records one request that arrived in the current phase.
func (s *SideStats) Observe(o Outcome, d time.Duration) {
	s.mu.Lock()
	ph := len(s.phases) - 1
	s.mu.Unlock()
	s.ObserveFrom(ph, o, d)
}

// ObserveFrom records one request that arrived in phase ph (what Offer
// returned when it arrived).
func (s *SideStats) ObserveFrom(ph int, o Outcome, d time.Duration) {
	s.outcomes[o].Add(1)
	sec := d.Seconds()
	i := bucketOf(sec)
	s.mu.Lock()
	s.buckets[i]++
	s.sum += sec
	if ph >= 0 && ph < len(s.phases) {
		s.phases[ph].Outcomes[o]++
		s.phases[ph].Buckets[i]++
	}
	s.mu.Unlock()
}

// ObserveRead records the latency of an authenticated read (a GET made
// with the user's credential) that was answered 2xx: the request every
// strategy serves the same way apart from finding its caller.
func (s *SideStats) ObserveRead(d time.Duration) {
	i := bucketOf(d.Seconds())
	s.mu.Lock()
	s.reads[i]++
	s.mu.Unlock()
}

// Sent records the size of one answered request as it went on the wire:
// request line, headers (the credential among them) and body.
func (s *SideStats) Sent(bytes int64) {
	s.mu.Lock()
	s.sizes[bytes]++
	s.sentBytes += bytes
	s.sentN++
	s.mu.Unlock()
}

// Credential records how many bytes of an answered request's headers its
// sign-in took (the session cookie, the Authorization header with its
// token) and how many the balancer's routing cookies took (see
// HeaderBytes). What is left is what the same request costs with neither:
// the baseline a cost is measured against.
func (s *SideStats) Credential(credential, routing int64) {
	s.mu.Lock()
	s.credBytes += credential
	s.routeBytes += routing
	s.mu.Unlock()
}

// ObserveRequest keeps o as the side's observed request, unless one is kept
// already: one request is enough to show what an observer learns.
func (s *SideStats) ObserveRequest(o ObservedRequest) {
	s.mu.Lock()
	if s.observed == nil {
		s.observed = &o
	}
	s.mu.Unlock()
}

// JourneyDone records a journey a user finished.
func (s *SideStats) JourneyDone() { s.journeysDone.Add(1) }

// Journey records the bytes a user sent over one whole journey, from its
// first request to its last, sign-ins it was forced into included.
func (s *SideStats) Journey(bytes int64) {
	s.mu.Lock()
	if len(s.journeys) < maxJourneys {
		s.journeys = append(s.journeys, bytes)
	}
	s.mu.Unlock()
}

// UserCosts is what one side's users paid per request and per journey,
// counted by their own HTTP clients.
type UserCosts struct {
	// RequestBytesP50 and RequestBytesMean are the size of a request on
	// the wire (request line, headers, body), over every answered request.
	RequestBytesP50  float64 `json:"request_bytes_p50"`
	RequestBytesMean float64 `json:"request_bytes_mean"`
	Requests         int64   `json:"requests_sized"`
	// CredentialBytesMean is how many bytes of a request, on average, its
	// credential took (the session cookie, or the Authorization header):
	// what the sign-in costs every request, over the same requests as
	// RequestBytesMean. RoutingCookieBytesMean is what the balancer's
	// routing cookies took beside it (balancer.RouteCookie,
	// balancer.HashKeyCookie): what sticky routing costs every request.
	// Each counts its header line's share, name, value and separators.
	CredentialBytesMean    float64 `json:"credential_bytes_mean"`
	RoutingCookieBytesMean float64 `json:"routing_cookie_bytes_mean"`
	// JourneyBytesP50 is the median of what one whole journey sent (sign
	// in if needed, browse, search, fill a cart, check out, return).
	JourneyBytesP50 float64 `json:"journey_bytes_p50"`
	Journeys        int64   `json:"journeys"`
	// ReadLatencyMS holds the percentiles of authenticated reads answered
	// 2xx: sign-ins (bcrypt) and failures left out.
	ReadLatencyMS Percentile `json:"read_latency_ms"`
	Reads         int64      `json:"reads"`
	// Observed is one authenticated read of the run as an observer of the
	// request (an access log, a proxy) sees it; nil before there was one.
	Observed *ObservedRequest `json:"observed_request,omitempty"`
}

// UserCosts returns what the side's users have paid so far.
func (s *SideStats) UserCosts() UserCosts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := UserCosts{Requests: s.sentN, Journeys: int64(len(s.journeys))}
	if s.sentN > 0 {
		c.RequestBytesMean = float64(s.sentBytes) / float64(s.sentN)
		c.CredentialBytesMean = float64(s.credBytes) / float64(s.sentN)
		c.RoutingCookieBytesMean = float64(s.routeBytes) / float64(s.sentN)
		c.RequestBytesP50 = medianOfCounts(s.sizes, s.sentN)
	}
	if len(s.journeys) > 0 {
		j := slices.Clone(s.journeys)
		slices.Sort(j)
		c.JourneyBytesP50 = float64(j[len(j)/2])
	}
	for _, n := range s.reads {
		c.Reads += int64(n)
	}
	c.ReadLatencyMS = Percentile{P50: Quantile(s.reads, .50) * 1000, P95: Quantile(s.reads, .95) * 1000, P99: Quantile(s.reads, .99) * 1000}
	if s.observed != nil {
		o := *s.observed
		c.Observed = &o
	}
	return c
}

// medianOfCounts returns the median of values counted in a map of value to
// count, n being the sum of the counts.
func medianOfCounts(counts map[int64]int64, n int64) float64 {
	rank := (n + 1) / 2
	var seen int64
	for _, v := range slices.Sorted(maps.Keys(counts)) {
		seen += counts[v]
		if seen >= rank {
			return float64(v)
		}
	}
	return 0
}

func bucketOf(sec float64) int {
	lo, hi := 0, len(latencyBounds)
	for lo < hi {
		m := (lo + hi) / 2
		if sec <= latencyBounds[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// Offer records a request a user started: sent at once by a simulated
// user, or an open-loop arrival. It returns the phase the request arrived
// in, for ObserveFrom or Drop (-1 before the first phase).
func (s *SideStats) Offer() int {
	s.offered.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	ph := len(s.phases) - 1
	if ph >= 0 {
		s.phases[ph].Offered++
	}
	return ph
}

// Drop records an open-loop arrival of phase ph that was not sent because
// the side already had its cap of requests outstanding. It counts as a
// timeout (the user got no answer in time) with no latency: no request was
// measured.
func (s *SideStats) Drop(ph int) {
	s.dropped.Add(1)
	s.outcomes[OutcomeTimeout].Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ph >= 0 && ph < len(s.phases) {
		s.phases[ph].Dropped++
		s.phases[ph].Outcomes[OutcomeTimeout]++
	}
}

// SessionLost records a session the server no longer held and the cart
// items the user believed were in it.
func (s *SideStats) SessionLost(cartItems int) {
	s.sessionsLost.Add(1)
	s.cartItemsLost.Add(int64(cartItems))
}

// ClientLost records what a user's client forgot when it restarted: its
// sign-in, if it had one, and the cart items it believed it had, whichever
// side kept the cart.
func (s *SideStats) ClientLost(signedIn bool, cartItems int) {
	if signedIn {
		s.clientSignIns.Add(1)
	}
	s.clientCartItems.Add(int64(cartItems))
}

// Relogin records a sign-in forced by a lost session or credential.
func (s *SideStats) Relogin() { s.relogins.Add(1) }

// Borrowed records borrow records the server answered 201 for.
func (s *SideStats) Borrowed(ids ...int64) {
	s.borrows.Add(int64(len(ids)))
	s.mu.Lock()
	s.borrowIDs = append(s.borrowIDs, ids...)
	s.mu.Unlock()
}

// UserRetried records a request a user sent again, with the same
// Idempotency-Key for a write, because no replica answered it; saved says
// that a replica answered the retry.
func (s *SideStats) UserRetried(saved bool) {
	s.userRetries.Add(1)
	if saved {
		s.userSaved.Add(1)
	}
}

// Returned records a borrow returned with a 200.
func (s *SideStats) Returned() { s.returns.Add(1) }

// BorrowIDs returns every borrow id the users were answered 201 for.
func (s *SideStats) BorrowIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.borrowIDs...)
}

// Totals is a snapshot of one side's counters.
type Totals struct {
	Requests      int64 `json:"requests"`
	OK            int64 `json:"ok"`
	SessionLost   int64 `json:"session_lost"`
	LoginRequired int64 `json:"login_required"`
	Conflicts     int64 `json:"conflicts"`
	// InvalidCredential counts 401 invalid_token and invalid_session: a
	// signature the replica could not verify (another replica's secret, a
	// tampered cookie, an expired or revoked token).
	InvalidCredential int64 `json:"invalid_credential"`
	Errors4xx         int64 `json:"errors_4xx"`
	Errors5xx         int64 `json:"errors_5xx"`
	ConnErrors        int64 `json:"conn_errors"`
	// Timeouts counts requests with no answer within their deadline, the
	// Dropped ones included.
	Timeouts int64 `json:"timeouts"`
	// Dropped counts open-loop arrivals never sent: the side already had
	// its cap of requests outstanding.
	Dropped int64 `json:"dropped"`
	// Offered counts the requests the users started: what they asked of
	// the side, answered or not.
	Offered       int64 `json:"offered"`
	SessionsLost  int64 `json:"sessions_lost"`
	Relogins      int64 `json:"relogins"`
	CartItemsLost int64 `json:"cart_items_lost"`
	// ClientSignInsLost and ClientCartItemsLost are what the users' own
	// clients forgot at a client-restart: a cookie or a token, and the
	// cart the user had filled (in the session or in the client). They are
	// not in SessionsLost and CartItemsLost, which the servers lost.
	ClientSignInsLost   int64 `json:"client_sign_ins_lost"`
	ClientCartItemsLost int64 `json:"client_cart_items_lost"`
	Borrows             int64 `json:"borrows"`
	Returns             int64 `json:"returns"`
	// JourneysCompleted counts the journeys users finished (browse,
	// search, fill a cart, check out, look at the loans, return them),
	// sign-ins they were forced into on the way included: what the users
	// got done, whatever it took in requests.
	JourneysCompleted int64      `json:"journeys_completed"`
	SignIns           int64      `json:"sign_ins"`     // successful sign-ins, part of ok
	Availability      float64    `json:"availability"` // ok / (requests − conflicts)
	LatencyMS         Percentile `json:"latency_ms"`

	// UserRetries counts the requests users sent again, with the same
	// Idempotency-Key for a write, because no replica answered them (part
	// of requests); UserRetriesSaved those a replica then answered.
	UserRetries      int64 `json:"user_retries"`
	UserRetriesSaved int64 `json:"user_retries_saved"`
	// LBRetries counts the retries the side's balancer made after a try
	// failed before any response header (a refused connection, a replica
	// that died with the request); LBRetriesSaved those a replica
	// answered: requests that would have failed and that the user never
	// saw fail. Counted by the balancer, not part of requests.
	LBRetries      int64 `json:"lb_retries"`
	LBRetriesSaved int64 `json:"lb_retries_saved"`
}

// Percentile holds latency percentiles in milliseconds.
type Percentile struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Totals returns a snapshot.
func (s *SideStats) Totals() Totals {
	t := Totals{
		OK:                  s.outcomes[OutcomeOK].Load(),
		SessionLost:         s.outcomes[OutcomeSessionLost].Load(),
		LoginRequired:       s.outcomes[OutcomeLoginRequired].Load(),
		Conflicts:           s.outcomes[OutcomeConflict].Load(),
		InvalidCredential:   s.outcomes[OutcomeInvalidCredential].Load(),
		Errors4xx:           s.outcomes[OutcomeOther4xx].Load(),
		Errors5xx:           s.outcomes[Outcome5xx].Load(),
		ConnErrors:          s.outcomes[OutcomeConnError].Load(),
		Timeouts:            s.outcomes[OutcomeTimeout].Load(),
		Dropped:             s.dropped.Load(),
		Offered:             s.offered.Load(),
		SessionsLost:        s.sessionsLost.Load(),
		Relogins:            s.relogins.Load(),
		CartItemsLost:       s.cartItemsLost.Load(),
		ClientSignInsLost:   s.clientSignIns.Load(),
		ClientCartItemsLost: s.clientCartItems.Load(),
		Borrows:             s.borrows.Load(),
		JourneysCompleted:   s.journeysDone.Load(),
		Returns:             s.returns.Load(),
		SignIns:             s.signIns.Load(),
		UserRetries:         s.userRetries.Load(),
		UserRetriesSaved:    s.userSaved.Load(),
	}
	for _, c := range s.BalancerRetries() {
		t.LBRetries += int64(c.Answered + c.Failed)
		t.LBRetriesSaved += int64(c.Answered)
	}
	t.Requests = t.OK + t.SessionLost + t.LoginRequired + t.Conflicts + t.InvalidCredential + t.Errors4xx + t.Errors5xx + t.ConnErrors + t.Timeouts
	// A 409 is the library answering correctly that another user got the
	// last copy first: the service was there, so it does not count against
	// availability.
	if served := t.Requests - t.Conflicts; served > 0 {
		t.Availability = float64(t.OK) / float64(served)
	}
	buckets, _, _ := s.histogram()
	t.LatencyMS = Percentile{P50: Quantile(buckets, .50) * 1000, P95: Quantile(buckets, .95) * 1000, P99: Quantile(buckets, .99) * 1000}
	return t
}

// Buckets returns a copy of the latency histogram's buckets, for Quantile:
// the feed subtracts two of them to read one window's percentiles.
func (s *SideStats) Buckets() []uint64 {
	b, _, _ := s.histogram()
	return b
}

func (s *SideStats) histogram() ([]uint64, float64, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, c := range s.buckets {
		n += c
	}
	return append([]uint64(nil), s.buckets...), s.sum, n
}

// Quantile returns the upper bound of the bucket holding the q-quantile.
func Quantile(buckets []uint64, q float64) float64 {
	var n uint64
	for _, c := range buckets {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range buckets {
		seen += c
		if seen >= rank {
			if i == len(latencyBounds) {
				return latencyBounds[len(latencyBounds)-1]
			}
			return latencyBounds[i]
		}
	}
	return latencyBounds[len(latencyBounds)-1]
}

// Source is one side's counters as the collector labels them: the
// strategy's name and the server its replicas run.
type Source struct {
	Stats    *SideStats
	Strategy string
	Server   string
}

// statsCollector exposes the sides' counters to Prometheus, read from the
// same SideStats as everything else, labelled with each side's strategy and
// the server its replicas run.
type statsCollector struct {
	sides    []Source
	requests *prometheus.Desc
	sessions *prometheus.Desc
	cart     *prometheus.Desc
	relogins *prometheus.Desc
	borrows  *prometheus.Desc
	offered  *prometheus.Desc
	dropped  *prometheus.Desc
	retries  *prometheus.Desc
	latency  *prometheus.Desc
	// clientSignIns and clientCart are what the users' own clients forgot.
	clientSignIns *prometheus.Desc
	clientCart    *prometheus.Desc
}

// NewCollector returns a Prometheus collector of the sources' counters:
// what the simulated users sent and saw, by strategy and server.
func NewCollector(sides []Source) prometheus.Collector {
	labels := []string{"strategy", "server"}
	return &statsCollector{
		sides:         sides,
		requests:      prometheus.NewDesc("statelab_client_requests_total", "Requests the simulated users sent, by strategy, server and the outcome they saw.", append(labels, "outcome"), nil),
		sessions:      prometheus.NewDesc("statelab_client_sessions_lost_total", "Sessions the simulated users lost: a 401 while they believed they were signed in.", labels, nil),
		cart:          prometheus.NewDesc("statelab_client_cart_items_lost_total", "Cart items the simulated users lost with their sessions.", labels, nil),
		relogins:      prometheus.NewDesc("statelab_client_relogins_total", "Sign-ins the simulated users were forced into after losing a session or credential.", labels, nil),
		borrows:       prometheus.NewDesc("statelab_client_borrows_total", "Borrow records the simulated users were answered 201 for.", labels, nil),
		offered:       prometheus.NewDesc("statelab_client_offered_requests_total", "Requests the simulated users started, open-loop arrivals included whether or not they were sent: the load offered to the side.", labels, nil),
		dropped:       prometheus.NewDesc("statelab_client_dropped_requests_total", "Open-loop arrivals never sent because the side had its cap of requests outstanding; each is also counted with outcome timeout.", labels, nil),
		retries:       prometheus.NewDesc("statelab_client_retries_total", "Requests the simulated users sent again (a write with the same Idempotency-Key) because no replica answered them, by outcome: saved (a replica answered the retry) or failed.", append(labels, "outcome"), nil),
		latency:       prometheus.NewDesc("statelab_client_request_duration_seconds", "Latency the simulated users saw, through the balancer.", labels, nil),
		clientSignIns: prometheus.NewDesc("statelab_client_restart_sign_ins_lost_total", "Sign-ins (a session cookie or a token) the simulated users' own clients forgot at a client-restart.", labels, nil),
		clientCart:    prometheus.NewDesc("statelab_client_restart_cart_items_lost_total", "Cart items the simulated users lost when their own clients forgot everything (client-restart), wherever the cart was kept.", labels, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.sessions, c.cart, c.relogins, c.borrows, c.offered, c.dropped, c.retries, c.latency, c.clientSignIns, c.clientCart} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sd := range c.sides {
		s, name, server := sd.Stats, sd.Strategy, sd.Server
		for o := range numOutcomes {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.outcomes[o].Load()), name, server, o.String())
		}
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.CounterValue, float64(s.sessionsLost.Load()), name, server)
		ch <- prometheus.MustNewConstMetric(c.cart, prometheus.CounterValue, float64(s.cartItemsLost.Load()), name, server)
		ch <- prometheus.MustNewConstMetric(c.relogins, prometheus.CounterValue, float64(s.relogins.Load()), name, server)
		ch <- prometheus.MustNewConstMetric(c.borrows, prometheus.CounterValue, float64(s.borrows.Load()), name, server)
		ch <- prometheus.MustNewConstMetric(c.clientSignIns, prometheus.CounterValue, float64(s.clientSignIns.Load()), name, server)
		ch <- prometheus.MustNewConstMetric(c.clientCart, prometheus.CounterValue, float64(s.clientCartItems.Load()), name, server)
		ch <- prometheus.MustNewConstMetric(c.offered, prometheus.CounterValue, float64(s.offered.Load()), name, server)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.dropped.Load()), name, server)
		saved := s.userSaved.Load()
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(saved), name, server, "saved")
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(s.userRetries.Load()-saved), name, server, "failed")

		buckets, sum, n := s.histogram()
		cum := make(map[float64]uint64, len(latencyBounds))
		var acc uint64
		// Prometheus wants few buckets; expose every fourth bound.
		for i, b := range latencyBounds {
			acc += buckets[i]
			if i%4 == 0 {
				cum[b] = acc
			}
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, n, sum, cum, name, server)
	}
}
