package postgres

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/statelab/statelab/internal/library"
)

// cache remembers pages of the catalog (FindBooks) for exactly as long as
// no transaction has committed anywhere in the database server since they
// were read, by any replica.
//
// # How it knows the database changed
//
// Replicas on separate hosts share no memory and no file, so nothing
// tells a replica of another's commit for free: SQLite's cache reads a
// header in shared memory that every commit rewrites (a pread), but here
// only the server knows. So every hit costs one round trip: the cache asks
// for the server's current snapshot (pg_current_snapshot(): the oldest
// transaction still running, the next transaction id, and those in
// progress between them), which changes whenever a transaction that wrote
// anything commits, and never comes back to an earlier value. A page is
// served only while the snapshot reads the same as when the page was read.
// Each page is read with the snapshot of its own statement beside its
// rows, so its tag names exactly the commits it saw.
//
// Notifications (LISTEN/NOTIFY) cost no round trip, but they arrive after
// the commit, on a connection of their own: in between, a replica serves
// what another has just changed. Here a read that can't tell is a miss,
// never a guess; the notify cache (notify.go, WithNotifyCache) is the
// opt-in that takes the other side of the trade.
//
// # Why pages only
//
// A hit costs a round trip, so the cache can save only what the server
// spends beyond one. Measured here (go test -bench . ./internal/postgres,
// two cores, loopback, in runs that vary by a third): the check alone
// takes 40–45 µs; a book by id or an API key with its member 50–65 µs
// with or without the cache, the round trip being nearly all of it, and a
// stale entry costs two; the first page of the catalog 190–290 µs
// uncached and 50–110 µs cached, a search 740–820 µs and 50–95 µs. So a
// book and an API key are read from the server every time (and a
// revoked key is refused at once by every replica, trivially), and pages
// are cached. Any write anywhere on the server empties the cache.
type cache struct {
	hits, misses atomic.Uint64

	mu    sync.Mutex
	at    string // the snapshot every page below was read at
	pages map[pageKey]bookPage
}

// maxCacheEntries bounds the cache: pages are keyed by whatever a client
// searches for, so without a bound a client could grow it without end. A
// full cache takes no more pages until the next change empties it.
const maxCacheEntries = 4096

// snapshotSQL is the column a cached read adds in front of its own: the
// snapshot its statement reads.
const snapshotSQL = `pg_current_snapshot()::text`

// bookPage is a cached answer of FindBooks.
type bookPage struct {
	books []library.Book
	total int
}

// pageKey is a FindBooks request, normalized the way FindBooks binds it.
type pageKey struct {
	query, author string
	available     int // 0 any, 1 on the shelf, 2 not
	limit, offset int
}

func newCache() *cache {
	return &cache{pages: make(map[pageKey]bookPage)}
}

// page returns the page k names: the cached one when the server's
// snapshot still reads as its tag; otherwise read's, which returns the
// page with the snapshot its statement read, to tag it. Errors are never
// remembered, nor pages without a tag (an empty page has no row to carry
// one).
func (db *DB) page(ctx context.Context, k pageKey, read func() (bookPage, string, error)) (bookPage, error) {
	if db.notify != nil {
		return notified(db.notify, areaBooks, func(c *notifyCache) map[pageKey]bookPage { return c.pages }, k, func() (bookPage, error) {
			p, _, err := read()
			return p, err
		})
	}
	c := db.cache
	if c == nil {
		p, _, err := read()
		return p, err
	}
	c.mu.Lock()
	p, held := c.pages[k]
	at := c.at
	c.mu.Unlock()
	if held {
		var now string
		if err := db.pool.QueryRow(ctx, `SELECT `+snapshotSQL).Scan(&now); err == nil && now == at {
			c.hits.Add(1)
			return p, nil
		}
	}
	c.misses.Add(1)
	p, tag, err := read()
	if err != nil || tag == "" {
		return p, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at != tag {
		// The database changed since the pages were read (or this one is
		// older than they are): start again at this snapshot.
		clear(c.pages)
		c.at = tag
	}
	if len(c.pages) < maxCacheEntries {
		c.pages[k] = p
	}
	return p, nil
}

// CacheStats reports the read cache's hits and misses since Open, of
// whichever cache it was opened with; both stay 0 when it was opened
// WithoutCache.
func (db *DB) CacheStats() library.CacheStats {
	if db.notify != nil {
		return library.CacheStats{Hits: db.notify.hits.Load(), Misses: db.notify.misses.Load()}
	}
	if db.cache == nil {
		return library.CacheStats{}
	}
	return library.CacheStats{Hits: db.cache.hits.Load(), Misses: db.cache.misses.Load()}
}
