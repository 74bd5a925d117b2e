package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/statelab/statelab/internal/library"
)

// ReplicaHeader names the response header that tells which replica
// answered. The walkthrough and the comparison runner read it to show
// requests landing on different processes.
const ReplicaHeader = "X-Statelab-Replica"

// The gauges a stateful replica keeps of the sessions its store holds, by
// name, for the runner that reads them from every replica's /metrics.
const (
	// SessionsActiveMetric counts every session the process holds.
	SessionsActiveMetric = "statelab_sessions_active"
	// SessionsInUseMetric counts those a request used lately (the stateful
	// package's InUseWindow); the rest are idle, most of them left behind by
	// clients that signed in again.
	SessionsInUseMetric = "statelab_sessions_in_use"
)

// IdentifyMetric names the histogram both servers keep of the time they
// spend finding a request's member: a session looked up in its store, an
// API key looked up in the database, a JWT's signature checked. It is the
// one place the two servers differ on every request, so the lab reads it to
// compare what each way of keeping a sign-in costs the server.
const IdentifyMetric = "statelab_identify_seconds"

// IdentifyBuckets are IdentifyMetric's bucket bounds, in seconds: steps of
// about 1.5× from a microsecond to a quarter second, so that a median read
// from them is within a step of the truth.
var IdentifyBuckets = []float64{
	1e-6, 1.5e-6, 2e-6, 3e-6, 5e-6, 7e-6, 1e-5, 1.5e-5, 2e-5, 3e-5, 5e-5, 7e-5,
	1e-4, 1.5e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 7e-3,
	.01, .025, .05, .1, .25,
}

// The values of IdentifyMetric's method label.
const (
	IdentifySession = "session" // the stateful server: the session store
	IdentifyAPIKey  = "apikey"  // the stateless server: an API key, checked against the database
	IdentifyJWT     = "jwt"     // the stateless server: a JWT, checked by its signature
)

// SharedCallsMetric names the counter both servers keep of the calls a
// replica made to a shared service to find its callers and keep their
// sign-ins: every redis command of a session store (a pipeline is one
// round trip; the readiness PING is not counted), every API key looked up
// in the shared store (but for one PostgreSQL's notify cache answered from
// memory, which asked nothing: the store counts those it sent, see
// stateless.KeyLookupCounter). Divided by the requests the replica identified
// (IdentifyMetric's count) it is the round trips a request pays for its
// strategy, counted, not assumed: a JWT pays none.
const SharedCallsMetric = "statelab_shared_calls_total"

// The values of SharedCallsMetric's service label.
const (
	SharedRedis    = "redis"    // the redis-server a session store keeps its sessions in
	SharedDatabase = "database" // the shared library store (SQLite, PostgreSQL)
)

// Readiness is a process's answer to "may I send you traffic?". It turns
// false for good once Drain is called, so a balancer stops sending new
// requests while the in-flight ones finish.
type Readiness struct{ draining atomic.Bool }

// Drain marks the process as shutting down.
func (r *Readiness) Drain() { r.draining.Store(true) }

// Draining reports whether Drain has been called.
func (r *Readiness) Draining() bool { return r.draining.Load() }

// Config is what the shared part of both servers needs.
type Config struct {
	Service   string // "stateful" or "stateless", shown by /api/health
	Replica   string // this process's replica id
	Store     library.Store
	Logger    *slog.Logger
	Registry  *prometheus.Registry // this process's own registry, served at /metrics
	Readiness *Readiness
	// SignIn limits sign-in attempts per client and per account; nil
	// limits nothing.
	SignIn *SignInLimiter
	// Ready, when set, is asked after the library database whether the
	// process may take traffic: a server whose sessions live in a shared
	// store (redis) is not ready while it cannot reach it. An error that is
	// a *library.Error gives the client its message; any other error is
	// logged and the client hears a fixed sentence.
	Ready func(context.Context) error
}

// API is a router with the shared routes and the instrumentation every
// route gets. A server builds one with New, adds its own routes with Handle,
// mounts the library with HandleLibrary, and serves it.
type API struct {
	cfg        Config
	csrf       *http.CrossOriginProtection
	router     *mux.Router
	registerer prometheus.Registerer
	requests   *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	idem       *idempotency
	identify   *prometheus.HistogramVec
	shared     *prometheus.CounterVec
}

