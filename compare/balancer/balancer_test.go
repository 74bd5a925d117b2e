package balancer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/statelab/statelab/compare/balancer"
)

// lbReplica is a stand-in for one replica: it answers /api/ready with
// readyStatus, and any other path with status, its id in
// X-Statelab-Replica, a cookie, and what it received.
type lbReplica struct {
	id          string
	srv         *httptest.Server
	hits        atomic.Int64
	readyStatus atomic.Int32
	readyDelay  atomic.Int64 // nanoseconds /api/ready waits before answering
	readyHits   atomic.Int64
	status      atomic.Int32
}

// lbEcho is what an lbReplica answers.
type lbEcho struct {
	Replica       string `json:"replica"`
	Method        string `json:"method"`
	BodyLen       int    `json:"body_len"`
	BodySHA256    string `json:"body_sha256"`
	XForwardedFor string `json:"x_forwarded_for"`
}

func lbStartReplica(t testing.TB, id string) *lbReplica {
	t.Helper()
	rep := &lbReplica{id: id}
	rep.readyStatus.Store(http.StatusOK)
	rep.status.Store(http.StatusOK)
	rep.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/ready" {
			rep.readyHits.Add(1)
			select {
			case <-time.After(time.Duration(rep.readyDelay.Load())):
			case <-r.Context().Done():
				return
			}
			w.WriteHeader(int(rep.readyStatus.Load()))
			return
		}
		rep.hits.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("X-Statelab-Replica", id)
		http.SetCookie(w, &http.Cookie{Name: "statelab_session", Value: "made-on-" + id})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(rep.status.Load()))
		_ = json.NewEncoder(w).Encode(lbEcho{
			Replica: id, Method: r.Method, BodyLen: len(body), BodySHA256: hex.EncodeToString(sum[:]),
			XForwardedFor: r.Header.Get("X-Forwarded-For"),
		})
	}))
	t.Cleanup(rep.srv.Close)
	return rep
}

func (rep *lbReplica) backend() balancer.Backend {
	return balancer.Backend{ID: rep.id, Addr: rep.srv.Listener.Addr().String()}
}

// lbDeadBackend is an address that refuses connections: a listener that
// was opened and closed.
func lbDeadBackend(t testing.TB, id string) balancer.Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return balancer.Backend{ID: id, Addr: addr}
}

// lbStartBalancer serves a stateful-side balancer over backends, all marked
// ready, and returns it with its URL.
func lbStartBalancer(t testing.TB, reg prometheus.Registerer, backends ...balancer.Backend) (*balancer.Balancer, string) {
	t.Helper()
	lb := balancer.New(balancer.Config{Side: "stateful", Registerer: reg, HealthEvery: 10 * time.Millisecond})
	lb.SetBackends(backends)
	for _, be := range backends {
		lb.MarkReady(be.ID)
	}
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	return lb, srv.URL
}

