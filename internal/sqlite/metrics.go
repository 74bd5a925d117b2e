package sqlite

import "github.com/prometheus/client_golang/prometheus"

// CacheCollectors returns the read cache's counters, read from CacheStats
// at every scrape: statelab_read_cache_hits_total and
// statelab_read_cache_misses_total. Both stay 0 for a database opened
// WithoutCache.
func (db *DB) CacheCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_read_cache_hits_total",
			Help: "Reads (a book, a page of books, an API key) answered from this process's read cache while the shared database was unchanged.",
		}, func() float64 { return float64(db.CacheStats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_read_cache_misses_total",
			Help: "Cacheable reads that went to SQLite: the first of their kind since the last commit anywhere, or one that met a commit being written (both counters stay 0 with -read-cache=false).",
		}, func() float64 { return float64(db.CacheStats().Misses) }),
	}
}
