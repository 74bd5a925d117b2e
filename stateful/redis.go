package stateful

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/library"
)

// RedisKeyPrefix begins the key of every session the redis store keeps; the
// session id follows it.
const RedisKeyPrefix = "statelab:session:"

// RedisMemberPrefix begins the key of each member's sorted set of session
// ids, scored by creation time, which caps a member's sessions
// (library.MaxSessionsPerMember); the member's id follows it.
const RedisMemberPrefix = "statelab:member-sessions:"

// RedisTimeout bounds each redis dial, read and write. A session lookup on
// loopback takes well under a millisecond, so an outage is answered (503
// session_store_unavailable) in a fraction of a second instead of hanging
// the request for the client library's default of seconds.
const RedisTimeout = 300 * time.Millisecond

// RedisStore keeps every session as JSON in a redis server that every
// replica shares, and puts only a signed, random session id in the cookie
// (signed as the memory store signs it). Any replica can then answer any
// request: the conversation state has moved out of the process, not away.
// The price is a network round trip per request and a new thing that can
// fail: while redis is down no one is logged in.
type RedisStore struct {
	client *redis.Client
	ids    idCodec
	ttl    time.Duration // 0: kept until logout or until redis loses it
}

// NewRedisStore returns a store on the redis server at addr (host:port),
// which it authenticates to with password (none when empty), and whose
// cookies are signed with key. options sets the cookie's attributes;
// MaxAge is also the key's expiry, renewed by every Save. It does not
// connect: a replica may start while redis is down, and reports itself not
// ready until it is back. Close releases the connections.
func NewRedisStore(addr, password string, key []byte, options sessions.Options) *RedisStore {
	client := redis.NewClient(&redis.Options{
		Addr:         addr,
		Password:     password,
		DialTimeout:  RedisTimeout,
		ReadTimeout:  RedisTimeout,
		WriteTimeout: RedisTimeout,
		PoolTimeout:  RedisTimeout,
		// One retry covers a pooled connection that a restarted redis
		// closed; more would only make an outage slower to answer.
		MaxRetries: 1,
		// The client would otherwise dial a refused address five times,
		// 100ms apart, per command: most of a second to say redis is down.
		DialerRetries:      1,
		DialerRetryTimeout: 10 * time.Millisecond,
		DisableIdentity:    true,
	})
	return &RedisStore{client: client, ids: newIDCodec(key, options), ttl: time.Duration(options.MaxAge) * time.Second}
}

// RedisStoreName is the redis store's Name.
const RedisStoreName = "redis"

// Name returns RedisStoreName.
func (*RedisStore) Name() string { return RedisStoreName }

// Where says the session is in the redis every replica shares.
func (*RedisStore) Where(string) string { return "in redis, shared by every replica" }

// Lost names what makes redis drop a session.
func (*RedisStore) Lost(string) string {
	return "Your session cookie is genuine, but redis holds no session for it: you logged out, it expired, or redis restarted without keeping its data. Your cart went with it. Log in again."
}

// Shared is true: every replica asks the same redis.
func (*RedisStore) Shared() bool { return true }

// Revocable is true: Destroy deletes the key every replica would read.
func (*RedisStore) Revocable() bool { return true }

// Needs is the RedisServer.
func (*RedisStore) Needs() []Service { return []Service{RedisServer} }

// Close closes the connections to redis.
func (s *RedisStore) Close() error { return s.client.Close() }

// Ping reports whether redis answers.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
	}
	return nil
}

// Load returns the session the request's cookie names, or ErrNoCookie,
// ErrInvalidCookie, ErrSessionLost (no such key: expired, logged out of, or
// lost in a redis restart) or ErrStoreUnavailable.
func (s *RedisStore) Load(r *http.Request) (*Session, error) {
	id, err := s.ids.id(r)
	if err != nil {
		return nil, err
	}
	raw, err := s.client.Get(r.Context(), RedisKeyPrefix+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrSessionLost
	} else if err != nil {
		return nil, s.unavailable(r, err)
	}
	var sess Session
	if err := json.Unmarshal(raw, &sess); err != nil {
		return nil, fmt.Errorf("decode session %.8s… from redis: %w", id, err)
	}
	sess.ID = id
	return clone(sess), nil
}

// Save writes the session with the store's TTL and sets the cookie. A new
// session is written only if its fresh id is free (SET NX), an existing one
// only if its key still exists (SET XX): a request that loaded the session
// before a concurrent logout deleted it cannot write it back, and gets
// ErrSessionLost.
func (s *RedisStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	isNew := sess.ID == ""
	if isNew {
		id, err := newSessionID()
		if err != nil {
			return err
		}
		sess.ID = id
	}
	raw, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	key := RedisKeyPrefix + sess.ID
	var ok bool
	if isNew {
		ok, err = s.client.SetNX(r.Context(), key, raw, s.ttl).Result()
	} else {
		ok, err = s.client.SetXX(r.Context(), key, raw, s.ttl).Result()
	}
	switch {
	case err != nil:
		return s.unavailable(r, err)
	case !ok && isNew:
		return fmt.Errorf("session id %.8s… is taken", sess.ID) // 256 random bits: a broken random source
	case !ok:
		return ErrSessionLost
	}
	if isNew && sess.Member.ID != 0 {
		if err := s.cap(r.Context(), sess.Member.ID, sess.ID); err != nil {
			return s.unavailable(r, err)
		}
	}
	return s.ids.set(w, sess.ID)
}

// Destroy deletes the session's key and tells the browser to drop the
// cookie. A copy of the cookie is worth nothing afterwards, on every replica.
func (s *RedisStore) Destroy(w http.ResponseWriter, r *http.Request, sess *Session) error {
	if err := s.client.Del(r.Context(), RedisKeyPrefix+sess.ID).Err(); err != nil {
		return s.unavailable(r, err)
	}
	clearCookie(w, s.ids.options)
	return nil
}

// cap records a member's new session and deletes the oldest beyond
// library.MaxSessionsPerMember, on every replica at once. The set may still
// name sessions that expired or were logged out of; they are the oldest and
// go first, and the set itself expires with the newest session. Two
// sign-ins at once on two replicas both add, then both trim: the cap holds,
// and at worst one session more than needed ends.
func (s *RedisStore) cap(ctx context.Context, member int64, id string) error {
	set := RedisMemberPrefix + strconv.FormatInt(member, 10)
	pipe := s.client.TxPipeline()
	pipe.ZAdd(ctx, set, redis.Z{Score: float64(time.Now().UnixNano()), Member: id})
	if s.ttl > 0 {
		pipe.Expire(ctx, set, s.ttl)
	}
	card := pipe.ZCard(ctx, set)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	n := card.Val()
	if n <= library.MaxSessionsPerMember {
		return nil
	}
	evicted, err := s.client.ZPopMin(ctx, set, n-library.MaxSessionsPerMember).Result()
	if err != nil || len(evicted) == 0 {
		return err
	}
	keys := make([]string, len(evicted))
	for i, z := range evicted {
		keys[i] = RedisKeyPrefix + z.Member.(string)
	}
	return s.client.Del(ctx, keys...).Err()
}

// unavailable wraps a redis failure as ErrStoreUnavailable, unless the
// client went away: then the request's cancelled context is the cause, and
// nobody is left to tell that redis is down.
func (s *RedisStore) unavailable(r *http.Request, err error) error {
	if r.Context().Err() != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
}
