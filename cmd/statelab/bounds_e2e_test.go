//go:build unix

package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

// TestOneMemberBounded is the member of issue 22 (6) on a real replica:
// it borrows 50 books at a time with 255-byte Idempotency-Keys and returns
// them, over and over, which grew the database by 29 MB in 10 s, and it
// borrows until it holds every copy. Now a borrow past MaxActiveLoans is
// 409 loan_limit, and however many rounds it makes, the database keeps at
// most MaxActiveLoans+MaxReturnedBorrows of its borrow records and
// MaxStoredReplies answers of at most MaxStoredReplyBytes.
func TestOneMemberBounded(t *testing.T) {
	bin := statelabBinary(t)
	dbPath := filepath.Join(t.TempDir(), "library.db")
	r := newReplica(t, bin, "stateless", "stateless-1", freeAddrs(t, 1)[0], "--db", dbPath, "--jwt-secret", "bounds-e2e-jwt-secret-0123456789abcdef")
	r.waitReady(t)
	key := data[struct {
		APIKey string `json:"api_key"`
	}](t, r.must(t, "POST", "/api/auth/generate-key", login{"alice@example.com", "wonderland"}, cred{}, http.StatusCreated)).APIKey
	alice := cred{bearer: key}
	books := data[[]book](t, r.must(t, "GET", "/api/books?available=true&limit=100", nil, alice, http.StatusOK))
	ids := make([]int64, 0, library.MaxBorrowBooks)
	for _, b := range books {
		if b.AvailableCopies >= 2 && len(ids) < library.MaxBorrowBooks {
			ids = append(ids, b.ID)
		}
	}
	if len(ids) < library.MaxBorrowBooks {
		t.Fatalf("only %d books with two copies on the first page", len(ids))
	}
	body, _ := json.Marshal(map[string]any{"book_ids": ids})
	idem := func(round, i int) string { return fmt.Sprintf("%03d-%03d-%s", round, i, strings.Repeat("k", 247)) }
	size := func() int64 {
		var n int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(dbPath + suffix); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	start := size()

	const rounds = 30
	for round := range rounds {
		k := mustKeyed(t, r, "POST", "/api/borrows", string(body), idem(round, 0), alice)
		if k.status != http.StatusCreated {
			t.Fatalf("round %d: borrow 50: %d %s", round, k.status, k.code)
		}
		if round == 0 {
			// Fifty out: one more is refused, on either borrow route.
			for _, c := range []struct{ path, body string }{
				{"/api/borrows", fmt.Sprintf(`{"book_ids":[%d]}`, ids[0])},
				{fmt.Sprintf("/api/books/%d/borrow", ids[0]), `{}`},
			} {
				if got := mustKeyed(t, r, "POST", c.path, c.body, "over-"+c.path, alice); got.status != http.StatusConflict || got.code != library.ELOANLIMIT {
					t.Fatalf("POST %s with %d out: %d %s, want 409 %s", c.path, library.MaxActiveLoans, got.status, got.code, library.ELOANLIMIT)
				}
			}
		}
		var env struct {
			Data []struct {
				ID int64 `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(k.body, &env); err != nil || len(env.Data) != len(ids) {
			t.Fatalf("round %d: borrow answer %s", round, k.body)
		}
		for i, rec := range env.Data {
			if got := mustKeyed(t, r, "POST", fmt.Sprintf("/api/borrows/%d/return", rec.ID), "", idem(round, i+1), alice); got.status != http.StatusOK {
				t.Fatalf("round %d: return %d: %d %s", round, rec.ID, got.status, got.code)
			}
		}
	}
	t.Logf("%d rounds of 50 keyed borrows and returns: the database grew by %d KB", rounds, (size()-start)/1024)

	raw, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var borrows, replies, replyBytes int
	if err := raw.QueryRow(`SELECT count(*) FROM borrows WHERE member_id = (SELECT id FROM members WHERE email = 'alice@example.com')`).Scan(&borrows); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT count(*), coalesce(sum(length(body)), 0) FROM idempotency_keys WHERE member_id = (SELECT id FROM members WHERE email = 'alice@example.com')`).Scan(&replies, &replyBytes); err != nil {
		t.Fatal(err)
	}
	t.Logf("alice's rows: %d borrow records, %d stored answers of %d bytes", borrows, replies, replyBytes)
	if borrows > library.MaxReturnedBorrows+library.MaxActiveLoans {
		t.Errorf("alice's borrow records after %d borrowed: %d, want at most %d", rounds*len(ids), borrows, library.MaxReturnedBorrows+library.MaxActiveLoans)
	}
	if replies > library.MaxStoredReplies || replyBytes > library.MaxStoredReplyBytes {
		t.Errorf("alice's stored answers after %d keyed requests: %d of %d bytes, want at most %d and %d bytes",
			rounds*(len(ids)+1), replies, replyBytes, library.MaxStoredReplies, library.MaxStoredReplyBytes)
	}
}