// lbDo sends one request and returns the status, the headers and the body.
func lbDo(t testing.TB, method, url string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

func lbIDs(bs []balancer.Backend) []string {
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	slices.Sort(ids)
	return ids
}

// lbEventually polls cond until it holds or a few seconds pass.
func lbEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lbMetric returns the value of the series of name whose labels include
// want, or 0 when there is none.
func lbMetric(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func lbRandomBody(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBalancerRoundRobin(t *testing.T) {
	reps := []*lbReplica{lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")}
	_, url := lbStartBalancer(t, nil, reps[0].backend(), reps[1].backend(), reps[2].backend())

	const n = 300
	prev := ""
	for i := range n {
		status, h, _ := lbDo(t, http.MethodGet, url+"/api/books", nil)
		if status != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, status)
		}
		// No stickiness: the next request never lands where the last did.
		got := h.Get("X-Statelab-Replica")
		if got == prev {
			t.Fatalf("request %d went to %s again", i, got)
		}
		prev = got
	}
	for _, rep := range reps {
		if got := rep.hits.Load(); got != n/3 {
			t.Errorf("replica %s got %d requests, want %d", rep.id, got, n/3)
		}
	}
}

func TestBalancerPassesResponsesThrough(t *testing.T) {
	rep := lbStartReplica(t, "a")
	rep.status.Store(http.StatusTeapot)
	_, url := lbStartBalancer(t, nil, rep.backend())

	status, h, body := lbDo(t, http.MethodGet, url+"/api/books?q=go", nil)
	if status != http.StatusTeapot {
		t.Errorf("status %d, want %d", status, http.StatusTeapot)
	}
	if got, want := h.Get("Set-Cookie"), "statelab_session=made-on-a"; got != want {
		t.Errorf("Set-Cookie %q, want %q", got, want)
	}
	if got := h.Get("X-Statelab-Replica"); got != "a" {
		t.Errorf("X-Statelab-Replica %q, want a", got)
	}
	if got := h.Get("X-Statelab-Balancer"); got != "" {
		t.Errorf("X-Statelab-Balancer %q on a replica's answer, want none", got)
	}
	var echo lbEcho
	if err := json.Unmarshal(body, &echo); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if echo.XForwardedFor != "127.0.0.1" {
		t.Errorf("X-Forwarded-For seen by the replica %q, want 127.0.0.1", echo.XForwardedFor)
	}
}

func TestBalancerDrain(t *testing.T) {
	a, b, c := lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")
	lb, url := lbStartBalancer(t, nil, a.backend(), b.backend(), c.backend())

	lb.Drain(b.backend())
	if got, want := lbIDs(lb.InRotation()), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("in rotation %v, want %v", got, want)
	}
	for range 100 {
		if status, _, _ := lbDo(t, http.MethodGet, url+"/api/books", nil); status != http.StatusOK {
			t.Fatalf("status %d, want 200", status)
		}
	}
	if got := b.hits.Load(); got != 0 {
		t.Errorf("drained replica got %d requests, want 0", got)
	}
	if got := a.hits.Load() + c.hits.Load(); got != 100 {
		t.Errorf("the others got %d requests, want 100", got)
	}
}

func TestBalancerDrainLetsInFlightFinish(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.Write([]byte(`{"success":true}`))
	}))
	t.Cleanup(srv.Close)
	slow := balancer.Backend{ID: "slow", Addr: srv.Listener.Addr().String()}
	lb, url := lbStartBalancer(t, nil, slow)

	done := make(chan int)
	go func() {
		resp, err := http.Get(url + "/api/books")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-arrived
	lb.Drain(slow)
	idle := make(chan error)
	go func() { idle <- lb.WaitIdle(context.Background(), slow) }()
	select {
	case err := <-idle:
		t.Fatalf("WaitIdle returned (%v) while a request was still in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if got := <-done; got != http.StatusOK {
		t.Errorf("in-flight request status %d, want 200", got)
	}
	if err := <-idle; err != nil {
		t.Errorf("WaitIdle: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := lb.WaitIdle(ctx, slow); err != nil {
		t.Errorf("WaitIdle with nothing in flight: %v, want nil at once", err)
	}
}

func TestBalancerRetriesRefusedConnection(t *testing.T) {
	tests := []struct {
		name string
		// a returns the refusing backend a and a func that makes it
		// refuse, called after one round of requests.
		a func(t *testing.T) (balancer.Backend, func())
	}{
		{"never listened", func(t *testing.T) (balancer.Backend, func()) { return lbDeadBackend(t, "a"), func() {} }},
		{"closed after serving (pooled connections)", func(t *testing.T) (balancer.Backend, func()) {
			rep := lbStartReplica(t, "a")
			return rep.backend(), rep.srv.Close
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			b, c := lbStartReplica(t, "b"), lbStartReplica(t, "c")
			a, kill := tt.a(t)
			lb, url := lbStartBalancer(t, reg, a, b.backend(), c.backend())
			for range 3 {
				lbDo(t, http.MethodGet, url+"/api/books", nil)
			}
			kill()

			for i := range 30 {
				if status, _, body := lbDo(t, http.MethodGet, url+"/api/books", nil); status != http.StatusOK {
					t.Fatalf("request %d: status %d, want 200 (%s)", i, status, body)
				}
			}
			if got, want := lbIDs(lb.InRotation()), []string{"b", "c"}; !slices.Equal(got, want) {
				t.Errorf("in rotation %v, want %v", got, want)
			}
			if got := lbMetric(t, reg, "statelab_balancer_retries_total", map[string]string{"strategy": "stateful", "backend": "a"}); got != 1 {
				t.Errorf("retries for a = %v, want 1 (it leaves rotation after the first refusal)", got)
			}
			if got := lbMetric(t, reg, "statelab_balancer_requests_total", map[string]string{"code": "200"}); got != 33 {
				t.Errorf("requests with code 200 = %v, want 33", got)
			}
			if got := lbMetric(t, reg, "statelab_balancer_backends_in_rotation", map[string]string{"strategy": "stateful"}); got != 2 {
				t.Errorf("backends in rotation gauge = %v, want 2", got)
			}
		})
	}
}

func TestBalancerDoesNotRetryAfterSending(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantCode   string // the balancer's envelope code; "" for a replica's answer passed through
	}{
		{
			name: "500 is passed through",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Statelab-Replica", "broken")
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"success":false,"code":"internal","message":"The replica failed."}`))
			},
			wantStatus: http.StatusInternalServerError,
		},
		{
			name: "connection cut after the request arrived is 502",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			wantStatus: http.StatusBadGateway,
			wantCode:   "bad_gateway",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var brokenHits atomic.Int64
			broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				brokenHits.Add(1)
				tt.handler(w, r)
			}))
			t.Cleanup(broken.Close)
			good := lbStartReplica(t, "good")
			// The counter starts at the first backend: the POST lands on the broken one.
			_, url := lbStartBalancer(t, reg, balancer.Backend{ID: "broken", Addr: broken.Listener.Addr().String()}, good.backend())

			status, h, body := lbDo(t, http.MethodPost, url+"/api/borrows", strings.NewReader(`{"book_id":1}`))
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d (body %s)", status, tt.wantStatus, body)
			}
			if got := brokenHits.Load(); got != 1 {
				t.Errorf("broken replica got %d requests, want 1", got)
			}
			if got := good.hits.Load(); got != 0 {
				t.Errorf("the POST was retried on another replica (%d requests there)", got)
			}
			if got := lbMetric(t, reg, "statelab_balancer_retries_total", nil); got != 0 {
				t.Errorf("retries = %v, want 0", got)
			}
			if got := lbMetric(t, reg, "statelab_balancer_requests_total", map[string]string{"backend": "broken", "code": strconv.Itoa(tt.wantStatus)}); got != 1 {
				t.Errorf("requests_total{backend=broken,code=%d} = %v, want 1", tt.wantStatus, got)
			}
			var env struct {
				Success bool   `json:"success"`
				Code    string `json:"code"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if tt.wantCode == "" {
				if env.Code != "internal" || h.Get("X-Statelab-Replica") != "broken" {
					t.Errorf("the replica's answer was not passed through: %s %v", body, h)
				}
				return
			}
			if env.Success || env.Code != tt.wantCode || h.Get("X-Statelab-Balancer") != "stateful" {
				t.Errorf("got %s with X-Statelab-Balancer %q, want code %s from the balancer", body, h.Get("X-Statelab-Balancer"), tt.wantCode)
			}
		})
	}
}

