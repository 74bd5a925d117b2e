package api_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/store"
	"github.com/statelab/statelab/stateless"
)

// key returns the header of a request sent with an Idempotency-Key.
func key(k string) map[string]string { return map[string]string{api.IdempotencyKeyHeader: k} }

// saveBody remembers a response's body, byte for byte, under name.
func saveBody(name string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) { r.lab.set(name, string(r.body)) }
}

// replayOf checks that a response is the answer saved under name sent
// again: the same bytes, marked Idempotent-Replayed.
func replayOf(name string) func(*testing.T, *result) {
	return func(t *testing.T, r *result) {
		t.Helper()
		if got := r.header.Get(api.ReplayedHeader); got != "true" {
			t.Errorf("%s: got %q, want true", api.ReplayedHeader, got)
		}
		if want := r.lab.get(t, name); string(r.body) != want {
			t.Errorf("replayed body:\n got %s\nwant %s", r.body, want)
		}
	}
}

// notReplayed checks that an answer was made now.
func notReplayed(t *testing.T, r *result) {
	if got := r.header.Get(api.ReplayedHeader); got != "" {
		t.Errorf("%s: got %q on an answer made now", api.ReplayedHeader, got)
	}
}

// idemMetric is statelab_idempotency_requests_total for one result.
func idemMetric(result string) map[string]string { return map[string]string{"result": result} }

const idemCounter = "statelab_idempotency_requests_total"

// idempotencyCases are the Idempotency-Key cases every server and every
// credential must pass. They run in order: each builds on the ones before.
var idempotencyCases = []apiCase{
	{name: "a librarian adds a book under a key", who: "librarian", method: "POST", path: "/api/books",
		body: `{"title":"Retry Me","author":"A. Key","copies":2}`, header: key("create-1"), serial: true,
		wantStatus: 201, save: "ibook", check: all(saveBody("create"), notReplayed)},
	{name: "the same book again under the key is the first answer", who: "librarian", method: "POST", path: "/api/books",
		body: `{"title":"Retry Me","author":"A. Key","copies":2}`, header: key("create-1"), serial: true,
		before:     noteCounter("replays", "", idemCounter, idemMetric(api.KeyReplayed)),
		wantStatus: 201, check: all(replayOf("create"), counterRose("replays", "", idemCounter, idemMetric(api.KeyReplayed), 1))},
	{name: "so the catalog holds it once", who: "alice", method: "GET", path: "/api/books?q=Retry+Me", serial: true,
		wantStatus: 200, check: wantPage(1, 1, 20, 0, nil)},

	{name: "borrow under a key", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key("borrow-1"), serial: true,
		before:     noteCounter("stored", "", idemCounter, idemMetric(api.KeyStored)),
		wantStatus: 201, check: all(saveBody("borrow"), notReplayed, counterRose("stored", "", idemCounter, idemMetric(api.KeyStored), 1))},
	{name: "the same borrow again is replayed", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key("borrow-1"), serial: true,
		wantStatus: 201, check: replayOf("borrow")},
	{name: "a quoted key is the same key", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key(`"borrow-1"`), serial: true,
		wantStatus: 201, check: replayOf("borrow")},
	{name: "and lends one copy", who: "alice", method: "GET", path: "/api/books/{ibook}", serial: true,
		wantStatus: 200, check: wantShelf(1)},
	{name: "the key with another body is refused", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key("borrow-1"),
		body: `{"days":3}`, serial: true,
		before:     noteCounter("reused", "", idemCounter, idemMetric(api.KeyReused)),
		wantStatus: 422, wantCode: library.EKEYREUSED, check: counterRose("reused", "", idemCounter, idemMetric(api.KeyReused), 1)},
	{name: "the key on another route is refused", who: "alice", method: "POST", path: "/api/borrows", header: key("borrow-1"),
		body: `{"book_ids":[{ibook}]}`, serial: true, wantStatus: 422, wantCode: library.EKEYREUSED},
	{name: "another member's key of the same name is theirs", who: "bob", method: "POST", path: "/api/books/{ibook}/borrow", header: key("borrow-1"), serial: true,
		wantStatus: 201, save: "bobborrow", check: notReplayed},
	{name: "a request that fails stores nothing", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key("borrow-2"), serial: true,
		before:     noteCounter("failed", "", idemCounter, idemMetric(api.KeyFailed)),
		wantStatus: 409, wantCode: library.EUNAVAILABLE, check: counterRose("failed", "", idemCounter, idemMetric(api.KeyFailed), 1)},
	{name: "so its retry is tried again", who: "bob", method: "POST", path: "/api/borrows/{bobborrow}/return", serial: true, wantStatus: 200},
	{name: "and lends the copy now back", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key("borrow-2"), serial: true,
		wantStatus: 201, save: "aliceborrow2", check: notReplayed},

	{name: "multi-borrow under a key", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1,2]}`, header: key("multi-1"), serial: true,
		wantStatus: 201, check: saveBody("multi")},
	{name: "multi-borrow again is replayed", who: "alice", method: "POST", path: "/api/borrows", body: `{"book_ids":[1,2]}`, header: key("multi-1"), serial: true,
		wantStatus: 201, check: replayOf("multi")},

	{name: "return under a key", who: "alice", method: "POST", path: "/api/borrows/{aliceborrow2}/return", header: key("return-1"), serial: true,
		wantStatus: 200, check: saveBody("return")},
	{name: "the same return again is its answer, not 409", who: "alice", method: "POST", path: "/api/borrows/{aliceborrow2}/return", header: key("return-1"), serial: true,
		wantStatus: 200, check: replayOf("return")},
	{name: "a new return of it is refused", who: "alice", method: "POST", path: "/api/borrows/{aliceborrow2}/return", header: key("return-2"), serial: true,
		wantStatus: 409, wantCode: library.ECONFLICT},

	{name: "a librarian's key is the librarian's", who: "librarian", method: "POST", path: "/api/books/{ibook}/borrow", header: key("create-1"), serial: true,
		wantStatus: 422, wantCode: library.EKEYREUSED},

	// Keys that are not keys.
	{name: "an empty key", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key(""), wantStatus: 400, wantCode: library.EINVALID,
		check: wantMessage("printable ASCII")},
	{name: "a key of 256 characters", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key(strings.Repeat("k", 256)),
		wantStatus: 400, wantCode: library.EINVALID, check: wantMessage("1 to 255")},
	{name: "a key that is not ASCII", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key("clé"), wantStatus: 400, wantCode: library.EINVALID},
	{name: "a quoted key with a stray quote", who: "alice", method: "POST", path: "/api/books/{ibook}/borrow", header: key(`"a"b"`), wantStatus: 400, wantCode: library.EINVALID},
	{name: "authentication comes first", method: "POST", path: "/api/books/{ibook}/borrow", header: key(""), wantStatus: 401, wantCode: authRequired},
	{name: "a key on a read is ignored", who: "alice", method: "GET", path: "/api/books/1", header: key("read"), wantStatus: 200, check: notReplayed},
}

