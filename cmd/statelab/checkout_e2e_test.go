//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// shopper is a stateful client that keeps its session cookie as the server
// re-sets it (the cookie store re-seals it at every cart write).
type shopper struct {
	t       *testing.T
	r       *replica
	session *http.Cookie
}

type shopAnswer struct {
	status   int
	code     string
	replayed bool
	data     json.RawMessage
}

func (s *shopper) do(method, path, body, key string) shopAnswer {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, "http://"+s.r.addr+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(api.IdempotencyKeyHeader, key)
	}
	if s.session != nil {
		req.AddCookie(s.session)
	}
	resp, err := s.r.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "session_id" {
			s.session = c
		}
	}
	var env struct {
		Code string
		Data json.RawMessage
	}
	json.NewDecoder(resp.Body).Decode(&env)
	return shopAnswer{status: resp.StatusCode, code: env.Code, replayed: resp.Header.Get(api.ReplayedHeader) == "true", data: env.Data}
}

func (s *shopper) must(method, path, body, key string, want int) shopAnswer {
	s.t.Helper()
	a := s.do(method, path, body, key)
	if a.status != want {
		s.t.Fatalf("%s %s (key %q) = %d %s, want %d", method, path, key, a.status, a.code, want)
	}
	return a
}

func (s *shopper) cart() []int64 {
	s.t.Helper()
	var c struct {
		Items []struct {
			BookID int64 `json:"book_id"`
		} `json:"items"`
	}
	a := s.must("GET", "/api/cart", "", "", http.StatusOK)
	json.Unmarshal(a.data, &c)
	ids := []int64{}
	for _, it := range c.Items {
		ids = append(ids, it.BookID)
	}
	return ids
}

func (s *shopper) borrows() int {
	s.t.Helper()
	var recs []struct {
		Returned bool `json:"returned"`
	}
	json.Unmarshal(s.must("GET", "/api/borrows", "", "", http.StatusOK).data, &recs)
	out := 0
	for _, r := range recs {
		if !r.Returned {
			out++
		}
	}
	return out
}

// TestCheckoutKeyNamesTheCart is issue 22 (7) on real stateful replicas,
// one keeping sessions in memory and one sealing them in the cookie: a key
// reused for a checkout after the cart changed replayed the old 201 and
// borrowed nothing (and after a return, emptied the cart with no loan).
// Now it is 422 idempotency_key_reused and the cart stays, while the retry
// of the checkout, which finds its cart emptied, still gets its answer.
func TestCheckoutKeyNamesTheCart(t *testing.T) {
	bin := statelabBinary(t)
	db := filepath.Join(t.TempDir(), "library.db")
	addrs := freeAddrs(t, 2)
	key := []string{"--db", db, "--session-key", "checkout-e2e-session-key-0123456789abcdef"}
	for i, sessions := range []string{"memory", "cookie"} {
		r := newReplica(t, bin, "stateful", "stateful-"+sessions, addrs[i], append(key, "--sessions", sessions)...)
		r.waitReady(t)
		t.Run(sessions, func(t *testing.T) {
			s := &shopper{t: t, r: r}
			email := []string{"alice@example.com", "bob@example.com"}[i]
			password := []string{"wonderland", "builder"}[i]
			s.must("POST", "/api/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), "", http.StatusOK)
			x, y, z := int64(11+10*i), int64(12+10*i), int64(13+10*i)
			add := func(id int64) {
				s.must("POST", "/api/cart/items", fmt.Sprintf(`{"book_id":%d}`, id), "", http.StatusCreated)
			}
			add(x)
			add(y)
			first := s.must("POST", "/api/cart/checkout", "", "k1", http.StatusCreated)
			var lent []struct {
				ID     int64 `json:"id"`
				BookID int64 `json:"book_id"`
			}
			if err := json.Unmarshal(first.data, &lent); err != nil || len(lent) != 2 {
				t.Fatalf("checkout: %s", first.data)
			}
			// The retry finds the cart emptied, and gets the answer.
			if again := s.must("POST", "/api/cart/checkout", "", "k1", http.StatusCreated); !again.replayed {
				t.Error("the retry of the checkout: not replayed")
			}

			// The cart changes; the key is sent again.
			add(z)
			if got := s.do("POST", "/api/cart/checkout", "", "k1"); got.status != http.StatusUnprocessableEntity || got.code != library.EKEYREUSED {
				t.Errorf("the key again with another cart: %d %s (replayed %v), want 422 %s", got.status, got.code, got.replayed, library.EKEYREUSED)
			}
			if c := s.cart(); len(c) != 1 {
				t.Errorf("cart after the refused checkout: %v, want [%d]", c, z)
			}
			// After a return, the same book in the cart again.
			s.must("DELETE", fmt.Sprintf("/api/cart/items/%d", z), "", "", http.StatusOK)
			s.must("POST", fmt.Sprintf("/api/borrows/%d/return", lent[0].ID), "", "", http.StatusOK)
			add(lent[0].BookID)
			if got := s.do("POST", "/api/cart/checkout", "", "k1"); got.status != http.StatusUnprocessableEntity {
				t.Errorf("the key again after a return, the returned book in the cart: %d %s (replayed %v), want 422", got.status, got.code, got.replayed)
			}
			if c, n := s.cart(), s.borrows(); len(c) != 1 || n != 1 {
				t.Errorf("after it: cart %v and %d loans, want the book still in the cart and 1 loan", c, n)
			}
			// A new key checks the cart out.
			s.must("POST", "/api/cart/checkout", "", "k2", http.StatusCreated)
			if c, n := s.cart(), s.borrows(); len(c) != 0 || n != 2 {
				t.Errorf("after a checkout under a new key: cart %v and %d loans, want an empty cart and 2 loans", c, n)
			}
		})
	}
}
