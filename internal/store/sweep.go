package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/library"
)

// swept is a Store that forgets the idempotency keys past their day (see
// Options.KeySweep) until it is closed.
type swept struct {
	Store
	stop func()
}

// sweep runs the key sweep of s in a goroutine that Close stops, and waits
// for, before it closes the store: once at once, then every interval.
// Every process that opens the store sweeps it; a sweep of keys another
// process forgot already deletes nothing, so no replica has to be the one
// that remembers.
func sweep(s Store, every time.Duration, logger *slog.Logger) *swept {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			n, err := s.SweepIdempotencyKeys(ctx, time.Now().Add(-library.IdempotencyKeyTTL))
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
	return &swept{Store: s, stop: func() { cancel(); <-done }}
}

// Close stops the sweep, then closes the store.
func (s *swept) Close() error {
	s.stop()
	return s.Store.Close()
}

// CountKeyLookups passes the counter on to the swept store, when it counts
// its own key lookups (stateless.KeyLookupCounter); otherwise it reports
// false.
func (s *swept) CountKeyLookups(c prometheus.Counter) bool {
	kc, ok := s.Store.(interface {
		CountKeyLookups(prometheus.Counter) bool
	})
	return ok && kc.CountKeyLookups(c)
}