// TestIdempotencyKey runs the Idempotency-Key cases against both servers,
// with every session store and every credential.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			l := v.start(t, newDB(t))
			// The independent cases need the book the first serial case
			// makes: run the table's serial part first.
			for _, c := range idempotencyCases {
				if c.serial && !t.Run(c.name, func(t *testing.T) { l.run(t, c) }) {
					t.Fatalf("case %q failed; the cases after it depend on it", c.name)
				}
			}
			for _, c := range idempotencyCases {
				if !c.serial {
					t.Run(c.name, func(t *testing.T) { l.run(t, c) })
				}
			}
			lintMetrics(t, l)
		})
	}
}

// TestCheckoutIdempotencyKey checks the stateful checkout, the one write
// whose input lives in the session: a retry is its first answer, and the
// cart is empty after both.
func TestCheckoutIdempotencyKey(t *testing.T) {
	t.Parallel()
	l := variants[0].start(t, newDB(t))
	runTable(t, l, []apiCase{
		{name: "add a book", who: "alice", method: "POST", path: "/api/cart/items", body: `{"book_id":7}`, serial: true, wantStatus: 201},
		{name: "check out under a key", who: "alice", method: "POST", path: "/api/cart/checkout", header: key("checkout-1"), serial: true,
			wantStatus: 201, check: all(saveBody("checkout"), notReplayed)},
		{name: "the cart is empty", who: "alice", method: "GET", path: "/api/cart", serial: true, wantStatus: 200, check: func(t *testing.T, r *result) {
			if n := data[struct{ Count int }](t, r).Count; n != 0 {
				t.Errorf("cart holds %d books after the checkout", n)
			}
		}},
		{name: "the retry is the first answer, not an empty cart", who: "alice", method: "POST", path: "/api/cart/checkout", header: key("checkout-1"), serial: true,
			wantStatus: 201, check: replayOf("checkout")},
		{name: "a new checkout of the empty cart is refused", who: "alice", method: "POST", path: "/api/cart/checkout", header: key("checkout-2"), serial: true,
			wantStatus: 400, wantCode: library.EINVALID},
	})
}

// slowStore is a real store whose Idempotent waits for a signal before it
// begins, so a test can hold a request in flight.
type slowStore struct {
	store.Store
	entered chan struct{} // receives once per call that began
	proceed chan struct{} // closed to let the held calls go on
}

func (s *slowStore) Idempotent(ctx context.Context, req library.IdempotentRequest, change func(library.Writes) (library.StoredResponse, error)) (library.StoredResponse, bool, error) {
	s.entered <- struct{}{}
	<-s.proceed
	return s.Store.Idempotent(ctx, req, change)
}

