// Package hostcheck decides whether a request's Host header names the
// server that received it: the one check against DNS rebinding that the
// runner, the lab's balancers and both servers' replicas share.
//
// With DNS rebinding, a page on attacker.example has the name resolve to
// 127.0.0.1 and then reads the server as its own origin: the browser sends
// Host: attacker.example, and nothing else tells the request from the
// server's own pages. Rebinding needs a name; an IP literal in Host is
// what a client that reached the server by its address sends.
package hostcheck

import (
	"net"
	"net/netip"
	"strings"
)

// Names is who a server answers for.
type Names struct {
	// Addr is the address the server was configured to listen on
	// (host:port): its host is the one name besides localhost the server
	// answers for; an unspecified host (0.0.0.0, ::, empty) stands for
	// every address of the machine, so any IP literal.
	Addr string
	// Proxied is set for a server that a proxy (the lab's balancer) may
	// stand in front of, keeping the client's Host: the port in Host is
	// then the proxy's, and so may be any, and so may an IP literal (the
	// proxy's address). A name must still be Addr's host or localhost.
	Proxied bool
}

// Allowed reports whether host, a request's Host header, names the server:
// Addr's own host, localhost or a loopback IP, on Addr's port (any port
// when Proxied; no port in Host means 80). An IP literal of the machine's
// counts when the server listens on every address, or is Proxied.
func (n Names) Allowed(host string) bool {
	own, port, err := net.SplitHostPort(n.Addr)
	if err != nil {
		return false
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = host, "80" // no port: the default one, which is the server's only if it listens there
	}
	if p != port && !n.Proxied {
		return false
	}
	own = strings.ToLower(strings.Trim(own, "[]"))
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "" {
		return false
	}
	if h == own || h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	if ip.IsLoopback() || n.Proxied || own == "" {
		return true
	}
	ownIP, err := netip.ParseAddr(own)
	return err == nil && (ownIP.IsUnspecified() || ownIP.Unmap() == ip.Unmap())
}
