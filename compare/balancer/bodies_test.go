package balancer_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/compare/balancer"
)

// lbHoldBody opens a connection to the balancer at addr and sends a POST
// announcing a 1 MiB body, all of it but the last byte, then waits: what
// a client trickling its body does. Closing the connection ends it.
func lbHoldBody(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /api/borrows HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, 1<<20)
	if _, err := conn.Write(make([]byte, 1<<20-1)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// lbPost sends a POST with body to url, chunked (no Content-Length) when
// chunked is set, and returns the status, headers and envelope code. A
// connection the balancer closed while the body was still going out
// counts as status 0.
func lbPost(t *testing.T, url string, body []byte, chunked bool) (int, http.Header, string) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/api/borrows", r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	var env struct {
		Code string `json:"code"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return resp.StatusCode, resp.Header, env.Code
}

// TestBalancerBoundsBufferedBodies fills the balancer's body budget with
// clients that hold 1 MiB bodies open: a further body that does not fit is
// answered 503 bodies_full at once and reaches no replica, one that fits
// still passes, and the budget comes back whole when the holders go.
func TestBalancerBoundsBufferedBodies(t *testing.T) {
	const small = 1024
	live := lbStartReplica(t, "live")
	reg := prometheus.NewRegistry()
	lb := balancer.New(balancer.Config{Side: "stateful", Registerer: reg, MaxBuffered: 2<<20 + small})
	lb.SetReadyBackends([]balancer.Backend{live.backend()})
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	big := lbRandomBody(t, 1<<20)

	buffered := func(want float64) func() bool {
		return func() bool {
			return lbMetric(t, reg, "statelab_balancer_buffered_bytes", map[string]string{"strategy": "stateful"}) == want
		}
	}
	// fill holds two 1 MiB bodies, and a third is refused.
	fill := func() []net.Conn {
		conns := []net.Conn{lbHoldBody(t, addr), lbHoldBody(t, addr)}
		lbEventually(t, "the balancer holds 2 MiB", buffered(2<<20))
		status, h, code := lbPost(t, srv.URL, big, false)
		if status != http.StatusServiceUnavailable || code != balancer.CodeBodiesFull || h.Get(balancer.Header) != "stateful" || h.Get("Retry-After") == "" {
			t.Fatalf("a 1 MiB body while full: %d %q (headers %v), want 503 %s from the balancer with Retry-After", status, code, h, balancer.CodeBodiesFull)
		}
		return conns
	}

	if status, _, _ := lbPost(t, srv.URL, big, false); status != http.StatusOK {
		t.Fatalf("a 1 MiB body with room for it: %d, want 200", status)
	}
	conns := fill()
	before := live.hits.Load()
	if status, _, code := lbPost(t, srv.URL, big, true); status != http.StatusServiceUnavailable || code != balancer.CodeBodiesFull {
		t.Errorf("a chunked body while full: %d %q, want 503 %s (it may take 1 MiB)", status, code, balancer.CodeBodiesFull)
	}
	if got := live.hits.Load(); got != before {
		t.Errorf("a refused body reached the replica (%d requests, want %d)", got, before)
	}
	if status, _, code := lbPost(t, srv.URL, make([]byte, small), false); status != http.StatusOK {
		t.Errorf("a %d-byte body that fits: %d %q, want 200", small, status, code)
	}

	for _, c := range conns {
		c.Close()
	}
	lbEventually(t, "the holders' bytes come back", buffered(0))
	for range 10 {
		if status, _, code := lbPost(t, srv.URL, []byte(strings.Repeat("x", 100)), true); status != http.StatusOK {
			t.Fatalf("a small chunked body: %d %q, want 200", status, code)
		}
	}
	lbEventually(t, "the chunked bodies' bytes come back", buffered(0))

	// Nothing leaked: two holders again leave exactly room for small bytes.
	fill()
	if status, _, code := lbPost(t, srv.URL, make([]byte, small), false); status != http.StatusOK {
		t.Errorf("after the budget came back: a %d-byte body got %d %q, want 200: bytes leaked", small, status, code)
	}
	if status, _, _ := lbPost(t, srv.URL, make([]byte, small+1), false); status != http.StatusServiceUnavailable {
		t.Errorf("a %d-byte body got %d, want 503: the budget is larger than configured", small+1, status)
	}
}
