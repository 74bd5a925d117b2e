package hosts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsDir is where named network namespaces are bind-mounted, as
// iproute2 does: `ip netns` lists what is there.
const netnsDir = "/run/netns"

// labSys is what a lab keeps of the kernel's: its handle on the runner's
// own namespace, and a netlink socket in it.
type labSys struct {
	home netns.NsHandle
	nl   *netlink.Handle
}

// hostSys is the host's namespace, held open.
type hostSys struct {
	ns netns.NsHandle
}

// Open makes the lab's bridge with the runner's address on it, after
// sweeping away what dead runners left behind. It needs root; where it
// cannot run it says what is needed.
func Open(ctx context.Context, cfg Config) (*Lab, error) {
	return open(ctx, cfg, os.Getpid())
}

// open is Open for a runner whose pid is pid: a test makes the leftovers
// of a dead one with it.
func open(ctx context.Context, cfg Config, pid int) (*Lab, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !prefixRule.MatchString(cfg.Prefix) {
		return nil, fmt.Errorf("hosts prefix %q: use 1 to 4 lower-case letters", cfg.Prefix)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Subnet.IsValid() {
		if err := checkSubnet(cfg.Subnet); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("--hosts netns needs root: it makes network namespaces, a bridge and veth pairs (CAP_SYS_ADMIN, CAP_NET_ADMIN); run as root (sudo), or use --hosts local")
	}
	if removed, err := Sweep(cfg.Prefix); err != nil {
		cfg.Logger.Warn("hosts: could not remove everything dead runners left behind", "err", err)
	} else if len(removed) > 0 {
		cfg.Logger.Info("hosts: removed what dead runners left behind", "removed", removed)
	}
	home, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("hosts: the runner's own network namespace: %w", err)
	}
	nl, err := netlink.NewHandleAt(home)
	if err != nil {
		home.Close()
		return nil, fmt.Errorf("hosts: a netlink socket: %w", err)
	}
	l := &Lab{cfg: cfg, pid: pid, prefix: cfg.Prefix, hosts: map[string]*Host{}, sys: labSys{home: home, nl: nl}}
	l.bridge = l.prefix + strconv.Itoa(l.pid)
	if err := l.makeBridge(ctx); err != nil {
		l.Close()
		return nil, err
	}
	l.next = l.addr.Next()
	cfg.Logger.Info("hosts: lab bridge up", "bridge", l.bridge, "subnet", l.subnet, "runner", l.addr)
	return l, nil
}

// makeBridge makes the bridge, brings it up and gives it the runner's
// address in the lab's subnet.
func (l *Lab) makeBridge(ctx context.Context) error {
	la := netlink.NewLinkAttrs()
	la.Name = l.bridge
	br := &netlink.Bridge{LinkAttrs: la}
	if err := l.sys.nl.LinkAdd(br); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("hosts: the kernel refused to make bridge %s (%w): inside a container, give it CAP_NET_ADMIN and CAP_SYS_ADMIN (docker run --privileged), or use --hosts local", l.bridge, err)
		}
		return fmt.Errorf("hosts: make bridge %s: %w", l.bridge, err)
	}
	// Where br_netfilter is loaded, frames crossing a bridge go through
	// iptables' FORWARD chain, which a firewall (Docker's, for one) may
	// drop: this bridge's frames are the lab's own business.
	_ = os.WriteFile(filepath.Join("/sys/class/net", l.bridge, "bridge/nf_call_iptables"), []byte("0"), 0o644)
	link, err := l.sys.nl.LinkByName(l.bridge)
	if err != nil {
		return fmt.Errorf("hosts: bridge %s: %w", l.bridge, err)
	}
	if err := l.sys.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("hosts: bring bridge %s up: %w", l.bridge, err)
	}
	if l.cfg.Subnet.IsValid() {
		if other := l.overlap(l.cfg.Subnet, -1); other != "" {
			return fmt.Errorf("hosts subnet %s overlaps %s on this machine; give another with --hosts-subnet (a /24 inside %s is the usual choice)", l.cfg.Subnet, other, DefaultRange)
		}
		return l.claim(link, l.cfg.Subnet)
	}
	// A /24 of the default range that no interface and no route uses,
	// starting from one the pid chooses, so that runners started at the
	// same moment rarely reach for the same one. Should two claim one
	// anyway, each sees the other's address, lets go of its own and goes
	// on from a /24 chosen at random.
	n := 1 << (24 - DefaultRange.Bits())
	start := l.pid % n
	base := DefaultRange.Addr().As4()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := (start + i) % n
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1] + byte(k>>8), byte(k), 0}), 24)
		if l.overlap(p, -1) != "" {
			continue
		}
		if err := l.claim(link, p); err != nil {
			return err
		}
		if other := l.overlap(p, link.Attrs().Index); other == "" {
			return nil
		}
		_ = l.sys.nl.AddrDel(link, &netlink.Addr{IPNet: ipNet(l.addr, p.Bits())})
		l.addr, l.subnet = netip.Addr{}, netip.Prefix{}
		start = rand.IntN(n) - i - 1
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
	}
	return fmt.Errorf("hosts: every /24 in %s is in use on this machine; give a free subnet with --hosts-subnet", DefaultRange)
}

