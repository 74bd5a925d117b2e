package stateful

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/statelab/statelab/internal/library"
)

// Session is one client's conversation with the stateful server: who it is
// and what it has put in its cart. Where it is kept between requests is the
// SessionStore's business, and the whole lesson.
type Session struct {
	// ID names the session. It is empty for a session that was never
	// saved: Save then makes a fresh, random one.
	ID     string         `json:"id"`
	Member library.Member `json:"member"`
	Cart   []int64        `json:"cart"`
	// Since is when the session was first saved, at sign-in, in Unix
	// seconds. The cookie store ends a session CookieLifetime after it,
	// however often it is saved again; the stores that keep sessions
	// leave it 0.
	Since int64 `json:"since,omitempty"`
	// Checkout remembers the last checkout made under an Idempotency-Key,
	// so that its retry, which finds the cart emptied, is told from a new
	// checkout of a changed cart under the same key.
	Checkout *CheckoutMemo `json:"checkout,omitempty"`
}

// CheckoutMemo is what a session remembers of its last checkout made under
// an Idempotency-Key: digests of the key and of the cart it checked out,
// short, since a sealed cookie carries them with every request.
type CheckoutMemo struct {
	Key  string `json:"k"`
	Cart string `json:"c"`
}

// SessionStore keeps sessions between requests. The server owns this seam:
// it asks for a request's session, saves the one it changed, and destroys
// the one a client logs out of, and never learns where sessions live.
//
// Load's error tells the ways of having no session apart: ErrNoCookie,
// ErrInvalidCookie, ErrSessionLost, or ErrStoreUnavailable (any of them
// possibly wrapped). Save of a session that has an ID must not bring back a
// session that was destroyed or expired since it was loaded: it returns
// ErrSessionLost instead, so a logout cannot be undone by a request that
// was still in flight.
//
// A store also describes itself (Description), so the server can word its
// answers without knowing which store it has.
type SessionStore interface {
	Description
	Load(r *http.Request) (*Session, error)
	Save(w http.ResponseWriter, r *http.Request, sess *Session) error
	Destroy(w http.ResponseWriter, r *http.Request, sess *Session) error
}

// SessionCounter is a SessionStore that can say cheaply how many sessions it
// holds. Only such a store gets the statelab_sessions_active gauge: a store
// that cannot count (the cookie store holds nothing) must not report zero.
type SessionCounter interface {
	Len() int
}

// UseCounter is a SessionCounter that also knows when each session was last
// used, so it can tell the sessions of clients still using them from the
// idle ones it holds (the statelab_sessions_in_use gauge).
type UseCounter interface {
	InUse(window time.Duration) int
}

// InUseWindow is how recently a request must have used a session for the
// statelab_sessions_in_use gauge to count it. The lab's simulated users
// send a request every fraction of a second while they are signed in, and a
// person clicks within seconds, so a session untouched for this long has,
// in all likelihood, been left behind: its client signed in again and
// holds another one.
const InUseWindow = 10 * time.Second

// Pinger is a SessionStore that lives outside the process and can be
// unreachable. The server is not ready (GET /api/ready answers 503) while
// Ping fails.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Errors a SessionStore returns, so the server can tell the client which way
// it has no session.
var (
	// ErrNoCookie means the request carries no session cookie.
	ErrNoCookie = errors.New("no session cookie")
	// ErrSessionLost means the cookie is genuine, but its session is not
	// kept any more: it lived in another process's memory, or in this one
	// before a restart, or in a redis that restarted, or it expired or was
	// logged out of.
	ErrSessionLost = errors.New("session not held by the store")
	// ErrInvalidCookie means the cookie failed its signature (or, for the
	// cookie store, decryption) check: it was tampered with, or made with
	// another key.
	ErrInvalidCookie = errors.New("session cookie failed its signature check")
	// ErrStoreUnavailable means the store that keeps sessions outside this
	// process cannot be reached; whether the session exists is unknown.
	ErrStoreUnavailable = errors.New("session store unavailable")
	// ErrCookieTooLarge means the session would make a cookie larger than a
	// browser keeps (MaxCookieBytes); only the cookie store returns it.
	ErrCookieTooLarge = errors.New("session cookie too large")
)

// MaxCookieBytes is the size of the largest cookie (name, "=" and value)
// that every browser is required to keep (RFC 6265, section 6.1). A larger
// one is dropped silently, so the cookie store refuses to set it.
const MaxCookieBytes = 4096

// idCodec signs and checks the session id that the memory and redis stores
// put in the cookie: an HMAC-SHA256, so every replica given the same key
// accepts the same cookies, and a cookie that fails there fails because its
// session is missing, not because of its signature.
type idCodec struct {
	codec   *securecookie.SecureCookie
	options sessions.Options
}

func newIDCodec(key []byte, options sessions.Options) idCodec {
	codec := securecookie.New(key, nil)
	// The id is already text: signing its bytes as they are spares every
	// request a gob decoder, which cost more than the signature check.
	codec.SetSerializer(securecookie.NopEncoder{})
	// The kept session's own expiry decides; a signature check that also
	// judged age would call an expired session's genuine cookie "invalid"
	// instead of "lost".
	codec.MaxAge(0)
	return idCodec{codec: codec, options: options}
}

// id returns the signed id the request's cookie carries.
func (c idCodec) id(r *http.Request) (string, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return "", ErrNoCookie
	}
	var id []byte
	if err := c.codec.Decode(CookieName, ck.Value, &id); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidCookie, err)
	}
	return string(id), nil
}

// set puts the signed id in the response's cookie.
func (c idCodec) set(w http.ResponseWriter, id string) error {
	v, err := c.codec.Encode(CookieName, []byte(id))
	if err != nil {
		return fmt.Errorf("sign session cookie: %w", err)
	}
	setCookie(w, sessions.NewCookie(CookieName, v, &c.options))
	return nil
}

// clear tells the browser to drop the cookie.
func clearCookie(w http.ResponseWriter, options sessions.Options) {
	options.MaxAge = -1
	setCookie(w, sessions.NewCookie(CookieName, "", &options))
}

// setCookie sets the session cookie, replacing one an earlier step of the
// same response set (a login that destroys the old session, then saves the
// new one): a client that reads the first Set-Cookie must not get the
// deleted one.
func setCookie(w http.ResponseWriter, c *http.Cookie) {
	h := w.Header()
	kept := h["Set-Cookie"][:0]
	for _, v := range h["Set-Cookie"] {
		if !strings.HasPrefix(v, c.Name+"=") {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	http.SetCookie(w, c)
}

func newSessionID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
