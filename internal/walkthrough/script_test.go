//go:build unix

package walkthrough_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/labtest"
)

// needTool finds a program the script needs. On CI a missing one fails
// the test, so the script cannot silently stop being tested; elsewhere the
// test is skipped.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed, and CI is set: the curl walkthrough must run in CI", name)
		}
		t.Skipf("%s is not installed: skipping the curl walkthrough", name)
	}
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// scriptLab is what a reader of scripts/walkthrough.sh would have running:
// two replicas of each server on one database, a round-robin balancer per
// side, and (unlike a reader) a control endpoint the script's RESTART_CMD
// calls to restart the first replica of each side.
type scriptLab struct {
	env []string
}

func startScriptLab(t *testing.T, bin string) *scriptLab {
	t.Helper()
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "library.db")
	log := &labtest.Buffer{}
	sups := map[string]*supervisor.Supervisor{}
	lbs := map[string]*httptest.Server{}
	for side, env := range map[string]string{
		"stateful":  "STATELAB_SESSION_KEY=" + randomSecret(t),
		"stateless": "STATELAB_JWT_SECRET=" + randomSecret(t),
	} {
		s := supervisor.New(supervisor.Config{
			Side: side, Binary: bin, Args: []string{"--db", db, "--shutdown-timeout", "5s"},
			Env: []string{env}, Log: log, ReadyTimeout: 30 * time.Second, StopTimeout: 5 * time.Second,
		})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := s.Stop(ctx); err != nil {
				t.Errorf("stop the %s replicas: %v", side, err)
			}
		})
		if err := s.Scale(ctx, 2); err != nil {
			t.Fatalf("start the %s replicas: %v\n%s", side, err, log.String())
		}
		lb := balancer.New(balancer.Config{Side: side})
		var backends []balancer.Backend
		for _, r := range s.Replicas() {
			backends = append(backends, balancer.Backend{ID: r.ID, Addr: r.Addr})
		}
		lb.SetBackends(backends)
		for _, b := range backends {
			lb.MarkReady(b.ID)
		}
		srv := httptest.NewServer(lb)
		t.Cleanup(srv.Close)
		sups[side], lbs[side] = s, srv
	}
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/restart" {
			http.NotFound(w, r)
			return
		}
		for _, side := range []string{"stateful", "stateless"} {
			if err := sups[side].RestartInPlace(r.Context(), side+"-1"); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Write([]byte("restarted stateful-1 and stateless-1\n"))
	}))
	t.Cleanup(control.Close)

	first := func(side string) string { return "http://" + sups[side].Replicas()[0].Addr }
	return &scriptLab{env: []string{
		"STATEFUL_URL=" + first("stateful"),
		"STATELESS_URL=" + first("stateless"),
		"STATEFUL_LB_URL=" + lbs["stateful"].URL,
		"STATELESS_LB_URL=" + lbs["stateless"].URL,
		"RESTART_CMD=curl -fsS -X POST " + control.URL + "/restart",
		"DB=" + db,
		"N=20",
	}}
}

// TestCurlScript runs scripts/walkthrough.sh against real servers, with jq
// and without it, and requires it to exit 0: every status it checks was the
// one the lesson expects.
func TestCurlScript(t *testing.T) {
	needTool(t, "bash")
	needTool(t, "curl")
	bin := statelabBinary(t)
	lab := startScriptLab(t, bin)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "walkthrough.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		jq   string
	}{
		{"with jq", "jq"},
		{"without jq", "/nonexistent/jq"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.jq == "jq" {
				if _, err := exec.LookPath("jq"); err != nil {
					t.Skip("jq is not installed (the script does not need it)")
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", script)
			cmd.Dir = t.TempDir() // the script must not depend on where it is run from
			cmd.Env = append(os.Environ(), lab.env...)
			cmd.Env = append(cmd.Env, "JQ="+tt.jq)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			began := time.Now()
			err := cmd.Run()
			t.Logf("the script took %v", time.Since(began).Round(time.Millisecond))
			if err != nil {
				t.Fatalf("bash scripts/walkthrough.sh: %v\n%s", err, out.String())
			}
			s := out.String()
			for _, want := range []string{
				"ok: the server holds a cart of 2 books for this cookie",
				`"code":"session_lost"`,
				"ok: the API key and the JWT still work",
				"stateful: 5 of 10 succeeded",
				"stateless: 10 of 10 succeeded",
				"ok: the JWT is still valid",
				"All checks passed.",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("the script's output does not contain %q", want)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", s)
			}
		})
	}
}
