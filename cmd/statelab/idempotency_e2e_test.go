//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// keyed is one answer to a request sent with an Idempotency-Key, read whole.
type keyed struct {
	status   int
	replayed bool
	code     string
	body     []byte
}

// sendKeyed sends method path to r with the Idempotency-Key key.
func sendKeyed(r *replica, method, path, body, key string, c cred) (keyed, error) {
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, "http://"+r.addr+path, rd)
	if err != nil {
		return keyed{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(api.IdempotencyKeyHeader, key)
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return keyed{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return keyed{}, err
	}
	var env struct{ Code string }
	_ = json.Unmarshal(raw, &env)
	return keyed{status: resp.StatusCode, replayed: resp.Header.Get(api.ReplayedHeader) == "true", code: env.Code, body: raw}, nil
}

func mustKeyed(t *testing.T, r *replica, method, path, body, key string, c cred) keyed {
	t.Helper()
	k, err := sendKeyed(r, method, path, body, key, c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestIdempotencyKeyAcrossProcesses checks the Idempotency-Key on real
// processes sharing one database: a borrow sent twice with one key lends one
// copy and returns the same body; a different body with that key is 422;
// two concurrent requests with one key, to two replicas, make one borrow;
// and the key survives a restart of the replica that stored it, on both
// servers — on the stateful one too, whose session the restart loses: the
// key belongs to the member, in the shared database, not to the session.
func TestIdempotencyKeyAcrossProcesses(t *testing.T) {
	bin := statelabBinary(t)
	db := filepath.Join(t.TempDir(), "library.db")
	addrs := freeAddrs(t, 3)
	common := []string{"--db", db, "--shutdown-timeout", "5s", "--jwt-secret", "e2e-jwt-secret-shared-by-both-stateless-replicas"}
	a := newReplica(t, bin, "stateless", "stateless-a", addrs[0], common...)
	b := newReplica(t, bin, "stateless", "stateless-b", addrs[1], common...)
	s := newReplica(t, bin, "stateful", "stateful-a", addrs[2], "--db", db, "--shutdown-timeout", "5s")
	for _, r := range []*replica{a, b, s} {
		r.waitReady(t)
	}
	token := func() cred {
		rep := a.must(t, "POST", "/api/auth/token", login{"bob@example.com", "builder"}, cred{}, http.StatusOK)
		return cred{bearer: data[struct {
			AccessToken string `json:"access_token"`
		}](t, rep).AccessToken}
	}
	signIn := func() cred {
		return cred{cookie: s.must(t, "POST", "/api/auth/login", login{"alice@example.com", "wonderland"}, cred{}, http.StatusOK).Cookie}
	}
	shelf := func(id int64) int {
		return data[book](t, a.must(t, "GET", fmt.Sprintf("/api/books/%d", id), nil, token(), http.StatusOK)).AvailableCopies
	}

	for _, tc := range []struct {
		name    string
		replica *replica
		signIn  func() cred
		book    int64
	}{
		{"stateless", a, token, 11},
		{"stateful", s, signIn, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.signIn()
			path := fmt.Sprintf("/api/books/%d/borrow", tc.book)
			before := shelf(tc.book)
			first := mustKeyed(t, tc.replica, "POST", path, "", "survives-a-restart", c)
			if first.status != http.StatusCreated || first.replayed {
				t.Fatalf("first borrow: %d (replayed %v) %s", first.status, first.replayed, first.body)
			}
			again := mustKeyed(t, tc.replica, "POST", path, "", "survives-a-restart", c)
			if again.status != http.StatusCreated || !again.replayed || !bytes.Equal(again.body, first.body) {
				t.Errorf("the same borrow again: %d (replayed %v) %s, want the first answer replayed", again.status, again.replayed, again.body)
			}
			if k := mustKeyed(t, tc.replica, "POST", path, `{"days":3}`, "survives-a-restart", c); k.status != http.StatusUnprocessableEntity || k.code != library.EKEYREUSED {
				t.Errorf("another body with the key: %d %s, want 422 %s", k.status, k.code, library.EKEYREUSED)
			}

			tc.replica.restart(t)
			c = tc.signIn() // a stateful replica's restart lost the session; the key is the member's
			after := mustKeyed(t, tc.replica, "POST", path, "", "survives-a-restart", c)
			if after.status != http.StatusCreated || !after.replayed || !bytes.Equal(after.body, first.body) {
				t.Errorf("after a restart of the replica that stored it: %d (replayed %v) %s, want the first answer replayed", after.status, after.replayed, after.body)
			}
			if got := shelf(tc.book); got != before-1 {
				t.Errorf("copies on the shelf: %d, want %d: one copy lent for four requests", got, before-1)
			}
		})
	}

	t.Run("concurrent on two replicas", func(t *testing.T) {
		c := token()
		before := shelf(13)
		var wg sync.WaitGroup
		answers := make([]keyed, 6)
		errs := make([]error, len(answers))
		for i := range answers {
			r := []*replica{a, b}[i%2]
			wg.Go(func() { answers[i], errs[i] = sendKeyed(r, "POST", "/api/books/13/borrow", "", "together", c) })
		}
		wg.Wait()
		made := 0
		for i, k := range answers {
			switch {
			case errs[i] != nil:
				t.Error(errs[i])
			case k.status == http.StatusCreated && !k.replayed:
				made++
			case k.status == http.StatusCreated, k.status == http.StatusConflict && k.code == library.EKEYINUSE:
			default:
				t.Errorf("answer %d: %d %s", i, k.status, k.body)
			}
		}
		if made != 1 {
			t.Errorf("%d borrows made now, want 1; the rest replayed or in use", made)
		}
		if got := shelf(13); got != before-1 {
			t.Errorf("copies on the shelf: %d, want %d", got, before-1)
		}
	})
}
