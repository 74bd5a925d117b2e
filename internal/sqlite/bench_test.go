package sqlite_test

import (
	"context"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

func BenchmarkFindBookByID(b *testing.B) {
	ctx := context.Background()
	db := newDB(b)
	book := createBook(b, db, "Benchmarked", 1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.FindBookByID(ctx, book.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBorrowReturn(b *testing.B) {
	ctx := context.Background()
	db := newDB(b)
	member := memberID(b, db, "alice@example.com")
	book := createBook(b, db, "Benchmarked", 1)
	b.ResetTimer()
	for b.Loop() {
		recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: member, BookIDs: []int64{book.ID}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.ReturnBorrow(ctx, member, recs[0].ID); err != nil {
			b.Fatal(err)
		}
	}
}
