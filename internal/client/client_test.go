package client_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/sqlite"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

var (
	alice     = client.Credentials{Email: "alice@example.com", Password: "wonderland"}
	bob       = client.Credentials{Email: "bob@example.com", Password: "builder"}
	librarian = client.Credentials{Email: "librarian@example.com", Password: "bookworm"}
)

// lab is a stateful and a stateless server on one fresh database.
type lab struct{ stateful, stateless string }

func newLab(t *testing.T) lab {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "lib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := func(replica string) api.Config {
		return api.Config{Replica: replica, Store: db, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()}
	}
	key := []byte("client-test-session-key-0123456789ab")
	opts := sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	sf := httptest.NewServer(stateful.NewServer(cfg("stateful-1"), stateful.NewMemoryStore(key, opts, time.Now)))
	t.Cleanup(sf.Close)
	tokens := stateless.NewTokens([]byte("client-test-jwt-secret-0123456789abc"), 15*time.Minute, time.Now)
	sl := httptest.NewServer(stateless.NewServer(cfg("stateless-1"), tokens, time.Now))
	t.Cleanup(sl.Close)
	return lab{stateful: sf.URL, stateless: sl.URL}
}

// must fails the test on err.
func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func TestPaths(t *testing.T) {
	yes, no := true, false
	tests := []struct{ got, want string }{
		{client.HealthPath, "/api/health"},
		{client.ReadyPath, "/api/ready"},
		{client.MetricsPath, "/metrics"},
		{client.MePath, "/api/me"},
		{client.BooksPath, "/api/books"},
		{client.BorrowsPath, "/api/borrows"},
		{client.LoginPath, "/api/auth/login"},
		{client.LogoutPath, "/api/auth/logout"},
		{client.CartPath, "/api/cart"},
		{client.CartItemsPath, "/api/cart/items"},
		{client.CheckoutPath, "/api/cart/checkout"},
		{client.GenerateKeyPath, "/api/auth/generate-key"},
		{client.TokenPath, "/api/auth/token"},
		{client.BookPath(7), "/api/books/7"},
		{client.BorrowBookPath(7), "/api/books/7/borrow"},
		{client.ReturnPath(12), "/api/borrows/12/return"},
		{client.CartItemPath(3), "/api/cart/items/3"},
		{client.KeyPath("00ff"), "/api/auth/keys/00ff"},
		{client.KeyPath("a/b"), "/api/auth/keys/a%2Fb"},
		{client.FindBooksPath(library.BookFilter{}), "/api/books"},
		{client.FindBooksPath(library.BookFilter{Limit: 50}), "/api/books?limit=50"},
		{client.FindBooksPath(library.BookFilter{Limit: 20, Offset: 40}), "/api/books?limit=20&offset=40"},
		{client.FindBooksPath(library.BookFilter{Query: "war", Available: &yes}), "/api/books?available=true&q=war"},
		{client.FindBooksPath(library.BookFilter{Available: &yes, Limit: 50, Offset: 3}), "/api/books?available=true&limit=50&offset=3"},
		{client.FindBooksPath(library.BookFilter{Author: "Le Guin", Available: &no}), "/api/books?author=Le+Guin&available=false"},
		{client.BorrowsPagePath(0, 0), "/api/borrows"},
		{client.BorrowsPagePath(10, 20), "/api/borrows?limit=10&offset=20"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestIsSignIn(t *testing.T) {
	for path, want := range map[string]bool{
		client.LoginPath: true, client.GenerateKeyPath: true, client.TokenPath: true,
		client.LogoutPath: false, client.KeyPath("ab"): false, client.MePath: false, client.FindBooksPath(library.BookFilter{Limit: 5}): false,
	} {
		if got := client.IsSignIn(path); got != want {
			t.Errorf("IsSignIn(%q) = %v, want %v", path, got, want)
		}
	}
}

// The kinds are the strategy package's credential names, so a strategy's
// Credential can be handed to SignIn as it is.
func TestKindsAreTheStrategiesCredentials(t *testing.T) {
	for _, st := range strategy.All() {
		if _, err := client.SignInPath(st.Credential); err != nil {
			t.Errorf("strategy %s: %v", st.Name, err)
		}
	}
	if client.KindSession != strategy.CredentialCookie || client.KindAPIKey != strategy.CredentialAPIKey || client.KindJWT != strategy.CredentialJWT {
		t.Errorf("kinds %q %q %q differ from the strategies' %q %q %q", client.KindSession, client.KindAPIKey, client.KindJWT,
			strategy.CredentialCookie, strategy.CredentialAPIKey, strategy.CredentialJWT)
	}
	if _, err := client.SignInPath("password"); err == nil {
		t.Error("SignInPath(password): no error")
	}
}

// TestStatefulRoutes goes through every route of the stateful server with
// a session, checking each answer's data.
func TestStatefulRoutes(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	anon := client.New(l.stateful, nil)

	h := must[client.Health](t, "Health")(anon.Health(ctx))
	if h.Status != "healthy" || h.Service != "stateful" || h.Replica != "stateful-1" {
		t.Errorf("health = %+v", h)
	}
	if h := must[client.Health](t, "Ready")(anon.Ready(ctx)); h.Status != "ready" {
		t.Errorf("ready = %+v", h)
	}
	if _, err := anon.Me(ctx); client.ErrorCode(err) != library.ELOGINREQUIRED {
		t.Errorf("Me without a cookie: got %v, want %s", err, library.ELOGINREQUIRED)
	}

	cred := must[client.Credential](t, "Login")(anon.Login(ctx, alice))
	if cred.Kind != client.KindSession || cred.Header != "Cookie" || !strings.HasPrefix(cred.Value, client.CookieName+"=") {
		t.Errorf("session credential = %+v", cred)
	}
	if cred.Expires != time.Hour {
		t.Errorf("session expires after %s, want the cookie's Max-Age, 1h", cred.Expires)
	}
	c := anon.With(cred)
	me := must[client.Me](t, "Me")(c.Me(ctx))
	if me.Email != alice.Email || me.ServedBy != "stateful-1" {
		t.Errorf("me = %+v", me)
	}

	yes := true
	books, meta, err := c.Books(ctx, library.BookFilter{Available: &yes, Limit: 5, Offset: 2})
	if err != nil || len(books) != 5 || meta.Limit != 5 || meta.Offset != 2 || meta.Total < 5 {
		t.Fatalf("Books: %d books, meta %+v, %v", len(books), meta, err)
	}
	if b := must[library.Book](t, "Book")(c.Book(ctx, books[0].ID)); b.ID != books[0].ID || b.Title == "" {
		t.Errorf("Book(%d) = %+v", books[0].ID, b)
	}

	cart := must[client.Cart](t, "AddToCart")(c.AddToCart(ctx, books[0].ID))
	cart = must[client.Cart](t, "AddToCart")(c.AddToCart(ctx, books[1].ID))
	if cart.Count != 2 {
		t.Errorf("cart after two adds = %+v", cart)
	}
	if _, err := c.AddToCart(ctx, books[1].ID); client.ErrorCode(err) != library.ECONFLICT {
		t.Errorf("adding a book twice: got %v, want %s", err, library.ECONFLICT)
	}
	cart = must[client.Cart](t, "RemoveFromCart")(c.RemoveFromCart(ctx, books[1].ID))
	if cart.Count != 1 || cart.Items[0].BookID != books[0].ID {
		t.Errorf("cart after a removal = %+v", cart)
	}
	if cart := must[client.Cart](t, "Cart")(c.Cart(ctx)); cart.Count != 1 {
		t.Errorf("cart = %+v", cart)
	}
	recs := must[[]library.BorrowRecord](t, "Checkout")(c.Checkout(ctx))
	if len(recs) != 1 || recs[0].BookID != books[0].ID {
		t.Errorf("checkout = %+v", recs)
	}
	if cart := must[client.Cart](t, "Cart")(c.Cart(ctx)); cart.Count != 0 {
		t.Errorf("cart after checkout = %+v", cart)
	}

	one := must[library.BorrowRecord](t, "BorrowBook")(c.BorrowBook(ctx, books[2].ID, client.BorrowInput{Days: 3}))
	if one.BookID != books[2].ID || one.DueDate.Sub(one.BorrowDate) != 3*24*time.Hour {
		t.Errorf("BorrowBook = %+v", one)
	}
	two := must[[]library.BorrowRecord](t, "Borrow")(c.Borrow(ctx, books[3].ID, books[4].ID))
	if len(two) != 2 {
		t.Errorf("Borrow = %+v", two)
	}
	out, meta, err := c.Borrows(ctx, 10, 0)
	if err != nil || len(out) != 4 || meta.Total != 4 {
		t.Errorf("Borrows: %d records, meta %+v, %v", len(out), meta, err)
	}
	back := must[library.BorrowRecord](t, "Return")(c.Return(ctx, one.ID))
	if !back.Returned {
		t.Errorf("Return = %+v", back)
	}
	if _, err := c.Return(ctx, one.ID); client.ErrorCode(err) != library.ECONFLICT {
		t.Errorf("returning twice: got %v, want %s", err, library.ECONFLICT)
	}

	if err := c.Revoke(ctx, cred); err != nil {
		t.Fatalf("Revoke (logout): %v", err)
	}
	_, err = c.Me(ctx)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code != library.ESESSIONLOST || e.Method != "GET" || e.Path != client.MePath || e.Message == "" {
		t.Errorf("Me after logout: got %#v, want a 401 %s", err, library.ESESSIONLOST)
	}
	if err := c.Logout(ctx); client.ErrorCode(err) != library.ESESSIONLOST {
		t.Errorf("Logout after logout: got %v, want %s", err, library.ESESSIONLOST)
	}
}

// TestLibrarianRoutes changes the catalog, which only a librarian may.
func TestLibrarianRoutes(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	anon := client.New(l.stateless, nil)
	member := anon.With(must[client.Credential](t, "Token")(anon.Token(ctx, bob)))
	title, author, copies := "The Dispossessed", "Ursula K. Le Guin", 2
	if _, err := member.CreateBook(ctx, client.BookInput{Title: &title, Author: &author}); client.ErrorCode(err) != library.EFORBIDDEN {
		t.Errorf("a member's CreateBook: got %v, want %s", err, library.EFORBIDDEN)
	}
	c := anon.With(must[client.Credential](t, "Token")(anon.Token(ctx, librarian)))
	b := must[library.Book](t, "CreateBook")(c.CreateBook(ctx, client.BookInput{Title: &title, Author: &author}))
	if b.Title != title || b.Copies != 1 {
		t.Errorf("CreateBook = %+v", b)
	}
	b = must[library.Book](t, "UpdateBook")(c.UpdateBook(ctx, b.ID, client.BookInput{Copies: &copies}))
	if b.Title != title || b.Copies != 2 {
		t.Errorf("UpdateBook = %+v", b)
	}
	if err := c.DeleteBook(ctx, b.ID); err != nil {
		t.Fatalf("DeleteBook: %v", err)
	}
	if _, err := c.Book(ctx, b.ID); client.ErrorCode(err) != library.ENOTFOUND {
		t.Errorf("Book after DeleteBook: got %v, want %s", err, library.ENOTFOUND)
	}
}

// TestStatelessSignIns gets each bearer credential, uses it, and revokes
// what can be revoked.
func TestStatelessSignIns(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	anon := client.New(l.stateless, nil)

	key := must[client.Credential](t, "GenerateKey")(anon.GenerateKey(ctx, bob))
	if key.Kind != client.KindAPIKey || key.Header != "Authorization" || !strings.HasPrefix(key.Value, "Bearer slk_") || key.KeyID == "" {
		t.Errorf("API key credential = %+v", key)
	}
	jwt := must[client.Credential](t, "Token")(anon.Token(ctx, bob))
	if jwt.Kind != client.KindJWT || !strings.HasPrefix(jwt.Value, "Bearer ey") || jwt.Expires != 15*time.Minute {
		t.Errorf("JWT credential = %+v", jwt)
	}
	for _, cred := range []client.Credential{key, jwt} {
		if me, err := anon.With(cred).Me(ctx); err != nil || me.Email != bob.Email || me.ServedBy != "stateless-1" {
			t.Errorf("Me with the %s: %+v, %v", cred.Kind, me, err)
		}
	}
	if _, err := anon.Me(ctx); client.ErrorCode(err) != library.EINVALIDTOKEN {
		t.Errorf("Me with no token: got %v, want %s", err, library.EINVALIDTOKEN)
	}

	other := must[client.Credential](t, "GenerateKey")(anon.GenerateKey(ctx, bob))
	if err := anon.With(jwt).RevokeKey(ctx, other.KeyID); err != nil {
		t.Errorf("RevokeKey: %v", err)
	}
	if err := anon.Revoke(ctx, key); err != nil {
		t.Errorf("Revoke (API key): %v", err)
	}
	for _, cred := range []client.Credential{key, other} {
		if _, err := anon.With(cred).Me(ctx); client.ErrorCode(err) != library.EINVALIDTOKEN {
			t.Errorf("Me with a revoked key: got %v, want %s", err, library.EINVALIDTOKEN)
		}
	}
	if err := anon.Revoke(ctx, jwt); !errors.Is(err, client.ErrNotRevocable) {
		t.Errorf("Revoke (JWT): got %v, want ErrNotRevocable", err)
	}
	if _, err := anon.With(jwt).Me(ctx); err != nil {
		t.Errorf("Me with the JWT after revoking the keys: %v", err)
	}

	// The other side's sign-in route does not exist here.
	if _, err := anon.Login(ctx, bob); client.ErrorCode(err) != library.ENOTFOUND {
		t.Errorf("Login on the stateless server: got %v, want %s", err, library.ENOTFOUND)
	}
}

func TestSignInFailures(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	wrong := client.Credentials{Email: alice.Email, Password: "not-wonderland"}
	tests := []struct {
		base, kind string
		creds      client.Credentials
		code       string
	}{
		{l.stateful, client.KindSession, wrong, library.EUNAUTHORIZED},
		{l.stateless, client.KindAPIKey, wrong, library.EUNAUTHORIZED},
		{l.stateless, client.KindJWT, wrong, library.EUNAUTHORIZED},
		{l.stateless, client.KindJWT, client.Credentials{Email: "nobody"}, library.EINVALID},
	}
	for _, tt := range tests {
		cred, err := client.New(tt.base, nil).SignIn(ctx, tt.kind, tt.creds)
		var e *client.Error
		if !errors.As(err, &e) || e.Code != tt.code || e.Status != api.StatusOf(tt.code) || cred != (client.Credential{}) {
			t.Errorf("%s sign-in as %q: got %+v, %v; want a %d %s", tt.kind, tt.creds.Email, cred, err, api.StatusOf(tt.code), tt.code)
		}
	}
	if _, err := client.New(l.stateless, nil).SignIn(ctx, "password", alice); err == nil {
		t.Error("SignIn for an unknown kind: no error")
	}
}

// A client with a cookie jar keeps the session itself, and the credential
// it gets holds every cookie of the jar.
func TestLoginWithACookieJar(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	jar, _ := cookiejar.New(nil)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A balancer's routing cookie, set on the first answer.
		http.SetCookie(w, &http.Cookie{Name: "route", Value: "r1", Path: "/"})
		proxy(t, l.stateful).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c := client.New(front.URL, &http.Client{Jar: jar})
	if _, err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	cred := must[client.Credential](t, "Login")(c.Login(ctx, alice))
	names := strings.Split(cred.Value, "; ")
	slices.Sort(names)
	if len(names) != 2 || !strings.HasPrefix(names[0], "route=r1") || !strings.HasPrefix(names[1], client.CookieName+"=") {
		t.Errorf("credential from the jar = %q, want the route and the session cookie", cred.Value)
	}
	if me, err := c.Me(ctx); err != nil || me.Email != alice.Email {
		t.Errorf("Me through the jar: %+v, %v", me, err)
	}
	// A copy of the cookies works for a client without the jar.
	if me, err := client.New(front.URL, nil).With(cred).Me(ctx); err != nil || me.Email != alice.Email {
		t.Errorf("Me with a copy of the cookies: %+v, %v", me, err)
	}
}

// proxy forwards to base, the way a balancer does.
func proxy(t *testing.T, base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		var buf [4096]byte
		for {
			n, err := resp.Body.Read(buf[:])
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	})
}

// TestIdempotencyKey sends one write twice under one key: the second
// answer is the first, replayed.
func TestIdempotencyKey(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	anon := client.New(l.stateless, nil)
	c := anon.With(must[client.Credential](t, "Token")(anon.Token(ctx, bob)))
	req := client.Request{Method: http.MethodPost, Path: client.BorrowsPath, Body: client.BorrowBooksInput{BookIDs: []int64{9}}, IdempotencyKey: client.NewIdempotencyKey()}
	first := must[*client.Response](t, "first")(c.Do(ctx, req))
	again := must[*client.Response](t, "again")(c.Do(ctx, req))
	if first.Status != http.StatusCreated || first.Replayed() || again.Status != http.StatusCreated || !again.Replayed() || string(again.Body) != string(first.Body) {
		t.Errorf("first %d replayed %v, again %d replayed %v", first.Status, first.Replayed(), again.Status, again.Replayed())
	}
	if got := first.Request.Header.Get(client.IdempotencyKeyHeader); got != req.IdempotencyKey {
		t.Errorf("sent key %q, want %q", got, req.IdempotencyKey)
	}
	if first.Replica() != "stateless-1" || first.Outcome() != "ok" {
		t.Errorf("replica %q, outcome %q", first.Replica(), first.Outcome())
	}
	if k1, k2 := client.NewIdempotencyKey(), client.NewIdempotencyKey(); k1 == k2 || len(k1) != 32 {
		t.Errorf("keys %q and %q", k1, k2)
	}
}

// TestNewRequest checks what goes on the wire: the body as JSON, its type,
// the key and the credential.
func TestNewRequest(t *testing.T) {
	c := client.New("http://lab.example/", nil).With(client.Bearer("tok"))
	req, err := c.NewRequest(t.Context(), client.Request{Method: http.MethodPost, Path: client.CartItemsPath, Body: client.CartInput{BookID: 4}, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct{ what, got, want string }{
		{"URL", req.URL.String(), "http://lab.example/api/cart/items"},
		{"body", string(b), `{"book_id":4}`},
		{"Content-Type", req.Header.Get("Content-Type"), "application/json"},
		{"key", req.Header.Get("Idempotency-Key"), "k1"},
		{"Authorization", req.Header.Get("Authorization"), "Bearer tok"},
	} {
		if x.got != x.want {
			t.Errorf("%s: got %q, want %q", x.what, x.got, x.want)
		}
	}
	// Optional fields left zero stay off the wire.
	req, err = c.NewRequest(t.Context(), client.Request{Method: http.MethodPost, Path: client.BorrowsPath, Body: client.BorrowBooksInput{BookIDs: []int64{3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(req.Body); string(b) != `{"book_ids":[3,4]}` {
		t.Errorf("borrow body %s", b)
	}
	// A GET has no body and no Content-Type; nor has a request whose body
	// is an empty []byte, which a caller that encodes its bodies once
	// passes for none.
	for _, body := range []any{nil, []byte(nil), json.RawMessage{}} {
		req, _ = client.New("http://lab.example", nil).NewRequest(t.Context(), client.Request{Method: http.MethodGet, Path: client.MePath, Body: body})
		if req.Body != nil || req.Header.Get("Content-Type") != "" || req.Header.Get("Authorization") != "" {
			t.Errorf("GET with body %#v: a body or headers: %v", body, req.Header)
		}
	}
	// Bytes already encoded go as they are.
	req, _ = c.NewRequest(t.Context(), client.Request{Method: http.MethodPost, Path: client.LoginPath, Body: []byte(`{"email":"a@b.c"}`)})
	if b, _ := io.ReadAll(req.Body); string(b) != `{"email":"a@b.c"}` || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("encoded body %s, Content-Type %q", b, req.Header.Get("Content-Type"))
	}
}

// An answer whose body breaks off did not arrive: ReadResponse returns the
// error as it came.
func TestReadResponseOfABrokenBody(t *testing.T) {
	broken := errors.New("connection reset")
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(iotest.ErrReader(broken))}
	if r, err := client.ReadResponse(resp); !errors.Is(err, broken) || r != nil {
		t.Errorf("got %v, %v; want the read error", r, err)
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		cred       client.Credential
		line, kind string
	}{
		{client.Bearer("abc"), "Authorization: Bearer abc", ""},
		{client.Session("s1"), "Cookie: session_id=s1", client.KindSession},
		{client.Cookies([]*http.Cookie{{Name: "session_id", Value: "s1", MaxAge: 60}, {Name: "route", Value: "r"}}), "Cookie: session_id=s1; route=r", client.KindSession},
	}
	for _, tt := range tests {
		if tt.cred.Line() != tt.line || tt.cred.Kind != tt.kind {
			t.Errorf("credential %+v: line %q kind %q, want %q %q", tt.cred, tt.cred.Line(), tt.cred.Kind, tt.line, tt.kind)
		}
		h := http.Header{}
		tt.cred.Set(h)
		if got := tt.cred.Header + ": " + h.Get(tt.cred.Header); got != tt.line {
			t.Errorf("Set put %q, want %q", got, tt.line)
		}
	}
	if exp := tests[2].cred.Expires; exp != time.Minute {
		t.Errorf("Expires = %s, want the longest Max-Age, 1m", exp)
	}
	h := http.Header{}
	client.Credential{}.Set(h)
	if len(h) != 0 {
		t.Errorf("the zero credential set %v", h)
	}
	if _, err := client.RevokeRequest(client.Credential{Kind: client.KindAPIKey}); err == nil {
		t.Error("RevokeRequest for a key without its id: no error")
	}
}

// TestAnswers reads answers that are not the servers' own: an error
// envelope, a proxy's page, a success that is not JSON, and one that does
// not fit the type asked for.
func TestAnswers(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"/error":       {http.StatusConflict, `{"success":false,"code":"unavailable","message":"No copy left.","detail":{"book_ids":[3]}}`},
		"/proxy":       {http.StatusBadGateway, "<html>bad gateway</html>\n"},
		"/garbled":     {http.StatusOK, `{"success":true,"data":{"id":`},
		"/api/books/1": {http.StatusOK, `{"success":true,"data":{"id":`},
		"/wrongtype":   {http.StatusOK, `{"success":true,"data":"a string"}`},
		"/empty":       {http.StatusOK, ``},
		"/nodata":      {http.StatusOK, `{"success":true,"message":"done"}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, nil)
	get := func(path string) *client.Response {
		t.Helper()
		resp, err := c.Do(t.Context(), client.Request{Method: http.MethodGet, Path: path})
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp
	}

	resp := get("/error")
	var e *client.Error
	if err := resp.Err(); !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != library.EUNAVAILABLE || e.Message != "No copy left." {
		t.Errorf("error envelope: %#v", err)
	} else if want := "GET /error: 409 unavailable: No copy left."; e.Error() != want {
		t.Errorf("error text %q, want %q", e.Error(), want)
	}
	if resp.Outcome() != library.EUNAVAILABLE || string(resp.Detail) != `{"book_ids":[3]}` {
		t.Errorf("outcome %q, detail %s", resp.Outcome(), resp.Detail)
	}

	resp = get("/proxy")
	if err := resp.Err(); !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Code != "" || e.Message != "<html>bad gateway</html>" {
		t.Errorf("proxy page: %#v", err)
	}
	if resp.Outcome() != "502" || client.ErrorCode(resp.Err()) != "" {
		t.Errorf("proxy page outcome %q", resp.Outcome())
	}

	for _, path := range []string{"/garbled", "/wrongtype", "/empty", "/nodata"} {
		resp := get(path)
		var b library.Book
		if resp.Err() != nil {
			t.Errorf("%s: a 200 is no error: %v", path, resp.Err())
		}
		if err := resp.Decode(&b); err == nil || !strings.Contains(err.Error(), "GET "+path) {
			t.Errorf("%s: Decode gave %v, want an error naming the request", path, err)
		}
	}
	if _, err := c.Book(t.Context(), 1); err == nil || !strings.Contains(err.Error(), "not a JSON envelope") {
		t.Errorf("Book of a garbled answer: got %v, want a decode error", err)
	}
	if _, err := c.Health(t.Context()); err == nil {
		t.Error("Health of an empty answer: no error")
	}
}

// A request that gets no answer returns the transport's error.
func TestNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := client.New(srv.URL, nil).Me(t.Context())
	if err == nil || client.ErrorCode(err) != "" {
		t.Errorf("got %v, want a transport error", err)
	}
}