// claim puts the runner's address, the subnet's first, on the bridge.
func (l *Lab) claim(br netlink.Link, p netip.Prefix) error {
	addr := p.Addr().Next()
	if err := l.sys.nl.AddrAdd(br, &netlink.Addr{IPNet: ipNet(addr, p.Bits())}); err != nil {
		return fmt.Errorf("hosts: address %s on bridge %s: %w", addr, l.bridge, err)
	}
	l.subnet, l.addr = p, addr
	return nil
}

// overlap names an address or route of the runner's namespace that
// overlaps p, outside the link with index skip (-1: none); "" when there
// is none. The default route overlaps everything and does not count.
func (l *Lab) overlap(p netip.Prefix, skip int) string {
	addrs, _ := l.sys.nl.AddrList(nil, netlink.FAMILY_V4)
	for _, a := range addrs {
		if a.LinkIndex == skip || a.IPNet == nil {
			continue
		}
		if q, ok := prefixOf(a.IPNet); ok && q.Overlaps(p) {
			return "address " + a.IPNet.String()
		}
	}
	routes, _ := l.sys.nl.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.LinkIndex == skip || r.Dst == nil {
			continue
		}
		if q, ok := prefixOf(r.Dst); ok && q.Bits() > 0 && q.Overlaps(p) {
			return "route " + r.Dst.String()
		}
	}
	return ""
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}
}

// Host returns the host called name, making it the first time: a network
// namespace, a veth pair whose one end is on the bridge and whose other
// is the host's eth0 with the next free address of the subnet, and lo up.
// Its only route is the subnet's, through eth0.
func (l *Lab) Host(name string) (*Host, error) {
	if !hostName.MatchString(name) {
		return nil, fmt.Errorf("host name %q: use letters, digits and _.+- (at most 64)", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if h, ok := l.hosts[name]; ok {
		return h, nil
	}
	addr, n, err := l.allocate(name)
	if err != nil {
		return nil, err
	}
	h := &Host{lab: l, name: name, addr: addr,
		namespace: l.prefix + strconv.Itoa(l.pid) + "-" + name,
		veth:      l.prefix + strconv.Itoa(l.pid) + "-" + strconv.Itoa(n)}
	if err := h.make(); err != nil {
		h.remove()
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	l.hosts[name] = h
	l.order = append(l.order, h)
	l.cfg.Logger.Debug("hosts: host up", "host", name, "addr", addr, "netns", h.namespace)
	return h, nil
}

func (h *Host) make() error {
	l := h.lab
	h.sys.ns = netns.None()
	// netns.NewNamed moves the calling thread into the new namespace:
	// a thread of its own, moved back before anything else runs on it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.NewNamed(h.namespace)
		if err != nil {
			errc <- err
			if netns.Set(l.sys.home) == nil {
				runtime.UnlockOSThread()
			}
			return
		}
		h.sys.ns = ns
		if err := netns.Set(l.sys.home); err != nil {
			// Left locked, the thread ends with this goroutine.
			errc <- fmt.Errorf("back to the runner's namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("the kernel refused to make network namespace %s (%w): inside a container, give it CAP_SYS_ADMIN (docker run --privileged), or use --hosts local", h.namespace, err)
		}
		return fmt.Errorf("network namespace %s: %w", h.namespace, err)
	}
	br, err := l.sys.nl.LinkByName(l.bridge)
	if err != nil {
		return err
	}
	la := netlink.NewLinkAttrs()
	la.Name = h.veth
	la.MasterIndex = br.Attrs().Index
	// The peer is made inside the namespace, so it can be eth0 there.
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(h.sys.ns)}
	if err := l.sys.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: %w", h.veth, err)
	}
	if err := l.sys.nl.LinkSetUp(veth); err != nil {
		return fmt.Errorf("veth %s up: %w", h.veth, err)
	}
	in, err := netlink.NewHandleAt(h.sys.ns)
	if err != nil {
		return err
	}
	defer in.Close()
	eth0, err := in.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := in.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(h.addr, l.subnet.Bits())}); err != nil {
		return fmt.Errorf("address %s: %w", h.addr, err)
	}
	if err := in.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	lo, err := in.LinkByName("lo")
	if err != nil {
		return err
	}
	return in.LinkSetUp(lo)
}

