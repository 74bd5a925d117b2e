package compare_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/httpserve"
)

// newControlRunner returns a runner that is prepared but not run (no
// replica is started; pause and resume need none) and serves its handler
// on a loopback address, the way Run does, with timeouts t.
func newControlRunner(t *testing.T, timeouts httpserve.Timeouts) (*compare.Runner, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load("quick")
	if err != nil {
		t.Fatal(err)
	}
	sides, err := strategy.ParsePair("memory,apikey")
	if err != nil {
		t.Fatal(err)
	}
	r, err := compare.New(t.Context(), compare.Config{
		Binary: "/nonexistent/statelab", Scenario: sc, Sides: sides, Users: 1, Seed: 1, Think: time.Second,
		Addr: ln.Addr().String(), BalancerAddrs: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		ReportDir: filepath.Join(t.TempDir(), "report"), WorkDir: t.TempDir(), Stdout: io.Discard,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeouts: timeouts,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserve.New(r.Handler(), timeouts)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return r, ln.Addr().String()
}

// TestControlOnlyFromTheRunnersOwnOrigin: the live controls crash
// replicas, so a page on another origin must not press them, nor one that
// reached the runner under another name (DNS rebinding: Host is then
// attacker.example, though the connection goes to 127.0.0.1).
func TestControlOnlyFromTheRunnersOwnOrigin(t *testing.T) {
	_, addr := newControlRunner(t, httpserve.Timeouts{})
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name       string
		host       string
		header     map[string]string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "own address", host: addr, wantStatus: 200},
		{name: "localhost", host: "localhost:" + port, wantStatus: 200},
		{name: "LOCALHOST.", host: "LOCALHOST.:" + port, wantStatus: 200},
		{name: "[::1]", host: "[::1]:" + port, wantStatus: 200},
		{name: "same-origin dashboard", host: addr, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + addr}, wantStatus: 200},
		{name: "JSON body", host: addr, body: `{}`, header: map[string]string{"Content-Type": "application/json"}, wantStatus: 200},
		{name: "rebound name", host: "attacker.example:" + port, wantStatus: 421, wantCode: "misdirected_request"},
		{name: "rebound name without port", host: "attacker.example", wantStatus: 421, wantCode: "misdirected_request"},
		{name: "localhost on another port", host: "localhost:1", wantStatus: 421, wantCode: "misdirected_request"},
		{name: "another IP", host: "10.0.0.1:" + port, wantStatus: 421, wantCode: "misdirected_request"},
		{name: "cross-site page", host: addr, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantCode: "forbidden"},
		{name: "same-site page on another port", host: addr, header: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}, wantStatus: 403, wantCode: "forbidden"},
		{name: "foreign Origin, no Sec-Fetch-Site", host: addr, header: map[string]string{"Origin": "http://attacker.example"}, wantStatus: 403, wantCode: "forbidden"},
		{name: "text/plain form", host: addr, body: "a=b", header: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415, wantCode: "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, action := range []string{"pause", "resume"} {
				req, err := http.NewRequestWithContext(t.Context(), "POST", "http://"+addr+"/api/control/"+action, strings.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Host = tt.host
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var env struct {
					Success bool   `json:"success"`
					Code    string `json:"code"`
					Message string `json:"message"`
				}
				err = json.NewDecoder(resp.Body).Decode(&env)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("%s: body is not JSON: %v", action, err)
				}
				if resp.StatusCode != tt.wantStatus || env.Code != tt.wantCode || env.Message == "" {
					t.Errorf("%s with Host %q: got %d %q %q, want %d %q and a message", action, tt.host, resp.StatusCode, env.Code, env.Message, tt.wantStatus, tt.wantCode)
				}
			}
		})
	}
}

// TestServerTimeouts: the runner's (and the balancers') server cuts off a
// body trickled a byte at a time and closes an idle keep-alive, with the
// short timeouts a test can wait for.
func TestServerTimeouts(t *testing.T) {
	const limit = 300 * time.Millisecond
	_, addr := newControlRunner(t, httpserve.Timeouts{ReadHeader: limit, Read: limit, Write: time.Second, Idle: limit})

	t.Run("trickled body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/control/pause HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", addr)
		// Reading: until the server closes the connection.
		closed := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, conn)
			closed <- err
		}()
		start := time.Now()
		for i := range 100 {
			select {
			case <-closed:
				if took := time.Since(start); took > 10*limit {
					t.Errorf("connection closed after %v, want about %v", took, limit)
				}
				return
			case <-time.After(limit / 3):
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return // the server is gone: cut off
			}
			if i == 30 {
				t.Fatalf("still accepting a trickled body after %v, %d bytes; want it cut off after %v", time.Since(start), i, limit)
			}
		}
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("got %d, close=%v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(20 * limit))
		_, err = br.ReadByte()
		if !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection after %v: got %v, want it closed by the server (EOF)", time.Since(start), err)
		}
		if took := time.Since(start); took > 10*limit {
			t.Errorf("idle connection closed after %v, want about %v", took, limit)
		}
	})
}

// TestControlNextAndClientRestart: Next answers 409 when the run plays its
// own clock (or nothing waits), and a client-restart refuses a share that
// is not a part of the users.
func TestControlNextAndClientRestart(t *testing.T) {
	_, addr := newControlRunner(t, httpserve.Timeouts{})
	tests := []struct {
		path       string
		wantStatus int
		wantCode   string
		wantSays   string
	}{
		{"/api/control/next", 409, "conflict", "start it with --manual"},
		{"/api/control/client-restart?share=0", 400, "bad_request", "share must be a number more than 0 and at most 1"},
		{"/api/control/client-restart?share=2", 400, "bad_request", "share must be"},
		{"/api/control/client-restart?share=half", 400, "bad_request", "share must be"},
		{"/api/control/explode", 404, "not_found", "client-restart"},
	}
	for _, tt := range tests {
		resp, err := http.Post("http://"+addr+tt.path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: body is not JSON: %v", tt.path, err)
		}
		if resp.StatusCode != tt.wantStatus || env.Code != tt.wantCode || !strings.Contains(env.Message, tt.wantSays) {
			t.Errorf("POST %s: got %d %q %q, want %d %q saying %q", tt.path, resp.StatusCode, env.Code, env.Message, tt.wantStatus, tt.wantCode, tt.wantSays)
		}
	}
}
