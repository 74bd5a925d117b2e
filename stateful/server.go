package stateful

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// CookieName is the name of the session cookie.
const CookieName = "session_id"

// MaxCartItems bounds a cart, so one session cannot grow without limit.
const MaxCartItems = 20

// Keys of the values a session holds.
const (
	memberValue = "member"
	cartValue   = "cart"
)

// NewServer returns the stateful library server: the shared API behind
// session authentication, plus login, logout and the server-side cart.
func NewServer(cfg api.Config, store *MemoryStore) http.Handler {
	cfg.Service = "stateful"
	a := api.New(cfg)
	s := &server{cfg: cfg, store: store, logger: cfg.Logger}
	s.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_session_lookups_total",
		Help: "Session lookups by result: found (this process holds it), lost (a valid cookie this process holds no session for), none (no cookie), invalid (bad signature).",
	}, []string{"result"})
	a.Registerer().MustRegister(s.lookups, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "statelab_sessions_active",
		Help: "Sessions held in this process's memory now.",
	}, func() float64 { return float64(store.Len()) }))
	for _, r := range []string{"found", "lost", "none", "invalid"} {
		s.lookups.WithLabelValues(r)
	}

	a.Handle("POST", "/api/auth/login", s.handleLogin())
	a.Handle("POST", "/api/auth/logout", s.handleLogout())
	a.Handle("GET", "/api/cart", s.handleCart())
	a.Handle("POST", "/api/cart/items", s.handleAddToCart())
	a.Handle("DELETE", "/api/cart/items/{book_id}", s.handleRemoveFromCart())
	a.Handle("POST", "/api/cart/checkout", s.handleCheckout())
	a.HandleLibrary(s.requireSession)
	return a
}

type server struct {
	cfg     api.Config
	store   *MemoryStore
	logger  *slog.Logger
	lookups *prometheus.CounterVec
}

// session returns the request's held session and its member, or the error
// that tells the client which of the three ways it has none.
func (s *server) session(r *http.Request) (*sessions.Session, library.Member, error) {
	sess, err := s.store.Get(r, CookieName)
	switch {
	case errors.Is(err, ErrNoCookie):
		s.lookups.WithLabelValues("none").Inc()
		return nil, library.Member{}, library.Errorf(library.ELOGINREQUIRED,
			"You are not logged in: there is no session cookie. Log in with POST /api/auth/login.")
	case errors.Is(err, ErrInvalidCookie):
		s.lookups.WithLabelValues("invalid").Inc()
		return nil, library.Member{}, library.Errorf(library.EINVALIDSESSION,
			"Your session cookie failed its signature check (tampered with, or signed with another key). Log in again.")
	case errors.Is(err, ErrSessionLost):
		s.lookups.WithLabelValues("lost").Inc()
		return nil, library.Member{}, library.Errorf(library.ESESSIONLOST,
			"Your session cookie is genuine, but replica %s holds no session for it: the session lived in the memory of another process, or of this one before it restarted. Your cart went with it. Log in again.", s.cfg.Replica)
	case err != nil:
		return nil, library.Member{}, err
	}
	m, ok := sess.Values[memberValue].(library.Member)
	if !ok {
		return nil, library.Member{}, fmt.Errorf("session %.8s… holds no member", sess.ID)
	}
	s.lookups.WithLabelValues("found").Inc()
	return sess, m, nil
}

// requireSession is the stateful side's way of finding the request's
// member: look the session up in this process's memory.
func (s *server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, m, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(library.NewContextWithMember(r.Context(), m)))
	})
}

func (s *server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := api.Decode[api.Credentials](w, r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		if err := s.cfg.SignIn.Allow(r, c.Email); err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		m, err := api.Authenticate(r.Context(), s.cfg.Store, c.Email, c.Password)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		// A new session id at every login: an id someone planted or saw
		// before the login is worth nothing after it.
		if old, _ := s.store.Get(r, CookieName); old.ID != "" {
			s.store.Delete(old.ID)
		}
		sess := sessions.NewSession(s.store, CookieName)
		opts := s.store.options
		sess.Options = &opts
		sess.Values[memberValue] = m
		sess.Values[cartValue] = []int64{}
		if err := sess.Save(r, w); err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		api.OK(w, http.StatusOK, m, fmt.Sprintf("Logged in as %s. Your session lives in the memory of replica %s.", m.Email, s.cfg.Replica))
	})
}

