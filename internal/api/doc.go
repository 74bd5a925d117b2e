// Package api holds the one set of library handlers that both servers mount:
// books, borrows and "who am I", plus health, readiness, metrics, the JSON
// envelope and error writing.
//
// It never knows which server mounted it. A server passes in the middleware
// that finds the request's member (from a session or from a token) and adds
// its own sign-in routes with Handle; everything else is written here once so
// the two servers cannot drift apart.
package api
