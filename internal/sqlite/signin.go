package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// AdmitSignIn decides whether a sign-in may be tried now. A trusted
// device's attempt is judged on the read pool, without the write lock: it
// counts nothing in advance, and the simulated users, whose devices are
// trusted after their first sign-in, sign in again often. Any other
// attempt is judged and counted in one IMMEDIATE transaction: SQLite's one
// writer serialises every process's admissions, so two replicas cannot
// both admit the attempt that passes the limit. Failures past the window,
// of every account, are forgotten there first.
func (db *DB) AdmitSignIn(ctx context.Context, a library.SignInAttempt) (library.SignInTicket, error) {
	t := library.SignInTicket{SignInAttempt: a}
	since := formatTime(a.At.Add(-library.SignInFailureWindow))
	if a.Device != "" {
		f, err := countFailures(ctx, db.readQ(), a, since)
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
	err := db.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_failures WHERE at <= ?`, since); err != nil {
			return fmt.Errorf("sqlite: forget old sign-in failures: %w", err)
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
		return db.inTx(ctx, func(tx querier) error {
			_, err := insertFailure(ctx, tx, t.SignInAttempt)
			return err
		})
	case !failed && t.Reserved != 0:
		if _, err := db.write.ExecContext(ctx, `DELETE FROM sign_in_failures WHERE id = ?`, t.Reserved); err != nil {
			return fmt.Errorf("sqlite: take back a sign-in failure: %w", err)
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

func countFailures(ctx context.Context, q querier, a library.SignInAttempt, since string) (failures, error) {
	var (
		f            failures
		oldest, last sql.NullString
	)
	if err := q.QueryRowContext(ctx,
		`SELECT count(*), count(CASE WHEN device = ? AND device != '' THEN 1 END), min(at), max(at) FROM sign_in_failures WHERE email = ? AND at > ?`,
		a.Device, a.Email, since,
	).Scan(&f.n, &f.device, &oldest, &last); err != nil {
		return f, fmt.Errorf("sqlite: count sign-in failures: %w", err)
	}
	if !oldest.Valid || !last.Valid {
		return f, nil
	}
	var err error
	if f.oldest, err = parseTime(oldest.String); err != nil {
		return f, err
	}
	f.last, err = parseTime(last.String)
	return f, err
}

func insertFailure(ctx context.Context, tx querier, a library.SignInAttempt) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO sign_in_failures (email, device, at) VALUES (?, ?, ?)`,
		a.Email, a.Device, formatTime(a.At))
	if err != nil {
		return 0, fmt.Errorf("sqlite: count a sign-in failure: %w", err)
	}
	return res.LastInsertId()
}
