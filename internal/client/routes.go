package client

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

// Paths of the routes without variables: the handler packages' templates
// themselves.
const (
	HealthPath  = api.HealthRoute
	ReadyPath   = api.ReadyRoute
	MetricsPath = api.MetricsRoute
	MePath      = api.MeRoute
	BooksPath   = api.BooksRoute
	BorrowsPath = api.BorrowsRoute

	// The stateful server's.
	LoginPath     = stateful.LoginRoute
	LogoutPath    = stateful.LogoutRoute
	CartPath      = stateful.CartRoute
	CartItemsPath = stateful.CartItemsRoute
	CheckoutPath  = stateful.CheckoutRoute

	// The stateless server's.
	GenerateKeyPath = stateless.GenerateKeyRoute
	TokenPath       = stateless.TokenRoute

	// APIPrefix begins every Library API path.
	APIPrefix = api.Prefix
)

// Templates of the routes with variables, for text that names a route
// rather than sends a request to it.
const (
	BookRoute = api.BookRoute
	KeyRoute  = stateless.KeyRoute
)

// BookPath is GET, PUT and DELETE /api/books/{id}.
func BookPath(id int64) string { return fill(api.BookRoute, itoa(id)) }

// BorrowBookPath is POST /api/books/{id}/borrow.
func BorrowBookPath(id int64) string { return fill(api.BorrowBookRoute, itoa(id)) }

// ReturnPath is POST /api/borrows/{id}/return.
func ReturnPath(borrowID int64) string { return fill(api.ReturnRoute, itoa(borrowID)) }

// CartItemPath is DELETE /api/cart/items/{book_id}.
func CartItemPath(bookID int64) string { return fill(stateful.CartItemRoute, itoa(bookID)) }

// KeyPath is DELETE /api/auth/keys/{key_id}.
func KeyPath(keyID string) string { return fill(stateless.KeyRoute, url.PathEscape(keyID)) }

// FindBooksPath is GET /api/books with the query that asks for the books f
// selects. Zero fields are left out, so the server's defaults apply (the
// first page, of DefaultBookPageSize books); the parameters come in
// alphabetical order.
func FindBooksPath(f library.BookFilter) string {
	q := url.Values{}
	if f.Query != "" {
		q.Set("q", f.Query)
	}
	if f.Author != "" {
		q.Set("author", f.Author)
	}
	if f.Available != nil {
		q.Set("available", strconv.FormatBool(*f.Available))
	}
	return withPage(BooksPath, q, f.Limit, f.Offset)
}

// BorrowsPagePath is GET /api/borrows for one page of the member's borrow
// records; zero leaves limit or offset to the server.
func BorrowsPagePath(limit, offset int) string {
	return withPage(BorrowsPath, url.Values{}, limit, offset)
}

func withPage(path string, q url.Values, limit, offset int) string {
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset != 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// IsSignIn reports whether path is one of the routes that hand out a
// credential: a request to it needs none.
func IsSignIn(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	return path == LoginPath || path == GenerateKeyPath || path == TokenPath
}

// fill puts values, in order, in place of a template's {variables}.
func fill(template string, values ...string) string {
	var b strings.Builder
	for _, v := range values {
		open := strings.IndexByte(template, '{')
		end := strings.IndexByte(template, '}')
		if open < 0 || end < open {
			break
		}
		b.WriteString(template[:open])
		b.WriteString(v)
		template = template[end+1:]
	}
	b.WriteString(template)
	return b.String()
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
