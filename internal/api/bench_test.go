package api_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/sqlite"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

// The benchmarks drive each server's whole handler (router, metrics,
// authentication, handler, store) with httptest, no network, so the only
// difference between the rows of one benchmark is how the request's member
// is found:
//
//	none     the shared API behind a middleware that names a fixed member
//	session  stateful: a signed cookie, the session looked up in memory
//	apikey   stateless: an API key, looked up and hashed on every request
//	jwt      stateless: an HS256 JWT, verified on every request
//
// Each reports req-bytes/op, the request line and headers as sent: what the
// credential costs on the wire, and cpu-ns/op, the process's CPU time per
// request (every thread, the collector's too), which a busy machine
// inflates far less than ns/op: on a shared machine, compare those.

// noReadCache opens the benchmarks' database without the read cache, so
// every read asks SQLite: go test -bench . ./internal/api/ -args -no-read-cache
var noReadCache = flag.Bool("no-read-cache", false, "benchmark with the store's read cache off")

// benchPaths are the auth paths, in the order they are reported.
var benchPaths = []string{"none", "session", "apikey", "jwt"}

// benchLab is one database and the four ways to reach it.
type benchLab struct {
	db       *sqlite.DB
	handlers map[string]http.Handler
	// auth adds each path's credential to a request.
	auth map[string]func(*http.Request)
}

// benchSetup opens a seeded database and signs alice in on both servers,
// through their own sign-in routes. Every sub-benchmark gets its own, so
// the rows that one leaves behind (borrow records, WAL) cannot slow the next.
func benchSetup(b *testing.B) *benchLab {
	b.Helper()
	ctx := context.Background()
	var opts []sqlite.Option
	if *noReadCache {
		opts = append(opts, sqlite.WithoutCache())
	}
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), opts...)
	if err != nil {
		b.Fatalf("open database: %v", err)
	}
	b.Cleanup(func() { db.Close() })
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		b.Fatalf("find alice: %v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	config := func(service string) api.Config {
		return api.Config{Service: service, Replica: "bench", Store: db, Logger: logger, Registry: prometheus.NewRegistry()}
	}

	baseline := api.New(config("baseline"))
	baseline.HandleLibrary(benchAsMember(alice))

	key := []byte("bench-session-key-0123456789abcdef")
	store := stateful.NewMemoryStore(key, sessions.Options{
		Path: "/", MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}, time.Now)
	sf := stateful.NewServer(config("stateful"), store)
	tokens := stateless.NewTokens([]byte("bench-jwt-secret-0123456789abcdef"), time.Hour, time.Now)
	sl := stateless.NewServer(config("stateless"), tokens, time.Now)

	creds := `{"email":"alice@example.com","password":"wonderland"}`
	login := benchCall(b, sf, "POST", "/api/auth/login", creds, nil, http.StatusOK)
	var cookie *http.Cookie
	for _, c := range login.Result().Cookies() {
		if c.Name == stateful.CookieName {
			cookie = c
		}
	}
	if cookie == nil {
		b.Fatalf("login set no %s cookie", stateful.CookieName)
	}
	var issued struct {
		Data struct {
			APIKey      string `json:"api_key"`
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	benchJSON(b, benchCall(b, sl, "POST", "/api/auth/generate-key", creds, nil, http.StatusCreated), &issued)
	apiKey := issued.Data.APIKey
	benchJSON(b, benchCall(b, sl, "POST", "/api/auth/token", creds, nil, http.StatusOK), &issued)
	jwt := issued.Data.AccessToken
	if apiKey == "" || jwt == "" {
		b.Fatalf("got api key %q and JWT %q, want both", apiKey, jwt)
	}

	return &benchLab{
		db:       db,
		handlers: map[string]http.Handler{"none": baseline, "session": sf, "apikey": sl, "jwt": sl},
		auth: map[string]func(*http.Request){
			"none":    func(*http.Request) {},
			"session": func(r *http.Request) { r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value}) },
			"apikey":  func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+apiKey) },
			"jwt":     func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+jwt) },
		},
	}
}

