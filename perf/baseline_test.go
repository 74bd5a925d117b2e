package perf_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/perf"
)

// TestServeBaseline checks that the baseline server answers on the
// listener it is given and stops when its context ends.
func TestServeBaseline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- perf.ServeBaseline(ctx, ln, "bare-7") }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/api/books/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(api.ReplicaHeader) != "bare-7" {
		t.Errorf("GET /api/books/1: %s, %s %q; want 200 from bare-7", resp.Status, api.ReplicaHeader, resp.Header.Get(api.ReplicaHeader))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeBaseline after its context ended: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeBaseline did not return 10s after its context ended")
	}
}
