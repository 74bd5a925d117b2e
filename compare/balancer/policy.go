package balancer

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Policy decides which replicas a request tries, in which order, and may
// mark the answer so that the client's next request can find the same one.
// The balancer owns everything else: the retries, drains, in-flight
// accounting, health checks. A Policy is where the state
// of "which replica is mine" lives, which is the lab's question: in a cookie
// the balancer sets, in a hash of a cookie the client keeps (the lab's
// memory-hash hashes statelab_hash_key), or nowhere.
//
// A Policy is called from many requests at once and must be safe for
// concurrent use. Give each Balancer its own: sharing one is correct, but
// HashAffinity keeps the ring of the last rotation it saw, and two
// balancers would have it rebuild its ring on every request.
type Policy interface {
	// Order appends to dst the indexes into rotation that r should try,
	// best first, and returns the extended slice. A refused connection,
	// or a replica that died with a request safe to send again, moves the
	// request on to the next index; when none is left the client gets
	// 503 (or 502, when the request may have been processed). Indexes out of range are skipped. rotation holds
	// the backends in rotation now, at least one; it belongs to the
	// balancer and must not be modified. r is the request as the client
	// sent it.
	Order(dst []int, r *http.Request, rotation []Backend) []int

	// Answered is told which backend answered r, before the answer goes
	// back to the client, so that it can add a header or a cookie to
	// resp. It is not called when no backend answered.
	Answered(r *http.Request, resp *http.Response, chosen Backend)
}

// The names ParseAffinity accepts.
const (
	AffinityNone   = "none"   // RoundRobin
	AffinityCookie = "cookie" // CookieAffinity
	AffinityHash   = "hash"   // HashAffinity(HashKeyCookie)
)

const (
	// RouteCookie is the cookie CookieAffinity sets. Its value is the
	// replica's ID, in plain sight: the lab wants the routing state to be
	// visible in the browser's cookie jar. So an ID must be a valid cookie
	// value (the supervisor's "stateful-1" is); one that is not would be
	// re-pinned on every request, which is round robin.
	RouteCookie = "statelab_route"

	// HashKeyCookie is the cookie ParseAffinity's "hash" policy hashes: a
	// random client key the balancer hands out with a client's first
	// answer, as ingress-nginx's balanced mode does. Hashing the session
	// cookie instead cannot work: the session is made on the replica the
	// login landed on, and the cookie that names it, minted there, hashes
	// to any replica at all.
	HashKeyCookie = "statelab_hash_key"
)

// affinities are the policies ParseAffinity names, each with how it routes
// in a few words.
var affinities = []struct {
	name, routes string
	policy       func() Policy
}{
	{AffinityNone, "round robin", RoundRobin},
	{AffinityCookie, "sticky: a routing cookie", CookieAffinity},
	{AffinityHash, "sticky: a consistent-hash ring", func() Policy { return HashAffinity(HashKeyCookie) }},
}

