// Package strategy names the ways the lab can keep a sign-in: where the
// conversation state lives (process memory, a shared redis-server, the
// client's cookie, or nowhere on the server), which server serves it, and
// how the balancer in front of it routes. Every place that picks a side of a
// comparison takes these names, so "memory-sticky" means the same thing in
// statelab compare, the report, the dashboard and the matrix.
//
// A strategy also says how to deploy it: the services its replicas need
// beside them (Services: its session store's, such as a redis-server),
// and the flags and environment each replica starts with (ReplicaArgs,
// ReplicaEnv, and EnvName, the STATELAB_ rule every flag follows).
package strategy

import (
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/stateful"
)

// Servers: the subcommand a strategy's replicas run.
const (
	Stateful  = "stateful"
	Stateless = "stateless"
)

// Session stores of the stateful server (its --sessions flag): the names
// stateful.OpenStore takes.
const (
	SessionsMemory = stateful.MemoryStoreName
	SessionsRedis  = stateful.RedisStoreName
	SessionsCookie = stateful.CookieStoreName
)

// Credentials a simulated user signs in for and sends on every request.
const (
	CredentialCookie = "cookie" // a session cookie (stateful)
	CredentialAPIKey = "apikey" // an opaque API key (stateless)
	CredentialJWT    = "jwt"    // an HS256 JWT (stateless)
)

// OwnSecretsSuffix makes every replica of a strategy start with its own
// random session key or JWT secret: the classic deployment mistake, switched
// on on purpose.
const OwnSecretsSuffix = "+own-secrets"

// Strategy is one way of keeping a sign-in.
type Strategy struct {
	Name       string `json:"name"`        // e.g. "memory-sticky" or "jwt+own-secrets"
	Base       string `json:"strategy"`    // the name without the suffix
	Server     string `json:"server"`      // Stateful or Stateless
	Sessions   string `json:"sessions"`    // the stateful session store; "" when stateless
	Credential string `json:"credential"`  // what a client sends on every request
	Affinity   string `json:"affinity"`    // the balancer's policy: balancer.AffinityNone, AffinityCookie or AffinityHash
	OwnSecrets bool   `json:"own_secrets"` // every replica makes its own secret
	// Keeps names in a few words what keeps the sign-in.
	Keeps string `json:"keeps"`
	// Where says in a sentence where the sign-in lives between requests.
	Where string `json:"where"`
	// Pays says what every request pays for it.
	Pays string `json:"pays"`
	// Breaks says what makes it lose sign-ins.
	Breaks string `json:"breaks"`
	// SessionStore is what a stateful strategy's session store says of
	// itself (Store), for a page to word what a fault does to the side;
	// nil for a stateless one. Parse fills it in.
	SessionStore *Store `json:"store,omitempty"`
}

// Services returns the programs the strategy's replicas need running
// beside them, one of each shared by every replica of a side: what its
// session store needs (a redis-server for redis), nothing for the others.
// Whoever starts the replicas starts these first, and gives their
// addresses to ReplicaArgs.
func (s Strategy) Services() []stateful.Service {
	if k, ok := s.store(); ok {
		return k.Needs()
	}
	return nil
}

// NeedsRedis reports whether the strategy's replicas share a
// redis-server: whether Services holds stateful.RedisServer.
func (s Strategy) NeedsRedis() bool { return slices.Contains(s.Services(), stateful.RedisServer) }

// HoldsSessionsInProcess reports whether each replica keeps its own
// sessions, which no other replica finds, so a restart, a crash or a
// scale-in loses them.
func (s Strategy) HoldsSessionsInProcess() bool {
	k, ok := s.store()
	return ok && !k.Shared()
}

// LookServices returns an error that names the first of the strategy's
// Services not installed here (not on PATH) and how to install it, or nil
// when every one is, so a caller can skip the strategy before it starts
// anything.
func (s Strategy) LookServices() error {
	for _, svc := range s.Services() {
		if _, err := exec.LookPath(svc.Program); err != nil {
			return fmt.Errorf("%s not found on PATH; install it (Debian/Ubuntu: sudo apt-get install %s)", svc.Program, svc.Program)
		}
	}
	return nil
}

