package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of database/sql, for the suite's raw handle

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/postgres"
	"github.com/statelab/statelab/internal/storetest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// databases numbers the databases the tests make on the shared server.
var databases atomic.Int64

// newDatabase makes a new, empty database on the test binary's server and
// returns its URL, password included (this process only).
func newDatabase(t testing.TB) string {
	t.Helper()
	srv := labtest.SharedPostgres(t)
	name := fmt.Sprintf("test_%d", databases.Add(1))
	if err := srv.CreateDatabase(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return srv.URLWithPassword(name)
}

// openDB opens the database at url and closes it when the test ends.
func openDB(t testing.TB, url string, opts ...postgres.Option) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// backend makes PostgreSQL databases for the conformance suite: each a
// database of its own on one private server, each Open a pool of its own,
// as each replica has.
func backend() storetest.Backend {
	return storetest.Backend{
		New:  func(t *testing.T) string { return newDatabase(t) },
		Open: func(t testing.TB, url string) storetest.Store { return openDB(t, url) },
		Raw: func(t *testing.T, url string) *sql.DB {
			raw, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close() })
			return raw
		},
	}
}

// TestStore runs the library.Store conformance suite on PostgreSQL.
func TestStore(t *testing.T) {
	storetest.Run(t, backend())
}

// TestBorrow_LastCopyRace_TwoPools: 100 members race for the last copy
// through two pools (two replicas) wide enough that every borrow has a
// connection of its own, 20 times: exactly one wins each time.
func TestBorrow_LastCopyRace_TwoPools(t *testing.T) {
	url := newDatabase(t)
	stores := []storetest.Store{openDB(t, url, postgres.WithMaxConns(50)), openDB(t, url, postgres.WithMaxConns(50))}
	storetest.LastCopyRace(t, stores, 100, 20)
}
