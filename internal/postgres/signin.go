package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
)

// signInLockSpace is the first half of the advisory locks that serialise
// the admissions of one account; the second is a hash of its email.
const signInLockSpace int32 = 0x73676e // "sgn"

// AdmitSignIn decides whether a sign-in may be tried now. A trusted
// device's attempt is judged by one read, with no lock: it counts nothing
// in advance. Any other attempt is judged and counted in one transaction
// that holds the account's advisory lock: two replicas cannot both admit
// the attempt that passes the limit, as SQLite's one writer makes it
// there. The account's failures past the window are forgotten first, and
// a few of every account's, skipping rows another admission holds, so a
// spray of emails does not stay.
func (db *DB) AdmitSignIn(ctx context.Context, a library.SignInAttempt) (library.SignInTicket, error) {
	t := library.SignInTicket{SignInAttempt: a}
	since := a.At.Add(-library.SignInFailureWindow)
	if a.Device != "" {
		f, err := countFailures(ctx, db.pool, a, since)
		if err != nil {
			return t, err
		}
		if wait, trusted := library.TrustedSignInWait(f.device, f.n, f.oldest, a.At); trusted {
			if wait > 0 {
				return library.SignInTicket{}, library.SignInRefused(wait)
			}
			return t, nil // recorded by SettleSignIn if it fails
		}
	}
	err := db.inTxTouching(ctx, touchesNone, func(tx pgx.Tx) error {
		h := fnv.New32a()
		h.Write([]byte(a.Email))
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, signInLockSpace, int32(h.Sum32())); err != nil {
			return fmt.Errorf("postgres: lock sign-ins: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_failures WHERE id IN (
			SELECT id FROM sign_in_failures WHERE at <= $1 ORDER BY at LIMIT 100 FOR UPDATE SKIP LOCKED)`, since); err != nil {
			return fmt.Errorf("postgres: forget old sign-in failures: %w", err)
		}
		f, err := countFailures(ctx, tx, a, since)
		if err != nil {
			return err
		}
		if wait := library.SignInBackoff(f.n, f.oldest, f.last, a.At); wait > 0 {
			return library.SignInRefused(wait)
		}
		t.Reserved, err = insertFailure(ctx, tx, a)
		return err
	})
	if err != nil {
		return library.SignInTicket{}, err
	}
	return t, nil
}

// SettleSignIn counts a trusted device's failure, or takes back the
// failure an untrusted attempt that did not fail was counted with.
func (db *DB) SettleSignIn(ctx context.Context, t library.SignInTicket, failed bool) error {
	switch {
	case failed && t.Reserved == 0:
		_, err := insertFailure(ctx, db.pool, t.SignInAttempt)
		return err
	case !failed && t.Reserved != 0:
		if _, err := db.pool.Exec(ctx, `DELETE FROM sign_in_failures WHERE id = $1`, t.Reserved); err != nil {
			return fmt.Errorf("postgres: take back a sign-in failure: %w", err)
		}
	}
	return nil
}

// failures is what AdmitSignIn judges an attempt by: the account's failed
// sign-ins in the window, the oldest and the latest, and those of the
// attempt's device.
type failures struct {
	n, device    int
	oldest, last time.Time
}

func countFailures(ctx context.Context, q querier, a library.SignInAttempt, since time.Time) (failures, error) {
	var (
		f            failures
		oldest, last *time.Time
	)
	if err := q.QueryRow(ctx,
		`SELECT count(*), count(*) FILTER (WHERE device = $1 AND device != ''), min(at), max(at) FROM sign_in_failures WHERE email = $2 AND at > $3`,
		a.Device, a.Email, since,
	).Scan(&f.n, &f.device, &oldest, &last); err != nil {
		return f, fmt.Errorf("postgres: count sign-in failures: %w", err)
	}
	if oldest != nil && last != nil {
		f.oldest, f.last = *oldest, *last
	}
	return f, nil
}

func insertFailure(ctx context.Context, q querier, a library.SignInAttempt) (int64, error) {
	var id int64
	if err := q.QueryRow(ctx, `INSERT INTO sign_in_failures (email, device, at) VALUES ($1, $2, $3) RETURNING id`,
		a.Email, a.Device, a.At).Scan(&id); err != nil {
		return 0, fmt.Errorf("postgres: count a sign-in failure: %w", err)
	}
	return id, nil
}
