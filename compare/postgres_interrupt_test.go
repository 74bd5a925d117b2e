//go:build linux

package compare_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/pgserver"
	"github.com/statelab/statelab/internal/store"
)

// TestPostgresStoreInterrupted stops `statelab compare --store postgres`
// with SIGINT while its users run, as Ctrl-C does: the runner exits 0 and
// takes its private PostgreSQL with it, every process of it and the
// cluster's directory, named for the runner's pid.
func TestPostgresStoreInterrupted(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds statelab and starts a comparison on a private PostgreSQL")
	}
	bin := labtest.Binary(t)
	labtest.NeedProgram(t, "PostgreSQL", pgserver.LookPath)

	started := time.Now()
	r := rtStartRunner(t, bin, "--scenario", "quick", "--users", "4", "--store", "postgres", "--sides", "apikey,jwt")
	pid := r.cmd.Process.Pid
	// Mid-run: the users have been borrowing through the private server
	// for a second.
	var pg labtest.PrivatePostgres
	deadline := time.Now().Add(60 * time.Second)
	for {
		feed, err := r.feed(-1)
		pg = labtest.PrivatePostgresOf(pid)
		if err == nil && feed.Now.Phase == "running" && feed.Now.ElapsedS >= 1 && len(pg.PIDs) > 0 {
			break
		}
		select {
		case <-r.exited:
			t.Fatalf("the runner exited before its users ran: %v", r.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running phase with a private PostgreSQL within 60s (directories %v, postgres pids %v)", pg.Dirs, pg.PIDs)
		}
	}
	t.Logf("mid-run: %s, postgres pids %v", strings.Join(pg.Dirs, ", "), pg.PIDs)

	if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.exited:
		if r.err != nil {
			t.Errorf("after SIGINT the runner exited with %v, want exit status 0", r.err)
		}
		t.Logf("the runner ran %.1f s", time.Since(started).Seconds())
	case <-time.After(30 * time.Second):
		t.Fatal("the runner did not exit within 30s of SIGINT")
	}
	if left := labtest.PrivatePostgresOf(pid).Dirs; len(left) > 0 {
		t.Errorf("the interrupted runner left its PostgreSQL directory behind: %v", left)
	}
	// The runner waits for its postmaster, which waits for its children;
	// a child's exit may take a moment to show.
	deadline = time.Now().Add(5 * time.Second)
	for {
		alive := labtest.PostgresRunning(pg.PIDs)
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("PostgreSQL processes outlived the interrupted runner: %v", alive)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStoreURL runs `statelab compare --store-url` against a PostgreSQL
// the test started: the URL on the command line carries no password,
// which reaches the runner through PGPASSWORD only. The run must use that
// database (report.json says postgres, its consistency check passes, its
// borrows are in the database afterwards), start no private server of its
// own, and put the password on no command line.
func TestStoreURL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statelab and runs a 3-second comparison on a PostgreSQL")
	}
	bin := labtest.Binary(t)
	ready := time.Now()
	full := labtest.PostgresDatabase(t)
	t.Logf("the test's PostgreSQL was ready after %.1f s", time.Since(ready).Seconds())
	u, err := url.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	// The runner inherits the test's environment.
	t.Setenv(pgserver.EnvPassword, password)

	started := time.Now()
	r := rtStartRunner(t, bin, "--scenario", "quick", "--duration", "3s", "--users", "4", "--sides", "apikey,jwt", "--store-url", u.String())
	pid := r.cmd.Process.Pid
	var private, argv []string
	deadline := time.Now().Add(90 * time.Second)
	for running := true; running; {
		select {
		case <-r.exited:
			running = false
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the runner did not finish within 90s")
		}
		private = append(private, labtest.PrivatePostgresOf(pid).Dirs...)
		paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(password)) {
				argv = append(argv, p)
			}
		}
	}
	if r.err != nil {
		t.Fatalf("the runner failed: %v", r.err)
	}
	t.Logf("the runner ran %.1f s", time.Since(started).Seconds())
	if len(private) > 0 {
		t.Errorf("given --store-url, the runner started a private PostgreSQL anyway: %v", slices.Compact(slices.Sorted(slices.Values(private))))
	}
	if len(argv) > 0 {
		t.Errorf("the password is on a command line: %v", slices.Compact(slices.Sorted(slices.Values(argv))))
	}
	rep := rtReadReport(t, r.report)
	if rep.Store != "postgres" || !rep.Consistency.OK {
		t.Errorf("report.json: store %q, consistency %+v; want postgres and ok", rep.Store, rep.Consistency)
	}
	var borrows int64
	for _, name := range rep.SideOrder {
		borrows += rep.Sides[name].Borrows
	}
	if borrows == 0 {
		t.Fatal("report.json counts no borrow: the run proves nothing about where they went")
	}
	// The database was empty: the run seeded it, borrowed in it, and left
	// it whole.
	db, err := store.Open(context.Background(), full, store.Options{NoReadCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.CheckConsistency(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !c.OK() || c.Books == 0 {
		t.Errorf("the database after the run: %+v; want it seeded by the run and consistent", c)
	}
}
