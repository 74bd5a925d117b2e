package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// memberColumns are the columns scanMember reads, in order.
const memberColumns = `id, email, name, role, password_hash, created_at`

// findMember returns the member matching cond (a WHERE clause with one
// placeholder) inside a write transaction. It returns sql.ErrNoRows,
// unwrapped, when there is none, so each caller can say what it looked for.
func findMember(ctx context.Context, tx querier, cond string, arg any) (library.Member, error) {
	return scanMember(tx.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM members WHERE `+cond, arg))
}

// scanMember reads a row of memberColumns; sql.ErrNoRows, unwrapped, when
// there is none.
func scanMember(row *sql.Row) (library.Member, error) {
	var (
		m       library.Member
		created string
	)
	err := row.Scan(&m.ID, &m.Email, &m.Name, &m.Role, &m.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return library.Member{}, sql.ErrNoRows
	} else if err != nil {
		return library.Member{}, fmt.Errorf("sqlite: find member: %w", err)
	}
	if m.CreatedAt, err = parseTime(created); err != nil {
		return library.Member{}, err
	}
	return m, nil
}

// FindMemberByEmail returns ENOTFOUND when no member has the email. Emails
// match case-insensitively.
func (db *DB) FindMemberByEmail(ctx context.Context, email string) (library.Member, error) {
	email = strings.TrimSpace(email)
	m, err := scanMember(db.stmts.memberByEmail.QueryRowContext(ctx, email))
	if errors.Is(err, sql.ErrNoRows) {
		return library.Member{}, library.Errorf(library.ENOTFOUND, "No member has the email %s", email)
	}
	return m, err
}

// FindMemberByID returns ENOTFOUND when no member has the id.
func (db *DB) FindMemberByID(ctx context.Context, id int64) (library.Member, error) {
	m, err := scanMember(db.stmts.memberByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return library.Member{}, library.Errorf(library.ENOTFOUND, "Member %d not found", id)
	}
	return m, err
}

// CreateMember stores m and returns it with its id. The role defaults to
// member; ECONFLICT when the email is taken, whatever its case.
func (db *DB) CreateMember(ctx context.Context, m library.Member) (library.Member, error) {
	m.Email, m.Name = strings.TrimSpace(m.Email), strings.TrimSpace(m.Name)
	if m.Role == "" {
		m.Role = library.RoleMember
	}
	if err := m.Validate(); err != nil {
		return library.Member{}, err
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now()
	}
	// Rounding through the stored form means the returned member equals
	// the one a later lookup reads back.
	var err error
	if m.CreatedAt, err = parseTime(formatTime(m.CreatedAt)); err != nil {
		return library.Member{}, err
	}

	err = db.inTx(ctx, func(tx querier) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE email = ?)`, m.Email).Scan(&exists); err != nil {
			return fmt.Errorf("sqlite: create member: %w", err)
		}
		if exists {
			return library.Errorf(library.ECONFLICT, "The email %s is already registered", m.Email)
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO members (email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			m.Email, m.Name, m.Role, m.PasswordHash, formatTime(m.CreatedAt))
		if isUniqueViolation(err) {
			return library.Errorf(library.ECONFLICT, "The email %s is already registered", m.Email)
		} else if err != nil {
			return fmt.Errorf("sqlite: create member: %w", err)
		}
		if m.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("sqlite: create member: %w", err)
		}
		return nil
	})
	if err != nil {
		return library.Member{}, err
	}
	return m, nil
}

// CreateAPIKey stores a key's id and hash and revokes the member's oldest
// keys beyond library.MaxAPIKeysPerMember. ENOTFOUND when the member does
// not exist, ECONFLICT when the id is taken.
func (db *DB) CreateAPIKey(ctx context.Context, k library.APIKey) error {
	if k.ID == "" || len(k.Hash) == 0 {
		return library.Errorf(library.EINVALID, "An API key needs an id and a hash")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	return db.inTx(ctx, func(tx querier) error {
		if _, err := findMember(ctx, tx, `id = ?`, k.MemberID); errors.Is(err, sql.ErrNoRows) {
			return library.Errorf(library.ENOTFOUND, "Member %d not found", k.MemberID)
		} else if err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertAPIKeySQL,
			k.ID, k.MemberID, k.Hash, formatTime(k.CreatedAt))
		if isUniqueViolation(err) {
			return library.Errorf(library.ECONFLICT, "An API key with this id already exists")
		} else if err != nil {
			return fmt.Errorf("sqlite: create api key: %w", err)
		}
		// Revoke the oldest beyond the cap, in the same transaction, so
		// two replicas issuing at once cannot both leave one too many.
		// rowid breaks ties between keys made in the same nanosecond.
		_, err = tx.ExecContext(ctx, revokeOldestKeysSQL,
			k.MemberID, k.MemberID, library.MaxAPIKeysPerMember)
		if err != nil {
			return fmt.Errorf("sqlite: revoke oldest api keys: %w", err)
		}
		return nil
	})
}

// FindAPIKey returns what checking a bearer key needs, in one query: the
// key's hash and the member it names (id, email, name and role). It reads
// nothing else: no creation times to parse, no password hash, on a path
// every stateless request takes. ENOTFOUND when there is no such key,
// which includes a revoked one: revoking deletes it.
//
// The answer comes from the read cache while the database is unchanged
// (cache.go): a revocation, in any process, is a commit, so the next
// request with the revoked key asks the database and is refused.
func (db *DB) FindAPIKey(ctx context.Context, id string) (library.APIKey, library.Member, error) {
	hit, err := cached(db.cache, func(c *cache) map[string]apiKeyHit { return c.keys }, id, func() (apiKeyHit, error) {
		k := library.APIKey{ID: id}
		var m library.Member
		err := db.stmts.apiKey.QueryRowContext(ctx, id).Scan(&k.Hash, &m.ID, &m.Email, &m.Name, &m.Role)
		if errors.Is(err, sql.ErrNoRows) {
			return apiKeyHit{}, library.Errorf(library.ENOTFOUND, "API key not found")
		} else if err != nil {
			return apiKeyHit{}, fmt.Errorf("sqlite: find api key: %w", err)
		}
		k.MemberID = m.ID
		return apiKeyHit{k, m}, nil
	})
	if err != nil {
		return library.APIKey{}, library.Member{}, err
	}
	return hit.key, hit.member, nil
}

// RevokeAPIKey deletes a key: ENOTFOUND when there is none, EFORBIDDEN when
// it belongs to another member.
func (db *DB) RevokeAPIKey(ctx context.Context, memberID int64, id string) error {
	return db.inTx(ctx, func(tx querier) error {
		var owner int64
		err := tx.QueryRowContext(ctx, apiKeyOwnerSQL, id).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return library.Errorf(library.ENOTFOUND, "API key not found")
		} else if err != nil {
			return fmt.Errorf("sqlite: revoke api key: %w", err)
		}
		if owner != memberID {
			return library.Errorf(library.EFORBIDDEN, "This API key belongs to another member")
		}
		if _, err := tx.ExecContext(ctx, deleteAPIKeySQL, id); err != nil {
			return fmt.Errorf("sqlite: revoke api key: %w", err)
		}
		return nil
	})
}
