package balancer_test

import (
	"io"
	"net/http"
	"net/http/httptest"
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
// and reports the median request time next to ns/op.
func lbBenchGet(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
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
	lbBenchGet(b, srv.URL+"/api/books/1")
}

func BenchmarkThroughBalancer(b *testing.B) {
	rep := lbBenchReplica(b)
	lb := balancer.New(balancer.Config{Side: "stateless"})
	lb.SetBackends([]balancer.Backend{{ID: "bench", Addr: rep.Listener.Addr().String()}})
	lb.MarkReady("bench")
	srv := httptest.NewServer(lb)
	b.Cleanup(srv.Close)
	lbBenchGet(b, srv.URL+"/api/books/1")
}
