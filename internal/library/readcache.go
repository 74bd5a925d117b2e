package library

import (
	"fmt"
	"strconv"
)

// ReadCache is how a store's read cache learns that the shared database
// changed, as the servers' --read-cache flag chooses it. Its value is the
// mode's name in a report; String is what the flag takes.
type ReadCache string

// The read cache modes. The zero value is ReadCacheExact.
const (
	// ReadCacheExact serves a cached answer only while nothing has
	// committed since it was read, by any replica: never stale. SQLite
	// reads that in shared memory for free; PostgreSQL asks the server,
	// one round trip per hit, so it caches pages of the catalog only.
	ReadCacheExact ReadCache = "exact"
	// ReadCacheOff asks the database every time, to measure what a cache
	// saves.
	ReadCacheOff ReadCache = "off"
	// ReadCacheNotify (PostgreSQL only) answers books, API keys and pages
	// from memory, with no round trip, until a notification of a change
	// arrives: stale, after another replica's write, until it does.
	ReadCacheNotify ReadCache = "notify"
)

// ParseReadCache reads a --read-cache value: a boolean (true for exact,
// false for off), or a mode's name.
func ParseReadCache(s string) (ReadCache, error) {
	switch m := ReadCache(s); m {
	case ReadCacheExact, ReadCacheOff, ReadCacheNotify:
		return m, nil
	}
	on, err := strconv.ParseBool(s)
	if err != nil {
		return "", fmt.Errorf("read cache %q: use true (exact), false (off) or notify", s)
	}
	if on {
		return ReadCacheExact, nil
	}
	return ReadCacheOff, nil
}

// Mode returns m with the zero value read as ReadCacheExact.
func (m ReadCache) Mode() ReadCache {
	if m == "" {
		return ReadCacheExact
	}
	return m
}

// String returns the flag's spelling of m: true, false or notify, so that
// a replica started with it reads it back, and older ones understand the
// first two.
func (m ReadCache) String() string {
	switch m.Mode() {
	case ReadCacheExact:
		return "true"
	case ReadCacheOff:
		return "false"
	}
	return string(m)
}

// Set parses a flag's value (flag.Value).
func (m *ReadCache) Set(s string) error {
	v, err := ParseReadCache(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// IsBoolFlag lets --read-cache stand alone for --read-cache=true.
func (m *ReadCache) IsBoolFlag() bool { return true }
