package balancer_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/balancer"
)

// The balancer should add little to a request: the target is at
// most 100 µs of added median latency on loopback. Compare the p50-µs of
// BenchmarkThroughBalancer with that of BenchmarkDirect.

// lbBenchReplica answers every request with a small JSON body, like a
// replica's GET /api/books/{id}.
func lbBenchReplica(b *testing.B) *httptest.Server {
	body := []byte(`{"success":true,"data":{"id":1,"title":"The Go Programming Language","available":3}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/ready" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Statelab-Replica", "bench")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// lbBenchGet sends sequential GETs to url over one keep-alive connection,
// with the cookies of jar (nil: none), and reports the median request time
// next to ns/op.
func lbBenchGet(b *testing.B, url string, jar http.CookieJar) {
	client := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	get := func() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get() // open the connections (client to balancer, balancer to replica) outside the timing

	var durations []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		get()
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds())/1e3, "p50-µs")
}

func BenchmarkDirect(b *testing.B) {
	srv := lbBenchReplica(b)
	lbBenchGet(b, srv.URL+"/api/books/1", nil)
}

// BenchmarkThroughBalancer is the default policy, round robin, over one
// backend.
func BenchmarkThroughBalancer(b *testing.B) {
	rep := lbBenchReplica(b)
	lb := balancer.New(balancer.Config{Side: "stateless"})
	lb.SetBackends([]balancer.Backend{{ID: "bench", Addr: rep.Listener.Addr().String()}})
	lb.MarkReady("bench")
	srv := httptest.NewServer(lb)
	b.Cleanup(srv.Close)
	lbBenchGet(b, srv.URL+"/api/books/1", nil)
}

// BenchmarkThroughBalancerPolicy runs each policy over three backends (three
// IDs for one bench replica, so the replica's own cost stays that of
// BenchmarkThroughBalancer), with a client that keeps its cookies: after
// the first request the cookie policy finds its route cookie, the hash
// policy its session cookie.
func BenchmarkThroughBalancerPolicy(b *testing.B) {
	for _, name := range []string{balancer.AffinityNone, balancer.AffinityCookie, balancer.AffinityHash} {
		b.Run(name, func(b *testing.B) {
			p, err := balancer.ParseAffinity(name)
			if err != nil {
				b.Fatal(err)
			}
			rep := lbBenchReplica(b)
			lb := balancer.New(balancer.Config{Side: "stateful", Policy: p})
			lb.SetBackends(lbBenchBackends(rep.Listener.Addr().String()))
			for _, id := range []string{"r1", "r2", "r3"} {
				lb.MarkReady(id)
			}
			srv := httptest.NewServer(lb)
			b.Cleanup(srv.Close)
			jar, err := cookiejar.New(nil)
			if err != nil {
				b.Fatal(err)
			}
			u, _ := url.Parse(srv.URL)
			jar.SetCookies(u, []*http.Cookie{{Name: balancer.HashKeyCookie, Value: "bench-session"}})
			lbBenchGet(b, srv.URL+"/api/books/1", jar)
		})
	}
}

// BenchmarkPolicyOrder is the policy's own cost per request, without the
// network: choosing the order for a request that carries a session cookie
// and, for the cookie policy, a route cookie.
func BenchmarkPolicyOrder(b *testing.B) {
	rotation := lbBenchBackends("127.0.0.1:1")
	for _, name := range []string{balancer.AffinityNone, balancer.AffinityCookie, balancer.AffinityHash} {
		b.Run(name, func(b *testing.B) {
			p, err := balancer.ParseAffinity(name)
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/books/1", nil)
			r.AddCookie(&http.Cookie{Name: balancer.HashKeyCookie, Value: "bench-session"})
			r.AddCookie(&http.Cookie{Name: balancer.RouteCookie, Value: "r2"})
			dst := make([]int, 0, 8)
			b.ReportAllocs()
			for b.Loop() {
				dst = p.Order(dst[:0], r, rotation)
			}
		})
	}
}

func lbBenchBackends(addr string) []balancer.Backend {
	return []balancer.Backend{{ID: "r1", Addr: addr}, {ID: "r2", Addr: addr}, {ID: "r3", Addr: addr}}
}
