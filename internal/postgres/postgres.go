package postgres

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
)

// DB implements library.Store on one PostgreSQL database that every
// replica reaches over the network.
type DB struct {
	pool *pgxpool.Pool
	// cache remembers pages of the catalog while the server's snapshot is
	// unchanged; nil when it is off or notify is on (see cache.go).
	cache *cache
	// notify remembers books, API keys and pages until a notification of
	// a change arrives; nil unless WithNotifyCache (see notify.go).
	notify *notifyCache
	// keyLookups, when set, counts the API key lookups that asked the
	// server (CountKeyLookups).
	keyLookups atomic.Pointer[prometheus.Counter]
}

var _ library.Store = (*DB)(nil)

// Option changes how Open opens a database.
type Option func(*options)

type options struct {
	maxConns    int32
	noCache     bool
	notify      bool
	listenRetry time.Duration
	tracer      pgx.QueryTracer
}

// WithoutCache turns the read cache off, so every read runs its query:
// what the servers' --read-cache=false does, to measure what the cache
// saves.
func WithoutCache() Option { return func(o *options) { o.noCache, o.notify = true, false } }

// WithNotifyCache replaces the exact read cache, whose every hit costs a
// round trip, with one that answers a book, an API key with its member and
// a page of the catalog from memory, with none, and forgets them when
// PostgreSQL notifies it of a change (notify.go): what the servers'
// --read-cache=notify does. It is stale for as long as a notification
// takes to arrive: another replica's revocation of a key is not seen here
// until then.
func WithNotifyCache() Option { return func(o *options) { o.notify, o.noCache = true, false } }

// WithMaxConns sets how many connections the pool may open; pgxpool's
// default is the larger of 4 and the number of CPUs.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = int32(n) } }

// migrations are the schema's steps, in goose's files.
//
//go:embed migrations/*.sql
var migrations embed.FS

// lockID names the advisory lock that serialises the openers of one
// database while they migrate and seed it ("statelab" in ASCII).
const lockID int64 = 0x73746174656c6162

// timeLayout is how a stored time is written into a message: the same
// text the SQLite store stores and shows.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Open connects to the database at url (postgres://user@host:port/db; a
// password missing from the URL is read from PGPASSWORD, so it need not
// appear on a command line), applies the schema's migrations and seeds the
// database when it is empty. Several processes may open one new database
// at once: an advisory lock lets one migrate and seed while the others
// wait, then find nothing left to do.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parser's error may quote the URL, password and all.
		return nil, errors.New("postgres: open: the URL does not parse as a PostgreSQL connection string")
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	// The listener's connection is configured before the pool's tracer
	// is set: its statements are no request's cost.
	listenCfg := cfg.ConnConfig.Copy()
	if o.tracer != nil {
		cfg.ConnConfig.Tracer = o.tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db := &DB{pool: pool}
	switch {
	case o.notify:
		db.notify = newNotifyCache(cmp.Or(o.listenRetry, listenRetry))
	case !o.noCache:
		db.cache = newCache()
	}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := db.seed(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if db.notify != nil {
		// After the migrations, so that the triggers exist; the cache
		// misses until the listener is connected.
		db.notify.start(listenCfg)
	}
	return db, nil
}

// Close stops the notify cache's listener, if any, and closes every
// connection of the pool.
func (db *DB) Close() error {
	db.notify.close()
	db.pool.Close()
	return nil
}

// CountKeyLookups, with the notify cache, makes FindAPIKey add to c every
// lookup that asks the server from now on (its hits ask nothing) and
// reports true: the servers then leave the counting to the store
// (stateless.KeyLookupCounter). Without it every lookup asks, so it
// reports false and the server counts each, as before.
func (db *DB) CountKeyLookups(c prometheus.Counter) bool {
	if db.notify == nil {
		return false
	}
	db.keyLookups.Store(&c)
	return true
}

// Ping reports whether the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// migrate applies the migrations goose has not recorded as applied, under
// the advisory lock.
func (db *DB) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithSessionLocker(advisoryLock{}),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// advisoryLock is goose's session lock: PostgreSQL's advisory lock, taken
// with pg_advisory_lock, which waits in the server for exactly as long as
// another opener holds it (goose's own locker polls every few seconds).
type advisoryLock struct{}

func (advisoryLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID)
	return err
}

func (advisoryLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, lockID)
	return err
}

// seed fills an empty database with the data of package seed, in one
// transaction that holds the advisory lock and first checks whether
// another opener has seeded it already.
func (db *DB) seed(ctx context.Context) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID); err != nil {
			return fmt.Errorf("postgres: seed: %w", err)
		}
		var seeded bool
		if err := tx.QueryRow(ctx,
			`SELECT EXISTS (SELECT 1 FROM members) OR EXISTS (SELECT 1 FROM books)`).Scan(&seeded); err != nil {
			return fmt.Errorf("postgres: check seed: %w", err)
		}
		if seeded {
			return nil
		}
		books, err := seed.Books()
		if err != nil {
			return fmt.Errorf("postgres: seed: %w", err)
		}
		// COPY keeps the rows' order, so ids follow books.tsv as in SQLite.
		bookRows := make([][]any, len(books))
		for i, b := range books {
			bookRows[i] = []any{b.Title, b.Author, nullString(b.ISBN), b.Year, b.Copies, b.Copies}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"books"},
			[]string{"title", "author", "isbn", "year", "copies", "available_copies"}, pgx.CopyFromRows(bookRows)); err != nil {
			return fmt.Errorf("postgres: seed books: %w", err)
		}
		now := storedTime(time.Now())
		members := seed.Members()
		memberRows := make([][]any, len(members))
		for i, m := range members {
			memberRows[i] = []any{m.Email, m.Name, m.Role, m.PasswordHash, now}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"members"},
			[]string{"email", "name", "role", "password_hash", "created_at"}, pgx.CopyFromRows(memberRows)); err != nil {
			return fmt.Errorf("postgres: seed members: %w", err)
		}
		return nil
	})
}

// querier is what a pool and a transaction have in common, so a lookup
// can run on either.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs fn in a READ COMMITTED transaction and commits when fn returns
// nil. Each read-modify-write in fn locks the rows it will change first
// (SELECT ... FOR UPDATE), so no other transaction changes them between
// the read and the write.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.inTxTouching(ctx, touchesAll, fn)
}

// inTxTouching is inTx for a transaction that changes only what touched
// names of what the notify cache holds (touchesNone: nothing it holds), so
// that its commit empties only that: a borrow's leaves the keys cached.
func (db *DB) inTxTouching(ctx context.Context, touched areas, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	err = tx.Commit(ctx)
	if db.notify != nil {
		// This process's own commit: forget what it may have changed now,
		// not when its notification comes back (read your own writes).
		// A commit that failed may have committed all the same.
		db.notify.changed(touched)
	}
	if err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// isUniqueViolation reports whether err is PostgreSQL refusing a duplicate
// key. The methods check for duplicates first; this is the backstop for
// the one that committed in between, so it stays a conflict, not a 500.
func isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// storedTime is t as PostgreSQL keeps it: UTC, to the microsecond, so what
// a method returns equals what a later read finds.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// nullString stores an empty string as NULL, so that optional unique
// columns (a book's ISBN) admit many blanks.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
