package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
)

// keyLockSpace is the first half of the advisory locks that serialise the
// requests of one idempotency key; the second is a hash of member and key.
// Two keys that share a hash only wait for each other.
const keyLockSpace int32 = 0x69646b // "idk"

// keyLock returns the second half of the advisory lock of req's key.
func keyLock(req library.IdempotentRequest) int32 {
	h := fnv.New32a()
	h.Write(strconv.AppendInt(nil, req.MemberID, 10))
	h.Write([]byte{0})
	h.Write([]byte(req.Key))
	return int32(h.Sum32())
}

// Idempotent makes the change req names at most once per member and key.
//
// The key, its fingerprint and the answer are inserted in the transaction
// that makes the change, so they commit together or not at all. Two
// requests with one key, from any replica, are serialised by an advisory
// lock on the key, taken first in the transaction: the second one waits
// until the first one has committed, then finds the key and replays its
// answer, as SQLite's one writer makes it do there.
func (db *DB) Idempotent(ctx context.Context, req library.IdempotentRequest, change func(library.Writes) (library.StoredResponse, error)) (library.StoredResponse, bool, error) {
	if err := library.CheckIdempotencyKey(req.Key); err != nil {
		return library.StoredResponse{}, false, err
	}
	if req.Fingerprint == "" {
		return library.StoredResponse{}, false, errors.New("postgres: idempotent: a request without a fingerprint")
	}
	// Most retries find the answer already committed: look without a
	// transaction first.
	if resp, ok, err := findKey(ctx, db.pool, req); err != nil || ok {
		return resp, ok, err
	}
	var (
		resp     library.StoredResponse
		replayed bool
	)
	err := db.inTxTouching(ctx, touchesBooks, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, keyLockSpace, keyLock(req)); err != nil {
			return fmt.Errorf("postgres: lock idempotency key: %w", err)
		}
		var err error
		if resp, replayed, err = findKey(ctx, tx, req); err != nil || replayed {
			return err
		}
		// A key older than its day names nothing any more; its row, not
		// yet swept, must make way for the new one.
		if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE member_id = $1 AND key = $2`, req.MemberID, req.Key); err != nil {
			return fmt.Errorf("postgres: forget an expired idempotency key: %w", err)
		}
		if resp, err = change(txWrites{tx: tx, key: req.Key}); err != nil {
			return err
		}
		if resp.Status < 200 || resp.Status > 299 {
			return fmt.Errorf("postgres: idempotent: refusing to store status %d: only a change that happened is remembered", resp.Status)
		}
		body := resp.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO idempotency_keys (member_id, key, fingerprint, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			req.MemberID, req.Key, req.Fingerprint, resp.Status, body, storedTime(time.Now())); err != nil {
			return fmt.Errorf("postgres: store idempotency key: %w", err)
		}
		if err := lockMember(ctx, tx, req.MemberID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE member_id = $1 AND key IN (
			SELECT key FROM (
				SELECT key, row_number() OVER newest AS n, sum(octet_length(body)) OVER newest AS bytes
				FROM idempotency_keys WHERE member_id = $1
				WINDOW newest AS (ORDER BY created_at DESC, key DESC)
			) k WHERE n > 1 AND (n > $2 OR bytes > $3))`,
			req.MemberID, library.MaxStoredReplies, library.MaxStoredReplyBytes); err != nil {
			return fmt.Errorf("postgres: forget the oldest idempotency keys: %w", err)
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
		created     time.Time
	)
	err := q.QueryRow(ctx,
		`SELECT fingerprint, status, body, created_at FROM idempotency_keys WHERE member_id = $1 AND key = $2 AND created_at >= $3`,
		req.MemberID, req.Key, time.Now().Add(-library.IdempotencyKeyTTL),
	).Scan(&fingerprint, &resp.Status, &resp.Body, &created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return library.StoredResponse{}, false, nil
	case err != nil:
		return library.StoredResponse{}, false, fmt.Errorf("postgres: find idempotency key: %w", err)
	case fingerprint != req.Fingerprint:
		return library.StoredResponse{}, false, library.Errorf(library.EKEYREUSED,
			"This Idempotency-Key was already used, at %s, for a different request (another route or another body). Use a new key for every new request, and the same key only to retry the same request.", created.UTC().Format(timeLayout))
	}
	return resp, true, nil
}

// SweepIdempotencyKeys deletes the keys stored before t.
func (db *DB) SweepIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: sweep idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// txWrites are the Writes of one Idempotent transaction; every borrow they
// make carries the request's key.
type txWrites struct {
	tx  pgx.Tx
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
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return borrowIn(ctx, w.tx, req, &w.key)
}

func (w txWrites) ReturnBorrow(ctx context.Context, memberID, borrowID int64) (library.BorrowRecord, error) {
	return returnIn(ctx, w.tx, memberID, borrowID)
}
