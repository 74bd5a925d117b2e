//go:build !linux

package supervisor

import "syscall"

// sysProcAttr has nothing to add outside Linux: the stdin pipe alone
// makes a replica exit with the runner.
func sysProcAttr() *syscall.SysProcAttr { return nil }
