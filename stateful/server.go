package stateful

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// CookieName is the name of the session cookie.
const CookieName = "session_id"

// MaxCartItems bounds a cart. Every store pays for a cart's size on every
// request (memory and redis keep it, the cookie store makes the client send
// it), so one session must not grow without limit; 20 books also keep the
// cookie store's cookie far below the MaxCookieBytes a browser keeps.
const MaxCartItems = 20

// NewServer returns the stateful library server: the shared API behind
// session authentication, plus login, logout and the cart, all kept in
// store. A store that can count its sessions (SessionCounter) feeds the
// statelab_sessions_active gauge; one that can be unreachable (Pinger)
// makes GET /api/ready answer 503 while it is.
func NewServer(cfg api.Config, store SessionStore) http.Handler {
	cfg.Service = "stateful"
	s := &server{cfg: cfg, store: store, logger: cfg.Logger}
	if p, ok := store.(Pinger); ok {
		cfg.Ready = s.ready(cfg.Ready, p)
	}
	a := api.New(cfg)
	s.api = a
	s.identify = a.Identify(api.IdentifySession)
	a.SharedCalls(api.SharedDatabase) // identifying by session asks no database
	if c, ok := store.(CallCounter); ok {
		c.CountCalls(a.SharedCalls(api.SharedRedis))
	} else {
		a.SharedCalls(api.SharedRedis)
	}
	s.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_session_lookups_total",
		Help: "Session lookups by result: found (this process holds it), lost (a valid cookie this process holds no session for), none (no cookie), invalid (bad signature).",
	}, []string{"result"})
	s.storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "statelab_session_store_seconds",
		Help:    "Time the session store took per call, by store (memory, redis, cookie) and operation (load, save, destroy).",
		Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"store", "operation"})
	a.Registerer().MustRegister(s.lookups, s.storeSeconds)
	if c, ok := store.(SessionCounter); ok {
		a.Registerer().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: api.SessionsActiveMetric,
			Help: "Sessions held by this process's session store now.",
		}, func() float64 { return float64(c.Len()) }))
	}
	if c, ok := store.(UseCounter); ok {
		a.Registerer().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: api.SessionsInUseMetric,
			Help: fmt.Sprintf("Sessions held by this process's session store that a request used within the last %s; the rest of statelab_sessions_active are idle, most of them left behind by clients that signed in again.", InUseWindow),
		}, func() float64 { return float64(c.InUse(InUseWindow)) }))
	}
	for _, r := range []string{"found", "lost", "none", "invalid"} {
		s.lookups.WithLabelValues(r)
	}
	// The series every request touches, looked up once: a label lookup
	// per request is a hash and a map read the request need not pay.
	s.found = s.lookups.WithLabelValues("found")
	s.loadSeconds = s.storeSeconds.WithLabelValues(store.Name(), "load")
	s.saveSeconds = s.storeSeconds.WithLabelValues(store.Name(), "save")
	s.destroySeconds = s.storeSeconds.WithLabelValues(store.Name(), "destroy")

	a.Handle("POST", LoginRoute, s.handleLogin())
	a.Handle("POST", LogoutRoute, s.handleLogout())
	a.Handle("GET", CartRoute, s.handleCart())
	a.Handle("POST", CartItemsRoute, s.handleAddToCart())
	a.Handle("DELETE", CartItemRoute, s.handleRemoveFromCart())
	a.Handle("POST", CheckoutRoute, s.handleCheckout())
	a.HandleLibrary(s.requireSession)
	return a
}

type server struct {
	cfg          api.Config
	api          *api.API // for the Idempotency-Key of the checkout
	store        SessionStore
	logger       *slog.Logger
	lookups      *prometheus.CounterVec
	storeSeconds *prometheus.HistogramVec
	identify     prometheus.Observer // the time session spends, found or not

	found                                    prometheus.Counter
	loadSeconds, saveSeconds, destroySeconds prometheus.Observer
}

// ready chains the store's ping after the readiness check the caller gave,
// if any.
func (s *server) ready(next func(context.Context) error, p Pinger) func(context.Context) error {
	return func(ctx context.Context) error {
		if next != nil {
			if err := next(ctx); err != nil {
				return err
			}
		}
		if err := p.Ping(ctx); err != nil {
			// The *library.Error gives the client its sentence; the
			// cause stays in the log.
			return fmt.Errorf("%w: %v", library.Errorf(library.ENOTREADY,
				"This replica cannot reach its session store (%s), so it cannot tell who anyone is.", s.store.Name()), err)
		}
		return nil
	}
}

// load, save and destroy call the store and time it.
func (s *server) load(r *http.Request) (*Session, error) {
	defer observe(s.loadSeconds, time.Now())
	return s.store.Load(r)
}

