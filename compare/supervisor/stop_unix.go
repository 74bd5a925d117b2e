//go:build unix

package supervisor

import "syscall"

// stopSignal sends SIGTERM as well, what every Unix server understands,
// so a replica that does not watch its standard input still stops
// gracefully.
func stopSignal(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // os.ErrProcessDone: it is gone already
}