func TestBalancerResendsBodyOnRetry(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		chunked bool // no Content-Length: the balancer does not know the size in advance
	}{
		{"small", 13, false},
		{"200 KiB", 200 << 10, false},
		{"200 KiB chunked", 200 << 10, true},
		{"exactly 1 MiB", 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := lbStartReplica(t, "live")
			lb, url := lbStartBalancer(t, nil, lbDeadBackend(t, "dead"), live.backend())
			body := lbRandomBody(t, tt.size)
			var r io.Reader = bytes.NewReader(body)
			if tt.chunked {
				r = io.MultiReader(r) // hides the length from http.NewRequest
			}
			status, _, got := lbDo(t, http.MethodPost, url+"/api/borrows", r)
			if status != http.StatusOK {
				t.Fatalf("status %d, want 200 (%s)", status, got)
			}
			var echo lbEcho
			if err := json.Unmarshal(got, &echo); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			if echo.Replica != "live" || echo.BodyLen != len(body) || echo.BodySHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("the replica got %d bytes (sha256 %s…) on %s, want the %d sent", echo.BodyLen, echo.BodySHA256[:8], echo.Replica, len(body))
			}
			if got := lbIDs(lb.InRotation()); !slices.Equal(got, []string{"live"}) {
				t.Errorf("in rotation %v, want [live]", got)
			}
		})
	}
}

func TestBalancerStreamsLargeBodyWithoutRetry(t *testing.T) {
	body := lbRandomBody(t, 2<<20)
	sum := sha256.Sum256(body)

	live := lbStartReplica(t, "live")
	_, url := lbStartBalancer(t, nil, live.backend())
	status, _, got := lbDo(t, http.MethodPost, url+"/api/borrows", io.MultiReader(bytes.NewReader(body)))
	var echo lbEcho
	if err := json.Unmarshal(got, &echo); err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || echo.BodyLen != len(body) || echo.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("streamed body: status %d, %d bytes arrived, want 200 and %d intact", status, echo.BodyLen, len(body))
	}

	// A body too large to keep cannot be sent twice: a refused first try
	// ends the request.
	live2 := lbStartReplica(t, "live")
	_, url = lbStartBalancer(t, nil, lbDeadBackend(t, "dead"), live2.backend())
	status, _, _ = lbDo(t, http.MethodPost, url+"/api/borrows", bytes.NewReader(body))
	if status != http.StatusServiceUnavailable || live2.hits.Load() != 0 {
		t.Errorf("status %d with %d requests on the live replica, want 503 and 0", status, live2.hits.Load())
	}
}

