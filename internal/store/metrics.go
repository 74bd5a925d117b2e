package store

import "github.com/prometheus/client_golang/prometheus"

// CacheCollectors returns the read cache's counters of s, read from
// CacheStats at every scrape: statelab_read_cache_hits_total and
// statelab_read_cache_misses_total. Both stay 0 for a store opened with
// NoReadCache.
func CacheCollectors(s Store) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_read_cache_hits_total",
			Help: "Reads (a book, a page of books, an API key) answered from this process's read cache while the shared database was unchanged.",
		}, func() float64 { return float64(s.CacheStats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_read_cache_misses_total",
			Help: "Cacheable reads that went to the database: the first of their kind since the last commit anywhere, or one that met a commit being written (both counters stay 0 with -read-cache=false).",
		}, func() float64 { return float64(s.CacheStats().Misses) }),
	}
}
