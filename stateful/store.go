package stateful

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// Errors MemoryStore.New returns beside a fresh session, so a caller can
// tell the three ways of not having a session apart.
var (
	// ErrNoCookie means the request carries no session cookie.
	ErrNoCookie = errors.New("no session cookie")
	// ErrSessionLost means the cookie is validly signed, but this process
	// holds no session under its id: it was made by another process, or by
	// this one before a restart, or it expired.
	ErrSessionLost = errors.New("session not held by this process")
	// ErrInvalidCookie means the cookie failed its signature check: it was
	// tampered with, or signed with another key.
	ErrInvalidCookie = errors.New("session cookie failed its signature check")
)

// MemoryStore is a gorilla/sessions Store that keeps every session's values
// in this process's memory and puts only a signed, random session id in the
// cookie. It is the opposite of sessions.CookieStore, which would carry the
// values in the cookie and so keep the server stateless in secret.
//
// Values are copied in and out, so concurrent requests of one session never
// share a map.
type MemoryStore struct {
	codecs  []securecookie.Codec
	options sessions.Options
	now     func() time.Time

	mu        sync.Mutex
	sessions  map[string]entry
	lastSweep time.Time
}

type entry struct {
	values  map[any]any
	expires time.Time // zero when MaxAge is 0: kept as long as the process
}

func (e entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// NewMemoryStore returns a store whose cookies are signed with key (HMAC-
// SHA256), so every replica given the same key accepts the same cookies, and
// a cookie that fails there fails because its session is missing, not
// because of its signature. options sets the cookie's attributes; MaxAge is
// also how long a session is kept after its last Save (0: until the process
// ends, like the browser-session cookie it then sets).
func NewMemoryStore(key []byte, options sessions.Options, now func() time.Time) *MemoryStore {
	codec := securecookie.New(key, nil)
	// The held session's own expiry decides; a signature check that also
	// judged age would call an expired session's genuine cookie "invalid"
	// instead of "lost".
	codec.MaxAge(0)
	return &MemoryStore{
		codecs:   []securecookie.Codec{codec},
		options:  options,
		now:      now,
		sessions: make(map[string]entry),
	}
}

// Get returns the request's session; see New.
func (s *MemoryStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return s.New(r, name)
}

// New returns the session the request's cookie names. It always returns a
// usable session; when there is no held session the session is new and the
// error is ErrNoCookie, ErrInvalidCookie or ErrSessionLost.
func (s *MemoryStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	opts := s.options
	sess.Options = &opts
	sess.IsNew = true

	c, err := r.Cookie(name)
	if err != nil {
		return sess, ErrNoCookie
	}
	var id string
	if err := securecookie.DecodeMulti(name, c.Value, &id, s.codecs...); err != nil {
		return sess, fmt.Errorf("%w: %v", ErrInvalidCookie, err)
	}
	sess.ID = id

	s.mu.Lock()
	e, ok := s.sessions[id]
	if ok && e.expired(s.now()) {
		delete(s.sessions, id)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return sess, ErrSessionLost
	}
	sess.Values = cloneValues(e.values)
	sess.IsNew = false
	return sess, nil
}

// Save stores the session's values under its id (making a new random id for
// a new session) and sets the cookie. A negative MaxAge deletes the session
// and the cookie.
func (s *MemoryStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if sess.Options.MaxAge < 0 {
		s.Delete(sess.ID)
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	if sess.ID == "" {
		id, err := newSessionID()
		if err != nil {
			return err
		}
		sess.ID = id
	}
	encoded, err := securecookie.EncodeMulti(sess.Name(), sess.ID, s.codecs...)
	if err != nil {
		return fmt.Errorf("sign session cookie: %w", err)
	}
	now := s.now()
	e := entry{values: cloneValues(sess.Values)}
	if sess.Options.MaxAge > 0 {
		e.expires = now.Add(time.Duration(sess.Options.MaxAge) * time.Second)
	}
	s.mu.Lock()
	s.sessions[sess.ID] = e
	if now.Sub(s.lastSweep) > time.Minute {
		s.sweepLocked(now)
	}
	s.mu.Unlock()
	http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, sess.Options))
	return nil
}

// Delete forgets the session with the id, if this process holds it.
func (s *MemoryStore) Delete(id string) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

// Len returns the number of sessions this process holds now.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// sweepLocked drops expired sessions, so an idle lab does not grow forever.
func (s *MemoryStore) sweepLocked(now time.Time) {
	for id, e := range s.sessions {
		if e.expired(now) {
			delete(s.sessions, id)
		}
	}
	s.lastSweep = now
}

func newSessionID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// cloneValues copies a session's values deeply enough for the value types
// this package stores (scalars, structs and []int64 carts).
func cloneValues(in map[any]any) map[any]any {
	out := make(map[any]any, len(in))
	for k, v := range in {
		if ids, ok := v.([]int64); ok {
			v = slices.Clone(ids)
		}
		out[k] = v
	}
	return out
}
