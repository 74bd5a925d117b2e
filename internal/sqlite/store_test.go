package sqlite_test

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/statelab/statelab/internal/storetest"
)

// backend opens SQLite files for the conformance suite: a database is a
// file in the test's temporary directory, and each Open a handle of its
// own, as each replica process has.
func backend() storetest.Backend {
	return storetest.Backend{
		New: func(t *testing.T) string { return filepath.Join(t.TempDir(), "statelab.db") },
		Open: func(t testing.TB, path string) storetest.Store {
			return openDB(t, path)
		},
		Raw: func(t *testing.T, path string) *sql.DB {
			u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(10000)"}
			raw, err := sql.Open("sqlite", u.String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close() })
			return raw
		},
	}
}

// TestStore runs the library.Store conformance suite on SQLite.
func TestStore(t *testing.T) {
	storetest.Run(t, backend())
}
