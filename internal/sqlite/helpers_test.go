package sqlite_test

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/sqlite"
)

// openDB opens the database at path and closes it when the test ends.
func openDB(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// newDB opens a fresh, seeded database in a temporary directory.
func newDB(t testing.TB) *sqlite.DB {
	t.Helper()
	return openDB(t, filepath.Join(t.TempDir(), "statelab.db"))
}

// memberID returns the id of the member with the email.
func memberID(t testing.TB, db *sqlite.DB, email string) int64 {
	t.Helper()
	m, err := db.FindMemberByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("FindMemberByEmail(%q): %v", email, err)
	}
	return m.ID
}

// createBook adds a book with the given copies and returns it.
func createBook(t testing.TB, db *sqlite.DB, title string, copies int) library.Book {
	t.Helper()
	b, err := db.CreateBook(context.Background(), library.Book{Title: title, Author: "Test Author", Copies: copies})
	if err != nil {
		t.Fatalf("CreateBook(%q): %v", title, err)
	}
	return b
}

// checkConsistent fails the test when an invariant of the database is broken.
func checkConsistent(t testing.TB, db *sqlite.DB) library.Consistency {
	t.Helper()
	c, err := db.CheckConsistency(context.Background())
	if err != nil {
		t.Fatalf("CheckConsistency: %v", err)
	}
	if !c.OK() {
		t.Fatalf("CheckConsistency: got %+v, want no broken invariant", c)
	}
	return c
}

// rawCount counts the rows of table with a connection of its own, as
// another process would see them.
func rawCount(t testing.TB, path, table string) int {
	t.Helper()
	// A file: URI with an escaped path, because a plain name is cut at
	// its first '?'.
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro"}
	raw, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}
