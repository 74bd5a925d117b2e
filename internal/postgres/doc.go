// Package postgres implements library.Store on one PostgreSQL database
// that every replica reaches over the network: the shared store for
// replicas that share no file, on separate hosts or in their own network
// namespaces. Its behaviour is the SQLite store's, checked by the same
// conformance suite (internal/storetest); only the mechanisms differ.
//
// # Transactions and locks
//
// SQLite admits one writer at a time, so a read-modify-write there sees no
// other writer between its read and its write. PostgreSQL runs writers side
// by side (READ COMMITTED), so each read-modify-write here locks the rows
// it will change before it reads them: a borrow locks its books (SELECT ...
// FOR UPDATE, in id order, so two borrows of the same books queue instead
// of deadlocking), a return its borrow record, an update or a delete its
// book, a new API key its member (so the cap on keys holds under
// concurrency), a revocation its key. A borrower that waited for the last
// copy then reads it gone: one borrow of the last copy succeeds, whatever
// the concurrency, and the others get EUNAVAILABLE. Two requests with one
// Idempotency-Key are serialised by an advisory lock on the key, taken
// first in the transaction that stores the key with the change.
//
// # Migrations
//
// The schema is in migrations/, applied by pressly/goose under a
// PostgreSQL advisory lock (a session lock goose takes while it migrates),
// and the seed (package seed) follows in a transaction that holds the same
// lock and first checks whether the database is seeded: replicas that open
// a new database together migrate and seed it once. The steps mirror
// SQLite's (1: the tables, 2: idempotency keys, 3: failed sign-ins), but
// for 4, PostgreSQL's own: the triggers that notify the notify cache of
// changes. SQLite keeps its own
// scheme, PRAGMA user_version in the one write transaction that also seeds
// (see internal/sqlite): goose has no lock for SQLite, and runs each step
// in a transaction of its own after reading the version outside it, so
// replica processes opening a new file together would race where SQLite's
// write lock serialises them today; and the two dialects' steps could not
// be shared anyway.
//
// # Prepared statements, and the read cache
//
// pgx prepares each statement text once per connection and keeps it (its
// statement cache), so the hot paths' texts are parsed once per
// connection, as SQLite's prepared statements are.
//
// The read cache (cache.go) is exact in the sense SQLite's is: a page is
// served only while no transaction has committed since it was read, by
// any replica. Without shared memory to read that from, each hit asks the
// server for its snapshot: one round trip, a short one in place of the
// query. That pays for pages of the catalog and searches, and not for a
// book by id or an API key, whose query is hardly more than the round
// trip: those are read from the server every time.
//
// WithNotifyCache (--read-cache=notify) chooses the other side of that
// trade (notify.go): books, API keys and pages answered from memory with
// no round trip, forgotten when PostgreSQL notifies a change (LISTEN/NOTIFY
// from triggers). It is stale after another replica's write until the
// notification arrives: measured by TestNotifyCache_SeesEveryChangeOfAnotherProcess,
// a few hundred microseconds at the median on loopback, milliseconds at
// the tail.
package postgres
