package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/time/rate"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/store"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

// serverConfig is what the flags of a server subcommand say.
type serverConfig struct {
	addr            string
	db              string
	replica         string
	logLevel        slog.Level
	logFormat       string
	shutdownTimeout time.Duration
	exitWithStdin   bool

	readCache library.ReadCache

	sessionKey    string // stateful
	secureCookies bool
	sessionTTL    time.Duration
	sessions      string
	redisAddr     string
	redisPassword string

	jwtSecret     string // stateless
	jwtTTL        time.Duration
	emailOnlyKeys bool

	signIn api.SignInLimits
}

// readCacheUsage is -read-cache's help: what each mode trades.
const readCacheUsage = "how this process answers repeated reads (a book, a page of books, an API key) from its memory, given with = (-read-cache=notify; a bare -read-cache is true): " +
	"`mode` true (exact: an answer is served only while nothing has committed since it was read, by any process, so never stale; " +
	"SQLite reads that in shared memory for free, PostgreSQL asks the server, one round trip per hit, so there it caches pages only and reads a book or an API key every time), " +
	"false (ask the database every time, to measure what the cache saves), " +
	"or notify (PostgreSQL only: books, API keys and pages answered from memory with no round trip until PostgreSQL notifies a change (LISTEN/NOTIFY); " +
	"after another replica's write, stale until its notification arrives, so a key revoked there is accepted here meanwhile; every read misses while the listener is not connected); default true"

// keySweepEvery is how often a server forgets the idempotency keys older
// than library.IdempotencyKeyTTL.
const keySweepEvery = 10 * time.Minute

