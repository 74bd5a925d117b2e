package balancer_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/compare/balancer"
)

// lbStartPolicy is lbStartBalancer with a policy.
func lbStartPolicy(t testing.TB, p balancer.Policy, reg prometheus.Registerer, backends ...balancer.Backend) (*balancer.Balancer, string) {
	t.Helper()
	lb := balancer.New(balancer.Config{Side: "stateful", Registerer: reg, HealthEvery: 10 * time.Millisecond, Policy: p})
	lb.SetBackends(backends)
	for _, be := range backends {
		lb.MarkReady(be.ID)
	}
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	return lb, srv.URL
}

// lbClient is one browser: a client with a cookie jar of its own.
func lbClient(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// lbWithSession is a client whose jar already holds the session cookie
// session for the balancer at base.
func lbWithSession(t testing.TB, base, session string) *http.Client {
	t.Helper()
	c := lbClient(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c.Jar.SetCookies(u, []*http.Cookie{{Name: balancer.HashKeyCookie, Value: session}})
	return c
}

// lbVisit sends GET /api/books with c (and the header h, if any) and
// returns the replica that answered and the route cookie the answer set,
// or nil.
func lbVisit(t testing.TB, c *http.Client, base string, h http.Header) (string, *http.Cookie) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/books", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	var route *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == balancer.RouteCookie {
			route = ck
		}
	}
	return resp.Header.Get("X-Statelab-Replica"), route
}

func lbBackends(reps ...*lbReplica) []balancer.Backend {
	bs := make([]balancer.Backend, len(reps))
	for i, rep := range reps {
		bs[i] = rep.backend()
	}
	return bs
}

