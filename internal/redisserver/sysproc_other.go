//go:build !linux

package redisserver

import "syscall"

// sysProcAttr has nothing to add outside Linux: Stop is the only way the
// process ends with its caller.
func sysProcAttr() *syscall.SysProcAttr { return nil }
