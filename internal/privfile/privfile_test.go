package privfile_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/statelab/statelab/internal/privfile"
)

// TestOpen checks that a new file is made 0600 and that one an older run
// left 0644 is tightened, whatever the umask.
func TestOpen(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix file modes")
	}
	dir := t.TempDir()
	old := filepath.Join(dir, "old.log")
	if err := os.WriteFile(old, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "new.log"), old} {
		f, err := privfile.Open(path, os.O_APPEND)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if mode := st.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", filepath.Base(path), mode)
		}
	}
	if b, _ := os.ReadFile(old); string(b) != "before\n" {
		t.Errorf("O_APPEND lost what the file held: %q", b)
	}
}
