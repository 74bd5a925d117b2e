//go:build unix && !linux

package pgserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts the process in its own process group and runs it as
// acct when that is set; outside Linux, Stop is the only way the process
// ends with its caller.
func sysProcAttr(acct *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
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
