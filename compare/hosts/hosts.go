package hosts

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"
)

// Where the lab's processes run: the values of --hosts.
const (
	// Local runs every process on this machine's own network stack; they
	// reach each other over loopback.
	Local = "local"
	// Netns runs every process on a host of its own (a network namespace).
	Netns = "netns"
)

// ParseMode checks a --hosts value.
func ParseMode(s string) (string, error) {
	switch s {
	case "", Local:
		return Local, nil
	case Netns:
		return Netns, nil
	}
	return "", fmt.Errorf("hosts %q: use %s (every process on this machine's network stack) or %s (each on a network namespace of its own; Linux, root)", s, Local, Netns)
}

// DefaultRange is where Open picks a run's subnet when Config.Subnet is
// not set: 198.18.0.0/15, reserved for network benchmark labs (RFC 2544),
// so it is nobody's real network.
var DefaultRange = netip.MustParsePrefix("198.18.0.0/15")

// DefaultPrefix starts the name of every namespace, bridge and veth a lab
// makes.
const DefaultPrefix = "slab"

// Config says how to build a lab.
type Config struct {
	// Subnet is the run's own IPv4 subnet: the runner takes its first
	// address, on the bridge, and each host the next free one. The zero
	// Prefix means a /24 inside DefaultRange that no interface or route of
	// the machine uses.
	Subnet netip.Prefix
	// Prefix starts every name (DefaultPrefix when empty): one to four
	// lower-case letters, so that a veth's name, the prefix, the pid and
	// the host's number, fits the kernel's 15 characters.
	Prefix string
	Logger *slog.Logger
}

// ParseSubnet checks a --hosts-subnet value: an IPv4 network (its address
// with the host bits zero) of /8 to /29.
func ParseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("hosts subnet %q: write it as a CIDR, e.g. 198.18.7.0/24", s)
	}
	return p, checkSubnet(p)
}

func checkSubnet(p netip.Prefix) error {
	switch {
	case !p.Addr().Is4():
		return fmt.Errorf("hosts subnet %s: use an IPv4 subnet, e.g. 198.18.7.0/24", p)
	case p.Bits() < 8 || p.Bits() > 29:
		return fmt.Errorf("hosts subnet %s: use a prefix length from /8 to /29 (a /29 has room for the runner and 5 hosts)", p)
	case p != p.Masked():
		return fmt.Errorf("hosts subnet %s: give the network's own address, %s", p, p.Masked())
	}
	return nil
}

var prefixRule = regexp.MustCompile(`^[a-z]{1,4}$`)

// hostName is what Host accepts: a namespace's name is the lab's prefix,
// its pid, "-" and this.
var hostName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.+-]{0,63}$`)

// maxHosts keeps a veth's name, prefix + pid + "-" + number, within 15
// characters.
const maxHosts = 999

// ErrClosed is Host's answer once the lab is closed.
var ErrClosed = errors.New("hosts: the lab is closed")

// Lab is the hosts of one run on one bridge, all named after the runner's
// pid.
type Lab struct {
	cfg    Config
	pid    int
	prefix string
	subnet netip.Prefix
	addr   netip.Addr // the runner's, on the bridge
	bridge string
	sys    labSys // what the operating system needs kept

	mu     sync.Mutex
	hosts  map[string]*Host
	order  []*Host
	next   netip.Addr
	closed bool
}

// Subnet is the run's subnet: the runner's address and every host's are
// in it.
func (l *Lab) Subnet() netip.Prefix { return l.subnet }

// Addr is the runner's own address on the bridge: every host reaches the
// runner's process there, and the runner reaches the hosts from it.
func (l *Lab) Addr() netip.Addr { return l.addr }

// Bridge is the name of the lab's bridge.
func (l *Lab) Bridge() string { return l.bridge }

// Hosts returns the hosts made so far, in the order they were made.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.order...)
}

// allocate returns the next free address of the subnet, or an error
// that says to give a larger one.
func (l *Lab) allocate(name string) (netip.Addr, int, error) {
	a := l.next
	last := lastAddr(l.subnet)
	if !l.subnet.Contains(a) || a == last || len(l.order) >= maxHosts {
		return netip.Addr{}, 0, fmt.Errorf("subnet %s has no address left for host %s (%d hosts made); give a larger one with --hosts-subnet", l.subnet, name, len(l.order))
	}
	l.next = a.Next()
	return a, len(l.order) + 1, nil
}

// lastAddr is the subnet's broadcast address, which no host takes.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Host is one network namespace of the lab: one veth, eth0, with one
// address on the bridge, and lo.
type Host struct {
	lab       *Lab
	name      string
	namespace string
	veth      string // the veth's end on the bridge, in the runner's namespace
	addr      netip.Addr
	sys       hostSys
}

// Name is the name the host was made with.
func (h *Host) Name() string { return h.name }

// Namespace is the network namespace's name, as `ip netns` lists it: `ip
// netns exec NAME ss -tln` shows what listens on the host.
func (h *Host) Namespace() string { return h.namespace }

// Addr is the host's address on the bridge.
func (h *Host) Addr() netip.Addr { return h.addr }

// IP is Addr as a string, for a host:port.
func (h *Host) IP() string { return h.addr.String() }

func (h *Host) String() string {
	return h.name + " (" + h.addr.String() + ", netns " + h.namespace + ")"
}
