package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
)

// env returns a getenv that sees only vars, never the real environment.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// freeAddrs returns n distinct loopback addresses whose ports were free a
// moment ago. All are held open together so no two are the same.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// newTestClient returns a client that opens a new connection per request,
// so no request lands on a connection to a process that has since stopped.
func newTestClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestRunUsage(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help", "help"} {
		t.Run(arg, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(t.Context(), []string{"statelab", arg}, env(nil), nil, &stdout, &stderr); err != nil {
				t.Fatalf("run(statelab %s) = %v, want nil", arg, err)
			}
			for _, want := range []string{"statelab stateful", "statelab stateless", "STATELAB_ADDR"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("usage on stdout does not mention %q; got:\n%s", want, stdout.String())
				}
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr = %q, want nothing: asked-for help is not an error", stderr.String())
			}
		})
	}
}

func TestRunNeedsAKnownSubcommand(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"none", []string{"statelab"}, "name a subcommand"},
		{"unknown", []string{"statelab", "frobnicate"}, `unknown subcommand "frobnicate"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, env(nil), nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(stderr.String(), "Usage:") {
				t.Errorf("stderr does not show the usage; got:\n%s", stderr.String())
			}
		})
	}
}

func TestRunServerHelpListsEveryFlagWithItsEnvironmentVariable(t *testing.T) {
	common := map[string]string{
		"addr":             "STATELAB_ADDR",
		"db":               "STATELAB_DB",
		"read-cache":       "STATELAB_READ_CACHE",
		"replica-id":       "STATELAB_REPLICA_ID",
		"log-level":        "STATELAB_LOG_LEVEL",
		"log-format":       "STATELAB_LOG_FORMAT",
		"shutdown-timeout": "STATELAB_SHUTDOWN_TIMEOUT",

		"sign-in-rate":           "STATELAB_SIGN_IN_RATE",
		"sign-in-burst":          "STATELAB_SIGN_IN_BURST",
		"sign-in-addr-rate":      "STATELAB_SIGN_IN_ADDR_RATE",
		"sign-in-addr-burst":     "STATELAB_SIGN_IN_ADDR_BURST",
		"sign-in-limit-loopback": "STATELAB_SIGN_IN_LIMIT_LOOPBACK",
	}
	for _, tt := range []struct {
		cmd      string
		own      map[string]string
		notOwned []string
	}{
		{"stateful", map[string]string{
			"session-key":    "STATELAB_SESSION_KEY",
			"secure-cookies": "STATELAB_SECURE_COOKIES",
			"session-ttl":    "STATELAB_SESSION_TTL",
			"sessions":       "STATELAB_SESSIONS",
			"redis-addr":     "STATELAB_REDIS_ADDR",
			"redis-password": "STATELAB_REDIS_PASSWORD",
		}, []string{"jwt-secret", "jwt-ttl", "insecure-email-only-keys"}},
		{"stateless", map[string]string{
			"jwt-secret":               "STATELAB_JWT_SECRET",
			"jwt-ttl":                  "STATELAB_JWT_TTL",
			"insecure-email-only-keys": "STATELAB_INSECURE_EMAIL_ONLY_KEYS",
		}, []string{"session-key", "secure-cookies", "session-ttl", "sessions", "redis-addr", "redis-password"}},
	} {
		t.Run(tt.cmd, func(t *testing.T) {
			const secret = "never-print-this-secret-0123456789abcdef"
			getenv := env(map[string]string{"STATELAB_SESSION_KEY": secret, "STATELAB_JWT_SECRET": secret, "STATELAB_REDIS_PASSWORD": secret})
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"statelab", tt.cmd, "-h"}, getenv, nil, &stdout, &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run(statelab %s -h) = %v, want flag.ErrHelp", tt.cmd, err)
			}
			help := stderr.String()
			if strings.Contains(help, secret) {
				t.Errorf("help shows a secret taken from the environment:\n%s", help)
			}

			// Split the help into one chunk per flag: "  -name ..." up to the next.
			chunks := map[string]string{}
			starts := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatchIndex(help, -1)
			for i, s := range starts {
				end := len(help)
				if i+1 < len(starts) {
					end = starts[i+1][0]
				}
				chunks[help[s[2]:s[3]]] = help[s[0]:end]
			}
			for name, chunk := range chunks {
				if !strings.Contains(chunk, "[$STATELAB_") {
					t.Errorf("flag -%s names no environment variable:\n%s", name, chunk)
				}
			}
			want := map[string]string{}
			for _, m := range []map[string]string{common, tt.own} {
				for name, env := range m {
					want[name] = env
				}
			}
			for name, envName := range want {
				chunk, ok := chunks[name]
				switch {
				case !ok:
					t.Errorf("help does not list -%s; got:\n%s", name, help)
				case !strings.Contains(chunk, "[$"+envName+"]"):
					t.Errorf("help of -%s does not name [$%s]:\n%s", name, envName, chunk)
				}
			}
			for _, name := range tt.notOwned {
				if _, ok := chunks[name]; ok {
					t.Errorf("statelab %s lists -%s, a flag of the other server", tt.cmd, name)
				}
			}
		})
	}
}

func TestParseServerFlagsEnvironmentAndCommandLine(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef" // 32 bytes
	for _, tt := range []struct {
		name string
		cmd  string
		args []string
		env  map[string]string
		get  func(serverConfig) any
		want any
	}{
		{"stateful default addr", "stateful", nil, nil,
			func(c serverConfig) any { return c.addr }, "127.0.0.1:5001"},
		{"stateless default addr", "stateless", nil, nil,
			func(c serverConfig) any { return c.addr }, "127.0.0.1:5002"},
		{"addr from env", "stateful", nil, map[string]string{"STATELAB_ADDR": "127.0.0.1:7000"},
			func(c serverConfig) any { return c.addr }, "127.0.0.1:7000"},
		{"command line beats env", "stateful", []string{"--addr", "127.0.0.1:7001"}, map[string]string{"STATELAB_ADDR": "127.0.0.1:7000"},
			func(c serverConfig) any { return c.addr }, "127.0.0.1:7001"},
		{"single-dash flag beats env", "stateless", []string{"-replica-id=flag"}, map[string]string{"STATELAB_REPLICA_ID": "env"},
			func(c serverConfig) any { return c.replica }, "flag"},
		{"duration from env", "stateful", nil, map[string]string{"STATELAB_SHUTDOWN_TIMEOUT": "3s"},
			func(c serverConfig) any { return c.shutdownTimeout }, 3 * time.Second},
		{"bool from env", "stateful", nil, map[string]string{"STATELAB_SECURE_COOKIES": "true"},
			func(c serverConfig) any { return c.secureCookies }, true},
		{"log level from env", "stateless", nil, map[string]string{"STATELAB_LOG_LEVEL": "debug"},
			func(c serverConfig) any { return c.logLevel }, slog.LevelDebug},
		{"session key from env", "stateful", nil, map[string]string{"STATELAB_SESSION_KEY": key},
			func(c serverConfig) any { return c.sessionKey }, key},
		{"jwt secret from env", "stateless", nil, map[string]string{"STATELAB_JWT_SECRET": key},
			func(c serverConfig) any { return c.jwtSecret }, key},
		{"sessions in memory by default", "stateful", nil, nil,
			func(c serverConfig) any { return c.sessions }, "memory"},
		{"sessions from env", "stateful", nil, map[string]string{"STATELAB_SESSIONS": "cookie"},
			func(c serverConfig) any { return c.sessions }, "cookie"},
		{"sessions from the command line", "stateful", []string{"--sessions", "redis"}, map[string]string{"STATELAB_SESSIONS": "cookie"},
			func(c serverConfig) any { return c.sessions }, "redis"},
		{"default redis addr", "stateful", nil, nil,
			func(c serverConfig) any { return c.redisAddr }, "127.0.0.1:6379"},
		{"redis addr from env", "stateful", nil, map[string]string{"STATELAB_REDIS_ADDR": "10.0.0.7:6380"},
			func(c serverConfig) any { return c.redisAddr }, "10.0.0.7:6380"},
		{"read cache exact by default", "stateless", nil, nil,
			func(c serverConfig) any { return c.readCache.Mode() }, library.ReadCacheExact},
		{"read cache alone", "stateless", []string{"--read-cache"}, nil,
			func(c serverConfig) any { return c.readCache.Mode() }, library.ReadCacheExact},
		{"read cache false", "stateless", []string{"--read-cache=false"}, nil,
			func(c serverConfig) any { return c.readCache.Mode() }, library.ReadCacheOff},
		{"read cache notify on postgres", "stateless", []string{"--db", "postgres://statelab@127.0.0.1:1/statelab", "--read-cache=notify"}, nil,
			func(c serverConfig) any { return c.readCache.Mode() }, library.ReadCacheNotify},
		{"read cache from env", "stateful", nil, map[string]string{"STATELAB_READ_CACHE": "false"},
			func(c serverConfig) any { return c.readCache.Mode() }, library.ReadCacheOff},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c, err := parseServerFlags(tt.cmd, tt.args, env(tt.env), &stderr)
			if err != nil {
				t.Fatalf("parseServerFlags(%s, %q) = %v\n%s", tt.cmd, tt.args, err, stderr.String())
			}
			if got := tt.get(c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	// An already-cancelled context: should a case wrongly pass the checks,
	// run fails at once instead of serving forever.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name    string
		cmd     string
		args    []string
		env     map[string]string
		wantErr []string
	}{
		{"bad duration in env", "stateful", nil, map[string]string{"STATELAB_SHUTDOWN_TIMEOUT": "abc"},
			[]string{"STATELAB_SHUTDOWN_TIMEOUT", "abc"}},
		{"bad bool in env", "stateful", nil, map[string]string{"STATELAB_SECURE_COOKIES": "maybe"},
			[]string{"STATELAB_SECURE_COOKIES", "maybe"}},
		{"bad log level in env", "stateless", nil, map[string]string{"STATELAB_LOG_LEVEL": "loud"},
			[]string{"STATELAB_LOG_LEVEL", "loud"}},
		{"short session key", "stateful", []string{"--session-key", "tooshort"}, nil,
			[]string{"session-key", "8 bytes", "at least 32"}},
		{"short session key from env", "stateful", nil, map[string]string{"STATELAB_SESSION_KEY": "short"},
			[]string{"session-key", "5 bytes"}},
		{"short jwt secret", "stateless", []string{"--jwt-secret", "short"}, nil,
			[]string{"jwt-secret", "5 bytes"}},
		{"bad log format", "stateful", []string{"--log-format", "xml"}, nil,
			[]string{"log-format", "xml"}},
		{"a database password on the command line", "stateless", []string{"--db", "postgres://statelab:hunter2@127.0.0.1:1/statelab"}, nil,
			[]string{"-db", "holds a password", "PGPASSWORD", "STATELAB_DB"}},
		{"negative duration", "stateful", []string{"--session-ttl", "-1s"}, nil,
			[]string{"negative"}},
		{"notify read cache on SQLite", "stateless", []string{"--read-cache=notify"}, nil,
			[]string{"-read-cache notify", "PostgreSQL", "SQLite"}},
		{"bad read cache", "stateless", []string{"--read-cache=sometimes"}, nil,
			[]string{"sometimes", "notify"}},
		{"sub-second session ttl", "stateful", []string{"--session-ttl", "500ms"}, nil,
			[]string{"session-ttl", "at least 1s"}},
		{"zero jwt ttl", "stateless", []string{"--jwt-ttl", "0"}, nil,
			[]string{"jwt-ttl", "at least 1s"}},
		{"sub-second jwt ttl from env", "stateless", nil, map[string]string{"STATELAB_JWT_TTL": "500ms"},
			[]string{"jwt-ttl", "500ms"}},
		{"stray argument", "stateless", []string{"extra"}, nil,
			[]string{`unexpected argument "extra"`}},
		{"the other server's flag", "stateless", []string{"--session-key", "0123456789abcdef0123456789abcdef"}, nil,
			[]string{"not defined", "session-key"}},
		{"unknown session store", "stateful", []string{"--sessions", "disk"}, nil,
			[]string{`-sessions "disk"`, "memory, redis, cookie"}},
		{"unknown session store from env", "stateful", nil, map[string]string{"STATELAB_SESSIONS": "Redis"},
			[]string{`-sessions "Redis"`}},
		{"sessions on the stateless server", "stateless", []string{"--sessions", "redis"}, nil,
			[]string{"not defined", "sessions"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"statelab", tt.cmd, "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "library.db")}, tt.args...)
			var stdout, stderr bytes.Buffer
			err := run(ctx, args, env(tt.env), nil, &stdout, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil, want an error", args[1:])
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("run(%q) = %q, want it to mention %q", args[1:], err, want)
				}
			}
		})
	}
}

// waitHealthy polls url until it answers 200, failing the test when run
// returns first or the deadline passes.
func waitHealthy(t *testing.T, client *http.Client, url string, runErr <-chan error, log *labtest.Buffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 15s (last: %v)\nlog:\n%s", url, err, log)
		}
		select {
		case err := <-runErr:
			t.Fatalf("run returned %v before %s was healthy\nlog:\n%s", err, url, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	for _, name := range []string{"stateful", "stateless"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := freeAddrs(t, 1)[0]
			// The address and log format come from the environment, the
			// replica id and log format also from the command line, which wins.
			getenv := env(map[string]string{
				"STATELAB_ADDR":       addr,
				"STATELAB_REPLICA_ID": "from-env",
				"STATELAB_LOG_FORMAT": "text",
			})
			args := []string{"statelab", name,
				"--db", filepath.Join(t.TempDir(), "library.db"),
				"--replica-id", "from-flag",
				"--log-format", "json",
				"--shutdown-timeout", "5s",
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr labtest.Buffer
			runErr := make(chan error, 1)
			go func() { runErr <- run(ctx, args, getenv, nil, &stdout, &stderr) }()

			client := newTestClient()
			base := "http://" + addr
			waitHealthy(t, client, base+"/api/health", runErr, &stderr)

			resp, err := client.Get(base + "/api/ready")
			if err != nil {
				t.Fatalf("GET /api/ready: %v", err)
			}
			var ready struct {
				Status, Service, Replica string
			}
			err = json.NewDecoder(resp.Body).Decode(&ready)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("GET /api/ready: decode: %v", err)
			}
			if resp.StatusCode != http.StatusOK || ready.Status != "ready" || ready.Service != name || ready.Replica != "from-flag" {
				t.Errorf("GET /api/ready = %d %+v, want 200 ready from %s replica from-flag", resp.StatusCode, ready, name)
			}
			if got := resp.Header.Get("X-Statelab-Replica"); got != "from-flag" {
				t.Errorf("X-Statelab-Replica = %q, want from-flag", got)
			}

			cancel()
			select {
			case err := <-runErr:
				if err != nil {
					t.Fatalf("run after cancel = %v, want nil (a graceful stop)\nlog:\n%s", err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("run did not return within 15s of cancel\nlog:\n%s", stderr.String())
			}

			// Every log line is JSON (the flag beat the environment's
			// "text") and names the server and replica.
			log := stderr.String()
			for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Errorf("log line is not JSON: %q", line)
					continue
				}
				if rec["server"] != name || rec["replica"] != "from-flag" {
					t.Errorf("log line lacks server=%s replica=from-flag: %q", name, line)
				}
			}
			// With no secret given, the server warns which variable to set.
			wantEnv := map[string]string{"stateful": "STATELAB_SESSION_KEY", "stateless": "STATELAB_JWT_SECRET"}[name]
			for _, want := range []string{wantEnv, `"msg":"listening"`, `"msg":"stopped"`} {
				if !strings.Contains(log, want) {
					t.Errorf("log does not mention %s:\n%s", want, log)
				}
			}
			if _, err := client.Get(base + "/api/health"); err == nil {
				t.Errorf("%s still answers after run returned", base)
			}
		})
	}
}

// TestRunStatefulWithRedisSessions runs the stateful server with
// -sessions redis on a private redis-server: a session made there lives in
// redis, and while redis is down the replica is not ready and answers 503
// session_store_unavailable.
func TestRunStatefulWithRedisSessions(t *testing.T) {
	t.Parallel()
	rs := labtest.Redis(t)
	addr := freeAddrs(t, 1)[0]
	args := []string{"statelab", "stateful", "--addr", addr, "--db", filepath.Join(t.TempDir(), "library.db"),
		"--sessions", "redis", "--replica-id", "r1"}
	getenv := env(map[string]string{
		"STATELAB_REDIS_ADDR":     rs.Addr(),
		"STATELAB_REDIS_PASSWORD": rs.Password(),
		"STATELAB_SESSION_KEY":    "redis-run-test-session-key-0123456789",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr labtest.Buffer
	runErr := make(chan error, 1)
	go func() { runErr <- run(ctx, args, getenv, nil, &stdout, &stderr) }()
	client := newTestClient()
	base := "http://" + addr
	waitHealthy(t, client, base+"/api/health", runErr, &stderr)

	call := func(method, path, body string, cookie *http.Cookie) (int, string, *http.Cookie) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var env struct{ Code string }
		json.NewDecoder(resp.Body).Decode(&env)
		var set *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "session_id" {
				set = c
			}
		}
		return resp.StatusCode, env.Code, set
	}

	status, _, cookie := call("POST", "/api/auth/login", `{"email":"alice@example.com","password":"wonderland"}`, nil)
	if status != http.StatusOK || cookie == nil {
		t.Fatalf("login: got %d and cookie %v, want 200 and a cookie\nlog:\n%s", status, cookie, stderr.String())
	}
	if status, code, _ := call("GET", "/api/me", "", cookie); status != http.StatusOK {
		t.Errorf("GET /api/me: got %d %q, want 200", status, code)
	}
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	if status, code, _ := call("GET", "/api/me", "", cookie); status != http.StatusServiceUnavailable || code != "session_store_unavailable" {
		t.Errorf("GET /api/me with redis down: got %d %q, want 503 session_store_unavailable", status, code)
	}
	if status, code, _ := call("GET", "/api/ready", "", nil); status != http.StatusServiceUnavailable || code != "not_ready" {
		t.Errorf("GET /api/ready with redis down: got %d %q, want 503 not_ready", status, code)
	}

	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("run after cancel = %v, want nil\nlog:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return within 15s of cancel")
	}
	if log := stderr.String(); strings.Contains(log, "redis-run-test-session-key") {
		t.Errorf("the log shows the session key:\n%s", log)
	}
}

// TestRunCompareHelp: statelab compare -h lists every built-in scenario
// with its one-line description, and the flags a class needs with their
// environment variables.
func TestRunCompareHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"statelab", "compare", "-h"}, env(nil), nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(statelab compare -h) = %v, want flag.ErrHelp", err)
	}
	help := stderr.String()
	for _, sc := range scenario.Builtins() {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(sc.Name) + `\s+` + regexp.QuoteMeta(sc.Description) + `$`).MatchString(help) {
			t.Errorf("compare -h does not list scenario %s with its description %q:\n%s", sc.Name, sc.Description, help)
		}
	}
	for _, want := range []string{"[$STATELAB_MANUAL]", "[$STATELAB_SIDES]", "default: the scenario's own sides, else memory-sticky,apikey", "/api/control/next"} {
		if !strings.Contains(help, want) {
			t.Errorf("compare -h does not say %q:\n%s", want, help)
		}
	}
}
