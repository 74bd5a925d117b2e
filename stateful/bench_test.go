package stateful_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/stateful"
)

// BenchmarkSessionLoad measures one session lookup, the work every
// authenticated request of the stateful server starts with, in each store:
// a map under a mutex (memory), a GET over loopback TCP (redis, a private
// redis-server), or decrypting and authenticating the cookie (cookie). The
// session holds a five-book cart. cookie-bytes is what the client sends
// with every request for it.
func BenchmarkSessionLoad(b *testing.B) {
	for _, tt := range []struct {
		name string
		open func(b *testing.B) stateful.SessionStore
	}{
		{"memory", func(b *testing.B) stateful.SessionStore {
			return stateful.NewMemoryStore(msKey, msOptions, time.Now)
		}},
		{"redis", func(b *testing.B) stateful.SessionStore {
			rs := labtest.Redis(b)
			s := stateful.NewRedisStore(rs.Addr(), rs.Password(), msKey, msOptions)
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"cookie", func(b *testing.B) stateful.SessionStore {
			return stateful.NewCookieStore(msKey, msOptions, 0, time.Now)
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			store := tt.open(b)
			_, cookie := msSave(b, store, 11, 12, 13, 14, 15)
			r := httptest.NewRequest("GET", "/api/me", nil)
			r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := store.Load(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(cookie.Name)+1+len(cookie.Value)), "cookie-bytes")
		})
	}
}
