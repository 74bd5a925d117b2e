package pgserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts the process in its own process group, so a Ctrl-C in
// the terminal reaches only the caller, which then stops it in order; asks
// the kernel to SIGKILL it when the thread that started it ends; and runs
// it as acct when that is set (the caller is root).
func sysProcAttr(acct *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if acct != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(acct.uid), Gid: uint32(acct.gid), NoSetGroups: true}
	}
	return attr
}

// owner returns the user and group that own a file.
func owner(st os.FileInfo) (uid, gid int, ok bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(sys.Uid), int(sys.Gid), true
}
