package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/statelab/statelab/internal/library"
)

// CheckConsistency checks the invariants on one snapshot of the database.
func (db *DB) CheckConsistency(ctx context.Context) (library.Consistency, error) {
	c := library.Consistency{NegativeAvailability: []int64{}, Mismatched: []int64{}, AppliedTwice: []int64{}}
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM books`).Scan(&c.Books); err != nil {
			return fmt.Errorf("sqlite: check consistency: %w", err)
		}
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*) FROM borrows WHERE returned_at IS NULL`).Scan(&c.ActiveBorrows); err != nil {
			return fmt.Errorf("sqlite: check consistency: %w", err)
		}
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*) FROM borrows WHERE idempotency_key IS NOT NULL`).Scan(&c.KeyedBorrows); err != nil {
			return fmt.Errorf("sqlite: check consistency: %w", err)
		}
		var err error
		if c.AppliedTwice, err = ids(ctx, tx, `
SELECT b.id
FROM borrows b
JOIN (SELECT member_id, idempotency_key, book_id FROM borrows
      WHERE idempotency_key IS NOT NULL
      GROUP BY member_id, idempotency_key, book_id HAVING count(*) > 1) d
  ON d.member_id = b.member_id AND d.idempotency_key = b.idempotency_key AND d.book_id = b.book_id
ORDER BY b.id`); err != nil {
			return err
		}
		if c.NegativeAvailability, err = ids(ctx, tx,
			`SELECT id FROM books WHERE available_copies < 0 ORDER BY id`); err != nil {
			return err
		}
		c.Mismatched, err = ids(ctx, tx, `
SELECT bk.id
FROM books bk
LEFT JOIN (SELECT book_id, count(*) AS n FROM borrows WHERE returned_at IS NULL GROUP BY book_id) a
       ON a.book_id = bk.id
WHERE bk.available_copies + COALESCE(a.n, 0) != bk.copies
ORDER BY bk.id`)
		return err
	})
	if err != nil {
		return library.Consistency{}, err
	}
	return c, nil
}

// ids runs a query that returns one id column and collects the ids.
func ids(ctx context.Context, tx *sql.Tx, query string) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: check consistency: %w", err)
	}
	defer rows.Close()
	out := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: check consistency: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: check consistency: %w", err)
	}
	return out, nil
}
