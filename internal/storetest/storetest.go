// Package storetest is the conformance suite of library.Store: every
// method, its error codes, the concurrency cases (the last copy under
// concurrent borrows, one idempotency key from several handles),
// idempotency and revocation, the limits on failed sign-ins, the seed and
// the consistency check. Each
// store's tests run it, so SQLite and PostgreSQL cannot drift apart.
//
// The suite opens one database more than once where replicas would, and
// changes it behind the store's back (a lost copy, an aged key) through a
// database/sql handle of its own, in SQL both databases read: literals, no
// placeholders.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/statelab/statelab/internal/library"
)

// Store is what the suite checks: the library.Store contract and the two
// reads the comparison runner makes after a run.
type Store interface {
	library.Store
	// CheckConsistency checks the invariants on one snapshot.
	CheckConsistency(ctx context.Context) (library.Consistency, error)
	// BorrowExists reports whether a borrow record exists, returned or not.
	BorrowExists(ctx context.Context, id int64) (bool, error)
}

// Backend makes and opens the databases of one kind of store.
type Backend struct {
	// New makes a fresh, empty database and returns its name: what Open
	// and Raw take (a file path, a URL).
	New func(t *testing.T) string
	// Open opens the database name, migrating and seeding it when it is
	// new, and closes it when the test ends. Each call gives a handle of
	// its own, as each replica has.
	Open func(t testing.TB, name string) Store
	// Raw returns a database/sql handle of its own on the database name,
	// closed when the test ends, to change it behind the store's back.
	Raw func(t *testing.T, name string) *sql.DB
}

// fresh opens a new, seeded database.
func (be Backend) fresh(t *testing.T) Store {
	t.Helper()
	return be.Open(t, be.New(t))
}

// Run runs the whole suite against the backend, one subtest per case.
func Run(t *testing.T, be Backend) {
	cases := []struct {
		name string
		run  func(*testing.T, Backend)
	}{
		{"FindBooks", testFindBooks},
		{"FindBooks_Limit", testFindBooks_Limit},
		{"FindBooks_LongAndWildcardQueries", testFindBooks_LongAndWildcardQueries},
		{"FindBookByID", testFindBookByID},
		{"CreateBook", testCreateBook},
		{"UpdateBook", testUpdateBook},
		{"DeleteBook", testDeleteBook},
		{"BookAndBorrow_TextCaps", testBookAndBorrow_TextCaps},
		{"Borrow_Invalid", testBorrow_Invalid},
		{"Borrow", testBorrow},
		{"Borrow_AllOrNothing", testBorrow_AllOrNothing},
		{"ReturnBorrow", testReturnBorrow},
		{"Borrow_LoanLimit", testBorrow_LoanLimit},
		{"Borrow_LoanLimitAcrossHandles", testBorrow_LoanLimitAcrossHandles},
		{"ReturnBorrow_HistoryBounded", testReturnBorrow_HistoryBounded},
		{"FindBorrows_Pages", testFindBorrows_Pages},
		{"Borrow_LastCopyRace", testBorrow_LastCopyRace},
		{"Borrow_ChurnAcrossProcesses", testBorrow_ChurnAcrossProcesses},
		{"CreateMember", testCreateMember},
		{"FindMember", testFindMember},
		{"APIKeys", testAPIKeys},
		{"CreateAPIKey_CapRevokesOldest", testCreateAPIKey_CapRevokesOldest},
		{"Revocation_SeenByAnotherHandle", testRevocation_SeenByAnotherHandle},
		{"Idempotent", testIdempotent},
		{"IdempotentConcurrent", testIdempotentConcurrent},
		{"IdempotentWrites", testIdempotentWrites},
		{"IdempotencyKeysExpireAndSweep", testIdempotencyKeysExpireAndSweep},
		{"Idempotent_RepliesBounded", testIdempotent_RepliesBounded},
		{"SignIn_Backoff", testSignIn_Backoff},
		{"SignIn_HourlyBudget", testSignIn_HourlyBudget},
		{"SignIn_TrustedDevice", testSignIn_TrustedDevice},
		{"SignIn_AcrossHandles", testSignIn_AcrossHandles},
		{"CheckConsistency", testCheckConsistency},
		{"CheckConsistencyAppliedTwice", testCheckConsistencyAppliedTwice},
		{"Ping", testPing},
		{"Seed_Members", testSeed_Members},
		{"Seed_Books", testSeed_Books},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, be) })
	}
}

// memberID returns the id of the member with the email.
func memberID(t testing.TB, db Store, email string) int64 {
	t.Helper()
	m, err := db.FindMemberByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("FindMemberByEmail(%q): %v", email, err)
	}
	return m.ID
}

// createBook adds a book with the given copies and returns it.
func createBook(t testing.TB, db Store, title string, copies int) library.Book {
	t.Helper()
	b, err := db.CreateBook(context.Background(), library.Book{Title: title, Author: "Test Author", Copies: copies})
	if err != nil {
		t.Fatalf("CreateBook(%q): %v", title, err)
	}
	return b
}

// available returns how many copies of a book are on the shelf.
func available(t testing.TB, db Store, id int64) int {
	t.Helper()
	b, err := db.FindBookByID(context.Background(), id)
	if err != nil {
		t.Fatalf("FindBookByID(%d): %v", id, err)
	}
	return b.AvailableCopies
}

// checkCode fails the test unless err carries the code want ("" for nil).
func checkCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := library.ErrorCode(err); got != want {
		t.Fatalf("error code: got %q (%v), want %q", got, err, want)
	}
	var e *library.Error
	if err != nil && want != library.EINTERNAL && !errors.As(err, &e) {
		t.Fatalf("error %v is not a *library.Error", err)
	}
}

// checkConsistent fails the test when an invariant of the database is broken.
func checkConsistent(t testing.TB, db Store) library.Consistency {
	t.Helper()
	c, err := db.CheckConsistency(context.Background())
	if err != nil {
		t.Fatalf("CheckConsistency: %v", err)
	}
	if !c.OK() {
		t.Fatalf("CheckConsistency: got %+v, want no broken invariant", c)
	}
	return c
}
