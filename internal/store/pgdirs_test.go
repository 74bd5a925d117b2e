package store

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// TestSweepPGDirs checks that the directory of a private PostgreSQL whose
// runner is dead is removed, and that one whose runner is alive, and one
// whose name carries no pid, are left.
func TestSweepPGDirs(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("nothing is swept outside Unix")
	}
	t.Setenv("TMPDIR", t.TempDir())
	// A process that has exited and been waited for: its pid is dead.
	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid

	mk := func(name string) string {
		dir := filepath.Join(os.TempDir(), name)
		if err := os.MkdirAll(filepath.Join(dir, "postgres-1", "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	gone := mk(pgDirPrefix + strconv.Itoa(dead) + "-123")
	mine, err := makePGDir()
	if err != nil {
		t.Fatal(err)
	}
	parent := mk(pgDirPrefix + strconv.Itoa(os.Getppid()) + "-456")
	odd := mk(pgDirPrefix + "123456789") // os.MkdirTemp's name before pids were in it

	removed, err := SweepPGDirs()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != gone {
		t.Errorf("removed %v, want only %s", removed, gone)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("%s, left by a dead runner, is still there (%v)", gone, err)
	}
	for _, dir := range []string{mine, parent, odd} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was removed: %v", dir, err)
		}
	}
}
