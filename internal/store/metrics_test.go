package store_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/statelab/statelab/internal/store"
)

// TestCacheCollectors checks that the read cache's counters follow
// CacheStats and pass the registry's lint.
func TestCacheCollectors(t *testing.T) {
	for _, cached := range []bool{true, false} {
		db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "statelab.db"), store.Options{NoReadCache: !cached})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(store.CacheCollectors(db)...)
		for range 3 {
			if _, err := db.FindBookByID(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
		}
		st := db.CacheStats()
		if cached && (st.Hits == 0 || st.Misses == 0) {
			t.Errorf("three reads of one book: %+v, want a miss then hits", st)
		}
		want := strings.NewReader(
			"# HELP statelab_read_cache_hits_total Reads (a book, a page of books, an API key) answered from this process's read cache while the shared database was unchanged.\n" +
				"# TYPE statelab_read_cache_hits_total counter\n" +
				"statelab_read_cache_hits_total " + strconv.FormatUint(st.Hits, 10) + "\n")
		if err := testutil.GatherAndCompare(reg, want, "statelab_read_cache_hits_total"); err != nil {
			t.Errorf("cached=%v: %v", cached, err)
		}
		if got := testutil.ToFloat64(store.CacheCollectors(db)[1]); got != float64(st.Misses) {
			t.Errorf("cached=%v: misses %v, want %d", cached, got, st.Misses)
		}
		if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
	}
}