func (s *server) save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	defer observe(s.saveSeconds, time.Now())
	return s.store.Save(w, r, sess)
}

func (s *server) destroy(w http.ResponseWriter, r *http.Request, sess *Session) error {
	defer observe(s.destroySeconds, time.Now())
	return s.store.Destroy(w, r, sess)
}

func observe(o prometheus.Observer, start time.Time) {
	o.Observe(time.Since(start).Seconds())
}

// session returns the request's session, or the error that tells the
// client which way it has none.
func (s *server) session(r *http.Request) (*Session, error) {
	start := time.Now()
	sess, err := s.load(r)
	s.identify.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, s.sessionError(err)
	}
	s.found.Inc()
	return sess, nil
}

// sessionError turns a store's error into the client's answer, and counts
// the lookups that found no session.
func (s *server) sessionError(err error) error {
	switch {
	case errors.Is(err, ErrNoCookie):
		s.lookups.WithLabelValues("none").Inc()
		return library.Errorf(library.ELOGINREQUIRED,
			"You are not logged in: there is no session cookie. Log in with POST /api/auth/login.")
	case errors.Is(err, ErrInvalidCookie):
		s.lookups.WithLabelValues("invalid").Inc()
		return library.Errorf(library.EINVALIDSESSION,
			"Your session cookie failed its signature check (tampered with, or signed with another key). Log in again.")
	case errors.Is(err, ErrSessionLost):
		s.lookups.WithLabelValues("lost").Inc()
		return library.Errorf(library.ESESSIONLOST, "%s", s.store.Lost(s.cfg.Replica))
	case errors.Is(err, ErrStoreUnavailable):
		return fmt.Errorf("%w: %v", library.Errorf(library.ESESSIONSTORE,
			"The session store (%s) cannot be reached, so replica %s cannot tell who you are. Your session is not lost; try again in a moment.",
			s.store.Name(), s.cfg.Replica), err)
	case errors.Is(err, ErrCookieTooLarge):
		return library.Errorf(library.ECOOKIETOOLARGE,
			"The cookie holding your session would exceed the %d bytes a browser keeps, so nothing was changed. Check out or remove books from your cart first.", MaxCookieBytes)
	}
	return err
}

// requireSession is the stateful side's way of finding the request's
// member: look the session up in the store.
func (s *server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(library.NewContextWithMember(r.Context(), sess.Member)))
	})
}

func (s *server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := api.SignIn(w, r, s.cfg.SignIn, api.PasswordCheck(s.cfg.Store))
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		// A new session id at every login: an id someone planted or saw
		// before the login is worth nothing after it.
		if old, err := s.load(r); err == nil {
			if err := s.destroy(w, r, old); err != nil {
				api.Error(w, r, s.logger, s.sessionError(err))
				return
			}
		}
		sess := &Session{Member: m, Cart: []int64{}}
		if err := s.save(w, r, sess); err != nil {
			api.Error(w, r, s.logger, s.sessionError(err))
			return
		}
		api.OK(w, http.StatusOK, m, fmt.Sprintf("Logged in as %s. Your session is kept %s.", m.Email, s.store.Where(s.cfg.Replica)))
	})
}

func (s *server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		if err := s.destroy(w, r, sess); err != nil {
			api.Error(w, r, s.logger, s.sessionError(err))
			return
		}
		msg := "Logged out; the session is gone from the server."
		if !s.store.Revocable() {
			msg = "Logged out: your browser drops its cookie. No server keeps the session, so none can strike it off: a copy of the old cookie still works until it expires."
		}
		api.OK(w, http.StatusOK, nil, msg)
	})
}

// describe turns the cart's ids into lines with titles, read from the
// shared store. A book deleted since it was added is left out.
func (s *server) describe(r *http.Request, ids []int64) (Cart, error) {
	c := Cart{Items: []CartItem{}}
	for _, id := range ids {
		b, err := s.cfg.Store.FindBookByID(r.Context(), id)
		if library.ErrorCode(err) == library.ENOTFOUND {
			continue
		} else if err != nil {
			return c, err
		}
		c.Items = append(c.Items, CartItem{BookID: b.ID, Title: b.Title, Author: b.Author, Available: b.Available})
	}
	c.Count = len(c.Items)
	return c, nil
}

func (s *server) writeCart(w http.ResponseWriter, r *http.Request, status int, ids []int64, message string) {
	c, err := s.describe(r, ids)
	if err != nil {
		api.Error(w, r, s.logger, err)
		return
	}
	api.OK(w, status, c, message)
}

func (s *server) handleCart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		s.writeCart(w, r, http.StatusOK, sess.Cart, fmt.Sprintf("Your cart holds %d book(s), kept %s.", len(sess.Cart), s.store.Where(s.cfg.Replica)))
	})
}

