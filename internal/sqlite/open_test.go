package sqlite_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
	"github.com/statelab/statelab/internal/sqlite"
)

func TestOpen_Twice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "statelab.db")

	db1, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	// A change made before reopening must survive it: a second Open must
	// neither migrate nor seed again.
	createBook(t, db1, "Written Before Reopen", 1)
	if err := db1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	books, members := rawCount(t, path, "books"), rawCount(t, path, "members")

	db2 := openDB(t, path)
	if got := rawCount(t, path, "books"); got != books {
		t.Errorf("books after second Open: got %d, want %d", got, books)
	}
	if got := rawCount(t, path, "members"); got != members {
		t.Errorf("members after second Open: got %d, want %d", got, members)
	}
	if got, want := members, 3+seed.LoadTestUsers; got != want {
		t.Errorf("members: got %d, want %d", got, want)
	}
	if _, total, err := db2.FindBooks(ctx, library.BookFilter{Query: "Written Before Reopen"}); err != nil || total != 1 {
		t.Errorf("FindBooks after reopen: got %d, %v, want 1, nil", total, err)
	}
	checkConsistent(t, db2)
}

func TestOpen_Concurrent(t *testing.T) {
	// Spaces, '?' and '#' in the path must survive the file: URI.
	path := filepath.Join(t.TempDir(), "dir with space?#", "state lab.db")

	const openers = 6
	dbs := make([]*sqlite.DB, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() { dbs[i], errs[i] = sqlite.Open(context.Background(), path) })
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
	if got, want := rawCount(t, path, "members"), 3+seed.LoadTestUsers; got != want {
		t.Errorf("members: got %d, want %d", got, want)
	}
	if got, want := rawCount(t, path, "books"), len(tsvRows(t)); got != want {
		t.Errorf("books: got %d, want %d", got, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file at the literal path: %v", err)
	}
	for i, db := range dbs {
		if err := db.Ping(context.Background()); err != nil {
			t.Errorf("Ping %d: %v", i, err)
		}
	}
}

func TestOpen_SeedIsFast(t *testing.T) {
	start := time.Now()
	newDB(t)
	// The budget is for a race-instrumented build on a slow machine; an
	// ordinary build seeds in a small fraction of it.
	if got, limit := time.Since(start), 5*time.Second; got > limit {
		t.Errorf("Open of a fresh file: got %v, want under %v", got, limit)
	}
}

func TestLoadTestEmail(t *testing.T) {
	tests := []struct {
		i    int
		want string
	}{
		{1, "user0001@example.com"},
		{42, "user0042@example.com"},
		{1000, "user1000@example.com"},
	}
	for _, tt := range tests {
		if got := seed.LoadTestEmail(tt.i); got != tt.want {
			t.Errorf("LoadTestEmail(%d): got %q, want %q", tt.i, got, tt.want)
		}
	}
}

// tsvRows returns the data rows of books.tsv, read from disk the way a
// person would read the file, to count the books a fresh file must hold.
func tsvRows(t testing.TB) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "seed", "books.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	header := true
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if header {
			header = false
			continue
		}
		rows = append(rows, strings.Split(sc.Text(), "\t"))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
