package stateful

import (
	"fmt"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"github.com/statelab/statelab/internal/redisserver"
)

// Description is what a kind of session store says about itself: the
// server words its answers with it, and whoever starts the replicas asks it
// what to start beside them. Its answers depend on the kind alone, never on
// an opened store, so each store's methods take no receiver name, and a nil
// pointer of the store's type answers them as well as an open store does.
type Description interface {
	// Name is the store's name: the -sessions value, and the store label
	// of the statelab_session_store_seconds metric.
	Name() string
	// Where finishes the sentence "Your session is kept ..." for a
	// session the store keeps for replica.
	Where(replica string) string
	// Lost tells a client whose genuine cookie names a session the store
	// (on replica) does not hold why it may have gone, and what to do.
	Lost(replica string) string
	// Shared reports whether every replica given the same key finds the
	// sessions any of them saved, so that a replica's restart, crash or
	// scale-in loses none.
	Shared() bool
	// Revocable reports whether a logout makes every copy of the session's
	// cookie worthless at once.
	Revocable() bool
	// Needs names the programs the store needs running beside the
	// replicas, shared by all of them; none for a store that keeps its
	// sessions in the process or in the cookie.
	Needs() []Service
}

// Service is a program a session store needs running beside the replicas,
// one that every replica of a deployment shares. Whoever starts the
// replicas starts it first and hands each replica its address with the
// AddrFlag flag, and its password through the environment variable of the
// SecretFlag flag (argv is readable by every local user).
type Service struct {
	// Program is the executable, e.g. "redis-server".
	Program string
	// AddrFlag is the stateful server's flag that takes the service's
	// host:port, without its leading dash.
	AddrFlag string
	// SecretFlag is the stateful server's flag that takes the password the
	// service wants, without its leading dash; it is to be set through its
	// environment variable, never on the command line.
	SecretFlag string
}

// RedisServer is the redis-server the redis store keeps sessions in.
var RedisServer = Service{Program: redisserver.Program, AddrFlag: "redis-addr", SecretFlag: "redis-password"}

// StoreConfig is what OpenStore opens a store with. A store uses what it
// needs of it and ignores the rest.
type StoreConfig struct {
	// Key signs the session cookie (and, for the cookie store, seals the
	// session): every replica given the same key accepts the same cookies.
	Key []byte
	// Cookie sets the cookie's attributes; its MaxAge is also how long a
	// session is kept after its last Save.
	Cookie sessions.Options
	// RedisAddr is the host:port of the RedisServer, for a store that
	// Needs it, and RedisPassword the password it wants (none if empty).
	RedisAddr     string
	RedisPassword string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// StoreKind is one kind of session store the stateful server can keep
// sessions in: its Description and how to open one.
type StoreKind struct {
	Description
	// Usage is one line for the -sessions flag's help.
	Usage string
	open  func(StoreConfig) SessionStore
}

// storeKinds are the session stores OpenStore can open, in the order the
// help lists them. A new store is its own file, with a Description, plus a
// line here.
var storeKinds = []StoreKind{
	{(*MemoryStore)(nil), "this process's memory; the cookie holds a signed id (lost on restart and on other replicas)",
		func(c StoreConfig) SessionStore { return NewMemoryStore(c.Key, c.Cookie, c.Now) }},
	{(*RedisStore)(nil), "a redis server every replica shares (-" + RedisServer.AddrFlag + "); the cookie holds a signed id",
		func(c StoreConfig) SessionStore { return NewRedisStore(c.RedisAddr, c.RedisPassword, c.Key, c.Cookie) }},
	{(*CookieStore)(nil), "the whole session encrypted into the cookie; nothing kept on the server, logout cannot revoke a copy",
		func(c StoreConfig) SessionStore { return NewCookieStore(c.Key, c.Cookie, MaxCookieBytes, c.Now) }},
}

// StoreKinds returns every kind of session store, in the order of the
// -sessions help.
func StoreKinds() []StoreKind { return append([]StoreKind(nil), storeKinds...) }

// StoreNames returns the names of StoreKinds.
func StoreNames() []string {
	names := make([]string, len(storeKinds))
	for i, k := range storeKinds {
		names[i] = k.Name()
	}
	return names
}

// LookupStore returns the kind of session store with the name, or an error
// that lists the names there are.
func LookupStore(name string) (StoreKind, error) {
	for _, k := range storeKinds {
		if k.Name() == name {
			return k, nil
		}
	}
	return StoreKind{}, fmt.Errorf("unknown session store %q: use %s", name, strings.Join(StoreNames(), ", "))
}

// OpenStore opens a session store of the named kind. It does not connect
// to a service the store needs: a replica may start while that is down,
// and reports itself not ready (the store is a Pinger) until it is back.
// A store that holds connections is an io.Closer.
func OpenStore(kind string, c StoreConfig) (SessionStore, error) {
	k, err := LookupStore(kind)
	if err != nil {
		return nil, err
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return k.open(c), nil
}