func (s *server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		sess.Options.MaxAge = -1
		if err := sess.Save(r, w); err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		api.OK(w, http.StatusOK, nil, "Logged out; the session is gone from the server.")
	})
}

// cartItem is one line of GET /api/cart.
type cartItem struct {
	BookID    int64  `json:"book_id"`
	Title     string `json:"title"`
	Author    string `json:"author"`
	Available bool   `json:"available"`
}

// cart is the body of the cart routes.
type cart struct {
	Items []cartItem `json:"items"`
	Count int        `json:"count"`
}

// cartOf reads the cart out of a session.
func cartOf(sess *sessions.Session) []int64 {
	ids, _ := sess.Values[cartValue].([]int64)
	return ids
}

// describe turns the cart's ids into lines with titles, read from the
// shared store. A book deleted since it was added is left out.
func (s *server) describe(r *http.Request, ids []int64) (cart, error) {
	c := cart{Items: []cartItem{}}
	for _, id := range ids {
		b, err := s.cfg.Store.FindBookByID(r.Context(), id)
		if library.ErrorCode(err) == library.ENOTFOUND {
			continue
		} else if err != nil {
			return c, err
		}
		c.Items = append(c.Items, cartItem{BookID: b.ID, Title: b.Title, Author: b.Author, Available: b.Available})
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
		sess, _, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		ids := cartOf(sess)
		s.writeCart(w, r, http.StatusOK, ids, fmt.Sprintf("Your cart holds %d book(s), kept in the memory of replica %s.", len(ids), s.cfg.Replica))
	})
}

// cartInput is the body of POST /api/cart/items.
type cartInput struct {
	BookID int64 `json:"book_id"`
}

func (s *server) handleAddToCart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		in, err := api.Decode[cartInput](w, r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		if in.BookID <= 0 {
			api.Error(w, r, s.logger, library.Errorf(library.EINVALID, "book_id must be a positive whole number."))
			return
		}
		ids := cartOf(sess)
		if slices.Contains(ids, in.BookID) {
			api.Error(w, r, s.logger, library.Errorf(library.ECONFLICT, "Book %d is already in your cart.", in.BookID))
			return
		}
		if len(ids) >= MaxCartItems {
			api.Error(w, r, s.logger, library.Errorf(library.EINVALID, "A cart holds at most %d books; check out first.", MaxCartItems))
			return
		}
		b, err := s.cfg.Store.FindBookByID(r.Context(), in.BookID)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		ids = append(ids, b.ID)
		sess.Values[cartValue] = ids
		if err := sess.Save(r, w); err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		s.writeCart(w, r, http.StatusCreated, ids, fmt.Sprintf("Added %q to your cart.", b.Title))
	})
}

func (s *server) handleRemoveFromCart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		id, err := api.PathID(r, "book_id")
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		ids := cartOf(sess)
		i := slices.Index(ids, id)
		if i < 0 {
			api.Error(w, r, s.logger, library.Errorf(library.ENOTFOUND, "Book %d is not in your cart.", id))
			return
		}
		ids = slices.Delete(ids, i, i+1)
		sess.Values[cartValue] = ids
		if err := sess.Save(r, w); err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		s.writeCart(w, r, http.StatusOK, ids, fmt.Sprintf("Removed book %d from your cart.", id))
	})
}

func (s *server) handleCheckout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, m, err := s.session(r)
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		ids := cartOf(sess)
		if len(ids) == 0 {
			api.Error(w, r, s.logger, library.Errorf(library.EINVALID, "Your cart is empty; add books with POST /api/cart/items first."))
			return
		}
		recs, err := s.cfg.Store.Borrow(r.Context(), library.BorrowRequest{MemberID: m.ID, BookIDs: ids})
		if err != nil {
			api.Error(w, r, s.logger, err)
			return
		}
		sess.Values[cartValue] = []int64{}
		if err := sess.Save(r, w); err != nil {
			// The borrows are committed; the client must hear of them even
			// if the cart could not be emptied.
			s.logger.Error("empty cart after checkout", "err", err)
		}
		api.OK(w, http.StatusCreated, recs, fmt.Sprintf("You borrowed %d book(s); your cart is empty.", len(recs)))
	})
}
