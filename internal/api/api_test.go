package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/store"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

// This file holds the one suite of library API cases that runs against both
// servers, so the two can never drift apart: the stateful server signed in
// with a session cookie, and the stateless server signed in with an API key
// and with a JWT. Each server then has a small table of its own for what
// only it has: sessions and the cart, or keys and tokens.

// The demo accounts the seed creates.
var demo = map[string]struct{ email, password string }{
	"alice":     {"alice@example.com", "wonderland"},
	"bob":       {"bob@example.com", "builder"},
	"librarian": {"librarian@example.com", "bookworm"},
}

// testKey signs session cookies and JWTs. Servers built with it accept each
// other's cookies and tokens, as replicas given the same key do.
var testKey = []byte("statelab-test-key-0123456789abcdef")

// tokenTTL is how long the stateless servers' JWTs are valid.
const tokenTTL = 15 * time.Minute

// sessionOptions are the cookie attributes cmd/statelab gives the stateful
// server.
var sessionOptions = sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode}

// server is one library server under test, behind an httptest server.
type server struct {
	service   string // "stateful" or "stateless", as /api/health reports it
	replica   string
	url       string
	client    *http.Client
	reg       *prometheus.Registry
	readiness *api.Readiness
	// anonymousCode is the code a protected route answers a request with
	// no credentials: the one place the two servers' answers differ.
	anonymousCode string
}

// newDB opens a fresh, seeded SQLite database that lives as long as the
// test.
func newDB(t *testing.T) store.Store {
	t.Helper()
	return openDB(t, store.SQLite)
}

// openDB opens a fresh, seeded database of the kind that lives as long as
// the test: a SQLite file, or a database of its own on the test binary's
// private PostgreSQL.
func openDB(t *testing.T, kind string) store.Store {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "lib.db")
	if kind == store.Postgres {
		dsn = labtest.PostgresDatabase(t)
	}
	db, err := store.Open(t.Context(), dsn, store.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", kind, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close database: %v", err)
		}
	})
	return db
}

// newConfig returns the shared configuration of one replica on db.
func newConfig(t *testing.T, db store.Store, replica string) api.Config {
	return api.Config{
		Replica:   replica,
		Store:     db,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registry:  prometheus.NewRegistry(),
		Readiness: &api.Readiness{},
	}
}

// serve starts h and returns it as a server.
func serve(t *testing.T, h http.Handler, cfg api.Config, service, anonymousCode string) *server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	client := ts.Client()
	// A redirect would hide the status a route really answers.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &server{
		service: service, replica: cfg.Replica, url: ts.URL, client: client,
		reg: cfg.Registry, readiness: cfg.Readiness, anonymousCode: anonymousCode,
	}
}

// newStateful starts a stateful replica on db whose cookies are signed with key.
func newStateful(t *testing.T, db store.Store, key []byte, replica string) *server {
	t.Helper()
	return newStatefulWith(t, db, stateful.NewMemoryStore(key, sessionOptions, time.Now), replica)
}

// newStatefulWith starts a stateful replica on db that keeps its sessions
// in store.
func newStatefulWith(t *testing.T, db store.Store, store stateful.SessionStore, replica string) *server {
	t.Helper()
	cfg := newConfig(t, db, replica)
	return serve(t, stateful.NewServer(cfg, store), cfg, "stateful", library.ELOGINREQUIRED)
}

// newStateless starts a stateless replica on db whose JWTs are signed with
// secret.
func newStateless(t *testing.T, db store.Store, secret []byte, replica string) *server {
	t.Helper()
	cfg := newConfig(t, db, replica)
	tokens := stateless.NewTokens(secret, tokenTTL, time.Now)
	return serve(t, stateless.NewServer(cfg, tokens, time.Now), cfg, "stateless", library.EINVALIDTOKEN)
}

// credential adds who a request is from.
type credential func(*http.Request)

func withCookie(c *http.Cookie) credential { return func(r *http.Request) { r.AddCookie(c) } }

func withHeader(name, value string) credential {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

func bearer(token string) credential { return withHeader("Authorization", "Bearer "+token) }

// lab is what the cases of one table share: the servers, who is signed in,
// and values earlier cases saved.
type lab struct {
	servers   map[string]*server // by name; "" is the one a case goes to unless it names another
	seedBooks int                // books in the catalog before any case ran

	mu    sync.Mutex
	creds map[string]credential
	vars  map[string]string
}

func newLab(t *testing.T, db store.Store, servers map[string]*server) *lab {
	t.Helper()
	_, total, err := db.FindBooks(t.Context(), library.BookFilter{Limit: 1})
	if err != nil {
		t.Fatalf("count seed books: %v", err)
	}
	return &lab{servers: servers, seedBooks: total, creds: map[string]credential{}, vars: map[string]string{}}
}

func (l *lab) setCred(who string, c credential) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.creds[who] = c
}

func (l *lab) set(name, value string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.vars[name] = value
}

// get returns a saved value; a missing one means an earlier case failed.
func (l *lab) get(t *testing.T, name string) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.vars[name]
	if !ok {
		t.Fatalf("no value saved under %q: an earlier case failed", name)
	}
	return v
}

// signIn signs in the demo accounts once, so the cases pay bcrypt's price
// three times per server, not once per request.
func (l *lab) signIn(t *testing.T, how func(t *testing.T, l *lab, on, email, password string) credential) {
	t.Helper()
	for who, acct := range demo {
		l.setCred(who, how(t, l, "", acct.email, acct.password))
	}
}

// noContentType as a case's ctype sends a body without a Content-Type.
const noContentType = "none"

// authRequired as a case's wantCode stands for the server's code for a
// protected route without credentials: login_required or invalid_token.
const authRequired = "<the server's anonymous code>"

// apiCase is one request and what it must answer.
type apiCase struct {
	name   string
	on     string // the lab's server to send to; "" for its main one
	who    string // "" for anonymous, else a credential of the lab ("alice", "bob", "librarian", ...)
	method string
	path   string            // may hold {name} placeholders for values saved by earlier cases
	body   string            // sent as is, so it can be malformed; may hold placeholders
	ctype  string            // Content-Type; "" means application/json when there is a body; noContentType sends none
	header map[string]string // more request headers, such as a browser's Origin; values may hold placeholders
	// serial marks a case that changes state or depends on state earlier
	// cases made. Serial cases run one by one, in table order, after all
	// the others have run in parallel.
	serial bool
	before func(t *testing.T, l *lab)

	wantStatus int
	wantCode   string // the envelope's code; "" for a success
	save       string // remember data.id under this name
	check      func(t *testing.T, r *result)
}

// result is a response, read whole.
type result struct {
	lab     *lab
	srv     *server
	status  int
	header  http.Header
	cookies []*http.Cookie
	body    []byte
	env     envelope
}

// envelope is api.Envelope as a client decodes it, plus the fields of the
// health answers.
type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Meta    json.RawMessage `json:"meta"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail"`

	Status  string `json:"status"`
	Service string `json:"service"`
	Replica string `json:"replica"`
}

var placeholder = regexp.MustCompile(`\{([a-z][a-z0-9_]*)\}`)

// expand replaces each {name} in s with the value saved under name.
func (l *lab) expand(t *testing.T, s string) string {
	t.Helper()
	if !strings.Contains(s, "{") {
		return s
	}
	return placeholder.ReplaceAllStringFunc(s, func(m string) string { return l.get(t, m[1:len(m)-1]) })
}

// do sends the case's request and checks what every answer of every route
// must be, whatever the case wants: never a 500, the replica header, JSON
// under /api/, and a complete error envelope with the status of its code.
func (l *lab) do(t *testing.T, c apiCase) *result {
	t.Helper()
	srv, ok := l.servers[c.on]
	if !ok {
		t.Fatalf("the lab has no server %q", c.on)
	}
	path, body := l.expand(t, c.path), l.expand(t, c.body)
	req, err := http.NewRequestWithContext(t.Context(), c.method, srv.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	switch {
	case c.ctype == noContentType:
	case c.ctype != "":
		req.Header.Set("Content-Type", c.ctype)
	case body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, l.expand(t, v))
	}
	if c.who != "" {
		l.mu.Lock()
		cred, ok := l.creds[c.who]
		l.mu.Unlock()
		if !ok {
			t.Fatalf("no credential for %q: an earlier case failed", c.who)
		}
		cred(req)
	}
	resp, err := srv.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", c.method, path, err)
	}
	r := &result{lab: l, srv: srv, status: resp.StatusCode, header: resp.Header, cookies: resp.Cookies(), body: raw}

	if r.status == http.StatusInternalServerError {
		t.Errorf("%s %s answered 500: %s", c.method, path, raw)
	}
	if got := r.header.Get(api.ReplicaHeader); got != srv.replica {
		t.Errorf("%s header: got %q, want %q", api.ReplicaHeader, got, srv.replica)
	}
	if strings.HasPrefix(path, "/api/") || r.status >= 400 {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type: got %q, want application/json (status %d, body %.200s)", ct, r.status, raw)
		}
		if err := json.Unmarshal(raw, &r.env); err != nil {
			t.Fatalf("body is not JSON: %v: %.200s", err, raw)
		}
		if r.status >= 400 {
			if r.env.Success || r.env.Code == "" || r.env.Message == "" {
				t.Errorf("error envelope: got success=%v code=%q message=%q, want success=false and a code and a message", r.env.Success, r.env.Code, r.env.Message)
			}
			if got := api.StatusOf(r.env.Code); got != r.status {
				t.Errorf("status: got %d, want %d, the status of code %q", r.status, got, r.env.Code)
			}
		} else if !r.env.Success {
			t.Errorf("success: got false, want true for status %d", r.status)
		}
	}
	if r.env.Code == library.EINVALIDTOKEN {
		// RFC 6750: a refused bearer token is answered with a challenge.
		if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, "Bearer") || !strings.Contains(h, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge with error=\"invalid_token\"", h)
		}
	}
	return r
}