// store returns the kind of session store the strategy's replicas keep
// sessions in; none for a stateless strategy.
func (s Strategy) store() (stateful.StoreKind, bool) {
	if s.Server != Stateful {
		return stateful.StoreKind{}, false
	}
	k, err := stateful.LookupStore(s.Sessions)
	return k, err == nil // TestEveryStrategy checks that the table names only stores there are
}

// Secret is the name of the secret every replica must share (the flag and,
// with STATELAB_ and capitals, the environment variable); "" when the
// strategy has none. An API key is checked against the shared database and
// needs no secret at all, but the stateless server still signs JWTs.
func (s Strategy) Secret() string {
	if s.Server == Stateful {
		return "session-key"
	}
	return "jwt-secret"
}

var all = []Strategy{
	{
		Name: "memory", Keeps: "process memory", Server: Stateful, Sessions: SessionsMemory, Credential: CredentialCookie, Affinity: balancer.AffinityNone,
		Where:  "in the memory of the one replica that made the session",
		Pays:   "a signed session id in a cookie; a map read in the process",
		Breaks: "any request the round-robin balancer sends to another replica; a restart, crash or scale-in of its replica",
	},
	{
		Name: "memory-sticky", Keeps: "process memory", Server: Stateful, Sessions: SessionsMemory, Credential: CredentialCookie, Affinity: balancer.AffinityCookie,
		Where:  "in the memory of one replica; the balancer's routing cookie pins each client to it",
		Pays:   "a session cookie and a routing cookie; a map read in the process",
		Breaks: "a restart, crash or scale-in of its replica; new replicas get only new clients, so load does not rebalance",
	},
	{
		Name: "memory-hash", Keeps: "process memory", Server: Stateful, Sessions: SessionsMemory, Credential: CredentialCookie, Affinity: balancer.AffinityHash,
		Where:  "in the memory of one replica; a consistent-hash ring maps the balancer's " + balancer.HashKeyCookie + " cookie to it",
		Pays:   "a session cookie and the balancer's hash-key cookie; a map read in the process",
		Breaks: "a restart, crash or scale-in of its replica, and a scale-out, which remaps a share of clients to the new replica",
	},
	{
		Name: "redis", Keeps: "a shared redis-server", Server: Stateful, Sessions: SessionsRedis, Credential: CredentialCookie, Affinity: balancer.AffinityNone,
		Where:  "in one redis-server that every replica shares",
		Pays:   "a signed session id in a cookie; a network round trip to redis on every request",
		Breaks: "a restart of redis-server without persistence, which signs everyone out at once; redis down means no sign-in works",
	},
	{
		Name: "cookie", Keeps: "sealed in the cookie", Server: Stateful, Sessions: SessionsCookie, Credential: CredentialCookie, Affinity: balancer.AffinityNone,
		Where:  "in the client's cookie, encrypted and signed: the server is stateless in disguise",
		Pays:   "the whole session (member and cart) in every request, growing with the cart; a decryption per request",
		Breaks: "nothing on the server side; but logout cannot revoke a copy of the cookie, and a browser keeps at most 4096 bytes",
	},
	{
		Name: "apikey", Keeps: "an API key, checked against the shared database", Server: Stateless, Credential: CredentialAPIKey, Affinity: balancer.AffinityNone,
		Where:  "nowhere on the server between requests: each request carries an API key, checked against the shared database",
		Pays:   "a bearer key in every request and a check against the shared database (from the replica's read cache while nothing there has changed)",
		Breaks: "nothing a replica does; revoking a key takes effect at once on every replica",
	},
	{
		Name: "jwt", Keeps: "an HS256 JWT, signed with a shared secret", Server: Stateless, Credential: CredentialJWT, Affinity: balancer.AffinityNone,
		Where:  "nowhere on the server between requests: each request carries a signed JWT naming its member",
		Pays:   "the biggest credential in every request and an HMAC check; a shared secret on every replica",
		Breaks: "replicas that do not share the secret; a token cannot be revoked before it expires",
	},
}

