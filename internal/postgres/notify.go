package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/library"
)

// notifyCache is the read cache WithNotifyCache chooses: it remembers a
// book by id, an API key with its member and pages of the catalog, and
// answers them from memory, with no round trip, until PostgreSQL notifies
// it of a change.
//
// # How it hears of a change
//
// A trigger on every table those reads depend on (books, members,
// api_keys; migration 4) sends a notification on the channel
// statelab_changes, which PostgreSQL delivers when the transaction
// commits. Each DB keeps one connection of its own LISTENing there (not a
// pooled one: a pooled connection goes back to the pool and its LISTEN
// with it). A notification names its table, and empties what depends on
// it: a change to books empties the books and the pages, one to members or
// api_keys the keys. So the borrows and returns that change books all the
// time leave the keys cached, and an API key costs no round trip while
// nobody signs up or revokes one. A commit of this process's own does the
// same as soon as it returns (inTx), so a replica reads its own writes at
// once.
//
// # What it does not know
//
// A notification travels after the commit, over the network: between the
// commit on one replica and the notification's arrival at another, the
// other serves what it held. That window — one trip from the server to
// this process, and however long the listener takes to read it — is the
// price of a hit that costs nothing, and the lesson: a cache that does not
// ask is stale for a while, and a revoked API key is accepted by another
// replica until its notification arrives. The exact cache (cache.go) asks
// on every hit and is never stale; this one never asks.
//
// # Never a guess
//
// An answer is stored only when the generation read before its query is
// unchanged after it, so an answer that a notification may have
// overtaken is not kept. While the listener is not connected (at Open,
// after its connection is lost, until it is back and LISTENing) every
// read is a miss, answered by the server: notifications sent meanwhile
// are lost, so nothing held from before can be trusted, and connecting
// again empties the cache. A listener cut off without its connection
// failing (a partition that drops packets) is noticed by its next ping,
// within listenPing; until then it is trusted.
type notifyCache struct {
	hits, misses atomic.Uint64
	// gen counts the changes heard of: notifications, this process's own
	// commits, and the listener's connecting and losing its connection;
	// gens counts those that touched each area.
	gen  atomic.Uint64
	gens [areaCount]atomic.Uint64
	// live is true while the listener is connected and LISTENing.
	live atomic.Bool
	// pid is the listener's server process, for the tests that cut it off.
	pid atomic.Uint32

	mu    sync.Mutex
	books map[int64]library.Book
	keys  map[string]keyAnswer
	pages map[pageKey]bookPage

	retry time.Duration // the wait before connecting again
	stop  context.CancelFunc
	done  chan struct{}
}

// keyAnswer is a cached answer of FindAPIKey.
type keyAnswer struct {
	key    library.APIKey
	member library.Member
}

// notifyChannel is the channel migration 4's triggers notify on.
const notifyChannel = "statelab_changes"

// listenPing is how long the listener waits for a notification before it
// asks its connection whether it is still there.
const listenPing = 5 * time.Second

// listenRetry is how long the listener waits before connecting again
// after it failed to connect or lost its connection.
const listenRetry = 200 * time.Millisecond

func newNotifyCache(retry time.Duration) *notifyCache {
	return &notifyCache{
		books: make(map[int64]library.Book),
		keys:  make(map[string]keyAnswer),
		pages: make(map[pageKey]bookPage),
		retry: retry,
		done:  make(chan struct{}),
	}
}

// area is what a cached answer depends on: the books (a book, a page of
// them) or the API keys with their members.
type area int

const (
	areaBooks area = iota
	areaKeys
	areaCount
)

// areas is a set of areas: what a change touched.
type areas uint8

const (
	touchesBooks areas = 1 << areaBooks
	touchesKeys  areas = 1 << areaKeys
	touchesAll         = touchesBooks | touchesKeys
	touchesNone  areas = 0
)

// tableAreas is what a change to each table empties; a table not named
// here (one that migration 4 does not watch, or an unknown payload)
// empties everything.
var tableAreas = map[string]areas{"books": touchesBooks, "members": touchesKeys, "api_keys": touchesKeys}

// changed empties what depends on the areas touched and bumps their
// generations, so that no answer read before now is stored after it.
func (c *notifyCache) changed(touched areas) {
	if touched == touchesNone {
		return
	}
	c.mu.Lock()
	c.forget(touched)
	c.mu.Unlock()
}

// forget is changed with c.mu held.
func (c *notifyCache) forget(touched areas) {
	c.gen.Add(1)
	if touched&touchesBooks != 0 {
		c.gens[areaBooks].Add(1)
		clear(c.books)
		clear(c.pages)
	}
	if touched&touchesKeys != 0 {
		c.gens[areaKeys].Add(1)
		clear(c.keys)
	}
}

// setLive marks the listener connected or not; either way what the cache
// holds is forgotten (notifications may have been missed in between).
func (c *notifyCache) setLive(live bool) {
	c.mu.Lock()
	c.live.Store(live)
	c.forget(touchesAll)
	c.mu.Unlock()
}

// start runs the listener on a connection of cfg's until close.
func (c *notifyCache) start(cfg *pgx.ConnConfig) {
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			c.listen(ctx, cfg)
			select {
			case <-ctx.Done():
			case <-time.After(c.retry):
			}
		}
	}()
}

// close stops the listener and waits for it; a nil cache has none.
func (c *notifyCache) close() {
	if c == nil || c.stop == nil {
		return
	}
	c.stop()
	<-c.done
}

// listen connects, LISTENs, and empties the cache at every notification
// until the connection fails or ctx ends.
func (c *notifyCache) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return
	}
	c.pid.Store(conn.PgConn().PID())
	// Live from here: every commit from now on will be heard of, and
	// what was held before is forgotten.
	c.setLive(true)
	defer c.setLive(false)
	for {
		wait, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			touched, ok := tableAreas[n.Payload]
			if !ok {
				touched = touchesAll
			}
			c.changed(touched)
		case ctx.Err() != nil || conn.IsClosed():
			return
		default:
			// Nothing for listenPing: is the connection still there?
			if err := conn.Ping(ctx); err != nil {
				return
			}
		}
	}
}

// notified answers k from the map pick chooses, which holds answers that
// depend on area a, while the listener is live and no change to a has been
// heard of since the answer was read; otherwise it runs read, and keeps
// its answer when a's generation is the one read before read ran. Errors
// are never kept: a missing book or key is asked again.
func notified[K comparable, V any](c *notifyCache, a area, pick func(*notifyCache) map[K]V, k K, read func() (V, error)) (V, error) {
	gen := c.gens[a].Load()
	if c.live.Load() {
		c.mu.Lock()
		v, hit := pick(c)[k]
		c.mu.Unlock()
		if hit {
			c.hits.Add(1)
			return v, nil
		}
	}
	c.misses.Add(1)
	v, err := read()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := pick(c); c.live.Load() && c.gens[a].Load() == gen && len(m) < maxCacheEntries {
		m[k] = v
	}
	return v, nil
}
