package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

// testRevocation_SeenByAnotherHandle: what one replica changes, another
// sees at once, whatever it read (or cached) a moment before. Handle b
// reads a key and a title twice (the second read may be its cache's), a
// replica with handle a revokes the key and retitles the book, and b must
// refuse the key and read the new title, 200 times in a row.
func testRevocation_SeenByAnotherHandle(t *testing.T, be Backend) {
	ctx := context.Background()
	name := be.New(t)
	a, b := be.Open(t, name), be.Open(t, name)
	alice := memberID(t, a, "alice@example.com")
	book := createBook(t, a, "title 0", 1)
	for i := 1; i <= 200; i++ {
		key := library.APIKey{ID: fmt.Sprintf("revoked-%03d", i), MemberID: alice, Hash: []byte{byte(i)}}
		if err := a.CreateAPIKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, _, err := b.FindAPIKey(ctx, key.ID); err != nil {
				t.Fatalf("round %d: the other handle's FindAPIKey of a new key: %v", i, err)
			}
			if got, want := titleOf(t, b, book.ID), fmt.Sprintf("title %d", i-1); got != want {
				t.Fatalf("round %d: the other handle reads %q, want %q", i, got, want)
			}
		}
		if err := a.RevokeAPIKey(ctx, alice, key.ID); err != nil {
			t.Fatal(err)
		}
		title := fmt.Sprintf("title %d", i)
		if _, err := a.UpdateBook(ctx, book.ID, library.BookUpdate{Title: &title}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.FindAPIKey(ctx, key.ID); library.ErrorCode(err) != library.ENOTFOUND {
			t.Fatalf("round %d: a key revoked through another handle: got %v, want %s", i, err, library.ENOTFOUND)
		}
		if got := titleOf(t, b, book.ID); got != title {
			t.Fatalf("round %d: a title changed through another handle: read %q, want %q", i, got, title)
		}
	}
}

func titleOf(t *testing.T, db Store, id int64) string {
	t.Helper()
	b, err := db.FindBookByID(context.Background(), id)
	if err != nil {
		t.Fatalf("FindBookByID(%d): %v", id, err)
	}
	return b.Title
}
