package strategy

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/stateful"
)

// EnvPrefix begins the name of every environment variable a statelab flag
// falls back to.
const EnvPrefix = "STATELAB_"

// EnvName returns the environment variable a statelab flag falls back to:
// EnvPrefix and the flag's name in capitals, with "_" for "-"
// (session-key: STATELAB_SESSION_KEY).
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ReplicaConfig is what the replicas of a strategy are started with,
// besides the strategy itself.
type ReplicaConfig struct {
	// DB is the SQLite file every replica of every strategy shares.
	DB string
	// NoReadCache starts the replicas with --read-cache=false.
	NoReadCache bool
	// ReadCache, unless NoReadCache is set, chooses the read cache's mode
	// (--read-cache); the zero value leaves the server's default, exact.
	ReadCache library.ReadCache
	// ShutdownTimeout is how long a replica may drain after SIGTERM;
	// 0 leaves the server's default.
	ShutdownTimeout time.Duration
	// Services holds where each service the strategy needs (Services), as
	// started for its side, listens and the password it wants. A service
	// with no Endpoint here is left to the server's default address.
	Services map[stateful.Service]Endpoint
}

// Endpoint is how a replica reaches a service started for its side.
type Endpoint struct {
	// Addr is the service's host:port, handed over in argv
	// (Service.AddrFlag).
	Addr string
	// Secret is the password the service wants, handed over in the
	// environment (Service.SecretFlag); none when empty.
	Secret string
}

// ReplicaArgs returns the flags every replica of the strategy runs with,
// after its subcommand (the Server). They log JSON, for whoever reads
// the replicas' log. Secrets are not among them: argv is readable by every
// local user (ps), so they go through ReplicaEnv.
func (s Strategy) ReplicaArgs(c ReplicaConfig) []string {
	args := []string{"--db", c.DB, "--log-format", "json"}
	if c.ShutdownTimeout > 0 {
		args = append(args, "--shutdown-timeout", c.ShutdownTimeout.String())
	}
	switch {
	case c.NoReadCache:
		args = append(args, "--read-cache=false")
	case c.ReadCache.Mode() != library.ReadCacheExact:
		args = append(args, "--read-cache="+c.ReadCache.String())
	}
	if s.Server == Stateful {
		args = append(args, "--sessions", s.Sessions)
	}
	for _, svc := range s.Services() {
		if e, ok := c.Services[svc]; ok {
			args = append(args, "--"+svc.AddrFlag, e.Addr)
		}
	}
	return args
}

// ReplicaEnv returns the environment that gives the strategy's replicas
// their secret (Secret) and the password of each service in c.Services
// they need. The secret is a fresh random one, which every replica of a
// side must share, so call it once per side. A request that fails on
// another replica then fails because the state is missing, never because a
// signature did not match — unless the strategy is one of the
// +own-secrets mistakes, whose replicas each make a random one: the empty
// value then overrides a secret the caller's own environment may hold.
func (s Strategy) ReplicaEnv(c ReplicaConfig) []string {
	name := EnvName(s.Secret())
	var env []string
	if s.OwnSecrets {
		env = []string{name + "="}
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
		env = []string{name + "=" + hex.EncodeToString(b)}
	}
	for _, svc := range s.Services() {
		if e, ok := c.Services[svc]; ok && e.Secret != "" {
			env = append(env, EnvName(svc.SecretFlag)+"="+e.Secret)
		}
	}
	return env
}