func TestBalancerHealthCheck(t *testing.T) {
	a, b := lbStartReplica(t, "a"), lbStartReplica(t, "b")
	lb := balancer.New(balancer.Config{Side: "stateless", HealthEvery: 10 * time.Millisecond})
	lb.SetBackends([]balancer.Backend{a.backend(), b.backend()})
	if got := lb.InRotation(); len(got) != 0 {
		t.Fatalf("new backends in rotation before any check: %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); lb.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	inRotation := func(want ...string) func() bool {
		return func() bool { return slices.Equal(lbIDs(lb.InRotation()), want) }
	}
	lbEventually(t, "a passing check puts both in rotation", inRotation("a", "b"))
	a.readyStatus.Store(http.StatusServiceUnavailable)
	lbEventually(t, "a leaves rotation on a 503 from /api/ready", inRotation("b"))
	a.readyStatus.Store(http.StatusOK)
	lbEventually(t, "a comes back on a 200", inRotation("a", "b"))

	// A drained backend stays out though its checks pass.
	lb.Drain(b.backend())
	lbEventually(t, "b is drained", inRotation("a"))
	time.Sleep(50 * time.Millisecond) // several check rounds
	if got := lbIDs(lb.InRotation()); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after checks, in rotation %v, want [a]", got)
	}
}

// A replica that answers its health check too slowly stays in rotation for
// a while: on a busy machine one slow answer is no reason to stop sending it
// traffic. Only several in a row take it out.
func TestBalancerSlowHealthChecks(t *testing.T) {
	a, b := lbStartReplica(t, "a"), lbStartReplica(t, "b")
	lb := balancer.New(balancer.Config{Side: "stateless", HealthEvery: 10 * time.Millisecond})
	lb.SetBackends([]balancer.Backend{a.backend(), b.backend()})
	lb.MarkReady("a")
	lb.MarkReady("b")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); lb.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	a.readyDelay.Store(int64(2 * time.Second))
	hits := a.readyHits.Load()
	// The second slow check begins only after the first timed out.
	lbEventually(t, "two slow health checks of a", func() bool { return a.readyHits.Load() >= hits+2 })
	if got := lbIDs(lb.InRotation()); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("after one timed-out check, in rotation %v, want [a b]", got)
	}
	lbEventually(t, "a leaves rotation after several timed-out checks", func() bool {
		return slices.Equal(lbIDs(lb.InRotation()), []string{"b"})
	})
	a.readyDelay.Store(0)
	lbEventually(t, "a comes back once it answers in time", func() bool {
		return slices.Equal(lbIDs(lb.InRotation()), []string{"a", "b"})
	})
}

func TestBalancerMarkReadyBeforeSetBackends(t *testing.T) {
	a := lbStartReplica(t, "a")
	lb := balancer.New(balancer.Config{Side: "stateful"})
	lb.MarkReady("a") // the supervisor may announce a replica before the set that holds it
	lb.SetBackends([]balancer.Backend{a.backend()})
	if got := lbIDs(lb.InRotation()); !slices.Equal(got, []string{"a"}) {
		t.Errorf("in rotation %v, want [a]", got)
	}
}

func TestBalancerNoBackend(t *testing.T) {
	tests := []struct {
		name     string
		backends func(t *testing.T) []balancer.Backend
		ready    bool
	}{
		{"no backends at all", func(*testing.T) []balancer.Backend { return nil }, true},
		{"none ready yet", func(t *testing.T) []balancer.Backend { return []balancer.Backend{lbStartReplica(t, "a").backend()} }, false},
		{"all refuse", func(t *testing.T) []balancer.Backend {
			return []balancer.Backend{lbDeadBackend(t, "a"), lbDeadBackend(t, "b")}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			lb := balancer.New(balancer.Config{Side: "stateless", Registerer: reg})
			bs := tt.backends(t)
			lb.SetBackends(bs)
			if tt.ready {
				for _, be := range bs {
					lb.MarkReady(be.ID)
				}
			}
			srv := httptest.NewServer(lb)
			t.Cleanup(srv.Close)

			status, h, body := lbDo(t, http.MethodPost, srv.URL+"/api/borrows", strings.NewReader(`{"book_id":1}`))
			if status != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", status)
			}
			if got := h.Get("X-Statelab-Balancer"); got != "stateless" {
				t.Errorf("X-Statelab-Balancer %q, want %q", got, "stateless")
			}
			if got := h.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Errorf("Content-Type %q, want JSON", got)
			}
			var env map[string]any
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if env["success"] != false || env["code"] != "no_backend" || env["message"] == "" {
				t.Errorf("envelope %v, want success false, code no_backend and a message", env)
			}
			if got := slices.Sorted(maps.Keys(env)); !slices.Equal(got, []string{"code", "message", "success"}) {
				t.Errorf("envelope keys %v", got)
			}
			if got := lbMetric(t, reg, "statelab_balancer_requests_total", map[string]string{"backend": "none", "code": "503"}); got != 1 {
				t.Errorf("requests_total{backend=none,code=503} = %v, want 1", got)
			}
		})
	}
}

