package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
)

// CheckConsistency checks the invariants on one snapshot of the database:
// a read-only REPEATABLE READ transaction, so every query sees the same
// commits.
func (db *DB) CheckConsistency(ctx context.Context) (library.Consistency, error) {
	c := library.Consistency{NegativeAvailability: []int64{}, Mismatched: []int64{}, AppliedTwice: []int64{}}
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return library.Consistency{}, fmt.Errorf("postgres: check consistency: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, q := range []struct {
		sql  string
		dest *int
	}{
		{`SELECT count(*) FROM books`, &c.Books},
		{`SELECT count(*) FROM borrows WHERE returned_at IS NULL`, &c.ActiveBorrows},
		{`SELECT count(*) FROM borrows WHERE idempotency_key IS NOT NULL`, &c.KeyedBorrows},
	} {
		if err := tx.QueryRow(ctx, q.sql).Scan(q.dest); err != nil {
			return library.Consistency{}, fmt.Errorf("postgres: check consistency: %w", err)
		}
	}
	for _, q := range []struct {
		sql  string
		dest *[]int64
	}{
		{`
SELECT b.id
FROM borrows b
JOIN (SELECT member_id, idempotency_key, book_id FROM borrows
      WHERE idempotency_key IS NOT NULL
      GROUP BY member_id, idempotency_key, book_id HAVING count(*) > 1) d
  ON d.member_id = b.member_id AND d.idempotency_key = b.idempotency_key AND d.book_id = b.book_id
ORDER BY b.id`, &c.AppliedTwice},
		{`SELECT id FROM books WHERE available_copies < 0 ORDER BY id`, &c.NegativeAvailability},
		{`
SELECT bk.id
FROM books bk
LEFT JOIN (SELECT book_id, count(*) AS n FROM borrows WHERE returned_at IS NULL GROUP BY book_id) a
       ON a.book_id = bk.id
WHERE bk.available_copies + COALESCE(a.n, 0) <> bk.copies
ORDER BY bk.id`, &c.Mismatched},
	} {
		rows, err := tx.Query(ctx, q.sql)
		if err != nil {
			return library.Consistency{}, fmt.Errorf("postgres: check consistency: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return library.Consistency{}, fmt.Errorf("postgres: check consistency: %w", err)
		}
		*q.dest = append(*q.dest, ids...)
	}
	if err := tx.Commit(ctx); err != nil {
		return library.Consistency{}, fmt.Errorf("postgres: check consistency: %w", err)
	}
	return c, nil
}
