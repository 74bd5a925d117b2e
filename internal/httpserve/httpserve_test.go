package httpserve_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/httpserve"
)

// TestNewFillsZeroTimeouts: a zero field takes the default, a set one is
// kept, so no server of the lab's is made without a bound.
func TestNewFillsZeroTimeouts(t *testing.T) {
	d := httpserve.Defaults()
	srv := httpserve.New(http.NotFoundHandler(), httpserve.Timeouts{Read: time.Second})
	got := [4]time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout}
	want := [4]time.Duration{d.ReadHeader, time.Second, d.Write, d.Idle}
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, v := range got {
		if v <= 0 {
			t.Errorf("a timeout is %v: unbounded", v)
		}
	}
}
