package library

import (
	"context"
	"time"
)

// Limits of an idempotency key (draft-ietf-httpapi-idempotency-key-header-07).
const (
	// MaxIdempotencyKeyBytes is the longest key a client may send.
	MaxIdempotencyKeyBytes = 255
	// IdempotencyKeyTTL is how long a key and the answer it names are
	// remembered. A client retries within seconds; a day covers a client
	// that comes back after an outage, and the sweep keeps the table from
	// growing without bound.
	IdempotencyKeyTTL = 24 * time.Hour
)

// CheckIdempotencyKey returns an EINVALID error that says what a key looks
// like when key is not 1 to MaxIdempotencyKeyBytes printable ASCII
// characters.
func CheckIdempotencyKey(key string) error {
	ok := len(key) >= 1 && len(key) <= MaxIdempotencyKeyBytes
	for i := 0; ok && i < len(key); i++ {
		ok = key[i] >= 0x20 && key[i] <= 0x7e
	}
	if !ok {
		return Errorf(EINVALID, "An Idempotency-Key is 1 to %d printable ASCII characters (a UUID is a good one), optionally in double quotes; this one is %d bytes long or holds other characters.", MaxIdempotencyKeyBytes, len(key))
	}
	return nil
}

// IdempotentRequest names one state-changing request of one member: the
// key the client chose, scoped to the member (two members may pick the same
// key), and a fingerprint of the request (its method, path and body) that
// tells a retry from a different request sent under the same key.
type IdempotentRequest struct {
	MemberID    int64
	Key         string
	Fingerprint string
}

// StoredResponse is the answer remembered under an idempotency key: what
// the first request was answered, sent again byte for byte to a retry.
type StoredResponse struct {
	Status int
	Body   []byte
}

// Writes are the changes a request protected by an idempotency key may
// make. Store has them all; inside Store.Idempotent they are bound to the
// transaction that also stores the key.
type Writes interface {
	CreateBook(ctx context.Context, b Book) (Book, error)
	Borrow(ctx context.Context, req BorrowRequest) ([]BorrowRecord, error)
	ReturnBorrow(ctx context.Context, memberID, borrowID int64) (BorrowRecord, error)
}
