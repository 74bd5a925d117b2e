package api_test

import (
	"net/http"
	"testing"

	"github.com/statelab/statelab/internal/api"
)

// identifications returns how many samples a server's
// statelab_identify_seconds holds for method, and whether the series
// exists at all.
func identifications(t *testing.T, srv *server, method string) (uint64, bool) {
	t.Helper()
	families, err := srv.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != api.IdentifyMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "method" && lp.GetValue() == method {
					return m.GetHistogram().GetSampleCount(), true
				}
			}
		}
	}
	return 0, false
}

// TestIdentifyMetric checks that both servers time every request that
// finds (or fails to find) its member under the method they use, and
// nothing else: not a sign-in, not a public route. The matrix reads this
// histogram to say what each strategy pays to identify its callers.
func TestIdentifyMetric(t *testing.T) {
	db := newDB(t)
	sf := newStateful(t, db, []byte("identify-test-session-key-0123456789"), "a")
	sl := newStateless(t, db, []byte("identify-test-jwt-secret-0123456789ab"), "b")
	l := newLab(t, db, map[string]*server{"sf": sf, "sl": sl})
	tests := []struct {
		name    string
		on      string
		method  string // the label that must count
		others  []string
		signIn  func(t *testing.T, l *lab, on, email, password string) credential
		protect string // a protected route to call
	}{
		{"stateful session", "sf", api.IdentifySession, nil, login, "/api/me"},
		{"stateless API key", "sl", api.IdentifyAPIKey, []string{api.IdentifyJWT}, generateKey, "/api/me"},
		{"stateless JWT", "sl", api.IdentifyJWT, []string{api.IdentifyAPIKey}, issueToken, "/api/books/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := l.servers[tt.on]
			if _, ok := identifications(t, srv, tt.method); !ok {
				t.Fatalf("%s{method=%q} is not there before any request; want it at zero", api.IdentifyMetric, tt.method)
			}
			before := map[string]uint64{}
			for _, m := range append([]string{tt.method}, tt.others...) {
				before[m], _ = identifications(t, srv, m)
			}
			cred := tt.signIn(t, l, tt.on, "alice@example.com", "wonderland")
			l.do(t, apiCase{on: tt.on, method: "GET", path: "/api/health"})
			if n, _ := identifications(t, srv, tt.method); n != before[tt.method] {
				t.Errorf("a sign-in and /api/health identified %d caller(s); want none", n-before[tt.method])
			}
			l.setCred("idtest", cred)
			for range 3 {
				if r := l.do(t, apiCase{on: tt.on, who: "idtest", method: "GET", path: tt.protect}); r.status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", tt.protect, r.status, r.body)
				}
			}
			// A request with a credential the server does not know is
			// timed too: finding nobody is work as well.
			l.setCred("idtest-bad", func(r *http.Request) { cred(r); mangle(r) })
			if r := l.do(t, apiCase{on: tt.on, who: "idtest-bad", method: "GET", path: tt.protect}); r.status != http.StatusUnauthorized {
				t.Fatalf("GET %s with a mangled credential: %d, want 401", tt.protect, r.status)
			}
			if n, _ := identifications(t, srv, tt.method); n-before[tt.method] != 4 {
				t.Errorf("%s{method=%q} rose by %d over 4 identified requests, want 4", api.IdentifyMetric, tt.method, n-before[tt.method])
			}
			for _, m := range tt.others {
				if n, _ := identifications(t, srv, m); n != before[m] {
					t.Errorf("%s{method=%q} rose by %d; the requests used %s", api.IdentifyMetric, m, n-before[m], tt.method)
				}
			}
		})
	}
}

// mangle changes the last character of the request's credential, keeping
// its shape (a cookie, an API key, a JWT), so the server has to look it up.
func mangle(r *http.Request) {
	if h := r.Header.Get("Authorization"); h != "" {
		r.Header.Set("Authorization", flipLast(h))
		return
	}
	cs := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cs {
		c.Value = flipLast(c.Value)
		r.AddCookie(c)
	}
}

func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

// TestSharedCallsMetric checks what the stateless server counts of its
// calls to a shared service: one database lookup per request with an API
// key, found or not, and none for a JWT or a sign-in.
func TestSharedCallsMetric(t *testing.T) {
	db := newDB(t)
	sl := newStateless(t, db, []byte("shared-calls-test-jwt-secret-012345"), "b")
	l := newLab(t, db, map[string]*server{"sl": sl})
	for _, tt := range []struct {
		name   string
		signIn func(t *testing.T, l *lab, on, email, password string) credential
		want   float64 // database calls over the four requests
	}{
		{"API key", generateKey, 4},
		{"JWT", issueToken, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := func(service string) float64 {
				return counter(t, sl, api.SharedCallsMetric, map[string]string{"service": service})
			}
			before := calls(api.SharedDatabase)
			cred := tt.signIn(t, l, "sl", "alice@example.com", "wonderland")
			if n := calls(api.SharedDatabase); n != before {
				t.Errorf("a sign-in counted %v database call(s); want none", n-before)
			}
			l.setCred("sc", cred)
			for range 3 {
				if r := l.do(t, apiCase{on: "sl", who: "sc", method: "GET", path: "/api/me"}); r.status != http.StatusOK {
					t.Fatalf("GET /api/me: %d %s", r.status, r.body)
				}
			}
			l.setCred("sc-bad", func(r *http.Request) { cred(r); mangle(r) })
			l.do(t, apiCase{on: "sl", who: "sc-bad", method: "GET", path: "/api/me"})
			if n := calls(api.SharedDatabase); n-before != tt.want {
				t.Errorf("%s{service=database} rose by %v over 4 requests, want %v", api.SharedCallsMetric, n-before, tt.want)
			}
			if n := calls(api.SharedRedis); n != 0 {
				t.Errorf("%s{service=redis} = %v on the stateless server, want 0", api.SharedCallsMetric, n)
			}
		})
	}
}
