// Package client is the one typed client of the Library API, for every
// program of the lab that talks to the servers: the simulated users, perf,
// the matrix's revocation probe and the walkthrough.
//
// It holds what a client has to agree on with the servers: the routes
// (taken from the handler packages' templates, so they are spelled once),
// the JSON bodies (the servers' own types), the envelope every answer comes
// in and the Error a failure turns into, the headers (replica, idempotency
// key), and how each credential is signed in for and sent: a session
// cookie from POST /api/auth/login, an API key from POST
// /api/auth/generate-key, or a JWT from POST /api/auth/token, the last two
// sent as Authorization: Bearer.
//
// A program that sends requests its own way (counting the bytes on the
// wire, retrying, timing) still builds them with NewRequest and reads them
// with ReadResponse, and so speaks the same contract.
package client
