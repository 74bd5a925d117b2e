package cpulimit_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/cpulimit"
	"github.com/statelab/statelab/internal/proccpu"
)

// TestMain doubles as the busy process the enforcement test confines: the
// test binary started again with STATELAB_CPULIMIT_SPIN set spins on every
// core it may use until it is killed.
func TestMain(m *testing.M) {
	if os.Getenv("STATELAB_CPULIMIT_SPIN") != "" {
		var work atomic.Uint64
		for range 4 {
			go func() {
				for {
					work.Add(1)
				}
			}()
		}
		select {}
	}
	os.Exit(m.Run())
}

func TestHierarchies(t *testing.T) {
	tests := []struct {
		name, mountinfo string
		want            []string
	}{
		{"hybrid: v1 cpu and cpuacct apart, v2 without controllers",
			"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
				"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
				"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n" +
				"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
			[]string{"v1 /sys/fs/cgroup/cpu / rw,cpu", "v1 /sys/fs/cgroup/cpuacct / rw,cpuacct", "v2 /sys/fs/cgroup/unified /"}},
		{"systemd v2 only",
			"30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
			[]string{"v2 /sys/fs/cgroup /"}},
		{"co-mounted cpu,cpuacct in a container, escaped mount point",
			"40 31 0:35 /docker/abc /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpu,cpuacct\n",
			[]string{"v1 /sys/fs/cgroup/cpu x /docker/abc rw,cpu,cpuacct"}},
		{"no cgroups", "22 1 0:21 / /proc rw - proc proc rw\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpulimit.Hierarchies(tt.mountinfo); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := cpulimit.ParseProcCgroup("9:name=systemd:/\n2:cpu,cpuacct:/user.slice\n4:memory:/a/b\n0::/user.slice/session-1.scope\n")
	want := map[string]string{"name=systemd": "/", "cpu": "/user.slice", "cpuacct": "/user.slice", "memory": "/a/b", "": "/user.slice/session-1.scope"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		mount, root, own string
		want             []string
	}{
		{"/sys/fs/cgroup", "/", "/", []string{"/sys/fs/cgroup"}},
		{"/sys/fs/cgroup", "/", "/user.slice/user-1000.slice/session-2.scope",
			[]string{"/sys/fs/cgroup", "/sys/fs/cgroup/user.slice", "/sys/fs/cgroup/user.slice/user-1000.slice", "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"}},
		{"/sys/fs/cgroup/cpu", "/docker/abc", "/docker/abc/x", []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu/x"}},
	}
	for _, tt := range tests {
		if got := cpulimit.Candidates(tt.mount, tt.root, tt.own); !slices.Equal(got, tt.want) {
			t.Errorf("Candidates(%q, %q, %q): got %q, want %q", tt.mount, tt.root, tt.own, got, tt.want)
		}
	}
}

func TestStatFields(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 5 0 987654 1000 10"
	f, err := cpulimit.StatFields(line)
	if err != nil {
		t.Fatal(err)
	}
	if f[1] != "4242" || f[2] != "a (b) c" || f[14] != "250" || f[15] != "37" || f[22] != "987654" {
		t.Errorf("got pid %s comm %q utime %s stime %s starttime %s", f[1], f[2], f[14], f[15], f[22])
	}
	if _, err := cpulimit.StatFields("garbage"); err == nil {
		t.Error("a line without (comm) parsed")
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cpus float64
		ok   bool
	}{{0.25, true}, {0.01, true}, {2, true}, {0, false}, {-1, false}, {0.001, false}, {1000, false}} {
		if err := cpulimit.Validate(tt.cpus); (err == nil) != tt.ok {
			t.Errorf("Validate(%g): got %v, want ok=%v", tt.cpus, err, tt.ok)
		}
	}
}

// needEnforcement opens a limit and returns it when the kernel enforces it
// here. Without root, or without a writable cgroup hierarchy, the test is
// skipped on a developer's machine and fails under CI, which runs as root
// on a machine whose cgroups are writable.
func needEnforcement(t *testing.T, cpus float64) *cpulimit.Limiter {
	t.Helper()
	l, err := cpulimit.Open(cpus, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if e := l.Enforcement(); !e.Enforced {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the CPU limit cannot be enforced here: %s", e)
		}
		t.Skipf("the CPU limit cannot be enforced here (%s); CI runs as root with writable cgroups", e.Reason)
	}
	return l
}

// TestEnforced confines a process that would use every core to 0.2 CPU and
// measures what the kernel let it use.
func TestEnforced(t *testing.T) {
	const cpus = 0.2
	l := needEnforcement(t, cpus)
	e := l.Enforcement()
	t.Logf("%s", e)
	if e.QuotaUS != 20000 || e.PeriodUS != 100000 {
		t.Errorf("quota %d per %d µs, want 20000 per 100000", e.QuotaUS, e.PeriodUS)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STATELAB_CPULIMIT_SPIN=1")
	started, err := l.Confine("spin-1", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		_ = started(0)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := started(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	u0, _ := l.Usage("spin-1")
	time.Sleep(2 * time.Second)
	u1, ok := l.Usage("spin-1")
	wall := time.Since(began)
	if !ok {
		p, err := proccpu.Of(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		u1 = p // the group does not count usage here: read the process
	}
	share := (u1 - u0).Seconds() / wall.Seconds()
	t.Logf("used %.3f CPU over %v (limit %.2f)", share, wall.Round(time.Millisecond), cpus)
	// The kernel hands quota out in slices of 5 ms per CPU, so a group may
	// run a little over in one period; over 20 periods that is a few %.
	if share > cpus*1.1+0.01 {
		t.Errorf("used %.3f CPU, over the %.2f limit and the kernel's slack", share, cpus)
	}
	if share < cpus*0.5 {
		t.Errorf("used %.3f CPU: a process that spins should get most of its %.2f limit", share, cpus)
	}
	if th, ok := l.Throttling("spin-1"); !ok || th.Throttled == 0 {
		t.Errorf("throttling %+v (ok %v): a process that spins must be throttled", th, ok)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(e.Parent); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close (%v)", e.Parent, err)
	}
}

// TestLeftovers leaves groups behind as a killed runner would, next to
// groups that are not a dead runner's, and checks that Open removes those
// and only those.
func TestLeftovers(t *testing.T) {
	l := needEnforcement(t, 0.1)
	where := filepath.Dir(l.Enforcement().Parent)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// This process's pid with another start time: a runner that died and
	// whose pid was reused. pid 1 with its own start time: alive.
	start1 := procStart(t, 1)
	dead := filepath.Join(where, fmt.Sprintf("statelab-%d-1", os.Getpid()))
	alive := filepath.Join(where, "statelab-1-"+start1)
	other := filepath.Join(where, "statelab-not-a-runner")
	for _, d := range []string{dead, filepath.Join(dead, "stateless-1"), alive, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{filepath.Join(dead, "stateless-1"), dead, alive, other} {
			_ = os.Remove(d)
		}
	})
	l2 := needEnforcement(t, 0.1)
	if got := l2.Enforcement().LeftoversRemoved; !slices.Contains(got, dead) || len(got) != 1 {
		t.Errorf("LeftoversRemoved %q, want only %s", got, dead)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("%s is still there", dead)
	}
	for _, d := range []string{alive, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}

func procStart(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f, err := cpulimit.StatFields(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return f[22]
}

// TestShelter moves this test process into the runner's group and back.
func TestShelter(t *testing.T) {
	l := needEnforcement(t, 0.1)
	own := ownGroup(t)
	if err := l.Shelter(); err != nil {
		t.Fatal(err)
	}
	if got, want := ownGroup(t), filepath.Join(l.Enforcement().Parent, "runner"); !strings.HasSuffix(want, got) {
		t.Errorf("after Shelter this process is in %s, want %s", got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ownGroup(t); got != own {
		t.Errorf("after Close this process is in %s, want %s, where it was", got, own)
	}
	if _, err := os.Stat(l.Enforcement().Parent); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Close (%v)", l.Enforcement().Parent, err)
	}
}

// ownGroup returns this process's group in the hierarchy with the cpu
// controller, as /proc/self/cgroup says it.
func ownGroup(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	m := cpulimit.ParseProcCgroup(string(b))
	if p, ok := m["cpu"]; ok {
		return p
	}
	return m[""]
}
