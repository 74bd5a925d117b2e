package library

import (
	"context"
	"time"
)

// Roles a member can have.
const (
	RoleMember    = "member"
	RoleLibrarian = "librarian"
)

// Book is a title in the catalog. Copies is how many the library owns;
// AvailableCopies how many are on the shelf now.
type Book struct {
	ID              int64  `json:"id"`
	Title           string `json:"title"`
	Author          string `json:"author"`
	ISBN            string `json:"isbn"`
	Year            int    `json:"year"`
	Copies          int    `json:"copies"`
	AvailableCopies int    `json:"available_copies"`
	Available       bool   `json:"available"`
}

// BookFilter selects a page of the catalog. Empty fields match everything.
type BookFilter struct {
	Query     string // matched against title, author and ISBN
	Author    string // matched against author only
	Available *bool  // when set, only books with (or without) a copy on the shelf
	Limit     int
	Offset    int
}

// BookUpdate holds the fields of a book a librarian may change; nil fields
// stay as they are.
type BookUpdate struct {
	Title  *string
	Author *string
	ISBN   *string
	Year   *int
	Copies *int
}

// BorrowRecord is one copy of one book lent to one member.
type BorrowRecord struct {
	ID            int64      `json:"id"`
	BookID        int64      `json:"book_id"`
	BookTitle     string     `json:"book_title"`
	MemberID      int64      `json:"-"`
	BorrowerEmail string     `json:"borrower_email"`
	BorrowerName  string     `json:"borrower_name"`
	BorrowDate    time.Time  `json:"borrow_date"`
	DueDate       time.Time  `json:"due_date"`
	Returned      bool       `json:"returned"`
	ReturnDate    *time.Time `json:"return_date,omitempty"`
}

// BorrowRequest asks to lend one copy of each of BookIDs to a member, all or
// none.
type BorrowRequest struct {
	MemberID     int64
	BookIDs      []int64
	BorrowerName string // defaults to the member's name
	Days         int    // loan length; defaults to DefaultLoanDays
}

// Loan lengths, in days.
const (
	DefaultLoanDays = 14
	MaxLoanDays     = 90
)

// Member is someone who can sign in. PasswordHash is a bcrypt hash, empty
// only for members registered by email alone, which the stateless server
// allows only with its --insecure-email-only-keys flag (the original lab's
// key flow).
type Member struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
}

// APIKey is the stored half of an API key: its public id and the SHA-256
// hash of the whole key. The key itself is shown to its owner once and never
// stored.
type APIKey struct {
	ID        string
	MemberID  int64
	Hash      []byte
	CreatedAt time.Time
}

// Store holds the resource state: everything both servers share through one
// database. It holds no conversation state; that is the whole point.
type Store interface {
	// Ping reports whether the store can answer queries.
	Ping(ctx context.Context) error

	// FindBooks returns a page of books matching f and the total number of
	// matches.
	FindBooks(ctx context.Context, f BookFilter) ([]Book, int, error)
	// FindBookByID returns ENOTFOUND when no book has the id.
	FindBookByID(ctx context.Context, id int64) (Book, error)
	// CreateBook stores b (its ID and availability are set by the store) and
	// returns it as stored.
	CreateBook(ctx context.Context, b Book) (Book, error)
	// UpdateBook changes the given fields. Changing Copies changes the copies
	// on the shelf by the same amount; it is a conflict to drop below the
	// copies lent out.
	UpdateBook(ctx context.Context, id int64, u BookUpdate) (Book, error)
	// DeleteBook removes a book; a conflict while copies are lent out.
	DeleteBook(ctx context.Context, id int64) error

	// Borrow lends one copy of every requested book in one transaction, or
	// none: EUNAVAILABLE (with the ids in Detail) when any has no copy left,
	// ENOTFOUND when any does not exist, ELOANLIMIT when the member would
	// have more than MaxActiveLoans out.
	Borrow(ctx context.Context, req BorrowRequest) ([]BorrowRecord, error)
	// FindBorrows returns a page of a member's borrow records, newest
	// first, and how many the member has in all.
	FindBorrows(ctx context.Context, f BorrowFilter) ([]BorrowRecord, int, error)
	// ReturnBorrow marks a borrow returned: EFORBIDDEN when it is not the
	// member's, ECONFLICT when already returned. It forgets the member's
	// oldest returned records beyond MaxReturnedBorrows.
	ReturnBorrow(ctx context.Context, memberID, borrowID int64) (BorrowRecord, error)

	// FindMemberByEmail returns ENOTFOUND when no member has the email.
	FindMemberByEmail(ctx context.Context, email string) (Member, error)
	// FindMemberByID returns ENOTFOUND when no member has the id.
	FindMemberByID(ctx context.Context, id int64) (Member, error)
	// CreateMember stores m and returns it with its id; ECONFLICT when the
	// email is taken.
	CreateMember(ctx context.Context, m Member) (Member, error)

	// CreateAPIKey stores a key's id and hash. When the member then holds
	// more than MaxAPIKeysPerMember keys, the oldest are revoked.
	CreateAPIKey(ctx context.Context, k APIKey) error
	// FindAPIKey returns what checking a bearer key needs: the key's id,
	// member and hash, and the member's id, email, name and role (no
	// creation times, no password hash); ENOTFOUND when there is no such
	// key or it has been revoked.
	FindAPIKey(ctx context.Context, id string) (APIKey, Member, error)
	// RevokeAPIKey deletes a key: ENOTFOUND when there is none, EFORBIDDEN
	// when it belongs to another member.
	RevokeAPIKey(ctx context.Context, memberID int64, id string) error

	// Idempotent makes the change a request names at most once per key.
	// When the member already stored req.Key (less than IdempotencyKeyTTL
	// ago) with the same fingerprint, it returns the stored answer and
	// replayed true, and change is not called; with another fingerprint
	// it returns EKEYREUSED. Otherwise it calls change with Writes bound to
	// one transaction and, when change returns no error, stores the key,
	// the fingerprint and the answer in that same transaction, so that no
	// crash can leave a change without its key or a key without its
	// change. An error rolls everything back and stores nothing: a request
	// that failed changed nothing, so its key stays free for a retry.
	// Requests with one key are serialised: the second one waits for the
	// first one's transaction, then finds its answer.
	// Storing a key forgets the member's oldest beyond MaxStoredReplies
	// or MaxStoredReplyBytes.
	Idempotent(ctx context.Context, req IdempotentRequest, change func(Writes) (StoredResponse, error)) (resp StoredResponse, replayed bool, err error)
	// SweepIdempotencyKeys forgets the keys stored before t and returns
	// how many it forgot.
	SweepIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)

	// AdmitSignIn decides whether a sign-in may be tried now, from the
	// account's failed sign-ins in the last SignInFailureWindow, counted
	// by every process on the store. A trusted device (a.Device) is
	// admitted while TrustedSignInWait says so; any other attempt while
	// SignInBackoff says so, and is counted as failed at once (the ticket's
	// Reserved), in one transaction with the count, so that attempts
	// admitted at once on every replica can never pass the limit. A
	// refused attempt gets SignInRefused (ETOOMANYREQUESTS with the wait)
	// and counts nothing. Failures older than the window are forgotten.
	AdmitSignIn(ctx context.Context, a SignInAttempt) (SignInTicket, error)
	// SettleSignIn records how an admitted attempt ended: a failure
	// (a wrong password) is counted, if it was not already; anything else
	// (signed in, or refused before the password was checked) is not, and
	// a failure counted in advance is taken back.
	SettleSignIn(ctx context.Context, t SignInTicket, failed bool) error
}
