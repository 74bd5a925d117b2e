package library

import (
	"fmt"
	"strings"
	"time"
)

// Size limits of the free text a client may send. Every store and handler
// checks them before the database sees the text, so one client cannot make
// the shared file grow without bound, nor hand SQLite a LIKE pattern long
// enough to fail as "too complex" (SQLite refuses patterns over 50,000
// bytes; escaped, 200 bytes is at most 402).
const (
	MaxTitleBytes        = 200 // a book's title
	MaxAuthorBytes       = 200 // a book's author
	MaxISBNBytes         = 32  // an ISBN-13 with hyphens is 17
	MaxBorrowerNameBytes = 200 // the name written on a borrow record
	MaxQueryBytes        = 200 // a search: q, author
)

// Page sizes of the lists a client reads.
const (
	DefaultBookPageSize   = 20
	MaxBookPageSize       = 100
	DefaultBorrowPageSize = 100 // large enough that a member's active loans fit on one page
	MaxBorrowPageSize     = 500
)

// MaxSessionsPerMember is how many sessions a store that keeps them (memory,
// redis) holds for one member at once. A sign-in beyond it ends the
// member's oldest session: without a cap, anyone who knows a password (the
// demo's are public) could fill a replica's memory or redis with sessions,
// bcrypt and the sign-in rate limit being the only brakes. A sealed-cookie
// session is kept by the client, not the server, so it has no cap.
const MaxSessionsPerMember = 20

// MaxAPIKeysPerMember is how many API keys a member may hold at once.
// Issuing one more revokes the oldest: a client that asks for a key at every
// start (as the simulated users do) keeps working, and a leaked list of keys
// cannot grow past this.
const MaxAPIKeysPerMember = 20

// What one member may make the shared store hold, so that no member can
// take every copy or grow the database by gigabytes an hour.
const (
	// MaxActiveLoans is how many copies one member may have out at once;
	// a borrow that would pass it is refused with ELOANLIMIT (409).
	MaxActiveLoans = 50
	// MaxReturnedBorrows is how many returned borrow records of one member
	// are kept; a return beyond it forgets the oldest returned ones. A
	// simulated user returns a dozen books a minute, so an hour-long run
	// keeps every record it checks at the end.
	MaxReturnedBorrows = 1000
	// MaxStoredReplies and MaxStoredReplyBytes bound the answers one
	// member's idempotency keys keep (their bodies, at most MaxBorrowBooks
	// borrow records each): storing one more forgets the member's oldest
	// beyond either, even before their IdempotencyKeyTTL. A client
	// retries within seconds, a hundred keyed requests ago at most.
	MaxStoredReplies    = 100
	MaxStoredReplyBytes = 1 << 20
)

// CheckLoans returns ELOANLIMIT when a member who has active loans out
// asks for asked more copies than MaxActiveLoans allows.
func CheckLoans(active, asked int) error {
	if active+asked > MaxActiveLoans {
		return Errorf(ELOANLIMIT, "You have %d books out and asked for %d more; a member may have at most %d at once. Return some first.", active, asked, MaxActiveLoans)
	}
	return nil
}

// Limits on a book's fields and on one borrow request.
const (
	MaxCopies      = 1000 // copies of one book
	MaxYear        = 3000 // a book's year
	MaxBorrowBooks = 50   // books one borrow request may ask for
)

// CheckLength returns an EINVALID error naming field when value is longer
// than max bytes.
func CheckLength(field, value string, max int) error {
	if len(value) > max {
		return Errorf(EINVALID, "%s is %d bytes long; the limit is %d.", field, len(value), max)
	}
	return nil
}

// Validate checks a filter's free text and page bounds.
func (f BookFilter) Validate() error {
	if err := CheckLength("q", f.Query, MaxQueryBytes); err != nil {
		return err
	}
	if err := CheckLength("author", f.Author, MaxQueryBytes); err != nil {
		return err
	}
	return checkPage(f.Limit, f.Offset, MaxBookPageSize)
}

// BorrowFilter selects a page of one member's borrow records, newest first.
type BorrowFilter struct {
	MemberID int64
	Limit    int
	Offset   int
}

// Validate checks a borrow filter's page bounds.
func (f BorrowFilter) Validate() error {
	return checkPage(f.Limit, f.Offset, MaxBorrowPageSize)
}

func checkPage(limit, offset, max int) error {
	if limit < 1 || limit > max {
		return Errorf(EINVALID, "limit=%d: use a whole number from 1 to %d.", limit, max)
	}
	if offset < 0 {
		return Errorf(EINVALID, "offset=%d: use a whole number, 0 or more.", offset)
	}
	return nil
}

