package stateful

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/sessions"

	"github.com/statelab/statelab/internal/library"
)

// MemoryStore keeps every session in this process's memory and puts only a
// signed, random session id in the cookie. It is what many web applications
// do and what the stateless constraint forbids: another replica, or this
// process after a restart, holds no such session.
//
// Sessions are copied in and out, so concurrent requests of one session
// never share a cart.
type MemoryStore struct {
	ids idCodec
	ttl time.Duration // 0: kept as long as the process
	now func() time.Time

	mu        sync.Mutex
	sessions  map[string]entry
	saves     uint64 // new sessions saved so far, to number them
	lastSweep time.Time
}

type entry struct {
	sess    Session
	seq     uint64    // its first Save's number, the order the per-member cap evicts in
	expires time.Time // zero when the TTL is 0
	used    time.Time // the last Load that found it, or its last Save
}

func (e entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// NewMemoryStore returns a store whose cookies are signed with key (HMAC-
// SHA256), so every replica given the same key accepts the same cookies.
// options sets the cookie's attributes; MaxAge is also how long a session is
// kept after its last Save (0: until the process ends, like the
// browser-session cookie it then sets).
func NewMemoryStore(key []byte, options sessions.Options, now func() time.Time) *MemoryStore {
	return &MemoryStore{
		ids:      newIDCodec(key, options),
		ttl:      time.Duration(options.MaxAge) * time.Second,
		now:      now,
		sessions: make(map[string]entry),
	}
}

// MemoryStoreName is the memory store's Name.
const MemoryStoreName = "memory"

// Name returns MemoryStoreName.
func (*MemoryStore) Name() string { return MemoryStoreName }

// Where says the session is in replica's memory.
func (*MemoryStore) Where(replica string) string { return "in the memory of replica " + replica }

// Lost says the session lived in another process's memory, or in this
// one's before a restart.
func (*MemoryStore) Lost(replica string) string {
	return fmt.Sprintf("Your session cookie is genuine, but replica %s holds no session for it: the session lived in the memory of another process, or of this one before it restarted. Your cart went with it. Log in again.", replica)
}

// Shared is false: no other process sees this one's memory.
func (*MemoryStore) Shared() bool { return false }

// Revocable is true: Destroy forgets the session, so no copy of its
// cookie finds it again.
func (*MemoryStore) Revocable() bool { return true }

// Needs is nothing: the process is the store.
func (*MemoryStore) Needs() []Service { return nil }

// Load returns a copy of the session the request's cookie names, or
// ErrNoCookie, ErrInvalidCookie or ErrSessionLost.
func (s *MemoryStore) Load(r *http.Request) (*Session, error) {
	id, err := s.ids.id(r)
	if err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	e, ok := s.sessions[id]
	if ok && e.expired(now) {
		delete(s.sessions, id)
		ok = false
	}
	if ok {
		e.used = now
		s.sessions[id] = e
	}
	s.mu.Unlock()
	if !ok {
		return nil, ErrSessionLost
	}
	return clone(e.sess), nil
}

// Save keeps a copy of the session and sets the cookie. A session without
// an ID gets a fresh random one. A session with an ID is only updated while
// the store still holds it: one that was destroyed or expired since it was
// loaded stays gone, and Save returns ErrSessionLost. Ids are never reused,
// so that rule is all a logout needs to stay a logout.
func (s *MemoryStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	isNew := sess.ID == ""
	if isNew {
		id, err := newSessionID()
		if err != nil {
			return err
		}
		sess.ID = id
	}
	now := s.now()
	e := entry{sess: *clone(*sess), used: now}
	if s.ttl > 0 {
		e.expires = now.Add(s.ttl)
	}
	s.mu.Lock()
	if !isNew {
		old, ok := s.sessions[sess.ID]
		if !ok || old.expired(now) {
			delete(s.sessions, sess.ID)
			s.mu.Unlock()
			return ErrSessionLost
		}
		e.seq = old.seq
	} else {
		s.saves++
		e.seq = s.saves
	}
	s.sessions[sess.ID] = e
	if isNew && sess.Member.ID != 0 {
		s.capLocked(sess.Member.ID)
	}
	if now.Sub(s.lastSweep) > time.Minute {
		s.sweepLocked(now)
	}
	s.mu.Unlock()
	return s.ids.set(w, sess.ID)
}

// Destroy forgets the session and tells the browser to drop the cookie. A
// copy of the cookie is worth nothing afterwards.
func (s *MemoryStore) Destroy(w http.ResponseWriter, r *http.Request, sess *Session) error {
	s.mu.Lock()
	delete(s.sessions, sess.ID)
	s.mu.Unlock()
	clearCookie(w, s.ids.options)
	return nil
}

// Len returns the number of sessions this process holds now.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// InUse returns how many of the sessions this process holds a request used
// (loaded or saved) within the last window. The rest of Len are idle, and
// most of them abandoned: a client that signed in again, here or on another
// replica, leaves its old session behind until it expires, and nothing
// tells the store that nobody will come back for it.
func (s *MemoryStore) InUse(window time.Duration) int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.sessions {
		if now.Sub(e.used) < window && !e.expired(now) {
			n++
		}
	}
	return n
}

// capLocked ends a member's oldest sessions beyond MaxSessionsPerMember.
// It looks at every session: it runs once per sign-in, which a bcrypt
// comparison (tens of milliseconds) and the sign-in rate limit precede.
func (s *MemoryStore) capLocked(member int64) {
	type held struct {
		id  string
		seq uint64
	}
	var mine []held
	for id, e := range s.sessions {
		if e.sess.Member.ID == member {
			mine = append(mine, held{id, e.seq})
		}
	}
	if len(mine) <= library.MaxSessionsPerMember {
		return
	}
	slices.SortFunc(mine, func(a, b held) int { return cmp.Compare(a.seq, b.seq) })
	for _, h := range mine[:len(mine)-library.MaxSessionsPerMember] {
		delete(s.sessions, h.id)
	}
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

// clone copies a session, cart and checkout memo included, so that a
// handler changing its copy cannot change the kept one.
func clone(s Session) *Session {
	s.Cart = slices.Clone(s.Cart)
	if s.Cart == nil {
		s.Cart = []int64{}
	}
	if s.Checkout != nil {
		memo := *s.Checkout
		s.Checkout = &memo
	}
	return &s
}
