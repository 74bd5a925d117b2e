// Package stateful is the library server that keeps the conversation (who
// the client is, what is in its cart) between requests, the way many web
// applications do and the stateless constraint forbids.
//
// Where the session goes is a SessionStore, and the lab has three:
//
//   - MemoryStore keeps it in this one process's memory; the cookie holds
//     a signed, random id. Any other replica, or this one after a restart,
//     holds no such session: the client sees 401 session_lost, has to log
//     in again, and its cart is gone. That loss is what the lab measures.
//   - RedisStore keeps it in a redis server every replica shares; the
//     cookie still holds only the signed id. Replicas become
//     interchangeable, and redis becomes the thing that can fail: while it
//     is down, requests get 503 session_store_unavailable.
//   - CookieStore seals the whole session into the cookie (encrypted and
//     authenticated) and keeps nothing: stateless in disguise. The cookie
//     grows with the cart, and a logout cannot revoke a copy of it.
//
// OpenStore opens any of them by name (the -sessions flag), and each
// describes itself (Description): where it keeps a session, whether other
// replicas find it, whether a logout revokes it, and what it needs running
// beside the replicas. A new store is one file and a line in storeKinds.
package stateful
