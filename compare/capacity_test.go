//go:build linux

package compare_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/internal/labtest"
)

// Slack the kernel's CFS bandwidth control leaves a group over its quota:
// it hands the quota out to each CPU in slices of 5 ms, so a group may run
// a little past it in one period and is held back in the next. Over a
// phase of seconds that is a few per cent; over one feed sample (about a
// second, 10 periods, timed by the runner) somewhat more.
const (
	slackRun    = 1.05
	slackSample = 1.25
)

// needCgroups skips the test when this machine cannot enforce a CPU limit
// (not root, no writable cgroup hierarchy with the cpu controller), unless
// CI is set: CI runs as root on a machine whose cgroups are writable, and
// there a limit that cannot be enforced fails the test.
func needCgroups(t *testing.T) {
	t.Helper()
	l, err := cpulimit.Open(0.1, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := l.Enforcement()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if e.Enforced {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and this machine cannot enforce a CPU limit: %s", e)
	}
	t.Skipf("this machine cannot enforce a CPU limit (%s); CI runs as root with writable cgroups", e.Reason)
}

// TestCapacityEndToEnd runs the capacity lesson, shortened, with real
// replicas under a CPU limit the kernel enforces: the runner calibrates
// the rate to 1.5 times what the two starting replicas carry (see
// testdata/capacity.yaml), then scales out to four. It runs in make test,
// beside the other packages' tests, so on a loaded machine; the capacity
// runs quoted in docs/CAPACITY.md ran on an idle one and a loaded one. It
// checks that calibration measured both sides and set the rate from what
// it measured, that scaling out the stateless side raised its successful
// throughput by at least 1.5×, and that the kernel, not the lab, held
// every replica to its limit.
func TestCapacityEndToEnd(t *testing.T) {
	needCgroups(t)
	bin := labtest.Binary(t)
	scenario, err := filepath.Abs(filepath.Join("testdata", "capacity.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := rtStartRunner(t, bin, "--sides", "memory-sticky,apikey", "--scenario", scenario)
	select {
	case <-r.exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("the runner did not finish within 2 minutes")
	}
	if r.err != nil {
		t.Fatalf("the runner failed: %v", r.err)
	}
	b, err := os.ReadFile(filepath.Join(r.report, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}

	if !rep.NoReadCache {
		t.Error("report: the replicas ran with their read cache on; the scenario turns it off")
	}
	// The limit was enforced, by the kernel, and its groups are gone.
	e := rep.ReplicaCPU
	if e == nil || !e.Enforced || e.Mechanism == "" || e.CPUs != 0.1 || e.QuotaUS != 10000 || e.PeriodUS != 100000 {
		t.Fatalf("replica_cpu %+v: want 0.1 CPU enforced, 10000 µs per 100000 µs", e)
	}
	if e.Parent != "" {
		if _, err := os.Stat(e.Parent); !os.IsNotExist(err) {
			t.Errorf("the runner's cgroup %s is still there after it exited (%v)", e.Parent, err)
		}
	}

	// Calibration measured what one replica of each side carries and what
	// the runner can send, and the rate offered is 1.5 × 2 replicas × the
	// larger capacity, within what the runner can send.
	cal := rep.OpenLoop.Calibration
	if cal == nil || cal.Skipped != "" {
		t.Fatalf("open_loop.calibration = %+v, want a measurement", cal)
	}
	t.Logf("calibration: %s", cal)
	largest := 0.0
	for _, name := range []string{"memory-sticky", "apikey"} {
		if cal.ReplicaRPS[name] <= 0 {
			t.Errorf("calibration: %s's replica answered %g/s", name, cal.ReplicaRPS[name])
		}
		largest = max(largest, cal.ReplicaRPS[name])
	}
	if want := min(math.Round(1.5*2*largest), cal.GeneratorRPS); cal.GeneratorRPS <= 0 || cal.Rate != want || rep.OpenLoop.Rate != want {
		t.Errorf("calibration: rate %g (open_loop.rate %g), want 1.5 × 2 × %g bounded by the runner's %g/s = %g", cal.Rate, rep.OpenLoop.Rate, largest, cal.GeneratorRPS, want)
	}

	// The stateless side: before the scale-out, two saturated replicas and
	// timeouts; after it, at least 1.5 times the successful requests.
	side := rep.Sides["apikey"]
	before, after := phaseAfter(t, side.Phases, "start"), phaseAfter(t, side.Phases, "scale-out")
	t.Logf("apikey before the scale-out: %+v", before)
	t.Logf("apikey after the scale-out:  %+v", after)
	t.Logf("memory-sticky phases: %+v", rep.Sides["memory-sticky"].Phases)
	if before.Replicas != 2 || after.Replicas != 4 {
		t.Errorf("replicas %d before, %d after; want 2 and 4", before.Replicas, after.Replicas)
	}
	if ratio := after.ThroughputRPS / before.ThroughputRPS; ratio < 1.5 {
		t.Errorf("throughput %.0f/s before the scale-out, %.0f/s after: %.2f×, want at least 1.5×", before.ThroughputRPS, after.ThroughputRPS, ratio)
	}
	// The load offered was the calibrated rate: counted arrivals, within
	// what a Poisson process strays in seconds.
	if off := before.OfferedRPS / cal.Rate; off < 0.9 || off > 1.1 {
		t.Errorf("offered %.0f/s before the scale-out; calibration set %g/s", before.OfferedRPS, cal.Rate)
	}
	if before.Timeouts == 0 {
		t.Error("two replicas that cannot carry the rate, and no request timed out")
	}
	for id, share := range before.ReplicaCPUShare {
		if share < 0.8 {
			t.Errorf("%s used %.0f%% of its limit before the scale-out: the limit should be what held it back", id, 100*share)
		}
	}

	// No replica ever ran beyond its quota but for the kernel's slack:
	// over the whole run (CPU time ÷ quota × the periods it ran in), in
	// each phase of at least 5 s, and in each feed sample.
	for name, sd := range rep.Sides {
		if len(sd.ReplicaCPU) == 0 {
			t.Errorf("%s: no replica's CPU in the report", name)
		}
		for _, u := range sd.ReplicaCPU {
			if u.CPUS <= 0 || u.Periods == 0 {
				t.Errorf("%s %s: CPU %.3f s in %d periods: the cgroup counted nothing", name, u.Replica, u.CPUS, u.Periods)
			}
			if u.QuotaShare > slackRun || u.MaxShare > slackSample {
				t.Errorf("%s %s used %.3f of its quota over the run and %.3f of its limit in one sample; the kernel allows %.2f and %.2f",
					name, u.Replica, u.QuotaShare, u.MaxShare, slackRun, slackSample)
			}
		}
		for _, p := range sd.Phases {
			if p.ToS-p.FromS < 5 {
				continue
			}
			for id, share := range p.ReplicaCPUShare {
				if share > slackRun {
					t.Errorf("%s %s used %.3f of its limit from %.1f s to %.1f s", name, id, share, p.FromS, p.ToS)
				}
			}
		}
	}
}

// phaseAfter returns the (settled) phase that began with the given event.
func phaseAfter(t *testing.T, phases []report.Phase, after string) report.Phase {
	t.Helper()
	for _, p := range phases {
		if p.After == after && !p.During && !p.Settling {
			return p
		}
	}
	t.Fatalf("no phase after %q in %+v", after, phases)
	return report.Phase{}
}
