package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

// TestCacheVersion checks the wal-index header reader against the header
// SQLite itself wrote, and that every way a header can be half written or
// not yet valid reads as "ask the database".
func TestCacheVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "statelab.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	real, err := os.ReadFile(path + "-shm")
	if err != nil {
		t.Fatal(err)
	}
	before, ok := db.cache.version()
	if !ok {
		t.Fatal("the header SQLite wrote does not read as valid")
	}
	if _, err := db.CreateBook(ctx, library.Book{Title: "A New Book", Author: "Someone", Copies: 1}); err != nil {
		t.Fatal(err)
	}
	if after, ok := db.cache.version(); !ok || after == before {
		t.Fatalf("after a commit: version ok=%v, changed=%v; want a new valid version", ok, after != before)
	}

	for _, tt := range []struct {
		name   string
		change func(b []byte)
		ok     bool
	}{
		{"as SQLite wrote it", func([]byte) {}, true},
		{"the copies disagree (a commit half written)", func(b []byte) { b[walHeaderSize+16]++ }, false},
		{"both copies carry a bad checksum", func(b []byte) { b[16]++; b[walHeaderSize+16]++ }, false},
		{"not initialized", func(b []byte) { b[12] = 0; b[walHeaderSize+12] = 0 }, false},
		{"too short", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), real[:2*walHeaderSize]...)
			if tt.change != nil {
				tt.change(b)
			} else {
				b = b[:walHeaderSize]
			}
			fake := filepath.Join(t.TempDir(), "fake.db")
			if err := os.WriteFile(fake+"-shm", b, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(fake + "-shm")
			if err != nil {
				t.Fatal(err)
			}
			c := &cache{shm: f}
			defer c.close()
			if _, ok := c.version(); ok != tt.ok {
				t.Errorf("version() ok = %v, want %v", ok, tt.ok)
			}
		})
	}

	var off *cache
	if _, ok := off.version(); ok {
		t.Error("a nil cache reads a version")
	}
}
