package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/statelab/statelab/internal/library"
)

// Page limits for GET /api/books; the rules live in library.
const (
	DefaultPageSize = library.DefaultBookPageSize
	MaxPageSize     = library.MaxBookPageSize
)

// Member returns the request's member. The authentication middleware put it
// there; its absence is a wiring bug, reported as an internal error.
func Member(r *http.Request) (library.Member, error) {
	m, ok := library.MemberFromContext(r.Context())
	if !ok {
		return m, fmt.Errorf("no member in the context of %s %s: the route is not behind authentication", r.Method, r.URL.Path)
	}
	return m, nil
}

// PathID parses the named path variable as a positive integer id.
func PathID(r *http.Request, name string) (int64, error) {
	raw := mux.Vars(r)[name]
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(library.EINVALID, "%q is not a valid %s: use a positive whole number.", raw, name)
	}
	return id, nil
}

// Me is the data of GET /api/me: the member's row, and the replica that
// read it.
type Me struct {
	library.Member
	ServedBy string `json:"served_by"`
}

// handleMe answers from the member's row in the store, whatever found the
// member: a session holds a copy made at login, an API key's lookup joins
// the row, a JWT carries only its claims. Reading the row on every path
// makes /api/me the same work for every credential, so timing it compares
// only how the caller was identified, and every answer is as fresh.
func handleMe(store library.Store, replica string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := Member(r)
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		if m, err = store.FindMemberByID(r.Context(), m.ID); err != nil {
			Error(w, r, logger, err)
			return
		}
		OK(w, http.StatusOK, Me{Member: m, ServedBy: replica}, "You are "+m.Email+".")
	})
}

// PageMeta is the "meta" of a page of books or borrow records.
type PageMeta struct {
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

func handleListBooks(store library.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseBookFilter(r.URL.Query())
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		books, total, err := store.FindBooks(r.Context(), f)
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		if books == nil {
			books = []library.Book{}
		}
		Encode(w, http.StatusOK, Envelope{
			Success: true,
			Data:    books,
			Meta:    PageMeta{Total: total, Limit: f.Limit, Offset: f.Offset},
			Message: fmt.Sprintf("%d of %d books.", len(books), total),
		})
	})
}

// ParseBookFilter reads the query of GET /api/books: q, author,
// available, limit and offset. Every failure is an EINVALID that says what
// to send instead; a filter it returns passes Validate.
func ParseBookFilter(q url.Values) (library.BookFilter, error) {
	f := library.BookFilter{
		Query:  strings.TrimSpace(q.Get("q")),
		Author: strings.TrimSpace(q.Get("author")),
	}
	// Checked before trimming too: a megabyte of spaces is no search.
	if err := library.CheckLength("q", q.Get("q"), library.MaxQueryBytes); err != nil {
		return f, err
	}
	if err := library.CheckLength("author", q.Get("author"), library.MaxQueryBytes); err != nil {
		return f, err
	}
	if v := q.Get("available"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, errorf(library.EINVALID, "available=%.20q: use true or false.", v)
		}
		f.Available = &b
	}
	var err error
	if f.Limit, f.Offset, err = ParsePage(q, library.DefaultBookPageSize, library.MaxBookPageSize); err != nil {
		return f, err
	}
	return f, f.Validate()
}

// ParsePage reads limit and offset from a list's query: limit from 1 to
// most (def when absent), offset 0 or more.
func ParsePage(q url.Values, def, most int) (limit, offset int, err error) {
	limit = def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > most {
			return 0, 0, errorf(library.EINVALID, "limit=%.20q: use a whole number from 1 to %d.", v, most)
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, errorf(library.EINVALID, "offset=%.20q: use a whole number, 0 or more.", v)
		}
		offset = n
	}
	return limit, offset, nil
}

func handleGetBook(store library.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := PathID(r, "id")
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		b, err := store.FindBookByID(r.Context(), id)
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		OK(w, http.StatusOK, b, "")
	})
}

// BookInput is the body of POST /api/books and PUT /api/books/{id}. Pointer
// fields tell "left out" from "set to zero".
type BookInput struct {
	Title  *string `json:"title,omitempty"`
	Author *string `json:"author,omitempty"`
	ISBN   *string `json:"isbn,omitempty"`
	Year   *int    `json:"year,omitempty"`
	Copies *int    `json:"copies,omitempty"`
}

// requireLibrarian returns the member when it may change the catalog.
func requireLibrarian(r *http.Request) (library.Member, error) {
	m, err := Member(r)
	if err != nil {
		return m, err
	}
	if m.Role != library.RoleLibrarian {
		return m, errorf(library.EFORBIDDEN, "Only a librarian may change the catalog; %s is a %s.", m.Email, m.Role)
	}
	return m, nil
}

// createBook is POST /api/books.
func createBook(w http.ResponseWriter, r *http.Request, s library.Writes) (Result, error) {
	if _, err := requireLibrarian(r); err != nil {
		return Result{}, err
	}
	in, err := Decode[BookInput](w, r)
	if err != nil {
		return Result{}, err
	}
	if in.Title == nil || in.Author == nil {
		return Result{}, errorf(library.EINVALID, "A new book needs at least a title and an author.")
	}
	b := library.Book{Title: *in.Title, Author: *in.Author, Copies: 1}
	if in.ISBN != nil {
		b.ISBN = *in.ISBN
	}
	if in.Year != nil {
		b.Year = *in.Year
	}
	if in.Copies != nil {
		b.Copies = *in.Copies
	}
	b, err = s.CreateBook(r.Context(), b)
	if err != nil {
		return Result{}, err
	}
	return Result{Status: http.StatusCreated, Data: b, Message: fmt.Sprintf("Added %q to the catalog.", b.Title)}, nil
}

