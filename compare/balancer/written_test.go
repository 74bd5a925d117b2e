package balancer_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/statelab/statelab/compare/balancer"
)

// lbStaleConn is a Transport whose POSTs to one replica (stale) meet a
// kept-alive connection that the replica closed, and play what Go's
// Transport then does, its trace included; everything else goes to the
// replicas. Its modes:
//   - nothing: the write finds the connection closed and nothing leaves;
//     the Transport sends the request again on a new connection (its
//     nothingWrittenError, for any request with a body it can rewind),
//     and that dial is refused: the process is gone.
//   - whole: the request is written whole, then the replica dies before
//     it answers, and a dial is refused after it (as the Transport's own
//     retry of a request it deems idempotent).
//   - part: headers and part of the body are written, then the
//     connection is reset.
type lbStaleConn struct {
	real    http.RoundTripper
	stale   string
	mode    string
	reached atomic.Int64 // POSTs of which some bytes reached stale
}

func (f *lbStaleConn) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != f.stale || req.Method != http.MethodPost {
		return f.real.RoundTrip(req)
	}
	if req.Body != nil {
		req.Body.Close()
	}
	trace := httptrace.ContextClientTrace(req.Context())
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	wroteRequest := func(info httptrace.WroteRequestInfo) {
		if trace.WroteRequest != nil {
			trace.WroteRequest(info)
		}
	}
	if trace.WroteHeaders != nil {
		trace.WroteHeaders() // into the Transport's buffer, in every mode
	}
	switch f.mode {
	case "nothing":
		wroteRequest(httptrace.WroteRequestInfo{Err: os.NewSyscallError("write", syscall.EPIPE)})
		return nil, refused
	case "whole":
		f.reached.Add(1)
		wroteRequest(httptrace.WroteRequestInfo{})
		return nil, refused
	default: // part
		f.reached.Add(1)
		err := os.NewSyscallError("write", syscall.ECONNRESET)
		wroteRequest(httptrace.WroteRequestInfo{Err: err})
		return nil, fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err)
	}
}

// lbStaleFirst tries the backend named stale first, then the others.
type lbStaleFirst struct{}

func (lbStaleFirst) Order(dst []int, _ *http.Request, rotation []balancer.Backend) []int {
	for i, be := range rotation {
		if be.ID == "stale" {
			dst = append(dst, i)
		}
	}
	for i, be := range rotation {
		if be.ID != "stale" {
			dst = append(dst, i)
		}
	}
	return dst
}

func (lbStaleFirst) Answered(*http.Request, *http.Response, balancer.Backend) {}

// TestBalancerSendsUnwrittenPostElsewhere: a POST without a key that
// left nothing on the wire (its kept-alive connection was found closed,
// and the Transport's new connection refused) goes to the next replica
// and is answered there, once; one written whole, or in part, before its
// replica died is answered 502 and goes nowhere else, whatever error
// ended the try.
func TestBalancerSendsUnwrittenPostElsewhere(t *testing.T) {
	for _, tt := range []struct {
		mode         string
		status       int
		otherPosts   int64
		staleReached int64
	}{
		{"nothing", http.StatusOK, 1, 0},
		{"whole", http.StatusBadGateway, 0, 1},
		{"part", http.StatusBadGateway, 0, 1},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			stale, other := lbStartReplica(t, "stale"), lbStartReplica(t, "other")
			tr := &lbStaleConn{real: http.DefaultTransport, stale: stale.backend().Addr, mode: tt.mode}
			lb := balancer.New(balancer.Config{Side: "stateful", Transport: tr, Policy: lbStaleFirst{}})
			lb.SetReadyBackends([]balancer.Backend{stale.backend(), other.backend()})
			srv := httptest.NewServer(lb)
			t.Cleanup(srv.Close)
			status, _, body := lbDo(t, http.MethodPost, srv.URL+"/api/borrows", strings.NewReader(`{"book_id":1}`))
			if status != tt.status || other.hits.Load() != tt.otherPosts || tr.reached.Load() != tt.staleReached || stale.hits.Load() != 0 {
				t.Errorf("got %d (%s), %d POST(s) on the other replica, %d reached the stale one; want %d, %d and %d",
					status, strings.TrimSpace(string(body)), other.hits.Load(), tr.reached.Load(), tt.status, tt.otherPosts, tt.staleReached)
			}
		})
	}
}