func TestPolicyRoundRobinOrder(t *testing.T) {
	rotation := []balancer.Backend{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	p := balancer.RoundRobin()
	r := httptest.NewRequest(http.MethodGet, "/api/books", nil)
	tests := []struct {
		dst  []int
		want []int
	}{
		{nil, []int{0, 1, 2}},
		{nil, []int{1, 2, 0}},
		{[]int{7}, []int{7, 2, 0, 1}}, // appends, keeping what dst held
		{nil, []int{0, 1, 2}},
	}
	for i, tt := range tests {
		if got := p.Order(tt.dst, r, rotation); !slices.Equal(got, tt.want) {
			t.Errorf("call %d: Order = %v, want %v", i, got, tt.want)
		}
	}
	resp := &http.Response{Header: http.Header{}}
	p.Answered(r, resp, rotation[0])
	if len(resp.Header) != 0 {
		t.Errorf("round robin Answered added headers %v, want none", resp.Header)
	}
}

func TestParseAffinity(t *testing.T) {
	rotation := []balancer.Backend{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	tests := []struct {
		name       string
		wantErr    bool
		wantCookie bool // Answered sets RouteCookie
		wantSticky bool // one session goes to one replica
	}{
		{name: balancer.AffinityNone},
		{name: balancer.AffinityCookie, wantCookie: true, wantSticky: true},
		{name: balancer.AffinityHash, wantSticky: true},
		{name: "", wantErr: true},
		{name: "sticky", wantErr: true},
		{name: "Cookie", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := balancer.ParseAffinity(tt.name)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseAffinity(%q) = %v, want an error", tt.name, p)
				}
				for _, valid := range []string{"none", "cookie", "hash"} {
					if !strings.Contains(err.Error(), valid) {
						t.Errorf("error %q does not list %q", err, valid)
					}
				}
				return
			}
			if err != nil || p == nil {
				t.Fatalf("ParseAffinity(%q) = %v, %v", tt.name, p, err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/books", nil)
			r.AddCookie(&http.Cookie{Name: balancer.HashKeyCookie, Value: "s1"})
			resp := &http.Response{Header: http.Header{}}
			first := p.Order(nil, r, rotation)[0]
			p.Answered(r, resp, rotation[first])
			if got := resp.Header.Get("Set-Cookie") != ""; got != tt.wantCookie {
				t.Errorf("Answered set a cookie: %v, want %v", got, tt.wantCookie)
			}
			for _, ck := range resp.Cookies() {
				r.AddCookie(ck) // the client sends it back
			}
			sticky := true
			for range 5 {
				if p.Order(nil, r, rotation)[0] != first {
					sticky = false
				}
			}
			if sticky != tt.wantSticky {
				t.Errorf("same client to same replica: %v, want %v", sticky, tt.wantSticky)
			}
		})
	}
}

func TestDescribeAffinity(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{balancer.AffinityNone, "round robin"},
		{balancer.AffinityCookie, "sticky: a routing cookie"},
		{balancer.AffinityHash, "sticky: a consistent-hash ring"},
		{"", "round robin"},
	} {
		if got := balancer.DescribeAffinity(tt.name); got != tt.want {
			t.Errorf("DescribeAffinity(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCookieAffinityPins(t *testing.T) {
	reps := []*lbReplica{lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")}
	_, base := lbStartPolicy(t, balancer.CookieAffinity(), nil, lbBackends(reps...)...)

	perReplica := map[string]int{}
	for i := range 6 {
		c := lbClient(t)
		first, route := lbVisit(t, c, base, nil)
		if route == nil {
			t.Fatalf("client %d: first answer set no %s cookie", i, balancer.RouteCookie)
		}
		if route.Value != first || route.Path != "/" || !route.HttpOnly || route.SameSite != http.SameSiteLaxMode {
			t.Errorf("route cookie %+v, want value %s, Path=/, HttpOnly, SameSite=Lax", route, first)
		}
		perReplica[first]++
		for j := range 20 {
			got, again := lbVisit(t, c, base, nil)
			if got != first {
				t.Fatalf("client %d request %d went to %s, pinned to %s", i, j, got, first)
			}
			if again != nil {
				t.Errorf("client %d request %d: the cookie was set again (%s)", i, j, again)
			}
		}
	}
	// New clients are placed round robin.
	for _, rep := range reps {
		if perReplica[rep.id] != 2 {
			t.Errorf("clients pinned per replica %v, want 2 each", perReplica)
			break
		}
	}
	// The replica's own cookie passes through beside the balancer's.
	_, h, _ := lbDo(t, http.MethodGet, base+"/api/books", nil)
	if got := h.Values("Set-Cookie"); len(got) != 2 || !strings.HasPrefix(got[0], "statelab_session=") {
		t.Errorf("Set-Cookie %q, want the replica's session cookie then the route cookie", got)
	}
}

// After a scale-out the clients that have a replica keep it; only new
// clients reach the new one. That is why cookie affinity is slow to use
// new capacity.
func TestCookieAffinityScaleOut(t *testing.T) {
	a, b, c, d := lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c"), lbStartReplica(t, "d")
	lb, base := lbStartPolicy(t, balancer.CookieAffinity(), nil, lbBackends(a, b, c)...)

	type client struct {
		c      *http.Client
		pinned string
	}
	var old []client
	for range 6 {
		cl := client{c: lbClient(t)}
		cl.pinned, _ = lbVisit(t, cl.c, base, nil)
		old = append(old, cl)
	}

	lb.SetBackends(lbBackends(a, b, c, d))
	lb.MarkReady("d")

	for i, cl := range old {
		for range 10 {
			if got, _ := lbVisit(t, cl.c, base, nil); got != cl.pinned {
				t.Fatalf("existing client %d moved from %s to %s after the scale-out", i, cl.pinned, got)
			}
		}
	}
	if got := d.hits.Load(); got != 0 {
		t.Errorf("the new replica got %d requests from existing clients, want 0", got)
	}
	fresh := map[string]int{}
	for range 8 {
		got, _ := lbVisit(t, lbClient(t), base, nil)
		fresh[got]++
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if fresh[id] == 0 {
			t.Errorf("fresh clients per replica %v: none on %s", fresh, id)
		}
	}
}

// When the pinned replica leaves rotation, for whatever reason, the client
// is pinned again elsewhere and stays there.
func TestCookieAffinityRepins(t *testing.T) {
	tests := []struct {
		name  string
		leave func(t *testing.T, lb *balancer.Balancer, reps map[string]*lbReplica, pinned string)
	}{
		{"drained", func(_ *testing.T, lb *balancer.Balancer, reps map[string]*lbReplica, pinned string) {
			lb.Drain(reps[pinned].backend())
		}},
		{"removed from the set", func(_ *testing.T, lb *balancer.Balancer, reps map[string]*lbReplica, pinned string) {
			var rest []balancer.Backend
			for _, id := range []string{"a", "b", "c"} {
				if id != pinned {
					rest = append(rest, reps[id].backend())
				}
			}
			lb.SetBackends(rest)
		}},
		{"failed health check", func(t *testing.T, lb *balancer.Balancer, reps map[string]*lbReplica, pinned string) {
			reps[pinned].readyStatus.Store(http.StatusServiceUnavailable)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); lb.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			lbEventually(t, pinned+" fails its health check", func() bool { return len(lb.InRotation()) == 2 })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps := map[string]*lbReplica{"a": lbStartReplica(t, "a"), "b": lbStartReplica(t, "b"), "c": lbStartReplica(t, "c")}
			lb, base := lbStartPolicy(t, balancer.CookieAffinity(), nil, lbBackends(reps["a"], reps["b"], reps["c"])...)
			c := lbClient(t)
			pinned, _ := lbVisit(t, c, base, nil)

			tt.leave(t, lb, reps, pinned)

			moved, route := lbVisit(t, c, base, nil)
			if moved == pinned {
				t.Fatalf("went to %s, which left rotation", pinned)
			}
			if route == nil || route.Value != moved {
				t.Fatalf("route cookie %v after the move, want one naming %s", route, moved)
			}
			for range 10 {
				if got, _ := lbVisit(t, c, base, nil); got != moved {
					t.Fatalf("went to %s, re-pinned to %s", got, moved)
				}
			}
		})
	}
}

// A refused connection on the replica a client is pinned to is retried on
// another, whatever the policy; the cookie policy pins the client there, and
// the hash policy's retry is the next backend on the ring, which is where
// the key lands once the refusing replica has left rotation.
func TestAffinityRetriesRefusedPinnedBackend(t *testing.T) {
	tests := []struct {
		name   string
		policy balancer.Policy
		cookie bool // the answer re-pins with RouteCookie
	}{
		{"cookie", balancer.CookieAffinity(), true},
		{"hash", balancer.HashAffinity(balancer.HashKeyCookie), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reps := map[string]*lbReplica{"a": lbStartReplica(t, "a"), "b": lbStartReplica(t, "b"), "c": lbStartReplica(t, "c")}
			lb, base := lbStartPolicy(t, tt.policy, reg, lbBackends(reps["a"], reps["b"], reps["c"])...)
			c := lbWithSession(t, base, "alice")
			pinned, _ := lbVisit(t, c, base, nil)
			wantNext := ""
			if !tt.cookie {
				// What the ring says comes after pinned for this session.
				r := httptest.NewRequest(http.MethodGet, "/api/books", nil)
				r.AddCookie(&http.Cookie{Name: balancer.HashKeyCookie, Value: "alice"})
				rot := lb.InRotation()
				order := tt.policy.Order(nil, r, rot)
				if rot[order[0]].ID != pinned {
					t.Fatalf("Order puts %s first, the balancer sent the session to %s", rot[order[0]].ID, pinned)
				}
				wantNext = rot[order[1]].ID
			}

			reps[pinned].srv.Close()

			moved, route := lbVisit(t, c, base, nil) // fails the test unless 200
			if moved == pinned || (wantNext != "" && moved != wantNext) {
				t.Errorf("after %s refused, went to %s, want another (ring's next: %q)", pinned, moved, wantNext)
			}
			if tt.cookie && (route == nil || route.Value != moved) {
				t.Errorf("route cookie %v, want one naming %s", route, moved)
			}
			if !tt.cookie && route != nil {
				t.Errorf("hash policy set a route cookie %v", route)
			}
			for range 5 {
				if got, _ := lbVisit(t, c, base, nil); got != moved {
					t.Fatalf("went to %s, want %s where the session moved", got, moved)
				}
			}
			if got := lbMetric(t, reg, "statelab_balancer_retries_total", map[string]string{"backend": pinned}); got != 1 {
				t.Errorf("retries for %s = %v, want 1", pinned, got)
			}
		})
	}
}

func TestHashAffinitySameSession(t *testing.T) {
	reps := []*lbReplica{lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")}
	_, base := lbStartPolicy(t, balancer.HashAffinity(balancer.HashKeyCookie), nil, lbBackends(reps...)...)
	placed := map[string]int{}
	for i := range 60 {
		c := lbWithSession(t, base, fmt.Sprintf("session-%d", i))
		first, route := lbVisit(t, c, base, nil)
		if route != nil {
			t.Fatalf("hash affinity set its own cookie %v", route)
		}
		placed[first]++
		for range 4 {
			if got, _ := lbVisit(t, c, base, nil); got != first {
				t.Fatalf("session-%d went to %s, then %s", i, first, got)
			}
		}
	}
	for _, rep := range reps {
		if placed[rep.id] < 5 {
			t.Errorf("sessions per replica %v: too few on %s", placed, rep.id)
		}
	}
}

// Only the share of the backend that came or went moves: the point of a
// consistent-hash ring.
func TestHashAffinityRemapsOnlyTheChangedShare(t *testing.T) {
	const keys = 1000
	tests := []struct {
		name   string
		before []string
		change func(lb *balancer.Balancer, reps map[string]*lbReplica)
		// changed is the backend that came or went: every key that moved
		// moved to it (added) or from it (removed).
		changed string
		added   bool
	}{
		{"add a 4th", []string{"a", "b", "c"}, func(lb *balancer.Balancer, reps map[string]*lbReplica) {
			lb.SetBackends(lbBackends(reps["a"], reps["b"], reps["c"], reps["d"]))
			lb.MarkReady("d")
		}, "d", true},
		{"remove 1 of 4", []string{"a", "b", "c", "d"}, func(lb *balancer.Balancer, reps map[string]*lbReplica) {
			lb.SetBackends(lbBackends(reps["a"], reps["b"], reps["d"]))
		}, "c", false},
		{"drain 1 of 4", []string{"a", "b", "c", "d"}, func(lb *balancer.Balancer, reps map[string]*lbReplica) {
			lb.Drain(reps["b"].backend())
		}, "b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps := map[string]*lbReplica{}
			for _, id := range []string{"a", "b", "c", "d"} {
				reps[id] = lbStartReplica(t, id)
			}
			var start []*lbReplica
			for _, id := range tt.before {
				start = append(start, reps[id])
			}
			lb, base := lbStartPolicy(t, balancer.HashAffinity(balancer.HashKeyCookie), nil, lbBackends(start...)...)
			client := &http.Client{}
			place := func() []string {
				out := make([]string, keys)
				for i := range keys {
					h := http.Header{"Cookie": {balancer.HashKeyCookie + "=" + fmt.Sprintf("key-%d", i)}}
					out[i], _ = lbVisit(t, client, base, h)
				}
				return out
			}
			before := place()
			tt.change(lb, reps)
			after := place()

			moved, onChanged := 0, 0
			for i := range keys {
				if before[i] == tt.changed || after[i] == tt.changed {
					onChanged++
				}
				if before[i] == after[i] {
					continue
				}
				moved++
				if tt.added && after[i] != tt.changed {
					t.Errorf("key-%d moved from %s to %s, not to the new %s", i, before[i], after[i], tt.changed)
				}
				if !tt.added && before[i] != tt.changed {
					t.Errorf("key-%d moved from %s to %s, though %s stayed", i, before[i], after[i], before[i])
				}
			}
			if moved != onChanged {
				t.Errorf("%d keys moved, %d were or are on %s: want all of those and no others", moved, onChanged, tt.changed)
			}
			share := float64(moved) / keys
			t.Logf("%d of %d keys moved (%.1f%%)", moved, keys, share*100)
			if share < 0.15 || share > 0.35 {
				t.Errorf("%.1f%% of keys moved, want about a quarter (15%%..35%%)", share*100)
			}
		})
	}
}

// With no key cookie (HashAffinity("")) the key is the client's address:
// the first entry of X-Forwarded-For, else the connection's address; with
// one, the cookie wins.
func TestHashAffinityClientAddress(t *testing.T) {
	reps := []*lbReplica{lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")}
	_, byAddr := lbStartPolicy(t, balancer.HashAffinity(""), nil, lbBackends(reps...)...)
	_, byKey := lbStartPolicy(t, balancer.HashAffinity(balancer.HashKeyCookie), nil, lbBackends(reps...)...)
	client := &http.Client{}
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }

	tests := []struct {
		name   string
		keyed  bool        // the policy hashes HashKeyCookie
		a, b   http.Header // two requests that must meet on one replica
		spread func(i int) http.Header
	}{
		{
			name:   "first X-Forwarded-For entry, whatever proxies follow",
			a:      xff("203.0.113.7"),
			b:      xff("203.0.113.7, 10.0.0.1, 10.0.0.2"),
			spread: func(i int) http.Header { return xff(fmt.Sprintf("198.51.100.%d", i)) },
		},
		{
			name: "the connection's address, which X-Forwarded-For may name",
			a:    nil, // from 127.0.0.1
			b:    xff("127.0.0.1"),
		},
		{
			name:  "the key cookie wins over the address",
			keyed: true,
			a:     http.Header{"Cookie": {balancer.HashKeyCookie + "=alice"}, "X-Forwarded-For": {"203.0.113.7"}},
			b:     http.Header{"Cookie": {balancer.HashKeyCookie + "=alice"}, "X-Forwarded-For": {"203.0.113.8"}},
			spread: func(i int) http.Header {
				return http.Header{"Cookie": {fmt.Sprintf("%s=s%d", balancer.HashKeyCookie, i)}, "X-Forwarded-For": {"203.0.113.7"}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := byAddr
			if tt.keyed {
				base = byKey
			}
			visit := func(h http.Header) string {
				got, _ := lbVisit(t, client, base, h)
				return got
			}
			want := visit(tt.a)
			for range 5 {
				if got := visit(tt.a); got != want {
					t.Fatalf("same key went to %s and %s", want, got)
				}
				if got := visit(tt.b); got != want {
					t.Fatalf("went to %s, want %s like the first request", got, want)
				}
			}
			if tt.spread == nil {
				return
			}
			seen := map[string]bool{}
			for i := range 60 {
				seen[visit(tt.spread(i))] = true
			}
			if len(seen) != 3 {
				t.Errorf("60 different keys reached %v, want all three replicas", seen)
			}
		})
	}
}

func TestBalancerRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := lbStartReplica(t, "a"), lbStartReplica(t, "b")
	dead := lbDeadBackend(t, "dead")
	lb, base := lbStartBalancer(t, reg, a.backend(), b.backend(), dead)
	for range 30 {
		lbDo(t, http.MethodGet, base+"/api/books", nil)
	}
	// Round robin over a, b, dead: the third request was refused by dead,
	// which left rotation, and went on to a; the rest alternate b, a.
	want := map[string]uint64{"a": 15, "b": 15, "dead": 0}
	got := lb.Requests()
	if !maps.Equal(got, want) {
		t.Errorf("Requests() = %v, want %v", got, want)
	}
	for id, n := range got {
		if m := lbMetric(t, reg, "statelab_balancer_requests_total", map[string]string{"backend": id}); m != float64(n) {
			t.Errorf("requests_total{backend=%s} = %v, Requests()[%s] = %d; want them equal", id, m, id, n)
		}
	}

	// A replica restarted on a new address goes on counting; an ID that
	// leaves the set keeps what it had.
	a2 := lbStartReplica(t, "a")
	lb.SetBackends([]balancer.Backend{a2.backend()})
	lb.MarkReady("a")
	for range 4 {
		lbDo(t, http.MethodGet, base+"/api/books", nil)
	}
	want = map[string]uint64{"a": 19, "b": 15, "dead": 0}
	if got := lb.Requests(); !maps.Equal(got, want) {
		t.Errorf("after a restart, Requests() = %v, want %v", got, want)
	}
}

// TestHashAffinityKeysNewClients checks that a client without a key is
// given one that keeps it on the replica its first request reached, where
// that request (a login) may have left state; and that a scale-out moves a
// share of those clients, which is the price of the ring.
func TestHashAffinityKeysNewClients(t *testing.T) {
	reps := []*lbReplica{lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")}
	lb, base := lbStartPolicy(t, balancer.HashAffinity(balancer.HashKeyCookie), nil, lbBackends(reps...)...)
	const clients = 60
	first := make([]string, clients)
	cs := make([]*http.Client, clients)
	seen := map[string]int{}
	for i := range clients {
		cs[i] = lbClient(t)
		first[i], _ = lbVisit(t, cs[i], base, nil)
		u, _ := url.Parse(base)
		if !slices.ContainsFunc(cs[i].Jar.Cookies(u), func(c *http.Cookie) bool { return c.Name == balancer.HashKeyCookie }) {
			t.Fatalf("client %d: no %s cookie after its first answer", i, balancer.HashKeyCookie)
		}
		for range 5 {
			if got, _ := lbVisit(t, cs[i], base, nil); got != first[i] {
				t.Fatalf("client %d: first answered by %s, then by %s: the key does not keep it there", i, first[i], got)
			}
		}
		seen[first[i]]++
	}
	// The clients all come from one address; their first requests go
	// round robin, so they spread over every replica and stay there.
	if len(seen) != len(reps) {
		t.Errorf("first answers by replica: %v, want every replica", seen)
	}

	d := lbStartReplica(t, "d")
	lb.SetBackends(lbBackends(append(reps, d)...))
	lb.MarkReady("d")
	moved := 0
	for i := range clients {
		got, _ := lbVisit(t, cs[i], base, nil)
		if got != first[i] {
			if got != "d" {
				t.Errorf("client %d moved from %s to %s at a scale-out to d: only moves to the new replica are allowed", i, first[i], got)
			}
			moved++
		}
	}
	if moved == 0 || moved == clients {
		t.Errorf("%d of %d clients moved at the scale-out, want a share (about a quarter)", moved, clients)
	}
}

// publicRingOwner is where the ring of HashAffinity's algorithm, computed
// with the unkeyed hash anyone can write down (FNV-1a and murmur3's
// finalizer, vnodes points per public replica ID), places key: what a
// client could compute offline before the hash was keyed.
func publicRingOwner(ids []string, key string) string {
	hash := func(s string) uint64 {
		h := uint64(14695981039346656037)
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		h *= 0xc4ceb9b34fe1a85a
		h ^= h >> 33
		return h
	}
	type point struct {
		hash uint64
		id   string
	}
	var pts []point
	for _, id := range ids {
		for v := range 160 {
			pts = append(pts, point{hash(fmt.Sprintf("%s#%d", id, v)), id})
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return cmp.Or(cmp.Compare(a.hash, b.hash), strings.Compare(a.id, b.id)) })
	h := hash(key)
	i, _ := slices.BinarySearchFunc(pts, h, func(p point, h uint64) int { return cmp.Compare(p.hash, h) })
	return pts[i%len(pts)].id
}

// TestHashAffinityKeysCannotBeCraftedOffline is issue 22 (9): replica IDs
// are public and the ring's hash was not keyed, so 300 keys crafted
// offline to land on one replica all landed there. Keyed with the
// balancer's own secret seed, they spread like any keys: about a third
// each.
func TestHashAffinityKeysCannotBeCraftedOffline(t *testing.T) {
	reps := []*lbReplica{lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")}
	_, base := lbStartPolicy(t, balancer.HashAffinity(balancer.HashKeyCookie), nil, lbBackends(reps...)...)
	ids := []string{"a", "b", "c"}
	var crafted []string
	for i := 0; len(crafted) < 300; i++ {
		if key := fmt.Sprintf("crafted-%d", i); publicRingOwner(ids, key) == "a" {
			crafted = append(crafted, key)
		}
	}
	landed := map[string]int{}
	for _, key := range crafted {
		got, _ := lbVisit(t, lbWithSession(t, base, key), base, nil)
		landed[got]++
	}
	t.Logf("300 keys crafted offline for replica a landed: %v", landed)
	// Binomial(300, 1/3): 100 ± 8; 150 is six deviations out.
	if landed["a"] > 150 {
		t.Errorf("300 keys crafted offline for replica a: %v, want them spread (about 100 each)", landed)
	}
	for _, id := range ids {
		if landed[id] < 50 {
			t.Errorf("300 keys crafted offline for replica a: %v, want about 100 on %s", landed, id)
		}
	}
}
