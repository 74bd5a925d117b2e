// Package seed is what every new store starts with: the catalog of
// books.tsv, the three demo members and the load-test members, with their
// passwords' bcrypt hashes computed in advance. SQLite and PostgreSQL seed
// the same data from here, so a run reads the same books and signs in the
// same members whichever store holds them.
package seed

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/statelab/statelab/internal/library"
)

// booksTSV is the seed catalog: a header line "title author isbn13 year
// copies" and one tab-separated book per line.
//
//go:embed books.tsv
var booksTSV []byte

// BooksTSV returns the catalog file as it is embedded, for a test that
// reads it the way a person would.
func BooksTSV() []byte { return slices.Clone(booksTSV) }

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
// cost a tenth of a second per hash and a store must seed in well under one;
// the conformance suite checks each against its password.
const (
	aliceHash     = "$2a$10$/BZN.jjflC5VZ4ZQlxpnDOoY5JC5r5RE.1g/d.qA9lwXwhbrCQK1e"
	bobHash       = "$2a$10$vdfR1Kq0BAA1ckVOFzTxue3kMGDTDsa2FJjAlcPkTT50aLBLPhizq"
	librarianHash = "$2a$10$.yy/gPMH6dvVWuyuyF/6w.rie8R6P56hCDMrlhY1khfIBwkLjKerG"
	loadTestHash  = "$2a$10$b8cA18AmGx0lCPLCeCfAauhh9zJ5X5AKjzYQG/ociXUGxML2AsQjO"
)

// Members returns the members a new store holds, in the order they are
// created: alice, bob, the librarian, then the load-test members. Their
// ids and creation times are the store's to set.
func Members() []library.Member {
	members := []library.Member{
		{Email: "alice@example.com", Name: "Alice Liddell", Role: library.RoleMember, PasswordHash: aliceHash},
		{Email: "bob@example.com", Name: "Bob Builder", Role: library.RoleMember, PasswordHash: bobHash},
		{Email: "librarian@example.com", Name: "Lorna Librarian", Role: library.RoleLibrarian, PasswordHash: librarianHash},
	}
	for i := 1; i <= LoadTestUsers; i++ {
		members = append(members, library.Member{Email: LoadTestEmail(i), Name: loadTestName(i), Role: library.RoleMember, PasswordHash: loadTestHash})
	}
	return members
}

// Books returns the catalog of books.tsv, in file order: title, author,
// ISBN (empty when unknown), year and copies; ids and availability are the
// store's to set.
func Books() ([]library.Book, error) {
	return parseBooksTSV(booksTSV)
}

// parseBooksTSV reads the seed catalog. Columns are found by their header
// names, so their order may change; blank lines are skipped; anything else
// that does not parse is an error naming its line, because a silently
// shorter catalog would be worse than a loud failure.
func parseBooksTSV(data []byte) ([]library.Book, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)

	line := 0
	col := map[string]int{}
	var books []library.Book
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
		b := library.Book{Title: field("title"), Author: field("author"), ISBN: field("isbn13")}
		if b.Title == "" || b.Author == "" {
			return nil, fmt.Errorf("books.tsv line %d: title and author are required", line)
		}
		var err error
		if b.Year, err = strconv.Atoi(field("year")); err != nil || b.Year < 0 || b.Year > library.MaxYear {
			return nil, fmt.Errorf("books.tsv line %d: year %q is not a year between 0 and %d", line, field("year"), library.MaxYear)
		}
		if b.Copies, err = strconv.Atoi(field("copies")); err != nil || b.Copies < 0 || b.Copies > library.MaxCopies {
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
