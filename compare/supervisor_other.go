//go:build !linux

package compare

import "syscall"

// supSysProcAttr has nothing to add outside Linux: the stdin pipe alone
// makes a replica exit with the runner.
func supSysProcAttr() *syscall.SysProcAttr { return nil }