// run sends one case and checks its answer.
func (l *lab) run(t *testing.T, c apiCase) {
	t.Helper()
	if c.before != nil {
		c.before(t, l)
	}
	r := l.do(t, c)
	wantCode := c.wantCode
	if wantCode == authRequired {
		wantCode = r.srv.anonymousCode
	}
	if r.status != c.wantStatus || r.env.Code != wantCode {
		t.Fatalf("%s %s: got %d %q, want %d %q; body %.300s", c.method, c.path, r.status, r.env.Code, c.wantStatus, wantCode, r.body)
	}
	if c.save != "" {
		var d struct{ ID int64 }
		if err := json.Unmarshal(r.env.Data, &d); err != nil || d.ID == 0 {
			t.Fatalf("save %q: data has no id: %s", c.save, r.env.Data)
		}
		l.set(c.save, strconv.FormatInt(d.ID, 10))
	}
	if c.check != nil {
		c.check(t, r)
	}
}

// runTable runs the independent cases in parallel, then the serial ones
// in order. A serial case that fails stops the rest: they build on it.
func runTable(t *testing.T, l *lab, cases []apiCase) {
	t.Helper()
	t.Run("independent", func(t *testing.T) {
		for _, c := range cases {
			if !c.serial {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					l.run(t, c)
				})
			}
		}
	})
	for _, c := range cases {
		if c.serial && !t.Run(c.name, func(t *testing.T) { l.run(t, c) }) {
			t.Fatalf("case %q failed; the cases after it depend on it", c.name)
		}
	}
}

// lintMetrics fails the test when a server's metrics break Prometheus'
// naming and help conventions.
func lintMetrics(t *testing.T, l *lab) {
	t.Helper()
	for name, srv := range l.servers {
		problems, err := testutil.GatherAndLint(srv.reg)
		if err != nil {
			t.Errorf("server %q: GatherAndLint: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("server %q: metric %s: %s", name, p.Metric, p.Text)
		}
	}
}

// counter returns the sum of the series of a counter on a server that carry
// all the given labels.
func counter(t *testing.T, srv *server, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := srv.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// noteCounter and counterRose make a case assert that its request moved a
// counter by delta: counted from what the server did, not assumed.
func noteCounter(key, on, name string, labels map[string]string) func(*testing.T, *lab) {
	return func(t *testing.T, l *lab) {
		l.set(key, strconv.FormatFloat(counter(t, l.servers[on], name, labels), 'g', -1, 64))
	}
}

func counterRose(key, on, name string, labels map[string]string, delta float64) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		before, err := strconv.ParseFloat(r.lab.get(t, key), 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := counter(t, r.lab.servers[on], name, labels) - before; got != delta {
			t.Errorf("%s%v rose by %v, want %v", name, labels, got, delta)
		}
	}
}

// Sign-in flows, one per way of running the suite.

func credentialsJSON(email, password string) string {
	return fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
}

// login signs in to a stateful server and returns its session cookie.
func login(t *testing.T, l *lab, on, email, password string) credential {
	t.Helper()
	r := l.do(t, apiCase{on: on, method: "POST", path: "/api/auth/login", body: credentialsJSON(email, password)})
	if r.status != http.StatusOK {
		t.Fatalf("login %s: got %d, want 200: %s", email, r.status, r.body)
	}
	return withCookie(sessionCookie(t, r))
}

// generateKey asks a stateless server for an API key.
func generateKey(t *testing.T, l *lab, on, email, password string) credential {
	t.Helper()
	r := l.do(t, apiCase{on: on, method: "POST", path: "/api/auth/generate-key", body: credentialsJSON(email, password)})
	if r.status != http.StatusCreated {
		t.Fatalf("generate-key %s: got %d, want 201: %s", email, r.status, r.body)
	}
	return bearer(data[struct {
		APIKey string `json:"api_key"`
	}](t, r).APIKey)
}

// issueToken asks a stateless server for a JWT.
func issueToken(t *testing.T, l *lab, on, email, password string) credential {
	t.Helper()
	r := l.do(t, apiCase{on: on, method: "POST", path: "/api/auth/token", body: credentialsJSON(email, password)})
	if r.status != http.StatusOK {
		t.Fatalf("token %s: got %d, want 200: %s", email, r.status, r.body)
	}
	return bearer(data[struct {
		AccessToken string `json:"access_token"`
	}](t, r).AccessToken)
}

// sessionCookie returns the session cookie a response set.
func sessionCookie(t *testing.T, r *result) *http.Cookie {
	t.Helper()
	for _, c := range r.cookies {
		if c.Name == stateful.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", stateful.CookieName, r.header.Values("Set-Cookie"))
	return nil
}

// The ways of running the shared table.
var variants = []struct {
	name string
	// start starts the variant's servers on db.
	start func(t *testing.T, db store.Store) *lab
}{
	{"stateful-session", func(t *testing.T, db store.Store) *lab {
		l := newLab(t, db, map[string]*server{"": newStateful(t, db, testKey, "stateful-1")})
		l.signIn(t, login)
		return l
	}},
	{"stateful-cookie", func(t *testing.T, db store.Store) *lab {
		store := stateful.NewCookieStore(testKey, sessionOptions, 0, time.Now)
		l := newLab(t, db, map[string]*server{"": newStatefulWith(t, db, store, "stateful-1")})
		l.signIn(t, login)
		return l
	}},
	// The redis variant runs where redis-server is installed, and in CI,
	// where a missing one fails it (see labtest.Redis).
	{"stateful-redis", func(t *testing.T, db store.Store) *lab {
		rs := labtest.Redis(t)
		store := stateful.NewRedisStore(rs.Addr(), rs.Password(), testKey, sessionOptions)
		t.Cleanup(func() { store.Close() })
		l := newLab(t, db, map[string]*server{"": newStatefulWith(t, db, store, "stateful-1")})
		l.signIn(t, login)
		return l
	}},
	{"stateless-apikey", func(t *testing.T, db store.Store) *lab {
		l := newLab(t, db, map[string]*server{"": newStateless(t, db, testKey, "stateless-1")})
		l.signIn(t, generateKey)
		return l
	}},
	{"stateless-jwt", func(t *testing.T, db store.Store) *lab {
		l := newLab(t, db, map[string]*server{"": newStateless(t, db, testKey, "stateless-1")})
		l.signIn(t, issueToken)
		return l
	}},
}

// TestAPI runs the shared table against both servers — the stateful one
// with each of its session stores, the stateless one with each
// credential — on both stores, so the servers answer alike whatever
// database is behind them.
func TestAPI(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{store.SQLite, store.Postgres} {
		for _, v := range variants {
			t.Run(kind+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				l := v.start(t, openDB(t, kind))
				runTable(t, l, apiCases)
				lintMetrics(t, l)
			})
		}
	}
}

// Helpers that make the checks of the table short.

// data decodes the envelope's data.
func data[T any](t *testing.T, r *result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.env.Data, &v); err != nil {
		t.Fatalf("data: %v: %s", err, r.env.Data)
	}
	return v
}

func all(checks ...func(*testing.T, *result)) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		t.Helper()
		for _, c := range checks {
			c(t, r)
		}
	}
}

func wantHealth(status string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		if r.env.Status != status || r.env.Service != r.srv.service || r.env.Replica != r.srv.replica {
			t.Errorf("got status=%q service=%q replica=%q, want %q %q %q",
				r.env.Status, r.env.Service, r.env.Replica, status, r.srv.service, r.srv.replica)
		}
	}
}

func wantAllow(want string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		if got := r.header.Get("Allow"); got != want {
			t.Errorf("Allow: got %q, want %q", got, want)
		}
	}
}

func wantMessage(substr string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		if !strings.Contains(r.env.Message, substr) {
			t.Errorf("message: got %q, want it to mention %q", r.env.Message, substr)
		}
	}
}

func wantMe(email, role string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		m := data[struct {
			library.Member
			ServedBy string `json:"served_by"`
		}](t, r)
		if m.Email != email || m.Role != role || m.ID == 0 || m.ServedBy != r.srv.replica {
			t.Errorf("got %+v, want email %q, role %q, an id, served by %q", m, email, role, r.srv.replica)
		}
		// /api/me reads the member's row whatever identified the caller (a
		// session's copy, an API key's join, a JWT's claims), so every
		// credential gets the same answer for the same work.
		if m.CreatedAt.IsZero() {
			t.Errorf("got no created_at: /api/me answered from the credential, not from the member's row: %s", r.env.Data)
		}
		if strings.Contains(string(r.env.Data), "password") {
			t.Errorf("data shows a password field: %s", r.env.Data)
		}
	}
}

type pageMeta struct{ Total, Limit, Offset int }

// wantPage checks a page of books: that it holds n books (-1: all the
// matches, at least one), its meta (total -1: any; seedTotal: the seed's
// count), that ids ascend, and that every book passes match.
func wantPage(n, total, limit, offset int, match func(library.Book) bool) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		books := data[[]library.Book](t, r)
		var m pageMeta
		if err := json.Unmarshal(r.env.Meta, &m); err != nil {
			t.Fatalf("meta: %v: %s", err, r.env.Meta)
		}
		if total == seedTotal {
			total = r.lab.seedBooks
		}
		if books == nil || (n >= 0 && len(books) != n) || (total >= 0 && m.Total != total) || m.Limit != limit || m.Offset != offset {
			t.Errorf("got %d books, meta %+v; want %d books, total %d, limit %d, offset %d", len(books), m, n, total, limit, offset)
		}
		if n < 0 && (len(books) == 0 || len(books) != m.Total) {
			t.Errorf("got %d books of %d, want all matches on one page and at least one", len(books), m.Total)
		}
		for i, b := range books {
			if i > 0 && b.ID <= books[i-1].ID {
				t.Errorf("book %d follows book %d: want ids in ascending order", b.ID, books[i-1].ID)
			}
			if b.Available != (b.AvailableCopies > 0) {
				t.Errorf("book %d: available=%v with %d copies on the shelf", b.ID, b.Available, b.AvailableCopies)
			}
			if match != nil && !match(b) {
				t.Errorf("book %+v does not match the filter", b)
			}
		}
	}
}

