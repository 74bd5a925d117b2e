package stateful_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/stateful"
)

// sharedCalls reads statelab_shared_calls_total{service}, and whether the
// series is there.
func sharedCalls(t *testing.T, reg *prometheus.Registry, service string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != api.SharedCallsMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "service" && lp.GetValue() == service {
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestSharedCalls: a request identified by a redis session pays one redis
// round trip at least, counted by the store's client; the readiness PING
// pays none; a memory session never calls a shared service.
func TestSharedCalls(t *testing.T) {
	store, _, _ := stRedis(t)
	db := svDB(t)
	for _, tt := range []struct {
		name    string
		store   stateful.SessionStore
		atLeast float64 // redis calls per GET /api/me
	}{
		{"redis", store, 1},
		{"memory", stateful.NewMemoryStore(msKey, msOptions, time.Now), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := svServer(t, db, tt.store, "a")
			cookie := svLogin(t, h)
			before, ok := sharedCalls(t, h.reg, api.SharedRedis)
			if !ok {
				t.Fatalf("%s{service=%q} is not there; want it at zero or more", api.SharedCallsMetric, api.SharedRedis)
			}
			svMust(t, h, "GET", "/api/ready", "", nil, http.StatusOK, "")
			if n, _ := sharedCalls(t, h.reg, api.SharedRedis); n != before {
				t.Errorf("GET /api/ready counted %v redis call(s); want none", n-before)
			}
			for range 3 {
				svMust(t, h, "GET", "/api/me", "", cookie, http.StatusOK, "")
			}
			n, _ := sharedCalls(t, h.reg, api.SharedRedis)
			if got := (n - before) / 3; got < tt.atLeast || tt.atLeast == 0 && got != 0 {
				t.Errorf("redis calls per GET /api/me = %v, want %v or more (exactly 0 for none)", got, tt.atLeast)
			}
			if n, ok := sharedCalls(t, h.reg, api.SharedDatabase); !ok || n != 0 {
				t.Errorf("database calls of a session server = %v (there: %v), want 0", n, ok)
			}
		})
	}
}
