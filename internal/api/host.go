package api

import (
	"log/slog"
	"net/http"

	"github.com/statelab/statelab/internal/hostcheck"
	"github.com/statelab/statelab/internal/library"
)

// GuardHost answers 421 misdirected_request to every request whose Host
// does not name a server configured to listen on addr: a name other than
// addr's own host or localhost. A page that reached a replica or a
// balancer under its own name (DNS rebinding: attacker.example resolved to
// 127.0.0.1) would otherwise be the server's own origin, sign in and add
// books; the browser still sends Host: attacker.example. Any port and any
// IP literal are accepted, since the lab's balancer passes its clients'
// Host on (hostcheck.Names.Proxied).
func GuardHost(addr string, logger *slog.Logger, next http.Handler) http.Handler {
	names := hostcheck.Names{Addr: addr, Proxied: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !names.Allowed(r.Host) {
			Error(w, r, logger, library.Errorf(library.EMISDIRECTED,
				"This server answers only for its own address, localhost or an IP address, not for Host %q: a page that reached it under another name (DNS rebinding) may not use it.", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}
