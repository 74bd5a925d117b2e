package matrix_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/matrix"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/seed"
	"github.com/statelab/statelab/internal/sqlite"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

var (
	rvSessionKey = []byte("revoke-test-session-key-0123456789ab")
	rvJWTSecret  = []byte("revoke-test-jwt-secret-0123456789abc")
)

// rvLab is n replicas of one strategy's server on one database, behind the
// lab's real balancer with the strategy's affinity, all in this process.
func rvLab(t *testing.T, st strategy.Strategy, n int) string {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "lib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var redisAddr, redisPassword string
	if slices.Contains(st.Services(), stateful.RedisServer) {
		rs := labtest.Redis(t)
		redisAddr, redisPassword = rs.Addr(), rs.Password()
	}
	opts := sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	var backends []balancer.Backend
	for i := range n {
		id := st.Name + "-" + string(rune('1'+i))
		cfg := api.Config{Replica: id, Store: db, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()}
		var h http.Handler
		if st.Server == strategy.Stateful {
			store, err := stateful.OpenStore(st.Sessions, stateful.StoreConfig{Key: rvSessionKey, Cookie: opts, RedisAddr: redisAddr, RedisPassword: redisPassword})
			if err != nil {
				t.Fatal(err)
			}
			if c, ok := store.(io.Closer); ok {
				t.Cleanup(func() { c.Close() })
			}
			h = stateful.NewServer(cfg, store)
		} else {
			h = stateless.NewServer(cfg, stateless.NewTokens(rvJWTSecret, 15*time.Minute, time.Now), time.Now)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		backends = append(backends, balancer.Backend{ID: id, Addr: strings.TrimPrefix(srv.URL, "http://")})
	}
	policy, err := balancer.ParseAffinity(st.Affinity)
	if err != nil {
		t.Fatal(err)
	}
	lb := balancer.New(balancer.Config{Side: st.Name, Policy: policy})
	lb.SetBackends(backends)
	for _, b := range backends {
		lb.MarkReady(b.ID)
	}
	front := httptest.NewServer(lb)
	t.Cleanup(front.Close)
	return front.URL
}

// TestProbeRevocation runs the revocation probe against real servers of
// each kind behind the real balancer, and checks the answer the matrix
// prints beside each row.
func TestProbeRevocation(t *testing.T) {
	tests := []struct {
		strategy string
		replicas int
		want     string
		sawAlso  string
	}{
		// Round robin over two replicas: the logout has to find the
		// replica that holds the session, and the copy is refused on both.
		{"memory", 2, matrix.RevokedAtOnce, "session_lost"},
		{"memory-sticky", 2, matrix.RevokedAtOnce, "session_lost"},
		{"redis", 2, matrix.RevokedAtOnce, "session_lost"},
		{"cookie", 2, matrix.RevokedNever, "only its expiry ends it, 1h0m0s"},
		{"apikey", 2, matrix.RevokedAtOnce, "invalid_token"},
		{"jwt", 2, matrix.RevokedAfterExpiry, "15m0s"},
	}
	for _, tt := range tests {
		// One at a time: each signs in (bcrypt), and under the race
		// detector on a busy machine six at once take long enough to look
		// like a hang.
		t.Run(tt.strategy, func(t *testing.T) {
			st, err := strategy.Parse(tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			url := rvLab(t, st, tt.replicas)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			rev := matrix.ProbeRevocation(ctx, st, url, seed.LoadTestEmail(seed.LoadTestUsers), tt.replicas)
			t.Logf("%s: %+v", tt.strategy, rev)
			if rev.Verdict != tt.want {
				t.Errorf("verdict %q (%s), want %q", rev.Verdict, rev.Saw, tt.want)
			}
			if !strings.Contains(rev.Saw, tt.sawAlso) {
				t.Errorf("saw %q, want it to mention %q", rev.Saw, tt.sawAlso)
			}
			if rev.How == "" {
				t.Error("the probe does not say what it did")
			}
		})
	}

	t.Run("nobody home", func(t *testing.T) {
		st, _ := strategy.Parse("apikey")
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		rev := matrix.ProbeRevocation(t.Context(), st, srv.URL, seed.LoadTestEmail(1), 2)
		if rev.Verdict != matrix.RevokedUnknown || !strings.Contains(rev.Saw, "404") {
			t.Errorf("against a server with no API: %+v, want unknown and the 404 it saw", rev)
		}
	})
}
