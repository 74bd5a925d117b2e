package supervisor

import "syscall"

// sysProcAttr starts a replica in its own process group, so a Ctrl-C in
// the terminal reaches only the runner, which then drains and stops the
// replicas in order. Pdeathsig is the second line of defence after the
// stdin pipe: the kernel SIGKILLs the replica when the thread that started
// it ends, which for a Go program means when the runner ends (the runtime
// keeps its threads, unless a goroutine exits locked to one).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
