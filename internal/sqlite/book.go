package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/statelab/statelab/internal/library"
)

// bookColumns are the columns scanBook reads, in order.
const bookColumns = `id, title, author, COALESCE(isbn, ''), year, copies, available_copies`

// scanBook reads one row of bookColumns, after the columns that lead points
// to, if any (a page's total).
func scanBook(row interface{ Scan(...any) error }, lead ...any) (library.Book, error) {
	var b library.Book
	if err := row.Scan(append(lead, &b.ID, &b.Title, &b.Author, &b.ISBN, &b.Year, &b.Copies, &b.AvailableCopies)...); err != nil {
		return library.Book{}, err
	}
	b.Available = b.AvailableCopies > 0
	return b, nil
}

// FindBooks returns a page of books matching f, ordered by id, and the total
// number of matches, from one snapshot (see readPage). Each shape of filter
// has its statement, prepared at Open; only the values change.
func (db *DB) FindBooks(ctx context.Context, f library.BookFilter) ([]library.Book, int, error) {
	// The same caps as the handlers check, so a caller that skips them
	// still cannot hand SQLite a pattern it fails on as "too complex".
	if err := library.CheckLength("q", f.Query, library.MaxQueryBytes); err != nil {
		return nil, 0, err
	}
	if err := library.CheckLength("author", f.Author, library.MaxQueryBytes); err != nil {
		return nil, 0, err
	}
	var (
		shape bookShape
		args  []any
		key   pageKey // the read cache's name for this page
	)
	if q := strings.TrimSpace(f.Query); q != "" {
		p := likePattern(q)
		shape.query, key.query = true, p
		args = append(args, p, p, p)
	}
	if a := strings.TrimSpace(f.Author); a != "" {
		p := likePattern(a)
		shape.author, key.author = true, p
		args = append(args, p)
	}
	if f.Available != nil {
		shape.available = availableNo
		if *f.Available {
			shape.available = availableYes
		}
	}
	limit, offset := library.ClampPage(f.Limit, f.Offset, library.DefaultBookPageSize, library.MaxBookPageSize)

	// The filter's values appear twice: in the total and in the page. A
	// page of the catalog is full, as a rule: room for all of it at once.
	pageArgs := append(append(slices.Clip(args), args...), limit, offset)
	key.shape, key.limit, key.offset = shape, limit, offset
	page, err := cached(db.cache, func(c *cache) map[pageKey]bookPage { return c.pages }, key, func() (bookPage, error) {
		books, total, err := readPage(ctx, db.stmts.bookPage[shape], db.stmts.bookCount[shape], pageArgs, args, limit, offset, scanBook)
		return bookPage{books, total}, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: find books: %w", err)
	}
	// A copy, so no caller can change the cached page.
	return slices.Clone(page.books), page.total, nil
}

// likePattern makes s a LIKE pattern matching any text that contains s,
// with LIKE's own wildcards in s matched literally.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// FindBookByID returns ENOTFOUND when no book has the id.
func (db *DB) FindBookByID(ctx context.Context, id int64) (library.Book, error) {
	return cached(db.cache, func(c *cache) map[int64]library.Book { return c.books }, id, func() (library.Book, error) {
		return bookByID(db.stmts.bookByID.QueryRowContext(ctx, id), id)
	})
}

// findBook looks a book up inside a write transaction.
func findBook(ctx context.Context, tx querier, id int64) (library.Book, error) {
	return bookByID(tx.QueryRowContext(ctx, bookByIDSQL, id), id)
}

// bookByID reads the answer to bookByIDSQL.
func bookByID(row *sql.Row, id int64) (library.Book, error) {
	b, err := scanBook(row)
	if errors.Is(err, sql.ErrNoRows) {
		return library.Book{}, library.Errorf(library.ENOTFOUND, "Book %d not found", id)
	} else if err != nil {
		return library.Book{}, fmt.Errorf("sqlite: find book %d: %w", id, err)
	}
	return b, nil
}

// checkISBNFree returns ECONFLICT when another book than id has the ISBN.
func checkISBNFree(ctx context.Context, tx querier, isbn string, id int64) error {
	if isbn == "" {
		return nil
	}
	var other int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM books WHERE isbn = ? AND id != ?`, isbn, id).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return fmt.Errorf("sqlite: check isbn: %w", err)
	}
	return library.Errorf(library.ECONFLICT, "ISBN %s is already used by book %d", isbn, other)
}

// CreateBook stores b with all its copies on the shelf and returns it as
// stored. Its ID and availability are set here, whatever b holds.
func (db *DB) CreateBook(ctx context.Context, b library.Book) (library.Book, error) {
	b, err := newBook(b)
	if err != nil {
		return library.Book{}, err
	}
	if err = db.inTx(ctx, func(tx querier) error {
		b, err = createBookIn(ctx, tx, b)
		return err
	}); err != nil {
		return library.Book{}, err
	}
	return b, nil
}

// newBook trims and checks a book before any lock is taken, and puts all
// its copies on the shelf.
func newBook(b library.Book) (library.Book, error) {
	b.Title, b.Author, b.ISBN = strings.TrimSpace(b.Title), strings.TrimSpace(b.Author), strings.TrimSpace(b.ISBN)
	if err := b.Validate(); err != nil {
		return library.Book{}, err
	}
	b.AvailableCopies = b.Copies
	b.Available = b.Copies > 0
	return b, nil
}

// createBookIn inserts a book newBook made inside tx.
func createBookIn(ctx context.Context, tx querier, b library.Book) (library.Book, error) {
	err := func() error {
		if err := checkISBNFree(ctx, tx, b.ISBN, 0); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO books (title, author, isbn, year, copies, available_copies) VALUES (?, ?, ?, ?, ?, ?)`,
			b.Title, b.Author, nullString(b.ISBN), b.Year, b.Copies, b.AvailableCopies)
		if isUniqueViolation(err) {
			return library.Errorf(library.ECONFLICT, "ISBN %s is already in the catalog", b.ISBN)
		} else if err != nil {
			return fmt.Errorf("sqlite: create book: %w", err)
		}
		if b.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("sqlite: create book: %w", err)
		}
		return nil
	}()
	if err != nil {
		return library.Book{}, err
	}
	return b, nil
}