// remove deletes the veth pair (both ends go with the one on the bridge)
// and the namespace. A process still inside keeps the namespace alive,
// nameless, until it exits.
func (h *Host) remove() error {
	var errs []error
	if link, err := h.lab.sys.nl.LinkByName(h.veth); err == nil {
		if err := h.lab.sys.nl.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", h.veth, err))
		}
	}
	if _, err := os.Stat(filepath.Join(netnsDir, h.namespace)); err == nil {
		if err := netns.DeleteNamed(h.namespace); err != nil {
			errs = append(errs, fmt.Errorf("delete network namespace %s: %w", h.namespace, err))
		}
	}
	if h.sys.ns.IsOpen() {
		h.sys.ns.Close()
		h.sys.ns = netns.None()
	}
	return errors.Join(errs...)
}

// Close removes every host and the bridge. Stop the processes inside the
// hosts first: the runner's own sockets in them close with it. A nil Lab
// has nothing to close.
func (l *Lab) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	hosts := l.order
	l.order, l.hosts, l.closed = nil, map[string]*Host{}, true
	l.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.remove())
	}
	if link, err := l.sys.nl.LinkByName(l.bridge); err == nil {
		if err := l.sys.nl.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", l.bridge, err))
		}
	}
	if l.sys.nl != nil {
		l.sys.nl.Close()
		l.sys.nl = nil
	}
	if l.sys.home.IsOpen() {
		l.sys.home.Close()
	}
	return errors.Join(errs...)
}

// Do runs fn inside the host's namespace, on a goroutine locked to an OS
// thread that is moved into the namespace and back. A socket fn makes
// stays in the namespace; a goroutine fn starts does not run there.
func (h *Host) Do(fn func() error) error {
	home := h.lab.sys.home
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(h.sys.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("host %s: enter its namespace: %w", h.name, err)
			return
		}
		err := fn()
		if serr := netns.Set(home); serr != nil {
			// The thread cannot be trusted with anything else: left
			// locked, it ends with this goroutine. A process fn started
			// from it gets its parent-death signal then.
			errc <- errors.Join(err, fmt.Errorf("host %s: back to the runner's namespace: %w", h.name, serr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// Listen listens inside the host; address's host is usually Host.IP.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) { ln, err = net.Listen(network, address); return err })
	return ln, err
}

// DialContext dials from inside the host: the connection leaves by the
// host's eth0, from the host's address.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		c, err = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Start starts cmd inside the host: the child inherits the namespace of
// the thread that forks it. A SysProcAttr.Pdeathsig still works as
// usual: the thread goes back to the runtime's pool, and lives on.
func (h *Host) Start(cmd *exec.Cmd) error {
	return h.Do(cmd.Start)
}

// FreeAddr returns host:port with a port no one in the host listens on
// now.
func (h *Host) FreeAddr() (string, error) {
	ln, err := h.Listen("tcp", net.JoinHostPort(h.IP(), "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Sweep removes the namespaces, veths and bridges named with prefix whose
// runner (the pid in the name) is no longer alive, and returns their names.
// Open calls it; a test may too.
func Sweep(prefix string) ([]string, error) {
	if !prefixRule.MatchString(prefix) {
		return nil, fmt.Errorf("hosts prefix %q: use 1 to 4 lower-case letters", prefix)
	}
	q := regexp.QuoteMeta(prefix)
	nsName := regexp.MustCompile(`^` + q + `([0-9]+)-`)
	linkName := regexp.MustCompile(`^` + q + `([0-9]+)(-[0-9]+)?$`)
	dead := func(m []string) bool {
		if m == nil {
			return false
		}
		pid, err := strconv.Atoi(m[1])
		return err == nil && pid > 0 && pid != os.Getpid() && !alive(pid)
	}
	var removed []string
	var errs []error
	// Links first: a veth whose peer is in a namespace about to go would
	// otherwise linger until the kernel gets round to the namespace.
	links, err := netlink.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		errs = append(errs, fmt.Errorf("list links: %w", err))
	}
	slices.SortFunc(links, func(a, b netlink.Link) int { // veths before bridges
		return boolInt(a.Type() == "bridge") - boolInt(b.Type() == "bridge")
	})
	for _, link := range links {
		name := link.Attrs().Name
		if t := link.Type(); t != "veth" && t != "bridge" || !dead(linkName.FindStringSubmatch(name)) {
			continue
		}
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", link.Type(), name, err))
			continue
		}
		removed = append(removed, name)
	}
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if !dead(nsName.FindStringSubmatch(e.Name())) {
			continue
		}
		if err := netns.DeleteNamed(e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("delete network namespace %s: %w", e.Name(), err))
			continue
		}
		removed = append(removed, "netns "+e.Name())
	}
	return removed, errors.Join(errs...)
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
