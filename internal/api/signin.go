package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/statelab/statelab/internal/library"
)

// SignInLimits say how fast sign-ins may come, per account and per client
// address. Each replica counts on its own, in memory: the limits slow a
// password guesser down, they are not a quota.
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

// SignInLimiter enforces SignInLimits.
type SignInLimiter struct {
	limits   SignInLimits
	now      func() time.Time
	accounts limiterTable
	addrs    limiterTable
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

// Allow counts one sign-in attempt by r's client for email and returns an
// ETOOMANYREQUESTS error, with the wait in RetryAfter, when either limit is
// exceeded. A nil limiter allows everything.
func (s *SignInLimiter) Allow(r *http.Request, email string) error {
	if s == nil {
		return nil
	}
	now := s.now()
	if addr, loopback := clientKey(r.RemoteAddr); addr != "" && (!loopback || s.limits.LimitLoopback) {
		if wait := s.addrs.take(addr, now); wait > 0 {
			return library.RetryAfterError(wait, "Too many sign-ins from your address; try again in %s.", roundUp(wait))
		}
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || len(email) > 254 {
		return nil // not an account; the handler answers 400
	}
	if wait := s.accounts.take(email, now); wait > 0 {
		return library.RetryAfterError(wait, "Too many sign-ins for this account; try again in %s.", roundUp(wait))
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
