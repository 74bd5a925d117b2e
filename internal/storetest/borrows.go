package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
)

func testBorrow_Invalid(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice := memberID(t, db, "alice@example.com")
	book := createBook(t, db, "Valid", 5)
	tooMany := make([]int64, 51)
	for i := range tooMany {
		tooMany[i] = int64(i + 1)
	}

	tests := []struct {
		name string
		req  library.BorrowRequest
		code string
	}{
		{"no books", library.BorrowRequest{MemberID: alice}, library.EINVALID},
		{"51 books", library.BorrowRequest{MemberID: alice, BookIDs: tooMany}, library.EINVALID},
		{"duplicate book", library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID, book.ID}}, library.EINVALID},
		{"negative days", library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}, Days: -1}, library.EINVALID},
		{"too many days", library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}, Days: library.MaxLoanDays + 1}, library.EINVALID},
		{"missing book", library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID, book.ID + 1000}}, library.ENOTFOUND},
		{"missing member", library.BorrowRequest{MemberID: 999999, BookIDs: []int64{book.ID}}, library.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := db.Borrow(ctx, tt.req)
			checkCode(t, err, tt.code)
			if recs != nil {
				t.Errorf("records: got %v, want nil", recs)
			}
			if got := available(t, db, book.ID); got != 5 {
				t.Errorf("available copies: got %d, want 5", got)
			}
		})
	}
	var e *library.Error
	if _, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID + 1000}}); errors.As(err, &e) {
		if want := fmt.Sprint(book.ID + 1000); !strings.Contains(e.Message, want) {
			t.Errorf("message: got %q, want it to name book %s", e.Message, want)
		}
	}
}

func testBorrow(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	a, b := createBook(t, db, "First", 2), createBook(t, db, "Second", 1)

	tests := []struct {
		name     string
		req      library.BorrowRequest
		wantName string
		wantDays int
	}{
		{"defaults", library.BorrowRequest{MemberID: alice.ID, BookIDs: []int64{a.ID, b.ID}}, "Alice Liddell", library.DefaultLoanDays},
		{"name and days", library.BorrowRequest{MemberID: alice.ID, BookIDs: []int64{a.ID}, BorrowerName: "  Dinah  ", Days: 3}, "Dinah", 3},
	}
	var all []library.BorrowRecord
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			recs, err := db.Borrow(ctx, tt.req)
			if err != nil {
				t.Fatalf("Borrow: %v", err)
			}
			if len(recs) != len(tt.req.BookIDs) {
				t.Fatalf("records: got %d, want %d", len(recs), len(tt.req.BookIDs))
			}
			for i, r := range recs {
				if r.ID == 0 || r.BookID != tt.req.BookIDs[i] || r.MemberID != alice.ID ||
					r.BorrowerEmail != alice.Email || r.BorrowerName != tt.wantName || r.Returned || r.ReturnDate != nil {
					t.Errorf("record %d: got %+v", i, r)
				}
				if r.BorrowDate.Before(before.Add(-time.Second)) || r.BorrowDate.Location() != time.UTC {
					t.Errorf("borrow date: got %v, want a UTC time from now", r.BorrowDate)
				}
				if got, want := r.DueDate.Sub(r.BorrowDate), time.Duration(tt.wantDays)*24*time.Hour; got != want {
					t.Errorf("loan: got %v, want %v", got, want)
				}
			}
			if recs[0].BookTitle != "First" {
				t.Errorf("title: got %q, want %q", recs[0].BookTitle, "First")
			}
			all = append(recs, all...)
		})
	}
	if got := available(t, db, a.ID); got != 0 {
		t.Errorf("copies of First on the shelf: got %d, want 0", got)
	}
	if got := available(t, db, b.ID); got != 0 {
		t.Errorf("copies of Second on the shelf: got %d, want 0", got)
	}

	// The stored records read back exactly as Borrow returned them, newest
	// first, times and all.
	got, total, err := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice.ID})
	if err != nil || total != 3 {
		t.Fatalf("FindBorrows: total %d, %v; want 3, nil", total, err)
	}
	want := []library.BorrowRecord{all[0], all[2], all[1]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FindBorrows:\n got %+v\nwant %+v", got, want)
	}
	// A page past the end has no row to carry the total; it is counted.
	for _, f := range []library.BorrowFilter{{MemberID: alice.ID, Offset: 3}, {MemberID: alice.ID, Limit: 1, Offset: 2}} {
		page, total, err := db.FindBorrows(ctx, f)
		if err != nil || total != 3 || len(page) != 3-f.Offset {
			t.Errorf("FindBorrows(%+v): got %d records, total %d, %v; want %d, 3, nil", f, len(page), total, err, 3-f.Offset)
		}
	}
	if c := checkConsistent(t, db); c.ActiveBorrows != 3 {
		t.Errorf("active borrows: got %d, want 3", c.ActiveBorrows)
	}
	if got, _, err := db.FindBorrows(ctx, library.BorrowFilter{MemberID: memberID(t, db, "bob@example.com")}); err != nil || len(got) != 0 {
		t.Errorf("bob's borrows: got %v, %v, want none", got, err)
	}
}