// parseServerFlags reads the flags (and their environment variables) of
// the server subcommand name, stateful or stateless, and checks them.
func parseServerFlags(name string, args []string, getenv func(string) string, stderr io.Writer) (serverConfig, error) {
	c := serverConfig{}
	fs := newFlagSet("statelab "+name, getenv, stderr)
	defAddr := "127.0.0.1:5001"
	if name == "stateless" {
		defAddr = "127.0.0.1:5002"
	}
	fs.String(&c.addr, "addr", defAddr, "`host:port` to listen on (port 0 picks a free one)")
	fs.String(&c.db, "db", "./data/library.db", "the shared resource state: a SQLite `file` (created and seeded when missing) or a postgres://user@host:port/database URL (migrated and seeded when new; the password through PGPASSWORD, or the whole URL through $"+strategy.EnvName("db")+", never on the command line)")
	fs.Var(&c.readCache, "read-cache", readCacheUsage)
	fs.String(&c.replica, "replica-id", strconv.Itoa(os.Getpid()), "this process's replica `id`, in logs, metrics and the "+api.ReplicaHeader+" header")
	fs.Func("log-level", "log `level`: debug, info, warn or error (default info)", c.logLevel.UnmarshalText)
	fs.String(&c.logFormat, "log-format", "text", "log `format`: text or json")
	fs.Duration(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish after SIGTERM")
	fs.Bool(&c.exitWithStdin, "exit-with-stdin", false, "shut down gracefully, as on SIGTERM, when standard input closes: the comparison runner holds a pipe to every replica and closes it to stop the replica (on every OS: Windows has no SIGTERM for a child), and the kernel closes it when the runner dies, so no replica outlives it")
	def := api.DefaultSignInLimits()
	var accountRate, addrRate float64
	fs.Float64(&accountRate, "sign-in-rate", float64(def.AccountRate), "sign-ins per second allowed per account on this replica, from clients the account does not trust yet (429 too_many_requests with Retry-After beyond it); failed sign-ins are limited per account across replicas besides, in the database")
	fs.Int(&c.signIn.AccountBurst, "sign-in-burst", def.AccountBurst, "sign-ins per account allowed at once before -sign-in-rate applies")
	fs.Float64(&addrRate, "sign-in-addr-rate", float64(def.AddrRate), "sign-ins per second allowed per client address (IPv4 or IPv6 /64) on this replica")
	fs.Int(&c.signIn.AddrBurst, "sign-in-addr-burst", def.AddrBurst, "sign-ins per client address allowed at once before -sign-in-addr-rate applies")
	fs.Bool(&c.signIn.LimitLoopback, "sign-in-limit-loopback", false, "apply the per-address limit to loopback clients too; off by default because the simulated users and every request through the lab's balancers come from 127.0.0.1 (the per-account limit always applies)")
	switch name {
	case "stateful":
		fs.Secret(&c.sessionKey, "session-key", "`secret` that signs session cookies, at least 32 bytes; give every replica the same one (default: random, so cookies die with the process)")
		fs.Bool(&c.secureCookies, "secure-cookies", false, "mark the session cookie Secure (only sent over HTTPS)")
		fs.Duration(&c.sessionTTL, "session-ttl", 24*time.Hour, "how long a session is kept after its last change (at least 1s)")
		fs.String(&c.sessions, "sessions", "memory", "the `store` that keeps sessions between requests:"+storeList())
		fs.String(&c.redisAddr, stateful.RedisServer.AddrFlag, "127.0.0.1:6379", "`host:port` of the redis server that keeps sessions with -sessions redis")
		fs.Secret(&c.redisPassword, stateful.RedisServer.SecretFlag, "`password` of that redis server (its requirepass), if it wants one; set it in the environment, not here (ps shows the command line to every user)")
	case "stateless":
		fs.Secret(&c.jwtSecret, "jwt-secret", "`secret` that signs JWTs, at least 32 bytes; give every replica the same one (default: random, so tokens die with the process)")
		fs.Duration(&c.jwtTTL, "jwt-ttl", 15*time.Minute, "how long an issued JWT is valid")
		fs.Bool(&c.emailOnlyKeys, "insecure-email-only-keys", false, "UNSAFE, for the seed lesson only: POST "+stateless.GenerateKeyRoute+" gives a key for an email alone and registers unknown emails without a password, so anyone who knows an email gets that account, and the answers tell which accounts exist. Never on a shared machine")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.signIn.AccountRate, c.signIn.AddrRate = rate.Limit(accountRate), rate.Limit(addrRate)
	if accountRate <= 0 || addrRate <= 0 || c.signIn.AccountBurst < 1 || c.signIn.AddrBurst < 1 {
		return c, errors.New("sign-in rates must be positive and bursts at least 1")
	}
	if name == "stateful" && !slices.Contains(stateful.StoreNames(), c.sessions) {
		return c, fmt.Errorf("-sessions %q: use %s", c.sessions, strings.Join(stateful.StoreNames(), ", "))
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, fmt.Errorf("-log-format %q: use text or json", c.logFormat)
	}
	if err := store.CheckReadCache(c.db, c.readCache); err != nil {
		return c, fmt.Errorf("-read-cache %s: %w", c.readCache, err)
	}
	if store.HasPassword(c.db) && getenv(strategy.EnvName("db")) != c.db {
		// argv is readable by every local user (ps).
		return c, fmt.Errorf("-db: the URL holds a password, and the command line shows it to every user of this machine; give the password through PGPASSWORD, or the whole URL through $%s", strategy.EnvName("db"))
	}
	if c.sessionTTL < 0 || c.jwtTTL < 0 || c.shutdownTimeout < 0 {
		return c, errors.New("durations must not be negative")
	}
	if name == "stateless" && c.jwtTTL < time.Second {
		// A JWT's expiry is in whole seconds: a shorter TTL issues tokens
		// that are already expired, which would look like a lesson.
		return c, fmt.Errorf("-jwt-ttl %s: use at least 1s", c.jwtTTL)
	}
	if name == "stateful" && c.sessionTTL < time.Second {
		// The cookie's Max-Age is in whole seconds, and 0 would mean
		// "never expires": a sub-second TTL cannot say what it means.
		return c, fmt.Errorf("-session-ttl %s: use at least 1s", c.sessionTTL)
	}
	for _, s := range []struct{ flag, value string }{{"session-key", c.sessionKey}, {"jwt-secret", c.jwtSecret}} {
		if s.value != "" && len(s.value) < 32 {
			return c, fmt.Errorf("-%s is %d bytes; use at least 32 (e.g. openssl rand -hex 32)", s.flag, len(s.value))
		}
	}
	return c, nil
}

// storeList lists the session stores with their one-line usage, for -h.
func storeList() string {
	var b strings.Builder
	for _, k := range stateful.StoreKinds() {
		fmt.Fprintf(&b, "\n  %-7s %s", k.Name(), k.Usage)
	}
	return b.String()
}

// runServer runs one replica of the stateful or stateless server until ctx
// is cancelled, then drains it.
func runServer(ctx context.Context, name string, args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) error {
	c, err := parseServerFlags(name, args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, c.logFormat, c.logLevel).With("server", name, "replica", c.replica)

	ctx, stdinClosed, cancel := watchStdin(ctx, c.exitWithStdin, stdin)
	defer cancel()

	// Every replica sweeps the idempotency keys past their day, until the
	// database closes.
	db, err := store.Open(ctx, c.db, store.Options{ReadCache: c.readCache, KeySweep: keySweepEvery, Logger: logger})
	if err != nil {
		return fmt.Errorf("open database %s: %w", store.Describe(c.db), err)
	}
	defer db.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prometheus.WrapRegistererWith(prometheus.Labels{"server": name, "replica": c.replica}, reg).MustRegister(store.CacheCollectors(db)...)
	// The secret that signs what the server hands out (session cookies or
	// JWTs) also signs, through a key derived from it, the device tokens
	// of the sign-in limits: replicas that share the one share the other.
	secretFlag, secretValue := "session-key", c.sessionKey
	if name == "stateless" {
		secretFlag, secretValue = "jwt-secret", c.jwtSecret
	}
	secret, err := secretOrRandom(secretValue, secretFlag, logger)
	if err != nil {
		return err
	}
	readiness := &api.Readiness{}
	cfg := api.Config{
		Replica: c.replica, Store: db, Logger: logger, Registry: reg, Readiness: readiness,
		SignIn: api.NewSignInLimiter(c.signIn, time.Now).CountFailures(db, api.DeviceKey(secret)),
	}
	var handler http.Handler
	if name == "stateful" {
		h, closeStore, err := statefulHandler(c, cfg, secret, logger)
		if err != nil {
			return err
		}
		defer closeStore()
		handler = h
	} else {
		handler = statelessHandler(c, cfg, secret, logger)
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another statelab running? pick another port with -addr)", c.addr, err)
	}
	srv := &http.Server{
		Handler:           api.GuardHost(c.addr, logger, handler),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening", "addr", "http://"+ln.Addr().String(), "db", store.Describe(c.db), "pid", os.Getpid())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	select {
	case <-stdinClosed:
		logger.Info("standard input closed: the runner asks this replica to stop, or is gone")
	default:
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", c.shutdownTimeout)
	readiness.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// statefulHandler opens the session store -sessions names and returns the
// stateful server on it, its cookies signed with key, and the function that
// closes the store.
func statefulHandler(c serverConfig, cfg api.Config, key []byte, logger *slog.Logger) (http.Handler, func(), error) {
	cookie := sessions.Options{
		Path: "/", MaxAge: int(c.sessionTTL.Seconds()), HttpOnly: true, Secure: c.secureCookies, SameSite: http.SameSiteLaxMode,
	}
	store, err := stateful.OpenStore(c.sessions, stateful.StoreConfig{Key: key, Cookie: cookie, RedisAddr: c.redisAddr, RedisPassword: c.redisPassword, Now: time.Now})
	if err != nil {
		return nil, nil, err
	}
	closeStore := func() {}
	if cl, ok := store.(io.Closer); ok {
		closeStore = func() { cl.Close() }
	}
	attrs := []any{"store", store.Name(), "kept", store.Where(c.replica)}
	if slices.Contains(store.Needs(), stateful.RedisServer) {
		attrs = append(attrs, "redis_addr", c.redisAddr)
	}
	logger.Info("session store", attrs...)
	return stateful.NewServer(cfg, store), closeStore, nil
}

// statelessHandler returns the stateless server, its JWTs signed with
// secret (-jwt-secret).
func statelessHandler(c serverConfig, cfg api.Config, secret []byte, logger *slog.Logger) http.Handler {
	var opts []stateless.Option
	if c.emailOnlyKeys {
		logger.Warn("-insecure-email-only-keys is on: an email alone gets an API key and registers an account without a password; anyone who knows an email can act as that member. Use it only to show the seed's original flow, never on a shared machine",
			"env", strategy.EnvName("insecure-email-only-keys"))
		opts = append(opts, stateless.InsecureEmailOnlyKeys())
	}
	return stateless.NewServer(cfg, stateless.NewTokens(secret, c.jwtTTL, time.Now), time.Now, opts...)
}

// watchStdin returns a context that ends when stdin closes, if exit is
// set, and a channel closed at that moment. The runner holds the write end
// of this pipe and closes it to ask for a graceful stop, the one request a
// child can be sent on every OS; however the runner ends, even by SIGKILL,
// the kernel closes it too, and the replica follows.
func watchStdin(ctx context.Context, exit bool, stdin io.Reader) (context.Context, <-chan struct{}, context.CancelFunc) {
	closed := make(chan struct{})
	if !exit {
		return ctx, closed, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		if stdin != nil {
			_, _ = io.Copy(io.Discard, stdin)
		}
		close(closed)
		cancel()
	}()
	return ctx, closed, cancel
}

// secretOrRandom returns the configured secret, or a random one with a
// warning that says what that costs.
func secretOrRandom(secret, flagName string, logger *slog.Logger) ([]byte, error) {
	if secret != "" {
		return []byte(secret), nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make random %s: %w", flagName, err)
	}
	logger.Warn("no -"+flagName+" given: using a random one, so other replicas and a restarted process will not accept what this one signs",
		"env", strategy.EnvName(flagName))
	return b, nil
}
