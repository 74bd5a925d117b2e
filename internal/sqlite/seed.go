package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// booksTSV is the seed catalog: a header line "title author isbn13 year
// copies" and one tab-separated book per line.
//
//go:embed books.tsv
var booksTSV []byte

// LoadTestPassword is the one password shared by the load-test members
// LoadTestEmail(1) … LoadTestEmail(LoadTestUsers). It is public on purpose:
// the simulated users of the comparison runner sign in with it.
const LoadTestPassword = "loadtest-password"

// LoadTestUsers is how many load-test members the seed creates.
const LoadTestUsers = 1000

// LoadTestEmail returns the email of the i-th load-test member, counting
// from 1: "user0001@example.com" for i = 1.
func LoadTestEmail(i int) string {
	return fmt.Sprintf("user%04d@example.com", i)
}

// loadTestName returns the display name of the i-th load-test member.
func loadTestName(i int) string {
	return fmt.Sprintf("Load User %04d", i)
}

// These are bcrypt hashes, at bcrypt.DefaultCost, of the documented demo
// passwords: "wonderland" (alice), "builder" (bob), "bookworm" (the
// librarian) and LoadTestPassword. They are public on purpose, not secrets.
// They are computed once and written here because hashing at seed time would
// cost a tenth of a second per hash and Open must seed in well under one; a
// test checks each against its password.
const (
	aliceHash     = "$2a$10$/BZN.jjflC5VZ4ZQlxpnDOoY5JC5r5RE.1g/d.qA9lwXwhbrCQK1e"
	bobHash       = "$2a$10$vdfR1Kq0BAA1ckVOFzTxue3kMGDTDsa2FJjAlcPkTT50aLBLPhizq"
	librarianHash = "$2a$10$.yy/gPMH6dvVWuyuyF/6w.rie8R6P56hCDMrlhY1khfIBwkLjKerG"
	loadTestHash  = "$2a$10$b8cA18AmGx0lCPLCeCfAauhh9zJ5X5AKjzYQG/ociXUGxML2AsQjO"
)

// seedBook is one parsed row of books.tsv.
type seedBook struct {
	title, author, isbn string
	year, copies        int
}

// seed fills an empty database with the catalog and the demo members. It
// runs inside the migration transaction, so it is all or nothing.
func seed(ctx context.Context, tx querier, now time.Time) error {
	books, err := parseBooksTSV(booksTSV)
	if err != nil {
		return fmt.Errorf("sqlite: seed: %w", err)
	}
	bookStmt, err := tx.PrepareContext(ctx,
		`INSERT INTO books (title, author, isbn, year, copies, available_copies) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: seed: %w", err)
	}
	defer bookStmt.Close()
	for _, b := range books {
		if _, err := bookStmt.ExecContext(ctx, b.title, b.author, nullString(b.isbn), b.year, b.copies, b.copies); err != nil {
			return fmt.Errorf("sqlite: seed book %q: %w", b.title, err)
		}
	}

	memberStmt, err := tx.PrepareContext(ctx,
		`INSERT INTO members (email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: seed: %w", err)
	}
	defer memberStmt.Close()
	created := formatTime(now)
	demo := []struct{ email, name, role, hash string }{
		{"alice@example.com", "Alice Liddell", library.RoleMember, aliceHash},
		{"bob@example.com", "Bob Builder", library.RoleMember, bobHash},
		{"librarian@example.com", "Lorna Librarian", library.RoleLibrarian, librarianHash},
	}
	for _, m := range demo {
		if _, err := memberStmt.ExecContext(ctx, m.email, m.name, m.role, m.hash, created); err != nil {
			return fmt.Errorf("sqlite: seed member %s: %w", m.email, err)
		}
	}
	for i := 1; i <= LoadTestUsers; i++ {
		if _, err := memberStmt.ExecContext(ctx, LoadTestEmail(i), loadTestName(i), library.RoleMember, loadTestHash, created); err != nil {
			return fmt.Errorf("sqlite: seed member %s: %w", LoadTestEmail(i), err)
		}
	}
	return nil
}

// parseBooksTSV reads the seed catalog. Columns are found by their header
// names, so their order may change; blank lines are skipped; anything else
// that does not parse is an error naming its line, because a silently
// shorter catalog would be worse than a loud failure.
func parseBooksTSV(data []byte) ([]seedBook, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)

	line := 0
	col := map[string]int{}
	var books []seedBook
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fields := strings.Split(text, "\t")
		if len(col) == 0 {
			for i, name := range fields {
				col[strings.ToLower(strings.TrimSpace(name))] = i
			}
			for _, name := range []string{"title", "author", "isbn13", "year", "copies"} {
				if _, ok := col[name]; !ok {
					return nil, fmt.Errorf("books.tsv: header has no %q column", name)
				}
			}
			continue
		}
		field := func(name string) string {
			if i := col[name]; i < len(fields) {
				return strings.TrimSpace(fields[i])
			}
			return ""
		}
		b := seedBook{title: field("title"), author: field("author"), isbn: field("isbn13")}
		if b.title == "" || b.author == "" {
			return nil, fmt.Errorf("books.tsv line %d: title and author are required", line)
		}
		var err error
		if b.year, err = strconv.Atoi(field("year")); err != nil || b.year < 0 || b.year > library.MaxYear {
			return nil, fmt.Errorf("books.tsv line %d: year %q is not a year between 0 and %d", line, field("year"), library.MaxYear)
		}
		if b.copies, err = strconv.Atoi(field("copies")); err != nil || b.copies < 0 || b.copies > library.MaxCopies {
			return nil, fmt.Errorf("books.tsv line %d: copies %q is not a number between 0 and %d", line, field("copies"), library.MaxCopies)
		}
		books = append(books, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("books.tsv: %w", err)
	}
	if len(col) == 0 {
		return nil, fmt.Errorf("books.tsv: no header line")
	}
	return books, nil
}

// nullString stores an empty string as NULL, so that optional unique
// columns (a book's ISBN) admit many blanks.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