// seedTotal as wantPage's total stands for the number of books the seed made.
const seedTotal = -2

func contains(field func(library.Book) string, substr string) func(library.Book) bool {
	return func(b library.Book) bool { return strings.Contains(strings.ToLower(field(b)), substr) }
}

func wantBook(f func(t *testing.T, r *result, b library.Book)) func(*testing.T, *result) {
	return func(t *testing.T, r *result) { f(t, r, data[library.Book](t, r)) }
}

// wantShelf checks how many copies of a book are on the shelf.
func wantShelf(n int) func(*testing.T, *result) {
	return wantBook(func(t *testing.T, r *result, b library.Book) {
		if b.AvailableCopies != n || b.Available != (n > 0) {
			t.Errorf("got %d copies on the shelf (available=%v), want %d", b.AvailableCopies, b.Available, n)
		}
	})
}

// wantBorrow checks a borrow record as the wire carries it.
func wantBorrow(book, email, name string, days int, returned bool) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		var fields map[string]any
		if err := json.Unmarshal(r.env.Data, &fields); err != nil {
			t.Fatalf("data: %v", err)
		}
		for _, k := range []string{"id", "book_id", "book_title", "borrower_email", "borrower_name", "borrow_date", "due_date", "returned"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("borrow record has no %q: %s", k, r.env.Data)
			}
		}
		rec := data[library.BorrowRecord](t, r)
		bookID := r.lab.get(t, book)
		if strconv.FormatInt(rec.BookID, 10) != bookID || rec.BookTitle == "" || rec.BorrowerEmail != email || rec.BorrowerName != name || rec.Returned != returned {
			t.Errorf("got %+v, want book %s, a title, borrower %q %q, returned=%v", rec, bookID, email, name, returned)
		}
		if rec.BorrowDate.IsZero() || time.Since(rec.BorrowDate).Abs() > time.Hour {
			t.Errorf("borrow_date: got %v, want about now", rec.BorrowDate)
		}
		if got := rec.DueDate.Sub(rec.BorrowDate); got != time.Duration(days)*24*time.Hour {
			t.Errorf("due_date - borrow_date: got %v, want %d days", got, days)
		}
		if returned != (rec.ReturnDate != nil) {
			t.Errorf("return_date: got %v, want one exactly when returned=%v", rec.ReturnDate, returned)
		}
	}
}

// wantBorrows checks a list of borrow records: how many, all the member's,
// newest first.
func wantBorrows(n int, email string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		recs := data[[]library.BorrowRecord](t, r)
		if recs == nil || len(recs) != n {
			t.Fatalf("got %d records (%s), want %d", len(recs), r.env.Data, n)
		}
		for i, rec := range recs {
			if rec.BorrowerEmail != email {
				t.Errorf("record %d is %s's, want only %s's", rec.ID, rec.BorrowerEmail, email)
			}
			if i > 0 && rec.ID >= recs[i-1].ID {
				t.Errorf("record %d follows %d: want newest first", rec.ID, recs[i-1].ID)
			}
		}
	}
}

// wantBorrowPage checks the meta of a page of borrow records.
func wantBorrowPage(limit, offset int) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		var m pageMeta
		if err := json.Unmarshal(r.env.Meta, &m); err != nil {
			t.Fatalf("meta: %v: %s", err, r.env.Meta)
		}
		recs := data[[]library.BorrowRecord](t, r)
		if m.Limit != limit || m.Offset != offset || m.Total < len(recs) || len(recs) > limit {
			t.Errorf("got %d records, meta %+v; want limit %d, offset %d, a total of at least the page", len(recs), m, limit, offset)
		}
	}
}

// wantUnavailable checks the ids a 409 unavailable names.
func wantUnavailable(names ...string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		var d struct {
			IDs []int64 `json:"unavailable_book_ids"`
		}
		if err := json.Unmarshal(r.env.Detail, &d); err != nil {
			t.Fatalf("detail: %v: %s", err, r.env.Detail)
		}
		var want []int64
		for _, n := range names {
			id, _ := strconv.ParseInt(r.lab.get(t, n), 10, 64)
			want = append(want, id)
		}
		if !slices.Equal(d.IDs, want) {
			t.Errorf("unavailable_book_ids: got %v, want %v", d.IDs, want)
		}
	}
}

// tooLarge is a new book whose JSON is over the body limit.
var tooLarge = `{"title":"` + strings.Repeat("a", api.MaxBodyBytes) + `","author":"b"}`

