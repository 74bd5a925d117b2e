//go:build !unix

package pgserver

import (
	"os"
	"syscall"
)

// sysProcAttr has nothing to add where there is no root to step down from
// and no process group to make.
func sysProcAttr(*account) *syscall.SysProcAttr { return nil }

// owner is unknown here.
func owner(os.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
