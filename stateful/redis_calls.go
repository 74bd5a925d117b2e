package stateful

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// CallCounter is a session store whose sessions live in a shared service:
// it counts every call it makes there, so the lab can say how many round
// trips a request pays for its session, counted rather than assumed.
type CallCounter interface {
	// CountCalls makes the store add every call it makes from now on to c.
	CountCalls(c prometheus.Counter)
}

// CountCalls counts every redis command the store sends, a pipeline as one
// round trip, but not PING: the readiness check is no request's cost.
func (s *RedisStore) CountCalls(c prometheus.Counter) {
	s.client.AddHook(callHook{c})
}

// callHook is a go-redis hook that counts round trips.
type callHook struct{ calls prometheus.Counter }

func (callHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h callHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "ping" {
			h.calls.Inc()
		}
		return next(ctx, cmd)
	}
}

func (h callHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.calls.Inc()
		return next(ctx, cmds)
	}
}
