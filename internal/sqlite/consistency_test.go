package sqlite_test

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

func TestCheckConsistency(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "statelab.db")
	db := openDB(t, path)
	alice := memberID(t, db, "alice@example.com")
	lent, lost := createBook(t, db, "Lent", 2), createBook(t, db, "Lost", 2)
	if _, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice, BookIDs: []int64{lent.ID}}); err != nil {
		t.Fatal(err)
	}
	before := checkConsistent(t, db)
	if before.ActiveBorrows != 1 || before.Books < 2 {
		t.Errorf("before: got %+v, want 1 active borrow and at least 2 books", before)
	}

	// Lose a copy behind the store's back, as a buggy server would.
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(10000)"}
	raw, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE books SET available_copies = available_copies - 1 WHERE id = ?`, lost.ID); err != nil {
		t.Fatal(err)
	}

	got, err := db.CheckConsistency(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{lost.ID}; !reflect.DeepEqual(got.Mismatched, want) {
		t.Errorf("mismatched: got %v, want %v", got.Mismatched, want)
	}
	if got.OK() {
		t.Errorf("OK: got true, want false")
	}
	if len(got.NegativeAvailability) != 0 {
		t.Errorf("negative availability: got %v, want none", got.NegativeAvailability)
	}
}

func TestPing(t *testing.T) {
	db := newDB(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping: got %v, want nil", err)
	}
}
