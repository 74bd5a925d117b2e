// Package store opens the shared resource store a server or a tool names:
// a SQLite file for a path, a PostgreSQL database for a postgres:// URL.
// It is the one place that knows both; everything above it sees a Store.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/postgres"
	"github.com/statelab/statelab/internal/sqlite"
)

// Store is the resource store as the servers and the comparison runner
// use it: the library.Store contract, the two reads the runner makes
// after a run, the read cache's counters and Close.
type Store interface {
	library.Store
	// CheckConsistency checks the invariants on one snapshot.
	CheckConsistency(ctx context.Context) (library.Consistency, error)
	// BorrowExists reports whether a borrow record exists, returned or not.
	BorrowExists(ctx context.Context, id int64) (bool, error)
	// CacheStats counts the reads the read cache answered and missed.
	CacheStats() library.CacheStats
	// Close releases the store's connections.
	Close() error
}

var (
	_ Store = (*sqlite.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// The kinds of store, as a report names them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Options are what a server's flags may change about a store.
type Options struct {
	// NoReadCache turns the read cache off, to measure what it saves
	// (as ReadCache library.ReadCacheOff does).
	NoReadCache bool
	// ReadCache chooses the read cache's mode; the zero value is
	// library.ReadCacheExact. ReadCacheNotify is PostgreSQL's only: Open
	// refuses it for SQLite, whose exact cache costs no round trip already.
	ReadCache library.ReadCache
	// KeySweep, when above 0, makes the store forget the idempotency keys
	// older than library.IdempotencyKeyTTL: once at Open, then every
	// KeySweep, until Close. Logger hears of each sweep that forgot keys,
	// and of one that failed.
	KeySweep time.Duration
	Logger   *slog.Logger
}

// Kind returns Postgres for a postgres:// or postgresql:// URL and SQLite
// for anything else, which Open takes as a file path.
func Kind(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return Postgres
	}
	return SQLite
}

// Open opens the store dsn names: the SQLite file at a path, or the
// PostgreSQL database at a URL (whose password, when the URL has none, is
// read from PGPASSWORD, so that it need not be on a command line). Either
// is migrated and, when new, seeded.
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	if dsn == "" {
		return nil, errors.New("store: no database: give a file path (SQLite) or a postgres:// URL")
	}
	s, err := open(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	if opts.KeySweep <= 0 {
		return s, nil
	}
	return sweep(s, opts.KeySweep, cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))), nil
}

// CheckReadCache refuses a read cache mode the store dsn names cannot run.
func CheckReadCache(dsn string, mode library.ReadCache) error {
	if mode.Mode() == library.ReadCacheNotify && Kind(dsn) != Postgres {
		return errors.New("notify is PostgreSQL's (LISTEN/NOTIFY): SQLite's exact cache already costs no round trip (it reads the commit counter in shared memory); use true or false with a SQLite file")
	}
	switch mode.Mode() {
	case library.ReadCacheExact, library.ReadCacheOff, library.ReadCacheNotify:
		return nil
	}
	return fmt.Errorf("read cache %q: use true (exact), false (off) or notify", string(mode))
}

func open(ctx context.Context, dsn string, opts Options) (Store, error) {
	if opts.NoReadCache {
		opts.ReadCache = library.ReadCacheOff
	}
	if err := CheckReadCache(dsn, opts.ReadCache); err != nil {
		return nil, err
	}
	switch Kind(dsn) {
	case Postgres:
		var o []postgres.Option
		switch opts.ReadCache.Mode() {
		case library.ReadCacheOff:
			o = append(o, postgres.WithoutCache())
		case library.ReadCacheNotify:
			o = append(o, postgres.WithNotifyCache())
		}
		db, err := postgres.Open(ctx, dsn, o...)
		if err != nil {
			return nil, err // not a nil *postgres.DB in a Store
		}
		return db, nil
	default:
		var o []sqlite.Option
		if opts.ReadCache.Mode() == library.ReadCacheOff {
			o = append(o, sqlite.WithoutCache())
		}
		db, err := sqlite.Open(ctx, dsn, o...)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
}

// HasPassword reports whether dsn is a PostgreSQL URL that holds a
// password: a secret a command line must not carry.
func HasPassword(dsn string) bool {
	if Kind(dsn) != Postgres {
		return false
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return true // cannot tell: treat it as secret
	}
	_, ok := u.User.Password()
	return ok
}

// Describe names the store dsn names for a log or a report without its
// secret: "sqlite <path>", or "postgres host:port/database" with no user
// and no password.
func Describe(dsn string) string {
	if Kind(dsn) == SQLite {
		return SQLite + " " + dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return Postgres + " (a URL that does not parse)"
	}
	return Postgres + " " + u.Host + u.Path
}