// ParseAffinity returns the policy named by name: AffinityNone,
// AffinityCookie or AffinityHash (keyed by HashKeyCookie). It exists so
// that a flag can choose a policy.
func ParseAffinity(name string) (Policy, error) {
	names := make([]string, len(affinities))
	for i, a := range affinities {
		if a.name == name {
			return a.policy(), nil
		}
		names[i] = a.name
	}
	return nil, fmt.Errorf("unknown affinity %q: want %s or %s", name, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// DescribeAffinity says in a few words how the policy an affinity names
// routes, e.g. "sticky: a routing cookie"; "round robin" for a name
// ParseAffinity does not know, which is what a Config without a Policy gets.
func DescribeAffinity(name string) string {
	for _, a := range affinities {
		if a.name == name {
			return a.routes
		}
	}
	return "round robin"
}

// RoundRobin returns the policy of a balancer with no stickiness:
// consecutive requests go to consecutive replicas in rotation, whoever sent
// them, and a retry takes the next one. It is what exposes state kept in
// one replica's memory, and what a Config with no Policy gets.
func RoundRobin() Policy {
	return &roundRobin{}
}

type roundRobin struct {
	next atomic.Uint64
}

func (p *roundRobin) Order(dst []int, _ *http.Request, rotation []Backend) []int {
	return appendTurn(dst, len(rotation), p.next.Add(1)-1, -1)
}

func (*roundRobin) Answered(*http.Request, *http.Response, Backend) {}

// appendTurn appends the indexes 0..n-1 to dst in turn from start, leaving
// out skip.
func appendTurn(dst []int, n int, start uint64, skip int) []int {
	for i := range uint64(n) {
		if j := int((start + i) % uint64(n)); j != skip {
			dst = append(dst, j)
		}
	}
	return dst
}

// CookieAffinity returns the policy of ingress-nginx's "persistent"
// session affinity: the balancer pins each client to a replica with a
// cookie of its own, RouteCookie (HttpOnly, SameSite=Lax, Path=/), that
// names the replica. A request whose cookie names a replica in rotation
// goes there; any other is sent round robin and its answer sets the cookie
// to the replica that answered, so a client whose replica left rotation,
// or that refused the connection, is pinned again elsewhere.
//
// The consequence the lab shows: after a scale-out, existing clients stay
// where they are and only new clients reach the new replicas, so the new
// replicas take load slowly. The state of "which replica is mine" lives in
// the client, written by the balancer.
func CookieAffinity() Policy {
	return &cookieAffinity{}
}

type cookieAffinity struct {
	next atomic.Uint64 // round robin for clients that are not pinned
}

func (p *cookieAffinity) Order(dst []int, r *http.Request, rotation []Backend) []int {
	pinned := -1
	if c, err := r.Cookie(RouteCookie); err == nil {
		pinned = slices.IndexFunc(rotation, func(be Backend) bool { return be.ID == c.Value })
	}
	if pinned >= 0 {
		// The other replicas are only there for a refused connection; that
		// rare retry need not take a turn from the clients still unpinned.
		return appendTurn(append(dst, pinned), len(rotation), uint64(pinned)+1, pinned)
	}
	return appendTurn(dst, len(rotation), p.next.Add(1)-1, -1)
}

func (*cookieAffinity) Answered(r *http.Request, resp *http.Response, chosen Backend) {
	if c, err := r.Cookie(RouteCookie); err == nil && c.Value == chosen.ID {
		return // pinned there already: no need to send the cookie again
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	// Add, not Set: the replica's own cookies (the session) pass through.
	resp.Header.Add("Set-Cookie", (&http.Cookie{
		Name:     RouteCookie,
		Value:    chosen.ID,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}).String())
}

// vnodes is the number of points each backend has on HashAffinity's ring.
// With fewer, the shares of a few backends are uneven (one point each
// would give shares as uneven as the gaps between random points); 160 is
// ketama's choice and keeps each share within about a tenth of 1/n, at a
// ring small enough to build on every rotation change.
const vnodes = 160

// HashAffinity returns the policy of ingress-nginx's "balanced" session
// affinity: a consistent-hash ring with vnodes points per backend, each
// placed by a hash of the backend's ID, and a request goes to the first
// backend clockwise from the hash of its key. The key is the value of the
// cookie named cookieName ("" means none), or, without it, the client's
// address: the first entry of X-Forwarded-For if present, else the host of
// RemoteAddr. A retry goes to the next distinct backend on the ring.
//
// Keys and points are placed by a hash keyed with a random seed that each
// policy makes (hash/maphash): replica IDs and the ring's algorithm are
// public, and with an unkeyed hash a client could pick, offline, keys that
// all land on one replica and crowd it. With the seed secret, where a key
// lands can only be learnt by asking, one request at a time.
//
// A client that sends no such cookie is sent round robin, and given one
// with its answer: a random key that the ring maps, now, to the backend that
// answered, so the client stays where its first request (a login, say) left
// state. With cookieName "" every request is hashed, by address when need be. The
// balancer remembers nothing per client: "which replica is mine" is
// recomputed from the key on every request, which is why a change of the
// ring moves clients. Because a backend's points depend on its ID (and the
// seed) alone, adding a backend moves to it only the keys that now fall
// just before its points (about 1/n of them), and removing one moves only
// the keys that were on it. The ring is built once per rotation, not per
// request.
func HashAffinity(cookieName string) Policy {
	return &hashAffinity{cookie: cookieName, seed: maphash.MakeSeed()}
}

type hashAffinity struct {
	cookie string
	seed   maphash.Seed         // keys the hash: this policy's secret
	ring   atomic.Pointer[ring] // the ring of the rotation seen last
	next   atomic.Uint64        // round robin for clients that have no key yet
}

// ring is a consistent-hash ring over one rotation.
type ring struct {
	ids    []string // the rotation it was built for, by ID, in order
	points []uint64 // sorted
	owners []int    // owners[i] is the rotation index of points[i]
}

func (p *hashAffinity) Order(dst []int, r *http.Request, rotation []Backend) []int {
	rg := p.ring.Load()
	if rg == nil || !rg.builtFor(rotation) {
		// The rotation changed: a health check, a drain, a scale event.
		// Concurrent requests may each build the same ring once; the
		// last one stored wins, and they are all equal.
		rg = newRing(rotation, p.hash)
		p.ring.Store(rg)
	}
	if p.cookie != "" && !hasCookie(r, p.cookie) {
		// A client with no key yet is about to be given one that maps to
		// whichever replica answers it, so spread those first requests
		// evenly rather than by an address that many clients may share.
		return appendTurn(dst, len(rotation), p.next.Add(1)-1, -1)
	}
	return rg.appendOrder(dst, p.hash(p.key(r)))
}

// Answered gives a client without a key one that the current ring maps to
// the backend that answered it.
func (p *hashAffinity) Answered(r *http.Request, resp *http.Response, chosen Backend) {
	if p.cookie == "" {
		return
	}
	if c, err := r.Cookie(p.cookie); err == nil && c.Value != "" {
		return
	}
	rg := p.ring.Load()
	if rg == nil {
		return
	}
	var buf [1]int
	// Each try lands on the chosen backend with probability about 1/n;
	// 64 tries per backend make a miss vanishingly rare, and a miss only
	// means no cookie this time.
	for range 64 * len(rg.ids) {
		key := rand.Text()
		if order := rg.appendOrder(buf[:0], p.hash(key)); len(order) > 0 && rg.ids[order[0]] == chosen.ID {
			resp.Header.Add("Set-Cookie", (&http.Cookie{Name: p.cookie, Value: key, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}).String())
			return
		}
	}
}

// hasCookie reports whether r carries a non-empty cookie with the name.
func hasCookie(r *http.Request, name string) bool {
	c, err := r.Cookie(name)
	return err == nil && c.Value != ""
}

// key is what p hashes for r: its cookie (statelab_hash_key in the lab), or
// the client's address.
func (p *hashAffinity) key(r *http.Request) string {
	if p.cookie != "" {
		if c, err := r.Cookie(p.cookie); err == nil && c.Value != "" {
			return c.Value
		}
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if first = strings.TrimSpace(first); first != "" {
			return first
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hash places a key or a backend's point on the ring, keyed with p's seed.
func (p *hashAffinity) hash(s string) uint64 { return maphash.String(p.seed, s) }

// newRing builds the ring of rotation, its points placed by hash.
func newRing(rotation []Backend, hash func(string) uint64) *ring {
	type point struct {
		hash  uint64
		owner int
	}
	pts := make([]point, 0, len(rotation)*vnodes)
	ids := make([]string, len(rotation))
	buf := make([]byte, 0, 64)
	for i, be := range rotation {
		ids[i] = be.ID
		for v := range vnodes {
			buf = strconv.AppendInt(append(append(buf[:0], be.ID...), '#'), int64(v), 10)
			pts = append(pts, point{hash(string(buf)), i})
		}
	}
	// Ties between backends are broken by ID, not by rotation order, so
	// that a ring depends on the set of backends (and the seed) only.
	slices.SortFunc(pts, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), strings.Compare(ids[a.owner], ids[b.owner]))
	})
	rg := &ring{ids: ids, points: make([]uint64, len(pts)), owners: make([]int, len(pts))}
	for i, pt := range pts {
		rg.points[i], rg.owners[i] = pt.hash, pt.owner
	}
	return rg
}

// builtFor reports whether rg is the ring of rotation. Comparing the IDs
// costs a few string compares per request, and unlike remembering the
// slice's address it stays right if a caller reuses a slice.
func (rg *ring) builtFor(rotation []Backend) bool {
	if len(rg.ids) != len(rotation) {
		return false
	}
	for i, be := range rotation {
		if rg.ids[i] != be.ID {
			return false
		}
	}
	return true
}

// appendOrder appends to dst the distinct backends met walking clockwise
// from h.
func (rg *ring) appendOrder(dst []int, h uint64) []int {
	n := len(rg.ids)
	start := len(dst)
	i, _ := slices.BinarySearch(rg.points, h)
	for step := 0; step < len(rg.points) && len(dst)-start < n; step++ {
		o := rg.owners[(i+step)%len(rg.points)]
		if !slices.Contains(dst[start:], o) {
			dst = append(dst, o)
		}
	}
	return dst
}
