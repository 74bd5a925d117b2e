// Package hosts gives every process of a lab run a network stack of its
// own: a host, here a Linux network namespace with one veth interface and
// one address, plugged into one bridge that the run owns. Every replica,
// each balancer and each shared service (redis-server, PostgreSQL) then
// has its own address and its own ports, and reaches the others over the
// bridge, as machines on one switch do; a teacher can say "each replica is
// a machine of its own" and show it with `ip netns exec`.
//
// Open makes the bridge, with the run's own address on it, in one subnet
// the run owns (by default a free /24 inside 198.18.0.0/15, the block
// RFC 2544 reserves for network benchmarks); Lab.Host makes a host. No
// namespace gets a route beyond the bridge, so nothing a host sends can
// leave the machine. Lab.Close removes every namespace, veth pair and the
// bridge. Every name starts with a prefix and the runner's pid, so that
// Sweep, which Open calls, removes what a runner that was killed left
// behind, and nothing of a runner still alive.
//
// A Host runs a function inside its namespace (Do) on a goroutine locked
// to its OS thread, which is switched into the namespace and back: that is
// how the runner listens there (Listen), dials from there (DialContext, for
// a balancer's transport) and starts a process there (Start). A process
// started by a thread inherits the thread's namespace, and Go's os/exec
// forks from the calling thread, so exec.Cmd.Start on the switched thread
// starts the child inside the host; a socket keeps the namespace it was
// made in whichever thread uses it later.
//
// It needs Linux and root (CAP_SYS_ADMIN and CAP_NET_ADMIN); elsewhere Open
// says so and what to use instead.
package hosts
