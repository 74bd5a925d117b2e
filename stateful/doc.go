// Package stateful is the library server that keeps the conversation in its
// own memory, the way many web applications do and the stateless constraint
// forbids.
//
// A client logs in and gets a cookie that holds nothing but a signed session
// id. The session itself (who the client is and what is in its cart) lives in
// a MemoryStore inside this one process. Any other replica, or this one after
// a restart, holds no such session: the client sees 401 session_lost and has
// to log in again, and its cart is gone. That loss is what the lab measures.
package stateful
