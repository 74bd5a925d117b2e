package sqlite

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/statelab/statelab/internal/library"
)

// WithKeySweep makes the database forget the idempotency keys older than
// library.IdempotencyKeyTTL: once at Open, then every interval, until
// Close. Every process that opens the file may sweep it; a sweep of keys
// another process forgot already deletes nothing. logger hears of each
// sweep that forgot keys, and of one that failed.
func WithKeySweep(every time.Duration, logger *slog.Logger) Option {
	return func(o *options) { o.sweepEvery, o.sweepLog = every, logger }
}

// startSweep runs the key sweep in a goroutine that Close stops, and waits
// for, before it closes the pools.
func (db *DB) startSweep(every time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	db.stopSweep = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			n, err := db.SweepIdempotencyKeys(ctx, time.Now().Add(-library.IdempotencyKeyTTL))
			switch {
			case err != nil && !errors.Is(err, context.Canceled):
				logger.Warn("sweep idempotency keys", "err", err)
			case n > 0:
				logger.Info("swept idempotency keys", "forgotten", n, "older_than", library.IdempotencyKeyTTL)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
