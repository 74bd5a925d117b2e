// Package load is the lab's simulated traffic and what it counts: closed-loop
// users who sign in, browse, fill a cart, borrow and return, each waiting for
// its answer before the next request (User), an open-loop load whose requests
// arrive at a fixed rate whether or not the side keeps up (OpenLoop), and the
// per-side counters both feed (SideStats), with the classification of every
// answer a user's HTTP client received (Classify). Every number is counted
// from an answer that really arrived, or a failure that really happened.
package load