// New returns an API with the public routes (health, readiness, metrics)
// and JSON answers for unknown paths and methods. Every metric registered
// through it carries the constant labels server and replica.
func New(cfg Config) *API {
	if cfg.Readiness == nil {
		cfg.Readiness = &Readiness{}
	}
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"server": cfg.Service, "replica": cfg.Replica}, cfg.Registry)
	a := &API{
		cfg:        cfg,
		csrf:       http.NewCrossOriginProtection(),
		router:     mux.NewRouter(),
		registerer: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_http_requests_total",
			Help: "HTTP requests answered by this replica, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "statelab_http_request_duration_seconds",
			Help:    "Time this replica took to answer HTTP requests, by route template, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"route", "method", "code"}),
	}
	a.identify = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: IdentifyMetric,
		Help: "Time this replica spent finding the member of a request, found or not, by method (session, apikey, jwt).",
		// From a microsecond (a map read) to a quarter second (a store
		// that is down), close enough together for a median.
		Buckets: IdentifyBuckets,
	}, []string{"method"})
	a.shared = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: SharedCallsMetric,
		Help: "Calls this replica made to a shared service to identify callers and keep their sign-ins, by service (redis: session store commands, a pipeline counting once; database: API keys looked up in the shared store; a PostgreSQL notify cache's hit asks nothing and counts nothing).",
	}, []string{"service"})
	reg.MustRegister(a.requests, a.durations, a.identify, a.shared)
	a.idem = newIdempotency(reg)

	a.router.NotFoundHandler = a.instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Error(w, r, cfg.Logger, errorf(library.ENOTFOUND, "There is no %s on this server; see the API table in docs/API.md.", r.URL.Path))
	}))
	a.router.MethodNotAllowedHandler = a.instrument("unmatched", http.HandlerFunc(a.methodNotAllowed))

	a.Handle("GET", HealthRoute, a.handleHealth())
	a.Handle("GET", ReadyRoute, a.handleReady())
	a.Handle("GET", MetricsRoute, promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}))
	return a
}

// Registerer returns the registerer a server uses for its own metrics; it
// adds the server and replica labels.
func (a *API) Registerer() prometheus.Registerer { return a.registerer }

// Identify returns the observer of the time spent identifying callers by
// method (IdentifySession, IdentifyAPIKey or IdentifyJWT). A server asks for
// one per method it uses when it is built, so every series it will fill is
// there from the start, at zero.
func (a *API) Identify(method string) prometheus.Observer {
	return a.identify.WithLabelValues(method)
}

// SharedCalls returns the counter of calls to a shared service
// (SharedRedis or SharedDatabase). Both servers ask for every service when
// they are built, so a strategy that calls none shows 0, not nothing.
func (a *API) SharedCalls(service string) prometheus.Counter {
	return a.shared.WithLabelValues(service)
}

// Handle registers h for one method and path template, counted and timed
// under that template (never the raw path, so ids don't explode the label
// set), behind guard.
func (a *API) Handle(method, path string, h http.Handler) {
	a.router.Handle(path, a.instrument(path, a.guard(h))).Methods(method)
}

