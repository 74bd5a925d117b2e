package labtest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// PrivatePostgres is what a statelab process's private PostgreSQL servers
// look like from outside: the directories named for its pid
// (statelab-pg-PID-RANDOM under the system's temporary directory) and the
// processes of the servers whose data directories are in them.
type PrivatePostgres struct {
	Dirs []string
	PIDs []int
}

// PrivatePostgresOf looks for the private PostgreSQL servers of the
// process pid (a runner, a matrix): their directories, and their
// postmasters with every child (checkpointer, backends...), whose command
// lines name no directory.
func PrivatePostgresOf(pid int) PrivatePostgres {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "statelab-pg-"+strconv.Itoa(pid)+"-*"))
	p := PrivatePostgres{Dirs: dirs}
	if len(dirs) == 0 {
		return p
	}
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var masters []int
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil || !isPostgres(b) {
			continue
		}
		if slices.ContainsFunc(dirs, func(dir string) bool { return bytes.Contains(b, []byte(dir+"/")) }) {
			masters = append(masters, procPID(path))
		}
	}
	p.PIDs = slices.Clone(masters)
	for _, path := range paths {
		pid := procPID(path)
		if ppid, _, ok := procStat(pid); ok && slices.Contains(masters, ppid) {
			p.PIDs = append(p.PIDs, pid)
		}
	}
	slices.Sort(p.PIDs)
	p.PIDs = slices.Compact(p.PIDs)
	return p
}

// PostgresRunning returns those of pids that are still PostgreSQL
// processes and not zombies: a pid reused since by another program does
// not count.
func PostgresRunning(pids []int) []int {
	var alive []int
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil || !isPostgres(b) && !bytes.HasPrefix(b, []byte("postgres:")) {
			continue
		}
		if _, state, ok := procStat(pid); ok && state != "Z" && state != "X" {
			alive = append(alive, pid)
		}
	}
	return alive
}

// isPostgres reports whether a command line runs the postgres binary.
func isPostgres(cmdline []byte) bool {
	name, _, _ := bytes.Cut(cmdline, []byte{0})
	return filepath.Base(string(name)) == "postgres"
}

// procPID reads the pid from /proc/PID/cmdline.
func procPID(path string) int {
	pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
	return pid
}

// procStat reads a process's parent and state from /proc/PID/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// The command name, in parentheses, may hold spaces.
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	return ppid, string(f[0]), err == nil
}
