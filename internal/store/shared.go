package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/statelab/statelab/internal/pgserver"
)

// Shared is the store a lab run's replicas share: the SQLite file in the
// run's work directory, or a PostgreSQL database — a private server
// started for the run, or the one a URL names. It holds the handle of the
// process that opened it (for the end-of-run checks), what each replica is
// told (DSN on its command line, Env beside it, so a password is never in
// argv), and the private server to stop at the end.
type Shared struct {
	Store
	// Kind is SQLite or Postgres.
	Kind string
	// DSN is the replicas' --db: a path, or a URL without its password.
	DSN string
	// Env is what the replicas need in their environment beside DSN: the
	// PostgreSQL password, if any.
	Env []string
	pg  *pgserver.Server
	// pgDir holds the private cluster; removed with it.
	pgDir string
}

// OpenShared opens the store of kind (SQLite, or Postgres; "" is SQLite)
// for a run whose work directory is workDir: SQLite's file goes there; a
// PostgreSQL is the database url names or, without one, a private server
// started here and stopped by Close.
func OpenShared(ctx context.Context, kind, url, workDir string) (*Shared, error) {
	return OpenSharedOn(ctx, kind, url, workDir, nil)
}

// OpenSharedOn is OpenShared with the private PostgreSQL, if it starts
// one, on host (pgserver.StartOn): a network namespace of its own.
func OpenSharedOn(ctx context.Context, kind, url, workDir string, host pgserver.Host) (*Shared, error) {
	switch kind = Chosen(kind, url); kind {
	case SQLite:
		dsn := filepath.Join(workDir, "library.db")
		db, err := Open(ctx, dsn, Options{})
		if err != nil {
			return nil, fmt.Errorf("open the shared database: %w", err)
		}
		return &Shared{Store: db, Kind: SQLite, DSN: dsn}, nil
	case Postgres:
	default:
		return nil, fmt.Errorf("store %q: use %s or %s", kind, SQLite, Postgres)
	}
	if url != "" {
		if Kind(url) != Postgres {
			return nil, fmt.Errorf("store URL %s: want a postgres:// URL", Describe(url))
		}
		dsn, env, err := withoutPassword(url)
		if err != nil {
			return nil, err
		}
		db, err := Open(ctx, url, Options{})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", Describe(url), err)
		}
		return &Shared{Store: db, Kind: Postgres, DSN: dsn, Env: env}, nil
	}
	// The private server's cluster lives in a directory of its own: run as
	// root, PostgreSQL runs as the user postgres, which cannot reach into
	// a work directory made 0700. The cluster itself is 0700, its owner's.
	// A runner killed before it could remove its own leaves one behind:
	// the first private server after it sweeps it up.
	removed, err := SweepPGDirs()
	if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "statelab: removed %s, left by a runner that died\n", strings.Join(removed, ", "))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "statelab: %v\n", err)
	}
	dir, err := makePGDir()
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		return nil, fmt.Errorf("a directory for PostgreSQL: %w", err)
	}
	pg, err := pgserver.StartOn(ctx, dir, host)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start a private PostgreSQL: %w", err)
	}
	db, err := Open(ctx, pg.URLWithPassword(pgserver.Database), Options{})
	if err != nil {
		err = errors.Join(err, pg.Stop(), os.RemoveAll(dir))
		return nil, fmt.Errorf("open the private PostgreSQL: %w", err)
	}
	return &Shared{Store: db, Kind: Postgres, DSN: pg.URL(pgserver.Database), Env: pg.Env(), pg: pg, pgDir: dir}, nil
}

// Chosen is the kind of store a run asking for kind and url gets: Postgres
// when a URL is given, else kind, SQLite when that is empty.
func Chosen(kind, url string) string {
	if url != "" {
		return Postgres
	}
	return cmp.Or(kind, SQLite)
}

// withoutPassword splits a URL's password off into PGPASSWORD, for a
// replica's environment.
func withoutPassword(raw string) (string, []string, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("store URL %s: %w", Describe(raw), errors.Unwrap(err))
	}
	pw, ok := u.User.Password()
	if !ok {
		return raw, nil, nil
	}
	u.User = neturl.User(u.User.Username())
	return u.String(), []string{pgserver.EnvPassword + "=" + pw}, nil
}

// Close closes the runner's handle, then stops the private server, if any,
// and removes its cluster.
func (s *Shared) Close() error {
	err := s.Store.Close()
	if s.pg != nil {
		err = errors.Join(err, s.pg.Stop(), os.RemoveAll(s.pgDir))
	}
	return err
}

// Host is the host:port of a PostgreSQL store's server, which a link can
// stand in front of; "" for SQLite, and for a URL that names no TCP host
// (a Unix socket).
func (s *Shared) Host() string {
	if s.Kind != Postgres {
		return ""
	}
	u, err := neturl.Parse(s.DSN)
	if err != nil || u.Hostname() == "" || strings.HasPrefix(u.Hostname(), "/") {
		return ""
	}
	return net.JoinHostPort(u.Hostname(), cmp.Or(u.Port(), "5432"))
}

// DSNVia is the replicas' DSN with its host:port replaced by addr: the
// same PostgreSQL, reached through a link. It fails for a store without a
// Host.
func (s *Shared) DSNVia(addr string) (string, error) {
	if s.Host() == "" {
		return "", fmt.Errorf("store %s has no host to reach through a link", Describe(s.DSN))
	}
	u, err := neturl.Parse(s.DSN)
	if err != nil {
		return "", err
	}
	u.Host = addr
	return u.String(), nil
}