func testBorrow_AllOrNothing(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice := memberID(t, db, "alice@example.com")
	plenty, gone, lastOne := createBook(t, db, "Plenty", 3), createBook(t, db, "Gone Girl", 0), createBook(t, db, "Last One", 1)

	_, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{plenty.ID, gone.ID, lastOne.ID}})
	checkCode(t, err, library.EUNAVAILABLE)
	var e *library.Error
	errors.As(err, &e)
	wantDetail := map[string]any{"unavailable_book_ids": []int64{gone.ID}}
	if !reflect.DeepEqual(e.Detail, wantDetail) {
		t.Errorf("detail: got %#v, want %#v", e.Detail, wantDetail)
	}
	if want := fmt.Sprintf("No copy left of book %d (Gone Girl)", gone.ID); e.Message != want {
		t.Errorf("message: got %q, want %q", e.Message, want)
	}
	tests := []struct {
		book library.Book
		want int
	}{
		{plenty, 3},
		{gone, 0},
		{lastOne, 1},
	}
	for _, tt := range tests {
		if got := available(t, db, tt.book.ID); got != tt.want {
			t.Errorf("%s on the shelf: got %d, want %d", tt.book.Title, got, tt.want)
		}
	}
	if got, _, _ := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice}); len(got) != 0 {
		t.Errorf("borrows after a refused request: got %d, want 0", len(got))
	}
	checkConsistent(t, db)
}

func testReturnBorrow(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice, bob := memberID(t, db, "alice@example.com"), memberID(t, db, "bob@example.com")
	book := createBook(t, db, "Boomerang", 1)
	recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{book.ID}})
	if err != nil {
		t.Fatal(err)
	}
	id := recs[0].ID

	tests := []struct {
		name      string
		member    int64
		borrow    int64
		code      string
		available int
	}{
		{"missing borrow", alice, id + 1000, library.ENOTFOUND, 0},
		{"someone else's", bob, id, library.EFORBIDDEN, 0},
		{"own", alice, id, "", 1},
		{"already returned", alice, id, library.ECONFLICT, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.ReturnBorrow(ctx, tt.member, tt.borrow)
			checkCode(t, err, tt.code)
			if n := available(t, db, book.ID); n != tt.available {
				t.Errorf("on the shelf: got %d, want %d", n, tt.available)
			}
			if err != nil {
				return
			}
			if !got.Returned || got.ReturnDate == nil || got.ID != id || got.BookTitle != "Boomerang" {
				t.Errorf("got %+v, want borrow %d returned", got, id)
			}
			stored, _, err := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice})
			if err != nil || len(stored) != 1 || !reflect.DeepEqual(stored[0], got) {
				t.Errorf("stored: got %+v, %v, want %+v", stored, err, got)
			}
		})
	}
	if ok, err := db.BorrowExists(ctx, id); err != nil || !ok {
		t.Errorf("BorrowExists(%d): got %v, %v, want true, nil", id, ok, err)
	}
	if ok, err := db.BorrowExists(ctx, id+1000); err != nil || ok {
		t.Errorf("BorrowExists(%d): got %v, %v, want false, nil", id+1000, ok, err)
	}
	if c := checkConsistent(t, db); c.ActiveBorrows != 0 {
		t.Errorf("active borrows: got %d, want 0", c.ActiveBorrows)
	}
}

