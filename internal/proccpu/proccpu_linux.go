package proccpu

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: clock ticks of
// 1/100 s. USER_HZ is fixed at 100 in the kernel's interface to user space
// on every architecture Go runs on.
const userHZ = 100

// Of returns the user and system CPU time of the running process pid, read
// from /proc/PID/stat (fields 14 and 15, counted after the command name,
// which is in parentheses and may hold spaces itself).
func Of(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat %q: no command name", b)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (the state): utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields, want at least 15", len(fields)+2)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
