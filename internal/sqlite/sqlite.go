package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/statelab/statelab/internal/library"
)

// DB implements library.Store on one SQLite file shared by many processes.
type DB struct {
	// write has one connection whose transactions begin IMMEDIATE; every
	// write and every read-modify-write goes through it.
	write *sql.DB
	// read has a few query_only connections for plain reads.
	read *sql.DB
	// stmts are the read paths' prepared statements, on the read pool.
	stmts *stmts
	// writeStmts and readStmts are the statements of prepared.go, on the
	// write pool and on the read pool.
	writeStmts, readStmts map[string]*sql.Stmt
	// cache remembers the hottest reads while the database is unchanged;
	// nil when it is off (see cache.go).
	cache *cache
}

// Option changes how Open opens a database.
type Option func(*options)

type options struct {
	noCache bool
}

// WithoutCache turns the read cache off, so every read asks SQLite: what
// the servers' --read-cache=false does, to measure what the cache saves.
func WithoutCache() Option { return func(o *options) { o.noCache = true } }

var _ library.Store = (*DB)(nil)

// Pool sizes. One write connection per process is enough because SQLite
// admits one writer at a time anyway; see the package documentation.
const (
	writeConns = 1
	readConns  = 4
	// busyTimeout is how long, in milliseconds, a connection waits for
	// another process's lock before failing with SQLITE_BUSY.
	busyTimeout = 10000
)

// timeLayout stores times as fixed-width UTC text with nanoseconds, so they
// round-trip exactly and sort as text in time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Open opens (creating the directory and file if needed) the database at
// path, applies the schema (idempotent migrations), and seeds it when empty.
// It is safe when several processes call it at once on a fresh file:
// migration and seeding happen inside one IMMEDIATE transaction that
// re-checks whether the seed is already there.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" {
		return nil, errors.New("sqlite: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := restrictFiles(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	db := &DB{}
	db.write, err = sql.Open("sqlite", fileURI(abs, url.Values{
		"_txlock": {"immediate"},
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout),
			"journal_mode(WAL)",
			"foreign_keys(1)",
			"synchronous(NORMAL)",
		},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open write pool: %w", err)
	}
	db.write.SetMaxOpenConns(writeConns)
	db.write.SetMaxIdleConns(writeConns)

	if err := db.migrateRetrying(ctx); err != nil {
		db.write.Close()
		return nil, err
	}

	// The read pool is opened after the migration so its first connection
	// finds the file already in WAL mode; query_only makes an accidental
	// write through it fail loudly instead of racing the write pool.
	db.read, err = sql.Open("sqlite", fileURI(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout),
			"foreign_keys(1)",
			"query_only(1)",
		},
	}))
	if err != nil {
		db.write.Close()
		return nil, fmt.Errorf("sqlite: open read pool: %w", err)
	}
	db.read.SetMaxOpenConns(readConns)
	db.read.SetMaxIdleConns(readConns)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: ping read pool: %w", err)
	}
	if db.stmts, err = prepare(ctx, db.read); err != nil {
		db.Close()
		return nil, err
	}
	if db.readStmts, err = prepareAll(ctx, db.read, readSQL); err != nil {
		db.Close()
		return nil, err
	}
	if db.writeStmts, err = prepareAll(ctx, db.write, writeSQL); err != nil {
		db.Close()
		return nil, err
	}
	if !o.noCache {
		if db.cache, err = openCache(abs); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// FileMode is the mode of the database file and of its -wal and -shm
// companions. The file holds password hashes and API key hashes: on a
// shared classroom machine other accounts must not read it.
const FileMode os.FileMode = 0o600

// restrictFiles creates the database file with FileMode when it is missing
// and takes group and other permissions away from it and its companions
// when they exist. SQLite creates -wal and -shm with the main file's mode
// (and fchmods them to it, whatever the umask), so a 0600 main file is
// enough for files yet to come; the explicit Chmod makes the main file's
// mode independent of the umask too.
func restrictFiles(abs string) error {
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{abs, abs + "-wal", abs + "-shm", abs + "-journal"} {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		if st.Mode().Perm()&^FileMode != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&FileMode); err != nil {
				return err
			}
		}
	}
	return nil
}

// fileURI returns a file: URI for the absolute path abs. The path is
// percent-encoded, so spaces, '?' and '#' in directory names reach SQLite
// intact instead of being read as the start of the query.
func fileURI(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	return u.String()
}

