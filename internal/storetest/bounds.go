package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

// testBorrow_LoanLimit: a member has at most MaxActiveLoans copies out,
// whatever the requests; a borrow past it is refused ELOANLIMIT and takes
// nothing, and a return makes room again.
func testBorrow_LoanLimit(t *testing.T, be Backend) {
	db := be.fresh(t)
	ctx := context.Background()
	alice, bob := memberID(t, db, "alice@example.com"), memberID(t, db, "bob@example.com")
	shelf := createBook(t, db, "Many copies", library.MaxActiveLoans+20)
	other := createBook(t, db, "Another", 5)
	var first library.BorrowRecord
	for i := range library.MaxActiveLoans {
		recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{shelf.ID}})
		if err != nil {
			t.Fatalf("loan %d of %d: %v", i+1, library.MaxActiveLoans, err)
		}
		if i == 0 {
			first = recs[0]
		}
	}
	for _, ids := range [][]int64{{shelf.ID}, {other.ID}, {shelf.ID, other.ID}} {
		_, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: ids})
		checkCode(t, err, library.ELOANLIMIT)
	}
	if got, want := available(t, db, other.ID), 5; got != want {
		t.Errorf("copies of the other book after refused borrows: %d, want %d", got, want)
	}
	// Another member is not held back.
	if _, err := db.Borrow(ctx, library.BorrowRequest{MemberID: bob, BookIDs: []int64{shelf.ID, other.ID}}); err != nil {
		t.Errorf("bob: %v", err)
	}
	if _, err := db.ReturnBorrow(ctx, alice, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{other.ID}}); err != nil {
		t.Errorf("after a return: %v", err)
	}
	checkConsistent(t, db)
}

// testBorrow_LoanLimitAcrossHandles: borrows of one member at once through
// two handles (two replicas) cannot pass the limit between them.
func testBorrow_LoanLimitAcrossHandles(t *testing.T, be Backend) {
	name := be.New(t)
	stores := []Store{be.Open(t, name), be.Open(t, name)}
	ctx := context.Background()
	alice := memberID(t, stores[0], "alice@example.com")
	shelf := createBook(t, stores[0], "Raced for", library.MaxActiveLoans+20)
	for range library.MaxActiveLoans - 3 {
		if _, err := stores[0].Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{shelf.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg   sync.WaitGroup
		lent atomic.Int64
	)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%2].Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{shelf.ID}})
			switch library.ErrorCode(err) {
			case "":
				lent.Add(1)
			case library.ELOANLIMIT:
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if lent.Load() != 3 {
		t.Errorf("borrows lent at once through two handles: %d of 12, want the 3 left under the limit", lent.Load())
	}
	if got, want := available(t, stores[1], shelf.ID), 20; got != want {
		t.Errorf("copies left: %d, want %d", got, want)
	}
}

