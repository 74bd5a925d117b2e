package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/statelab/statelab/internal/library"
)

// SignInLimits say how fast sign-ins may come, per account and per client
// address. Each replica counts on its own, in memory: the limits slow a
// flood down, they are not a quota. The quota on guesses, failed sign-ins
// per account across every replica, is the shared store's (CountFailures).
//
// The defaults are sized for the lab's own traffic. A simulated user signs
// in with its own account, at most a few times a second even when every
// request of a stateful user behind round robin lands on a replica that
// lost its session, so 10/s with a burst of 20 per account never bites it,
// while a guesser gets at most 10 passwords a second per replica. All 500
// simulated users of a side come from 127.0.0.1 (and through the balancer,
// every client does), so a per-address limit low enough to matter would
// stop them: loopback is exempt from the per-address limit unless
// LimitLoopback is set. On a shared classroom machine a classmate also
// comes from loopback; the per-account limit still applies to them.
type SignInLimits struct {
	AccountRate   rate.Limit // sign-ins per second per account (email)
	AccountBurst  int
	AddrRate      rate.Limit // sign-ins per second per client address (an IPv6 /64)
	AddrBurst     int
	LimitLoopback bool // apply the per-address limit to loopback clients too
}

// DefaultSignInLimits returns the limits the servers start with.
func DefaultSignInLimits() SignInLimits {
	return SignInLimits{AccountRate: 10, AccountBurst: 20, AddrRate: 20, AddrBurst: 60}
}

// maxTracked bounds each table of limiters: an attacker who signs in as a
// million different emails fills it, and the sweep then forgets the idle.
const maxTracked = 10000

// SignInLimiter enforces SignInLimits and, with CountFailures, the limits
// on failed sign-ins per account (library.MaxUntrustedSignInFailures and
// the rest).
type SignInLimiter struct {
	limits   SignInLimits
	now      func() time.Time
	accounts limiterTable
	addrs    limiterTable

	failures library.Store // nil: failures are not counted
	devices  deviceTokens
}

// NewSignInLimiter returns a limiter that reads time from now.
func NewSignInLimiter(l SignInLimits, now func() time.Time) *SignInLimiter {
	return &SignInLimiter{
		limits:   l,
		now:      now,
		accounts: limiterTable{rate: l.AccountRate, burst: l.AccountBurst, m: map[string]*rate.Limiter{}},
		addrs:    limiterTable{rate: l.AddrRate, burst: l.AddrBurst, m: map[string]*rate.Limiter{}},
	}
}

// CountFailures makes the limiter count failed sign-ins per account in
// store, which every replica shares (library.Store's AdmitSignIn), and
// trust the devices whose tokens deviceKey signed: a client that signed in
// as the account before keeps signing in while guessers wait. Every
// replica must be given the same deviceKey, or a device is trusted only by
// the replica it signed in on. It returns s.
func (s *SignInLimiter) CountFailures(store library.Store, deviceKey []byte) *SignInLimiter {
	s.failures, s.devices = store, deviceTokens{key: deviceKey}
	return s
}

// allowAddr spends one of the client address's sign-ins.
func (s *SignInLimiter) allowAddr(r *http.Request) error {
	if addr, loopback := clientKey(r.RemoteAddr); addr != "" && (!loopback || s.limits.LimitLoopback) {
		if wait := s.addrs.take(addr, s.now()); wait > 0 {
			return library.RetryAfterError(wait, "Too many sign-ins from your address; try again in %s.", roundUp(wait))
		}
	}
	return nil
}

// allowAccount spends one of the account's sign-ins on this replica.
func (s *SignInLimiter) allowAccount(email string) error {
	if wait := s.accounts.take(email, s.now()); wait > 0 {
		return library.RetryAfterError(wait, "Too many sign-ins for this account; try again in %s.", roundUp(wait))
	}
	return nil
}

// attempt is one sign-in under way: what begin admitted, for end.
type attempt struct {
	email  string // normalized; "" when the request is malformed
	device string // the id of the device the account trusts; "" for none
	ticket library.SignInTicket
	// counted is whether the store admitted the attempt and must hear how
	// it ended.
	counted bool
}

// begin counts a sign-in with credentials c against every limit that
// applies, before its password is checked: the client address's, and for
// a well-formed request (an email and a password) the account's, on this
// replica unless the client is a device the account trusts, and across
// replicas in the store. A malformed request spends no account's budget:
// the check answers it with 400.
func (s *SignInLimiter) begin(r *http.Request, c Credentials) (attempt, error) {
	if s == nil {
		return attempt{}, nil
	}
	if err := s.allowAddr(r); err != nil {
		return attempt{}, err
	}
	email, err := NormalizeEmail(c.Email)
	if err != nil || c.Password == "" {
		return attempt{}, nil
	}
	a := attempt{email: email}
	if s.failures != nil {
		a.device = s.devices.trusted(r, email, s.now())
	}
	if a.device == "" {
		if err := s.allowAccount(email); err != nil {
			return a, err
		}
	}
	if s.failures == nil {
		return a, nil
	}
	a.ticket, err = s.failures.AdmitSignIn(r.Context(), library.SignInAttempt{Email: email, Device: a.device, At: s.now()})
	if err != nil {
		return a, err
	}
	a.counted = true
	return a, nil
}

// end tells the store how an admitted sign-in ended: err is what the
// password check returned. A sign-in that succeeded makes (or renews) the
// client's device token for the account.
func (s *SignInLimiter) end(w http.ResponseWriter, r *http.Request, a attempt, err error) error {
	if s == nil || !a.counted {
		return nil
	}
	failed := library.ErrorCode(err) == library.EUNAUTHORIZED
	if serr := s.failures.SettleSignIn(context.WithoutCancel(r.Context()), a.ticket, failed); serr != nil {
		return serr
	}
	if err == nil {
		s.devices.issue(w, r, a.email, a.device, s.now())
	}
	return nil
}

func roundUp(d time.Duration) string {
	return fmt.Sprint(max(time.Second, d.Round(time.Second)))
}

// clientKey returns the key of a client address: the IP, or its /64 for
// IPv6 (one host gets a whole /64), and whether it is loopback.
func clientKey(remoteAddr string) (string, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String(), ip.IsLoopback()
	}
	return ip.String(), ip.IsLoopback()
}

// limiterTable holds one token bucket per key.
type limiterTable struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// take spends a token of key's bucket and returns 0, or how long until one
// is there when the bucket is empty (nothing is spent then).
func (t *limiterTable) take(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.m[key]
	if !ok {
		if len(t.m) >= maxTracked {
			t.sweep(now)
		}
		l = rate.NewLimiter(t.rate, t.burst)
		t.m[key] = l
	}
	res := l.ReserveN(now, 1)
	if !res.OK() {
		return time.Second // a burst of 0: never; say a second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// sweep forgets the buckets that are full again: forgetting them changes
// nothing. If every bucket is busy the table starts over, which lets those
// keys have one more burst; the alternative, refusing new keys, would lock
// honest members out during an attack.
func (t *limiterTable) sweep(now time.Time) {
	for k, l := range t.m {
		if l.TokensAt(now) >= float64(t.burst) {
			delete(t.m, k)
		}
	}
	if len(t.m) >= maxTracked {
		clear(t.m)
	}
}
