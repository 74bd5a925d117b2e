package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
)

// bookColumns are the columns scanBook reads, in order.
const bookColumns = `id, title, author, COALESCE(isbn, ''), year, copies, available_copies`

// scanBook reads one row of bookColumns, after the columns that lead points
// to, if any (a page's total).
func scanBook(row pgx.Row, lead ...any) (library.Book, error) {
	var b library.Book
	if err := row.Scan(append(lead, &b.ID, &b.Title, &b.Author, &b.ISBN, &b.Year, &b.Copies, &b.AvailableCopies)...); err != nil {
		return library.Book{}, err
	}
	b.Available = b.AvailableCopies > 0
	return b, nil
}

// FindBooks returns a page of books matching f, ordered by id, and the total
// number of matches, from one statement, so from one snapshot (see
// readPage). Matching is case-insensitive (ILIKE), as SQLite's LIKE is.
// Pages come from the read cache while the server's snapshot is unchanged
// (or, with the notify cache, until a change is notified).
func (db *DB) FindBooks(ctx context.Context, f library.BookFilter) ([]library.Book, int, error) {
	// The same caps as the handlers check, so a caller that skips them
	// still cannot hand the database an unbounded pattern.
	if err := library.CheckLength("q", f.Query, library.MaxQueryBytes); err != nil {
		return nil, 0, err
	}
	if err := library.CheckLength("author", f.Author, library.MaxQueryBytes); err != nil {
		return nil, 0, err
	}
	var (
		where []string
		args  []any
		key   pageKey // the read cache's name for this page
	)
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		key.query = likePattern(q)
		p := param(key.query)
		where = append(where, `(title ILIKE `+p+` ESCAPE '\' OR author ILIKE `+p+` ESCAPE '\' OR isbn ILIKE `+p+` ESCAPE '\')`)
	}
	if a := strings.TrimSpace(f.Author); a != "" {
		key.author = likePattern(a)
		where = append(where, `author ILIKE `+param(key.author)+` ESCAPE '\'`)
	}
	if f.Available != nil {
		if *f.Available {
			key.available = 1
			where = append(where, `available_copies > 0`)
		} else {
			key.available = 2
			where = append(where, `available_copies = 0`)
		}
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	key.limit, key.offset = library.ClampPage(f.Limit, f.Offset, library.DefaultBookPageSize, library.MaxBookPageSize)
	countArgs := args
	page := `SELECT ` + snapshotSQL + `, (SELECT count(*) FROM books` + cond + `), ` + bookColumns + ` FROM books` + cond +
		` ORDER BY id LIMIT ` + param(key.limit) + ` OFFSET ` + param(key.offset)
	count := `SELECT ` + snapshotSQL + `, count(*) FROM books` + cond
	p, err := db.page(ctx, key, func() (bookPage, string, error) {
		// A page of the catalog is full, as a rule: room for all of it.
		books, total, tag, err := readPage(ctx, db.pool, page, count, args, countArgs, key.limit, key.offset, scanBook)
		return bookPage{books, total}, tag, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: find books: %w", err)
	}
	// A copy, so no caller can change the cached page.
	return slices.Clone(p.books), p.total, nil
}

// readPage runs page, a statement whose first columns are its snapshot and
// the total number of matches and whose other columns scan reads, and
// returns its rows, the total and the snapshot (the read cache's tag). One
// statement reads one snapshot, so the total agrees with the page. A page
// past the end has no row to carry the total: then count, run with
// countArgs, says it (and its snapshot), a moment later. An empty first
// page has no total to carry: 0, and no snapshot. sizeHint is how many
// rows to make room for at once.
func readPage[T any](ctx context.Context, q querier, page, count string, pageArgs, countArgs []any, sizeHint, offset int,
	scan func(row pgx.Row, lead ...any) (T, error)) ([]T, int, string, error) {
	rows, err := q.Query(ctx, page, pageArgs...)
	if err != nil {
		return nil, 0, "", err
	}
	defer rows.Close()
	items := make([]T, 0, sizeHint)
	var (
		total int
		tag   string
	)
	for rows.Next() {
		item, err := scan(rows, &tag, &total)
		if err != nil {
			return nil, 0, "", err
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, "", err
	}
	if len(items) == 0 && offset > 0 {
		if err := q.QueryRow(ctx, count, countArgs...).Scan(&tag, &total); err != nil {
			return nil, 0, "", err
		}
	}
	return items, total, tag, nil
}

// likePattern makes s a LIKE pattern matching any text that contains s,
// with LIKE's own wildcards in s matched literally.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// FindBookByID returns ENOTFOUND when no book has the id. It asks the
// server every time, but with the notify cache: an exactly cached answer
// would cost a round trip too (see cache.go).
func (db *DB) FindBookByID(ctx context.Context, id int64) (library.Book, error) {
	if db.notify == nil {
		return findBook(ctx, db.pool, id, "")
	}
	return notified(db.notify, areaBooks, func(c *notifyCache) map[int64]library.Book { return c.books }, id, func() (library.Book, error) {
		return findBook(ctx, db.pool, id, "")
	})
}

// findBook looks a book up on q; lock is "" or a locking clause (FOR
// UPDATE) for a read-modify-write.
func findBook(ctx context.Context, q querier, id int64, lock string) (library.Book, error) {
	b, err := scanBook(q.QueryRow(ctx, `SELECT `+bookColumns+` FROM books WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return library.Book{}, library.Errorf(library.ENOTFOUND, "Book %d not found", id)
	} else if err != nil {
		return library.Book{}, fmt.Errorf("postgres: find book %d: %w", id, err)
	}
	return b, nil
}

// checkISBNFree returns ECONFLICT when another book than id has the ISBN.
func checkISBNFree(ctx context.Context, tx querier, isbn string, id int64) error {
	if isbn == "" {
		return nil
	}
	var other int64
	err := tx.QueryRow(ctx, `SELECT id FROM books WHERE isbn = $1 AND id <> $2`, isbn, id).Scan(&other)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	} else if err != nil {
		return fmt.Errorf("postgres: check isbn: %w", err)
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
	if err = db.inTx(ctx, func(tx pgx.Tx) error {
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
	if err := checkISBNFree(ctx, tx, b.ISBN, 0); err != nil {
		return library.Book{}, err
	}
	err := tx.QueryRow(ctx,
		`INSERT INTO books (title, author, isbn, year, copies, available_copies) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		b.Title, b.Author, nullString(b.ISBN), b.Year, b.Copies, b.AvailableCopies).Scan(&b.ID)
	if isUniqueViolation(err) {
		return library.Book{}, library.Errorf(library.ECONFLICT, "ISBN %s is already in the catalog", b.ISBN)
	} else if err != nil {
		return library.Book{}, fmt.Errorf("postgres: create book: %w", err)
	}
	return b, nil
}

// UpdateBook changes the given fields. A change of Copies moves the copies
// on the shelf by the same amount, and is a conflict when it would leave
// fewer copies than are lent out. The book's row is locked from the read
// to the write, so no borrow or return slips in between.
func (db *DB) UpdateBook(ctx context.Context, id int64, u library.BookUpdate) (library.Book, error) {
	var b library.Book
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if b, err = findBook(ctx, tx, id, "FOR UPDATE"); err != nil {
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
		_, err = tx.Exec(ctx,
			`UPDATE books SET title = $1, author = $2, isbn = $3, year = $4, copies = $5, available_copies = $6 WHERE id = $7`,
			b.Title, b.Author, nullString(b.ISBN), b.Year, b.Copies, b.AvailableCopies, id)
		if isUniqueViolation(err) {
			return library.Errorf(library.ECONFLICT, "ISBN %s is already in the catalog", b.ISBN)
		} else if err != nil {
			return fmt.Errorf("postgres: update book %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return library.Book{}, err
	}
	return b, nil
}

// DeleteBook removes a book and its past (returned) borrow records; it is a
// conflict while any copy is lent out. The book's row is locked first, so
// no borrow of it commits between the count and the delete.
func (db *DB) DeleteBook(ctx context.Context, id int64) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := findBook(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		var active int
		if err := tx.QueryRow(ctx,
			`SELECT count(*) FROM borrows WHERE book_id = $1 AND returned_at IS NULL`, id,
		).Scan(&active); err != nil {
			return fmt.Errorf("postgres: delete book %d: %w", id, err)
		}
		if active > 0 {
			return library.Errorf(library.ECONFLICT, "Book %d cannot be deleted while %d of its copies are lent out", id, active)
		}
		// The foreign key would cascade too; saying it here keeps the
		// behaviour visible to a reader of this method.
		if _, err := tx.Exec(ctx, `DELETE FROM borrows WHERE book_id = $1`, id); err != nil {
			return fmt.Errorf("postgres: delete book %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM books WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: delete book %d: %w", id, err)
		}
		return nil
	})
}
