package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/postgres"
)

// benchReads runs read against a database opened with the read cache
// ("cache") and without it ("nocache").
func benchReads(b *testing.B, read func(db *postgres.DB) error) {
	for _, c := range []struct {
		name string
		opts []postgres.Option
	}{{"cache", nil}, {"nocache", []postgres.Option{postgres.WithoutCache()}}} {
		b.Run(c.name, func(b *testing.B) {
			db := openDB(b, newDatabase(b), c.opts...)
			for b.Loop() {
				if err := read(db); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFindBookByID reads a book, from the server every time.
func BenchmarkFindBookByID(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, newDatabase(b))
	for b.Loop() {
		if _, err := db.FindBookByID(ctx, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindAPIKey checks a bearer key, from the server every time: the
// price of a key on PostgreSQL.
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

// BenchmarkFindBooks reads the first page of the catalog with its total,
// the read the catalog's page makes.
func BenchmarkFindBooks(b *testing.B) {
	ctx := context.Background()
	benchReads(b, func(db *postgres.DB) error {
		_, _, err := db.FindBooks(ctx, library.BookFilter{})
		return err
	})
}

// BenchmarkFindBooks_Query searches the catalog.
func BenchmarkFindBooks_Query(b *testing.B) {
	ctx := context.Background()
	benchReads(b, func(db *postgres.DB) error {
		_, _, err := db.FindBooks(ctx, library.BookFilter{Query: "austen"})
		return err
	})
}

// BenchmarkChangeCheck is the round trip a cache hit costs: the server's
// snapshot, the cache's way to know that no replica has committed since
// an entry was read. Compared with BenchmarkFindBookByID and
// BenchmarkFindAPIKey, it is why those are not cached.
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