// TestIdempotencyKeyInFlight holds a request in flight and sends its key
// again: the replica answers 409 idempotency_key_in_use at once, and once
// the first is done, the same retry gets its answer.
func TestIdempotencyKeyInFlight(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	slow := &slowStore{Store: db, entered: make(chan struct{}, 4), proceed: make(chan struct{})}
	cfg := newConfig(t, db, "stateless-1")
	cfg.Store = slow
	srv := serve(t, stateless.NewServer(cfg, stateless.NewTokens(testKey, tokenTTL, time.Now), time.Now), cfg, "stateless", library.EINVALIDTOKEN)
	l := newLab(t, db, map[string]*server{"": srv})
	l.setCred("alice", generateKey(t, l, "", demo["alice"].email, demo["alice"].password))
	borrow := apiCase{who: "alice", method: "POST", path: "/api/books/5/borrow", header: key("slow")}

	first := make(chan *result, 1)
	go func() { first <- l.do(t, borrow) }()
	<-slow.entered
	second := l.do(t, borrow)
	if second.status != 409 || second.env.Code != library.EKEYINUSE {
		t.Errorf("while the first is in flight: got %d %s, want 409 %s", second.status, second.env.Code, library.EKEYINUSE)
	}
	close(slow.proceed)
	r := <-first
	if r.status != 201 {
		t.Fatalf("first: got %d %s", r.status, r.body)
	}
	third := l.do(t, borrow)
	if third.status != 201 || !bytes.Equal(third.body, r.body) || third.header.Get(api.ReplayedHeader) != "true" {
		t.Errorf("after the first: got %d %s (replayed %q), want its answer again", third.status, third.body, third.header.Get(api.ReplayedHeader))
	}
	if got := counter(t, srv, idemCounter, idemMetric(api.KeyInUse)); got != 1 {
		t.Errorf("%s{result=%q} = %v, want 1", idemCounter, api.KeyInUse, got)
	}
}

// TestIdempotencyKeyConcurrent sends one borrow under one key from many
// clients at once to two replicas of one database: one copy is lent, and
// every answer is that borrow (made, or replayed) or 409 in use.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	l := newLab(t, db, map[string]*server{
		"":  newStateless(t, db, testKey, "stateless-1"),
		"2": newStateless(t, db, testKey, "stateless-2"),
	})
	l.setCred("alice", generateKey(t, l, "", demo["alice"].email, demo["alice"].password))
	const clients = 8
	results := make([]*result, clients)
	var wg sync.WaitGroup
	for i := range clients {
		on := []string{"", "2"}[i%2]
		wg.Go(func() {
			results[i] = l.do(t, apiCase{on: on, who: "alice", method: "POST", path: "/api/books/9/borrow", header: key("together")})
		})
	}
	wg.Wait()
	var made, inUse int
	var body []byte
	for _, r := range results {
		switch {
		case r.status == 201 && r.header.Get(api.ReplayedHeader) == "":
			made++
			body = r.body
		case r.status == 409 && r.env.Code == library.EKEYINUSE:
			inUse++
		case r.status != 201:
			t.Errorf("got %d %s", r.status, r.body)
		}
	}
	if made != 1 {
		t.Fatalf("%d answers made now, want exactly one (the rest replayed or in use)", made)
	}
	for _, r := range results {
		if r.status == 201 && !bytes.Equal(r.body, body) {
			t.Errorf("a replay differs from the first answer:\n got %s\nwant %s", r.body, body)
		}
	}
	recs, _, err := db.FindBorrows(t.Context(), library.BorrowFilter{MemberID: memberOf(t, db, demo["alice"].email), Limit: library.MaxBorrowPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if n := countBook(recs, 9); n != 1 {
		t.Errorf("alice has %d borrows of book 9, want 1", n)
	}
	t.Logf("%d clients: 1 made, %d replayed, %d in use", clients, clients-1-inUse, inUse)
}

func memberOf(t *testing.T, db store.Store, email string) int64 {
	t.Helper()
	m, err := db.FindMemberByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func countBook(recs []library.BorrowRecord, book int64) int {
	n := 0
	for _, r := range recs {
		if r.BookID == book {
			n++
		}
	}
	return n
}

// TestIdempotencyKeyTwice sends two Idempotency-Key headers: which one
// names the request cannot be told, so it is refused.
func TestIdempotencyKeyTwice(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	l := newLab(t, db, map[string]*server{"": newStateless(t, db, testKey, "stateless-1")})
	alice := generateKey(t, l, "", demo["alice"].email, demo["alice"].password)
	// The table sets one value per header; this credential adds two keys.
	l.setCred("alice", func(r *http.Request) {
		alice(r)
		r.Header.Add(api.IdempotencyKeyHeader, "a")
		r.Header.Add(api.IdempotencyKeyHeader, "b")
	})
	l.run(t, apiCase{who: "alice", method: "POST", path: "/api/books/1/borrow", wantStatus: 400, wantCode: library.EINVALID})
}

// TestIdempotencyKeyBodyTooLarge checks that a keyed request's body is held
// to the same limit as any other.
func TestIdempotencyKeyBodyTooLarge(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	l := newLab(t, db, map[string]*server{"": newStateless(t, db, testKey, "stateless-1")})
	l.setCred("alice", generateKey(t, l, "", demo["alice"].email, demo["alice"].password))
	big := `{"book_ids":[1],"borrower_name":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	l.run(t, apiCase{who: "alice", method: "POST", path: "/api/borrows", body: big, header: key("big"), wantStatus: 413, wantCode: library.ETOOLARGE})
}
