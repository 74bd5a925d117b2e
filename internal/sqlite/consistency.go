package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Consistency is the result of checking the shared database's invariants.
// The comparison runner checks it after a load test: whatever the servers
// did to their sessions, the resource state must still add up.
type Consistency struct {
	// Books is how many books the catalog holds.
	Books int
	// NegativeAvailability lists books with fewer than zero copies on the
	// shelf, which the schema's CHECK should make impossible.
	NegativeAvailability []int64
	// Mismatched lists books where available_copies + active borrows !=
	// copies: a copy was lost or made up.
	Mismatched []int64
	// ActiveBorrows is how many borrows are not yet returned.
	ActiveBorrows int
	// KeyedBorrows is how many borrows were made by a request that carried
	// an idempotency key.
	KeyedBorrows int
	// AppliedTwice lists borrows that share member, idempotency key and
	// book with another borrow: one key that lent the same book twice, a
	// retry that was applied again instead of being replayed.
	AppliedTwice []int64
}

// OK reports whether no invariant is broken.
func (c Consistency) OK() bool {
	return len(c.NegativeAvailability) == 0 && len(c.Mismatched) == 0 && len(c.AppliedTwice) == 0
}

// CheckConsistency checks the invariants on one snapshot of the database.
func (db *DB) CheckConsistency(ctx context.Context) (Consistency, error) {
	c := Consistency{NegativeAvailability: []int64{}, Mismatched: []int64{}, AppliedTwice: []int64{}}
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
		return Consistency{}, err
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