// Close closes the prepared statements and both connection pools.
func (db *DB) Close() error {
	errs := []error{db.cache.close(), closeAll(db.readStmts), closeAll(db.writeStmts)}
	if db.stmts != nil {
		errs = append(errs, db.stmts.close())
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	return errors.Join(errs...)
}

// Ping reports whether the store can answer queries. It asks the read pool,
// so a long write elsewhere does not make a replica look unready.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.stmts.ping.QueryRowContext(ctx).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// migrateRetrying runs migrate until it is not refused with SQLITE_BUSY.
// Several processes opening a brand-new file at once race to turn it into
// WAL mode, and SQLite refuses the losers at once, without waiting out the
// busy timeout (waiting could deadlock). Each retry finds the file a little
// further along; the winner's transaction takes a few milliseconds.
func (db *DB) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout * time.Millisecond)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := db.migrate(ctx)
		if !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		// Throw away connections that may hold a half-made pragma state.
		db.write.SetMaxIdleConns(0)
		db.write.SetMaxIdleConns(writeConns)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait + time.Duration(rand.Int64N(int64(wait)))):
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// migrate brings the schema up to date and seeds an empty database, all in
// one IMMEDIATE transaction so concurrent openers do it exactly once.
func (db *DB) migrate(ctx context.Context) error {
	return db.inTx(ctx, func(tx querier) error {
		var version int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			return fmt.Errorf("sqlite: read schema version: %w", err)
		}
		steps := migrations()
		if version > len(steps) {
			return fmt.Errorf("sqlite: database schema version %d is newer than this program's %d", version, len(steps))
		}
		for i := version; i < len(steps); i++ {
			if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
				return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
			}
		}
		if version != len(steps) {
			// PRAGMA takes no bound parameters; the value is an int we own.
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(steps))); err != nil {
				return fmt.Errorf("sqlite: write schema version: %w", err)
			}
		}

		var seeded bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM members) OR EXISTS (SELECT 1 FROM books)`,
		).Scan(&seeded); err != nil {
			return fmt.Errorf("sqlite: check seed: %w", err)
		}
		if seeded {
			return nil
		}
		return seedDB(ctx, tx, time.Now())
	})
}

// migrations returns the schema steps in order; step i brings user_version
// from i to i+1. Append new steps, never edit old ones.
func migrations() []string {
	return []string{
		`
CREATE TABLE books (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	title            TEXT    NOT NULL,
	author           TEXT    NOT NULL,
	isbn             TEXT    UNIQUE, -- NULL when unknown, so several books may lack one
	year             INTEGER NOT NULL DEFAULT 0,
	copies           INTEGER NOT NULL CHECK (copies >= 0),
	available_copies INTEGER NOT NULL CHECK (available_copies >= 0 AND available_copies <= copies)
);

CREATE TABLE members (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	name          TEXT    NOT NULL,
	role          TEXT    NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'librarian')),
	password_hash TEXT    NOT NULL DEFAULT '',
	created_at    TEXT    NOT NULL
);

CREATE TABLE api_keys (
	id         TEXT    PRIMARY KEY,
	member_id  INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
	hash       BLOB    NOT NULL,
	created_at TEXT    NOT NULL
);
CREATE INDEX api_keys_member_id ON api_keys (member_id);

CREATE TABLE borrows (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	book_id       INTEGER NOT NULL REFERENCES books (id) ON DELETE CASCADE,
	member_id     INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
	borrower_name TEXT    NOT NULL,
	borrow_date   TEXT    NOT NULL,
	due_date      TEXT    NOT NULL,
	returned_at   TEXT
);
CREATE INDEX borrows_member_id ON borrows (member_id);
CREATE INDEX borrows_book_id ON borrows (book_id);
`,
		// 2: Idempotency-Key. A key is stored with the answer it names in
		// the transaction of the change it protects; each borrow records
		// the key of the request that made it (NULL without one), so the
		// end-of-run check can see a key applied twice.
		`
ALTER TABLE borrows ADD COLUMN idempotency_key TEXT;
CREATE INDEX borrows_idempotency_key ON borrows (member_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE idempotency_keys (
	member_id   INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
	key         TEXT    NOT NULL,
	fingerprint TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	body        BLOB    NOT NULL,
	created_at  TEXT    NOT NULL,
	PRIMARY KEY (member_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
`,
		// 3: failed sign-ins, per account (an email, whether or not a
		// member has it) and device ('' for a client the account does not
		// trust), kept for library.SignInFailureWindow.
		`
CREATE TABLE sign_in_failures (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	email  TEXT    NOT NULL,
	device TEXT    NOT NULL DEFAULT '',
	at     TEXT    NOT NULL
);
CREATE INDEX sign_in_failures_email ON sign_in_failures (email, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);
`,
	}
}

// querier is what *sql.DB and *sql.Tx have in common, so a lookup can run
// on the read pool or inside a write transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// inTx runs fn in a transaction on the write pool, which begins IMMEDIATE,
// and commits when fn returns nil. fn must use tx only: the write pool has
// one connection, so touching db.write inside fn would wait forever.
func (db *DB) inTx(ctx context.Context, fn func(tx querier) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(preparedQuerier{q: tx, tx: tx, stmts: db.writeStmts}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// readQ is the read pool, with the statements of readSQL prepared.
func (db *DB) readQ() querier {
	return preparedQuerier{q: db.read, stmts: db.readStmts}
}

// inReadTx runs fn in a read transaction on the read pool, so queries that
// belong together (a page and its total) see one snapshot.
func (db *DB) inReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: end read: %w", err)
	}
	return nil
}

// isUniqueViolation reports whether err is SQLite refusing a duplicate key.
// The methods check for duplicates first inside their write transaction;
// this is the backstop that keeps a missed case a conflict, not a 500.
func isUniqueViolation(err error) bool {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// formatTime turns t into the stored text form.
func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

// parseTime reads the stored text form back as a UTC time.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}
