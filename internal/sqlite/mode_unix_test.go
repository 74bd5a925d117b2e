//go:build unix

package sqlite_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/statelab/statelab/internal/sqlite"
)

// setUmask sets the process's umask and returns the old one. The test that
// calls it must not run in parallel with others that create files.
func setUmask(mask int) int { return syscall.Umask(mask) }

func chmod(path string, mode os.FileMode) error { return os.Chmod(path, mode) }

// checkModes fails unless the database and its companions are FileMode.
func checkModes(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat %s: %v", p, err)
			continue
		}
		if got := st.Mode().Perm(); got != sqlite.FileMode {
			t.Errorf("%s: mode %v, want %v", p, got, sqlite.FileMode)
		}
	}
}
