package storetest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// BorrowChange returns a change that borrows one book for member and
// answers with the new borrow's id, counting how often it ran.
func BorrowChange(member, book int64, runs *atomic.Int64) func(library.Writes) (library.StoredResponse, error) {
	return func(w library.Writes) (library.StoredResponse, error) {
		runs.Add(1)
		recs, err := w.Borrow(context.Background(), library.BorrowRequest{MemberID: member, BookIDs: []int64{book}})
		if err != nil {
			return library.StoredResponse{}, err
		}
		return library.StoredResponse{Status: 201, Body: fmt.Appendf(nil, `{"id":%d}`, recs[0].ID)}, nil
	}
}

func testIdempotent(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice, bob := memberID(t, db, "alice@example.com"), memberID(t, db, "bob@example.com")
	book := createBook(t, db, "Idempotent", 5)
	var runs atomic.Int64
	req := func(member int64, key, fp string) library.IdempotentRequest {
		return library.IdempotentRequest{MemberID: member, Key: key, Fingerprint: fp}
	}

	first, replayed, err := db.Idempotent(ctx, req(alice, "k1", "fp-a"), BorrowChange(alice, book.ID, &runs))
	if err != nil || replayed || first.Status != 201 || runs.Load() != 1 {
		t.Fatalf("first: got %+v replayed=%v err=%v runs=%d, want a stored 201 after one run", first, replayed, err, runs.Load())
	}

	cases := []struct {
		name         string
		req          library.IdempotentRequest
		change       func(library.Writes) (library.StoredResponse, error)
		wantCode     string
		wantReplayed bool
		wantRuns     int64 // runs of the change this case adds
		wantSame     bool  // the answer is first's, byte for byte
	}{
		{"the same request again is replayed", req(alice, "k1", "fp-a"), BorrowChange(alice, book.ID, &runs), "", true, 0, true},
		{"another request under the key is refused", req(alice, "k1", "fp-b"), BorrowChange(alice, book.ID, &runs), library.EKEYREUSED, false, 0, false},
		{"another member's key of the same name is theirs", req(bob, "k1", "fp-a"), BorrowChange(bob, book.ID, &runs), "", false, 1, false},
		{"an empty key", req(alice, "", "fp-a"), BorrowChange(alice, book.ID, &runs), library.EINVALID, false, 0, false},
		{"a key of 256 bytes", req(alice, strings.Repeat("k", 256), "fp-a"), BorrowChange(alice, book.ID, &runs), library.EINVALID, false, 0, false},
		{"a key with a control character", req(alice, "k\n1", "fp-a"), BorrowChange(alice, book.ID, &runs), library.EINVALID, false, 0, false},
		{"a key of 255 printable bytes", req(alice, strings.Repeat("~", 255), "fp-a"), BorrowChange(alice, book.ID, &runs), "", false, 1, false},
		{"no fingerprint is a bug", req(alice, "k2", ""), BorrowChange(alice, book.ID, &runs), library.EINTERNAL, false, 0, false},
		{"a change that fails stores nothing", req(alice, "k3", "fp-a"), func(w library.Writes) (library.StoredResponse, error) {
			runs.Add(1)
			_, err := w.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{1 << 40}})
			return library.StoredResponse{}, err
		}, library.ENOTFOUND, false, 1, false},
		{"so the key is free for the retry", req(alice, "k3", "fp-a"), BorrowChange(alice, book.ID, &runs), "", false, 1, false},
		{"a non-2xx answer is never stored", req(alice, "k4", "fp-a"), func(library.Writes) (library.StoredResponse, error) {
			return library.StoredResponse{Status: 409, Body: []byte("{}")}, nil
		}, library.EINTERNAL, false, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := runs.Load()
			got, replayed, err := db.Idempotent(ctx, c.req, c.change)
			checkCode(t, err, c.wantCode)
			if replayed != c.wantReplayed {
				t.Errorf("replayed: got %v, want %v", replayed, c.wantReplayed)
			}
			if n := runs.Load() - before; n != c.wantRuns {
				t.Errorf("the change ran %d times, want %d", n, c.wantRuns)
			}
			if c.wantSame && (got.Status != first.Status || !bytes.Equal(got.Body, first.Body)) {
				t.Errorf("answer: got %d %s, want %d %s", got.Status, got.Body, first.Status, first.Body)
			}
		})
	}
	c := checkConsistent(t, db)
	if c.KeyedBorrows != 4 {
		t.Errorf("borrows made under a key: got %d, want 4 (alice k1, bob k1, the long key, k3)", c.KeyedBorrows)
	}
}

