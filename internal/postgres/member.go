package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
)

// memberColumns are the columns scanMember reads, in order.
const memberColumns = `id, email, name, role, password_hash, created_at`

// findMember returns the member matching cond (a WHERE clause with one
// placeholder, $1) on q. It returns pgx.ErrNoRows, unwrapped, when there is
// none, so each caller can say what it looked for.
func findMember(ctx context.Context, q querier, cond string, arg any) (library.Member, error) {
	var m library.Member
	err := q.QueryRow(ctx, `SELECT `+memberColumns+` FROM members WHERE `+cond, arg).
		Scan(&m.ID, &m.Email, &m.Name, &m.Role, &m.PasswordHash, &m.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return library.Member{}, pgx.ErrNoRows
	} else if err != nil {
		return library.Member{}, fmt.Errorf("postgres: find member: %w", err)
	}
	m.CreatedAt = m.CreatedAt.UTC()
	return m, nil
}

// FindMemberByEmail returns ENOTFOUND when no member has the email. Emails
// match case-insensitively, through the index on lower(email).
func (db *DB) FindMemberByEmail(ctx context.Context, email string) (library.Member, error) {
	email = strings.TrimSpace(email)
	m, err := findMember(ctx, db.pool, `lower(email) = lower($1)`, email)
	if errors.Is(err, pgx.ErrNoRows) {
		return library.Member{}, library.Errorf(library.ENOTFOUND, "No member has the email %s", email)
	}
	return m, err
}

// FindMemberByID returns ENOTFOUND when no member has the id.
func (db *DB) FindMemberByID(ctx context.Context, id int64) (library.Member, error) {
	m, err := findMember(ctx, db.pool, `id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
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
	// Rounding to what is stored means the returned member equals the one
	// a later lookup reads back.
	m.CreatedAt = storedTime(m.CreatedAt)

	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE lower(email) = lower($1))`, m.Email).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: create member: %w", err)
		}
		if exists {
			return library.Errorf(library.ECONFLICT, "The email %s is already registered", m.Email)
		}
		err := tx.QueryRow(ctx,
			`INSERT INTO members (email, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			m.Email, m.Name, m.Role, m.PasswordHash, m.CreatedAt).Scan(&m.ID)
		if isUniqueViolation(err) {
			return library.Errorf(library.ECONFLICT, "The email %s is already registered", m.Email)
		} else if err != nil {
			return fmt.Errorf("postgres: create member: %w", err)
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
	return db.inTx(ctx, func(tx pgx.Tx) error {
		// Locking the member's row serialises the member's key creations,
		// so two replicas issuing at once cannot both leave one too many.
		// FOR NO KEY UPDATE leaves the row free for the foreign-key checks
		// of the member's borrows.
		if _, err := findMember(ctx, tx, `id = $1 FOR NO KEY UPDATE`, k.MemberID); errors.Is(err, pgx.ErrNoRows) {
			return library.Errorf(library.ENOTFOUND, "Member %d not found", k.MemberID)
		} else if err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, member_id, hash, created_at) VALUES ($1, $2, $3, $4)`,
			k.ID, k.MemberID, k.Hash, storedTime(k.CreatedAt))
		if isUniqueViolation(err) {
			return library.Errorf(library.ECONFLICT, "An API key with this id already exists")
		} else if err != nil {
			return fmt.Errorf("postgres: create api key: %w", err)
		}
		// seq breaks ties between keys made in the same microsecond.
		_, err = tx.Exec(ctx, `
DELETE FROM api_keys WHERE member_id = $1 AND id NOT IN (
	SELECT id FROM api_keys WHERE member_id = $1 ORDER BY created_at DESC, seq DESC LIMIT $2)`,
			k.MemberID, library.MaxAPIKeysPerMember)
		if err != nil {
			return fmt.Errorf("postgres: revoke oldest api keys: %w", err)
		}
		return nil
	})
}

// FindAPIKey returns what checking a bearer key needs, in one query: the
// key's hash and the member it names (id, email, name and role). ENOTFOUND
// when there is no such key, which includes a revoked one: revoking
// deletes it. It asks the server every time, so a key another replica has
// just revoked is refused at once: this round trip on every request with a
// key is the price of a shared store on the network, and the exact cache
// would not save it (cache.go). The notify cache does (notify.go), and
// accepts a key another replica has revoked until the notification of the
// revocation arrives. Every lookup that asks the server is counted
// (CountKeyLookups).
func (db *DB) FindAPIKey(ctx context.Context, id string) (library.APIKey, library.Member, error) {
	read := func() (keyAnswer, error) {
		if c := db.keyLookups.Load(); c != nil {
			(*c).Inc()
		}
		k, m, err := findAPIKey(ctx, db.pool, id)
		return keyAnswer{k, m}, err
	}
	var (
		a   keyAnswer
		err error
	)
	if db.notify == nil {
		a, err = read()
	} else {
		a, err = notified(db.notify, areaKeys, func(c *notifyCache) map[string]keyAnswer { return c.keys }, id, read)
	}
	return a.key, a.member, err
}

// findAPIKey is FindAPIKey's query, on q.
func findAPIKey(ctx context.Context, q querier, id string) (library.APIKey, library.Member, error) {
	k := library.APIKey{ID: id}
	var m library.Member
	err := q.QueryRow(ctx, `
SELECT k.hash, m.id, m.email, m.name, m.role
FROM api_keys k JOIN members m ON m.id = k.member_id
WHERE k.id = $1`, id).Scan(&k.Hash, &m.ID, &m.Email, &m.Name, &m.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return library.APIKey{}, library.Member{}, library.Errorf(library.ENOTFOUND, "API key not found")
	} else if err != nil {
		return library.APIKey{}, library.Member{}, fmt.Errorf("postgres: find api key: %w", err)
	}
	k.MemberID = m.ID
	return k, m, nil
}

// RevokeAPIKey deletes a key: ENOTFOUND when there is none, EFORBIDDEN when
// it belongs to another member. The key's row is locked first, so of two
// revocations the second finds it gone.
func (db *DB) RevokeAPIKey(ctx context.Context, memberID int64, id string) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var owner int64
		err := tx.QueryRow(ctx, `SELECT member_id FROM api_keys WHERE id = $1 FOR UPDATE`, id).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return library.Errorf(library.ENOTFOUND, "API key not found")
		} else if err != nil {
			return fmt.Errorf("postgres: revoke api key: %w", err)
		}
		if owner != memberID {
			return library.Errorf(library.EFORBIDDEN, "This API key belongs to another member")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM api_keys WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: revoke api key: %w", err)
		}
		return nil
	})
}
