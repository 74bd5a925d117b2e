package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/statelab/statelab/internal/library"
)

// cache remembers the answers of the hottest reads — a book by id, a page of
// books, an API key with its member — for exactly as long as the database
// has not changed, in any process.
//
// # How it knows the database changed
//
// In WAL mode every process that opens the file maps the same wal-index, the
// "-shm" file beside it (https://www.sqlite.org/walformat.html). Its first
// 96 bytes are two copies of a 48-byte header that SQLite rewrites at every
// commit, whichever process makes it: a change counter, the last valid frame
// of the log, the running checksum of the log and its salts. A reader finds
// the commits it may see through that header, so the header changes exactly
// when a new commit becomes visible, and it never goes back to an earlier
// value (the counter and the checksum chain only move on).
//
// So every cached answer is tagged with the header read before the query
// that produced it, and an answer is served only while the header still
// reads the same. A commit anywhere — a borrow on another replica, a key
// revoked through another server — changes the header, and the next read in
// every process goes to the database again. The query ran after its tag was
// read, so it saw at least every commit the tag names; if a commit slipped
// in between, the header has moved on and the answer is never served.
//
// Reading the header is one pread of 96 bytes with no lock: SQLite writes
// the second copy, then the first, and its own lock-free readers accept a
// header only when both copies agree and its checksum holds. This does the
// same, and when the check fails (a commit in progress), the read simply
// goes to the database. A read that can't tell is a miss, never a guess.
//
// # What it costs and saves
//
// A hit is a pread and a map lookup. A miss is that plus what the read cost
// before: taking SQLite's read lock (two fcntl calls on the -shm file),
// running the statement and scanning its rows. Any write empties the cache,
// so under a write-heavy load it mostly misses; under reads it mostly hits.
// It holds resource state only, never a client's: losing it (a restart)
// costs one query per entry and nothing else.
//
// Every writer that goes through SQLite, a sqlite3 shell included, commits
// through the same wal-index. A file replaced or copied over while the
// replicas run is outside this, as it is outside SQLite's own guarantees.
type cache struct {
	shm *os.File // the wal-index; nil when the cache is off

	hits, misses atomic.Uint64

	mu    sync.Mutex
	at    walHeader // the version every entry below was read at
	books map[int64]library.Book
	pages map[pageKey]bookPage
	keys  map[string]apiKeyHit
}

// maxCacheEntries bounds each map: pages are keyed by whatever a client
// searches for, so without a bound a client could grow it without end. A
// full map takes no more entries until the next change empties it.
const maxCacheEntries = 4096

// walHeader is one copy of the wal-index header, as SQLite wrote it.
type walHeader [walHeaderSize]byte

const walHeaderSize = 48

// bookPage is a cached answer of FindBooks.
type bookPage struct {
	books []library.Book
	total int
}

// pageKey is a FindBooks request, normalized the way FindBooks binds it.
type pageKey struct {
	shape         bookShape
	query, author string
	limit, offset int
}

// apiKeyHit is a cached answer of FindAPIKey.
type apiKeyHit struct {
	key    library.APIKey
	member library.Member
}

// openCache opens the wal-index of the database at abs for reading. Open
// calls it once the file is in WAL mode, so the -shm file exists.
func openCache(abs string) (*cache, error) {
	f, err := os.Open(abs + "-shm")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open the wal-index for the read cache: %w", err)
	}
	c := &cache{
		shm:   f,
		books: make(map[int64]library.Book),
		pages: make(map[pageKey]bookPage),
		keys:  make(map[string]apiKeyHit),
	}
	if _, ok := c.version(); !ok {
		f.Close()
		return nil, errors.New("sqlite: the wal-index header is not readable: is the database in WAL mode?")
	}
	return c, nil
}

// version reads the wal-index header. ok is false when the cache is off,
// or when the two copies disagree or fail their checksum (a commit is being
// written): then the caller must ask the database.
func (c *cache) version() (h walHeader, ok bool) {
	if c == nil || c.shm == nil {
		return h, false
	}
	var buf [2 * walHeaderSize]byte
	if n, err := c.shm.ReadAt(buf[:], 0); n != len(buf) || err != nil {
		return h, false
	}
	first, second := walHeader(buf[:walHeaderSize]), walHeader(buf[walHeaderSize:])
	const isInit = 12 // offset of the isInit byte
	if first != second || first[isInit] == 0 || !walHeaderChecksumOK(first) {
		return h, false
	}
	return first, true
}

// walHeaderChecksumOK checks the header's last 8 bytes, SQLite's checksum
// of the 40 before them, in the machine's own byte order (wal.c,
// walChecksumBytes with nativeCksum set, as walIndexTryHdr calls it).
func walHeaderChecksumOK(h walHeader) bool {
	var s1, s2 uint32
	for i := 0; i < 40; i += 8 {
		s1 += binary.NativeEndian.Uint32(h[i:]) + s2
		s2 += binary.NativeEndian.Uint32(h[i+4:]) + s1
	}
	return s1 == binary.NativeEndian.Uint32(h[40:]) && s2 == binary.NativeEndian.Uint32(h[44:])
}

// close stops the cache; a closed or nil cache always misses.
func (c *cache) close() error {
	if c == nil || c.shm == nil {
		return nil
	}
	if err := c.shm.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// cached looks k up in the map that pick chooses, and on a miss runs read
// and remembers its answer, tagged with the version read before it ran.
// Errors are never remembered: a missing book or key is asked again.
func cached[K comparable, V any](c *cache, pick func(*cache) map[K]V, k K, read func() (V, error)) (V, error) {
	at, ok := c.version()
	if ok {
		c.mu.Lock()
		v, hit := pick(c)[k]
		hit = hit && c.at == at
		c.mu.Unlock()
		if hit {
			c.hits.Add(1)
			return v, nil
		}
	}
	if c != nil {
		c.misses.Add(1)
	}
	v, err := read()
	if err != nil || !ok {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at != at {
		// The database changed since the entries were read (or this
		// answer is older than they are): start again at this version.
		clear(c.books)
		clear(c.pages)
		clear(c.keys)
		c.at = at
	}
	if m := pick(c); len(m) < maxCacheEntries {
		m[k] = v
	}
	return v, nil
}

// CacheStats counts the reads the cache answered and those it sent to the
// database, since Open.
type CacheStats = library.CacheStats

// CacheStats reports the read cache's hits and misses; both stay 0 when
// the database was opened WithoutCache.
func (db *DB) CacheStats() CacheStats {
	if db.cache == nil {
		return CacheStats{}
	}
	return CacheStats{Hits: db.cache.hits.Load(), Misses: db.cache.misses.Load()}
}
