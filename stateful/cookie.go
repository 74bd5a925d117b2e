package stateful

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// CookieStore seals the whole session (member and cart) into the cookie
// with authenticated encryption and keeps nothing on the server. Every
// replica with the same key reads every cookie, as with a JWT: it is the
// stateless constraint kept, with the state handed to the client.
//
// What that costs is the lesson: the cookie grows with the cart and travels
// with every request, and the server cannot take a session back. Logout
// asks the browser to drop its cookie, but a copy of it (stolen, or simply
// kept) is accepted until it expires: at most CookieLifetime after the
// sign-in, however often the session is sealed again.
type CookieStore struct {
	codec    *securecookie.SecureCookie
	options  sessions.Options
	ttl      time.Duration // 0: no expiry of its own, a browser-session cookie
	maxBytes int
	now      func() time.Time
}

// CookieLifetime is how long a sealed session lasts after sign-in,
// however often it is sealed again. Each Save re-seals a fresh sliding
// expiry (the session TTL), so without it a copy of the cookie whose holder
// keeps changing the cart would live for ever; a server that keeps no
// sessions cannot revoke it, but it can refuse it after this long.
const CookieLifetime = 24 * time.Hour

// sealed is what the cookie carries.
type sealed struct {
	Session
	// Expires is when the session ends, in Unix seconds: the TTL after
	// this seal, or the end of its CookieLifetime, whichever comes first.
	// It is inside the sealed value, so a client cannot extend it, and is
	// judged by the store's clock, so an expired session is "lost", not
	// "invalid".
	Expires int64 `json:"exp,omitempty"`
}

// NewCookieStore returns a store that seals sessions with keys derived from
// key: an HMAC-SHA256 key that authenticates the cookie and an AES-256 key
// that encrypts it (encrypt-then-MAC), so the client can neither read nor
// change its member or cart. options sets the cookie's attributes; MaxAge
// is also how long a session lasts after its last Save. A session whose
// cookie would be larger than maxBytes (name, "=" and value) is refused
// with ErrCookieTooLarge; 0 means MaxCookieBytes.
func NewCookieStore(key []byte, options sessions.Options, maxBytes int, now func() time.Time) *CookieStore {
	codec := securecookie.New(deriveKey(key, "statelab cookie hash"), deriveKey(key, "statelab cookie block"))
	codec.SetSerializer(securecookie.JSONEncoder{}) // smaller than gob, and the cookie's size is the point
	codec.MaxAge(0)                                 // the sealed expiry decides, by the store's clock
	codec.MaxLength(0)                              // Save checks the whole cookie against maxBytes
	if maxBytes <= 0 {
		maxBytes = MaxCookieBytes
	}
	return &CookieStore{
		codec:    codec,
		options:  options,
		ttl:      time.Duration(options.MaxAge) * time.Second,
		maxBytes: maxBytes,
		now:      now,
	}
}

// deriveKey makes one 32-byte key per purpose from the session key, so the
// one secret the replicas share never serves two algorithms.
func deriveKey(key []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

// CookieStoreName is the cookie store's Name.
const CookieStoreName = "cookie"

// Name returns CookieStoreName.
func (*CookieStore) Name() string { return CookieStoreName }

// Where says the session is in the client's cookie.
func (*CookieStore) Where(string) string { return "sealed in your cookie; no server holds it" }

// Lost can only mean the sealed expiry passed: nothing else takes a
// session from the client's cookie.
func (*CookieStore) Lost(string) string {
	return "Your session cookie is genuine, but the session sealed in it has expired. Log in again."
}

// Shared is true: every replica with the key opens every cookie.
func (*CookieStore) Shared() bool { return true }

// Revocable is false: the server keeps no list to strike a session from,
// so a copy of the cookie works until its sealed expiry.
func (*CookieStore) Revocable() bool { return false }

// Needs is nothing: the client carries the store.
func (*CookieStore) Needs() []Service { return nil }

// Load opens the request's cookie. A cookie that fails authentication is
// ErrInvalidCookie; one whose sealed expiry has passed is ErrSessionLost.
func (s *CookieStore) Load(r *http.Request) (*Session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return nil, ErrNoCookie
	}
	var v sealed
	if err := s.codec.Decode(CookieName, ck.Value, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCookie, err)
	}
	now := s.now().Unix()
	if v.Expires != 0 && now >= v.Expires {
		return nil, ErrSessionLost
	}
	// A session sealed before it carried Since has no sign-in time to
	// count from: it is over too.
	if v.Since == 0 || now >= v.Since+int64(CookieLifetime/time.Second) {
		return nil, ErrSessionLost
	}
	return clone(v.Session), nil
}

// Save seals the session into the cookie, with a fresh expiry, never past
// CookieLifetime from the sign-in. A session without an ID gets a random
// one, so two logins are two sessions, and its sign-in time (Since).
// Nothing is kept on the server, so there is nothing to check a loaded
// session against: a cookie saved after a logout is as good as any, until
// the end of its lifetime.
func (s *CookieStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	now := s.now()
	if sess.ID == "" {
		id, err := newSessionID()
		if err != nil {
			return err
		}
		sess.ID = id
		sess.Since = now.Unix()
	}
	if sess.Since == 0 {
		sess.Since = now.Unix()
	}
	v := sealed{Session: *sess}
	end := sess.Since + int64(CookieLifetime/time.Second)
	v.Expires = end
	if s.ttl > 0 {
		v.Expires = min(now.Add(s.ttl).Unix(), end)
	}
	encoded, err := s.codec.Encode(CookieName, v)
	if err != nil {
		return fmt.Errorf("seal session cookie: %w", err)
	}
	if n := len(CookieName) + 1 + len(encoded); n > s.maxBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrCookieTooLarge, n, s.maxBytes)
	}
	setCookie(w, sessions.NewCookie(CookieName, encoded, &s.options))
	return nil
}

// Destroy tells the browser to drop the cookie. That is all it can do: the
// server keeps no list of sessions to strike this one from, so a copy of the
// cookie stays valid until its sealed expiry.
func (s *CookieStore) Destroy(w http.ResponseWriter, r *http.Request, sess *Session) error {
	clearCookie(w, s.options)
	return nil
}
