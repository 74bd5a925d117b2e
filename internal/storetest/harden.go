package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// testFindBooks_LongAndWildcardQueries: a search of 50,000 bytes, or of
// 25,000 '%' (which escaping doubles), made SQLite fail with "LIKE or GLOB
// pattern too complex", a 500. Over the cap it is a bad request before any
// query; within it, LIKE's own wildcards are matched literally and never fail.
func testFindBooks_LongAndWildcardQueries(t *testing.T, be Backend) {
	db := be.fresh(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		filter   library.BookFilter
		wantCode string
	}{
		{"q of 50,000 bytes", library.BookFilter{Query: strings.Repeat("a", 50_000)}, library.EINVALID},
		{"q of 25,000 %", library.BookFilter{Query: strings.Repeat("%", 25_000)}, library.EINVALID},
		{"author of 50,000 bytes", library.BookFilter{Author: strings.Repeat("b", 50_000)}, library.EINVALID},
		{"q one byte over the cap", library.BookFilter{Query: strings.Repeat("x", library.MaxQueryBytes+1)}, library.EINVALID},
		{"q of 200 %", library.BookFilter{Query: strings.Repeat("%", library.MaxQueryBytes)}, ""},
		{"q of 200 _", library.BookFilter{Query: strings.Repeat("_", library.MaxQueryBytes)}, ""},
		{"author of 200 \\", library.BookFilter{Author: strings.Repeat(`\`, library.MaxQueryBytes)}, ""},
		{"q of 200 %_\\ mixed", library.BookFilter{Query: strings.Repeat(`%_\`, library.MaxQueryBytes/3)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			books, total, err := db.FindBooks(ctx, tt.filter)
			if got := library.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("got code %q (%v), want %q", got, err, tt.wantCode)
			}
			if err == nil && (len(books) != 0 || total != 0) {
				t.Errorf("got %d books (total %d), want none: wildcards must match literally", len(books), total)
			}
		})
	}
}

// testBookAndBorrow_TextCaps: every free-text field a client sets is
// capped, on create, on update and on a borrow.
func testBookAndBorrow_TextCaps(t *testing.T, be Backend) {
	db := be.fresh(t)
	ctx := context.Background()
	b := createBook(t, db, "Capped", 2)
	long := func(n int) *string { s := strings.Repeat("x", n); return &s }
	alice := memberID(t, db, "alice@example.com")

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"create: title at the cap", func() error {
			_, err := db.CreateBook(ctx, library.Book{Title: *long(library.MaxTitleBytes), Author: "A", Copies: 1})
			return err
		}, ""},
		{"create: title over", func() error {
			_, err := db.CreateBook(ctx, library.Book{Title: *long(library.MaxTitleBytes + 1), Author: "A", Copies: 1})
			return err
		}, library.EINVALID},
		{"create: author over", func() error {
			_, err := db.CreateBook(ctx, library.Book{Title: "T", Author: *long(library.MaxAuthorBytes + 1), Copies: 1})
			return err
		}, library.EINVALID},
		{"create: isbn over", func() error {
			_, err := db.CreateBook(ctx, library.Book{Title: "T", Author: "A", ISBN: *long(library.MaxISBNBytes + 1), Copies: 1})
			return err
		}, library.EINVALID},
		{"update: title over", func() error {
			_, err := db.UpdateBook(ctx, b.ID, library.BookUpdate{Title: long(library.MaxTitleBytes + 1)})
			return err
		}, library.EINVALID},
		{"borrow: name over", func() error {
			_, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{b.ID}, BorrowerName: *long(library.MaxBorrowerNameBytes + 1)})
			return err
		}, library.EINVALID},
		{"borrow: name at the cap", func() error {
			_, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{b.ID}, BorrowerName: *long(library.MaxBorrowerNameBytes)})
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := library.ErrorCode(tt.call()); got != tt.want {
				t.Errorf("got code %q, want %q", got, tt.want)
			}
		})
	}
}

// testFindBorrows_Pages: a member's records come in pages, newest first,
// with the total of all of them.
func testFindBorrows_Pages(t *testing.T, be Backend) {
	db := be.fresh(t)
	ctx := context.Background()
	alice := memberID(t, db, "alice@example.com")
	var ids []int64
	for i := range 5 {
		b := createBook(t, db, fmt.Sprintf("Paged %d", i), 1)
		recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{b.ID}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]int64{recs[0].ID}, ids...) // newest first
	}
	tests := []struct {
		limit, offset int
		want          []int64
	}{
		{0, 0, ids}, // the default page holds them all
		{2, 0, ids[:2]},
		{2, 2, ids[2:4]},
		{2, 4, ids[4:]},
		{2, 9, nil},
	}
	for _, tt := range tests {
		recs, total, err := db.FindBorrows(ctx, library.BorrowFilter{MemberID: alice, Limit: tt.limit, Offset: tt.offset})
		if err != nil || total != 5 {
			t.Fatalf("limit %d offset %d: total %d, %v; want 5, nil", tt.limit, tt.offset, total, err)
		}
		var got []int64
		for _, r := range recs {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("limit %d offset %d: got %v, want %v", tt.limit, tt.offset, got, tt.want)
		}
	}
}

// testCreateAPIKey_CapRevokesOldest: a member holds at most
// MaxAPIKeysPerMember keys; the next one revokes the oldest, and another
// member's keys are untouched.
func testCreateAPIKey_CapRevokesOldest(t *testing.T, be Backend) {
	db := be.fresh(t)
	ctx := context.Background()
	alice, bob := memberID(t, db, "alice@example.com"), memberID(t, db, "bob@example.com")
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(member int64, i int) string {
		id := fmt.Sprintf("%02d%014d", member, i)
		if err := db.CreateAPIKey(ctx, library.APIKey{ID: id, MemberID: member, Hash: []byte{1}, CreatedAt: start.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	bobKey := mk(bob, 0)
	var keys []string
	for i := range library.MaxAPIKeysPerMember + 3 {
		keys = append(keys, mk(alice, i))
	}
	for i, id := range keys {
		_, _, err := db.FindAPIKey(ctx, id)
		revoked := library.ErrorCode(err) == library.ENOTFOUND
		if wantRevoked := i < 3; revoked != wantRevoked {
			t.Errorf("key %d of %d: revoked %v, want %v (%v)", i+1, len(keys), revoked, wantRevoked, err)
		}
	}
	if _, _, err := db.FindAPIKey(ctx, bobKey); err != nil {
		t.Errorf("bob's key after alice's went over the cap: %v", err)
	}
}