// benchAsMember is the baseline's authentication: none, just the member.
func benchAsMember(m library.Member) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(library.NewContextWithMember(r.Context(), m)))
		})
	}
}

// benchCall serves one request and insists on its status.
func benchCall(b *testing.B, h http.Handler, method, target, body string, auth func(*http.Request), want int) *httptest.ResponseRecorder {
	b.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if auth != nil {
		auth(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != want {
		b.Fatalf("%s %s: got status %d, want %d: %s", method, target, w.Code, want, w.Body)
	}
	return w
}

func benchJSON(b *testing.B, w *httptest.ResponseRecorder, v any) {
	b.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		b.Fatalf("decode %s: %v", w.Body, err)
	}
}

// benchRequest builds an authenticated request and returns it with its
// size on the wire, for req-bytes/op. (Report it after b.Loop: the loop's
// start resets the timer, which deletes metrics reported before it.)
func benchRequest(b *testing.B, lab *benchLab, path, method, target string) (*http.Request, float64) {
	b.Helper()
	r := httptest.NewRequest(method, target, nil)
	lab.auth[path](r)
	dump, err := httputil.DumpRequest(r, false)
	if err != nil {
		b.Fatalf("dump request: %v", err)
	}
	return r, float64(len(dump))
}

// benchGet serves one GET per iteration. The request is built once: none
// of the handlers changes it.
func benchGet(b *testing.B, target string) {
	for _, path := range benchPaths {
		b.Run(path, func(b *testing.B) {
			lab := benchSetup(b)
			h := lab.handlers[path]
			r, size := benchRequest(b, lab, path, "GET", target)
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: got status %d, want %d: %s", target, w.Code, http.StatusOK, w.Body)
				}
			}
			cpu(b)
			b.ReportMetric(size, "req-bytes/op")
		})
	}
}

// BenchmarkGetBook is an authenticated GET /api/books/{id}: one indexed read.
func BenchmarkGetBook(b *testing.B) { benchGet(b, "/api/books/1") }

// BenchmarkListBooks is a page of 50 books.
func BenchmarkListBooks(b *testing.B) { benchGet(b, "/api/books?limit=50") }

// BenchmarkBorrowReturn borrows a copy of one book and returns it: two
// writes, two requests per iteration; req-bytes/op is the borrow's.
func BenchmarkBorrowReturn(b *testing.B) {
	for _, path := range benchPaths {
		b.Run(path, func(b *testing.B) {
			lab := benchSetup(b)
			book, err := lab.db.CreateBook(context.Background(), library.Book{Title: "Benchmarking for Librarians", Author: "B. N. Loop", Copies: 5})
			if err != nil {
				b.Fatalf("create book: %v", err)
			}
			borrowURL := fmt.Sprintf("/api/books/%d/borrow", book.ID)
			h := lab.handlers[path]
			borrow, size := benchRequest(b, lab, path, "POST", borrowURL)
			var rec struct {
				Data struct {
					ID int64 `json:"id"`
				} `json:"data"`
			}
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, borrow)
				if w.Code != http.StatusCreated {
					b.Fatalf("POST %s: got status %d, want %d: %s", borrowURL, w.Code, http.StatusCreated, w.Body)
				}
				if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil {
					b.Fatalf("decode borrow: %v", err)
				}
				ret := httptest.NewRequest("POST", "/api/borrows/"+fmt.Sprint(rec.Data.ID)+"/return", nil)
				lab.auth[path](ret)
				w = httptest.NewRecorder()
				h.ServeHTTP(w, ret)
				if w.Code != http.StatusOK {
					b.Fatalf("return borrow %d: got status %d, want %d: %s", rec.Data.ID, w.Code, http.StatusOK, w.Body)
				}
			}
			cpu(b)
			b.ReportMetric(size, "req-bytes/op")
		})
	}
}

// startCPU reads the process's CPU time and returns the function that
// reports the CPU time per iteration since then as cpu-ns/op. Call it
// after b.Loop has returned, when b.N is the number of iterations.
func startCPU() func(*testing.B) {
	start, ok := processCPU()
	return func(b *testing.B) {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
