package postgres

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// WithQueryCount makes the pool add every statement it sends to n, the
// listener's excepted: the tests' count of round trips.
func WithQueryCount(n *atomic.Uint64) Option {
	return func(o *options) { o.tracer = queryCounter{n} }
}

// WithListenRetry sets how long the notify cache's listener waits before
// it connects again, so a test can act while it is away.
func WithListenRetry(d time.Duration) Option { return func(o *options) { o.listenRetry = d } }

// Listening reports whether the notify cache's listener is connected and
// LISTENing, and its server process.
func Listening(db *DB) (bool, uint32) {
	return db.notify.live.Load(), db.notify.pid.Load()
}

type queryCounter struct{ n *atomic.Uint64 }

func (q queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Generation returns the notify cache's count of the changes it heard of.
func Generation(db *DB) uint64 { return db.notify.gen.Load() }
