package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// The texts of the statements on the write paths a request takes (a borrow,
// a return, an idempotent write, a key's lookup before one), and of the read
// pool's lookups that stmts has no field for. Open prepares each once, on
// the pool it runs on, and a preparedQuerier runs these texts as those
// statements: SQLite parses them once per connection, not once per request.
const (
	memberByIDInTxSQL    = `SELECT ` + memberColumns + ` FROM members WHERE id = ?`
	bookTitleSQL         = `SELECT title FROM books WHERE id = ?`
	takeCopySQL          = `UPDATE books SET available_copies = available_copies - 1 WHERE id = ? AND available_copies > 0`
	putCopyBackSQL       = `UPDATE books SET available_copies = available_copies + 1 WHERE id = ?`
	insertBorrowSQL      = `INSERT INTO borrows (book_id, member_id, borrower_name, borrow_date, due_date, idempotency_key) VALUES (?, ?, ?, ?, ?, ?)`
	borrowByIDSQL        = borrowSelect + ` WHERE b.id = ?`
	markReturnedSQL      = `UPDATE borrows SET returned_at = ? WHERE id = ?`
	findKeySQL           = `SELECT fingerprint, status, body, created_at FROM idempotency_keys WHERE member_id = ? AND key = ? AND created_at >= ?`
	forgetKeySQL         = `DELETE FROM idempotency_keys WHERE member_id = ? AND key = ?`
	storeKeySQL          = `INSERT INTO idempotency_keys (member_id, key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?)`
	borrowExistsSQL      = `SELECT EXISTS (SELECT 1 FROM borrows WHERE id = ?)`
	insertAPIKeySQL      = `INSERT INTO api_keys (id, member_id, hash, created_at) VALUES (?, ?, ?, ?)`
	revokeOldestKeysSQL  = `DELETE FROM api_keys WHERE member_id = ? AND id NOT IN (SELECT id FROM api_keys WHERE member_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?)`
	apiKeyOwnerSQL       = `SELECT member_id FROM api_keys WHERE id = ?`
	deleteAPIKeySQL      = `DELETE FROM api_keys WHERE id = ?`
	memberByEmailInTxSQL = `SELECT ` + memberColumns + ` FROM members WHERE email = ?`
	activeLoansSQL       = `SELECT count(*) FROM borrows WHERE member_id = ? AND returned_at IS NULL`
	// pruneReturnedSQL forgets a member's returned records older than the
	// newest library.MaxReturnedBorrows of them (the OFFSET is one less).
	pruneReturnedSQL = `DELETE FROM borrows WHERE member_id = ? AND returned_at IS NOT NULL AND id < (
	SELECT id FROM borrows WHERE member_id = ? AND returned_at IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET ?)`
	// evictRepliesSQL forgets a member's stored answers beyond the newest
	// n, or beyond a running total of bytes, keeping the newest always.
	evictRepliesSQL = `DELETE FROM idempotency_keys WHERE member_id = ? AND key IN (
	SELECT key FROM (
		SELECT key,
		       row_number() OVER newest AS n,
		       sum(length(body)) OVER newest AS bytes
		FROM idempotency_keys WHERE member_id = ?
		WINDOW newest AS (ORDER BY created_at DESC, key DESC)
	) WHERE n > 1 AND (n > ? OR bytes > ?))`
)

// writeSQL are prepared on the write pool, readSQL on the read pool.
var (
	writeSQL = []string{memberByIDInTxSQL, memberByEmailInTxSQL, bookTitleSQL, takeCopySQL, putCopyBackSQL, insertBorrowSQL,
		borrowByIDSQL, markReturnedSQL, findKeySQL, forgetKeySQL, storeKeySQL, insertAPIKeySQL, revokeOldestKeysSQL,
		apiKeyOwnerSQL, deleteAPIKeySQL, activeLoansSQL, pruneReturnedSQL, evictRepliesSQL}
	readSQL = []string{findKeySQL, borrowExistsSQL}
)

// prepareAll prepares every text on pool; on an error it closes those it
// made.
func prepareAll(ctx context.Context, pool *sql.DB, texts []string) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt, len(texts))
	for _, text := range texts {
		st, err := pool.PrepareContext(ctx, text)
		if err != nil {
			closeAll(stmts)
			return nil, fmt.Errorf("sqlite: prepare %q: %w", strings.Join(strings.Fields(text), " "), err)
		}
		stmts[text] = st
	}
	return stmts, nil
}

func closeAll(stmts map[string]*sql.Stmt) error {
	var errs []error
	for _, st := range stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// preparedQuerier runs the texts it has a prepared statement for as that
// statement, and any other text through q, parsed as usual. In a
// transaction (tx set) a statement runs through tx.StmtContext, which
// reuses its preparation on the transaction's connection: the write pool
// has one connection, so after Open nothing on it is parsed again.
type preparedQuerier struct {
	q     querier
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (p preparedQuerier) stmt(ctx context.Context, query string) (*sql.Stmt, bool) {
	st, ok := p.stmts[query]
	if ok && p.tx != nil {
		st = p.tx.StmtContext(ctx, st)
	}
	return st, ok
}

func (p preparedQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := p.stmt(ctx, query); ok {
		return st.ExecContext(ctx, args...)
	}
	return p.q.ExecContext(ctx, query, args...)
}

func (p preparedQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := p.stmt(ctx, query); ok {
		return st.QueryContext(ctx, args...)
	}
	return p.q.QueryContext(ctx, query, args...)
}

func (p preparedQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := p.stmt(ctx, query); ok {
		return st.QueryRowContext(ctx, args...)
	}
	return p.q.QueryRowContext(ctx, query, args...)
}

// PrepareContext prepares on q, for a statement that runs many times in one
// transaction (the seed).
func (p preparedQuerier) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.q.PrepareContext(ctx, query)
}
