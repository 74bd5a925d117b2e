package compare_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/labtest"
)

// newClassGuardRunner runs a --class --manual comparison in this
// process, one replica a side, with pages mounted as statelab compare
// mounts them, but pages that set no header of their own: whatever the
// answers carry, the runner put there. It returns once a student's
// request goes through the forwarder to a replica.
func newClassGuardRunner(t *testing.T) (string, *class.Class) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds statelab and runs real replica processes")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Parse([]byte("name: guard\ndescription: a class, no event\nreplicas: 1\nduration: 1m\n"), "guard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sides, err := strategy.ParsePair("memory-sticky,apikey")
	if err != nil {
		t.Fatal(err)
	}
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><p>the page at "+r.URL.Path)
	})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := compare.New(ctx, compare.Config{
		Binary: labtest.Binary(t), Scenario: sc, Sides: sides, Users: 0, Seed: 1, Think: time.Second,
		Addr: ln.Addr().String(), BalancerAddrs: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		ReportDir: filepath.Join(dir, "report"), WorkDir: filepath.Join(dir, "work"), Hold: true, Manual: true, Class: true,
		Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Dashboard: pages,
	})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, ln)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("runner: %v", err)
			}
		case <-time.After(45 * time.Second):
			t.Errorf("the runner did not stop within 45 s")
		}
	})
	return ln.Addr().String(), r.Class()
}

// classRoutes are a class runner's routes beyond the ones every runner
// has: the pages, the class's API and each side's API behind the
// forwarder. The requests carry a joined student's cookie (and the QR
// code's the teacher's), so that each route, let in, answers past its
// own checks: the standing, the QR code, and through the forwarder a
// replica's answer (401: the student has not signed in on the side).
var classRoutes = []struct {
	method, path, body string
	teacher            bool
	want               int // with the runner's own Host
}{
	{http.MethodGet, "/matrix", "", false, http.StatusOK},
	{http.MethodGet, "/join", "", false, http.StatusOK},
	{http.MethodGet, "/join?code=ABCDEF", "", false, http.StatusOK},
	{http.MethodGet, "/api/class/me", "", false, http.StatusOK},
	{http.MethodGet, "/api/class/qr.png", "", true, http.StatusOK},
	{http.MethodPost, "/api/class/join", `{"code":"ZZZZZZ","name":"mallory"}`, false, http.StatusForbidden},
	{http.MethodGet, class.SidePrefix("memory-sticky") + "/api/books", "", false, http.StatusUnauthorized},
	{http.MethodGet, class.SidePrefix("apikey") + "/api/books?q=go", "", false, http.StatusUnauthorized},
	{http.MethodPost, class.SidePrefix("memory-sticky") + "/api/auth/login", `{"email":"nobody@example.com","password":"wrong"}`, false, http.StatusUnauthorized},
}

// TestClassRoutesGuarded: a class runner's pages, class API and
// forwarder answer nothing that a page may frame (frame-ancestors 'none',
// X-Frame-Options DENY), and answer 421 to a request that reached the
// runner under another name (DNS rebinding), before a class route runs:
// a rebound page would otherwise join the class, read a student's
// standing or use the sides' APIs as the runner's own origin.
func TestClassRoutesGuarded(t *testing.T) {
	addr, cl := newClassGuardRunner(t)
	_, port, _ := net.SplitHostPort(addr)
	hc := http.DefaultClient
	join, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/api/class/join",
		strings.NewReader(`{"code":"`+cl.Code()+`","name":"ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	join.Header.Set("Content-Type", "application/json")
	join.Header.Set("Origin", "http://"+addr)
	resp, err := hc.Do(join)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("join with the class's code: %d, want 201", resp.StatusCode)
	}
	var student *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == class.StudentCookie {
			student = c
		}
	}
	if student == nil {
		t.Fatalf("join with the class's code set no %s cookie", class.StudentCookie)
	}
	for _, side := range []string{"memory-sticky", "apikey"} {
		for deadline := time.Now().Add(60 * time.Second); ; {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+class.SidePrefix(side)+"/api/books", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.AddCookie(student)
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.Header.Get(client.ReplicaHeader) != "" {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the %s side did not answer through the forwarder within 60 s: %v %v", side, resp, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, host := range []string{addr, "localhost:" + port, "attacker.example:" + port, "attacker.example"} {
		foreign := strings.HasPrefix(host, "attacker.")
		for _, rt := range classRoutes {
			var body io.Reader
			if rt.body != "" {
				body = strings.NewReader(rt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), rt.method, "http://"+addr+rt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = host
			req.AddCookie(student) // a rebound page is the runner's origin to the browser: the class cookie goes too
			if rt.teacher {
				req.Header.Set("Authorization", "Bearer "+cl.TeacherToken())
			}
			if rt.body != "" {
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Origin", "http://"+host)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if !foreign && strings.HasPrefix(rt.path, "/s/") && resp.Header.Get(client.ReplicaHeader) == "" {
				t.Errorf("%s %s: %d from no replica, want a replica's answer through the forwarder", rt.method, rt.path, resp.StatusCode)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			csp, xfo := resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Frame-Options")
			if !strings.Contains(csp, "frame-ancestors 'none'") || xfo != "DENY" {
				t.Errorf("%s %s (Host %s): %d with Content-Security-Policy %q, X-Frame-Options %q; want frame-ancestors 'none' and DENY",
					rt.method, rt.path, host, resp.StatusCode, csp, xfo)
			}
			switch {
			case foreign && resp.StatusCode != http.StatusMisdirectedRequest:
				t.Errorf("%s %s with Host %s: %d, want 421: a rebound page reached a class route", rt.method, rt.path, host, resp.StatusCode)
			case !foreign && resp.StatusCode != rt.want:
				t.Errorf("%s %s with Host %s: %d, want the route's answer, %d", rt.method, rt.path, host, resp.StatusCode, rt.want)
			}
		}
	}
}
