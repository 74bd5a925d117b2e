package walkthrough

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/library"
)

// The demo members (internal/sqlite seeds them; their passwords are public).
var (
	alice = client.Credentials{Email: "alice@example.com", Password: "wonderland"}
	bob   = client.Credentials{Email: "bob@example.com", Password: "builder"}
)

// aliceBooks go into alice's server-side cart; bob's client-side cart holds
// other books, so the two never compete for a copy.
var aliceBooks = []int64{1, 2}

// steps is the lesson, in order.
var steps = []step{
	{"Stateful: the server remembers you", stepStateful},
	{"Stateless: every request brings its own credentials", stepStateless},
	{"Restart both servers", stepRestart},
	{"Two replicas behind a round-robin balancer", stepReplicas},
	{"What statelessness costs, measured here and now", stepCosts},
	{"Where the state went", stepWhereState},
	{"Watch it at scale: make demo", stepHandOff},
}

func stepStateful(ctx context.Context, w *walk) error {
	sf := w.url(stateful, 1)
	w.t.para("The stateful server keeps what it knows about each signed-in client, who you are " +
		"and your borrowing cart, in its own memory: the session. The cookie it hands out carries " +
		"only a signed, random session id, like the ticket for a coat that hangs inside this one process.")
	login, err := w.must(ctx, request{method: "POST", base: sf, path: client.LoginPath, body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	if w.aliceCookie = login.cookie(); w.aliceCookie == "" {
		return fmt.Errorf("the login set no %s cookie", client.CookieName)
	}
	w.t.para("From now on the client only sends the cookie back. To know who is asking, the server " +
		"looks the id up in its memory.")
	if _, err := w.must(ctx, request{method: "GET", base: sf, path: client.MePath, cookie: w.aliceCookie}, http.StatusOK); err != nil {
		return err
	}
	if err := w.t.pause(ctx, "fill the cart"); err != nil {
		return err
	}

	w.t.para(fmt.Sprintf("Alice puts %s in her cart. The server keeps the cart in her session; the client "+
		"holds nothing but the cookie.", plural(len(aliceBooks), "book", "books")))
	for _, id := range aliceBooks {
		if _, err := w.must(ctx, request{method: "POST", base: sf, path: client.CartItemsPath, cookie: w.aliceCookie,
			body: client.CartInput{BookID: id}}, http.StatusCreated); err != nil {
			return err
		}
	}
	if _, err := w.must(ctx, request{method: "GET", base: sf, path: client.CartPath, cookie: w.aliceCookie}, http.StatusOK); err != nil {
		return err
	}
	w.t.para("Convenient: the conversation (signed in as alice, two books chosen) lives on the " +
		"server, and each request only has to say \"it's me again\". Keep an eye on where it lives.")
	return nil
}

func stepStateless(ctx context.Context, w *walk) error {
	sl := w.url(stateless, 1)
	w.t.para("The stateless server keeps nothing about bob between requests. Instead of a session, " +
		"bob gets a credential that he sends with every request. There are two kinds here. An API key " +
		"is a random secret; the server stores only its hash, in the shared database.")
	key, err := w.must(ctx, request{method: "POST", base: sl, path: client.GenerateKeyPath, body: bob}, http.StatusCreated)
	if err != nil {
		return err
	}
	if w.bobKey, w.bobKeyID, err = key.keyIssued(); err != nil {
		return err
	}
	w.t.para("A JWT is a signed statement: \"this is member 2, bob@example.com, until a quarter of an " +
		"hour from now\". The server stores nothing at all for it: it checks the signature with its " +
		"secret and reads the claims.")
	tok, err := w.must(ctx, request{method: "POST", base: sl, path: client.TokenPath, body: bob}, http.StatusOK)
	if err != nil {
		return err
	}
	if w.bobJWT, err = tok.tokenIssued(); err != nil {
		return err
	}
	if err := w.t.pause(ctx, "ask who am I"); err != nil {
		return err
	}

	w.t.para("Who am I, asked once with each credential. No cookie and no session: the Authorization " +
		"header is everything the server needs to answer.")
	if _, err := w.must(ctx, request{method: "GET", base: sl, path: client.MePath, bearer: w.bobKey}, http.StatusOK); err != nil {
		return err
	}
	if _, err := w.must(ctx, request{method: "GET", base: sl, path: client.MePath, bearer: w.bobJWT}, http.StatusOK); err != nil {
		return err
	}
	w.bobCart = []int64{3, 4}
	w.t.para(fmt.Sprintf("Bob wants books %d and %d too. His cart lives in this program, the client, as "+
		"a list: book_ids = %s. There is nothing to put on the server: when he borrows, one request "+
		"will carry the whole list.", w.bobCart[0], w.bobCart[1], joinIDs(w.bobCart)))
	return nil
}

func stepRestart(ctx context.Context, w *walk) error {
	w.t.para("Processes are replaced all the time: a deploy, a crash, a machine that goes away. The lab " +
		"now really does it: it stops the server (SIGTERM, then waits for the process to exit) and starts " +
		"a new process on the same address, with the same signing secret and the same database.")
	p, err := w.t.predict(ctx, "The stateful server is about to restart. What will the new process answer "+
		"to alice's GET "+client.MePath+", with the cookie she has? (a) 200 and her name, (b) "+answerChoices["b"]+", "+
		"(c) "+answerChoices["c"]+", (d) "+answerChoices["d"]+", (e) something else", "[a/b/c/d/e]", answerChoices)
	if err != nil {
		return err
	}
	if err := w.restart(ctx, stateful); err != nil {
		return err
	}
	sf := w.url(stateful, 1)
	me, err := w.show(ctx, request{method: "GET", base: sf, path: client.MePath, cookie: w.aliceCookie})
	if err != nil {
		return err
	}
	if _, err := w.show(ctx, request{method: "GET", base: sf, path: client.CartPath, cookie: w.aliceCookie}); err != nil {
		return err
	}
	w.seen.restartLost[stateful] = answerOf(me) != "a"
	w.t.reveal(p, answerOf(me), "b",
		"The cookie is still genuine: the new process checks its signature with the same key. But "+
			"the session it names lived in the old process's memory, and that memory is gone. The server "+
			"says exactly that with session_lost: not \"you forged this\" but \"I don't have it\".")
	if err := w.t.pause(ctx, "log in again"); err != nil {
		return err
	}
	w.t.para("Alice can log in again, but her cart starts empty: the books she chose are gone for good.")
	login, err := w.must(ctx, request{method: "POST", base: sf, path: client.LoginPath, body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	w.aliceCookie = login.cookie()
	if _, err := w.must(ctx, request{method: "GET", base: sf, path: client.CartPath, cookie: w.aliceCookie}, http.StatusOK); err != nil {
		return err
	}
	if err := w.t.pause(ctx, "restart the stateless server"); err != nil {
		return err
	}

	p, err = w.t.predict(ctx, "Now the stateless server restarts the same way. Of bob's two credentials, "+
		"the API key and the JWT, how many will the new process accept?", "[0/1/2]", countChoices(2))
	if err != nil {
		return err
	}
	if err := w.restart(ctx, stateless); err != nil {
		return err
	}
	sl := w.url(stateless, 1)
	accepted := 0
	for _, cred := range []string{w.bobKey, w.bobJWT} {
		resp, err := w.show(ctx, request{method: "GET", base: sl, path: client.MePath, bearer: cred})
		if err != nil {
			return err
		}
		if resp.Status == http.StatusOK {
			accepted++
		}
	}
	w.seen.restartLost[stateless] = accepted < 2
	w.t.reveal(p, strconv.Itoa(accepted), "2",
		"Nothing the server needed was in the old process. The API key's hash is in the shared "+
			"database; the JWT carries its own claims, and the new process has the same secret to check them.")
	if err := w.t.pause(ctx, "borrow bob's cart"); err != nil {
		return err
	}
	w.t.para("Bob's cart survived as well, because it never left the client. He borrows it now, whole, " +
		"in one request.")
	_, err = w.must(ctx, request{method: "POST", base: sl, path: client.BorrowsPath, bearer: w.bobJWT,
		body: client.BorrowBooksInput{BookIDs: w.bobCart}}, http.StatusCreated)
	if err != nil {
		return err
	}
	w.bobCart = nil
	return nil
}

// restart replaces the first replica of a side with a new process and
// says what happened.
func (w *walk) restart(ctx context.Context, side string) error {
	old := w.replica(side, 1)
	w.t.text(fmt.Sprintf("Restarting %s: SIGTERM, wait for the process to exit, start a new one on the same address.", old.ID))
	if err := w.sides[side].RestartInPlace(ctx, old.ID); err != nil {
		return err
	}
	now := w.replica(side, 1)
	exit := "exited"
	if now.LastExit != nil {
		exit = now.LastExit.String()
	}
	w.t.line(fmt.Sprintf("    old: pid %d on %s, ended with %s", old.PID, old.Addr, exit))
	w.t.line(fmt.Sprintf("    new: pid %d on %s, ready in %s", now.PID, now.Addr, ms(now.ReadyIn)))
	w.t.blank()
	return nil
}

// answerChoices are the answers a request with a credential can get, for
// a "which answer?" prediction; answerOf says which one a response was.
var answerChoices = map[string]string{
	"a": "200 with the member's name", "b": "401 " + library.ESESSIONLOST, "c": "401 " + library.EINVALIDSESSION,
	"d": "401 " + library.ELOGINREQUIRED, "e": "something else",
}

func answerOf(r response) string {
	switch {
	case r.Status == http.StatusOK:
		return "a"
	case r.Status == http.StatusUnauthorized && r.Code == library.ESESSIONLOST:
		return "b"
	case r.Status == http.StatusUnauthorized && r.Code == library.EINVALIDSESSION:
		return "c"
	case r.Status == http.StatusUnauthorized && r.Code == library.ELOGINREQUIRED:
		return "d"
	}
	return "e"
}

// countChoices are the answers to "how many of n?": "0" to n.
func countChoices(n int) map[string]string {
	c := make(map[string]string, n+1)
	for i := range n + 1 {
		c[strconv.Itoa(i)] = fmt.Sprintf("%d of %d", i, n)
	}
	return c
}

// ten is how many requests step 4 sends per side.
const ten = 10

func stepReplicas(ctx context.Context, w *walk) error {
	w.t.para("One process is rarely enough. The lab starts a second replica of each server, from the " +
		"same binary, with the same signing secret and the same shared database, and puts a load " +
		"balancer in front of each pair. The balancer is round robin: it hands each request to the " +
		"next replica in turn.")
	for _, side := range []string{stateful, stateless} {
		if err := w.sides[side].Scale(ctx, 2); err != nil {
			return err
		}
		lb, err := w.startBalancer(side)
		if err != nil {
			return err
		}
		w.t.line(fmt.Sprintf("    %s balancer %s", side, lb.url))
		for _, r := range w.sides[side].Replicas() {
			w.t.line(fmt.Sprintf("      -> %-11s  %s (pid %d)", r.ID, r.Addr, r.PID))
		}
		w.t.blank()
	}

	// Both predictions come before anything is sent: what alice's
	// requests get would otherwise answer bob's, and the login's answer
	// (which replica keeps the session) most of alice's.
	stateless2 := w.replica(stateless, 2).ID
	w.t.para("Two predictions first, before anything is sent through the balancers.")
	p, err := w.t.predict(ctx, fmt.Sprintf("Alice will log in through the stateful balancer, then send "+
		"GET "+client.MePath+" %d times through it with the cookie she got. Either replica can check the cookie's "+
		"signature: they have the same key. How many of the %d will succeed?", ten, ten), "[0-10]", countChoices(ten))
	if err != nil {
		return err
	}
	pj, err := w.t.predict(ctx, fmt.Sprintf("Bob's JWT was issued in step 2, before %s existed: that "+
		"replica has never seen it. Bob sends GET "+client.MePath+" %d times through the stateless balancer with "+
		"it. How many of the %d will succeed?", stateless2, ten, ten), "[0-10]", countChoices(ten))
	if err != nil {
		return err
	}

	w.t.para(fmt.Sprintf("Alice logs in through the stateful balancer, then sends her %d requests.", ten))
	login, err := w.must(ctx, request{method: "POST", base: w.lbs[stateful].url, path: client.LoginPath, body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	w.aliceCookie = login.cookie()
	ok, err := w.repeat(ctx, request{method: "GET", base: w.lbs[stateful].url, path: client.MePath, cookie: w.aliceCookie})
	if err != nil {
		return err
	}
	w.seen.share(stateful, w.okBy)
	w.t.reveal(p, strconv.Itoa(ok), strconv.Itoa(ten/2),
		fmt.Sprintf("Only %s, the replica that answered the login, holds alice's session. Every other "+
			"request lands on a replica that has never heard of her: session_lost, every second time. Sticky "+
			"sessions would hide this, until the one replica that holds the session restarts, or is "+
			"taken out to scale in.", login.Replica()))
	if err := w.t.pause(ctx, "the same with the stateless side"); err != nil {
		return err
	}

	w.t.text(fmt.Sprintf("Bob's %d requests through the stateless balancer, with his JWT:", ten))
	w.t.blank()
	ok, err = w.repeat(ctx, request{method: "GET", base: w.lbs[stateless].url, path: client.MePath, bearer: w.bobJWT})
	if err != nil {
		return err
	}
	w.seen.share(stateless, w.okBy)
	w.t.reveal(pj, strconv.Itoa(ok), strconv.Itoa(ten),
		"Any replica can check the JWT (they share the secret) or the API key (they share the "+
			"database). That is the scalability the constraint promises: add replicas, balance any way "+
			"you like, and no session needs to follow the client around.")
	if err := w.t.pause(ctx, "crash a replica"); err != nil {
		return err
	}
	return w.crash(ctx, login.Replica())
}

// crash kills, on each side, the replica that answered alice's login
// (and its twin on the stateless side) with SIGKILL, and asks what alice's
// next requests get.
func (w *walk) crash(ctx context.Context, aliceReplica string) error {
	w.t.para(fmt.Sprintf("A crash, not a restart: the lab kills %s, the replica that answered alice's "+
		"login, with SIGKILL (no warning, no draining), and the replica of the same number on the "+
		"stateless side, then starts both again.", aliceReplica))
	p, err := w.t.predict(ctx, fmt.Sprintf("After the crash, alice sends GET "+client.MePath+" %d more times through "+
		"the stateful balancer. How many of the %d will succeed?", ten, ten), "[0-10]", countChoices(ten))
	if err != nil {
		return err
	}
	n := strings.TrimPrefix(aliceReplica, stateful+"-")
	for _, side := range []string{stateful, stateless} {
		id := side + "-" + n
		old := w.replica(side, 1)
		for _, r := range w.sides[side].Replicas() {
			if r.ID == id {
				old = r
			}
		}
		if err := w.sides[side].Crash(ctx, old.ID); err != nil {
			return err
		}
		w.t.line(fmt.Sprintf("    %s: pid %d killed; pid %d started on %s", old.ID, old.PID, w.replicaByID(side, old.ID).PID, old.Addr))
	}
	w.t.blank()
	ok, err := w.repeat(ctx, request{method: "GET", base: w.lbs[stateful].url, path: client.MePath, cookie: w.aliceCookie})
	if err != nil {
		return err
	}
	w.t.reveal(p, strconv.Itoa(ok), "0",
		"The only copy of alice's session was in the killed process's memory, and the other replica "+
			"never had it: none of her requests can succeed until she logs in again. A graceful restart "+
			"would have lost it just the same. What a crash adds is any request the process was "+
			"answering at that instant, on either side: the balancer sends those that are safe to send "+
			"twice (reads, and writes with an Idempotency-Key) to another replica, and answers the rest "+
			"502. Here nobody was sending, so nothing was in flight.")
	w.t.text("Bob's JWT, through the stateless balancer, at the same moment:")
	if _, err := w.repeat(ctx, request{method: "GET", base: w.lbs[stateless].url, path: client.MePath, bearer: w.bobJWT}); err != nil {
		return err
	}
	return nil
}

// replicaByID returns the replica of a side with the id, in service now.
func (w *walk) replicaByID(side, id string) supervisor.Replica {
	for _, r := range w.sides[side].Replicas() {
		if r.ID == id {
			return r
		}
	}
	return supervisor.Replica{ID: id}
}

// repeat sends r ten times, shows the first answer in full and then a
// table of who answered each, and returns how many succeeded.
func (w *walk) repeat(ctx context.Context, r request) (int, error) {
	type row struct {
		replica string
		status  int
		outcome string
	}
	rows := make([]row, 0, ten)
	var first response
	for i := range ten {
		resp, err := send(ctx, w.client, r)
		if err != nil {
			return 0, err
		}
		if i == 0 {
			first = resp
		}
		rows = append(rows, row{resp.Replica(), resp.Status, resp.Outcome()})
	}
	w.t.line("  The first of them:")
	w.t.printExchange(r, first)
	w.t.line(fmt.Sprintf("  All %d, in order:", ten))
	w.t.line("     #  answered by  status  outcome")
	ok := 0
	w.okBy = map[string]int{}
	for i, x := range rows {
		style := styleGreen
		if x.status == http.StatusOK {
			ok++
			w.okBy[x.replica]++
		} else {
			style = styleRed
		}
		w.t.line(fmt.Sprintf("    %2d  %-11s  %s", i+1, x.replica, w.t.paint(style, fmt.Sprintf("%-6d  %s", x.status, x.outcome))))
	}
	w.t.line(fmt.Sprintf("  %d of %d succeeded.", ok, ten))
	w.t.blank()
	return ok, nil
}

func stepCosts(ctx context.Context, w *walk) error {
	w.t.para("Statelessness is not free. The constraint's own costs: every request carries more data, " +
		"and the server checks a credential on every request instead of once per login. Measured here, " +
		"on this machine, now, not claimed.")
	sf, sl := w.replica(stateful, 1), w.replica(stateless, 1)
	w.t.para(fmt.Sprintf("To measure, the client talks to %s and %s directly. Alice logs in to %s "+
		"first, so every cookie request finds its session.", sf.ID, sl.ID, sf.ID))
	login, err := w.must(ctx, request{method: "POST", base: "http://" + sf.Addr, path: client.LoginPath, body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	w.aliceCookie = login.cookie()

	p, err := w.t.predict(ctx, "Which GET "+client.MePath+" request is the biggest on the wire: the one with the "+
		"cookie (c), the API key (k) or the JWT (j)?", "[c/k/j]", map[string]string{"c": "the cookie", "k": "the API key", "j": "the JWT"})
	if err != nil {
		return err
	}
	pj, err := w.t.predict(ctx, fmt.Sprintf("A short visit: sign in, then read %d books. Over the whole visit, "+
		"how many more bytes does the JWT client send than the API key client? (a) fewer than 100, "+
		"(b) 100 to 999, (c) 1,000 to 9,999, (d) 10,000 or more", journeyReads), "[a/b/c/d]", journeyChoices)
	if err != nil {
		return err
	}
	if err := costPerRequest(ctx, w, p, sf, sl); err != nil {
		return err
	}
	if err := costPerVisit(ctx, w, pj, sl); err != nil {
		return err
	}
	if err := w.t.pause(ctx, "revoke a credential"); err != nil {
		return err
	}
	return revocation(ctx, w, sf, sl)
}

// costPerRequest measures GET me with each credential on its replica and
// with none, prints what each sent and how long each took, and reveals
// prediction p (which request is the biggest).
func costPerRequest(ctx context.Context, w *walk, p *prediction, sf, sl supervisor.Replica) error {
	creds := []struct {
		key, name, header string
		replica           string
		r                 request
	}{
		{"c", "cookie", client.Session(w.aliceCookie).Line(), sf.Addr,
			request{method: "GET", base: "http://" + sf.Addr, path: client.MePath, cookie: w.aliceCookie}},
		{"k", "API key", client.Bearer(w.bobKey).Line(), sl.Addr,
			request{method: "GET", base: "http://" + sl.Addr, path: client.MePath, bearer: w.bobKey}},
		{"j", "JWT", client.Bearer(w.bobJWT).Line(), sl.Addr,
			request{method: "GET", base: "http://" + sl.Addr, path: client.MePath, bearer: w.bobJWT}},
	}
	results := make([]measurement, len(creds))
	n := w.cfg.Requests
	for i, c := range creds {
		res, err := w.measure(ctx, c.replica, c.r, n)
		if err != nil {
			return fmt.Errorf("measure the %s: %w", c.name, err)
		}
		results[i] = res
	}
	// The same request with no credential at all: what every request
	// costs anyway. It is answered 401; its size is all that counts here.
	none, _, err := w.sent(ctx, request{method: "GET", base: "http://" + sl.Addr, path: client.MePath})
	if err != nil {
		return err
	}
	w.t.para(fmt.Sprintf("GET "+client.MePath+", %d times with each credential, one request at a time on one kept-alive connection.", n))
	w.t.text("What the client sent per request (request line and headers, counted on the connection):")
	w.t.line(fmt.Sprintf("    %-8s %d bytes on the wire: the same request with no credential (answered 401)", "none", none))
	biggest := 0
	for i, c := range creds {
		w.t.line(fmt.Sprintf("    %-8s %d bytes on the wire, %d more than none; the credential header is %d bytes",
			c.name, results[i].bytes, results[i].bytes-none, len(c.header)+2))
		if results[i].bytes > results[biggest].bytes {
			biggest = i
		}
	}
	w.t.blank()
	w.t.text(fmt.Sprintf("Time per request, mean of %d: the client's round trip, and the server's own "+
		"measurement of %s (its statelab_http_request_duration_seconds histogram, read before and after). "+
		"%s does the same work whatever the credential (it reads the member's row), so the "+
		"difference is finding out who is asking:", n, client.MePath, client.MePath))
	for i, c := range creds {
		w.t.line(fmt.Sprintf("    %-8s round trip %s, in the server %s, of which finding who is asking %s", c.name, ms(results[i].client), ms(results[i].server), us(results[i].identify)))
	}
	w.t.line("  (the replicas run with their read cache off, as on a server whose data changes all the time:")
	w.t.line("  every API key is looked up in the database; the last column is each replica's statelab_identify_seconds)")
	w.t.blank()
	for i, c := range creds {
		w.seen.cost[c.key] = credCost{bytes: int64(len(c.header) + 2), identify: results[i].identify, roundTrips: results[i].roundTrips,
			observed: load.Observe(c.r.method, c.r.path, http.StatusOK, headerOf(c.header))}
	}
	w.t.reveal(p, creds[biggest].key, "j",
		"The JWT carries its claims (who, which role, until when) and a signature in every request; "+
			"the cookie and the API key are only references to something the server keeps. As for time: the "+
			"cookie costs a signature check and a lookup in the process's memory, the API key a check "+
			"against the shared database on every request (the price of being revocable, as you will see; "+
			"a replica may answer it from its read cache, which any commit anywhere empties), the JWT a "+
			"signature check and no lookup at all. On loopback these are microseconds; across a network and at a "+
			"thousand requests a second, the bytes and the checks add up.")
	if !w.t.quiet && results[1].bytes < results[0].bytes {
		w.t.note("Note the API key: its request is smaller than the cookie's. A bearer token is not big " +
			"in itself; what makes a request big is carrying its context along, as the JWT does.")
	}

	return nil
}

// costPerVisit sends a short visit with each stateless credential and
// reveals prediction pj (how many more bytes the JWT client sent).
func costPerVisit(ctx context.Context, w *walk, pj *prediction, sl supervisor.Replica) error {
	keyVisit, jwtVisit, err := w.visits(ctx, sl.Addr)
	if err != nil {
		return err
	}
	w.t.text(fmt.Sprintf("The visit, sent now by each stateless client (a sign-in, then GET "+client.BookRoute+" %d times):", journeyReads))
	for _, v := range []visit{keyVisit, jwtVisit} {
		w.t.line(fmt.Sprintf("    %-8s sign-in %d bytes + %d reads %d bytes = %d bytes", v.name, v.signIn, journeyReads, v.reads, v.signIn+v.reads))
	}
	diff := (jwtVisit.signIn + jwtVisit.reads) - (keyVisit.signIn + keyVisit.reads)
	w.t.line(fmt.Sprintf("    the JWT client sent %d bytes more", diff))
	w.t.blank()
	w.t.reveal(pj, journeyBucket(diff), "c",
		"The sign-ins cost about the same; every read then carries the JWT's extra bytes again. A "+
			"credential's size is paid per request, so a client that makes many requests pays it many "+
			"times: that is the \"more data per request\" the constraint's critics mean.")
	return nil
}

// revocation logs alice out, revokes bob's API key and restarts the
// stateless replica, and shows which credential each of them kills.
func revocation(ctx context.Context, w *walk, sf, sl supervisor.Replica) error {
	w.t.para("Revocation. On the stateful side, logging out deletes the session on the server: the " +
		"cookie is dead at the very next request.")
	if _, err := w.must(ctx, request{method: "POST", base: "http://" + sf.Addr, path: client.LogoutPath, cookie: w.aliceCookie}, http.StatusOK); err != nil {
		return err
	}
	if _, err := w.must(ctx, request{method: "GET", base: "http://" + sf.Addr, path: client.MePath, cookie: w.aliceCookie}, http.StatusUnauthorized); err != nil {
		return err
	}
	w.seen.revoked["c"] = report.RevokedAtOnce // must stopped the walkthrough otherwise
	// The key's route, its variable called {id} as the transcript has
	// always named it.
	keyRoute := path.Dir(client.KeyRoute) + "/{id}"
	p, err := w.t.predict(ctx, "Bob fears his JWT was copied. The stateless server offers him two things: "+
		"he can revoke his API key (DELETE "+keyRoute+"), and the lab can restart the stateless "+
		"replica. Which of them makes the copied JWT stop working before it expires? (k) revoking the "+
		"API key, (r) the restart, (b) both are needed, (n) neither", "[k/r/b/n]",
		map[string]string{"k": "revoking the API key", "r": "the restart", "b": "both", "n": "neither"})
	if err != nil {
		return err
	}
	w.t.para("Revoking an API key deletes its row in the shared database. Every replica checks the key " +
		"there on every request (a cached answer lasts only until the next commit, and the revocation " +
		"is one), so it is dead at once too, everywhere.")
	if _, err := w.must(ctx, request{method: "DELETE", base: "http://" + sl.Addr, path: client.KeyPath(w.bobKeyID), bearer: w.bobKey}, http.StatusOK); err != nil {
		return err
	}
	if _, err := w.must(ctx, request{method: "GET", base: w.lbs[stateless].url, path: client.MePath, bearer: w.bobKey}, http.StatusUnauthorized); err != nil {
		return err
	}
	w.seen.revoked["k"] = report.RevokedAtOnce
	w.t.text("And the JWT, after the key's revocation:")
	afterRevoke, err := w.show(ctx, request{method: "GET", base: w.lbs[stateless].url, path: client.MePath, bearer: w.bobJWT})
	if err != nil {
		return err
	}
	if err := w.restart(ctx, stateless); err != nil {
		return err
	}
	w.t.text("And the JWT after the restart, twice through the balancer, so both replicas answer:")
	afterRestart := true
	for range 2 {
		resp, err := w.show(ctx, request{method: "GET", base: w.lbs[stateless].url, path: client.MePath, bearer: w.bobJWT})
		if err != nil {
			return err
		}
		afterRestart = afterRestart && resp.Status == http.StatusOK
	}
	w.seen.revoked["j"] = report.RevokedAtOnce
	if afterRevoke.Status == http.StatusOK && afterRestart {
		w.seen.revoked["j"] = report.RevokedAfterExpiry
	}
	got := "n"
	switch {
	case afterRevoke.Status != http.StatusOK:
		got = "k"
	case !afterRestart:
		got = "r"
	}
	w.t.reveal(p, got, "n",
		"A JWT is checked by its signature and its expiry alone: that is what makes it cheap and "+
			"stateless. Revoking the key changed a row the JWT never looks at, and a new process has the "+
			"same secret to check it with. The server has nowhere to write \"this one is cancelled\" "+
			"without keeping state again (a deny-list every replica consults on every request). So it "+
			"stays valid until it expires. Short lifetimes are the usual answer.")
	claims, err := jwtClaims(w.bobJWT)
	if err != nil {
		return err
	}
	w.t.line("  What the JWT says, decoded (no secret is needed to read it, only to sign it):")
	w.t.line("    " + string(claims.raw))
	w.t.line(fmt.Sprintf("  Every replica accepts it until %s (in %d seconds),",
		claims.exp.UTC().Format(time.RFC3339), int(time.Until(claims.exp).Seconds())))
	w.t.line("  whatever happens to bob's keys.")
	w.t.blank()
	return nil
}

// journeyReads is how many books a visit of step 5 reads.
const journeyReads = 10

// journeyChoices are the answers to the visit's prediction, by size.
var journeyChoices = map[string]string{"a": "fewer than 100", "b": "100 to 999", "c": "1,000 to 9,999", "d": "10,000 or more"}

// journeyBucket says which of journeyChoices a difference in bytes is.
func journeyBucket(diff int64) string {
	switch {
	case diff < 100:
		return "a"
	case diff < 1000:
		return "b"
	case diff < 10000:
		return "c"
	}
	return "d"
}

// visit is what one client sent over step 5's visit.
type visit struct {
	name          string
	signIn, reads int64
}

// visits sends step 5's visit with each stateless credential: a sign-in,
// then journeyReads reads with the credential it got. The key it gets is
// revoked afterwards, so the database holds only the keys the story made.
func (w *walk) visits(ctx context.Context, addr string) (key, jwt visit, err error) {
	base := "http://" + addr
	read := func(bearer string) (int64, error) {
		var total int64
		for i := range journeyReads {
			path := client.BookPath(int64(10 + i))
			n, resp, err := w.sent(ctx, request{method: "GET", base: base, path: path, bearer: bearer})
			if err != nil {
				return 0, err
			}
			if resp.Status != http.StatusOK {
				return 0, fmt.Errorf("GET %s answered %d %s", path, resp.Status, resp.Outcome())
			}
			total += n
		}
		return total, nil
	}
	key.name, jwt.name = "API key", "JWT"
	n, resp, err := w.sent(ctx, request{method: "POST", base: base, path: client.GenerateKeyPath, body: bob})
	if err != nil {
		return key, jwt, err
	}
	apiKey, keyID, err := resp.keyIssued()
	if err != nil {
		return key, jwt, err
	}
	key.signIn = n
	if key.reads, err = read(apiKey); err != nil {
		return key, jwt, err
	}
	if _, _, err := w.sent(ctx, request{method: "DELETE", base: base, path: client.KeyPath(keyID), bearer: apiKey}); err != nil {
		return key, jwt, err
	}
	n, resp, err = w.sent(ctx, request{method: "POST", base: base, path: client.TokenPath, body: bob})
	if err != nil {
		return key, jwt, err
	}
	token, err := resp.tokenIssued()
	if err != nil {
		return key, jwt, err
	}
	jwt.signIn = n
	jwt.reads, err = read(token)
	return key, jwt, err
}

// sent sends r without showing it and returns how many bytes the client
// wrote for it (request line, headers and body), and the answer.
func (w *walk) sent(ctx context.Context, r request) (int64, response, error) {
	before := w.written.Load()
	resp, err := send(ctx, w.client, r)
	return w.written.Load() - before, resp, err
}

// measurement is what step 5 measured for one credential.
type measurement struct {
	bytes          int64         // sent per request
	client, server time.Duration // mean time per request
	// identify is the server's mean time finding the caller, from its
	// statelab_identify_seconds histogram; roundTrips the calls to a
	// shared service per request (statelab_shared_calls_total).
	identify   time.Duration
	roundTrips float64
}

// measure sends r n times, one after the other, on one kept-alive
// connection, and returns the bytes sent per request, the client's mean
// round trip and the server's mean time for the route (read from the
// replica's own histogram before and after).
func (w *walk) measure(ctx context.Context, addr string, r request, n int) (res measurement, err error) {
	metric := func(suffix string) (float64, error) {
		return scrape(ctx, w.client, addr, "statelab_http_request_duration_seconds"+suffix, `route="`+r.path+`"`, `code="200"`)
	}
	sum0, err := metric("_sum")
	if err != nil {
		return res, err
	}
	cnt0, err := metric("_count")
	if err != nil {
		return res, err
	}
	ident := func() (sum, count, calls float64, err error) {
		if sum, err = scrape(ctx, w.client, addr, api.IdentifyMetric+"_sum"); err != nil {
			return
		}
		if count, err = scrape(ctx, w.client, addr, api.IdentifyMetric+"_count"); err != nil {
			return
		}
		calls, err = scrape(ctx, w.client, addr, api.SharedCallsMetric)
		return
	}
	// The first request may open the connection; it is not counted.
	if _, err := send(ctx, w.client, r); err != nil {
		return res, err
	}
	isum0, icnt0, calls0, err := ident()
	if err != nil {
		return res, err
	}
	before := w.written.Load()
	began := time.Now()
	for range n {
		resp, err := send(ctx, w.client, r)
		if err != nil {
			return res, err
		}
		if resp.Status != http.StatusOK {
			return res, fmt.Errorf("%s %s answered %d %s", r.method, r.path, resp.Status, resp.Outcome())
		}
	}
	res.client = time.Since(began) / time.Duration(n)
	res.bytes = (w.written.Load() - before) / int64(n)
	isum1, icnt1, calls1, err := ident()
	if err != nil {
		return res, err
	}
	if icnt1-icnt0 > 0 {
		res.identify = time.Duration((isum1 - isum0) / (icnt1 - icnt0) * float64(time.Second))
		res.roundTrips = (calls1 - calls0) / (icnt1 - icnt0)
	}
	sum1, err := metric("_sum")
	if err != nil {
		return res, err
	}
	cnt1, err := metric("_count")
	if err != nil {
		return res, err
	}
	if cnt1-cnt0 > 0 {
		res.server = time.Duration((sum1 - sum0) / (cnt1 - cnt0) * float64(time.Second))
	}
	return res, nil
}

// claims are a JWT's payload, as sent and as read.
type claims struct {
	raw json.RawMessage
	exp time.Time
}

// jwtClaims decodes a JWT's payload without checking it: reading needs no
// secret.
func jwtClaims(token string) (claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims{}, fmt.Errorf("a JWT has three parts; this one has %d", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims{}, fmt.Errorf("decode the JWT's payload: %w", err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return claims{}, fmt.Errorf("read the JWT's payload: %w", err)
	}
	return claims{raw: raw, exp: time.Unix(c.Exp, 0)}, nil
}

func stepWhereState(ctx context.Context, w *walk) error {
	w.t.para("\"Stateless\" does not mean the server has no state. The stateless server keeps plenty: " +
		"books, borrow records, members, API keys, all in the shared database. That is resource state: " +
		"what the application is about, named by URLs, the same for every client and every replica. " +
		"What it does not keep is application state: where one client is in its conversation (signed " +
		"in as whom, what is in the cart). The stateless client carries that itself, in every request. " +
		"The stateful server kept it in process memory, which is why a restart or another replica lost it.")
	w.t.para("Here is the shared database, read directly (it is an ordinary SQLite file):")
	q := []struct{ why, sql string }{
		{"Its tables. There is no sessions table and no carts table:",
			`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`},
		{"What they hold now:",
			`SELECT 'books', COUNT(*) FROM books UNION ALL SELECT 'members', COUNT(*) FROM members ` +
				`UNION ALL SELECT 'api_keys', COUNT(*) FROM api_keys UNION ALL SELECT 'borrows', COUNT(*) FROM borrows`},
		{"The books out on loan, and to whom:",
			`SELECT b.id, k.title, m.email FROM borrows b JOIN books k ON k.id = b.book_id ` +
				`JOIN members m ON m.id = b.member_id WHERE b.returned_at IS NULL ORDER BY b.id`},
	}
	for _, x := range q {
		w.t.line("  " + x.why)
		w.t.line("  " + w.t.paint(styleCyan, "$ sqlite3 -readonly "+w.db+" \\"))
		w.t.line("  " + w.t.paint(styleCyan, "    \""+x.sql+"\""))
		rows, err := query(ctx, w.db, x.sql)
		if err != nil {
			return err
		}
		for _, r := range rows {
			w.t.line("    " + strings.Join(r, "|"))
		}
		w.t.blank()
	}
	w.t.para("Bob's borrows are rows any replica can read. The API key he got in step 2 is gone: " +
		"revoking it in step 5 deleted its row, which is why it stopped working everywhere at once. His " +
		"JWT appears nowhere. Neither does alice's cart.")
	w.t.para("The conversation state of the stateful side is in the replicas' memory, and only each " +
		"replica can tell you about it. Every session alice had so far died with a crash or a logout, " +
		"so she logs in once more through the balancer, and the lab reads each replica's " +
		"statelab_sessions_active gauge (every session held) and statelab_sessions_in_use gauge (those " +
		"a request used in the last 10 s) from its /metrics:")
	login, err := w.must(ctx, request{method: "POST", base: w.lbs[stateful].url, path: client.LoginPath, body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	w.aliceCookie = login.cookie()
	for _, r := range w.sides[stateful].Replicas() {
		n, err := scrape(ctx, w.client, r.Addr, "statelab_sessions_active")
		if err != nil {
			return err
		}
		used, err := scrape(ctx, w.client, r.Addr, "statelab_sessions_in_use")
		if err != nil {
			return err
		}
		w.seen.sessionsHeld += n
		w.t.line(fmt.Sprintf("    %-11s %s in memory, %d of them used in the last 10 s", r.ID, plural(int(n), "session", "sessions"), int(used)))
	}
	w.t.blank()
	w.t.para(fmt.Sprintf("The session is in %s's memory and nowhere else: restart that process and it is "+
		"gone; ask the other replica and it has none. A replica also keeps every session nobody logged "+
		"out of until it expires, even when its client signed in again and holds another one; the store "+
		"cannot tell that nobody will come back for it. On a busy lab most of what a replica holds is "+
		"such idle sessions, which is why the dashboard shows the ones in use apart.", login.Replica()))
	return nil
}

func stepHandOff(ctx context.Context, w *walk) error {
	sc, err := scenario.Load("default")
	if err != nil {
		return err
	}
	w.t.para("You have seen each claim once, request by request. The comparison runner shows them at " +
		"scale: replicas of both servers behind balancers like the ones above, simulated users who log " +
		"in, browse, fill carts and borrow, and a timeline of events played on both sides at the same " +
		"moments.")
	w.t.line("    make demo        (the same as: statelab compare --hold)")
	w.t.line("    then open        http://127.0.0.1:8080/")
	w.t.blank()
	w.t.text(fmt.Sprintf("What to watch, event by event (the %q scenario: %s, %d replicas per side to start):",
		sc.Name, sc.Duration.Std(), sc.Replicas))
	replicas := sc.Replicas
	for _, e := range sc.Events {
		what := e.Action
		if e.Note != "" {
			what += " (" + e.Note + ")"
		}
		w.t.bullet(fmt.Sprintf("%s, %s: %s", e.At.Std(), what, watchFor(e, replicas)))
		if e.Action == scenario.ActionScale {
			replicas = e.Replicas
		}
	}
	w.t.text("And all along:")
	w.t.bullet("Sessions per replica: each stateful replica's own count, those in use (a request used them " +
		"in the last 10 s) apart from idle ones. It falls to zero at every restart, crash or scale-in; " +
		"the stateless replicas have nothing to show.")
	w.t.bullet("What each side pays, in the dashboard's cost panel and the report: bytes per request " +
		"against the same request with no credential, and the servers' own time to find out who is " +
		"asking (their statelab_identify_seconds histograms). Measured like for like, not claimed.")
	w.t.blank()
	if err := w.capacity(ctx); err != nil {
		return err
	}
	w.t.para("One idea at a time: statelab compare -h lists smaller scenarios (routing, reliability, chaos, " +
		"scaling, client), and --manual holds each event until you press Next event on the dashboard.")
	w.t.para("The question a class ends with, \"so which one should I use?\", has a command of its own. " +
		"Sticky sessions, a shared redis, a session sealed in the cookie, API keys and JWTs each move " +
		"the state somewhere else; the matrix runs every one of them against every fault (restart, " +
		"crash, scale-out, scale-in, rolling restart, a restart of the session store) on real " +
		"processes, and prints one table of what the users lost, with what each strategy costs on " +
		"every request beside it.")
	w.t.line("    statelab matrix           (about 5 minutes; --quick: about 90 seconds)")
	w.t.line("    then open                 http://127.0.0.1:8080/matrix during make demo, or its matrix.html")
	w.t.blank()
	w.claims()
	w.t.para("The lesson plan, its prediction questions, five exercises and a closing part built on the " +
		"matrix are in docs/LESSON.md, a worksheet to print in docs/WORKSHEET.md; the same story with " +
		"curl is scripts/walkthrough.sh.")
	return nil
}

// capacity hands the scalability claim over to the capacity scenario, with
// a prediction the student checks against that run: the walkthrough's own
// servers share the machine's cores and have no CPU limit, so adding one
// here would add no capacity, and the answer would be made up.
func (w *walk) capacity(ctx context.Context) error {
	sc, err := scenario.Load("capacity")
	if err != nil {
		return err
	}
	before, after := sc.Replicas, sc.Replicas
	var at time.Duration
	for _, e := range sc.Events {
		if e.Action == scenario.ActionScale && e.Replicas > before {
			after, at = e.Replicas, e.At.Std()
			break
		}
	}
	w.t.para(fmt.Sprintf("The first benefit claimed for statelessness is scalability: add replicas and "+
		"you add capacity. On one machine every replica shares the same cores, so adding one adds "+
		"nothing; in production each runs in a container with a CPU limit. The %q scenario does "+
		"the same: every replica may use %g of a core, enforced by the kernel (a cgroup per replica with "+
		"a CFS quota, like resources.limits.cpu; where it cannot, the runner says so), and "+
		"requests arrive at %g a second per side whatever the servers do, each given up after %s. "+
		"%d replicas cannot carry that; at %s the scenario scales out to %d.",
		sc.Name, sc.ReplicaCPU, sc.Rate, sc.Deadline.Std(), before, at, after))
	w.t.line("    make capacity    (the same as: statelab compare --scenario capacity --hold, as root)")
	w.t.blank()
	p, err := w.t.predict(ctx, fmt.Sprintf("Before you run it: with memory-sticky on the left and apikey on "+
		"the right (the demo's pair), what happens after the scale-out to %d replicas to the requests "+
		"answered in time each second, and to the timeouts? a: more answered and fewer timeouts on both "+
		"sides; b: only on apikey; c: on neither.", after),
		"[a/b/c]", map[string]string{"a": "both sides", "b": "apikey only", "c": "neither side"})
	if err != nil {
		return err
	}
	w.t.later(p, "the run answers it. Read its phase table (the terminal prints it, report.md has it): "+
		"throughput/s and timeouts before and after the scale-out, on each side; or the dashboard's "+
		"successful requests and the purple CPU line of each replica: new sticky replicas get only new "+
		"sign-ins, and this pool of users signed in before the scale-out.")
	return nil
}

// watchFor says what an event of the demo's timeline shows, for its
// default pair: sessions in memory behind a sticky balancer, against API
// keys. replicas is how many each side runs before the event.
func watchFor(e scenario.Event, replicas int) string {
	switch e.Action {
	case scenario.ActionRestart:
		return "the users pinned to that replica lose their sessions on the stateful side only: " +
			"session_lost, re-logins, lost carts. The stateless side does not notice."
	case scenario.ActionCrash:
		return "the killed process takes the requests it was answering with it. The balancer sends " +
			"those that are safe to send twice (reads, and writes with an Idempotency-Key, which the " +
			"simulated users send) to another replica, so the users do not see them fail; the " +
			"stateful side's retry lands where the session never was. Afterwards only the stateful " +
			"side keeps paying: session_lost, relogins, lost carts."
	case scenario.ActionScale:
		if e.Replicas > replicas {
			return "the sticky balancer keeps every signed-in user on the replica that holds its " +
				"session, so the new stateful replicas get only newcomers (the report's balance lines); " +
				"the new stateless replicas take their share at once. With --sides memory-hash,apikey " +
				"the hash ring moves some users to the new replicas, and they lose their sessions."
		}
		return "the sessions held by the stateful replicas taken away go with them; the stateless " +
			"side just has fewer replicas."
	case scenario.ActionRollingRestart:
		return "every stateful session is lost, one replica after another; the stateless side stays " +
			"at full availability."
	case scenario.ActionClientRestart:
		return "on both sides, the users whose clients restart lose their sign-in and their cart, " +
			"wherever it was kept: a stateless client keeps its cart itself."
	case scenario.ActionPause, scenario.ActionResume:
		return "the simulated users stop or start again; the numbers stand still in between."
	}
	return "watch both sides."
}
