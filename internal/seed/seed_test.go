package seed_test

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/seed"
)

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

// TestBooks checks the embedded parser against books.tsv read from disk
// the way a person would read it: one book per data row, in order.
func TestBooks(t *testing.T) {
	data, err := os.ReadFile("books.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, seed.BooksTSV()) {
		t.Fatal("the embedded books.tsv differs from the file on disk")
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for header := true; sc.Scan(); {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if header {
			header = false
			continue
		}
		rows = append(rows, strings.Split(sc.Text(), "\t"))
	}
	books, err := seed.Books()
	if err != nil {
		t.Fatal(err)
	}
	if len(books) != len(rows) || len(rows) == 0 {
		t.Fatalf("books: got %d, want %d (one per row of books.tsv)", len(books), len(rows))
	}
	for i, row := range rows {
		b := books[i]
		if got := []string{b.Title, b.Author, b.ISBN, strconv.Itoa(b.Year), strconv.Itoa(b.Copies)}; strings.Join(got, "\t") != strings.Join(row, "\t") {
			t.Errorf("row %d: got %q, want %q", i+1, got, row)
		}
	}
}

func TestMembers(t *testing.T) {
	members := seed.Members()
	if got, want := len(members), 3+seed.LoadTestUsers; got != want {
		t.Fatalf("members: got %d, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m.Email] || m.PasswordHash == "" || m.Name == "" {
			t.Errorf("member %+v: a duplicate email, or no name or password hash", m)
		}
		seen[m.Email] = true
	}
	if last := members[len(members)-1]; last.Email != seed.LoadTestEmail(seed.LoadTestUsers) {
		t.Errorf("last member: got %s, want %s", last.Email, seed.LoadTestEmail(seed.LoadTestUsers))
	}
}