// ValidateText checks the free-text fields of a book.
func (b Book) ValidateText() error {
	for _, c := range []struct {
		field, value string
		max          int
	}{{"title", b.Title, MaxTitleBytes}, {"author", b.Author, MaxAuthorBytes}, {"isbn", b.ISBN, MaxISBNBytes}} {
		if err := CheckLength(c.field, c.value, c.max); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the fields a client sets on a book: its free text, that
// it has a title and an author, and its copies and year. The caller trims
// the text first.
func (b Book) Validate() error {
	if err := b.ValidateText(); err != nil {
		return err
	}
	switch {
	case b.Title == "":
		return Errorf(EINVALID, "Title is required")
	case b.Author == "":
		return Errorf(EINVALID, "Author is required")
	case b.Copies < 0 || b.Copies > MaxCopies:
		return Errorf(EINVALID, "Copies must be between 0 and %d", MaxCopies)
	case b.Year < 0 || b.Year > MaxYear:
		return Errorf(EINVALID, "Year must be between 0 and %d", MaxYear)
	}
	return nil
}

// LoanDays returns the loan length the request asks for: Days, or
// DefaultLoanDays when it is 0.
func (r BorrowRequest) LoanDays() int {
	if r.Days == 0 {
		return DefaultLoanDays
	}
	return r.Days
}

// Validate checks a borrow request before a store takes any lock: its
// borrower name, 1 to MaxBorrowBooks distinct books, and a loan of 1 to
// MaxLoanDays days.
func (r BorrowRequest) Validate() error {
	if err := r.ValidateText(); err != nil {
		return err
	}
	if len(r.BookIDs) == 0 || len(r.BookIDs) > MaxBorrowBooks {
		return Errorf(EINVALID, "Borrow between 1 and %d books at a time", MaxBorrowBooks)
	}
	seen := make(map[int64]bool, len(r.BookIDs))
	for _, id := range r.BookIDs {
		if seen[id] {
			return Errorf(EINVALID, "Book %d is listed more than once", id)
		}
		seen[id] = true
	}
	if days := r.LoanDays(); days < 1 || days > MaxLoanDays {
		return Errorf(EINVALID, "A loan lasts between 1 and %d days", MaxLoanDays)
	}
	return nil
}

// Validate checks a member before a store creates it: an email with an @
// and a known role. The caller trims the text and defaults the role first.
func (m Member) Validate() error {
	switch {
	case m.Email == "" || !strings.Contains(m.Email, "@"):
		return Errorf(EINVALID, "A valid email is required")
	case m.Role != RoleMember && m.Role != RoleLibrarian:
		return Errorf(EINVALID, "Role must be %q or %q", RoleMember, RoleLibrarian)
	}
	return nil
}

// ClampPage turns a page request into a valid one, the way the stores
// read it: a limit out of range becomes def (0 or less) or most (over it),
// a negative offset 0.
func ClampPage(limit, offset, def, most int) (int, int) {
	if limit <= 0 {
		limit = def
	} else if limit > most {
		limit = most
	}
	return limit, max(offset, 0)
}

// ValidateText checks the free-text fields of a borrow request.
func (r BorrowRequest) ValidateText() error {
	return CheckLength("borrower_name", r.BorrowerName, MaxBorrowerNameBytes)
}

// RetryAfterError returns an ETOOMANYREQUESTS error that tells the client
// to wait d before trying again.
func RetryAfterError(d time.Duration, format string, args ...any) *Error {
	return &Error{Code: ETOOMANYREQUESTS, Message: fmt.Sprintf(format, args...), RetryAfter: d}
}

// Apply makes the changes u names to b, as a store does inside the
// transaction that read b: text fields trimmed, and a change of Copies
// moving the copies on the shelf by the same amount. It is a conflict for
// the copies to drop below those lent out, and the result must Validate.
func (b *Book) Apply(u BookUpdate) error {
	if u.Title != nil {
		b.Title = strings.TrimSpace(*u.Title)
	}
	if u.Author != nil {
		b.Author = strings.TrimSpace(*u.Author)
	}
	if u.ISBN != nil {
		b.ISBN = strings.TrimSpace(*u.ISBN)
	}
	if u.Year != nil {
		b.Year = *u.Year
	}
	if u.Copies != nil {
		lent := b.Copies - b.AvailableCopies
		if *u.Copies >= 0 && *u.Copies < lent {
			return Errorf(ECONFLICT, "Book %d cannot have %d copies while %d are lent out", b.ID, *u.Copies, lent)
		}
		b.AvailableCopies += *u.Copies - b.Copies
		b.Copies = *u.Copies
	}
	if err := b.Validate(); err != nil {
		return err
	}
	b.Available = b.AvailableCopies > 0
	return nil
}