// All returns the strategies without the +own-secrets suffix, in the order
// of the lab's table.
func All() []Strategy {
	out := slices.Clone(all)
	for i := range out {
		out[i].Base = out[i].Name
	}
	return out
}

// Balancer says in words how the strategy's balancer routes.
func (s Strategy) Balancer() string { return balancer.DescribeAffinity(s.Affinity) }

// WriteTable prints every strategy: the table, its moving parts, then what
// each keeps where, pays and breaks on.
func WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STRATEGY\tSERVER\tTHE SIGN-IN IS KEPT IN\tBALANCER")
	for _, s := range All() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Server, s.Keeps, s.Balancer())
	}
	tw.Flush()
	fmt.Fprintln(w, "\nWhat each needs beyond its replicas, its balancer and the shared database (the lesson's \"simplicity\", counted):")
	WriteParts(w, All())
	for _, s := range All() {
		fmt.Fprintf(w, "\n%s\n  where:  %s\n  pays:   %s\n  breaks: %s\n", s.Name, s.Where, s.Pays, s.Breaks)
	}
	fmt.Fprintf(w, "\nAny name + %q (e.g. jwt%s) starts every replica with its own random secret:\n"+
		"the classic deployment mistake. Signed cookies and JWTs then fail on every replica but the one\n"+
		"that signed them; API keys, checked against the shared database, do not care.\n"+
		"\nUse two of them with: statelab compare --sides memory-sticky,apikey\n", OwnSecretsSuffix, OwnSecretsSuffix)
}

// Names returns the names of All.
func Names() []string {
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name
	}
	return names
}

// Parse returns the strategy with the name, which may carry the
// +own-secrets suffix.
func Parse(name string) (Strategy, error) {
	base, own := strings.CutSuffix(name, OwnSecretsSuffix)
	for _, s := range all {
		if s.Name != base {
			continue
		}
		s.Base = s.Name
		s.SessionStore = s.Store()
		if own {
			s.Name = name
			s.OwnSecrets = true
			s.Where += "; every replica signs with its own random " + s.Secret()
			if s.Credential == CredentialAPIKey {
				s.Breaks = "nothing: an API key is checked against the shared database, not a signature"
			} else {
				s.Breaks = "any request that reaches a replica other than the one that signed its credential"
			}
		}
		return s, nil
	}
	return Strategy{}, fmt.Errorf("unknown strategy %q: use one of %s, optionally with the suffix %s (statelab strategies explains each)",
		name, strings.Join(Names(), ", "), OwnSecretsSuffix)
}

// ParseList reads a comma-separated list of strategies, each of which may
// carry the +own-secrets suffix. Empty entries (a doubled or a trailing
// comma, blanks) are skipped; a list that names no strategy, or one
// strategy twice, is an error.
func ParseList(list string) ([]Strategy, error) {
	var out []Strategy
	for name := range strings.SplitSeq(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		st, err := Parse(name)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(o Strategy) bool { return o.Name == st.Name }) {
			return nil, fmt.Errorf("strategy %s is named twice", st.Name)
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("strategies %q: name at least one of %s", list, strings.Join(Names(), ", "))
	}
	return out, nil
}

// ParsePair reads "A,B": the two strategies of a comparison, which must
// differ. It reads them as ParseList does (blanks and empty entries
// skipped, a strategy named twice refused) and wants exactly two.
func ParsePair(s string) ([2]Strategy, error) {
	list, err := ParseList(s)
	if err != nil {
		return [2]Strategy{}, err
	}
	if len(list) != 2 {
		return [2]Strategy{}, fmt.Errorf("sides %q: name two strategies separated by a comma, e.g. memory-sticky,apikey", s)
	}
	return [2]Strategy(list), nil
}
