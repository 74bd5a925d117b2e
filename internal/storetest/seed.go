package storetest

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
)

func testSeed_Members(t *testing.T, be Backend) {
	db := be.fresh(t)
	tests := []struct {
		email, password, name, role string
	}{
		{"alice@example.com", "wonderland", "Alice Liddell", library.RoleMember},
		{"bob@example.com", "builder", "Bob Builder", library.RoleMember},
		{"librarian@example.com", "bookworm", "Lorna Librarian", library.RoleLibrarian},
		{seed.LoadTestEmail(1), seed.LoadTestPassword, "Load User 0001", library.RoleMember},
		{seed.LoadTestEmail(seed.LoadTestUsers), seed.LoadTestPassword, "Load User 1000", library.RoleMember},
	}
	t.Run("each", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.email, func(t *testing.T) {
				// bcrypt is slow on purpose; the checks share the cores.
				t.Parallel()
				m, err := db.FindMemberByEmail(context.Background(), tt.email)
				if err != nil {
					t.Fatalf("FindMemberByEmail: %v", err)
				}
				if m.Name != tt.name {
					t.Errorf("name: got %q, want %q", m.Name, tt.name)
				}
				if m.Role != tt.role {
					t.Errorf("role: got %q, want %q", m.Role, tt.role)
				}
				if err := bcrypt.CompareHashAndPassword([]byte(m.PasswordHash), []byte(tt.password)); err != nil {
					t.Errorf("password hash of %s does not match %q: %v", tt.email, tt.password, err)
				}
				if cost, err := bcrypt.Cost([]byte(m.PasswordHash)); err != nil || cost != bcrypt.DefaultCost {
					t.Errorf("bcrypt cost: got %d (%v), want %d", cost, err, bcrypt.DefaultCost)
				}
			})
		}
	})
	// Every member of the seed is there, and no other.
	for _, m := range seed.Members() {
		if _, err := db.FindMemberByEmail(context.Background(), m.Email); err != nil {
			t.Errorf("seed member %s: %v", m.Email, err)
			break
		}
	}
	if _, err := db.FindMemberByID(context.Background(), int64(len(seed.Members())+1)); library.ErrorCode(err) != library.ENOTFOUND {
		t.Errorf("member %d after the seed's %d: got %v, want %s", len(seed.Members())+1, len(seed.Members()), err, library.ENOTFOUND)
	}
}

// tsvRows returns the data rows of books.tsv, split the way a person would
// read the file, to check the seed's parser and the store against.
func tsvRows(t testing.TB) [][]string {
	t.Helper()
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(seed.BooksTSV()))
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

func testSeed_Books(t *testing.T, be Backend) {
	db := be.fresh(t)
	rows := tsvRows(t)
	if len(rows) < 1 {
		t.Fatalf("books.tsv rows: got %d, want at least 1", len(rows))
	}
	// Every row parsed and was stored: the counts agree.
	_, total, err := db.FindBooks(context.Background(), library.BookFilter{})
	if err != nil {
		t.Fatalf("FindBooks: %v", err)
	}
	if total != len(rows) {
		t.Errorf("books seeded: got %d, want %d (one per row of books.tsv)", total, len(rows))
	}
	// The first and the last row can be found by their ISBN, with their
	// copies all on the shelf.
	for _, row := range [][]string{rows[0], rows[len(rows)-1]} {
		if len(row) < 5 {
			t.Fatalf("books.tsv row %q: got %d fields, want 5", row, len(row))
		}
		books, _, err := db.FindBooks(context.Background(), library.BookFilter{Query: row[2]})
		if err != nil || len(books) == 0 {
			t.Fatalf("FindBooks(isbn %s): got %d books, %v, want the book", row[2], len(books), err)
		}
		b := books[0]
		if b.Title != row[0] || b.Author != row[1] {
			t.Errorf("book %s: got %q by %q, want %q by %q", row[2], b.Title, b.Author, row[0], row[1])
		}
		if b.AvailableCopies != b.Copies {
			t.Errorf("book %s: got %d of %d copies available, want all", row[2], b.AvailableCopies, b.Copies)
		}
	}
	// The books are stored in file order: ids follow the rows.
	first, err := db.FindBookByID(context.Background(), 1)
	if err != nil || first.Title != rows[0][0] {
		t.Errorf("book 1: got %q, %v, want %q", first.Title, err, rows[0][0])
	}
	if c := checkConsistent(t, db); c.Books != len(rows) || c.ActiveBorrows != 0 {
		t.Errorf("after the seed: %+v, want %d books and no borrow", c, len(rows))
	}
}
