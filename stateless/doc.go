// Package stateless is the library server that keeps no client context
// between requests, as the REST stateless constraint asks.
//
// Every request carries a bearer token, and the member comes from that token
// alone: an API key (looked up, as resource state, in the shared database)
// or a JWT (verified with the shared secret, no lookup at all). There is no
// session and no server-side cart: a client keeps its own cart and sends it
// whole to POST /api/borrows. Any replica can therefore answer any request,
// before and after any restart.
package stateless
