//go:build linux

package compare_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/pgserver"
	"github.com/statelab/statelab/internal/redisserver"
)

// TestPostgresStoreEndToEnd runs a short comparison with PostgreSQL as the
// shared store, as `statelab compare --store postgres` does: the runner
// starts a private server, both sides' replicas borrow through it, the
// end-of-run check reads it, and when the runner has exited no PostgreSQL
// process and no cluster directory is left.
func TestPostgresStoreEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statelab and runs a 10-second comparison on a private PostgreSQL")
	}
	bin := labtest.Binary(t)
	labtest.NeedProgram(t, "PostgreSQL", pgserver.LookPath)
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)
	clusters := func() []string {
		m, _ := filepath.Glob(filepath.Join(os.TempDir(), "statelab-pg-[0-9]*"))
		return m
	}
	before := clusters()

	r := rtStartRunner(t, bin, "--scenario", "quick", "--duration", "10s", "--users", "6", "--store", "postgres", "--sides", "redis,apikey")
	select {
	case <-r.exited:
	case <-time.After(90 * time.Second):
		t.Fatal("the runner did not finish within 90s")
	}
	if r.err != nil {
		t.Fatalf("the runner failed: %v\n%s", r.err, r.out)
	}
	rep := rtReadReport(t, r.report)
	if rep.Store != "postgres" {
		t.Errorf("report.json store = %q, want postgres", rep.Store)
	}
	if !rep.Consistency.OK {
		t.Errorf("consistency: %+v", rep.Consistency)
	}
	for _, name := range rep.SideOrder {
		if s := rep.Sides[name]; s.Borrows == 0 || s.Errors5xx != 0 {
			t.Errorf("%s: %d borrows, %d 5xx: want borrows through PostgreSQL and no 5xx", name, s.Borrows, s.Errors5xx)
		}
	}
	for _, dir := range clusters() {
		if !slices.Contains(before, dir) {
			t.Errorf("the run left its cluster directory %s behind", dir)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, "postgres -D") && strings.Contains(cmd, "statelab-pg-") && !strings.Contains(cmd, "statelab-pg-test-") {
			t.Errorf("a PostgreSQL outlived the runner: %s", cmd)
		}
	}
}
