package redisserver

import "syscall"

// sysProcAttr puts redis-server in its own process group, so a Ctrl-C in
// the terminal reaches only the caller, which then stops it in order; and
// asks the kernel to SIGKILL it when the thread that started it ends, which
// for a Go program means when the program ends (the runtime keeps its
// threads, unless a goroutine exits locked to one).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