// TestBalancerSetBackendsUnderLoad changes the set, drains and marks ready
// while requests flow and health checks run; go test -race watches.
func TestBalancerSetBackendsUnderLoad(t *testing.T) {
	reps := []*lbReplica{lbStartReplica(t, "a"), lbStartReplica(t, "b"), lbStartReplica(t, "c")}
	dead := lbDeadBackend(t, "dead")
	reg := prometheus.NewRegistry()
	lb, url := lbStartBalancer(t, reg, reps[0].backend(), reps[1].backend())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { lb.Run(ctx) })

	var mu sync.Mutex
	statuses := map[int]int{}
	var load sync.WaitGroup
	for range 8 {
		load.Go(func() {
			for range 100 {
				resp, err := http.Post(url+"/api/borrows", "application/json", strings.NewReader(`{"book_id":1}`))
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	loadDone := make(chan struct{})
	go func() { load.Wait(); close(loadDone) }()
	sets := [][]balancer.Backend{
		{reps[0].backend(), reps[1].backend()},
		{reps[1].backend(), reps[2].backend(), dead},
		{reps[2].backend()},
		{reps[0].backend(), reps[1].backend(), reps[2].backend()},
	}
	for i := 0; ; i++ {
		select {
		case <-loadDone:
		default:
			set := sets[i%len(sets)]
			lb.SetBackends(set)
			for _, be := range set {
				lb.MarkReady(be.ID)
			}
			lb.Drain(set[0])
			lb.MarkReady(set[0].ID)
			_ = lb.InRotation()
			time.Sleep(200 * time.Microsecond) // let requests through between changes
			continue
		}
		break
	}
	cancel()
	wg.Wait()

	for status, n := range statuses {
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Errorf("%d requests answered %d; want only 200 and 503", n, status)
		}
	}
	if statuses[http.StatusOK] == 0 {
		t.Errorf("no request succeeded: %v", statuses)
	}
	// Every request was counted out again: a drain now has nothing to wait for.
	final := []balancer.Backend{reps[0].backend(), reps[1].backend(), reps[2].backend(), dead}
	lb.SetBackends(final)
	for _, be := range final {
		idleCtx, idleCancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		if err := lb.WaitIdle(idleCtx, be); err != nil {
			t.Errorf("after the load, WaitIdle(%s): %v", be.ID, err)
		}
		idleCancel()
	}
}

func TestBalancerMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := lbStartReplica(t, "a")
	// Both sides of a run share one registry.
	_, statefulURL := lbStartBalancer(t, reg, lbDeadBackend(t, "dead"), a.backend())
	stateless := balancer.New(balancer.Config{Side: "stateless", Registerer: reg})
	stateless.SetBackends([]balancer.Backend{a.backend()})
	stateless.MarkReady("a")
	srv := httptest.NewServer(stateless)
	t.Cleanup(srv.Close)
	for _, url := range []string{statefulURL, srv.URL} {
		for range 3 {
			lbDo(t, http.MethodGet, url+"/api/books", nil)
		}
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	for _, side := range []string{"stateful", "stateless"} {
		if got := lbMetric(t, reg, "statelab_balancer_requests_total", map[string]string{"strategy": side, "backend": "a", "code": "200"}); got != 3 {
			t.Errorf("requests_total{side=%s,backend=a,code=200} = %v, want 3", side, got)
		}
		if got := lbMetric(t, reg, "statelab_balancer_backends_in_rotation", map[string]string{"strategy": side}); got != 1 {
			t.Errorf("backends_in_rotation{side=%s} = %v, want 1", side, got)
		}
	}
}