// UpdateBook changes the given fields. A change of Copies moves the copies
// on the shelf by the same amount, and is a conflict when it would leave
// fewer copies than are lent out.
func (db *DB) UpdateBook(ctx context.Context, id int64, u library.BookUpdate) (library.Book, error) {
	var b library.Book
	err := db.inTx(ctx, func(tx querier) error {
		var err error
		if b, err = findBook(ctx, tx, id); err != nil {
			return err
		}
		if err := b.Apply(u); err != nil {
			return err
		}
		if u.ISBN != nil {
			if err := checkISBNFree(ctx, tx, b.ISBN, id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx,
			`UPDATE books SET title = ?, author = ?, isbn = ?, year = ?, copies = ?, available_copies = ? WHERE id = ?`,
			b.Title, b.Author, nullString(b.ISBN), b.Year, b.Copies, b.AvailableCopies, id)
		if isUniqueViolation(err) {
			return library.Errorf(library.ECONFLICT, "ISBN %s is already in the catalog", b.ISBN)
		} else if err != nil {
			return fmt.Errorf("sqlite: update book %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return library.Book{}, err
	}
	return b, nil
}

// DeleteBook removes a book and its past (returned) borrow records; it is a
// conflict while any copy is lent out.
func (db *DB) DeleteBook(ctx context.Context, id int64) error {
	return db.inTx(ctx, func(tx querier) error {
		if _, err := findBook(ctx, tx, id); err != nil {
			return err
		}
		var active int
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*) FROM borrows WHERE book_id = ? AND returned_at IS NULL`, id,
		).Scan(&active); err != nil {
			return fmt.Errorf("sqlite: delete book %d: %w", id, err)
		}
		if active > 0 {
			return library.Errorf(library.ECONFLICT, "Book %d cannot be deleted while %d of its copies are lent out", id, active)
		}
		// The foreign key would cascade too; saying it here keeps the
		// behaviour visible to a reader of this method.
		if _, err := tx.ExecContext(ctx, `DELETE FROM borrows WHERE book_id = ?`, id); err != nil {
			return fmt.Errorf("sqlite: delete book %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM books WHERE id = ?`, id); err != nil {
			return fmt.Errorf("sqlite: delete book %d: %w", id, err)
		}
		return nil
	})
}
