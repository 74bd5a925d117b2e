package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysProcAttr starts a replica in its own process group, so a Ctrl-C in
// the terminal reaches only the runner, which then drains and stops the
// replicas in order. Pdeathsig is the second line of defence after the
// stdin pipe: the kernel SIGKILLs the replica when the thread that started
// it ends, which for a Go program means when the runner ends (the runtime
// keeps its threads, unless a goroutine exits locked to one).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// userHZ is the unit of the CPU times in /proc/PID/stat: clock ticks of
// 1/100 s on every architecture Linux runs Go on (USER_HZ is fixed at 100
// for the kernel's user-space interface).
const userHZ = 100

// processCPU reads a running process's user and system CPU time from
// /proc/PID/stat (fields 14 and 15, counted after the command name, which
// is in parentheses and may itself hold spaces).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state): utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
