package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// Idempotent makes the change req names at most once per member and key.
//
// The key, its fingerprint and the answer are inserted in the IMMEDIATE
// transaction that makes the change, so they commit together or not at
// all. Two requests with one key are serialised by SQLite's one writer:
// the second one's BEGIN IMMEDIATE waits (busy_timeout) until the first
// one has committed, then finds the key and replays its answer. A request
// "still being processed" is therefore never seen here, in this process or
// another; internal/api answers 409 idempotency_key_in_use for a key that
// is in flight in its own process, before it waits.
func (db *DB) Idempotent(ctx context.Context, req library.IdempotentRequest, change func(library.Writes) (library.StoredResponse, error)) (library.StoredResponse, bool, error) {
	if err := library.CheckIdempotencyKey(req.Key); err != nil {
		return library.StoredResponse{}, false, err
	}
	if req.Fingerprint == "" {
		return library.StoredResponse{}, false, errors.New("sqlite: idempotent: a request without a fingerprint")
	}
	// Most retries find the answer already committed: look on the read
	// pool first, without taking the write lock.
	if resp, ok, err := findKey(ctx, db.readQ(), req); err != nil || ok {
		return resp, ok, err
	}
	var (
		resp     library.StoredResponse
		replayed bool
	)
	err := db.inTx(ctx, func(tx querier) error {
		var err error
		if resp, replayed, err = findKey(ctx, tx, req); err != nil || replayed {
			return err
		}
		// A key older than its day names nothing any more; its row, not
		// yet swept, must make way for the new one.
		if _, err := tx.ExecContext(ctx, forgetKeySQL, req.MemberID, req.Key); err != nil {
			return fmt.Errorf("sqlite: forget an expired idempotency key: %w", err)
		}
		if resp, err = change(txWrites{tx: tx, key: req.Key}); err != nil {
			return err
		}
		if resp.Status < 200 || resp.Status > 299 {
			return fmt.Errorf("sqlite: idempotent: refusing to store status %d: only a change that happened is remembered", resp.Status)
		}
		if _, err := tx.ExecContext(ctx, storeKeySQL,
			req.MemberID, req.Key, req.Fingerprint, resp.Status, resp.Body, formatTime(time.Now())); err != nil {
			return fmt.Errorf("sqlite: store idempotency key: %w", err)
		}
		if _, err := tx.ExecContext(ctx, evictRepliesSQL,
			req.MemberID, req.MemberID, library.MaxStoredReplies, library.MaxStoredReplyBytes); err != nil {
			return fmt.Errorf("sqlite: forget the oldest idempotency keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return library.StoredResponse{}, false, err
	}
	return resp, replayed, nil
}

// findKey looks req's key up on q. A key older than IdempotencyKeyTTL is
// treated as absent, swept or not: the sweep runs now and then, and the
// promise is 24 hours, not "until the sweep".
func findKey(ctx context.Context, q querier, req library.IdempotentRequest) (library.StoredResponse, bool, error) {
	var (
		resp        library.StoredResponse
		fingerprint string
		created     string
	)
	err := q.QueryRowContext(ctx, findKeySQL,
		req.MemberID, req.Key, formatTime(time.Now().Add(-library.IdempotencyKeyTTL)),
	).Scan(&fingerprint, &resp.Status, &resp.Body, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return library.StoredResponse{}, false, nil
	case err != nil:
		return library.StoredResponse{}, false, fmt.Errorf("sqlite: find idempotency key: %w", err)
	case fingerprint != req.Fingerprint:
		return library.StoredResponse{}, false, library.Errorf(library.EKEYREUSED,
			"This Idempotency-Key was already used, at %s, for a different request (another route or another body). Use a new key for every new request, and the same key only to retry the same request.", created)
	}
	return resp, true, nil
}

// SweepIdempotencyKeys deletes the keys stored before t.
func (db *DB) SweepIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, formatTime(before))
		if err != nil {
			return fmt.Errorf("sqlite: sweep idempotency keys: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// txWrites are the Writes of one Idempotent transaction; every borrow they
// make carries the request's key.
type txWrites struct {
	tx  querier
	key string
}

func (w txWrites) CreateBook(ctx context.Context, b library.Book) (library.Book, error) {
	b, err := newBook(b)
	if err != nil {
		return library.Book{}, err
	}
	return createBookIn(ctx, w.tx, b)
}

func (w txWrites) Borrow(ctx context.Context, req library.BorrowRequest) ([]library.BorrowRecord, error) {
	days, err := validateBorrow(req)
	if err != nil {
		return nil, err
	}
	return borrowIn(ctx, w.tx, req, days, sql.NullString{String: w.key, Valid: true})
}

func (w txWrites) ReturnBorrow(ctx context.Context, memberID, borrowID int64) (library.BorrowRecord, error) {
	return returnIn(ctx, w.tx, memberID, borrowID)
}