// testBorrow_LastCopyRace opens the database twice, as two server
// processes would, and lets 40 members race for one copy.
func testBorrow_LastCopyRace(t *testing.T, be Backend) {
	name := be.New(t)
	LastCopyRace(t, []Store{be.Open(t, name), be.Open(t, name)}, 40, 1)
}

// LastCopyRace lets borrowers members (the load-test members, spread over
// stores, handles on one database as replicas hold them) race for the one
// copy of a new book, trials times, each time with a new book: exactly one
// borrow may succeed, and every other must be refused EUNAVAILABLE.
func LastCopyRace(t *testing.T, stores []Store, borrowers, trials int) {
	t.Helper()
	ctx := context.Background()
	members := make([]int64, borrowers)
	for i := range members {
		members[i] = memberID(t, stores[i%len(stores)], seed.LoadTestEmail(i+1))
	}
	for trial := range trials {
		book := createBook(t, stores[0], fmt.Sprintf("The Last Copy %d", trial+1), 1)
		errs := make([]error, borrowers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, member := range members {
			db := stores[i%len(stores)]
			wg.Go(func() {
				<-start
				_, errs[i] = db.Borrow(ctx, library.BorrowRequest{MemberID: member, BookIDs: []int64{book.ID}})
			})
		}
		close(start)
		wg.Wait()

		codes := map[string]int{}
		for _, err := range errs {
			codes[library.ErrorCode(err)]++
		}
		want := map[string]int{"": 1, library.EUNAVAILABLE: borrowers - 1}
		if !reflect.DeepEqual(codes, want) {
			t.Errorf("trial %d: outcomes by error code: got %v, want %v (first error: %v)", trial+1, codes, want, errors.Join(errs...))
		}
		for _, db := range stores {
			if got := available(t, db, book.ID); got != 0 {
				t.Errorf("trial %d: on the shelf: got %d, want 0", trial+1, got)
			}
			if c := checkConsistent(t, db); c.ActiveBorrows != trial+1 {
				t.Errorf("trial %d: active borrows: got %d, want %d", trial+1, c.ActiveBorrows, trial+1)
			}
		}
	}
}

// testBorrow_ChurnAcrossProcesses borrows and returns from two handles at
// once and checks that no copy is lost or made up.
func testBorrow_ChurnAcrossProcesses(t *testing.T, be Backend) {
	ctx := context.Background()
	name := be.New(t)
	dbs := []Store{be.Open(t, name), be.Open(t, name)}
	books := []int64{createBook(t, dbs[0], "Churn A", 2).ID, createBook(t, dbs[0], "Churn B", 1).ID}

	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		db := dbs[w%len(dbs)]
		member := memberID(t, db, seed.LoadTestEmail(w+1))
		wg.Go(func() {
			for range rounds {
				recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: member, BookIDs: books})
				if library.ErrorCode(err) == library.EUNAVAILABLE {
					continue
				} else if err != nil {
					errs <- err
					return
				}
				for _, r := range recs {
					if _, err := db.ReturnBorrow(ctx, member, r.ID); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if c := checkConsistent(t, dbs[1]); c.ActiveBorrows != 0 {
		t.Errorf("active borrows: got %d, want 0", c.ActiveBorrows)
	}
	if got := available(t, dbs[1], books[0]); got != 2 {
		t.Errorf("Churn A on the shelf: got %d, want 2", got)
	}
}