func handleUpdateBook(store library.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := requireLibrarian(r); err != nil {
			Error(w, r, logger, err)
			return
		}
		id, err := PathID(r, "id")
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		in, err := Decode[BookInput](w, r)
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		b, err := store.UpdateBook(r.Context(), id, library.BookUpdate{
			Title: in.Title, Author: in.Author, ISBN: in.ISBN, Year: in.Year, Copies: in.Copies,
		})
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		OK(w, http.StatusOK, b, fmt.Sprintf("Updated %q.", b.Title))
	})
}

func handleDeleteBook(store library.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := requireLibrarian(r); err != nil {
			Error(w, r, logger, err)
			return
		}
		id, err := PathID(r, "id")
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		if err := store.DeleteBook(r.Context(), id); err != nil {
			Error(w, r, logger, err)
			return
		}
		OK(w, http.StatusOK, nil, fmt.Sprintf("Book %d was removed from the catalog.", id))
	})
}

// BorrowInput is the optional body of POST /api/books/{id}/borrow; zero
// fields take the defaults (the member's name, DefaultLoanDays).
type BorrowInput struct {
	BorrowerName string `json:"borrower_name,omitempty"`
	Days         int    `json:"days,omitempty"`
}

// borrowBook is POST /api/books/{id}/borrow.
func borrowBook(w http.ResponseWriter, r *http.Request, s library.Writes) (Result, error) {
	m, err := Member(r)
	if err != nil {
		return Result{}, err
	}
	id, err := PathID(r, "id")
	if err != nil {
		return Result{}, err
	}
	in, err := DecodeOptional[BorrowInput](w, r)
	if err != nil {
		return Result{}, err
	}
	recs, err := s.Borrow(r.Context(), library.BorrowRequest{
		MemberID: m.ID, BookIDs: []int64{id}, BorrowerName: in.BorrowerName, Days: in.Days,
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Status: http.StatusCreated, Data: recs[0],
		Message: fmt.Sprintf("You borrowed %q; it is due back on %s.", recs[0].BookTitle, recs[0].DueDate.Format("2006-01-02"))}, nil
}

// BorrowBooksInput is the body of POST /api/borrows: the stateless client's
// own cart, sent whole. Zero optional fields take the defaults, as in
// BorrowInput, and a client leaves them out.
type BorrowBooksInput struct {
	BookIDs      []int64 `json:"book_ids"`
	BorrowerName string  `json:"borrower_name,omitempty"`
	Days         int     `json:"days,omitempty"`
}

// borrowBooks is POST /api/borrows.
func borrowBooks(w http.ResponseWriter, r *http.Request, s library.Writes) (Result, error) {
	m, err := Member(r)
	if err != nil {
		return Result{}, err
	}
	in, err := Decode[BorrowBooksInput](w, r)
	if err != nil {
		return Result{}, err
	}
	if len(in.BookIDs) == 0 {
		return Result{}, errorf(library.EINVALID, "book_ids must list at least one book id.")
	}
	recs, err := s.Borrow(r.Context(), library.BorrowRequest{
		MemberID: m.ID, BookIDs: in.BookIDs, BorrowerName: in.BorrowerName, Days: in.Days,
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Status: http.StatusCreated, Data: recs, Message: fmt.Sprintf("You borrowed %d book(s).", len(recs))}, nil
}

func handleListBorrows(store library.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := Member(r)
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		f := library.BorrowFilter{MemberID: m.ID}
		if f.Limit, f.Offset, err = ParsePage(r.URL.Query(), library.DefaultBorrowPageSize, library.MaxBorrowPageSize); err != nil {
			Error(w, r, logger, err)
			return
		}
		recs, total, err := store.FindBorrows(r.Context(), f)
		if err != nil {
			Error(w, r, logger, err)
			return
		}
		if recs == nil {
			recs = []library.BorrowRecord{}
		}
		Encode(w, http.StatusOK, Envelope{
			Success: true,
			Data:    recs,
			Meta:    PageMeta{Total: total, Limit: f.Limit, Offset: f.Offset},
			Message: fmt.Sprintf("%d of %d borrow record(s).", len(recs), total),
		})
	})
}

// returnBorrow is POST /api/borrows/{id}/return.
func returnBorrow(_ http.ResponseWriter, r *http.Request, s library.Writes) (Result, error) {
	m, err := Member(r)
	if err != nil {
		return Result{}, err
	}
	id, err := PathID(r, "id")
	if err != nil {
		return Result{}, err
	}
	rec, err := s.ReturnBorrow(r.Context(), m.ID, id)
	if err != nil {
		return Result{}, err
	}
	return Result{Status: http.StatusOK, Data: rec, Message: fmt.Sprintf("You returned %q.", rec.BookTitle)}, nil
}
