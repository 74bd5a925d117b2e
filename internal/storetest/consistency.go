package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

func testCheckConsistency(t *testing.T, be Backend) {
	ctx := context.Background()
	name := be.New(t)
	db := be.Open(t, name)
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
	raw := be.Raw(t, name)
	if _, err := raw.Exec(fmt.Sprintf(`UPDATE books SET available_copies = available_copies - 1 WHERE id = %d`, lost.ID)); err != nil {
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

func testPing(t *testing.T, be Backend) {
	db := be.fresh(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping: got %v, want nil", err)
	}
}