// apiCases is the shared table. Every server runs all of it; the only
// difference it allows is authRequired.
var apiCases = []apiCase{
	// Public routes.
	{name: "health", method: "GET", path: "/api/health", wantStatus: 200, check: wantHealth("healthy")},
	{name: "ready", method: "GET", path: "/api/ready", wantStatus: 200, check: wantHealth("ready")},
	{name: "health refuses POST", method: "POST", path: "/api/health", wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("GET")},

	// Who am I.
	{name: "me as alice", who: "alice", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("alice@example.com", library.RoleMember)},
	{name: "me as bob", who: "bob", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("bob@example.com", library.RoleMember)},
	{name: "me as librarian", who: "librarian", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("librarian@example.com", library.RoleLibrarian)},

	// Every protected route refuses a client that says nobody, before it
	// looks at anything else the request says.
	{name: "anonymous me", method: "GET", path: "/api/me", wantStatus: 401, wantCode: authRequired},
	{name: "anonymous list books", method: "GET", path: "/api/books", wantStatus: 401, wantCode: authRequired},
	{name: "anonymous create book", method: "POST", path: "/api/books", body: `{"title":"a","author":"b"}`, wantStatus: 401, wantCode: authRequired},
	{name: "anonymous create book with a bad body", method: "POST", path: "/api/books", body: `{`, ctype: "text/plain", wantStatus: 401, wantCode: authRequired},
	{name: "anonymous get book", method: "GET", path: "/api/books/1", wantStatus: 401, wantCode: authRequired},
	{name: "anonymous update book", method: "PUT", path: "/api/books/1", body: `{"title":"a"}`, wantStatus: 401, wantCode: authRequired},
	{name: "anonymous delete book", method: "DELETE", path: "/api/books/1", wantStatus: 401, wantCode: authRequired},
	{name: "anonymous borrow book", method: "POST", path: "/api/books/1/borrow", wantStatus: 401, wantCode: authRequired},
	{name: "anonymous list borrows", method: "GET", path: "/api/borrows", wantStatus: 401, wantCode: authRequired},
	{name: "anonymous borrow books", method: "POST", path: "/api/borrows", body: `{"book_ids":[1]}`, wantStatus: 401, wantCode: authRequired},
	{name: "anonymous return", method: "POST", path: "/api/borrows/1/return", wantStatus: 401, wantCode: authRequired},

	// Listing and searching the catalog.
	{name: "books default page", who: "alice", method: "GET", path: "/api/books", wantStatus: 200, check: wantPage(api.DefaultPageSize, seedTotal, api.DefaultPageSize, 0, nil)},
	{name: "books search q", who: "alice", method: "GET", path: "/api/books?q=austen", wantStatus: 200,
		check: wantPage(-1, -1, 20, 0, contains(func(b library.Book) string { return b.Title + "|" + b.Author + "|" + b.ISBN }, "austen"))},
	{name: "books search q by isbn", who: "alice", method: "GET", path: "/api/books?q=9780141439518", wantStatus: 200,
		check: wantPage(1, 1, 20, 0, func(b library.Book) bool { return b.ISBN == "9780141439518" })},
	{name: "books search q matches wildcards literally", who: "alice", method: "GET", path: "/api/books?q=%25", wantStatus: 200,
		check: wantPage(0, 0, 20, 0, nil)},
	{name: "books search q no match", who: "alice", method: "GET", path: "/api/books?q=no-such-book-anywhere", wantStatus: 200,
		check: all(wantPage(0, 0, 20, 0, nil), func(t *testing.T, r *result) {
			if string(r.env.Data) != "[]" {
				t.Errorf("data: got %s, want []", r.env.Data)
			}
		})},
	{name: "books by author", who: "alice", method: "GET", path: "/api/books?author=Austen", wantStatus: 200,
		check: wantPage(-1, -1, 20, 0, contains(func(b library.Book) string { return b.Author }, "austen"))},
	{name: "books available true", who: "alice", method: "GET", path: "/api/books?available=true", wantStatus: 200,
		check: wantPage(20, seedTotal, 20, 0, func(b library.Book) bool { return b.Available })},
	{name: "books available false", who: "alice", method: "GET", path: "/api/books?available=false", wantStatus: 200,
		check: wantPage(0, 0, 20, 0, nil)},
	{name: "books limit and offset", who: "alice", method: "GET", path: "/api/books?limit=5&offset=10", wantStatus: 200,
		check: all(wantPage(5, seedTotal, 5, 10, nil), func(t *testing.T, r *result) {
			// The seed numbers its books from 1.
			if b := data[[]library.Book](t, r); len(b) > 0 && b[0].ID != 11 {
				t.Errorf("first book: got id %d, want 11", b[0].ID)
			}
		})},
	{name: "books largest page", who: "alice", method: "GET", path: "/api/books?limit=100", wantStatus: 200, check: wantPage(100, seedTotal, 100, 0, nil)},
	{name: "books offset past the end", who: "alice", method: "GET", path: "/api/books?offset=100000", wantStatus: 200, check: wantPage(0, seedTotal, 20, 100000, nil)},
	{name: "books bad available", who: "alice", method: "GET", path: "/api/books?available=maybe", wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("available")},
	{name: "books limit 0", who: "alice", method: "GET", path: "/api/books?limit=0", wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("limit")},
	{name: "books limit 101", who: "alice", method: "GET", path: "/api/books?limit=101", wantStatus: 400, wantCode: library.EINVALID},
	{name: "books limit abc", who: "alice", method: "GET", path: "/api/books?limit=abc", wantStatus: 400, wantCode: library.EINVALID},
	{name: "books offset -1", who: "alice", method: "GET", path: "/api/books?offset=-1", wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("offset")},
	{name: "books offset abc", who: "alice", method: "GET", path: "/api/books?offset=abc", wantStatus: 400, wantCode: library.EINVALID},

	// One book.
	{name: "get book", who: "alice", method: "GET", path: "/api/books/1", wantStatus: 200,
		check: wantBook(func(t *testing.T, r *result, b library.Book) {
			if b.ID != 1 || b.Title == "" || b.Author == "" || b.Copies < 1 || b.AvailableCopies != b.Copies || !b.Available {
				t.Errorf("got %+v, want book 1 with a title, an author and every copy on the shelf", b)
			}
		})},
	{name: "get missing book", who: "alice", method: "GET", path: "/api/books/999999", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "get book id abc", who: "alice", method: "GET", path: "/api/books/abc", wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("abc")},
	{name: "get book id 0", who: "alice", method: "GET", path: "/api/books/0", wantStatus: 400, wantCode: library.EINVALID},
	{name: "get book id -1", who: "alice", method: "GET", path: "/api/books/-1", wantStatus: 400, wantCode: library.EINVALID},
	{name: "get book id 1.5", who: "alice", method: "GET", path: "/api/books/1.5", wantStatus: 400, wantCode: library.EINVALID},
	{name: "get book id too big", who: "alice", method: "GET", path: "/api/books/99999999999999999999", wantStatus: 400, wantCode: library.EINVALID},

	// Changing the catalog: librarians only, and only with a good body.
	{name: "member may not create a book", who: "alice", method: "POST", path: "/api/books", body: `{"title":"a","author":"b"}`, wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "member may not update a book", who: "alice", method: "PUT", path: "/api/books/1", body: `{"title":"a"}`, wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "member may not delete a book", who: "alice", method: "DELETE", path: "/api/books/1", wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "create book without title", who: "librarian", method: "POST", path: "/api/books", body: `{"author":"b"}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book without author", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"a"}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with blank title", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"  ","author":"b"}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with wrong type", who: "librarian", method: "POST", path: "/api/books", body: `{"title":5,"author":"b"}`, wantStatus: 400, wantCode: library.EINVALID, check: wantMessage(`"title"`)},
	{name: "create book with unknown field", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"a","author":"b","colour":"red"}`, wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("colour")},
	{name: "create book with trailing data", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"a","author":"b"} {}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with empty body", who: "librarian", method: "POST", path: "/api/books", ctype: "application/json", wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with malformed JSON", who: "librarian", method: "POST", path: "/api/books", body: `{"title" "a"}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with truncated JSON", who: "librarian", method: "POST", path: "/api/books", body: `{"title":`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with an array", who: "librarian", method: "POST", path: "/api/books", body: `[]`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with null", who: "librarian", method: "POST", path: "/api/books", body: `null`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book with negative copies", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"a","author":"b","copies":-1}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book from the future", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"a","author":"b","year":3001}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create book as text/plain", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"a","author":"b"}`, ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
	{name: "create book without Content-Type", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"a","author":"b"}`, ctype: noContentType, wantStatus: 415, wantCode: library.EMEDIATYPE},
	{name: "create book as a form", who: "librarian", method: "POST", path: "/api/books", body: `title=a&author=b`, ctype: "application/x-www-form-urlencoded", wantStatus: 415, wantCode: library.EMEDIATYPE},
	{name: "create book over 1 MiB", who: "librarian", method: "POST", path: "/api/books", body: tooLarge, wantStatus: 413, wantCode: library.ETOOLARGE},
	{name: "update missing book", who: "librarian", method: "PUT", path: "/api/books/999999", body: `{"title":"a"}`, wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "update book id abc", who: "librarian", method: "PUT", path: "/api/books/abc", body: `{"title":"a"}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "update book with wrong type", who: "librarian", method: "PUT", path: "/api/books/1", body: `{"copies":"many"}`, wantStatus: 400, wantCode: library.EINVALID, check: wantMessage(`"copies"`)},
	{name: "update book with unknown field", who: "librarian", method: "PUT", path: "/api/books/1", body: `{"pages":12}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "update book to an empty title", who: "librarian", method: "PUT", path: "/api/books/1", body: `{"title":""}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "update book to negative copies", who: "librarian", method: "PUT", path: "/api/books/1", body: `{"copies":-1}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "update book as text/plain", who: "librarian", method: "PUT", path: "/api/books/1", body: `{"title":"a"}`, ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
	{name: "update book over 1 MiB", who: "librarian", method: "PUT", path: "/api/books/1", body: tooLarge, wantStatus: 413, wantCode: library.ETOOLARGE},
	{name: "delete missing book", who: "librarian", method: "DELETE", path: "/api/books/999999", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "delete book id 0", who: "librarian", method: "DELETE", path: "/api/books/0", wantStatus: 400, wantCode: library.EINVALID},

	// Borrowing one book: the requests that must borrow nothing.
	{name: "borrow missing book", who: "alice", method: "POST", path: "/api/books/999999/borrow", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "borrow book id abc", who: "alice", method: "POST", path: "/api/books/abc/borrow", wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow for 91 days", who: "alice", method: "POST", path: "/api/books/1/borrow", body: `{"days":91}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow for -1 days", who: "alice", method: "POST", path: "/api/books/1/borrow", body: `{"days":-1}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow with days a string", who: "alice", method: "POST", path: "/api/books/1/borrow", body: `{"days":"7"}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow with unknown field", who: "alice", method: "POST", path: "/api/books/1/borrow", body: `{"weeks":2}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow with malformed JSON", who: "alice", method: "POST", path: "/api/books/1/borrow", body: `{`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow with a body but no Content-Type", who: "alice", method: "POST", path: "/api/books/1/borrow", body: `{"days":7}`, ctype: noContentType, wantStatus: 415, wantCode: library.EMEDIATYPE},

	// Borrowing many books: the requests that must borrow nothing.
	{name: "borrow an empty list", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[]}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow no list", who: "alice", method: "POST", path: "/api/borrows", body: `{}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow duplicates", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1,1]}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow list of wrong type", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":"1"}`, wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("array")},
	{name: "borrow list of fractions", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1.5]}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow list for 100 days", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1],"days":100}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrow list with a missing book", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[999999]}`, wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "borrow list as text/plain", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1]}`, ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
	{name: "borrow list without a body", who: "alice", method: "POST", path: "/api/borrows", ctype: "application/json", wantStatus: 400, wantCode: library.EINVALID},

	// Returning: the requests that must return nothing.
	{name: "return missing borrow", who: "alice", method: "POST", path: "/api/borrows/999999/return", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "return borrow id abc", who: "alice", method: "POST", path: "/api/borrows/abc/return", wantStatus: 400, wantCode: library.EINVALID},
	{name: "return borrow id 0", who: "alice", method: "POST", path: "/api/borrows/0/return", wantStatus: 400, wantCode: library.EINVALID},

	// Paths and methods the API does not have.
	{name: "unknown path", method: "GET", path: "/api/nope", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "unknown path signed in", who: "alice", method: "GET", path: "/api/nope", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "unknown path under a book", who: "alice", method: "GET", path: "/api/books/1/nope", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "PATCH a book", who: "librarian", method: "PATCH", path: "/api/books/1", body: `{"title":"a"}`, wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("GET, PUT, DELETE")},
	{name: "PUT the catalog", who: "librarian", method: "PUT", path: "/api/books", body: `{"title":"a"}`, wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("GET, POST")},
	{name: "GET a borrow action", who: "alice", method: "GET", path: "/api/books/1/borrow", wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("POST")},
	{name: "DELETE the borrows", who: "alice", method: "DELETE", path: "/api/borrows", wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("GET, POST")},
	{name: "GET a return action", method: "GET", path: "/api/borrows/1/return", wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("POST")},

	// From here on, cases change state and build on each other.
	{name: "metrics", serial: true, method: "GET", path: "/metrics", wantStatus: 200, check: func(t *testing.T, r *result) {
		want := []string{`server="` + r.srv.service + `"`, `replica="` + r.srv.replica + `"`, `route="/api/books"`}
		for line := range strings.Lines(string(r.body)) {
			if strings.HasPrefix(line, "statelab_http_requests_total{") && !slices.ContainsFunc(want, func(s string) bool { return !strings.Contains(line, s) }) {
				return
			}
		}
		t.Errorf("no statelab_http_requests_total line with %v in:\n%s", want, r.body)
	}},

	// The librarian curates.
	{name: "create a one-copy book", serial: true, who: "librarian", method: "POST", path: "/api/books", save: "solo", wantStatus: 201,
		body: `{"title":"Solo Copy","author":"Test Author","isbn":"9990000000001","year":2024,"copies":1}`,
		check: wantBook(func(t *testing.T, r *result, b library.Book) {
			want := library.Book{ID: b.ID, Title: "Solo Copy", Author: "Test Author", ISBN: "9990000000001", Year: 2024, Copies: 1, AvailableCopies: 1, Available: true}
			if b != want || b.ID <= 0 {
				t.Errorf("got %+v, want %+v with an id", b, want)
			}
		})},
	{name: "get the new book", serial: true, who: "bob", method: "GET", path: "/api/books/{solo}", wantStatus: 200, check: wantShelf(1)},
	{name: "create a duplicate isbn", serial: true, who: "librarian", method: "POST", path: "/api/books", body: `{"title":"Other","author":"Test Author","isbn":"9990000000001"}`, wantStatus: 409, wantCode: library.ECONFLICT},
	{name: "create a book with defaults", serial: true, who: "librarian", method: "POST", path: "/api/books", body: `{"title":"Scratch","author":"Test Author"}`, save: "scratch", wantStatus: 201,
		check: wantBook(func(t *testing.T, r *result, b library.Book) {
			if b.Copies != 1 || b.AvailableCopies != 1 || b.ISBN != "" || b.Year != 0 {
				t.Errorf("got %+v, want one copy, no isbn, no year", b)
			}
		})},
	{name: "update a book", serial: true, who: "librarian", method: "PUT", path: "/api/books/{scratch}", body: `{"title":"Scratch, revised","copies":3}`, wantStatus: 200,
		check: wantBook(func(t *testing.T, r *result, b library.Book) {
			if b.Title != "Scratch, revised" || b.Author != "Test Author" || b.Copies != 3 || b.AvailableCopies != 3 {
				t.Errorf("got %+v, want the new title and 3 copies, the author kept", b)
			}
		})},
	{name: "the update is stored", serial: true, who: "alice", method: "GET", path: "/api/books/{scratch}", wantStatus: 200,
		check: wantBook(func(t *testing.T, r *result, b library.Book) {
			if b.Title != "Scratch, revised" || b.Copies != 3 {
				t.Errorf("got %+v, want the updated book", b)
			}
		})},
	{name: "update to a duplicate isbn", serial: true, who: "librarian", method: "PUT", path: "/api/books/{scratch}", body: `{"isbn":"9990000000001"}`, wantStatus: 409, wantCode: library.ECONFLICT},
	{name: "delete a book", serial: true, who: "librarian", method: "DELETE", path: "/api/books/{scratch}", wantStatus: 200},
	{name: "the deleted book is gone", serial: true, who: "alice", method: "GET", path: "/api/books/{scratch}", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "delete the deleted book", serial: true, who: "librarian", method: "DELETE", path: "/api/books/{scratch}", wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "update the deleted book", serial: true, who: "librarian", method: "PUT", path: "/api/books/{scratch}", body: `{"title":"a"}`, wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "create a three-copy book", serial: true, who: "librarian", method: "POST", path: "/api/books", body: `{"title":"Many Copies","author":"Test Author","copies":3}`, save: "multi", wantStatus: 201},

	// Borrowing and returning one book.
	{name: "borrow without a body", serial: true, who: "alice", method: "POST", path: "/api/books/{solo}/borrow", save: "borrow1", wantStatus: 201,
		check: wantBorrow("solo", "alice@example.com", "Alice Liddell", library.DefaultLoanDays, false)},
	{name: "the last copy is out", serial: true, who: "bob", method: "GET", path: "/api/books/{solo}", wantStatus: 200, check: wantShelf(0)},
	{name: "unavailable books are listed", serial: true, who: "bob", method: "GET", path: "/api/books?available=false", wantStatus: 200,
		check: all(wantPage(-1, -1, 20, 0, func(b library.Book) bool { return !b.Available }), func(t *testing.T, r *result) {
			if !slices.ContainsFunc(data[[]library.Book](t, r), func(b library.Book) bool { return b.Title == "Solo Copy" }) {
				t.Errorf("the lent-out book is missing from %s", r.env.Data)
			}
		})},
	{name: "borrow an unavailable book", serial: true, who: "bob", method: "POST", path: "/api/books/{solo}/borrow", wantStatus: 409, wantCode: library.EUNAVAILABLE, check: wantUnavailable("solo")},
	{name: "delete a lent-out book", serial: true, who: "librarian", method: "DELETE", path: "/api/books/{solo}", wantStatus: 409, wantCode: library.ECONFLICT},
	{name: "drop copies below those lent out", serial: true, who: "librarian", method: "PUT", path: "/api/books/{solo}", body: `{"copies":0}`, wantStatus: 409, wantCode: library.ECONFLICT},
	{name: "bob sees only his borrows", serial: true, who: "bob", method: "GET", path: "/api/borrows", wantStatus: 200, check: wantBorrows(0, "bob@example.com")},
	{name: "alice sees only hers", serial: true, who: "alice", method: "GET", path: "/api/borrows", wantStatus: 200, check: wantBorrows(1, "alice@example.com")},
	{name: "bob returns alice's borrow", serial: true, who: "bob", method: "POST", path: "/api/borrows/{borrow1}/return", wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "return", serial: true, who: "alice", method: "POST", path: "/api/borrows/{borrow1}/return", wantStatus: 200,
		check: wantBorrow("solo", "alice@example.com", "Alice Liddell", library.DefaultLoanDays, true)},
	{name: "return again", serial: true, who: "alice", method: "POST", path: "/api/borrows/{borrow1}/return", wantStatus: 409, wantCode: library.ECONFLICT},
	{name: "the copy is back", serial: true, who: "bob", method: "GET", path: "/api/books/{solo}", wantStatus: 200, check: wantShelf(1)},
	{name: "borrow with a body", serial: true, who: "alice", method: "POST", path: "/api/books/{multi}/borrow", body: `{"days":7,"borrower_name":"Alice L."}`, wantStatus: 201,
		check: wantBorrow("multi", "alice@example.com", "Alice L.", 7, false)},

	// Borrowing many books: all or nothing.
	{name: "borrow a list", serial: true, who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[{multi},{solo}]}`, wantStatus: 201,
		check: func(t *testing.T, r *result) {
			recs := data[[]library.BorrowRecord](t, r)
			var ids []string
			for _, rec := range recs {
				ids = append(ids, strconv.FormatInt(rec.BookID, 10))
				if rec.BorrowerEmail != "alice@example.com" || rec.Returned || rec.ID == 0 {
					t.Errorf("got %+v, want a new record of alice's", rec)
				}
			}
			if want := []string{r.lab.get(t, "multi"), r.lab.get(t, "solo")}; !slices.Equal(ids, want) {
				t.Errorf("book ids: got %v, want %v", ids, want)
			}
		}},
	{name: "borrow a list with an unavailable book", serial: true, who: "bob", method: "POST", path: "/api/borrows", body: `{"book_ids":[{multi},{solo}]}`, wantStatus: 409, wantCode: library.EUNAVAILABLE,
		check: all(wantUnavailable("solo"), wantMessage("Solo Copy"))},
	{name: "the refused list took no copy", serial: true, who: "bob", method: "GET", path: "/api/books/{multi}", wantStatus: 200, check: wantShelf(1)},
	{name: "borrow a list with a missing book", serial: true, who: "bob", method: "POST", path: "/api/borrows", body: `{"book_ids":[{multi},999999]}`, wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "the list with a missing book took no copy", serial: true, who: "bob", method: "GET", path: "/api/books/{multi}", wantStatus: 200, check: wantShelf(1)},
	{name: "bob still has no borrows", serial: true, who: "bob", method: "GET", path: "/api/borrows", wantStatus: 200, check: wantBorrows(0, "bob@example.com")},
	{name: "alice has all hers, newest first", serial: true, who: "alice", method: "GET", path: "/api/borrows", wantStatus: 200, check: wantBorrows(4, "alice@example.com")},

	// Hardening (issue 12). A page on another origin, even another port of
	// the same host (same-site, so the Lax cookie goes along), may not
	// change state; reading stays open, as does a program with no Origin.
	{name: "cross-site borrow", who: "alice", method: "POST", path: "/api/books/1/borrow", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantCode: library.EFORBIDDEN, check: wantMessage("Cross-origin request refused")},
	{name: "same-site borrow from another port", who: "alice", method: "POST", path: "/api/books/1/borrow", header: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}, wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "borrow with a foreign Origin only", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1]}`, header: map[string]string{"Origin": "http://attacker.example"}, wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "cross-site return", who: "alice", method: "POST", path: "/api/borrows/1/return", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "cross-site create book", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"T","author":"A"}`, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "cross-site delete book", who: "librarian", method: "DELETE", path: "/api/books/999999", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantCode: library.EFORBIDDEN},
	{name: "cross-site read is allowed", who: "alice", method: "GET", path: "/api/books?limit=1", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 200},
	{name: "same-origin browser request is allowed", who: "alice", method: "POST", path: "/api/books/999999/borrow", header: map[string]string{"Sec-Fetch-Site": "same-origin"}, wantStatus: 404, wantCode: library.ENOTFOUND},
	{name: "borrow with a text/plain body", who: "alice", method: "POST", path: "/api/books/999999/borrow", body: `{}`, ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
	{name: "return with a form body", who: "alice", method: "POST", path: "/api/borrows/999999/return", body: `a=b`, ctype: "application/x-www-form-urlencoded", wantStatus: 415, wantCode: library.EMEDIATYPE},
	{name: "search of 50,000 bytes", who: "alice", method: "GET", path: "/api/books?q=" + strings.Repeat("a", 50_000), wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("limit is 200")},
	{name: "search of 25,000 %", who: "alice", method: "GET", path: "/api/books?q=" + strings.Repeat("%25", 25_000), wantStatus: 400, wantCode: library.EINVALID},
	{name: "author of 50,000 bytes", who: "alice", method: "GET", path: "/api/books?author=" + strings.Repeat("b", 50_000), wantStatus: 400, wantCode: library.EINVALID},
	{name: "search of 200 %", who: "alice", method: "GET", path: "/api/books?q=" + strings.Repeat("%25", library.MaxQueryBytes), wantStatus: 200, check: wantPage(0, 0, api.DefaultPageSize, 0, nil)},
	{name: "search of 200 _", who: "alice", method: "GET", path: "/api/books?author=" + strings.Repeat("_", library.MaxQueryBytes), wantStatus: 200, check: wantPage(0, 0, api.DefaultPageSize, 0, nil)},
	{name: "borrow with a long borrower name", who: "alice", method: "POST", path: "/api/books/1/borrow", body: `{"borrower_name":"` + strings.Repeat("n", library.MaxBorrowerNameBytes+1) + `"}`, wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("borrower_name")},
	{name: "borrow a list with a long borrower name", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1],"borrower_name":"` + strings.Repeat("n", library.MaxBorrowerNameBytes+1) + `"}`, wantStatus: 400, wantCode: library.EINVALID},
	{name: "create a book with a long title", who: "librarian", method: "POST", path: "/api/books", body: `{"title":"` + strings.Repeat("t", library.MaxTitleBytes+1) + `","author":"A"}`, wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("title")},
	{name: "update a book with a long author", who: "librarian", method: "PUT", path: "/api/books/1", body: `{"author":"` + strings.Repeat("a", library.MaxAuthorBytes+1) + `"}`, wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("author")},
	{name: "borrows page", who: "bob", method: "GET", path: "/api/borrows?limit=1&offset=0", wantStatus: 200, check: wantBorrowPage(1, 0)},
	{name: "borrows default page", who: "bob", method: "GET", path: "/api/borrows", wantStatus: 200, check: wantBorrowPage(library.DefaultBorrowPageSize, 0)},
	{name: "borrows limit 0", who: "bob", method: "GET", path: "/api/borrows?limit=0", wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrows limit over the max", who: "bob", method: "GET", path: "/api/borrows?limit=501", wantStatus: 400, wantCode: library.EINVALID},
	{name: "borrows offset -1", who: "bob", method: "GET", path: "/api/borrows?offset=-1", wantStatus: 400, wantCode: library.EINVALID},

	// Draining: the balancer must stop sending, the process stays alive.
	{name: "not ready when draining", serial: true, before: func(t *testing.T, l *lab) { l.servers[""].readiness.Drain() },
		method: "GET", path: "/api/ready", wantStatus: 503, wantCode: library.ENOTREADY},
	{name: "healthy when draining", serial: true, method: "GET", path: "/api/health", wantStatus: 200, check: wantHealth("healthy")},
}

// TestStatefulSessions covers what only the stateful server has: login,
// logout, the session cookie, what another replica makes of it, and the
// cart. Replica b shares replica a's key and database, as the lab's
// replicas do; replica c signs with another key.
func TestStatefulSessions(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	otherKey := []byte("another-key-of-at-least-32-bytes-0000")
	l := newLab(t, db, map[string]*server{
		"":  newStateful(t, db, testKey, "a"),
		"b": newStateful(t, db, testKey, "b"),
		"c": newStateful(t, db, otherKey, "c"),
	})
	lost := map[string]string{"result": "lost"}
	runTable(t, l, []apiCase{
		{name: "login wrong password", method: "POST", path: "/api/auth/login", body: credentialsJSON("alice@example.com", "looking-glass"), wantStatus: 401, wantCode: library.EUNAUTHORIZED},
		{name: "login unknown email", method: "POST", path: "/api/auth/login", body: credentialsJSON("nobody@example.com", "wonderland"), wantStatus: 401, wantCode: library.EUNAUTHORIZED},
		{name: "login without password", method: "POST", path: "/api/auth/login", body: `{"email":"alice@example.com"}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "login with bad email", method: "POST", path: "/api/auth/login", body: credentialsJSON("alice", "wonderland"), wantStatus: 400, wantCode: library.EINVALID},
		{name: "login with malformed JSON", method: "POST", path: "/api/auth/login", body: `{"email":`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "login as text/plain", method: "POST", path: "/api/auth/login", body: credentialsJSON("alice@example.com", "wonderland"), ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
		{name: "logout without a cookie", method: "POST", path: "/api/auth/logout", wantStatus: 401, wantCode: library.ELOGINREQUIRED},
		{name: "cart without a cookie", method: "GET", path: "/api/cart", wantStatus: 401, wantCode: library.ELOGINREQUIRED},
		{name: "add to cart without a cookie", method: "POST", path: "/api/cart/items", body: `{"book_id":1}`, wantStatus: 401, wantCode: library.ELOGINREQUIRED},
		{name: "remove from cart without a cookie", method: "DELETE", path: "/api/cart/items/1", wantStatus: 401, wantCode: library.ELOGINREQUIRED},
		{name: "checkout without a cookie", method: "POST", path: "/api/cart/checkout", wantStatus: 401, wantCode: library.ELOGINREQUIRED},
		{name: "GET the login", method: "GET", path: "/api/auth/login", wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("POST")},

		{name: "login", serial: true, method: "POST", path: "/api/auth/login", body: credentialsJSON("Alice@Example.com", "wonderland"), wantStatus: 200,
			check: all(wantCookie("alice"), func(t *testing.T, r *result) {
				c := sessionCookie(t, r)
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge <= 0 || c.Value == "" {
					t.Errorf("cookie: got HttpOnly=%v SameSite=%v Path=%q MaxAge=%d, want HttpOnly, Lax, /, a positive max age and a value",
						c.HttpOnly, c.SameSite, c.Path, c.MaxAge)
				}
				if m := data[library.Member](t, r); m.Email != "alice@example.com" {
					t.Errorf("member: got %q, want alice@example.com", m.Email)
				}
			})},
		{name: "the cookie works", serial: true, who: "alice", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("alice@example.com", library.RoleMember)},
		{name: "the cookie on another replica", serial: true, on: "b", who: "alice", method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.ESESSIONLOST,
			before: noteCounter("lost_before", "b", "statelab_session_lookups_total", lost),
			check:  counterRose("lost_before", "b", "statelab_session_lookups_total", lost, 1)},
		{name: "the cookie still works on its replica", serial: true, who: "alice", method: "GET", path: "/api/books/1", wantStatus: 200},
		{name: "a cookie signed with another key", serial: true, before: loginOn("c", "alice", "alice-c"),
			who: "alice-c", method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.EINVALIDSESSION},
		{name: "the other key's cookie works where it was made", serial: true, on: "c", who: "alice-c", method: "GET", path: "/api/me", wantStatus: 200},
		{name: "a tampered cookie", serial: true, before: tamper("alice", "alice-tampered"),
			who: "alice-tampered", method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.EINVALIDSESSION},
		{name: "a cookie of garbage", serial: true, before: func(t *testing.T, l *lab) {
			l.setCred("garbage", withCookie(&http.Cookie{Name: stateful.CookieName, Value: "garbage"}))
		}, who: "garbage", method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.EINVALIDSESSION},
		{name: "login again", serial: true, who: "alice", method: "POST", path: "/api/auth/login", body: credentialsJSON("alice@example.com", "wonderland"), wantStatus: 200,
			check: all(wantCookie("alice2"), func(t *testing.T, r *result) {
				if a, b := sessionID(t, r.lab, "alice"), sessionID(t, r.lab, "alice2"); a == b {
					t.Errorf("session id: got %q again, want a new one at every login", a)
				}
			})},
		{name: "the old cookie after the new login", serial: true, who: "alice", method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.ESESSIONLOST,
			before: noteCounter("lost_before", "", "statelab_session_lookups_total", lost),
			check:  counterRose("lost_before", "", "statelab_session_lookups_total", lost, 1)},
		{name: "the new cookie", serial: true, who: "alice2", method: "GET", path: "/api/me", wantStatus: 200},
		{name: "logout", serial: true, who: "alice2", method: "POST", path: "/api/auth/logout", wantStatus: 200,
			check: func(t *testing.T, r *result) {
				if c := sessionCookie(t, r); c.MaxAge >= 0 || c.Value != "" {
					t.Errorf("cookie: got MaxAge=%d value=%q, want it deleted", c.MaxAge, c.Value)
				}
			}},
		{name: "the cookie after logout", serial: true, who: "alice2", method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.ESESSIONLOST},
		{name: "logout after logout", serial: true, who: "alice2", method: "POST", path: "/api/auth/logout", wantStatus: 401, wantCode: library.ESESSIONLOST},

		// The cart lives in the session.
		{name: "bob logs in", serial: true, method: "POST", path: "/api/auth/login", body: credentialsJSON("bob@example.com", "builder"), wantStatus: 200, check: wantCookie("bob")},
		{name: "empty cart", serial: true, who: "bob", method: "GET", path: "/api/cart", wantStatus: 200, check: wantCart()},
		{name: "checkout an empty cart", serial: true, who: "bob", method: "POST", path: "/api/cart/checkout", wantStatus: 400, wantCode: library.EINVALID},
		{name: "add to cart", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":1}`, wantStatus: 201, check: wantCart(1)},
		{name: "add the same book", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":1}`, wantStatus: 409, wantCode: library.ECONFLICT},
		{name: "add a missing book", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":999999}`, wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "add with a wrong type", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":"1"}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "add without a book", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "add with malformed JSON", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":1`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "add as text/plain", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":2}`, ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
		{name: "add another book", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":2}`, wantStatus: 201, check: wantCart(1, 2)},
		{name: "list the cart", serial: true, who: "bob", method: "GET", path: "/api/cart", wantStatus: 200, check: wantCart(1, 2)},
		{name: "the cart is not on another replica", serial: true, on: "b", who: "bob", method: "GET", path: "/api/cart", wantStatus: 401, wantCode: library.ESESSIONLOST},
		{name: "remove a book not in the cart", serial: true, who: "bob", method: "DELETE", path: "/api/cart/items/3", wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "remove book id abc", serial: true, who: "bob", method: "DELETE", path: "/api/cart/items/abc", wantStatus: 400, wantCode: library.EINVALID},
		{name: "remove from the cart", serial: true, who: "bob", method: "DELETE", path: "/api/cart/items/2", wantStatus: 200, check: wantCart(1)},
		{name: "checkout", serial: true, who: "bob", method: "POST", path: "/api/cart/checkout", wantStatus: 201,
			check: func(t *testing.T, r *result) {
				recs := data[[]library.BorrowRecord](t, r)
				if len(recs) != 1 || recs[0].BookID != 1 || recs[0].BorrowerEmail != "bob@example.com" || recs[0].Returned {
					t.Errorf("got %+v, want one new borrow of book 1 by bob", recs)
				}
			}},
		{name: "the cart is empty after checkout", serial: true, who: "bob", method: "GET", path: "/api/cart", wantStatus: 200, check: wantCart()},
		{name: "the borrows exist", serial: true, who: "bob", method: "GET", path: "/api/borrows", wantStatus: 200, check: wantBorrows(1, "bob@example.com")},

		// A checkout that cannot be served keeps the cart.
		{name: "create a one-copy book", serial: true, before: loginOn("", "librarian", "librarian"),
			who: "librarian", method: "POST", path: "/api/books", body: `{"title":"Solo Copy","author":"Test Author","copies":1}`, save: "solo", wantStatus: 201},
		{name: "put the one copy in the cart", serial: true, who: "bob", method: "POST", path: "/api/cart/items", body: `{"book_id":{solo}}`, wantStatus: 201},
		{name: "someone else borrows the copy", serial: true, who: "librarian", method: "POST", path: "/api/books/{solo}/borrow", wantStatus: 201},
		{name: "checkout an unavailable book", serial: true, who: "bob", method: "POST", path: "/api/cart/checkout", wantStatus: 409, wantCode: library.EUNAVAILABLE, check: wantUnavailable("solo")},
		{name: "the cart is kept", serial: true, who: "bob", method: "GET", path: "/api/cart", wantStatus: 200,
			check: func(t *testing.T, r *result) {
				c := data[cartBody](t, r)
				if c.Count != 1 || len(c.Items) != 1 || strconv.FormatInt(c.Items[0].BookID, 10) != r.lab.get(t, "solo") || c.Items[0].Available {
					t.Errorf("got %+v, want the unavailable book still in the cart", c)
				}
			}},
		{name: "bob borrowed nothing more", serial: true, who: "bob", method: "GET", path: "/api/borrows", wantStatus: 200, check: wantBorrows(1, "bob@example.com")},
	})
	lintMetrics(t, l)
}

