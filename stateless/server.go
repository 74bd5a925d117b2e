package stateless

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// Option changes how a stateless server behaves; see InsecureEmailOnlyKeys.
type Option func(*server)

// InsecureEmailOnlyKeys brings back the original lab's key flow: an email
// alone gets an API key, registering an account without a password when
// none exists, and an account without a password gives a key to anyone who
// names it. It is unsafe: whoever knows (or guesses) an email holds that
// account, and the different answers for known and unknown emails tell
// which accounts exist. The lab keeps it only to show what the seed did.
func InsecureEmailOnlyKeys() Option { return func(s *server) { s.emailOnlyKeys = true } }

// NewServer returns the stateless library server: the shared API behind
// bearer-token authentication, plus the routes that hand out API keys and
// JWTs. By default a key, like a JWT, needs the account's email and
// password.
func NewServer(cfg api.Config, tokens *Tokens, now func() time.Time, opts ...Option) http.Handler {
	cfg.Service = "stateless"
	a := api.New(cfg)
	s := &server{cfg: cfg, tokens: tokens, now: now, logger: cfg.Logger,
		identifyKey: a.Identify(api.IdentifyAPIKey), identifyJWT: a.Identify(api.IdentifyJWT),
		keyLookups: a.SharedCalls(api.SharedDatabase)}
	if kc, ok := cfg.Store.(KeyLookupCounter); ok && kc.CountKeyLookups(s.keyLookups) {
		s.keyLookups = nil // the store counts the lookups that asked it
	}
	a.SharedCalls(api.SharedRedis) // no bearer token is kept in redis
	for _, o := range opts {
		o(s)
	}
	s.auths = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_authentications_total",
		Help: "Bearer-token checks by method (api_key, jwt, none) and result (ok, invalid, expired, unknown, missing). Every request pays one.",
	}, []string{"method", "result"})
	a.Registerer().MustRegister(s.auths)
	// The series of every good request, looked up once rather than per
	// request (a hash and a map read).
	s.keyOK = s.auths.WithLabelValues("api_key", "ok")
	s.jwtOK = s.auths.WithLabelValues("jwt", "ok")

	a.Handle("POST", GenerateKeyRoute, s.handleGenerateKey())
	a.Handle("POST", TokenRoute, s.handleToken())
	a.Handle("DELETE", KeyRoute, s.requireToken(s.handleRevokeKey()))
	a.HandleLibrary(s.requireToken)
	return a
}

// KeyLookupCounter is a store that can count, itself, the API key lookups
// that asked the shared database: one whose read cache may answer a key
// from memory, with no round trip (PostgreSQL's notify cache), so that the
// lab counts the round trips a request paid rather than the lookups it
// made. CountKeyLookups reports whether the store will count them; when it
// does not, the server counts every lookup.
type KeyLookupCounter interface {
	CountKeyLookups(c prometheus.Counter) bool
}

type server struct {
	cfg    api.Config
	tokens *Tokens
	now    func() time.Time
	logger *slog.Logger
	auths  *prometheus.CounterVec
	// identifyKey and identifyJWT time authenticate, found or not, by the
	// kind of token; a header that is neither is not timed.
	identifyKey, identifyJWT prometheus.Observer
	// keyLookups counts the API keys looked up in the shared store: the
	// calls a request with an API key makes to a shared service. Nil when
	// the store counts them itself (KeyLookupCounter).
	keyLookups prometheus.Counter
	// keyOK and jwtOK are auths' series for a good API key and JWT.
	keyOK, jwtOK prometheus.Counter
	// emailOnlyKeys is InsecureEmailOnlyKeys.
	emailOnlyKeys bool
}

// challenge is the WWW-Authenticate header of every 401 (RFC 6750).
const challenge = `Bearer realm="statelab", error="invalid_token"`

// authenticate finds the member a bearer token names. The error is always
// an EINVALIDTOKEN that says what was wrong, or an internal error.
func (s *server) authenticate(r *http.Request) (library.Member, error) {
	start := time.Now()
	h := r.Header.Get("Authorization")
	if h == "" {
		s.auths.WithLabelValues("none", "missing").Inc()
		return library.Member{}, library.Errorf(library.EINVALIDTOKEN,
			"No credentials: send Authorization: Bearer <api key or JWT> with every request (get one from POST /api/auth/generate-key or /api/auth/token).")
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, TokenType) || token == "" {
		s.auths.WithLabelValues("none", "invalid").Inc()
		return library.Member{}, library.Errorf(library.EINVALIDTOKEN, "The Authorization header must be \"Bearer <token>\".")
	}

	if keyID, ok := ParseAPIKey(token); ok {
		defer func() { s.identifyKey.Observe(time.Since(start).Seconds()) }()
		if s.keyLookups != nil {
			s.keyLookups.Inc()
		}
		key, m, err := s.cfg.Store.FindAPIKey(r.Context(), keyID)
		switch {
		case library.ErrorCode(err) == library.ENOTFOUND:
			s.auths.WithLabelValues("api_key", "unknown").Inc()
			return m, library.Errorf(library.EINVALIDTOKEN, "This API key is unknown or has been revoked.")
		case err != nil:
			return m, err
		case !KeyMatches(token, key.Hash):
			s.auths.WithLabelValues("api_key", "invalid").Inc()
			return library.Member{}, library.Errorf(library.EINVALIDTOKEN, "This API key is unknown or has been revoked.")
		}
		s.keyOK.Inc()
		return m, nil
	}

	if strings.Count(token, ".") == 2 {
		defer func() { s.identifyJWT.Observe(time.Since(start).Seconds()) }()
		m, err := s.tokens.Verify(token)
		switch {
		case errors.Is(err, ErrExpired):
			s.auths.WithLabelValues("jwt", "expired").Inc()
			return m, library.Errorf(library.EINVALIDTOKEN, "This JWT has expired; get a new one from POST /api/auth/token.")
		case err != nil:
			s.auths.WithLabelValues("jwt", "invalid").Inc()
			return m, library.Errorf(library.EINVALIDTOKEN, "This JWT is not valid here (bad signature, algorithm, issuer or audience).")
		}
		s.jwtOK.Inc()
		return m, nil
	}

	s.auths.WithLabelValues("none", "invalid").Inc()
	return library.Member{}, library.Errorf(library.EINVALIDTOKEN, "The bearer token is neither an API key (slk_…) nor a JWT.")
}

