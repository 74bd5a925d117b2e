// Package sqlite implements library.Store on one SQLite file that many
// operating-system processes open at the same time: every replica of both
// servers reads and writes the same books, members, API keys and borrows, so
// the only thing that differs between the servers is where they keep the
// conversation state.
//
// # Why two connection pools
//
// A DB holds two *sql.DB on the same file. The write pool has a single
// connection and is used for every write and every read-modify-write; the
// read pool has a few connections, is marked query_only, and serves plain
// reads. In WAL mode readers never block the writer nor each other, so reads
// can go wide, while writes are serialized anyway by SQLite's single write
// lock: more than one or two write connections per process only adds
// cross-process lock contention, and SQLITE_BUSY errors, without adding
// throughput. One write connection also means a process queues its own
// writers in database/sql, where they honour their contexts, instead of in
// SQLite's sleeping busy handler.
//
// # Why IMMEDIATE transactions
//
// A plain BEGIN (DEFERRED) takes the read lock first and upgrades to the
// write lock at the first write. When two processes both hold a read
// snapshot and both try to upgrade, SQLite cannot wait for either without a
// deadlock, so it fails one of them with SQLITE_BUSY at once, whatever the
// busy timeout: measured here, such transactions fail under load. With
// _txlock=immediate every transaction on the write pool takes the write lock
// at BEGIN, where waiting is safe, so the busy timeout does its job and a
// read-modify-write (check availability, then decrement it) sees no other
// writer between its read and its write. That is what makes "N borrowers of
// the last copy, exactly one success" hold across processes.
//
// # Opening a fresh file from several processes
//
// Open applies the schema and the seed inside one IMMEDIATE transaction that
// first re-reads the schema version and whether the seed is there, so
// replicas that start together on a fresh file migrate and seed it exactly
// once; the others wait for the lock and then find nothing left to do.
//
// # What is prepared, and what is cached
//
// Every statement a request runs on its hot path is prepared once per
// connection: the read paths' in stmts.go, the writes' (a borrow, a return,
// an idempotent write, an API key's creation and revocation) in prepared.go.
// On top of that, each process keeps a read cache (cache.go) of a book, a
// page of books and an API key with its member, valid exactly as long as
// SQLite's wal-index header, which every commit in every process rewrites,
// reads the same. It holds resource state, never a client's.
package sqlite