// testIdempotentConcurrent sends one key from several goroutines through
// two handles on one file, as two replica processes would: SQLite's one
// writer serialises them, so the change runs once and every caller gets
// the same answer.
func testIdempotentConcurrent(t *testing.T, be Backend) {
	ctx := context.Background()
	name := be.New(t)
	dbs := []Store{be.Open(t, name), be.Open(t, name)}
	alice := memberID(t, dbs[0], "alice@example.com")
	book := createBook(t, dbs[0], "Contended", 10)
	var runs atomic.Int64
	const callers = 8
	bodies := make([][]byte, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			resp, _, err := dbs[i%2].Idempotent(ctx, library.IdempotentRequest{MemberID: alice, Key: "once", Fingerprint: "fp"}, BorrowChange(alice, book.ID, &runs))
			bodies[i], errs[i] = resp.Body, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 1 {
		t.Errorf("the change ran %d times, want once", runs.Load())
	}
	for i, b := range bodies {
		if !bytes.Equal(b, bodies[0]) {
			t.Errorf("caller %d got %s, caller 0 got %s", i, b, bodies[0])
		}
	}
	if got := available(t, dbs[0], book.ID); got != 9 {
		t.Errorf("copies on the shelf: got %d, want 9: one borrow", got)
	}
}

// testIdempotentWrites checks that every write an idempotent request may
// make is bound to the key's transaction: a change that fails after a
// write leaves nothing behind.
func testIdempotentWrites(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice := memberID(t, db, "alice@example.com")
	book := createBook(t, db, "Rolled back", 1)
	rec, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}})
	if err != nil {
		t.Fatal(err)
	}
	errLater := library.Errorf(library.ECONFLICT, "something after the write failed")
	for _, c := range []struct {
		name  string
		write func(library.Writes) error
	}{
		{"create book", func(w library.Writes) error {
			_, err := w.CreateBook(ctx, library.Book{Title: "Never", Author: "Nobody", Copies: 1})
			return err
		}},
		{"borrow", func(w library.Writes) error {
			_, err := w.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{1}})
			return err
		}},
		{"return", func(w library.Writes) error {
			_, err := w.ReturnBorrow(ctx, alice, rec[0].ID)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, total, _ := db.FindBooks(ctx, library.BookFilter{Limit: 1})
			borrows, _, _ := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice, Limit: 100})
			_, _, err := db.Idempotent(ctx, library.IdempotentRequest{MemberID: alice, Key: c.name, Fingerprint: "fp"},
				func(w library.Writes) (library.StoredResponse, error) {
					if err := c.write(w); err != nil {
						t.Fatalf("write: %v", err)
					}
					return library.StoredResponse{}, errLater
				})
			checkCode(t, err, library.ECONFLICT)
			_, total2, _ := db.FindBooks(ctx, library.BookFilter{Limit: 1})
			borrows2, _, _ := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice, Limit: 100})
			if total2 != total || len(borrows2) != len(borrows) || borrows2[0].Returned {
				t.Errorf("after a rolled-back change: %d books (was %d), %d borrows (was %d), newest returned=%v", total2, total, len(borrows2), len(borrows), borrows2[0].Returned)
			}
		})
	}
	checkConsistent(t, db)
}

