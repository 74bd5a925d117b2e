package strategy_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/stateful"
)

func TestEnvName(t *testing.T) {
	for _, tt := range []struct{ flag, want string }{
		{"addr", "STATELAB_ADDR"},
		{"session-key", "STATELAB_SESSION_KEY"},
		{"insecure-email-only-keys", "STATELAB_INSECURE_EMAIL_ONLY_KEYS"},
		{"redis-addr", "STATELAB_REDIS_ADDR"},
		{stateful.RedisServer.SecretFlag, "STATELAB_REDIS_PASSWORD"},
	} {
		if got := strategy.EnvName(tt.flag); got != tt.want {
			t.Errorf("EnvName(%q) = %q, want %q", tt.flag, got, tt.want)
		}
	}
}

func TestReplicaArgs(t *testing.T) {
	redisAt := map[stateful.Service]strategy.Endpoint{stateful.RedisServer: {Addr: "127.0.0.1:7001", Secret: "redis-password-0123456789"}}
	tests := []struct {
		strategy string
		cfg      strategy.ReplicaConfig
		want     string
	}{
		{"memory-sticky", strategy.ReplicaConfig{DB: "/w/library.db", ShutdownTimeout: 5 * time.Second},
			"--db /w/library.db --log-format json --shutdown-timeout 5s --sessions memory"},
		{"redis", strategy.ReplicaConfig{DB: "/w/library.db", ShutdownTimeout: 5 * time.Second, NoReadCache: true, Services: redisAt},
			"--db /w/library.db --log-format json --shutdown-timeout 5s --read-cache=false --sessions redis --redis-addr 127.0.0.1:7001"},
		{"redis", strategy.ReplicaConfig{DB: "db"},
			"--db db --log-format json --sessions redis"},
		{"cookie", strategy.ReplicaConfig{DB: "db", Services: redisAt},
			"--db db --log-format json --sessions cookie"},
		{"jwt", strategy.ReplicaConfig{DB: "db", NoReadCache: true, Services: redisAt},
			"--db db --log-format json --read-cache=false"},
		{"apikey", strategy.ReplicaConfig{DB: "postgres://db", ReadCache: library.ReadCacheNotify},
			"--db postgres://db --log-format json --read-cache=notify"},
		{"apikey", strategy.ReplicaConfig{DB: "db", ReadCache: library.ReadCacheExact},
			"--db db --log-format json"},
	}
	for _, tt := range tests {
		st, err := strategy.Parse(tt.strategy)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(st.ReplicaArgs(tt.cfg), " ")
		if got != tt.want {
			t.Errorf("%s.ReplicaArgs(%+v):\n got %s\nwant %s", tt.strategy, tt.cfg, got, tt.want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "key") || strings.Contains(got, "password") {
			t.Errorf("%s: a secret in argv, which ps shows to everyone: %s", tt.strategy, got)
		}
	}
}

func TestReplicaEnv(t *testing.T) {
	tests := []struct {
		strategy, env string
		empty         bool
	}{
		{"memory", "STATELAB_SESSION_KEY", false},
		{"jwt", "STATELAB_JWT_SECRET", false},
		{"apikey", "STATELAB_JWT_SECRET", false},
		{"cookie+own-secrets", "STATELAB_SESSION_KEY", true},
		{"jwt+own-secrets", "STATELAB_JWT_SECRET", true},
	}
	for _, tt := range tests {
		st, err := strategy.Parse(tt.strategy)
		if err != nil {
			t.Fatal(err)
		}
		env := st.ReplicaEnv(strategy.ReplicaConfig{})
		if len(env) != 1 {
			t.Fatalf("%s: ReplicaEnv() = %q, want one variable", tt.strategy, env)
		}
		name, value, _ := strings.Cut(env[0], "=")
		if name != tt.env {
			t.Errorf("%s: ReplicaEnv() sets %s, want %s", tt.strategy, name, tt.env)
		}
		if tt.empty != (value == "") {
			t.Errorf("%s: ReplicaEnv() = %q: empty %v, want %v", tt.strategy, env[0], value == "", tt.empty)
		}
		if !tt.empty {
			if len(value) < 32 {
				t.Errorf("%s: a secret of %d bytes; the servers want at least 32", tt.strategy, len(value))
			}
			if again := st.ReplicaEnv(strategy.ReplicaConfig{}); again[0] == env[0] {
				t.Errorf("%s: two sides got the same secret", tt.strategy)
			}
		}
	}
}

// TestReplicaEnvHandsOverServicePasswords: a service's password reaches
// the replicas that need the service in their environment, and no others.
func TestReplicaEnvHandsOverServicePasswords(t *testing.T) {
	c := strategy.ReplicaConfig{DB: "db", Services: map[stateful.Service]strategy.Endpoint{
		stateful.RedisServer: {Addr: "127.0.0.1:7001", Secret: "redis-password-0123456789"},
	}}
	for _, tt := range []struct {
		strategy string
		want     bool
	}{
		{"redis", true},
		{"redis+own-secrets", true},
		{"memory", false},
		{"cookie", false},
		{"jwt", false},
	} {
		st, err := strategy.Parse(tt.strategy)
		if err != nil {
			t.Fatal(err)
		}
		env := st.ReplicaEnv(c)
		got := slices.Contains(env, "STATELAB_REDIS_PASSWORD=redis-password-0123456789")
		if got != tt.want {
			t.Errorf("%s: ReplicaEnv = %q: holds the redis password %v, want %v", tt.strategy, env, got, tt.want)
		}
		if args := strings.Join(st.ReplicaArgs(c), " "); strings.Contains(args, "redis-password-0123456789") {
			t.Errorf("%s: the redis password is in argv: %s", tt.strategy, args)
		}
	}
	st, _ := strategy.Parse("redis")
	if env := st.ReplicaEnv(strategy.ReplicaConfig{DB: "db"}); len(env) != 1 {
		t.Errorf("redis without a started service: ReplicaEnv = %q, want only the session key", env)
	}
}

// TestStoreFacts checks what each stateful strategy's store says of itself
// in the JSON the dashboard words its sides from, and that a stateless
// strategy sends none.
func TestStoreFacts(t *testing.T) {
	tests := []struct {
		name string
		want string // the "store" member of the strategy's JSON; "" for none
	}{
		{"memory", `{"name":"memory","services":[],"shared":false,"revocable":true}`},
		{"redis", `{"name":"redis","services":["redis-server"],"shared":true,"revocable":true}`},
		{"cookie", `{"name":"cookie","services":[],"shared":true,"revocable":false}`},
		{"apikey", ""},
	}
	for _, tt := range tests {
		st, err := strategy.Parse(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Name  string          `json:"name"`
			Store json.RawMessage `json:"store"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Name != tt.name || string(got.Store) != tt.want {
			t.Errorf("%s: name %q, store %s, want %s", tt.name, got.Name, got.Store, tt.want)
		}
	}
}
