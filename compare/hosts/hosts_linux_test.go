package hosts_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/statelab/statelab/compare/hosts"
	"github.com/statelab/statelab/internal/labtest"
)

// testPrefix names what these tests make, apart from a real runner's.
const testPrefix = "slt"

// TestLab makes a lab of two hosts and checks what a host is: its own
// address in the subnet, reached over the bridge from the other host and
// from the runner, no route beyond the bridge, and a process started on it
// inside its namespace; then that Close leaves nothing behind.
func TestLab(t *testing.T) {
	labtest.NeedRoot(t, "a lab of network namespaces")
	ctx := context.Background()
	lab, err := hosts.Open(ctx, hosts.Config{Prefix: testPrefix})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			lab.Close()
		}
	})
	if !hosts.DefaultRange.Contains(lab.Addr()) || !lab.Subnet().Contains(lab.Addr()) || lab.Subnet().Bits() != 24 {
		t.Errorf("subnet %s, runner %s: want a /24 inside %s holding the runner's address", lab.Subnet(), lab.Addr(), hosts.DefaultRange)
	}
	a, err := lab.Host("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := lab.Host("b")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := lab.Host("a"); err != nil || again != a {
		t.Errorf("Host(a) again = %v, %v; want the same host", again, err)
	}
	for _, h := range []*hosts.Host{a, b} {
		if !lab.Subnet().Contains(h.Addr()) || h.Addr() == lab.Addr() {
			t.Errorf("host %s: address %s, want one of its own in %s", h.Name(), h.Addr(), lab.Subnet())
		}
	}
	if a.Addr() == b.Addr() {
		t.Errorf("hosts a and b share %s", a.Addr())
	}

	// b dials a over the bridge, and a sees b's address.
	ln, err := a.Listen("tcp", net.JoinHostPort(a.IP(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "a heard %s", line)
			c.Close()
		}
	}()
	exchange := func(dial func(context.Context, string, string) (net.Conn, error)) (string, string) {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := dial(dctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial %s: %v", ln.Addr(), err)
		}
		defer c.Close()
		fmt.Fprintf(c, "hello\n")
		got, _ := io.ReadAll(c)
		return string(got), <-accepted
	}
	if got, from := exchange(b.DialContext); got != "a heard hello\n" || from != b.IP() {
		t.Errorf("b to a: answer %q from a connection a saw from %s; want %q from %s", got, from, "a heard hello\n", b.IP())
	}
	if got, from := exchange((&net.Dialer{}).DialContext); got != "a heard hello\n" || from != lab.Addr().String() {
		t.Errorf("runner to a: answer %q from a connection a saw from %s; want %q from %s", got, from, "a heard hello\n", lab.Addr())
	}

	// Nothing beyond the bridge: no default route, nowhere else to go.
	if c, err := a.DialContext(ctx, "tcp", "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "network is unreachable") {
		if c != nil {
			c.Close()
		}
		t.Errorf("a dialing 192.0.2.1 (TEST-NET-1): %v; want network is unreachable", err)
	}

	// A process started on a runs inside a's namespace.
	var fi syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", a.Namespace()), &fi); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command("readlink", "/proc/self/ns/net")
	cmd.Stdout = &out
	if err := a.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if want := "net:[" + strconv.FormatUint(fi.Ino, 10) + "]"; strings.TrimSpace(out.String()) != want {
		t.Errorf("a process started on a is in %q; want a's namespace, %s", strings.TrimSpace(out.String()), want)
	}
	// ... and the runner's own goroutines stay in the runner's namespace.
	self, _ := os.Readlink("/proc/thread-self/ns/net")
	if mine, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", os.Getpid())); self != mine {
		t.Errorf("after Start this thread is in %s; want the runner's %s", self, mine)
	}

	addr, err := b.FreeAddr()
	if ap, perr := netip.ParseAddrPort(addr); err != nil || perr != nil || ap.Addr() != b.Addr() || ap.Port() == 0 {
		t.Errorf("b.FreeAddr() = %q, %v; want %s and a port", addr, err, b.Addr())
	}

	ln.Close()
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if left := leftovers(t, os.Getpid()); len(left) > 0 {
		t.Errorf("after Close: %v left behind", left)
	}
	if _, err := lab.Host("c"); err == nil {
		t.Error("Host after Close: want an error")
	}
}

// TestSweep leaves a lab behind as a killed runner does, and checks that
// the sweep removes it all, and nothing of a runner still alive.
func TestSweep(t *testing.T) {
	labtest.NeedRoot(t, "a lab of network namespaces")
	ctx := context.Background()
	// A pid that was a process a moment ago and is no longer one.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := gone.Process.Pid
	// The live one first: Open sweeps too.
	live, err := hosts.Open(ctx, hosts.Config{Prefix: testPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := live.Host("jwt-1"); err != nil {
		t.Fatal(err)
	}
	old, err := hosts.OpenAs(ctx, hosts.Config{Prefix: testPrefix}, dead)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close() // only its file descriptors are left by then
	for _, name := range []string{"lb-jwt", "jwt-1"} {
		if _, err := old.Host(name); err != nil {
			t.Fatal(err)
		}
	}
	if left := leftovers(t, dead); len(left) != 5 {
		t.Fatalf("the dead runner's lab: %v; want its bridge, 2 veths, 2 namespaces", left)
	}

	removed, err := hosts.Sweep(testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 5 {
		t.Errorf("Sweep removed %v; want the dead runner's 5", removed)
	}
	if left := leftovers(t, dead); len(left) > 0 {
		t.Errorf("after Sweep: %v of the dead runner's left", left)
	}
	if left := leftovers(t, os.Getpid()); len(left) != 3 {
		t.Errorf("after Sweep, the live runner's lab is %v; want its bridge, veth and namespace untouched", left)
	}
}

// leftovers lists the links and namespaces named after pid.
func leftovers(t *testing.T, pid int) []string {
	t.Helper()
	name := testPrefix + strconv.Itoa(pid)
	var left []string
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if n := l.Attrs().Name; n == name || strings.HasPrefix(n, name+"-") {
			left = append(left, l.Type()+" "+n)
		}
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			left = append(left, "netns "+e.Name())
		}
	}
	return left
}

// TestSubnets checks that two labs get subnets apart, even when their
// pids would start the search at the same /24, and that a subnet asked for
// that overlaps one in use is refused with what to do.
func TestSubnets(t *testing.T) {
	labtest.NeedRoot(t, "a lab of network namespaces")
	ctx := context.Background()
	a, err := hosts.Open(ctx, hosts.Config{Prefix: testPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// 512 /24s in the default range: this pid starts where a's did.
	b, err := hosts.OpenAs(ctx, hosts.Config{Prefix: testPrefix}, os.Getpid()+512)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Subnet().Overlaps(b.Subnet()) {
		t.Errorf("labs a and b share %s and %s", a.Subnet(), b.Subnet())
	}
	mine := netip.MustParsePrefix(netip.PrefixFrom(a.Addr(), 28).Masked().String())
	if c, err := hosts.OpenAs(ctx, hosts.Config{Prefix: testPrefix, Subnet: mine}, os.Getpid()+1024); err == nil || !strings.Contains(err.Error(), "--hosts-subnet") {
		c.Close()
		t.Errorf("Open with %s, inside a's %s: %v; want an error that says to give another with --hosts-subnet", mine, a.Subnet(), err)
	}
	if left := leftovers(t, os.Getpid()+1024); len(left) > 0 {
		t.Errorf("a failed Open left %v", left)
	}
}