func testIdempotencyKeysExpireAndSweep(t *testing.T, be Backend) {
	ctx := context.Background()
	name := be.New(t)
	db := be.Open(t, name)
	alice := memberID(t, db, "alice@example.com")
	book := createBook(t, db, "Old key", 5)
	var runs atomic.Int64
	for _, k := range []string{"old", "new"} {
		if _, _, err := db.Idempotent(ctx, library.IdempotentRequest{MemberID: alice, Key: k, Fingerprint: "fp"}, BorrowChange(alice, book.ID, &runs)); err != nil {
			t.Fatal(err)
		}
	}
	// Age one key past the TTL behind the store's back.
	raw := be.Raw(t, name)
	// A time literal both databases read: SQLite keeps this text as it
	// is, PostgreSQL reads it as a timestamptz.
	old := time.Now().Add(-library.IdempotencyKeyTTL - time.Minute).UTC().Format("2006-01-02T15:04:05.000000000Z")
	if _, err := raw.Exec(`UPDATE idempotency_keys SET created_at = '` + old + `' WHERE key = 'old'`); err != nil {
		t.Fatal(err)
	}

	// An expired key no longer names its request: the same key makes a
	// new change, while a key still in its day is replayed.
	runs.Store(0)
	for _, k := range []string{"old", "new"} {
		_, replayed, err := db.Idempotent(ctx, library.IdempotentRequest{MemberID: alice, Key: k, Fingerprint: "fp"}, BorrowChange(alice, book.ID, &runs))
		if err != nil || replayed != (k == "new") {
			t.Errorf("key %q: replayed=%v, err=%v; want a replay only for the key in its day", k, replayed, err)
		}
	}
	if runs.Load() != 1 {
		t.Errorf("the change ran %d times, want once (for the expired key)", runs.Load())
	}
	if _, err := raw.Exec(`UPDATE idempotency_keys SET created_at = '` + old + `' WHERE key = 'new'`); err != nil {
		t.Fatal(err)
	}
	n, err := db.SweepIdempotencyKeys(ctx, time.Now().Add(-library.IdempotencyKeyTTL))
	if err != nil || n != 1 {
		t.Fatalf("sweep: got %d, %v; want 1 key forgotten", n, err)
	}
	if got := RawKeys(t, raw); !slices.Equal(got, []string{"old"}) {
		t.Errorf("keys after the sweep: %v, want [old], stored again a moment ago", got)
	}
}

// RawKeys lists the idempotency keys stored, read behind the store's back.
func RawKeys(t *testing.T, raw *sql.DB) []string {
	t.Helper()
	rows, err := raw.Query(`SELECT key FROM idempotency_keys ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// testCheckConsistencyAppliedTwice makes what the key prevents behind the
// store's back — a second borrow of the same book under the same key — and
// checks that the end-of-run check sees it.
func testCheckConsistencyAppliedTwice(t *testing.T, be Backend) {
	ctx := context.Background()
	name := be.New(t)
	db := be.Open(t, name)
	alice := memberID(t, db, "alice@example.com")
	book := createBook(t, db, "Twice", 3)
	var runs atomic.Int64
	if _, _, err := db.Idempotent(ctx, library.IdempotentRequest{MemberID: alice, Key: "k", Fingerprint: "fp"}, BorrowChange(alice, book.ID, &runs)); err != nil {
		t.Fatal(err)
	}
	first := checkConsistent(t, db)
	if first.KeyedBorrows != 1 || len(first.AppliedTwice) != 0 {
		t.Fatalf("before: %+v, want 1 keyed borrow applied once", first)
	}
	raw := be.Raw(t, name)
	// The copies still add up: only the key gives the double away.
	for _, q := range []string{
		`INSERT INTO borrows (book_id, member_id, borrower_name, borrow_date, due_date, idempotency_key)
		 SELECT book_id, member_id, borrower_name, borrow_date, due_date, idempotency_key FROM borrows WHERE idempotency_key = 'k'`,
		`UPDATE books SET available_copies = available_copies - 1 WHERE id = ` + fmt.Sprint(book.ID),
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.CheckConsistency(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.AppliedTwice) != 2 || got.OK() || len(got.Mismatched) != 0 {
		t.Errorf("after a second borrow under the key: %+v, want both borrows in AppliedTwice, OK false, copies adding up", got)
	}
}
