package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/statelab/statelab/internal/seed"
)

// seedDB fills an empty database with the catalog and the members of package
// seed. It runs inside the migration transaction, so it is all or nothing.
func seedDB(ctx context.Context, tx querier, now time.Time) error {
	books, err := seed.Books()
	if err != nil {
		return fmt.Errorf("sqlite: seed: %w", err)
	}
	bookStmt, err := tx.PrepareContext(ctx,
		`INSERT INTO books (title, author, isbn, year, copies, available_copies) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: seed: %w", err)
	}
	defer bookStmt.Close()
	for _, b := range books {
		if _, err := bookStmt.ExecContext(ctx, b.Title, b.Author, nullString(b.ISBN), b.Year, b.Copies, b.Copies); err != nil {
			return fmt.Errorf("sqlite: seed book %q: %w", b.Title, err)
		}
	}

	memberStmt, err := tx.PrepareContext(ctx,
		`INSERT INTO members (email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: seed: %w", err)
	}
	defer memberStmt.Close()
	created := formatTime(now)
	for _, m := range seed.Members() {
		if _, err := memberStmt.ExecContext(ctx, m.Email, m.Name, m.Role, m.PasswordHash, created); err != nil {
			return fmt.Errorf("sqlite: seed member %s: %w", m.Email, err)
		}
	}
	return nil
}

// nullString stores an empty string as NULL, so that optional unique
// columns (a book's ISBN) admit many blanks.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
