package compare_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
)

// TestReplicasLogIsPrivate: replicas.log under the work directory is
// readable by its owner only, whether the runner creates it or finds it
// left world-readable by an older run.
func TestReplicasLogIsPrivate(t *testing.T) {
	sc, err := scenario.Load("quick")
	if err != nil {
		t.Fatal(err)
	}
	sides, err := strategy.ParsePair("memory,apikey")
	if err != nil {
		t.Fatal(err)
	}
	for _, existing := range []bool{false, true} {
		work := t.TempDir()
		path := filepath.Join(work, "replicas.log")
		if existing {
			if err := os.WriteFile(path, []byte("an older run\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := compare.New(t.Context(), compare.Config{
			Binary: "/nonexistent/statelab", Scenario: sc, Sides: sides, Users: 1, Seed: 1, Think: time.Second,
			Addr: "127.0.0.1:1", BalancerAddrs: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
			ReportDir: filepath.Join(t.TempDir(), "report"), WorkDir: work, Stdout: io.Discard,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("replicas.log (existing before: %v) has mode %v, want -rw-------", existing, got)
		}
	}
}
