//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/pgserver"
	"github.com/statelab/statelab/internal/seed"
	"github.com/statelab/statelab/internal/store"
)

// The end-to-end test runs the real binary as separate processes, because
// the lesson is about what one process's memory holds that another's does
// not. Everything it checks is the wire contract: status codes, the error
// codes in the JSON envelope, the session_id cookie and the
// X-Statelab-Replica header.

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// statelabBinary returns the statelab binary, built once per test process.
func statelabBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds the binary and runs replicas as processes; skipped with -short")
	}
	return labtest.Binary(t)
}

// replica is one server process on a fixed address; restarting it starts a
// new process on the same address with the same flags.
type replica struct {
	bin, kind, id, addr string
	args                []string
	env                 []string // added to the test's environment
	client              *http.Client
	log                 labtest.Buffer // stdout and stderr of every run
	runs                int
	proc                *process
}

// process is one run of a replica.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's answer; read after done
}

// newReplica starts a replica; wait for it with waitReady. The test's
// cleanup kills it if it still runs, and prints its log if the test failed.
func newReplica(t *testing.T, bin, kind, id, addr string, args ...string) *replica {
	return newReplicaEnv(t, bin, nil, kind, id, addr, args...)
}

// newReplicaEnv is newReplica with env added to the replica's environment.
func newReplicaEnv(t *testing.T, bin string, env []string, kind, id, addr string, args ...string) *replica {
	r := &replica{bin: bin, kind: kind, id: id, addr: addr, args: args, env: env, client: newTestClient()}
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("log of %s replica %s:\n%s", r.kind, r.id, r.log.String())
		}
	})
	r.start(t)
	return r
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	r.runs++
	fmt.Fprintf(&r.log, "--- run %d\n", r.runs)
	cmd := exec.Command(r.bin, append([]string{r.kind, "--addr", r.addr, "--replica-id", r.id}, r.args...)...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "STATELAB_") }), r.env...)
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start replica %s: %v", r.id, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	r.proc = p
}

// waitReady polls /api/ready until this replica (by its header, not just
// anyone on the port) answers 200.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rep, err := r.call("GET", "/api/ready", nil, cred{})
		if err == nil && rep.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready after 15s (last: %d %v)", r.id, rep.Status, err)
		}
		select {
		case <-r.proc.done:
			t.Fatalf("replica %s exited before it was ready: %v", r.id, r.proc.err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and insists on a graceful exit: status 0 within 15 s.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	if err := r.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM replica %s: %v", r.id, err)
	}
	select {
	case <-r.proc.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("replica %s still running 15s after SIGTERM", r.id)
	}
	if r.proc.err != nil {
		t.Fatalf("replica %s did not stop gracefully on SIGTERM: %v", r.id, r.proc.err)
	}
}

func (r *replica) restart(t *testing.T) {
	t.Helper()
	r.stop(t)
	r.start(t)
	r.waitReady(t)
}

func (r *replica) kill() {
	if r.proc == nil {
		return
	}
	select {
	case <-r.proc.done:
	default:
		r.proc.cmd.Process.Kill()
		<-r.proc.done
	}
}

// cred is how a request proves who sends it: a session cookie (stateful)
// or a bearer token (stateless).
type cred struct {
	cookie *http.Cookie
	bearer string
}

