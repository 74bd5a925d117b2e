//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// signInTry is one sign-in's answer, as a guesser or a member sees it.
type signInTry struct {
	status     int
	code       string
	retryAfter string
	device     *http.Cookie // the device cookie the answer set, if any
}

// trySignIn posts a sign-in body to path on r, with the device cookie when
// one is given.
func trySignIn(t *testing.T, r *replica, path, body string, device *http.Cookie) signInTry {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+r.addr+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if device != nil {
		req.AddCookie(device)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&env)
	got := signInTry{status: resp.StatusCode, code: env.Code, retryAfter: resp.Header.Get("Retry-After")}
	for _, c := range resp.Cookies() {
		if c.Name == api.DeviceCookie {
			got.device = c
		}
	}
	return got
}

func credentials(email, password string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return string(b)
}

// TestSignInFailuresLimitedAcrossReplicas is the guesser of issue 22 (3)
// against two real replicas of each server on one database: malformed
// sign-ins spend nothing; wrong passwords are evaluated SignInFreeFailures
// times in all, whichever replica they go to, then refused with 429 and
// Retry-After before any bcrypt; the account's owner, signing in from a
// device it signed in from before, still gets in on either replica, while
// a client that never signed in as the account waits like the guesser.
// An unknown email is answered the same way.
func TestSignInFailuresLimitedAcrossReplicas(t *testing.T) {
	bin := statelabBinary(t)
	lab := startLab(t, bin)
	for _, tt := range []struct {
		name    string
		a, b    *replica
		path    string
		ok      int
		account string
		secret  string
	}{
		{"stateful", lab.statefulA, lab.statefulB, "/api/auth/login", http.StatusOK, "alice@example.com", "wonderland"},
		{"stateless", lab.statelessA, lab.statelessB, "/api/auth/token", http.StatusOK, "bob@example.com", "builder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			replicas := []*replica{tt.a, tt.b}
			// The owner signs in once, before the attack, and keeps the
			// device cookie that answer set.
			first := trySignIn(t, tt.a, tt.path, credentials(tt.account, tt.secret), nil)
			if first.status != tt.ok || first.device == nil {
				t.Fatalf("the owner's first sign-in: %d %s, device cookie %v; want %d and a device cookie", first.status, first.code, first.device, tt.ok)
			}

			// 60 malformed sign-ins: no password, an empty one, no email.
			malformed := []string{`{"email":"` + tt.account + `"}`, credentials(tt.account, ""), credentials("", "guess"), credentials("not an email", "guess")}
			for i := range 60 {
				got := trySignIn(t, replicas[i%2], tt.path, malformed[i%len(malformed)], nil)
				if got.status != http.StatusBadRequest {
					t.Fatalf("malformed sign-in %d: %d %s, want 400", i+1, got.status, got.code)
				}
			}

			// guess sends wrong passwords, one replica then the other,
			// until one is refused, and returns how many were evaluated
			// and the refusal.
			guesses := 0
			guess := func(account string) (int, signInTry) {
				evaluated := 0
				for range 40 {
					guesses++
					got := trySignIn(t, replicas[guesses%2], tt.path, credentials(account, fmt.Sprintf("guess-%d", guesses)), nil)
					if got.status != http.StatusUnauthorized {
						return evaluated, got
					}
					evaluated++
				}
				return evaluated, signInTry{}
			}
			checkRefused := func(account string, evaluated, want int, refused signInTry) {
				t.Helper()
				if evaluated != want || refused.status != http.StatusTooManyRequests || refused.code != library.ETOOMANYREQUESTS {
					t.Fatalf("%s: %d guesses evaluated over two replicas, then %d %s; want %d, then 429 %s",
						account, evaluated, refused.status, refused.code, want, library.ETOOMANYREQUESTS)
				}
				if s, err := strconv.Atoi(refused.retryAfter); err != nil || s < 1 {
					t.Errorf("%s: Retry-After %q, want whole seconds", account, refused.retryAfter)
				}
			}
			n, refused := guess(tt.account)
			checkRefused(tt.account, n, library.SignInFreeFailures, refused)
			// Waiting out the backoff buys one guess, and a longer wait:
			// 1 s, then 2 s, then 4 s, in which the rest runs.
			for range 2 {
				s, _ := strconv.Atoi(refused.retryAfter)
				time.Sleep(time.Duration(s) * time.Second)
				n, refused = guess(tt.account)
				checkRefused(tt.account, n, 1, refused)
			}

			// Anyone but the owner waits, right password or not: nothing
			// tells a guesser's right guess from a wrong one now.
			if got := trySignIn(t, tt.b, tt.path, credentials(tt.account, tt.secret), nil); got.status != http.StatusTooManyRequests {
				t.Errorf("the right password from a client that never signed in: %d %s, want 429", got.status, got.code)
			}
			// A forged device cookie is no device.
			v := []byte(first.device.Value)
			i := len(v) - 5 // a character of the MAC
			v[i] = map[bool]byte{true: 'B', false: 'A'}[v[i] == 'A']
			forged := &http.Cookie{Name: api.DeviceCookie, Value: string(v)}
			if got := trySignIn(t, tt.a, tt.path, credentials(tt.account, tt.secret), forged); got.status != http.StatusTooManyRequests {
				t.Errorf("a forged device cookie: %d %s, want 429", got.status, got.code)
			}
			// The owner's device is trusted on both replicas.
			for _, r := range replicas {
				got := trySignIn(t, r, tt.path, credentials(tt.account, tt.secret), first.device)
				if got.status != tt.ok {
					t.Errorf("the owner, from the device it signed in from, on %s: %d %s, want %d", r.id, got.status, got.code, tt.ok)
				}
			}

			// An email no member has is answered the same way.
			nobody := "nobody-" + tt.name + "@example.com"
			n, refused = guess(nobody)
			checkRefused(nobody, n, library.SignInFreeFailures, refused)
		})
	}
}
