// Package labtest holds what the end-to-end tests of several packages
// share: a buffer processes may write their logs to, a private redis-server
// for the redis session store, a private PostgreSQL for the PostgreSQL
// store, and the statelab binary, built once per test process, without the race detector (the
// replicas are what a user runs, and -race would slow the lab to a crawl on
// two cores), into a temporary directory that Main removes.
package labtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/pgserver"
	"github.com/statelab/statelab/internal/redisserver"
)

// shared is the PostgreSQL server SharedPostgres starts for a test binary,
// stopped by Main.
var shared struct {
	once sync.Once
	dir  string
	srv  *pgserver.Server
	err  error
	// databases numbers the databases PostgresDatabase makes.
	databases atomic.Int64
}

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of a statelab binary built from this checkout,
// building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "statelab-test-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "statelab")
		out, err := exec.Command("go", "build", "-o", built.path, "github.com/statelab/statelab/cmd/statelab").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// Main runs the tests, then removes the binary. Call it from TestMain:
// os.Exit(labtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "labtest: stop PostgreSQL:", err)
			code = 1
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// Buffer is a bytes.Buffer that processes and goroutines may write to while
// a test reads it: the log of a server under test, a runner's progress.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Redis starts a private redis-server for the test and stops it when the
// test ends. Without redis-server on PATH the test is skipped, unless the
// environment variable CI is set: there a missing redis-server is a broken
// CI image, and the test fails instead of passing by not running.
func Redis(t testing.TB) *redisserver.Server {
	t.Helper()
	if _, err := redisserver.LookPath(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so a missing redis-server fails the test)", err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := redisserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop redis-server: %v", err)
		}
	})
	return srv
}

// SharedPostgres returns the one PostgreSQL server of this test binary,
// starting it on first use, under NeedProgram's rules; Main stops it and
// removes its cluster. initdb and a server's start take seconds, so the
// tests of a package share one server and make a database each.
func SharedPostgres(t testing.TB) *pgserver.Server {
	t.Helper()
	NeedProgram(t, "PostgreSQL", pgserver.LookPath)
	shared.once.Do(func() {
		if shared.dir, shared.err = postgresDir(); shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shared.srv, shared.err = pgserver.Start(ctx, shared.dir)
	})
	if shared.err != nil {
		t.Fatalf("start PostgreSQL: %v", shared.err)
	}
	return shared.srv
}

// PostgresDatabase makes a new, empty database on the test binary's
// PostgreSQL (SharedPostgres) and returns its URL, password included: for
// this process only, never a command line.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	srv := SharedPostgres(t)
	name := fmt.Sprintf("test_%d", shared.databases.Add(1))
	if err := srv.CreateDatabase(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return srv.URLWithPassword(name)
}

// postgresDir makes a directory for a cluster that the user "postgres" can
// reach when the tests run as root.
func postgresDir() (string, error) {
	dir, err := os.MkdirTemp("", "statelab-pg-"+strconv.Itoa(os.Getpid())+"-test-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// Postgres starts a private PostgreSQL server for the test and stops it
// (removing its cluster) when the test ends, under NeedProgram's rules: a
// missing PostgreSQL skips the test on a developer's machine and fails it
// under CI. The cluster lives in a directory of its own under the system's
// temporary directory, not in t.TempDir(): run as root, the server runs as
// the user "postgres", which cannot reach into t.TempDir()'s 0700 parent.
func Postgres(t testing.TB) *pgserver.Server {
	t.Helper()
	NeedProgram(t, "PostgreSQL", pgserver.LookPath)
	dir, err := postgresDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := pgserver.Start(ctx, dir)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return srv
}