// reply is a response: its status, the replica that answered, the session
// cookie it set, and the JSON envelope.
type reply struct {
	Status  int          `json:"-"`
	Replica string       `json:"-"`
	Cookie  *http.Cookie `json:"-"`

	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

// call sends one request. It is safe from many goroutines and fails (rather
// than the test) so the concurrent borrowers can use it; a response whose
// X-Statelab-Replica header does not name r is an error.
func (r *replica) call(method, path string, body any, c cred) (reply, error) {
	var rep reply
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return rep, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+r.addr+path, rd)
	if err != nil {
		return rep, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return rep, fmt.Errorf("%s %s on %s: %w", method, path, r.id, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return rep, fmt.Errorf("%s %s on %s: read body: %w", method, path, r.id, err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return rep, fmt.Errorf("%s %s on %s: %d with a body that is not JSON: %q", method, path, r.id, resp.StatusCode, raw)
	}
	rep.Status = resp.StatusCode
	rep.Replica = resp.Header.Get("X-Statelab-Replica")
	for _, ck := range resp.Cookies() {
		if ck.Name == "session_id" {
			rep.Cookie = ck
		}
	}
	if rep.Replica != r.id {
		return rep, fmt.Errorf("%s %s on %s: X-Statelab-Replica is %q", method, path, r.id, rep.Replica)
	}
	return rep, nil
}

// must is call for the test's own goroutine: anything but want ends the test.
func (r *replica) must(t *testing.T, method, path string, body any, c cred, want int) reply {
	t.Helper()
	rep, err := r.call(method, path, body, c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != want {
		t.Fatalf("%s %s on %s = %d %s (%s), want %d", method, path, r.id, rep.Status, rep.Code, rep.Message, want)
	}
	return rep
}

// data decodes a reply's data.
func data[T any](t *testing.T, rep reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rep.Data, &v); err != nil {
		t.Fatalf("decode data %s: %v", rep.Data, err)
	}
	return v
}

// The shapes of the data the test reads.
type (
	login struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	book struct {
		ID              int64 `json:"id"`
		AvailableCopies int   `json:"available_copies"`
		Available       bool  `json:"available"`
	}
	cartData struct {
		Count int `json:"count"`
	}
	meData struct {
		Email    string `json:"email"`
		ServedBy string `json:"served_by"`
	}
	borrowData struct {
		ID     int64 `json:"id"`
		BookID int64 `json:"book_id"`
	}
)

// lab is two replicas of each server on one database, the stateful pair
// sharing one session key and the stateless pair one JWT secret, so that
// what fails on the other replica fails for want of state, not of a key.
type lab struct {
	db                                           labDB
	statefulA, statefulB, statelessA, statelessB *replica
}

func (l *lab) all() []*replica {
	return []*replica{l.statefulA, l.statefulB, l.statelessA, l.statelessB}
}

// labDB is the database a lab's replicas share, as they are told of it
// and as the test opens it to check what they did.
type labDB struct {
	dsn  string   // the replicas' --db: a file, or a URL without its password
	env  []string // beside dsn in their environment: PGPASSWORD
	open func(t *testing.T) store.Store
}

// sqliteDB is a new SQLite file.
func sqliteDB(t *testing.T) labDB {
	path := filepath.Join(t.TempDir(), "library.db")
	return labDB{dsn: path, open: func(t *testing.T) store.Store { return openStore(t, path) }}
}

// postgresDB is a new database on the test binary's PostgreSQL. The
// replicas get its URL without the password, which they read from
// PGPASSWORD, as `statelab compare --store postgres` runs them: a
// password on argv is refused.
func postgresDB(t *testing.T) labDB {
	full := labtest.PostgresDatabase(t)
	u, err := url.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	return labDB{dsn: u.String(), env: []string{pgserver.EnvPassword + "=" + pw}, open: func(t *testing.T) store.Store { return openStore(t, full) }}
}

// openStore opens a store in the test's process, closed when the test ends.
func openStore(t *testing.T, dsn string) store.Store {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, store.Options{NoReadCache: true})
	if err != nil {
		t.Fatalf("open %s: %v", store.Describe(dsn), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startLab starts a lab on a new SQLite file.
func startLab(t *testing.T, bin string) *lab {
	t.Helper()
	return startLabOn(t, bin, sqliteDB(t))
}

// startLabOn starts a lab whose replicas share db.
func startLabOn(t *testing.T, bin string, db labDB) *lab {
	t.Helper()
	addrs := freeAddrs(t, 4)
	common := []string{"--db", db.dsn, "--shutdown-timeout", "5s"}
	sessionKey := []string{"--session-key", "e2e-session-key-shared-by-both-stateful-replicas"}
	jwtSecret := []string{"--jwt-secret", "e2e-jwt-secret-shared-by-both-stateless-replicas"}
	// All four open the fresh database at once, as `make demo` does.
	l := &lab{
		db:         db,
		statefulA:  newReplicaEnv(t, bin, db.env, "stateful", "stateful-a", addrs[0], slices.Concat(common, sessionKey)...),
		statefulB:  newReplicaEnv(t, bin, db.env, "stateful", "stateful-b", addrs[1], slices.Concat(common, sessionKey)...),
		statelessA: newReplicaEnv(t, bin, db.env, "stateless", "stateless-a", addrs[2], slices.Concat(common, jwtSecret)...),
		statelessB: newReplicaEnv(t, bin, db.env, "stateless", "stateless-b", addrs[3], slices.Concat(common, jwtSecret)...),
	}
	for _, r := range l.all() {
		r.waitReady(t)
	}
	return l
}

func TestEndToEnd(t *testing.T) {
	bin := statelabBinary(t)
	lab := startLab(t, bin)

	t.Run("StatefulSessionIsLostOnOtherReplicaAndOnRestart", func(t *testing.T) {
		a, b := lab.statefulA, lab.statefulB
		alice := login{"alice@example.com", "wonderland"}
		in := a.must(t, "POST", "/api/auth/login", alice, cred{}, http.StatusOK)
		if in.Cookie == nil {
			t.Fatal("login on A set no session_id cookie")
		}
		sess := cred{cookie: in.Cookie}

		books := data[[]book](t, a.must(t, "GET", "/api/books?limit=2", nil, sess, http.StatusOK))
		if len(books) != 2 {
			t.Fatalf("GET /api/books?limit=2 gave %d books", len(books))
		}
		for _, bk := range books {
			a.must(t, "POST", "/api/cart/items", map[string]int64{"book_id": bk.ID}, sess, http.StatusCreated)
		}
		cart := a.must(t, "GET", "/api/cart", nil, sess, http.StatusOK)
		if got := data[cartData](t, cart).Count; got != 2 {
			t.Fatalf("cart on A holds %d books, want 2", got)
		}
		if cart.Replica != "stateful-a" {
			t.Errorf("X-Statelab-Replica = %q, want stateful-a", cart.Replica)
		}

		// The same, validly signed cookie on B: B never held the session.
		for _, path := range []string{"/api/cart", "/api/me"} {
			rep := b.must(t, "GET", path, nil, sess, http.StatusUnauthorized)
			if rep.Code != "session_lost" || rep.Replica != "stateful-b" {
				t.Errorf("GET %s on B = %s from %q, want session_lost from stateful-b", path, rep.Code, rep.Replica)
			}
		}

		// A forgets it too once its process is gone.
		a.restart(t)
		if rep := a.must(t, "GET", "/api/cart", nil, sess, http.StatusUnauthorized); rep.Code != "session_lost" {
			t.Errorf("GET /api/cart on restarted A = %s, want session_lost", rep.Code)
		}
		again := a.must(t, "POST", "/api/auth/login", alice, cred{}, http.StatusOK)
		if got := data[cartData](t, a.must(t, "GET", "/api/cart", nil, cred{cookie: again.Cookie}, http.StatusOK)).Count; got != 0 {
			t.Errorf("cart after logging in again on restarted A holds %d books, want 0: it died with the process", got)
		}
	})

	t.Run("StatelessCredentialsWorkEverywhereAndSurviveRestarts", func(t *testing.T) {
		a, b := lab.statelessA, lab.statelessB
		bob := login{"bob@example.com", "builder"}
		key := data[struct {
			APIKey string `json:"api_key"`
		}](t, a.must(t, "POST", "/api/auth/generate-key", bob, cred{}, http.StatusCreated)).APIKey
		jwt := data[struct {
			AccessToken string `json:"access_token"`
		}](t, b.must(t, "POST", "/api/auth/token", bob, cred{}, http.StatusOK)).AccessToken
		if key == "" || jwt == "" {
			t.Fatalf("api key %q, jwt %q: want both", key, jwt)
		}
		creds := []struct {
			name string
			cred
		}{{"API key from A", cred{bearer: key}}, {"JWT from B", cred{bearer: jwt}}}

		worksEverywhere := func(when string) {
			t.Helper()
			for _, r := range []*replica{a, b} {
				for _, c := range creds {
					me := data[meData](t, r.must(t, "GET", "/api/me", nil, c.cred, http.StatusOK))
					if me.Email != bob.Email || me.ServedBy != r.id {
						t.Errorf("%s, %s on %s: /api/me = %+v, want %s served by %s", when, c.name, r.id, me, bob.Email, r.id)
					}
					r.must(t, "GET", "/api/borrows", nil, c.cred, http.StatusOK)
				}
			}
		}
		worksEverywhere("before restarts")

		shelf := data[[]book](t, a.must(t, "GET", "/api/books?available=true&limit=1", nil, creds[0].cred, http.StatusOK))
		if len(shelf) != 1 {
			t.Fatal("no book on the shelf to borrow")
		}
		borrowed := data[borrowData](t, a.must(t, "POST", fmt.Sprintf("/api/books/%d/borrow", shelf[0].ID), nil, creds[0].cred, http.StatusCreated))

		// Both down at once, then both up: nothing can be carried over.
		a.stop(t)
		b.stop(t)
		for _, r := range []*replica{a, b} {
			r.start(t)
		}
		for _, r := range []*replica{a, b} {
			r.waitReady(t)
		}
		worksEverywhere("after restarts")

		recs := data[[]borrowData](t, b.must(t, "GET", "/api/borrows", nil, creds[1].cred, http.StatusOK))
		if !slices.ContainsFunc(recs, func(r borrowData) bool { return r.ID == borrowed.ID && r.BookID == shelf[0].ID }) {
			t.Errorf("borrow %d made on A before the restarts is not listed on B after them: %+v", borrowed.ID, recs)
		}
	})

	t.Run("HundredConcurrentBorrowsOfOneCopyLendItOnce", func(t *testing.T) {
		db := lab.db.open(t)
		librarian := lab.librarian(t)
		raceForTheLastCopy(t, lab.all(), signInBorrowers(t, lab.all()), librarian, db)
	})
}

// TestBorrowRaceOnPostgres runs the race for the last copy on PostgreSQL,
// the store replicas on other machines would share: 20 times, each over
// two replicas of one server (the stateful pair, then the stateless pair),
// 100 borrowers at once. SQLite serialises every write in its one writer;
// here two processes' transactions really overlap, and only the store's
// row locks stand between them and lending the copy twice.
func TestBorrowRaceOnPostgres(t *testing.T) {
	bin := statelabBinary(t)
	lab := startLabOn(t, bin, postgresDB(t))
	db := lab.db.open(t)
	librarian := lab.librarian(t)
	pairs := [][]*replica{{lab.statefulA, lab.statefulB}, {lab.statelessA, lab.statelessB}}
	creds := signInBorrowers(t, lab.all())
	for trial := range 20 {
		if !t.Run(fmt.Sprintf("trial %d", trial+1), func(t *testing.T) {
			raceForTheLastCopy(t, pairs[trial%2], creds, librarian, db)
		}) {
			break
		}
	}
}

// librarian is the member who may add books, with an API key for a
// stateless replica.
type librarian struct {
	at  *replica
	key cred
}

// librarian signs the librarian in on statelessA.
func (l *lab) librarian(t *testing.T) librarian {
	t.Helper()
	key := data[struct {
		APIKey string `json:"api_key"`
	}](t, l.statelessA.must(t, "POST", "/api/auth/generate-key", login{"librarian@example.com", "bookworm"}, cred{}, http.StatusCreated)).APIKey
	return librarian{at: l.statelessA, key: cred{bearer: key}}
}

// addBook adds a book with one copy.
func (lib librarian) addBook(t *testing.T) book {
	t.Helper()
	b := data[book](t, lib.at.must(t, "POST", "/api/books",
		map[string]any{"title": "The Only Copy", "author": "E. Two-E", "copies": 1}, lib.key, http.StatusCreated))
	if b.AvailableCopies != 1 {
		t.Fatalf("new book has %d copies available, want 1", b.AvailableCopies)
	}
	return b
}

// signInBorrowers signs two load-test members in on each replica, where
// they will borrow: a session on a stateful replica (which only it holds),
// an API key or a JWT on a stateless one.
func signInBorrowers(t *testing.T, rs []*replica) map[*replica][]cred {
	t.Helper()
	creds := map[*replica][]cred{}
	n := 0
	for _, r := range rs {
		for range 2 {
			n++
			m := login{seed.LoadTestEmail(n), seed.LoadTestPassword}
			switch {
			case r.kind == "stateful":
				creds[r] = append(creds[r], cred{cookie: r.must(t, "POST", "/api/auth/login", m, cred{}, http.StatusOK).Cookie})
			case n%2 == 1:
				creds[r] = append(creds[r], cred{bearer: data[struct {
					APIKey string `json:"api_key"`
				}](t, r.must(t, "POST", "/api/auth/generate-key", m, cred{}, http.StatusCreated)).APIKey})
			default:
				creds[r] = append(creds[r], cred{bearer: data[struct {
					AccessToken string `json:"access_token"`
				}](t, r.must(t, "POST", "/api/auth/token", m, cred{}, http.StatusOK)).AccessToken})
			}
		}
	}
	return creds
}

// raceForTheLastCopy has the librarian add a book with one copy, then
// sends 100 borrows of it at once, spread over rs, each with a credential
// of creds for its replica. Exactly one may get 201 and the other 99 409
// unavailable; afterwards the book has no copy left, and the store, read
// directly through db, agrees: its consistency check passes, one more
// borrow is active than before, and it is the one the 201 named.
func raceForTheLastCopy(t *testing.T, rs []*replica, creds map[*replica][]cred, lib librarian, db store.Store) {
	t.Helper()
	before := consistency(t, db)
	only := lib.addBook(t)

	const attempts = 100
	type outcome struct {
		replica string
		reply
		err error
	}
	outcomes := make([]outcome, attempts)
	path := fmt.Sprintf("/api/books/%d/borrow", only.ID)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range attempts {
		r := rs[i%len(rs)]
		c := creds[r][(i/len(rs))%len(creds[r])]
		wg.Go(func() {
			<-start
			rep, err := r.call("POST", path, nil, c)
			outcomes[i] = outcome{r.id, rep, err}
		})
	}
	close(start)
	wg.Wait()

	var won []borrowData
	unavailable := 0
	perReplica := map[string]int{}
	for i, o := range outcomes {
		perReplica[o.replica]++
		switch {
		case o.err != nil:
			t.Errorf("borrow %d: %v", i, o.err)
		case o.Status == http.StatusCreated:
			won = append(won, data[borrowData](t, o.reply))
		case o.Status == http.StatusConflict && o.Code == "unavailable":
			unavailable++
		default:
			t.Errorf("borrow %d on %s = %d %s, want 201 or 409 unavailable", i, o.replica, o.Status, o.Code)
		}
	}
	t.Logf("%d attempts over %v: %d created, %d unavailable", attempts, perReplica, len(won), unavailable)
	if len(won) != 1 || unavailable != attempts-1 {
		t.Errorf("got %d created and %d unavailable, want 1 and %d", len(won), unavailable, attempts-1)
	}

	last := rs[len(rs)-1]
	after := data[book](t, last.must(t, "GET", fmt.Sprintf("/api/books/%d", only.ID), nil, creds[last][0], http.StatusOK))
	if after.AvailableCopies != 0 || after.Available {
		t.Errorf("after the rush the book has %d copies available (available=%v), want 0", after.AvailableCopies, after.Available)
	}
	now := consistency(t, db)
	if !now.OK() {
		t.Errorf("the store's consistency check fails after the rush: %+v", now)
	}
	if got := now.ActiveBorrows - before.ActiveBorrows; got != 1 {
		t.Errorf("the store holds %d more active borrows after the rush, want 1", got)
	}
	for _, w := range won {
		if ok, err := db.BorrowExists(context.Background(), w.ID); err != nil || !ok || w.BookID != only.ID {
			t.Errorf("the 201 named borrow %d of book %d; in the store: %v (%v), want it, of book %d", w.ID, w.BookID, ok, err, only.ID)
		}
	}
}

// consistency runs the store's consistency check.
func consistency(t *testing.T, db store.Store) library.Consistency {
	t.Helper()
	c, err := db.CheckConsistency(context.Background())
	if err != nil {
		t.Fatalf("consistency check: %v", err)
	}
	return c
}
