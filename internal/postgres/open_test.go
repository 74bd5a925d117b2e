package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/postgres"
	"github.com/statelab/statelab/internal/seed"
)

// count counts the rows of table with a connection of its own.
func count(t *testing.T, url, table string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestOpen_Concurrent opens one new database from several pools at once,
// as the replicas of a fresh lab do: every one succeeds, goose applies the
// migrations once, and the seed is there once.
func TestOpen_Concurrent(t *testing.T) {
	url := newDatabase(t)
	const openers = 6
	dbs := make([]*postgres.DB, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(context.Background(), url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if t.Failed() {
		return
	}
	books, err := seed.Books()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := count(t, url, "members"), len(seed.Members()); got != want {
		t.Errorf("members: got %d, want %d", got, want)
	}
	if got, want := count(t, url, "books"), len(books); got != want {
		t.Errorf("books: got %d, want %d", got, want)
	}
	// goose's table: the row of version 0 it writes first, and one row per
	// migration, each applied once.
	if got, want := count(t, url, "goose_db_version"), 5; got != want {
		t.Errorf("goose_db_version rows: got %d, want %d (version 0 and four migrations, each once)", got, want)
	}
	for i, db := range dbs {
		if err := db.Ping(context.Background()); err != nil {
			t.Errorf("Ping %d: %v", i, err)
		}
	}
}

// TestOpen_Twice: a change made before reopening survives it; a second
// Open neither migrates nor seeds again.
func TestOpen_Twice(t *testing.T) {
	ctx := context.Background()
	url := newDatabase(t)
	db1, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db1.CreateBook(ctx, library.Book{Title: "Written Before Reopen", Author: "A", Copies: 1}); err != nil {
		t.Fatal(err)
	}
	db1.Close()
	books, members := count(t, url, "books"), count(t, url, "members")
	db2 := openDB(t, url)
	if got := count(t, url, "books"); got != books {
		t.Errorf("books after second Open: got %d, want %d", got, books)
	}
	if got := count(t, url, "members"); got != members {
		t.Errorf("members after second Open: got %d, want %d", got, members)
	}
	if _, total, err := db2.FindBooks(ctx, library.BookFilter{Query: "Written Before Reopen"}); err != nil || total != 1 {
		t.Errorf("FindBooks after reopen: got %d, %v, want 1, nil", total, err)
	}
}

// TestOpen_BadURL: an error about the URL never repeats it, since it may
// hold a password.
func TestOpen_BadURL(t *testing.T) {
	const secret = "hunter2-secret"
	_, err := postgres.Open(context.Background(), "postgres://statelab:"+secret+"@127.0.0.1:bad-port/x")
	if err == nil {
		t.Fatal("Open with a bad URL: got no error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error %q shows the password", err)
	}
}
