//go:build linux

package matrix_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/matrix"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/pgserver"
)

// TestMatrixOnPostgres runs the smallest matrix, one run of two
// strategies with no fault, on a private PostgreSQL, as `statelab matrix
// --store postgres` does: matrix.json names the store, the run's end-of-run
// check on that database passes, and when the matrix has exited nothing of
// it is left: no replica, no PostgreSQL process, no cluster directory
// named for its pid.
func TestMatrixOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statelab and runs a matrix of one run on a private PostgreSQL")
	}
	bin := labtest.Binary(t)
	labtest.NeedProgram(t, "PostgreSQL", pgserver.LookPath)

	run := e2eStart(t, bin, nil, "--store", "postgres", "--strategies", "apikey,jwt", "--faults", "none",
		"--users", "2", "--warmup", "1s", "--window", "1s")
	pid := run.cmd.Process.Pid
	started := time.Now()
	// While it runs: the private servers it starts, and their processes.
	var seen labtest.PrivatePostgres
	deadline := time.Now().Add(90 * time.Second)
	for running := true; running; {
		select {
		case <-run.exited:
			running = false
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("statelab matrix still running after 90s")
		}
		pg := labtest.PrivatePostgresOf(pid)
		seen.Dirs = append(seen.Dirs, pg.Dirs...)
		seen.PIDs = append(seen.PIDs, pg.PIDs...)
	}
	if run.err != nil {
		t.Fatalf("statelab matrix --store postgres: %v", run.err)
	}
	t.Logf("statelab matrix ran %.1f s", time.Since(started).Seconds())
	slices.Sort(seen.PIDs)
	seen.PIDs = slices.Compact(seen.PIDs)
	if len(seen.PIDs) == 0 {
		t.Error("no private PostgreSQL of the matrix's was seen running")
	}

	b, err := os.ReadFile(filepath.Join(run.dir, "matrix.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m matrix.Matrix
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Store != "postgres" || m.Interrupted || len(m.Runs) != 1 {
		t.Errorf("matrix.json: store %q, interrupted %v, %d runs; want postgres, a whole matrix and 1 run", m.Store, m.Interrupted, len(m.Runs))
	}
	for _, r := range m.Runs {
		if !r.Consistent || r.Error != "" {
			t.Errorf("run %v: consistent %v, error %q", r.Sides, r.Consistent, r.Error)
		}
	}
	for _, st := range []string{"apikey", "jwt"} {
		if c := m.Cells[st]["none"]; c == nil || c.Requests == 0 {
			t.Errorf("%s × none: %+v, want requests measured", st, c)
		}
	}

	run.noLeftovers(t)
	if left := labtest.PrivatePostgresOf(pid).Dirs; len(left) > 0 {
		t.Errorf("the matrix left its PostgreSQL directories behind: %v", left)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		alive := labtest.PostgresRunning(seen.PIDs)
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("PostgreSQL processes outlived the matrix: %v", alive)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
