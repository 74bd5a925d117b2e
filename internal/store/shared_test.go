package store_test

import (
	"testing"

	"github.com/statelab/statelab/internal/store"
)

func TestSharedThroughALink(t *testing.T) {
	for _, tc := range []struct {
		kind, dsn, host, via string
	}{
		{store.SQLite, "/tmp/w/library.db", "", ""},
		{store.Postgres, "postgres://statelab@127.0.0.1:54321/statelab?sslmode=disable", "127.0.0.1:54321",
			"postgres://statelab@127.0.0.1:40000/statelab?sslmode=disable"},
		{store.Postgres, "postgres://u@db.example/lib", "db.example:5432", "postgres://u@127.0.0.1:40000/lib"},
		{store.Postgres, "postgres:///lib?host=/var/run/postgresql", "", ""},
	} {
		s := &store.Shared{Kind: tc.kind, DSN: tc.dsn}
		if got := s.Host(); got != tc.host {
			t.Errorf("Host of %s = %q, want %q", tc.dsn, got, tc.host)
		}
		got, err := s.DSNVia("127.0.0.1:40000")
		if (err == nil) != (tc.via != "") || got != tc.via {
			t.Errorf("DSNVia of %s = %q, %v; want %q", tc.dsn, got, err, tc.via)
		}
	}
}