// requireToken is the stateless side's way of finding the request's
// member: from the request's own token, every time.
func (s *server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := s.authenticate(r)
		if err != nil {
			if library.ErrorCode(err) == library.EINVALIDTOKEN {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			api.Error(w, r, s.logger, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(library.NewContextWithMember(r.Context(), m)))
	})
}

// handleGenerateKey issues an API key to a member who signs in with email
// and password: one answer, at one bcrypt cost, whether the account is
// missing or the password wrong. Only with InsecureEmailOnlyKeys does an
// email alone do, as in the original lab.
func (s *server) handleGenerateKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		check := api.PasswordCheck(s.cfg.Store)
		if s.emailOnlyKeys {
			check = s.keyOwner
		}
		m, err := api.SignIn(w, r, s.cfg.SignIn, check)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		key, rec, err := NewAPIKey(m.ID, s.now())
		if err == nil {
			err = s.cfg.Store.CreateAPIKey(r.Context(), rec)
		}
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		api.OK(w, http.StatusCreated, KeyIssued{APIKey: key, KeyID: rec.ID, Email: m.Email},
			"Keep this key: it is shown once and stored only as a hash. Send it as Authorization: Bearer <key> with every request.")
	})
}

// keyOwner finds or registers the member a key is asked for, the
// original lab's way (InsecureEmailOnlyKeys).
func (s *server) keyOwner(r *http.Request, c api.Credentials) (library.Member, error) {
	email, err := api.NormalizeEmail(c.Email)
	if err != nil {
		return library.Member{}, err
	}
	m, err := s.cfg.Store.FindMemberByEmail(r.Context(), email)
	switch {
	case library.ErrorCode(err) == library.ENOTFOUND:
		return s.register(r, email, c.Password)
	case err != nil:
		return m, err
	case m.PasswordHash == "":
		return m, nil
	case c.Password == "":
		// Authenticate would call this a malformed request (400), but an
		// empty password is valid here, for accounts that have none; for
		// this account it is a wrong password.
		return library.Member{}, library.Errorf(library.EUNAUTHORIZED, "%s has a password; send it with the email.", email)
	}
	return api.Authenticate(r.Context(), s.cfg.Store, email, c.Password)
}

func (s *server) register(r *http.Request, email, password string) (library.Member, error) {
	m := library.Member{Email: email, Name: email, Role: library.RoleMember, CreatedAt: s.now()}
	if password != "" {
		if len(password) > 72 {
			return m, library.Errorf(library.EINVALID, "A password may be at most 72 bytes long.")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return m, fmt.Errorf("hash password: %w", err)
		}
		m.PasswordHash = string(h)
	}
	m, err := s.cfg.Store.CreateMember(r.Context(), m)
	if library.ErrorCode(err) == library.ECONFLICT {
		// Another request registered the email a moment ago; sign in as
		// if it had been there all along.
		return s.keyOwner(r, api.Credentials{Email: email, Password: password})
	}
	return m, err
}

func (s *server) handleToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := api.SignIn(w, r, s.cfg.SignIn, api.PasswordCheck(s.cfg.Store))
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		tok, err := s.tokens.Issue(m)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		ttl := s.tokens.TTL()
		api.OK(w, http.StatusOK, TokenIssued{AccessToken: tok, TokenType: TokenType, ExpiresIn: int(ttl.Seconds())},
			fmt.Sprintf("This JWT is valid for %s on every replica; it cannot be revoked before then.", ttl))
	})
}

func (s *server) handleRevokeKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := api.Member(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		id := mux.Vars(r)["key_id"]
		if len(id) != 2*keyIDBytes {
			api.Error(w, r, s.logger, library.Errorf(library.EINVALID, "%q is not a key id.", id))
			return
		}
		if err := s.cfg.Store.RevokeAPIKey(r.Context(), m.ID, id); err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		api.OK(w, http.StatusOK, nil, fmt.Sprintf("API key %s is revoked; it stops working on every replica at once.", id))
	})
}
