package perf_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/statelab/statelab/perf"
)

// TestServersLogIsPrivate: the servers' log can hold what a server logged
// about a request, so only its owner reads it, whatever the umask, and one
// an older run left readable is tightened. (A store Run does not know
// stops it right after the log is opened, before any server starts.)
func TestServersLogIsPrivate(t *testing.T) {
	for _, existing := range []bool{false, true} {
		work := t.TempDir()
		path := filepath.Join(work, "servers.log")
		if existing {
			if err := os.WriteFile(path, []byte("an older run\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := perf.Run(t.Context(), perf.Config{
			Binary: "/nonexistent/statelab", Paths: perf.Paths, NoPin: true,
			Conns: 1, Rounds: 1, Duration: time.Millisecond, WorkDir: work, Store: "no-such-store",
		})
		if err == nil {
			t.Fatal("Run with an unknown store: no error")
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("servers.log (existing before: %v) has mode %v, want -rw-------", existing, got)
		}
	}
}