// wantCookie makes a login case keep its session cookie as the credential who.
func wantCookie(who string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		c := sessionCookie(t, r)
		r.lab.setCred(who, withCookie(c))
		r.lab.set("cookie_"+who, c.Value)
	}
}

// loginOn signs a demo account in on one of the lab's servers as the
// credential who.
func loginOn(on, account, who string) func(*testing.T, *lab) {
	return func(t *testing.T, l *lab) {
		c := login(t, l, on, demo[account].email, demo[account].password)
		l.setCred(who, c)
	}
}

// tamper makes the credential who from the cookie of from with one byte of
// its value changed.
func tamper(from, who string) func(*testing.T, *lab) {
	return func(t *testing.T, l *lab) {
		v := []byte(l.get(t, "cookie_"+from))
		i := len(v) / 2
		if v[i] == 'A' {
			v[i] = 'B'
		} else {
			v[i] = 'A'
		}
		l.setCred(who, withCookie(&http.Cookie{Name: stateful.CookieName, Value: string(v)}))
	}
}

// sessionID returns the session id a saved cookie carries, read with the
// servers' key.
func sessionID(t *testing.T, l *lab, who string) string {
	t.Helper()
	var id []byte
	codec := securecookie.New(testKey, nil)
	codec.SetSerializer(securecookie.NopEncoder{})
	if err := codec.Decode(stateful.CookieName, l.get(t, "cookie_"+who), &id); err != nil {
		t.Fatalf("decode %s's cookie: %v", who, err)
	}
	return string(id)
}

