//go:build linux

package compare_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/pgserver"
)

// TestPostgresStoreEndToEnd runs a short comparison with PostgreSQL as the
// shared store, as `statelab compare --store postgres` does: the runner
// starts a private server, both sides' replicas borrow through it, the
// end-of-run check reads it, and when the runner has exited no PostgreSQL
// process and no cluster directory is left. The replicas reach it over
// links of 2 ms each way with the read cache off, so an API key's lookup
// pays a round trip to the database on every request and a JWT's check
// none: counted, and seen in the authenticated reads' median.
func TestPostgresStoreEndToEnd(t *testing.T) {
	t.Parallel() // with the other PostgreSQL tests: compare is make test's longest package
	if testing.Short() {
		t.Skip("builds statelab and runs a 10-second comparison on a private PostgreSQL")
	}
	bin := labtest.Binary(t)
	labtest.NeedProgram(t, "PostgreSQL", pgserver.LookPath)
	r := rtStartRunner(t, bin, "--scenario", "quick", "--duration", "10s", "--users", "6", "--store", "postgres", "--sides", "apikey,jwt",
		"--latency", "2ms", "--read-cache=false")
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
	const d = 2.0 // ms each way: a round trip costs 2·d
	key, jwt := rep.Sides["apikey"].Costs, rep.Sides["jwt"].Costs
	t.Logf("authenticated read p50: apikey %.2f ms, jwt %.2f ms; shared-service round trips per request: apikey %.2f, jwt %.2f",
		key.ReadLatencyMS.P50, jwt.ReadLatencyMS.P50, key.SharedRoundTripsPerRequest, jwt.SharedRoundTripsPerRequest)
	if key.SharedRoundTripsPerRequest < 1 || jwt.SharedRoundTrips != 0 {
		t.Errorf("shared-service round trips per request: apikey %.2f, jwt %.2f (%d); want at least 1 for the key's lookup and none for the JWT",
			key.SharedRoundTripsPerRequest, jwt.SharedRoundTripsPerRequest, jwt.SharedRoundTrips)
	}
	if key.ReadLatencyMS.P50-jwt.ReadLatencyMS.P50 < 2*d {
		t.Errorf("authenticated read p50: apikey %.2f ms, jwt %.2f ms; want apikey at least one round trip (%.0f ms) above: its lookup crosses the link",
			key.ReadLatencyMS.P50, jwt.ReadLatencyMS.P50, 2*d)
	}
	// The runner's private cluster is named for its pid (other tests'
	// runners, run in parallel, have clusters of their own).
	mine := "statelab-pg-" + strconv.Itoa(r.cmd.Process.Pid) + "-"
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), mine+"*")); len(left) > 0 {
		t.Errorf("the run left its cluster directory behind: %v", left)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, "postgres -D") && strings.Contains(cmd, mine) {
			t.Errorf("a PostgreSQL outlived the runner: %s", cmd)
		}
	}
}

// TestPostgresNotifyCacheEndToEnd is TestPostgresStoreEndToEnd's converse:
// the same links of 2 ms each way, but the replicas run the notify read
// cache and the load only reads (the open-loop users of the capacity
// scenario, and no simulated users who borrow). Once an API key is in a
// replica's cache, nothing changes it, so its check asks the database no
// more: the apikey side's round trips per request fall well under one, and
// its authenticated reads are no longer a round trip slower than the jwt
// side's. With --read-cache=false it fails both ways.
func TestPostgresNotifyCacheEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds statelab and runs a 10-second comparison on a private PostgreSQL")
	}
	bin := labtest.Binary(t)
	labtest.NeedProgram(t, "PostgreSQL", pgserver.LookPath)

	r := rtStartRunner(t, bin, "--scenario", "quick", "--duration", "10s", "--users", "0", "--rate", "60", "--rate-users", "4",
		"--store", "postgres", "--sides", "apikey,jwt", "--latency", "2ms", "--read-cache=notify")
	select {
	case <-r.exited:
	case <-time.After(90 * time.Second):
		t.Fatal("the runner did not finish within 90s")
	}
	if r.err != nil {
		t.Fatalf("the runner failed: %v\n%s", r.err, r.out)
	}
	rep := rtReadReport(t, r.report)
	if rep.Store != "postgres" || rep.ReadCache != "notify" {
		t.Errorf("report.json store %q, read_cache %q: want postgres, notify", rep.Store, rep.ReadCache)
	}
	if !rep.Consistency.OK {
		t.Errorf("consistency: %+v", rep.Consistency)
	}
	for _, name := range rep.SideOrder {
		if s := rep.Sides[name]; s.Costs.Reads == 0 || s.Errors5xx != 0 {
			t.Errorf("%s: %d authenticated reads, %d 5xx: want reads and no 5xx", name, s.Costs.Reads, s.Errors5xx)
		}
	}
	const d = 2.0 // ms each way: a round trip costs 2·d
	key, jwt := rep.Sides["apikey"].Costs, rep.Sides["jwt"].Costs
	t.Logf("notify cache, reads only: authenticated read p50: apikey %.2f ms, jwt %.2f ms; shared-service round trips per request: apikey %.3f (%d), jwt %.3f",
		key.ReadLatencyMS.P50, jwt.ReadLatencyMS.P50, key.SharedRoundTripsPerRequest, key.SharedRoundTrips, jwt.SharedRoundTripsPerRequest)
	// A key misses once per replica (and again on a replica started by
	// the scenario's restart and scale-out), against hundreds of requests.
	if key.SharedRoundTripsPerRequest >= 0.2 || jwt.SharedRoundTrips != 0 {
		t.Errorf("shared-service round trips per request: apikey %.3f, jwt %.3f (%d); want apikey's well under 1 (< 0.2: its cache answers) and none for the JWT",
			key.SharedRoundTripsPerRequest, jwt.SharedRoundTripsPerRequest, jwt.SharedRoundTrips)
	}
	if key.ReadLatencyMS.P50-jwt.ReadLatencyMS.P50 >= 2*d {
		t.Errorf("authenticated read p50: apikey %.2f ms, jwt %.2f ms; want apikey less than one round trip (%.0f ms) above: its key is answered from memory",
			key.ReadLatencyMS.P50, jwt.ReadLatencyMS.P50, 2*d)
	}
}
