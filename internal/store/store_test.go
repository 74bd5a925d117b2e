package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/pgserver"
	"github.com/statelab/statelab/internal/postgres"
	"github.com/statelab/statelab/internal/sqlite"
	"github.com/statelab/statelab/internal/store"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

func TestKindAndDescribe(t *testing.T) {
	tests := []struct {
		dsn, kind, describe string
	}{
		{"statelab.db", store.SQLite, "sqlite statelab.db"},
		{"/tmp/dir with space/lab.db", store.SQLite, "sqlite /tmp/dir with space/lab.db"},
		{"postgres://statelab:s3cret@127.0.0.1:5432/statelab?sslmode=disable", store.Postgres, "postgres 127.0.0.1:5432/statelab"},
		{"postgresql://u@db.example:5432/lab", store.Postgres, "postgres db.example:5432/lab"},
	}
	for _, tt := range tests {
		if got := store.Kind(tt.dsn); got != tt.kind {
			t.Errorf("Kind(%q): got %q, want %q", tt.dsn, got, tt.kind)
		}
		if got := store.Describe(tt.dsn); got != tt.describe {
			t.Errorf("Describe(%q): got %q, want %q", tt.dsn, got, tt.describe)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	srv := labtest.SharedPostgres(t)
	if err := srv.CreateDatabase(ctx, "opened"); err != nil {
		t.Fatal(err)
	}
	// The password reaches the store through the environment, as it
	// reaches a replica.
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	tests := []struct {
		name, dsn string
		opts      store.Options
		check     func(store.Store) bool
	}{
		{"a path opens SQLite", filepath.Join(t.TempDir(), "lab.db"), store.Options{},
			func(s store.Store) bool { _, ok := s.(*sqlite.DB); return ok }},
		{"a path without the cache", filepath.Join(t.TempDir(), "lab.db"), store.Options{NoReadCache: true},
			func(s store.Store) bool { _, ok := s.(*sqlite.DB); return ok }},
		{"a URL opens PostgreSQL", srv.URL("opened"), store.Options{},
			func(s store.Store) bool { _, ok := s.(*postgres.DB); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(ctx, tt.dsn, tt.opts)
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.dsn, err)
			}
			defer s.Close()
			if !tt.check(s) {
				t.Errorf("Open(%q): got a %T", tt.dsn, s)
			}
			if _, err := s.FindMemberByEmail(ctx, "alice@example.com"); err != nil {
				t.Errorf("the seed: %v", err)
			}
			if c, err := s.CheckConsistency(ctx); err != nil || !c.OK() {
				t.Errorf("CheckConsistency: %+v, %v", c, err)
			}
		})
	}
	if _, err := store.Open(ctx, "", store.Options{}); err == nil {
		t.Error("Open of an empty name: got no error")
	}
	t.Setenv(pgserver.EnvPassword, "wrong")
	if _, err := store.Open(ctx, srv.URL("opened"), store.Options{}); err == nil {
		t.Error("Open with a wrong password in the environment: got no error")
	}
}
