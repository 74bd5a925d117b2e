//go:build linux

package cpulimit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Where the kernel shows what this package reads.
const (
	mountInfoFile = "/proc/self/mountinfo"
	selfCgroup    = "/proc/self/cgroup"
)

// Limiter gives each replica a cgroup with the CPU limit, and removes them
// all on Close. Its methods are safe for concurrent use.
type Limiter struct {
	enf    Enforcement
	logger *slog.Logger
	quota  int64

	v2 bool
	// cpuDir is the runner's parent group in the hierarchy that carries
	// the cpu controller (the unified one for v2); acctDir the same group
	// in a cgroup v1 cpuacct hierarchy mounted apart from cpu, where the
	// usage is counted ("" when cpuacct sits with cpu, or is missing).
	cpuDir, acctDir string
	// acctInCPU: the v1 cpu hierarchy also carries cpuacct.
	acctInCPU bool
	// systemdRun is systemd-run's path when each replica gets a scope.
	systemdRun string
	// mount is the cgroup v2 mount point, for finding a scope's files.
	mount string

	// ownDir is this process's group when Open ran, where Close puts it
	// back after Shelter; sheltered is set once it moved.
	ownDir    string
	sheltered bool

	mu     sync.Mutex
	groups map[string]bool // replica ids with a group made
	seq    int             // numbers systemd scopes
}

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	mount string   // where it is mounted
	root  string   // the part of the hierarchy the mount shows ("/" but in some containers)
	ctrls []string // v1: its controllers (super options); v2: none listed here
	v2    bool
}

// Open prepares the CPU limit of cpus cores per replica: it finds a cgroup
// hierarchy with the cpu controller that this process may write, removes
// what earlier runners of this kind left behind when they died, and makes
// this runner's parent group. When nothing can enforce the limit it returns
// a Limiter whose Enforcement says why, and whose Confine changes nothing.
func Open(cpus float64, logger *slog.Logger) (*Limiter, error) {
	if err := Validate(cpus); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{logger: logger, quota: quotaUS(cpus), groups: map[string]bool{}}
	l.enf = Enforcement{CPUs: cpus}
	name, err := ownerName(os.Getpid())
	if err != nil {
		l.enf.Reason = "cannot name this runner's group: " + err.Error()
		return l, nil
	}
	mi, err := os.ReadFile(mountInfoFile)
	if err != nil {
		l.enf.Reason = "cannot read " + mountInfoFile + ": " + err.Error()
		return l, nil
	}
	own, err := os.ReadFile(selfCgroup)
	if err != nil {
		l.enf.Reason = "cannot read " + selfCgroup + ": " + err.Error()
		return l, nil
	}
	hs := parseMountInfo(string(mi))
	paths := parseProcCgroup(string(own))
	var reasons []string

	if h, ok := findV2(hs); ok && hasWord(readString(filepath.Join(h.mount, "cgroup.controllers")), "cpu") {
		cands := candidates(h, paths[""])
		l.enf.LeftoversRemoved = append(l.enf.LeftoversRemoved, removeLeftovers(cands, logger)...)
		dir, why := makeParent(cands, name, true)
		if dir != "" {
			l.v2, l.cpuDir, l.mount, l.ownDir = true, dir, h.mount, cands[len(cands)-1]
			l.enforced(MechanismCgroupV2, dir)
			return l, nil
		}
		reasons = append(reasons, "cgroup v2: "+why)
		if os.Geteuid() != 0 {
			if run, why := probeSystemd(l.quota); run != "" {
				l.systemdRun, l.mount = run, h.mount
				l.enforced(MechanismSystemd, "")
				return l, nil
			} else {
				reasons = append(reasons, "systemd user scope: "+why)
			}
		}
	} else if ok {
		reasons = append(reasons, "cgroup v2 is mounted at "+h.mount+" without the cpu controller")
	}

	if h, ok := findV1(hs, "cpu"); ok {
		cands := candidates(h, paths["cpu"])
		l.enf.LeftoversRemoved = append(l.enf.LeftoversRemoved, removeLeftovers(cands, logger)...)
		dir, why := makeParent(cands, name, false)
		if dir == "" {
			reasons = append(reasons, "cgroup v1: "+why)
		} else {
			l.cpuDir, l.ownDir = dir, cands[len(cands)-1]
			if hasWord(strings.Join(h.ctrls, " "), "cpuacct") {
				l.acctInCPU = true
			} else if a, ok := findV1(hs, "cpuacct"); ok {
				acands := candidates(a, paths["cpuacct"])
				l.enf.LeftoversRemoved = append(l.enf.LeftoversRemoved, removeLeftovers(acands, logger)...)
				// Without cpuacct the limit still holds; only the usage
				// is then read from each process instead of its group.
				l.acctDir, _ = makeParent(acands, name, false)
			}
			l.enforced(MechanismCgroupV1, dir)
			return l, nil
		}
	} else if len(reasons) == 0 {
		reasons = append(reasons, "no cgroup hierarchy with the cpu controller is mounted")
	}
	l.enf.Reason = strings.Join(reasons, "; ")
	return l, nil
}

