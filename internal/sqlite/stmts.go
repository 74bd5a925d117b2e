package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// stmts are the statements of the read paths that requests run all the
// time: finding a book, a page of books, a page of borrows, the API key of a
// bearer token with its member, and the readiness ping. They are prepared
// once, at Open, on the read pool: the profile of GET /api/books/{id} spent
// a third of its CPU time in SQLite's parser when every request handed it
// the same text again. database/sql prepares a *sql.Stmt on each pooled
// connection the first time it runs there, and keeps it for the
// connection's life, so after the first few requests nothing is parsed.
//
// Only statements live here, never results: every request still reads the
// shared file, so a write by another process is seen by the next read.
type stmts struct {
	ping          *sql.Stmt
	bookByID      *sql.Stmt
	apiKey        *sql.Stmt
	memberByID    *sql.Stmt
	memberByEmail *sql.Stmt
	borrowPage    *sql.Stmt
	borrowCount   *sql.Stmt
	// bookPage and bookCount have one statement per shape of filter, so
	// each shape's text is fixed and parsed once.
	bookPage  map[bookShape]*sql.Stmt
	bookCount map[bookShape]*sql.Stmt

	all []*sql.Stmt // every statement above, for Close
}

// bookShape is which filters a page of books uses; the values are bound.
type bookShape struct {
	query     bool // q: title, author or ISBN contains
	author    bool // author contains
	available int  // availableAny, availableYes or availableNo
}

const (
	availableAny = iota
	availableYes
	availableNo
)

// where returns the shape's WHERE clause ("" when it has no filter). The
// text depends on the shape only, never on the values, which are bound as
// arguments in the order bookArgs gives them.
func (s bookShape) where() string {
	var where []string
	if s.query {
		where = append(where, `(title LIKE ? ESCAPE '\' OR author LIKE ? ESCAPE '\' OR isbn LIKE ? ESCAPE '\')`)
	}
	if s.author {
		where = append(where, `author LIKE ? ESCAPE '\'`)
	}
	switch s.available {
	case availableYes:
		where = append(where, `available_copies > 0`)
	case availableNo:
		where = append(where, `available_copies = 0`)
	}
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

// bookShapes returns every shape, so Open can prepare them all.
func bookShapes() []bookShape {
	var shapes []bookShape
	for _, q := range []bool{false, true} {
		for _, a := range []bool{false, true} {
			for _, av := range []int{availableAny, availableYes, availableNo} {
				shapes = append(shapes, bookShape{query: q, author: a, available: av})
			}
		}
	}
	return shapes
}

// The statements' text. A page and its total come from one statement, so
// from one snapshot, with no transaction to begin and commit: the total is
// a subquery that does not depend on the row, which SQLite computes once.
const (
	bookByIDSQL = `SELECT ` + bookColumns + ` FROM books WHERE id = ?`

	// apiKeySQL finds a key's hash and the member it names in one query.
	apiKeySQL = `
SELECT k.hash, m.id, m.email, m.name, m.role
FROM api_keys k JOIN members m ON m.id = k.member_id
WHERE k.id = ?`

	borrowPageSQL = `SELECT (SELECT count(*) FROM borrows WHERE member_id = ?), ` +
		borrowColumns + borrowFrom + ` WHERE b.member_id = ? ORDER BY b.id DESC LIMIT ? OFFSET ?`
	borrowCountSQL = `SELECT count(*) FROM borrows WHERE member_id = ?`
)

func bookPageSQL(s bookShape) string {
	return `SELECT (SELECT count(*) FROM books` + s.where() + `), ` + bookColumns +
		` FROM books` + s.where() + ` ORDER BY id LIMIT ? OFFSET ?`
}

func bookCountSQL(s bookShape) string {
	return `SELECT count(*) FROM books` + s.where()
}

// prepare prepares every statement on the read pool. On an error it closes
// those it made.
func prepare(ctx context.Context, read *sql.DB) (*stmts, error) {
	s := &stmts{bookPage: map[bookShape]*sql.Stmt{}, bookCount: map[bookShape]*sql.Stmt{}}
	var err error
	p := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		if st, err = read.PrepareContext(ctx, query); err != nil {
			err = fmt.Errorf("sqlite: prepare %q: %w", strings.Join(strings.Fields(query), " "), err)
			return nil
		}
		s.all = append(s.all, st)
		return st
	}
	s.ping = p(`SELECT 1`)
	s.bookByID = p(bookByIDSQL)
	s.apiKey = p(apiKeySQL)
	s.memberByID = p(`SELECT ` + memberColumns + ` FROM members WHERE id = ?`)
	s.memberByEmail = p(`SELECT ` + memberColumns + ` FROM members WHERE email = ?`)
	s.borrowPage = p(borrowPageSQL)
	s.borrowCount = p(borrowCountSQL)
	for _, shape := range bookShapes() {
		s.bookPage[shape] = p(bookPageSQL(shape))
		s.bookCount[shape] = p(bookCountSQL(shape))
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close closes every statement.
func (s *stmts) close() error {
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// readPage runs page, a statement whose first column is the total number of
// matches and whose other columns scan reads, and returns its rows and the
// total. One statement reads one snapshot, so the total agrees with the
// page. A page past the end has no row to carry the total: then count,
// run with countArgs, says it, a moment later. sizeHint is how many rows
// to make room for at once.
func readPage[T any](ctx context.Context, page, count *sql.Stmt, pageArgs, countArgs []any, sizeHint, offset int,
	scan func(row interface{ Scan(...any) error }, lead ...any) (T, error)) ([]T, int, error) {
	rows, err := page.QueryContext(ctx, pageArgs...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	items := make([]T, 0, sizeHint)
	var total int
	for rows.Next() {
		item, err := scan(rows, &total)
		if err != nil {
			return nil, 0, err
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if len(items) == 0 && offset > 0 {
		if err := count.QueryRowContext(ctx, countArgs...).Scan(&total); err != nil {
			return nil, 0, err
		}
	}
	return items, total, nil
}