// cartBody is the data of the cart routes.
type cartBody struct {
	Items []struct {
		BookID    int64  `json:"book_id"`
		Title     string `json:"title"`
		Author    string `json:"author"`
		Available bool   `json:"available"`
	} `json:"items"`
	Count int `json:"count"`
}

// wantCart checks the cart holds exactly the books, in order.
func wantCart(bookIDs ...int64) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		c := data[cartBody](t, r)
		var got []int64
		for _, it := range c.Items {
			got = append(got, it.BookID)
			if it.Title == "" || it.Author == "" {
				t.Errorf("cart line %+v: want a title and an author", it)
			}
		}
		if c.Items == nil || !slices.Equal(got, bookIDs) || c.Count != len(bookIDs) {
			t.Errorf("cart: got %v (count %d), want %v", got, c.Count, bookIDs)
		}
	}
}

// TestStatelessTokens covers what only the stateless server has: API keys
// (issued, registering by email, revoked) and JWTs (issued, and refused
// when forged, expired or meant for someone else). Replica b shares the
// secret and database, so whatever works on one works on the other.
func TestStatelessTokens(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	l := newLab(t, db, map[string]*server{
		"":  newStateless(t, db, testKey, "a"),
		"b": newStateless(t, db, testKey, "b"),
	})
	alice, err := db.FindMemberByEmail(t.Context(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	mint := func(method jwt.SigningMethod, key any, edit func(*stateless.Claims)) string {
		now := time.Now()
		c := stateless.Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: stateless.Issuer, Subject: strconv.FormatInt(alice.ID, 10), Audience: jwt.ClaimStrings{stateless.Audience},
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(tokenTTL)), // long enough for a loaded machine to reach the last case
			},
			Email: alice.Email, Name: alice.Name, Role: alice.Role,
		}
		if edit != nil {
			edit(&c)
		}
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	issue := func(tokens *stateless.Tokens) string {
		s, err := tokens.Issue(alice)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for who, cred := range map[string]credential{
		"jwt-minted":          bearer(mint(jwt.SigningMethodHS256, testKey, nil)),
		"jwt-forged":          bearer(issue(stateless.NewTokens([]byte("some-other-secret-of-32-bytes-000"), tokenTTL, time.Now))),
		"jwt-expired":         bearer(issue(stateless.NewTokens(testKey, time.Minute, func() time.Time { return time.Now().Add(-time.Hour) }))),
		"jwt-alg-none":        bearer(mint(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil)),
		"jwt-hs512":           bearer(mint(jwt.SigningMethodHS512, testKey, nil)),
		"jwt-wrong-issuer":    bearer(mint(jwt.SigningMethodHS256, testKey, func(c *stateless.Claims) { c.Issuer = "someone-else" })),
		"jwt-wrong-audience":  bearer(mint(jwt.SigningMethodHS256, testKey, func(c *stateless.Claims) { c.Audience = jwt.ClaimStrings{"another-api"} })),
		"jwt-no-expiry":       bearer(mint(jwt.SigningMethodHS256, testKey, func(c *stateless.Claims) { c.ExpiresAt = nil })),
		"jwt-issued-later":    bearer(mint(jwt.SigningMethodHS256, testKey, func(c *stateless.Claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Hour)) })),
		"jwt-unknown-role":    bearer(mint(jwt.SigningMethodHS256, testKey, func(c *stateless.Claims) { c.Role = "admin" })),
		"jwt-no-subject":      bearer(mint(jwt.SigningMethodHS256, testKey, func(c *stateless.Claims) { c.Subject = "" })),
		"bearer-garbage":      bearer("abc"),
		"bearer-empty":        withHeader("Authorization", "Bearer "),
		"basic":               withHeader("Authorization", "Basic xyz"),
		"no-scheme":           withHeader("Authorization", "abc.def.ghi"),
		"key-malformed":       bearer("slk_zz_abc"),
		"key-unknown":         bearer("slk_0123456789abcdef_" + strings.Repeat("A", 43)),
		"cookie-not-a-bearer": withCookie(&http.Cookie{Name: "session_id", Value: "abc"}),
	} {
		l.setCred(who, cred)
	}
	jwtOK := map[string]string{"method": "jwt", "result": "ok"}
	refused := func(name, who string) apiCase {
		return apiCase{name: name, who: who, method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.EINVALIDTOKEN}
	}
	runTable(t, l, []apiCase{
		{name: "a JWT made with the secret", who: "jwt-minted", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("alice@example.com", library.RoleMember)},
		refused("a forged JWT", "jwt-forged"),
		refused("an expired JWT", "jwt-expired"),
		refused("a JWT with alg none", "jwt-alg-none"),
		refused("a JWT signed with HS512", "jwt-hs512"),
		refused("a JWT from another issuer", "jwt-wrong-issuer"),
		refused("a JWT for another audience", "jwt-wrong-audience"),
		refused("a JWT without expiry", "jwt-no-expiry"),
		refused("a JWT issued in the future", "jwt-issued-later"),
		refused("a JWT with an unknown role", "jwt-unknown-role"),
		refused("a JWT without subject", "jwt-no-subject"),
		refused("Bearer abc", "bearer-garbage"),
		refused("Bearer and nothing", "bearer-empty"),
		refused("Basic xyz", "basic"),
		refused("a token without scheme", "no-scheme"),
		refused("a malformed API key", "key-malformed"),
		refused("an unknown API key", "key-unknown"),
		refused("a session cookie", "cookie-not-a-bearer"),
		{name: "no cart", who: "jwt-minted", method: "GET", path: "/api/cart", wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "no cart items", who: "jwt-minted", method: "POST", path: "/api/cart/items", body: `{"book_id":1}`, wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "no cart item to remove", who: "jwt-minted", method: "DELETE", path: "/api/cart/items/1", wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "no checkout", who: "jwt-minted", method: "POST", path: "/api/cart/checkout", wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "no login", method: "POST", path: "/api/auth/login", body: credentialsJSON("alice@example.com", "wonderland"), wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "no logout", method: "POST", path: "/api/auth/logout", wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "key for a bad email", method: "POST", path: "/api/auth/generate-key", body: `{"email":"not-an-email"}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "key without email", method: "POST", path: "/api/auth/generate-key", body: `{}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "key with malformed JSON", method: "POST", path: "/api/auth/generate-key", body: `{"email"`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "key as text/plain", method: "POST", path: "/api/auth/generate-key", body: `{"email":"x@example.com"}`, ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
		{name: "key for alice without password", method: "POST", path: "/api/auth/generate-key", body: `{"email":"alice@example.com"}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "key for an unknown email without password", method: "POST", path: "/api/auth/generate-key", body: `{"email":"nobody@example.com"}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "key for an unknown email", method: "POST", path: "/api/auth/generate-key", body: credentialsJSON("nobody@example.com", "wonderland"), wantStatus: 401, wantCode: library.EUNAUTHORIZED, check: wantMessage("Wrong email or password.")},
		{name: "key for alice with wrong password says the same", method: "POST", path: "/api/auth/generate-key", body: credentialsJSON("alice@example.com", "looking-glass!"), wantStatus: 401, wantCode: library.EUNAUTHORIZED, check: wantMessage("Wrong email or password.")},
		{name: "key for alice with wrong password", method: "POST", path: "/api/auth/generate-key", body: credentialsJSON("alice@example.com", "looking-glass"), wantStatus: 401, wantCode: library.EUNAUTHORIZED},
		{name: "token with wrong password", method: "POST", path: "/api/auth/token", body: credentialsJSON("alice@example.com", "looking-glass"), wantStatus: 401, wantCode: library.EUNAUTHORIZED},
		{name: "token for an unknown email", method: "POST", path: "/api/auth/token", body: credentialsJSON("nobody@example.com", "wonderland"), wantStatus: 401, wantCode: library.EUNAUTHORIZED},
		{name: "token without password", method: "POST", path: "/api/auth/token", body: `{"email":"alice@example.com"}`, wantStatus: 400, wantCode: library.EINVALID},
		{name: "token as text/plain", method: "POST", path: "/api/auth/token", body: credentialsJSON("alice@example.com", "wonderland"), ctype: "text/plain", wantStatus: 415, wantCode: library.EMEDIATYPE},
		{name: "revoke without a token", method: "DELETE", path: "/api/auth/keys/0123456789abcdef", wantStatus: 401, wantCode: library.EINVALIDTOKEN},
		{name: "GET the token route", method: "GET", path: "/api/auth/token", wantStatus: 405, wantCode: library.EMETHODNOTALLOWED, check: wantAllow("POST")},

		// API keys.
		{name: "key for a new email registers nothing", serial: true, method: "POST", path: "/api/auth/generate-key", body: credentialsJSON("newbie@example.com", "a-password"), wantStatus: 401, wantCode: library.EUNAUTHORIZED,
			check: func(t *testing.T, r *result) {
				if _, err := db.FindMemberByEmail(t.Context(), "newbie@example.com"); library.ErrorCode(err) != library.ENOTFOUND {
					t.Errorf("newbie@example.com after a refused key: %v, want not found", err)
				}
			}},
		{name: "key for bob", serial: true, method: "POST", path: "/api/auth/generate-key", body: credentialsJSON(" Bob@Example.com ", "builder"), wantStatus: 201, check: wantKey("newbie", "bob@example.com")},
		{name: "bob's key works", serial: true, who: "newbie", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("bob@example.com", library.RoleMember)},
		{name: "another key for bob", serial: true, method: "POST", path: "/api/auth/generate-key", body: credentialsJSON("bob@example.com", "builder"), wantStatus: 201,
			check: all(wantKey("newbie2", "bob@example.com"), func(t *testing.T, r *result) {
				if r.lab.get(t, "key_id_newbie") == r.lab.get(t, "key_id_newbie2") {
					t.Error("key id: got the first key's again, want a new key")
				}
			})},
		{name: "key for alice", serial: true, method: "POST", path: "/api/auth/generate-key", body: credentialsJSON("alice@example.com", "wonderland"), wantStatus: 201, check: wantKey("alice-key", "alice@example.com")},
		{name: "alice's key works", serial: true, who: "alice-key", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("alice@example.com", library.RoleMember)},
		{name: "alice's key works on another replica", serial: true, on: "b", who: "alice-key", method: "GET", path: "/api/me", wantStatus: 200, check: wantMe("alice@example.com", library.RoleMember)},
		{name: "revoke another member's key", serial: true, who: "newbie", method: "DELETE", path: "/api/auth/keys/{key_id_alice_key}", wantStatus: 403, wantCode: library.EFORBIDDEN},
		{name: "revoke an unknown key", serial: true, who: "alice-key", method: "DELETE", path: "/api/auth/keys/0123456789abcdef", wantStatus: 404, wantCode: library.ENOTFOUND},
		{name: "revoke a malformed key id", serial: true, who: "alice-key", method: "DELETE", path: "/api/auth/keys/short", wantStatus: 400, wantCode: library.EINVALID},
		{name: "revoke", serial: true, who: "alice-key", on: "b", method: "DELETE", path: "/api/auth/keys/{key_id_alice_key}", wantStatus: 200},
		{name: "the revoked key", serial: true, who: "alice-key", method: "GET", path: "/api/me", wantStatus: 401, wantCode: library.EINVALIDTOKEN},
		{name: "revoke the revoked key", serial: true, who: "alice-key", method: "DELETE", path: "/api/auth/keys/{key_id_alice_key}", wantStatus: 401, wantCode: library.EINVALIDTOKEN},
		{name: "revoke the first new key", serial: true, who: "newbie", method: "DELETE", path: "/api/auth/keys/{key_id_newbie}", wantStatus: 200},
		{name: "the second new key still works", serial: true, who: "newbie2", method: "GET", path: "/api/me", wantStatus: 200},

		// JWTs.
		{name: "token", serial: true, method: "POST", path: "/api/auth/token", body: credentialsJSON("alice@example.com", "wonderland"), wantStatus: 200,
			check: func(t *testing.T, r *result) {
				tok := data[struct {
					AccessToken string `json:"access_token"`
					TokenType   string `json:"token_type"`
					ExpiresIn   int    `json:"expires_in"`
				}](t, r)
				if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != int(tokenTTL.Seconds()) {
					t.Errorf("got %+v, want a token of type Bearer that expires in %d s", tok, int(tokenTTL.Seconds()))
				}
				r.lab.setCred("alice-jwt", bearer(tok.AccessToken))
				r.lab.setCred("alice-jwt-lowercase", withHeader("Authorization", "bearer "+tok.AccessToken))
			}},
		{name: "the token works", serial: true, who: "alice-jwt", method: "GET", path: "/api/me", wantStatus: 200,
			before: noteCounter("jwt_ok", "", "statelab_authentications_total", jwtOK),
			check:  all(wantMe("alice@example.com", library.RoleMember), counterRose("jwt_ok", "", "statelab_authentications_total", jwtOK, 1))},
		{name: "the token works on another replica", serial: true, on: "b", who: "alice-jwt", method: "GET", path: "/api/me", wantStatus: 200,
			before: noteCounter("jwt_ok_b", "b", "statelab_authentications_total", jwtOK),
			check:  all(wantMe("alice@example.com", library.RoleMember), counterRose("jwt_ok_b", "b", "statelab_authentications_total", jwtOK, 1))},
		{name: "the token with a lowercase scheme", serial: true, who: "alice-jwt-lowercase", method: "GET", path: "/api/me", wantStatus: 200},
	})
	lintMetrics(t, l)
}