// guard refuses, before any handler runs, the two shapes of a cross-site
// request forgery: a browser request from another origin that would change
// state, and a body that is not JSON. A page on another port of the same
// host is same-site, so the SameSite=Lax session cookie goes with its
// requests; only the origin check stops a no-cors fetch or a form post from
// borrowing in the member's name. A form can only send text/plain,
// multipart or urlencoded bodies, and a no-cors fetch no JSON either, so
// demanding JSON of every body, also on routes that read none (checkout,
// return), keeps out browsers too old to send Sec-Fetch-Site or Origin.
func (a *API) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.csrf.Check(r); err != nil {
			from := r.Header.Get("Origin")
			if from == "" {
				from = "Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site")
			}
			Error(w, r, a.cfg.Logger, errorf(library.EFORBIDDEN,
				"Cross-origin request refused: a page from another origin (%s) may not %s here. Browsers may change state only from this server's own origin; programs that send no Origin header are not affected.", from, r.Method))
			return
		}
		// Only requests that carry credentials can change state; an
		// anonymous one is left to authentication, which answers 401 first.
		credentials := r.Header.Get("Cookie") != "" || r.Header.Get("Authorization") != ""
		if credentials && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions && hasBody(r) {
			if err := checkContentType(r); err != nil {
				Error(w, r, a.cfg.Logger, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(ReplicaHeader, a.cfg.Replica)
	a.router.ServeHTTP(w, r)
}

// instrument counts and times every request of one route under its
// template, with the same labels promhttp's InstrumentHandlerCounter and
// InstrumentHandlerDuration give (method lower case, "unknown" for a method
// outside HTTP's usual ten; code 200 when the handler wrote none). Unlike
// them it looks each route's series up once per method and code, and then
// reuses them: promhttp builds a label map and hashes it on every request,
// about a tenth of what a cached GET /api/books/{id} cost.
func (a *API) instrument(route string, h http.Handler) http.Handler {
	var series sync.Map // seriesKey → routeSeries
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		key := seriesKey{method: metricMethod(r.Method), code: sw.status}
		if key.code == 0 {
			key.code = http.StatusOK
		}
		s, ok := series.Load(key)
		if !ok {
			code := strconv.Itoa(key.code)
			s, _ = series.LoadOrStore(key, routeSeries{
				count:    a.requests.WithLabelValues(route, key.method, code),
				duration: a.durations.WithLabelValues(route, key.method, code),
			})
		}
		rs := s.(routeSeries)
		rs.count.Inc()
		rs.duration.Observe(time.Since(start).Seconds())
	})
}

// seriesKey names one route's series.
type seriesKey struct {
	method string
	code   int
}

// routeSeries are one route's counter and histogram for one method and code.
type routeSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// metricMethod is the method label promhttp would give: the usual methods
// in lower case, any other "unknown", so a client cannot grow the label set.
func metricMethod(m string) string {
	switch m {
	case "GET":
		return "get"
	case "PUT":
		return "put"
	case "HEAD":
		return "head"
	case "POST":
		return "post"
	case "DELETE":
		return "delete"
	case "CONNECT":
		return "connect"
	case "OPTIONS":
		return "options"
	case "NOTIFY":
		return "notify"
	case "TRACE":
		return "trace"
	case "PATCH":
		return "patch"
	}
	return "unknown"
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methodNotAllowed answers 405 with the Allow header that RFC 9110 asks
// for, found by asking the router which methods would have matched.
func (a *API) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		var match mux.RouteMatch
		probe := r.Clone(r.Context())
		probe.Method = m
		if a.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	Error(w, r, a.cfg.Logger, errorf(library.EMETHODNOTALLOWED, "%s does not answer %s; it answers %s.", r.URL.Path, r.Method, strings.Join(allowed, ", ")))
}

// Health is the body of GET /api/health, and of a 200 from GET /api/ready.
type Health struct {
	Success bool   `json:"success"`
	Status  string `json:"status"`
	Service string `json:"service"`
	Replica string `json:"replica"`
}

func (a *API) handleHealth() http.Handler {
	body := Health{Success: true, Status: "healthy", Service: a.cfg.Service, Replica: a.cfg.Replica}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Encode(w, http.StatusOK, body)
	})
}

func (a *API) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Readiness.Draining() {
			Error(w, r, a.cfg.Logger, errorf(library.ENOTREADY, "This replica is shutting down; send requests elsewhere."))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := a.cfg.Store.Ping(ctx); err != nil {
			a.cfg.Logger.Warn("store unreachable", "err", err)
			Error(w, r, a.cfg.Logger, errorf(library.ENOTREADY, "This replica cannot reach the library database."))
			return
		}
		if a.cfg.Ready != nil {
			if err := a.cfg.Ready(ctx); err != nil {
				a.cfg.Logger.Warn("not ready", "err", err)
				msg := "This replica cannot reach a service it depends on."
				if library.ErrorCode(err) != library.EINTERNAL {
					msg = library.ErrorMessage(err)
				}
				Error(w, r, a.cfg.Logger, errorf(library.ENOTREADY, "%s", msg))
				return
			}
		}
		Encode(w, http.StatusOK, Health{Success: true, Status: "ready", Service: a.cfg.Service, Replica: a.cfg.Replica})
	})
}
