package library

// Consistency is the result of checking the shared store's invariants. The
// comparison runner checks it after a load test: whatever the servers did
// to their sessions, the resource state must still add up. Every store
// reports it in these terms, so the report does not know which one ran.
type Consistency struct {
	// Books is how many books the catalog holds.
	Books int
	// NegativeAvailability lists books with fewer than zero copies on the
	// shelf, which the schema's CHECK should make impossible.
	NegativeAvailability []int64
	// Mismatched lists books where available_copies + active borrows !=
	// copies: a copy was lost or made up.
	Mismatched []int64
	// ActiveBorrows is how many borrows are not yet returned.
	ActiveBorrows int
	// KeyedBorrows is how many borrows were made by a request that carried
	// an idempotency key.
	KeyedBorrows int
	// AppliedTwice lists borrows that share member, idempotency key and
	// book with another borrow: one key that lent the same book twice, a
	// retry that was applied again instead of being replayed.
	AppliedTwice []int64
}

// OK reports whether no invariant is broken.
func (c Consistency) OK() bool {
	return len(c.NegativeAvailability) == 0 && len(c.Mismatched) == 0 && len(c.AppliedTwice) == 0
}

// CacheStats counts the reads a store's read cache answered and those it
// sent to the database. A store without a cache reports zeros.
type CacheStats struct {
	Hits, Misses uint64
}
