package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// AdmitSignIn decides, in one IMMEDIATE transaction, whether a sign-in may
// be tried now: SQLite's one writer serialises every process's admissions,
// so two replicas cannot both admit the attempt that passes the limit.
// Failures past the window, of every account, are forgotten first.
func (db *DB) AdmitSignIn(ctx context.Context, a library.SignInAttempt) (library.SignInTicket, error) {
	t := library.SignInTicket{SignInAttempt: a}
	err := db.inTx(ctx, func(tx querier) error {
		since := formatTime(a.At.Add(-library.SignInFailureWindow))
		if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_failures WHERE at <= ?`, since); err != nil {
			return fmt.Errorf("sqlite: forget old sign-in failures: %w", err)
		}
		var (
			n, device    int
			oldest, last sql.NullString
		)
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*), count(CASE WHEN device = ? AND device != '' THEN 1 END), min(at), max(at) FROM sign_in_failures WHERE email = ? AND at > ?`,
			a.Device, a.Email, since,
		).Scan(&n, &device, &oldest, &last); err != nil {
			return fmt.Errorf("sqlite: count sign-in failures: %w", err)
		}
		first, latest, err := failureTimes(oldest, last)
		if err != nil {
			return err
		}
		if a.Device != "" {
			if wait, trusted := library.TrustedSignInWait(device, n, first, a.At); trusted {
				if wait > 0 {
					return library.SignInRefused(wait)
				}
				return nil // recorded by SettleSignIn if it fails
			}
		}
		if wait := library.SignInBackoff(n, first, latest, a.At); wait > 0 {
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

func insertFailure(ctx context.Context, tx querier, a library.SignInAttempt) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO sign_in_failures (email, device, at) VALUES (?, ?, ?)`,
		a.Email, a.Device, formatTime(a.At))
	if err != nil {
		return 0, fmt.Errorf("sqlite: count a sign-in failure: %w", err)
	}
	return res.LastInsertId()
}

// failureTimes parses the oldest and latest failure; zero times when there
// are none.
func failureTimes(oldest, last sql.NullString) (time.Time, time.Time, error) {
	if !oldest.Valid || !last.Valid {
		return time.Time{}, time.Time{}, nil
	}
	first, err := parseTime(oldest.String)
	if err != nil {
		return first, first, err
	}
	latest, err := parseTime(last.String)
	return first, latest, err
}
