//go:build unix

package sqlite_test

import (
	"path/filepath"
	"testing"
)

// TestOpen_FileModes: the database and its -wal and -shm hold password and
// key hashes; they are created 0600 whatever the umask, and an existing
// world-readable file is tightened.
func TestOpen_FileModes(t *testing.T) {
	old := setUmask(0)
	defer setUmask(old)

	dir := t.TempDir()
	path := filepath.Join(dir, "statelab.db")
	db := openDB(t, path)
	// A write makes sure the -wal and -shm exist.
	createBook(t, db, "Private", 1)
	checkModes(t, path)
	db.Close()

	if err := chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, path)
	createBook(t, db, "Private again", 1)
	checkModes(t, path)
}
