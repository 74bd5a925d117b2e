package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/store"
	"github.com/statelab/statelab/internal/storetest"
)

// syncBuffer is a bytes.Buffer the sweep's goroutine and the test can
// share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKeySweep checks that a store opened with a KeySweep forgets a key
// past its day on its own, keeps one in its day, and stops sweeping at
// Close.
func TestKeySweep(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "statelab.db")
	var log syncBuffer
	db, err := store.Open(ctx, path, store.Options{KeySweep: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			db.Close()
		}
	})
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	book, err := db.CreateBook(ctx, library.Book{Title: "Swept key", Author: "A. Sweeper", ISBN: "9780306406157", Year: 2001, Copies: 5})
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int64
	for _, k := range []string{"old", "new"} {
		if _, _, err := db.Idempotent(ctx, library.IdempotentRequest{MemberID: alice.ID, Key: k, Fingerprint: "fp"}, storetest.BorrowChange(alice.ID, book.ID, &runs)); err != nil {
			t.Fatal(err)
		}
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(10000)"}
	raw, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	old := time.Now().Add(-library.IdempotencyKeyTTL - time.Minute).UTC().Format("2006-01-02T15:04:05.000000000Z")
	if _, err := raw.Exec(`UPDATE idempotency_keys SET created_at = ? WHERE key = 'old'`, old); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		keys := storetest.RawKeys(t, raw)
		if len(keys) == 1 && keys[0] == "new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys 5s after one passed its day: %v, want [new]", keys)
		}
	}
	if !strings.Contains(log.String(), "swept idempotency keys") {
		t.Errorf("the sweep forgot a key and logged nothing: %q", log.String())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	// After Close, a key past its day stays: nothing sweeps any more.
	if _, err := raw.Exec(`UPDATE idempotency_keys SET created_at = ? WHERE key = 'new'`, old); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if keys := storetest.RawKeys(t, raw); len(keys) != 1 {
		t.Errorf("keys after Close: %v, want [new] still there", keys)
	}
}
