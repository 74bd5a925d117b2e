package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/statelab/statelab/internal/library"
)

// call sends r and decodes a success's data into out (nil: none wanted);
// any other answer is an *Error.
func (c *Client) call(ctx context.Context, r Request, out any) error {
	resp, err := c.Do(ctx, r)
	if err != nil {
		return err
	}
	if err := resp.Err(); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return resp.Decode(out)
}

// callPage is call for a list that answers a page: its data and its meta.
func callPage[T any](ctx context.Context, c *Client, path string) ([]T, PageMeta, error) {
	var (
		items []T
		meta  PageMeta
	)
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: path})
	if err != nil {
		return nil, meta, err
	}
	if err := resp.Err(); err != nil {
		return nil, meta, err
	}
	if err := resp.Decode(&items); err != nil {
		return nil, meta, err
	}
	if len(resp.Meta) > 0 {
		if err := json.Unmarshal(resp.Meta, &meta); err != nil {
			return items, meta, err
		}
	}
	return items, meta, nil
}

// health reads a body that is not wrapped in an envelope.
func (c *Client) health(ctx context.Context, path string) (Health, error) {
	var h Health
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: path})
	if err != nil {
		return h, err
	}
	if err := resp.Err(); err != nil {
		return h, err
	}
	if err := json.Unmarshal(resp.Body, &h); err != nil {
		return h, resp.Decode(&h) // says what the body was
	}
	return h, nil
}

// Health asks whether the process is up (GET /api/health).
func (c *Client) Health(ctx context.Context) (Health, error) { return c.health(ctx, HealthPath) }

// Ready asks whether the process takes traffic (GET /api/ready): an *Error
// with library.ENOTREADY when it does not.
func (c *Client) Ready(ctx context.Context) (Health, error) { return c.health(ctx, ReadyPath) }

// Me returns the member the credential names (GET /api/me).
func (c *Client) Me(ctx context.Context) (Me, error) {
	var m Me
	err := c.call(ctx, Request{Method: http.MethodGet, Path: MePath}, &m)
	return m, err
}

// Books returns the page of books f selects (GET /api/books).
func (c *Client) Books(ctx context.Context, f library.BookFilter) ([]library.Book, PageMeta, error) {
	return callPage[library.Book](ctx, c, FindBooksPath(f))
}

// Book returns one book (GET /api/books/{id}).
func (c *Client) Book(ctx context.Context, id int64) (library.Book, error) {
	var b library.Book
	err := c.call(ctx, Request{Method: http.MethodGet, Path: BookPath(id)}, &b)
	return b, err
}

// CreateBook adds a book to the catalog, as a librarian (POST /api/books).
func (c *Client) CreateBook(ctx context.Context, in BookInput) (library.Book, error) {
	var b library.Book
	err := c.call(ctx, Request{Method: http.MethodPost, Path: BooksPath, Body: in}, &b)
	return b, err
}

// UpdateBook changes the fields of a book that in sets, as a librarian
// (PUT /api/books/{id}).
func (c *Client) UpdateBook(ctx context.Context, id int64, in BookInput) (library.Book, error) {
	var b library.Book
	err := c.call(ctx, Request{Method: http.MethodPut, Path: BookPath(id), Body: in}, &b)
	return b, err
}

// DeleteBook removes a book from the catalog, as a librarian (DELETE
// /api/books/{id}).
func (c *Client) DeleteBook(ctx context.Context, id int64) error {
	return c.call(ctx, Request{Method: http.MethodDelete, Path: BookPath(id)}, nil)
}

// BorrowBook borrows one copy of a book (POST /api/books/{id}/borrow).
func (c *Client) BorrowBook(ctx context.Context, id int64, in BorrowInput) (library.BorrowRecord, error) {
	var rec library.BorrowRecord
	err := c.call(ctx, Request{Method: http.MethodPost, Path: BorrowBookPath(id), Body: in}, &rec)
	return rec, err
}

// Borrow borrows one copy of each book, all or none: the stateless
// client's own cart, sent whole (POST /api/borrows).
func (c *Client) Borrow(ctx context.Context, bookIDs ...int64) ([]library.BorrowRecord, error) {
	var recs []library.BorrowRecord
	err := c.call(ctx, Request{Method: http.MethodPost, Path: BorrowsPath, Body: BorrowBooksInput{BookIDs: bookIDs}}, &recs)
	return recs, err
}

// Borrows returns a page of the member's borrow records, newest first (GET
// /api/borrows); zero leaves limit or offset to the server.
func (c *Client) Borrows(ctx context.Context, limit, offset int) ([]library.BorrowRecord, PageMeta, error) {
	return callPage[library.BorrowRecord](ctx, c, BorrowsPagePath(limit, offset))
}

// Return returns a borrowed book (POST /api/borrows/{id}/return).
func (c *Client) Return(ctx context.Context, borrowID int64) (library.BorrowRecord, error) {
	var rec library.BorrowRecord
	err := c.call(ctx, Request{Method: http.MethodPost, Path: ReturnPath(borrowID)}, &rec)
	return rec, err
}

// Logout ends the session the credential names (POST /api/auth/logout).
func (c *Client) Logout(ctx context.Context) error {
	return c.call(ctx, Request{Method: http.MethodPost, Path: LogoutPath}, nil)
}

// Cart returns the session's cart (GET /api/cart).
func (c *Client) Cart(ctx context.Context) (Cart, error) {
	var ct Cart
	err := c.call(ctx, Request{Method: http.MethodGet, Path: CartPath}, &ct)
	return ct, err
}

// AddToCart puts a book in the session's cart (POST /api/cart/items).
func (c *Client) AddToCart(ctx context.Context, bookID int64) (Cart, error) {
	var ct Cart
	err := c.call(ctx, Request{Method: http.MethodPost, Path: CartItemsPath, Body: CartInput{BookID: bookID}}, &ct)
	return ct, err
}

// RemoveFromCart takes a book out of the session's cart (DELETE
// /api/cart/items/{book_id}).
func (c *Client) RemoveFromCart(ctx context.Context, bookID int64) (Cart, error) {
	var ct Cart
	err := c.call(ctx, Request{Method: http.MethodDelete, Path: CartItemPath(bookID)}, &ct)
	return ct, err
}

// Checkout borrows the whole cart and empties it (POST
// /api/cart/checkout).
func (c *Client) Checkout(ctx context.Context) ([]library.BorrowRecord, error) {
	var recs []library.BorrowRecord
	err := c.call(ctx, Request{Method: http.MethodPost, Path: CheckoutPath}, &recs)
	return recs, err
}

// RevokeKey revokes one of the member's API keys (DELETE
// /api/auth/keys/{key_id}).
func (c *Client) RevokeKey(ctx context.Context, keyID string) error {
	return c.call(ctx, Request{Method: http.MethodDelete, Path: KeyPath(keyID)}, nil)
}
