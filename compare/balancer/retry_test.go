package balancer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/internal/api"
)

// lbDying is a replica that reads a request and dies before it answers:
// it closes the connection (EOF for the balancer), or resets it (RST,
// what the kernel sends when a process holding the socket is killed).
func lbDying(t *testing.T, id string, reset bool, hits *atomic.Int64) balancer.Backend {
	t.Helper()
	return lbDyingAfter(t, id, "", reset, hits)
}

// lbDyingAfter is lbDying that first writes said on the connection: the
// start of an answer it never finishes.
func lbDyingAfter(t *testing.T, id, said string, reset bool, hits *atomic.Int64) balancer.Backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/ready" {
			return
		}
		hits.Add(1)
		_, _ = r.Body.Read(make([]byte, 1<<16))
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString(said)
		_ = buf.Flush()
		if tc, ok := conn.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return balancer.Backend{ID: id, Addr: srv.Listener.Addr().String()}
}

// TestBalancerRetriesWhatIsSafe sends requests to a replica that dies with
// them: a request that is safe to send twice goes on to the next replica,
// with its body, and the client never sees the failure; a POST without an
// Idempotency-Key is answered 502, because it may have been processed.
func TestBalancerRetriesWhatIsSafe(t *testing.T) {
	tests := []struct {
		method, key string
		reset       bool
		wantRetry   bool
	}{
		{method: http.MethodGet, wantRetry: true},
		{method: http.MethodGet, reset: true, wantRetry: true},
		{method: http.MethodHead, wantRetry: true},
		{method: http.MethodPut, wantRetry: true},
		{method: http.MethodDelete, reset: true, wantRetry: true},
		{method: http.MethodOptions, wantRetry: true},
		{method: http.MethodPost, key: "k-1", wantRetry: true},
		{method: http.MethodPost, key: "k-2", reset: true, wantRetry: true},
		{method: http.MethodPatch, key: "k-3", wantRetry: true},
		{method: http.MethodPost, wantRetry: false},
		{method: http.MethodPost, reset: true, wantRetry: false},
		{method: http.MethodPatch, wantRetry: false},
	}
	for _, tt := range tests {
		name := tt.method
		if tt.key != "" {
			name += " with a key"
		}
		reason := balancer.ReasonEOF
		if tt.reset {
			reason = balancer.ReasonReset
			name += ", reset"
		}
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var dyingHits atomic.Int64
			good := lbStartReplica(t, "good")
			// Round robin starts at the first backend: the request lands
			// on the dying one.
			lb, url := lbStartBalancer(t, reg, lbDying(t, "dying", tt.reset, &dyingHits), good.backend())

			body := lbRandomBody(t, 3000)
			req, err := http.NewRequest(tt.method, url+"/api/borrows", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" {
				req.Header.Set(api.IdempotencyKeyHeader, tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var echo lbEcho
			_ = json.NewDecoder(resp.Body).Decode(&echo)
			resp.Body.Close()

			if got := dyingHits.Load(); got != 1 {
				t.Errorf("the dying replica got %d requests, want 1", got)
			}
			answered := lbMetric(t, reg, "statelab_lb_retries_total", map[string]string{"strategy": "stateful", "reason": reason, "outcome": balancer.OutcomeAnswered})
			if !tt.wantRetry {
				if resp.StatusCode != http.StatusBadGateway || good.hits.Load() != 0 || answered != 0 {
					t.Errorf("got %d, %d request(s) on the good replica, %v retries; want 502 and no retry", resp.StatusCode, good.hits.Load(), answered)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || good.hits.Load() != 1 {
				t.Fatalf("got %d, %d request(s) on the good replica; want 200 from one retry there", resp.StatusCode, good.hits.Load())
			}
			if tt.method != http.MethodHead && (echo.Method != tt.method || echo.BodyLen != len(body) || echo.BodySHA256 != lbSHA256(body)) {
				t.Errorf("the retry arrived as %+v, want %s with the same %d-byte body", echo, tt.method, len(body))
			}
			if answered != 1 {
				t.Errorf("statelab_lb_retries_total{reason=%s,outcome=answered} = %v, want 1", reason, answered)
			}
			if got := lb.Retries()[reason]; got != (balancer.RetryCount{Answered: 1}) {
				t.Errorf("Retries()[%s] = %+v, want 1 answered", reason, got)
			}
		})
	}
}

// TestBalancerRetryBounds checks that a retry is not tried forever: at
// most two after failures that may have reached a replica, and none once
// the request has waited RetryWithin.
func TestBalancerRetryBounds(t *testing.T) {
	t.Run("at most two retries", func(t *testing.T) {
		var hits atomic.Int64
		good := lbStartReplica(t, "good")
		lb, url := lbStartBalancer(t, nil,
			lbDying(t, "d1", false, &hits), lbDying(t, "d2", false, &hits), lbDying(t, "d3", false, &hits), good.backend())
		status, _, _ := lbDo(t, http.MethodGet, url+"/api/books", nil)
		if status != http.StatusBadGateway || hits.Load() != 3 || good.hits.Load() != 0 {
			t.Errorf("got %d after %d tries on dying replicas and %d on the good one; want 502 after 3 tries", status, hits.Load(), good.hits.Load())
		}
		if got := lb.Retries()[balancer.ReasonEOF]; got != (balancer.RetryCount{Failed: 2}) {
			t.Errorf("Retries()[eof] = %+v, want 2 failed", got)
		}
	})
	t.Run("refused connections do not count", func(t *testing.T) {
		var hits atomic.Int64
		good := lbStartReplica(t, "good")
		_, url := lbStartBalancer(t, nil, lbDying(t, "d1", false, &hits), lbDeadBackend(t, "x1"), lbDeadBackend(t, "x2"), lbDeadBackend(t, "x3"), good.backend())
		if status, _, body := lbDo(t, http.MethodGet, url+"/api/books", nil); status != http.StatusOK {
			t.Errorf("got %d %s, want 200: a refused connection reached nothing, so it costs no retry", status, body)
		}
	})
	t.Run("refused after one that may have been sent is 502", func(t *testing.T) {
		var hits atomic.Int64
		_, url := lbStartBalancer(t, nil, lbDying(t, "d1", false, &hits), lbDeadBackend(t, "x1"))
		req, _ := http.NewRequest(http.MethodPost, url+"/api/borrows", strings.NewReader(`{}`))
		req.Header.Set(api.IdempotencyKeyHeader, "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("got %d, want 502: the first replica may have processed the request", resp.StatusCode)
		}
	})
	t.Run("no retry after RetryWithin", func(t *testing.T) {
		slowDying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(60 * time.Millisecond)
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(slowDying.Close)
		good := lbStartReplica(t, "good")
		lb := balancer.New(balancer.Config{Side: "stateful", RetryWithin: 20 * time.Millisecond})
		backends := []balancer.Backend{{ID: "slow", Addr: slowDying.Listener.Addr().String()}, good.backend()}
		lb.SetReadyBackends(backends)
		srv := httptest.NewServer(lb)
		t.Cleanup(srv.Close)
		if status, _, _ := lbDo(t, http.MethodGet, srv.URL+"/api/books", nil); status != http.StatusBadGateway || good.hits.Load() != 0 {
			t.Errorf("got %d, %d on the good replica; want 502 and no retry once RetryWithin has passed", status, good.hits.Load())
		}
	})
}

// TestBalancerSurgeReplacement replaces a backend under the same ID on a
// new address, as a surge restart does, while a request is in flight on
// the old one: the new one is in rotation at once, the old one's request
// finishes, WaitIdle waits for exactly that one, and a Drain of the old
// address leaves the new one alone.
func TestBalancerSurgeReplacement(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/ready" {
			return
		}
		close(arrived)
		<-release
		w.Write([]byte(`{"success":true}`))
	}))
	t.Cleanup(old.Close)
	next := lbStartReplica(t, "r")
	oldBe := balancer.Backend{ID: "r", Addr: old.Listener.Addr().String()}
	lb := balancer.New(balancer.Config{Side: "stateful"})
	lb.SetReadyBackends([]balancer.Backend{oldBe})
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)

	done := make(chan int)
	go func() {
		status, _, _ := lbDo(t, http.MethodGet, srv.URL+"/api/books", nil)
		done <- status
	}()
	<-arrived
	lb.SetReadyBackends([]balancer.Backend{next.backend()})
	if got := lb.InRotation(); !slices.Equal(got, []balancer.Backend{next.backend()}) {
		t.Fatalf("in rotation right after the replacement: %v, want the new address only", got)
	}
	lb.Drain(oldBe) // what the supervisor's BeforeStop does for the old process
	if got := lb.InRotation(); len(got) != 1 {
		t.Fatalf("a drain of the old address took the new one out: %v", got)
	}
	if status, _, _ := lbDo(t, http.MethodGet, srv.URL+"/api/books", nil); status != http.StatusOK || next.hits.Load() != 1 {
		t.Errorf("a new request: %d, %d on the new process; want 200 there", status, next.hits.Load())
	}
	idle := make(chan error)
	go func() { idle <- lb.WaitIdle(context.Background(), oldBe) }()
	select {
	case err := <-idle:
		t.Fatalf("WaitIdle of the old address returned (%v) with its request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if got := <-done; got != http.StatusOK {
		t.Errorf("the old process's request: %d, want 200", got)
	}
	if err := <-idle; err != nil {
		t.Errorf("WaitIdle: %v", err)
	}
}

func lbSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// lbKilledByPost is a replica that answers reads and dies on the first
// POST it receives: it reads the whole request, then stops listening and
// closes every connection, as a process killed at that moment would. Its
// port then refuses connections. posts counts the POSTs its handler saw.
func lbKilledByPost(t *testing.T, id string, before time.Duration, posts *atomic.Int64) balancer.Backend {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Write([]byte(`{"success":true}`))
			return
		}
		posts.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(before)
		srv.Listener.Close()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		srv.CloseClientConnections()
	}))
	t.Cleanup(srv.Close)
	return balancer.Backend{ID: id, Addr: srv.Listener.Addr().String()}
}

// TestBalancerSendsPostOnce kills a replica right after it received a POST
// on a keep-alive connection. Go's Transport sends a request carrying
// X-Idempotency-Key again on a new connection by itself; that dial is
// refused, and a balancer that judged "sent" by that last error alone
// would think the POST never left and send it to another replica too. The
// lab's replicas do not honour X-Idempotency-Key, so the POST must reach
// one replica only and be answered 502.
func TestBalancerSendsPostOnce(t *testing.T) {
	const trials = 10
	for _, header := range []string{"", "X-Idempotency-Key"} {
		name := "no key"
		if header != "" {
			name = header
		}
		t.Run(name, func(t *testing.T) {
			twice := 0
			for i := range trials {
				var posts atomic.Int64
				other := lbStartReplica(t, "other")
				_, url := lbStartBalancer(t, nil, lbKilledByPost(t, "killed", 0, &posts), other.backend())
				// Round robin: the first GET opens a keep-alive connection
				// to the replica that will be killed, the POST reuses it.
				lbDo(t, http.MethodGet, url+"/api/books", nil)
				lbDo(t, http.MethodGet, url+"/api/books", nil)
				req, err := http.NewRequest(http.MethodPost, url+"/api/borrows", strings.NewReader(`{"book_id":1}`))
				if err != nil {
					t.Fatal(err)
				}
				if header != "" {
					req.Header.Set(header, fmt.Sprintf("k-%d", i))
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if posts.Load() != 1 {
					t.Fatalf("trial %d: the killed replica got %d POSTs, want 1", i, posts.Load())
				}
				if other.hits.Load() > 1 { // its one GET
					twice++
				} else if resp.StatusCode != http.StatusBadGateway {
					t.Errorf("trial %d: status %d, want 502: the POST may have been processed", i, resp.StatusCode)
				}
			}
			if twice > 0 {
				t.Errorf("%d of %d POSTs reached two replicas, want 0", twice, trials)
			}
		})
	}
}

// TestBalancerTransportRetryCountsAsSent sends a POST with the lab's
// Idempotency-Key to a replica that dies after receiving it, on a
// keep-alive connection: the Transport sends it again on a new connection,
// which is refused. What was written decides that the request may have
// been processed, so the balancer's own bounds apply: after RetryWithin,
// no retry on another replica.
func TestBalancerTransportRetryCountsAsSent(t *testing.T) {
	var posts atomic.Int64
	other := lbStartReplica(t, "other")
	lb := balancer.New(balancer.Config{Side: "stateful", RetryWithin: 20 * time.Millisecond})
	lb.SetReadyBackends([]balancer.Backend{lbKilledByPost(t, "killed", 60*time.Millisecond, &posts), other.backend()})
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	lbDo(t, http.MethodGet, srv.URL+"/api/books", nil)
	lbDo(t, http.MethodGet, srv.URL+"/api/books", nil)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/borrows", strings.NewReader(`{"book_id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(api.IdempotencyKeyHeader, "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || posts.Load() != 1 || other.hits.Load() != 1 {
		t.Errorf("got %d, %d POST(s) on the killed replica, %d request(s) on the other; want 502, 1 and its one GET",
			resp.StatusCode, posts.Load(), other.hits.Load())
	}
	if got := lb.Retries()[balancer.ReasonRefused]; got != (balancer.RetryCount{}) {
		t.Errorf("Retries()[refused] = %+v, want none: the try was sent before the refusal", got)
	}
}

// lbDiesMidAnswer is a replica that sends its status, its headers and the
// first half of an answer of the given length (chunked when length is 0,
// its length unknown), then dies: the connection closes (or is reset) with
// the answer cut off.
func lbDiesMidAnswer(t *testing.T, id string, length int, reset bool, hits *atomic.Int64) balancer.Backend {
	t.Helper()
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Statelab-Replica: " + id + "\r\n"
	if length > 0 {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", length) + strings.Repeat("x", length/2)
	} else {
		head += "Transfer-Encoding: chunked\r\n\r\n" + "400\r\n" + strings.Repeat("x", 0x400) + "\r\n"
	}
	return lbDyingAfter(t, id, head, reset, hits)
}

// TestBalancerRetriesAnAnswerCutOff has a replica die in the middle of its
// answer, after its headers went out: a request that is safe to send twice
// is answered whole by the next replica, where a proxy that streams answers
// would pass the cut-off answer on; a POST without a key still gets the
// broken answer, since it may have been processed. (Before readAnswer, every
// one of these clients read an answer cut off.)
func TestBalancerRetriesAnAnswerCutOff(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		key       string
		length    int
		reset     bool
		wantRetry bool
	}{
		{name: "GET, length known", method: http.MethodGet, length: 8000, wantRetry: true},
		{name: "GET, chunked", method: http.MethodGet, wantRetry: true},
		{name: "GET, reset", method: http.MethodGet, length: 8000, reset: true, wantRetry: true},
		{name: "POST with a key", method: http.MethodPost, key: "k-1", length: 8000, wantRetry: true},
		{name: "POST without a key", method: http.MethodPost, length: 8000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var dyingHits atomic.Int64
			good := lbStartReplica(t, "good")
			_, url := lbStartBalancer(t, reg, lbDiesMidAnswer(t, "dying", tt.length, tt.reset, &dyingHits), good.backend())

			req, err := http.NewRequest(tt.method, url+"/api/books", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" {
				req.Header.Set(api.IdempotencyKeyHeader, tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := dyingHits.Load(); got != 1 {
				t.Errorf("the dying replica got %d requests, want 1", got)
			}
			retried := lbMetric(t, reg, "statelab_lb_retries_total", map[string]string{"strategy": "stateful", "outcome": balancer.OutcomeAnswered})
			if !tt.wantRetry {
				if readErr == nil || good.hits.Load() != 0 || retried != 0 {
					t.Errorf("read %d bytes (err %v), %d request(s) on the good replica, %v retries; want an answer cut off and no retry", len(body), readErr, good.hits.Load(), retried)
				}
				return
			}
			if readErr != nil || resp.StatusCode != http.StatusOK || good.hits.Load() != 1 || retried != 1 {
				t.Fatalf("got %d, %d bytes (err %v), %d request(s) on the good replica, %v retries; want 200 whole from one retry there", resp.StatusCode, len(body), readErr, good.hits.Load(), retried)
			}
			var echo lbEcho
			if err := json.Unmarshal(body, &echo); err != nil || echo.Replica != "good" {
				t.Errorf("answer %q (%v), want the good replica's echo", body, err)
			}
			if resp.Header.Get("X-Statelab-Replica") != "good" {
				t.Errorf("X-Statelab-Replica %q, want good: the dying replica's headers must not reach the client", resp.Header.Get("X-Statelab-Replica"))
			}
		})
	}
}