// testReturnBorrow_HistoryBounded: a member's returned records beyond the
// newest MaxReturnedBorrows are forgotten at the next return; active
// loans, and other members' records, are kept.
func testReturnBorrow_HistoryBounded(t *testing.T, be Backend) {
	name := be.New(t)
	db := be.Open(t, name)
	ctx := context.Background()
	alice, bob := memberID(t, db, "alice@example.com"), memberID(t, db, "bob@example.com")
	book := createBook(t, db, "Read often", 10)
	out, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}})
	if err != nil {
		t.Fatal(err)
	}
	// Old history, made behind the store's back: MaxReturnedBorrows+50
	// returned records of alice's, and 10 of bob's, copies of one each
	// returned through the store.
	raw := be.Raw(t, name)
	insert := func(member int64, n int) {
		t.Helper()
		recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: member, BookIDs: []int64{book.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ReturnBorrow(ctx, member, recs[0].ID); err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO borrows (book_id, member_id, borrower_name, borrow_date, due_date, returned_at)
			SELECT b.book_id, b.member_id, b.borrower_name, b.borrow_date, b.due_date, b.returned_at FROM n, borrows b WHERE b.id = %d`,
			n-1, recs[0].ID)
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	insert(alice, library.MaxReturnedBorrows+50)
	insert(bob, 10)

	now, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReturnBorrow(ctx, alice, now[0].ID); err != nil {
		t.Fatal(err)
	}
	_, total, err := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := library.MaxReturnedBorrows + 1; total != want {
		t.Errorf("alice's records after a return: %d, want %d returned and 1 out", total, want)
	}
	if ok, err := db.BorrowExists(ctx, out[0].ID); err != nil || !ok {
		t.Errorf("alice's active loan: exists %v, %v; want kept", ok, err)
	}
	if ok, err := db.BorrowExists(ctx, now[0].ID); err != nil || !ok {
		t.Errorf("the record just returned: exists %v, %v; want kept, the newest", ok, err)
	}
	if _, total, err := db.FindBorrows(ctx, library.BorrowFilter{MemberID: bob, Limit: 1}); err != nil || total != 10 {
		t.Errorf("bob's records: %d, %v; want his 10", total, err)
	}
}

// testIdempotent_RepliesBounded: a member's stored answers are at most
// MaxStoredReplies and MaxStoredReplyBytes: storing one more forgets the
// oldest, whose key then names nothing; the newest are still replayed,
// and another member's are not touched.
func testIdempotent_RepliesBounded(t *testing.T, be Backend) {
	name := be.New(t)
	db := be.Open(t, name)
	ctx := context.Background()
	alice, bob := memberID(t, db, "alice@example.com"), memberID(t, db, "bob@example.com")
	reply := func(size int) func(library.Writes) (library.StoredResponse, error) {
		return func(w library.Writes) (library.StoredResponse, error) {
			return library.StoredResponse{Status: 200, Body: []byte(strings.Repeat("x", size))}, nil
		}
	}
	store := func(member int64, key string, size int) bool {
		t.Helper()
		_, replayed, err := db.Idempotent(ctx, library.IdempotentRequest{MemberID: member, Key: key, Fingerprint: "fp"}, reply(size))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return replayed
	}
	store(bob, "bob-1", 10)
	for i := range library.MaxStoredReplies + 5 {
		store(alice, fmt.Sprintf("count-%03d", i), 10)
	}
	raw := be.Raw(t, name)
	count := func(member int64) (n, bytes int) {
		t.Helper()
		if err := raw.QueryRow(fmt.Sprintf(`SELECT count(*), coalesce(sum(length(body)), 0) FROM idempotency_keys WHERE member_id = %d`, member)).Scan(&n, &bytes); err != nil {
			t.Fatal(err)
		}
		return n, bytes
	}
	if n, _ := count(alice); n != library.MaxStoredReplies {
		t.Errorf("alice's keys after %d: %d, want %d", library.MaxStoredReplies+5, n, library.MaxStoredReplies)
	}
	if !store(alice, fmt.Sprintf("count-%03d", library.MaxStoredReplies+4), 10) {
		t.Error("the newest key: not replayed")
	}
	if store(alice, "count-000", 10) {
		t.Error("the oldest key: replayed, want it forgotten")
	}

	// Large answers: the bytes bound holds before the count does.
	size := library.MaxStoredReplyBytes / 10
	for i := range 15 {
		store(alice, fmt.Sprintf("big-%02d", i), size)
	}
	if n, bytes := count(alice); bytes > library.MaxStoredReplyBytes || n > 10 {
		t.Errorf("alice's stored answers: %d keys of %d bytes, want at most %d bytes", n, bytes, library.MaxStoredReplyBytes)
	}
	if !store(alice, "big-14", size) {
		t.Error("the newest large answer: not replayed")
	}
	if n, _ := count(bob); n != 1 {
		t.Errorf("bob's keys: %d, want his 1", n)
	}
}
