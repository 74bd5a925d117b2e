package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pgDirPrefix begins the name of a private PostgreSQL's directory under
// the system's temporary directory; the pid of the process that made it
// follows, so a later run can tell one whose runner is gone.
const pgDirPrefix = "statelab-pg-"

// makePGDir makes a directory for a private PostgreSQL's cluster, named
// for this process.
func makePGDir() (string, error) {
	return os.MkdirTemp("", pgDirPrefix+strconv.Itoa(os.Getpid())+"-")
}

// SweepPGDirs removes the directories of private PostgreSQL servers whose
// runner has died without removing them (killed with SIGKILL, or the
// machine lost power): a stopped runner removes its own, and its server
// dies with it (pgserver asks the kernel for that). It returns what it
// removed. A directory whose runner is alive, or whose name carries no
// pid, is left alone, as is everything outside Unix, where it cannot tell.
func SweepPGDirs() ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), pgDirPrefix+"*"))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, dir := range dirs {
		pid, ok := pgDirOwner(filepath.Base(dir))
		if !ok || pid == os.Getpid() || alive(pid) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s, left by runner %d: %w", dir, pid, err))
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// pgDirOwner reads the runner's pid from a directory's name,
// statelab-pg-PID-RANDOM.
func pgDirOwner(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, pgDirPrefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}
