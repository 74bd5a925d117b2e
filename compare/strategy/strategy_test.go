package strategy_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/stateful"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name                          string
		server, sessions, cred, affin string
		own                           bool
		redis, inProcess              bool
	}{
		{"memory", strategy.Stateful, strategy.SessionsMemory, strategy.CredentialCookie, balancer.AffinityNone, false, false, true},
		{"memory-sticky", strategy.Stateful, strategy.SessionsMemory, strategy.CredentialCookie, balancer.AffinityCookie, false, false, true},
		{"memory-hash", strategy.Stateful, strategy.SessionsMemory, strategy.CredentialCookie, balancer.AffinityHash, false, false, true},
		{"redis", strategy.Stateful, strategy.SessionsRedis, strategy.CredentialCookie, balancer.AffinityNone, false, true, false},
		{"cookie", strategy.Stateful, strategy.SessionsCookie, strategy.CredentialCookie, balancer.AffinityNone, false, false, false},
		{"apikey", strategy.Stateless, "", strategy.CredentialAPIKey, balancer.AffinityNone, false, false, false},
		{"jwt", strategy.Stateless, "", strategy.CredentialJWT, balancer.AffinityNone, false, false, false},
		{"jwt+own-secrets", strategy.Stateless, "", strategy.CredentialJWT, balancer.AffinityNone, true, false, false},
		{"memory-sticky+own-secrets", strategy.Stateful, strategy.SessionsMemory, strategy.CredentialCookie, balancer.AffinityCookie, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := strategy.Parse(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != tt.name || s.Server != tt.server || s.Sessions != tt.sessions || s.Credential != tt.cred || s.Affinity != tt.affin || s.OwnSecrets != tt.own {
				t.Errorf("got %+v", s)
			}
			if got := s.NeedsRedis(); got != tt.redis {
				t.Errorf("NeedsRedis() = %v, want %v", got, tt.redis)
			}
			if got := s.HoldsSessionsInProcess(); got != tt.inProcess {
				t.Errorf("HoldsSessionsInProcess() = %v, want %v", got, tt.inProcess)
			}
			if base, _ := strings.CutSuffix(tt.name, strategy.OwnSecretsSuffix); s.Base != base {
				t.Errorf("Base = %q, want %q", s.Base, base)
			}
			if s.Where == "" || s.Pays == "" || s.Breaks == "" || s.Keeps == "" {
				t.Errorf("a strategy must say where, what it pays and what breaks it: %+v", s)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, name := range []string{"", "stateful", "Memory", "jwt+own", "+own-secrets", "apikey+own-secrets+own-secrets"} {
		if _, err := strategy.Parse(name); err == nil {
			t.Errorf("Parse(%q): no error", name)
		} else if !strings.Contains(err.Error(), "memory-sticky") {
			t.Errorf("Parse(%q): the error should list the names: %v", name, err)
		}
	}
}

func TestParsePair(t *testing.T) {
	tests := []struct {
		in      string
		want    [2]string
		wantErr string
	}{
		{in: "memory-sticky,apikey", want: [2]string{"memory-sticky", "apikey"}},
		{in: "redis, memory-sticky", want: [2]string{"redis", "memory-sticky"}},
		{in: "jwt,jwt+own-secrets", want: [2]string{"jwt", "jwt+own-secrets"}},
		{in: "jwt,jwt", wantErr: "strategy jwt is named twice"},
		{in: "jwt,", wantErr: "two strategies"},
		{in: " jwt , , apikey ", want: [2]string{"jwt", "apikey"}},
		{in: "jwt", wantErr: "two strategies"},
		{in: "jwt,apikey,memory", wantErr: "two strategies"},
		{in: "jwt,nope", wantErr: "unknown strategy"},
	}
	for _, tt := range tests {
		got, err := strategy.ParsePair(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePair(%q) error = %v, want one saying %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePair(%q): %v", tt.in, err)
			continue
		}
		if got[0].Name != tt.want[0] || got[1].Name != tt.want[1] {
			t.Errorf("ParsePair(%q) = %s,%s, want %s,%s", tt.in, got[0].Name, got[1].Name, tt.want[0], tt.want[1])
		}
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "memory-sticky,apikey", want: []string{"memory-sticky", "apikey"}},
		{in: " redis , jwt+own-secrets ", want: []string{"redis", "jwt+own-secrets"}},
		// Empty entries are skipped, wherever they are.
		{in: "jwt,,apikey", want: []string{"jwt", "apikey"}},
		{in: "jwt,", want: []string{"jwt"}},
		{in: ",jwt", want: []string{"jwt"}},
		{in: "jwt, ,apikey,", want: []string{"jwt", "apikey"}},
		// A list of nothing but empty entries names no strategy.
		{in: "", wantErr: "name at least one"},
		{in: ",", wantErr: "name at least one"},
		{in: " , ,", wantErr: "name at least one"},
		{in: "jwt,carrier-pigeon", wantErr: `unknown strategy "carrier-pigeon"`},
		{in: "apikey,jwt,apikey", wantErr: "strategy apikey is named twice"},
	}
	for _, tt := range tests {
		got, err := strategy.ParseList(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseList(%q) error = %v, want one saying %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseList(%q): %v", tt.in, err)
			continue
		}
		var names []string
		for _, st := range got {
			names = append(names, st.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("ParseList(%q) = %v, want %v", tt.in, names, tt.want)
		}
	}
}

func TestWriteTableNamesEveryStrategy(t *testing.T) {
	var b bytes.Buffer
	strategy.WriteTable(&b)
	for _, name := range strategy.Names() {
		if !strings.Contains(b.String(), "\n"+name+" ") && !strings.Contains(b.String(), "\n"+name+"\n") {
			t.Errorf("the table does not name %s:\n%s", name, b.String())
		}
	}
	if !strings.Contains(b.String(), strategy.OwnSecretsSuffix) {
		t.Error("the table does not explain the +own-secrets suffix")
	}
}

func TestEveryStrategyNamesAStoreThereIs(t *testing.T) {
	for _, st := range strategy.All() {
		_, err := stateful.LookupStore(st.Sessions)
		switch st.Server {
		case strategy.Stateful:
			if err != nil {
				t.Errorf("%s: %v", st.Name, err)
			}
		case strategy.Stateless:
			if st.Sessions != "" {
				t.Errorf("%s: a stateless strategy keeps no sessions, got %q", st.Name, st.Sessions)
			}
		default:
			t.Errorf("%s: unknown server %q", st.Name, st.Server)
		}
	}
}

func TestServices(t *testing.T) {
	for _, st := range strategy.All() {
		want := []stateful.Service(nil)
		if st.Name == "redis" {
			want = []stateful.Service{stateful.RedisServer}
		}
		if got := st.Services(); !slices.Equal(got, want) {
			t.Errorf("%s: Services() = %v, want %v", st.Name, got, want)
		}
	}
}

// TestHashStrategySaysWhatTheRingHashes: the report, the matrix and
// statelab strategies print Where; a hash strategy's must name the key the
// balancer's ring really hashes (balancer.HashKeyCookie), not the session
// cookie, which cannot work (see HashKeyCookie).
func TestHashStrategySaysWhatTheRingHashes(t *testing.T) {
	for _, s := range strategy.All() {
		if s.Affinity != balancer.AffinityHash {
			continue
		}
		if !strings.Contains(s.Where, balancer.HashKeyCookie) || strings.Contains(s.Where, "session cookie") {
			t.Errorf("%s: Where = %q, want it to name the %s cookie the ring hashes, not the session cookie", s.Name, s.Where, balancer.HashKeyCookie)
		}
	}
}

// TestParts checks the moving parts each strategy's own description adds
// up to: what a deployment runs, shares and keeps beyond its replicas.
func TestParts(t *testing.T) {
	for _, tt := range []struct {
		name                       string
		count                      int
		services, secrets          string
		keepsState, restartLoses   bool
		serviceRestartLosesSession bool
	}{
		{"memory-sticky", 2, "", "session-key", true, true, false},
		{"redis", 4, "redis-server", "session-key,redis-password", true, false, true},
		{"cookie", 1, "", "session-key", false, false, false},
		{"apikey", 1, "", "", true, false, false},
		{"jwt", 1, "", "jwt-secret", false, false, false},
	} {
		st, err := strategy.Parse(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		p := st.Parts()
		if got := strings.Join(p.Services, ","); got != tt.services {
			t.Errorf("%s: services %q, want %q", tt.name, got, tt.services)
		}
		if got := strings.Join(p.Secrets, ","); got != tt.secrets {
			t.Errorf("%s: secrets %q, want %q", tt.name, got, tt.secrets)
		}
		if got := len(p.State) > 0; got != tt.keepsState {
			t.Errorf("%s: state %q, want some: %v", tt.name, p.State, tt.keepsState)
		}
		if got := p.ReplicaRestartLoses != "nothing"; got != tt.restartLoses {
			t.Errorf("%s: a replica restart loses %q", tt.name, p.ReplicaRestartLoses)
		}
		if got := p.ServiceRestartLoses != ""; got != tt.serviceRestartLosesSession {
			t.Errorf("%s: a service restart loses %q", tt.name, p.ServiceRestartLoses)
		}
		if p.Count() != tt.count {
			t.Errorf("%s: %d moving parts, want %d", tt.name, p.Count(), tt.count)
		}
	}
	var b strings.Builder
	strategy.WriteTable(&b)
	if !strings.Contains(b.String(), "SECRETS TO SHARE") {
		t.Error("statelab strategies does not print the moving parts")
	}
}
