// Package proccpu reads how much CPU time a running process has used, by
// the kernel's account. The lab divides it by the requests a process
// served: unlike a latency, a process's own CPU time does not grow when the
// machine is busy with something else.
package proccpu
