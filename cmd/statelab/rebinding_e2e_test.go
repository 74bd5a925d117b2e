//go:build unix

package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/internal/library"
)

// TestRebindingRefused is the page of issue 22 (5) that had
// attacker.example resolve to 127.0.0.1: with Host and Origin both
// attacker.example:PORT, it signed in as the librarian and added a book,
// on both servers' replicas and through the lab's balancers. Now each
// answers 421 misdirected_request, before any sign-in, while the same
// requests under the server's own address, localhost, or an IP address
// (the balancer passes its clients' Host on) still work.
func TestRebindingRefused(t *testing.T) {
	bin := statelabBinary(t)
	lab := startLab(t, bin)

	// A balancer in front of each server's replicas, as the runner puts
	// one: round robin over both stateless replicas, and in front of one
	// stateful replica (its sessions are in its memory).
	front := map[string]string{}
	for server, reps := range map[string][]*replica{
		"stateful":  {lab.statefulA},
		"stateless": {lab.statelessA, lab.statelessB},
	} {
		lb := balancer.New(balancer.Config{Side: server})
		var backends []balancer.Backend
		for _, r := range reps {
			backends = append(backends, balancer.Backend{ID: r.id, Addr: r.addr})
		}
		lb.SetBackends(backends)
		for _, b := range backends {
			lb.MarkReady(b.ID)
		}
		ts := httptest.NewServer(lb)
		t.Cleanup(ts.Close)
		front[server] = strings.TrimPrefix(ts.URL, "http://")
	}

	type target struct {
		name, server, addr string
	}
	targets := []target{
		{"stateful replica", "stateful", lab.statefulA.addr},
		{"stateless replica", "stateless", lab.statelessA.addr},
		{"stateful balancer", "stateful", front["stateful"]},
		{"stateless balancer", "stateless", front["stateless"]},
	}
	client := newTestClient()
	send := func(addr, host, method, path, body string, auth func(*http.Request)) (int, string, *http.Response) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Origin", "http://"+host)
		req.Header.Set("Content-Type", "application/json")
		if auth != nil {
			auth(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Code string
			Data json.RawMessage
		}
		json.NewDecoder(resp.Body).Decode(&env)
		if env.Data != nil {
			resp.Header.Set("X-Test-Data", string(env.Data))
		}
		return resp.StatusCode, env.Code, resp
	}
	librarian := credentials("librarian@example.com", "bookworm")
	// addBook signs in as the librarian and adds a book, all under host.
	addBook := func(tg target, host string) (int, string) {
		t.Helper()
		var auth func(*http.Request)
		if tg.server == "stateful" {
			status, code, resp := send(tg.addr, host, "POST", "/api/auth/login", librarian, nil)
			if status != http.StatusOK {
				return status, code
			}
			var session *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "session_id" {
					session = c
				}
			}
			auth = func(r *http.Request) { r.AddCookie(session) }
		} else {
			status, code, resp := send(tg.addr, host, "POST", "/api/auth/token", librarian, nil)
			if status != http.StatusOK {
				return status, code
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal([]byte(resp.Header.Get("X-Test-Data")), &tok)
			auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.AccessToken) }
		}
		body, _ := json.Marshal(map[string]any{"title": "Rebound " + tg.name + " " + host, "author": "A. Ttacker", "copies": 1})
		status, code, _ := send(tg.addr, host, "POST", "/api/books", string(body), auth)
		return status, code
	}

	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(tg.addr)
			for _, host := range []string{"attacker.example:" + port, "attacker.example", "127.0.0.1.attacker.example:" + port} {
				if status, code := addBook(tg, host); status != http.StatusMisdirectedRequest || code != library.EMISDIRECTED {
					t.Errorf("Host %s: %d %s, want 421 %s", host, status, code, library.EMISDIRECTED)
				}
			}
			for _, host := range []string{tg.addr, "localhost:" + port} {
				if status, code := addBook(tg, host); status != http.StatusCreated {
					t.Errorf("Host %s: %d %s, want 201", host, status, code)
				}
			}
		})
	}
}