func (s *server) handleAddToCart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		in, err := api.Decode[CartInput](w, r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		if in.BookID <= 0 {
			api.Error(w, r, s.logger, library.Errorf(library.EINVALID, "book_id must be a positive whole number."))
			return
		}
		if slices.Contains(sess.Cart, in.BookID) {
			api.Error(w, r, s.logger, library.Errorf(library.ECONFLICT, "Book %d is already in your cart.", in.BookID))
			return
		}
		if len(sess.Cart) >= MaxCartItems {
			api.Error(w, r, s.logger, library.Errorf(library.EINVALID, "A cart holds at most %d books; check out first.", MaxCartItems))
			return
		}
		b, err := s.cfg.Store.FindBookByID(r.Context(), in.BookID)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		sess.Cart = append(sess.Cart, b.ID)
		if err := s.save(w, r, sess); err != nil {
			api.Error(w, r, s.logger, s.sessionError(err))
			return
		}
		s.writeCart(w, r, http.StatusCreated, sess.Cart, fmt.Sprintf("Added %q to your cart.", b.Title))
	})
}

func (s *server) handleRemoveFromCart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		id, err := api.PathID(r, "book_id")
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		i := slices.Index(sess.Cart, id)
		if i < 0 {
			api.Error(w, r, s.logger, library.Errorf(library.ENOTFOUND, "Book %d is not in your cart.", id))
			return
		}
		sess.Cart = slices.Delete(sess.Cart, i, i+1)
		if err := s.save(w, r, sess); err != nil {
			api.Error(w, r, s.logger, s.sessionError(err))
			return
		}
		s.writeCart(w, r, http.StatusOK, sess.Cart, fmt.Sprintf("Removed book %d from your cart.", id))
	})
}

// handleCheckout borrows the whole cart. It accepts an Idempotency-Key
// like the library's own writes: the borrows and the key are stored in one
// transaction of the shared database, and a retry gets the first answer.
// The cart lives in the session, not in that transaction, so it is emptied
// after the answer is known, of the books the answer lent, on a replay too:
// the first request may have died between its commit and its session save.
func (s *server) handleCheckout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		// The key is scoped to the member the session names.
		r = r.WithContext(library.NewContextWithMember(r.Context(), sess.Member))
		// The checkout acts on the cart, so the cart is part of what a key
		// names: the same key with another cart is another request (422).
		// A retry of a checkout that emptied the cart finds it empty; the
		// session's memo of that checkout gives it the cart it was for.
		key, keyed, err := api.IdempotencyKey(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		cart := cartDigest(sess.Cart)
		if keyed && len(sess.Cart) == 0 && sess.Checkout != nil && sess.Checkout.Key == keyDigest(key) {
			cart = sess.Checkout.Cart
		}
		ans, err := s.api.IdempotentOn(w, r, []byte(cart), func(store library.Writes) (api.Result, error) {
			// Checked here, not before: a retry of a checkout that emptied
			// the cart must get its answer, not "your cart is empty".
			if len(sess.Cart) == 0 {
				return api.Result{}, library.Errorf(library.EINVALID, "Your cart is empty; add books with POST /api/cart/items first.")
			}
			recs, err := store.Borrow(r.Context(), library.BorrowRequest{MemberID: sess.Member.ID, BookIDs: sess.Cart})
			if err != nil {
				return api.Result{}, err
			}
			return api.Result{Status: http.StatusCreated, Data: recs, Message: fmt.Sprintf("You borrowed %d book(s); your cart is empty.", len(recs))}, nil
		})
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		if lent := lentBooks(ans.Body); len(lent) > 0 {
			before := len(sess.Cart)
			sess.Cart = slices.DeleteFunc(sess.Cart, func(id int64) bool { return slices.Contains(lent, id) })
			if len(sess.Cart) != before {
				if keyed {
					sess.Checkout = &CheckoutMemo{Key: keyDigest(key), Cart: cart}
				}
				if err := s.save(w, r, sess); err != nil {
					// The borrows are committed; the client must hear of them
					// even if the cart could not be emptied.
					s.logger.Error("empty cart after checkout", "err", err)
				}
			}
		}
		api.WriteAnswer(w, ans)
	})
}

// cartDigest names a cart's content, whatever the order of its books.
func cartDigest(cart []int64) string {
	ids := slices.Sorted(slices.Values(cart))
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%d,", id)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// keyDigest names an Idempotency-Key in a session's CheckoutMemo.
func keyDigest(key string) string {
	h := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// lentBooks returns the book ids of the borrow records in a checkout's
// answer: what to take out of the cart.
func lentBooks(body []byte) []int64 {
	var env struct {
		Data []struct {
			BookID int64 `json:"book_id"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil
	}
	ids := make([]int64, len(env.Data))
	for i, d := range env.Data {
		ids[i] = d.BookID
	}
	return ids
}