// wantKey checks a generate-key answer and keeps the key as the credential
// who and its id as key_id_<who>.
func wantKey(who, email string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		k := data[struct {
			APIKey string `json:"api_key"`
			KeyID  string `json:"key_id"`
			Email  string `json:"email"`
		}](t, r)
		id, ok := stateless.ParseAPIKey(k.APIKey)
		if !ok || id != k.KeyID || k.Email != email {
			t.Fatalf("got %+v, want a well-formed key whose id is key_id, for %s", k, email)
		}
		r.lab.setCred(who, bearer(k.APIKey))
		r.lab.set("key_id_"+strings.ReplaceAll(who, "-", "_"), k.KeyID)
	}
}

// TestNormalizeEmail covers the one check every sign-in makes first.
func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, want string // want "" for an error
	}{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM\t", "alice@example.com"},
		{"", ""},
		{"   ", ""},
		{"alice", ""},
		{"alice@", ""},
		{"Alice <alice@example.com>", ""},
		{"alice@example.com, bob@example.com", ""},
		{strings.Repeat("a", 243) + "@example.com", ""},
	} {
		got, err := api.NormalizeEmail(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("NormalizeEmail(%q): got %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err != nil && library.ErrorCode(err) != library.EINVALID {
			t.Errorf("NormalizeEmail(%q): got code %q, want %q", tt.in, library.ErrorCode(err), library.EINVALID)
		}
	}
}

// TestMain stops the test binary's PostgreSQL, if a test started one.
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
