package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/statelab/statelab/internal/library"
)

func BenchmarkFindBookByID(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, newDatabase(b))
	book, err := db.CreateBook(ctx, library.Book{Title: "Benchmarked", Author: "A", Copies: 1})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := db.FindBookByID(ctx, book.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindAPIKey(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, newDatabase(b))
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		b.Fatal(err)
	}
	if err := db.CreateAPIKey(ctx, library.APIKey{ID: "bench", MemberID: alice.ID, Hash: []byte{1}}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := db.FindAPIKey(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChangeCheck is what a read cache on PostgreSQL would pay on
// every hit to know, exactly, that no replica has committed since the
// entry was read: one round trip for the server's snapshot (any commit
// anywhere changes it). Compare it with BenchmarkFindBookByID and
// BenchmarkFindAPIKey, the reads it would save.
func BenchmarkChangeCheck(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, newDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var snapshot string
	for b.Loop() {
		if err := pool.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&snapshot); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBorrowReturn(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, newDatabase(b))
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		b.Fatal(err)
	}
	book, err := db.CreateBook(ctx, library.Book{Title: "Benchmarked", Author: "A", Copies: 1})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		recs, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice.ID, BookIDs: []int64{book.ID}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.ReturnBorrow(ctx, alice.ID, recs[0].ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindBooks reads the first page of the catalog with its total,
// the read the catalog's page makes.
func BenchmarkFindBooks(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, newDatabase(b))
	for b.Loop() {
		if _, _, err := db.FindBooks(ctx, library.BookFilter{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindBooks_Query searches the catalog.
func BenchmarkFindBooks_Query(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, newDatabase(b))
	for b.Loop() {
		if _, _, err := db.FindBooks(ctx, library.BookFilter{Query: "austen"}); err != nil {
			b.Fatal(err)
		}
	}
}