func (l *Limiter) enforced(mechanism, parent string) {
	l.enf.Enforced, l.enf.Mechanism, l.enf.Parent = true, mechanism, parent
	l.enf.QuotaUS, l.enf.PeriodUS = l.quota, Period.Microseconds()
}

// group returns the directories of replica id's group, making them on first
// use: its cpu group and, with a separate cpuacct hierarchy, its cpuacct
// group.
func (l *Limiter) group(id string) (cpuDir, acctDir string, err error) {
	if strings.ContainsAny(id, "/\x00") || id == "" || id == "." || id == ".." {
		return "", "", fmt.Errorf("replica id %q cannot name a cgroup", id)
	}
	cpuDir = filepath.Join(l.cpuDir, id)
	if l.acctDir != "" {
		acctDir = filepath.Join(l.acctDir, id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.groups[id] {
		return cpuDir, acctDir, nil
	}
	if err := os.Mkdir(cpuDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", "", fmt.Errorf("make the cgroup of %s: %w", id, err)
	}
	if l.v2 {
		want := fmt.Sprintf("%d %d", l.quota, Period.Microseconds())
		if err := writeFile(filepath.Join(cpuDir, "cpu.max"), want); err != nil {
			return "", "", err
		}
		if got := readString(filepath.Join(cpuDir, "cpu.max")); got != want {
			return "", "", fmt.Errorf("%s/cpu.max reads %q after writing %q", cpuDir, got, want)
		}
	} else {
		if err := writeFile(filepath.Join(cpuDir, "cpu.cfs_period_us"), strconv.FormatInt(Period.Microseconds(), 10)); err != nil {
			return "", "", err
		}
		if err := writeFile(filepath.Join(cpuDir, "cpu.cfs_quota_us"), strconv.FormatInt(l.quota, 10)); err != nil {
			return "", "", err
		}
		if got := readString(filepath.Join(cpuDir, "cpu.cfs_quota_us")); got != strconv.FormatInt(l.quota, 10) {
			return "", "", fmt.Errorf("%s/cpu.cfs_quota_us reads %q after writing %d", cpuDir, got, l.quota)
		}
	}
	if acctDir != "" {
		if err := os.Mkdir(acctDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", "", fmt.Errorf("make the cpuacct group of %s: %w", id, err)
		}
	}
	l.groups[id] = true
	return cpuDir, acctDir, nil
}

// confine is Confine for an enforced limit.
func (l *Limiter) confine(id string, cmd *exec.Cmd) (func(pid int) error, error) {
	if l.systemdRun != "" {
		return l.confineSystemd(id, cmd)
	}
	cpuDir, acctDir, err := l.group(id)
	if err != nil {
		return nil, err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	var fd *os.File
	if l.v2 {
		// The process starts inside its group (clone3 with
		// CLONE_INTO_CGROUP): not one instruction runs unlimited.
		fd, err = os.Open(cpuDir)
		if err != nil {
			return nil, fmt.Errorf("open the cgroup of %s: %w", id, err)
		}
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(fd.Fd())
	}
	return func(pid int) error {
		if fd != nil {
			fd.Close()
		}
		if pid <= 0 {
			return nil // the start failed; nothing to move
		}
		if !l.v2 {
			// cgroup v1 cannot start a process in a group: it moves
			// right after the fork, its whole thread group at once,
			// before the replica has read its flags.
			if err := writeFile(filepath.Join(cpuDir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
				return err
			}
			if acctDir != "" {
				if err := writeFile(filepath.Join(acctDir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
					return err
				}
			}
		}
		return verifyMember(pid, cpuDir)
	}, nil
}

// verifyMember checks that the kernel lists the process in the group: a
// limit that was written but not applied would be a silent fake.
func verifyMember(pid int, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("check the cgroup of pid %d: %w", pid, err)
	}
	for f := range strings.FieldsSeq(string(b)) {
		if f == strconv.Itoa(pid) {
			return nil
		}
	}
	return fmt.Errorf("pid %d is not in %s after it was placed there", pid, dir)
}

// confineSystemd starts the replica through systemd-run in a transient
// scope of the user's systemd with the quota; systemd-run then executes the
// replica itself, so the pid, the signals and the standard input stay the
// replica's.
func (l *Limiter) confineSystemd(id string, cmd *exec.Cmd) (func(pid int) error, error) {
	l.mu.Lock()
	l.seq++
	unit := fmt.Sprintf("statelab-%d-%s-%d", os.Getpid(), id, l.seq)
	l.mu.Unlock()
	args := append([]string{l.systemdRun, "--user", "--scope", "--quiet", "--collect", "--unit", unit,
		"-p", fmt.Sprintf("CPUQuota=%g%%", float64(l.quota)/float64(Period.Microseconds())*100),
		"-p", "CPUQuotaPeriodSec=" + Period.String(), "--"}, cmd.Args...)
	args[len(args)-len(cmd.Args)] = cmd.Path
	cmd.Path, cmd.Args = l.systemdRun, args
	return func(pid int) error {
		if pid <= 0 {
			return nil
		}
		// systemd-run makes the scope, then executes the replica: wait
		// until the process is in a group whose cpu.max is the quota.
		want := fmt.Sprintf("%d %d", l.quota, Period.Microseconds())
		deadline := time.Now().Add(5 * time.Second)
		for {
			path := parseProcCgroup(readString(fmt.Sprintf("/proc/%d/cgroup", pid)))[""]
			if strings.HasSuffix(path, unit+".scope") && readString(filepath.Join(l.mount, path, "cpu.max")) == want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("replica %s (pid %d) is not in a systemd scope with cpu.max %q after 5s (its cgroup: %s)", id, pid, want, path)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}, nil
}

// Usage returns the CPU time replica id's group has used since it was
// made, across every process that ran in it; false when the group does not
// count it (no group, or no cpuacct in cgroup v1): read the process then.
func (l *Limiter) Usage(id string) (time.Duration, bool) {
	if l == nil || !l.enf.Enforced || l.systemdRun != "" {
		return 0, false
	}
	l.mu.Lock()
	made := l.groups[id]
	l.mu.Unlock()
	if !made {
		return 0, false
	}
	switch {
	case l.v2:
		v, ok := statField(filepath.Join(l.cpuDir, id, "cpu.stat"), "usage_usec")
		return time.Duration(v) * time.Microsecond, ok
	case l.acctInCPU:
		return readNanos(filepath.Join(l.cpuDir, id, "cpuacct.usage"))
	case l.acctDir != "":
		return readNanos(filepath.Join(l.acctDir, id, "cpuacct.usage"))
	}
	return 0, false
}

// Throttling returns what replica id's group says about its quota.
func (l *Limiter) Throttling(id string) (Throttling, bool) {
	if l == nil || !l.enf.Enforced || l.systemdRun != "" {
		return Throttling{}, false
	}
	l.mu.Lock()
	made := l.groups[id]
	l.mu.Unlock()
	if !made {
		return Throttling{}, false
	}
	file := filepath.Join(l.cpuDir, id, "cpu.stat")
	var t Throttling
	var ok1, ok2 bool
	t.Periods, ok1 = statField(file, "nr_periods")
	t.Throttled, ok2 = statField(file, "nr_throttled")
	if l.v2 {
		us, _ := statField(file, "throttled_usec")
		t.Time = time.Duration(us) * time.Microsecond
	} else {
		ns, _ := statField(file, "throttled_time")
		t.Time = time.Duration(ns)
	}
	return t, ok1 && ok2
}

// runnerGroup names the group Shelter moves the runner into.
const runnerGroup = "runner"

// Shelter moves this process, the runner that sends the load and runs the
// balancers, into a group of its own beside the replicas' (no quota, the
// weight of 8 processes), so that it shares the parent's weight: on a
// machine busy with other programs, the load the lab measures still goes
// out on time and the balancers still pass it on. The replicas are
// started by this process but never in this group. Close moves it back.
// Without an enforced limit, or with systemd scopes, Shelter does nothing.
func (l *Limiter) Shelter() error {
	if l == nil || !l.enf.Enforced || l.systemdRun != "" {
		return nil
	}
	dir := filepath.Join(l.cpuDir, runnerGroup)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("make the runner's cgroup: %w", err)
	}
	weight, file := strconv.Itoa(8*100), "cpu.weight"
	if !l.v2 {
		weight, file = strconv.Itoa(8*1024), "cpu.shares"
	}
	if err := writeFile(filepath.Join(dir, file), weight); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
		return err
	}
	l.sheltered = true
	return nil
}

// Close removes every group this Limiter made, then its parent. Call it
// once the replicas have exited: a group with a process in it cannot be
// removed, and Close waits a little for the kernel to let go of processes
// that have just died.
func (l *Limiter) Close() error {
	if l == nil || l.cpuDir == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	if l.sheltered {
		if err := writeFile(filepath.Join(l.ownDir, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
			errs = append(errs, fmt.Errorf("move the runner back to its own cgroup: %w", err))
		} else {
			l.sheltered = false
		}
		errs = append(errs, rmdirPatiently(filepath.Join(l.cpuDir, runnerGroup)))
	}
	for _, parent := range []string{l.cpuDir, l.acctDir} {
		if parent == "" {
			continue
		}
		for id := range l.groups {
			errs = append(errs, rmdirPatiently(filepath.Join(parent, id)))
		}
		errs = append(errs, rmdirPatiently(parent))
	}
	clear(l.groups)
	return errors.Join(errs...)
}

// rmdirPatiently removes an empty cgroup, waiting up to a second while it
// is busy (a process that has just exited leaves it a moment later).
func rmdirPatiently(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || ctx.Err() != nil {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statFields splits /proc/PID/stat into its fields, numbered from 1 as in
// proc(5) (f[1] is the pid); the command name may contain spaces and
// parentheses, so it is cut at the last ")".
func statFields(s string) ([]string, error) {
	i := strings.IndexByte(s, '(')
	j := strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return nil, errors.New("malformed /proc/PID/stat")
	}
	f := append([]string{"", strings.TrimSpace(s[:i]), s[i+1 : j]}, strings.Fields(s[j+1:])...)
	if len(f) < 23 {
		return nil, errors.New("short /proc/PID/stat")
	}
	return f, nil
}

// ownerName names a runner's parent group after its pid and its start time
// (field 22 of /proc/PID/stat, in ticks since boot), so a later runner can
// tell a group whose owner is dead from one whose pid was reused.
func ownerName(pid int) (string, error) {
	start, err := startTime(pid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("statelab-%d-%s", pid, start), nil
}

func startTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	f, err := statFields(string(b))
	if err != nil {
		return "", err
	}
	return f[22], nil
}

// ownerPattern matches the parent groups runners make, and nothing else.
var ownerPattern = regexp.MustCompile(`^statelab-([0-9]+)-([0-9]+)$`)

// ownerAlive reports whether the runner that made a parent group named
// name is still running: a process with its pid and its start time.
func ownerAlive(name string) bool {
	m := ownerPattern.FindStringSubmatch(name)
	if m == nil {
		return true // not ours: never touch it
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil {
		return true
	}
	start, err := startTime(pid)
	return err == nil && start == m[2]
}

// removeLeftovers removes, in each candidate directory, the parent groups
// of runners that are dead (killed before they could clean up), with the
// replicas' groups in them. Groups of live runners, groups not named like
// ours, and groups that still hold a process are left alone.
func removeLeftovers(dirs []string, logger *slog.Logger) []string {
	var removed []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || !ownerPattern.MatchString(e.Name()) || ownerAlive(e.Name()) {
				continue
			}
			parent := filepath.Join(dir, e.Name())
			var errs []error
			children, _ := os.ReadDir(parent)
			for _, c := range children {
				if c.IsDir() {
					errs = append(errs, rmdirPatiently(filepath.Join(parent, c.Name())))
				}
			}
			errs = append(errs, rmdirPatiently(parent))
			if err := errors.Join(errs...); err != nil {
				logger.Warn("could not remove a dead runner's cgroup", "dir", parent, "err", err)
				continue
			}
			removed = append(removed, parent)
		}
	}
	return removed
}

// parentWeight is the runner's parent group's CPU weight, in normal
// processes: a group competes with the processes beside it as one process
// would, however many replicas it holds, so on a busy machine eight
// replicas could share what one process gets and never reach their quota.
// A pod whose requests equal its limits is guaranteed its CPU in the same
// way. The quota, not the weight, keeps the replicas from taking more.
const parentWeight = 16

// makeParent makes the runner's parent group in the first candidate
// directory (from the hierarchy's root down to this process's own group)
// where it may, and returns it, or "" and why not. With cgroup v2 the
// directory must hand the cpu controller down (cgroup.subtree_control); it
// is switched on where it is not, which the kernel refuses in a group that
// holds processes itself (the no-internal-process rule): such a group is
// skipped, and the runner is never moved to make room.
func makeParent(cands []string, name string, v2 bool) (string, string) {
	var why []string
	for _, c := range cands {
		if v2 {
			if !hasWord(readString(filepath.Join(c, "cgroup.controllers")), "cpu") {
				why = append(why, c+" does not offer the cpu controller")
				break // nor will any group below it
			}
			if !hasWord(readString(filepath.Join(c, "cgroup.subtree_control")), "cpu") {
				if err := writeFile(filepath.Join(c, "cgroup.subtree_control"), "+cpu"); err != nil {
					why = append(why, err.Error())
					continue
				}
			}
		}
		dir := filepath.Join(c, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			why = append(why, err.Error())
			continue
		}
		if v2 {
			err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+cpu")
			if err == nil {
				err = writeFile(filepath.Join(dir, "cpu.weight"), strconv.Itoa(parentWeight*100))
			}
			if err != nil {
				_ = syscall.Rmdir(dir)
				why = append(why, err.Error())
				continue
			}
		} else if _, err := os.Stat(filepath.Join(dir, "cpu.shares")); err == nil {
			// cgroup v1's cpu hierarchy (its cpuacct one has no weight).
			if err := writeFile(filepath.Join(dir, "cpu.shares"), strconv.Itoa(parentWeight*1024)); err != nil {
				_ = syscall.Rmdir(dir)
				why = append(why, err.Error())
				continue
			}
		}
		return dir, ""
	}
	if len(why) == 0 {
		return "", "no place to make a group"
	}
	return "", strings.Join(why, "; ")
}

// candidates lists where a parent group may go in hierarchy h, from its
// mount point down to the group of this process (own, as /proc/self/cgroup
// says it).
func candidates(h hierarchy, own string) []string {
	rel := own
	if h.root != "/" {
		rel = strings.TrimPrefix(own, h.root)
	}
	out := []string{h.mount}
	dir := h.mount
	for part := range strings.SplitSeq(strings.Trim(rel, "/"), "/") {
		if part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		out = append(out, dir)
	}
	return out
}

// probeSystemd checks that the user's systemd gives a scope the quota: it
// runs a shell in one that prints its own cpu.max. systemd accepts
// CPUQuota even where the cpu controller is not delegated, so only the
// kernel's file says whether it holds.
func probeSystemd(quota int64) (string, string) {
	run, err := exec.LookPath("systemd-run")
	if err != nil {
		return "", "systemd-run is not installed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pct := fmt.Sprintf("CPUQuota=%g%%", float64(quota)/float64(Period.Microseconds())*100)
	out, err := exec.CommandContext(ctx, run, "--user", "--scope", "--quiet", "--collect", "-p", pct,
		"-p", "CPUQuotaPeriodSec="+Period.String(), "--", "/bin/sh", "-c",
		`cat "/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/cpu.max"`).Output()
	if err != nil {
		return "", "systemd-run --user --scope failed: " + err.Error()
	}
	want := fmt.Sprintf("%d %d", quota, Period.Microseconds())
	if got := strings.TrimSpace(string(out)); got != want {
		return "", fmt.Sprintf("a scope's cpu.max reads %q, not %q: the user's systemd does not delegate the cpu controller", got, want)
	}
	return run, ""
}

// parseMountInfo returns the cgroup hierarchies in /proc/self/mountinfo.
func parseMountInfo(s string) []hierarchy {
	var hs []hierarchy
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(f) < sep+4 {
			continue
		}
		switch f[sep+1] {
		case "cgroup2":
			hs = append(hs, hierarchy{mount: unescape(f[4]), root: f[3], v2: true})
		case "cgroup":
			hs = append(hs, hierarchy{mount: unescape(f[4]), root: f[3], ctrls: strings.Split(f[sep+3], ",")})
		}
	}
	return hs
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func findV2(hs []hierarchy) (hierarchy, bool) {
	for _, h := range hs {
		if h.v2 {
			return h, true
		}
	}
	return hierarchy{}, false
}

func findV1(hs []hierarchy, ctrl string) (hierarchy, bool) {
	for _, h := range hs {
		if !h.v2 && hasWord(strings.Join(h.ctrls, " "), ctrl) {
			return h, true
		}
	}
	return hierarchy{}, false
}

// parseProcCgroup maps each controller of /proc/PID/cgroup to the group's
// path; "" is the cgroup v2 path.
func parseProcCgroup(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// statField reads one "key value" line of a cpu.stat file.
func statField(file, key string) (int64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(" "))
		if ok && string(k) == key {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func readNanos(file string) (time.Duration, bool) {
	n, err := strconv.ParseInt(readString(file), 10, 64)
	return time.Duration(n), err == nil
}

func readString(file string) string {
	b, _ := os.ReadFile(file)
	return strings.TrimSpace(string(b))
}

func hasWord(s, w string) bool {
	for f := range strings.FieldsSeq(s) {
		if f == w {
			return true
		}
	}
	return false
}

// writeFile writes a cgroup control file, which takes one write of the
// whole value and no truncation.
func writeFile(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, file, err)
	}
	return nil
}
