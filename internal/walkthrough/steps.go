package walkthrough

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/statelab/statelab/compare"
)

// The demo members (internal/sqlite seeds them; their passwords are public).
type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

var (
	alice = credentials{"alice@example.com", "wonderland"}
	bob   = credentials{"bob@example.com", "builder"}
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
	login, err := w.must(ctx, request{method: "POST", base: sf, path: "/api/auth/login", body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	if w.aliceCookie = login.cookie(); w.aliceCookie == "" {
		return fmt.Errorf("the login set no %s cookie", cookieName)
	}
	w.t.para("From now on the client only sends the cookie back. To know who is asking, the server " +
		"looks the id up in its memory.")
	if _, err := w.must(ctx, request{method: "GET", base: sf, path: "/api/me", cookie: w.aliceCookie}, http.StatusOK); err != nil {
		return err
	}
	if err := w.t.pause(ctx, "fill the cart"); err != nil {
		return err
	}

	w.t.para(fmt.Sprintf("Alice puts %s in her cart. The server keeps the cart in her session; the client "+
		"holds nothing but the cookie.", plural(len(aliceBooks), "book", "books")))
	for _, id := range aliceBooks {
		if _, err := w.must(ctx, request{method: "POST", base: sf, path: "/api/cart/items", cookie: w.aliceCookie,
			body: map[string]int64{"book_id": id}}, http.StatusCreated); err != nil {
			return err
		}
	}
	if _, err := w.must(ctx, request{method: "GET", base: sf, path: "/api/cart", cookie: w.aliceCookie}, http.StatusOK); err != nil {
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
	key, err := w.must(ctx, request{method: "POST", base: sl, path: "/api/auth/generate-key", body: bob}, http.StatusCreated)
	if err != nil {
		return err
	}
	if err := key.field("api_key", &w.bobKey); err != nil {
		return err
	}
	if err := key.field("key_id", &w.bobKeyID); err != nil {
		return err
	}
	w.t.para("A JWT is a signed statement: \"this is member 2, bob@example.com, until a quarter of an " +
		"hour from now\". The server stores nothing at all for it: it checks the signature with its " +
		"secret and reads the claims.")
	tok, err := w.must(ctx, request{method: "POST", base: sl, path: "/api/auth/token", body: bob}, http.StatusOK)
	if err != nil {
		return err
	}
	if err := tok.field("access_token", &w.bobJWT); err != nil {
		return err
	}
	if err := w.t.pause(ctx, "ask who am I"); err != nil {
		return err
	}

	w.t.para("Who am I, asked once with each credential. No cookie and no session: the Authorization " +
		"header is everything the server needs to answer.")
	if _, err := w.must(ctx, request{method: "GET", base: sl, path: "/api/me", bearer: w.bobKey}, http.StatusOK); err != nil {
		return err
	}
	if _, err := w.must(ctx, request{method: "GET", base: sl, path: "/api/me", bearer: w.bobJWT}, http.StatusOK); err != nil {
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
	p, err := w.t.predict(ctx, "The stateful server is about to restart. Will alice's session cookie "+
		"still work afterwards?", "[y/n]", yesNo)
	if err != nil {
		return err
	}
	if err := w.restart(ctx, stateful); err != nil {
		return err
	}
	sf := w.url(stateful, 1)
	me, err := w.show(ctx, request{method: "GET", base: sf, path: "/api/me", cookie: w.aliceCookie})
	if err != nil {
		return err
	}
	if _, err := w.show(ctx, request{method: "GET", base: sf, path: "/api/cart", cookie: w.aliceCookie}); err != nil {
		return err
	}
	w.t.reveal(p, yn(me.status == http.StatusOK), "n",
		"The cookie is still genuine: the new process checks its signature with the same key. But "+
			"the session it names lived in the old process's memory, and that memory is gone. The server "+
			"says exactly that with session_lost: not \"you forged this\" but \"I don't have it\".")
	if err := w.t.pause(ctx, "log in again"); err != nil {
		return err
	}
	w.t.para("Alice can log in again, but her cart starts empty: the books she chose are gone for good.")
	login, err := w.must(ctx, request{method: "POST", base: sf, path: "/api/auth/login", body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	w.aliceCookie = login.cookie()
	if _, err := w.must(ctx, request{method: "GET", base: sf, path: "/api/cart", cookie: w.aliceCookie}, http.StatusOK); err != nil {
		return err
	}
	if err := w.t.pause(ctx, "restart the stateless server"); err != nil {
		return err
	}

	p, err = w.t.predict(ctx, "Now the stateless server restarts the same way. Will bob's API key and "+
		"his JWT still work afterwards?", "[y/n]", yesNo)
	if err != nil {
		return err
	}
	if err := w.restart(ctx, stateless); err != nil {
		return err
	}
	sl := w.url(stateless, 1)
	allOK := true
	for _, cred := range []string{w.bobKey, w.bobJWT} {
		resp, err := w.show(ctx, request{method: "GET", base: sl, path: "/api/me", bearer: cred})
		if err != nil {
			return err
		}
		allOK = allOK && resp.status == http.StatusOK
	}
	w.t.reveal(p, yn(allOK), "y",
		"Nothing the server needed was in the old process. The API key's hash is in the shared "+
			"database; the JWT carries its own claims, and the new process has the same secret to check them.")
	if err := w.t.pause(ctx, "borrow bob's cart"); err != nil {
		return err
	}
	w.t.para("Bob's cart survived as well, because it never left the client. He borrows it now, whole, " +
		"in one request.")
	_, err = w.must(ctx, request{method: "POST", base: sl, path: "/api/borrows", bearer: w.bobJWT,
		body: map[string][]int64{"book_ids": w.bobCart}}, http.StatusCreated)
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
	if err := w.sides[side].Restart(ctx, old.ID); err != nil {
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

// yn turns a fact into the answer to a yes-or-no prediction.
func yn(b bool) string {
	if b {
		return "y"
	}
	return "n"
}

// ten is how many requests step 4 sends per side.
const ten = 10

func stepReplicas(ctx context.Context, w *walk) error {
	w.t.para("One process is rarely enough. The lab starts a second replica of each server and puts a " +
		"round-robin load balancer in front of each pair, with no stickiness: consecutive requests of " +
		"one client go to different replicas, as they do behind most balancers unless someone pins them.")
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

	w.t.para("Alice logs in through the stateful balancer. Note which replica answers: that one now " +
		"holds her session.")
	login, err := w.must(ctx, request{method: "POST", base: w.lbs[stateful].url, path: "/api/auth/login", body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	w.aliceCookie = login.cookie()
	p, err := w.t.predict(ctx, fmt.Sprintf("Alice now sends GET /api/me %d times through the balancer with "+
		"that cookie. Will all %d succeed?", ten, ten), "[y/n]", yesNo)
	if err != nil {
		return err
	}
	ok, err := w.repeat(ctx, request{method: "GET", base: w.lbs[stateful].url, path: "/api/me", cookie: w.aliceCookie})
	if err != nil {
		return err
	}
	w.t.reveal(p, yn(ok == ten), "n",
		fmt.Sprintf("Only %s, the replica that answered the login, holds alice's session. Every other "+
			"request lands on a replica that has never heard of her: session_lost, every second time. Sticky "+
			"sessions would hide this, until the one replica that holds the session restarts, or is "+
			"taken out to scale in.", login.replica))
	if err := w.t.pause(ctx, "the same with the stateless side"); err != nil {
		return err
	}

	p, err = w.t.predict(ctx, fmt.Sprintf("Bob sends GET /api/me %d times through the stateless balancer "+
		"with his JWT. Will all %d succeed?", ten, ten), "[y/n]", yesNo)
	if err != nil {
		return err
	}
	ok, err = w.repeat(ctx, request{method: "GET", base: w.lbs[stateless].url, path: "/api/me", bearer: w.bobJWT})
	if err != nil {
		return err
	}
	w.t.reveal(p, yn(ok == ten), "y",
		"Any replica can check the JWT (they share the secret) or the API key (they share the "+
			"database). That is the scalability the constraint promises: add replicas, balance any way "+
			"you like, and no session needs to follow the client around.")
	return nil
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
		rows = append(rows, row{resp.replica, resp.status, resp.outcome()})
	}
	w.t.line("  The first of them:")
	w.t.printExchange(r, first)
	w.t.line(fmt.Sprintf("  All %d, in order:", ten))
	w.t.line("     #  answered by  status  outcome")
	ok := 0
	for i, x := range rows {
		style := styleGreen
		if x.status == http.StatusOK {
			ok++
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
	login, err := w.must(ctx, request{method: "POST", base: "http://" + sf.Addr, path: "/api/auth/login", body: alice}, http.StatusOK)
	if err != nil {
		return err
	}
	w.aliceCookie = login.cookie()

	p, err := w.t.predict(ctx, "Which GET /api/me request is the biggest on the wire: the one with the "+
		"cookie (c), the API key (k) or the JWT (j)?", "[c/k/j]", map[string]string{"c": "the cookie", "k": "the API key", "j": "the JWT"})
	if err != nil {
		return err
	}
	creds := []struct {
		key, name, header string
		replica           string
		r                 request
	}{
		{"c", "cookie", "Cookie: " + cookieName + "=" + w.aliceCookie, sf.Addr,
			request{method: "GET", base: "http://" + sf.Addr, path: "/api/me", cookie: w.aliceCookie}},
		{"k", "API key", "Authorization: Bearer " + w.bobKey, sl.Addr,
			request{method: "GET", base: "http://" + sl.Addr, path: "/api/me", bearer: w.bobKey}},
		{"j", "JWT", "Authorization: Bearer " + w.bobJWT, sl.Addr,
			request{method: "GET", base: "http://" + sl.Addr, path: "/api/me", bearer: w.bobJWT}},
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
	w.t.para(fmt.Sprintf("GET /api/me, %d times with each credential, one request at a time on one kept-alive connection.", n))
	w.t.text("What the client sent per request (request line and headers, counted on the connection):")
	biggest := 0
	for i, c := range creds {
		w.t.line(fmt.Sprintf("    %-8s %d bytes on the wire, of which the credential header: %d bytes",
			c.name, results[i].bytes, len(c.header)+2))
		if results[i].bytes > results[biggest].bytes {
			biggest = i
		}
	}
	w.t.blank()
	w.t.text(fmt.Sprintf("Time per request, mean of %d: the client's round trip, and the server's own "+
		"measurement of /api/me (its statelab_http_request_duration_seconds histogram, read before and after):", n))
	for i, c := range creds {
		w.t.line(fmt.Sprintf("    %-8s round trip %s, in the server %s", c.name, ms(results[i].client), ms(results[i].server)))
	}
	w.t.blank()
	w.t.reveal(p, creds[biggest].key, "j",
		"The JWT carries its claims (who, which role, until when) and a signature in every request; "+
			"the cookie and the API key are only references to something the server keeps. As for time: the "+
			"cookie costs a signature check and a lookup in the process's memory, the API key a database "+
			"query on every request (the price of being revocable, as you will see), the JWT a signature "+
			"check and no lookup at all. On loopback these are microseconds; across a network and at a "+
			"thousand requests a second, the bytes and the checks add up.")
	if !w.t.quiet && results[1].bytes < results[0].bytes {
		w.t.note("Note the API key: its request is smaller than the cookie's. A bearer token is not big " +
			"in itself; what makes a request big is carrying its context along, as the JWT does.")
	}
	if err := w.t.pause(ctx, "revoke a credential"); err != nil {
		return err
	}

	w.t.para("Revocation. On the stateful side, logging out deletes the session on the server: the " +
		"cookie is dead at the very next request.")
	if _, err := w.must(ctx, request{method: "POST", base: "http://" + sf.Addr, path: "/api/auth/logout", cookie: w.aliceCookie}, http.StatusOK); err != nil {
		return err
	}
	if _, err := w.must(ctx, request{method: "GET", base: "http://" + sf.Addr, path: "/api/me", cookie: w.aliceCookie}, http.StatusUnauthorized); err != nil {
		return err
	}
	w.t.para("Revoking an API key deletes its row in the shared database. Every replica looks the key " +
		"up there on every request, so it is dead at once too, everywhere.")
	if _, err := w.must(ctx, request{method: "DELETE", base: "http://" + sl.Addr, path: "/api/auth/keys/" + w.bobKeyID, bearer: w.bobKey}, http.StatusOK); err != nil {
		return err
	}
	if _, err := w.must(ctx, request{method: "GET", base: w.lbs[stateless].url, path: "/api/me", bearer: w.bobKey}, http.StatusUnauthorized); err != nil {
		return err
	}
	p, err = w.t.predict(ctx, "Bob's API key is revoked. His JWT was issued by the same server, for "+
		"the same account. Will the JWT still be accepted?", "[y/n]", yesNo)
	if err != nil {
		return err
	}
	me, err := w.show(ctx, request{method: "GET", base: w.lbs[stateless].url, path: "/api/me", bearer: w.bobJWT})
	if err != nil {
		return err
	}
	w.t.reveal(p, yn(me.status == http.StatusOK), "y",
		"A JWT is checked by its signature and its expiry alone: that is what makes it cheap and "+
			"stateless. The server has nowhere to write \"this one is cancelled\" without keeping state "+
			"again (a deny-list every replica consults on every request). So it stays valid until it "+
			"expires. Short lifetimes are the usual answer.")
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

// measurement is what step 5 measured for one credential.
type measurement struct {
	bytes          int64         // sent per request
	client, server time.Duration // mean time per request
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
	// The first request may open the connection; it is not counted.
	if _, err := send(ctx, w.client, r); err != nil {
		return res, err
	}
	before := w.written.Load()
	began := time.Now()
	for range n {
		resp, err := send(ctx, w.client, r)
		if err != nil {
			return res, err
		}
		if resp.status != http.StatusOK {
			return res, fmt.Errorf("%s %s answered %d %s", r.method, r.path, resp.status, resp.outcome())
		}
	}
	res.client = time.Since(began) / time.Duration(n)
	res.bytes = (w.written.Load() - before) / int64(n)
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
		"replica can tell you about it. Their statelab_sessions_active gauges, read from /metrics now:")
	for _, r := range w.sides[stateful].Replicas() {
		n, err := scrape(ctx, w.client, r.Addr, "statelab_sessions_active")
		if err != nil {
			return err
		}
		w.t.line(fmt.Sprintf("    %-11s %s in memory", r.ID, plural(int(n), "session", "sessions")))
	}
	w.t.blank()
	w.t.para("Those sessions are the ones alice opened after the restart: the login in step 3 and the " +
		"one through the balancer in step 4 (the one in step 5 she logged out of). Restart the process " +
		"and they are gone; ask the other replica and it has none.")
	return nil
}

func stepHandOff(ctx context.Context, w *walk) error {
	sc, err := compare.LoadScenario("default")
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
		if e.Action == compare.ActionScale {
			replicas = e.Replicas
		}
	}
	w.t.text("And all along:")
	w.t.bullet("Sessions per replica: the stateful replicas' memory fills up and empties at every event; " +
		"the stateless replicas have nothing to show.")
	w.t.bullet("Latency between events: the stateless side pays for authentication on every request.")
	w.t.blank()
	w.t.para("The lesson plan, its prediction questions and three exercises are in docs/LESSON.md; the " +
		"same story with curl is scripts/walkthrough.sh.")
	return nil
}

// watchFor says what an event of the demo's timeline shows; replicas is
// how many each side runs before it.
func watchFor(e compare.Event, replicas int) string {
	switch e.Action {
	case compare.ActionRestart:
		return "session_lost jumps on the stateful side only: the users whose sessions were on that " +
			"replica must log in again and lose their carts (relogins, cart items lost). The stateless " +
			"side does not notice."
	case compare.ActionCrash:
		return "the requests in flight on the killed process fail on both sides, for that instant. " +
			"Afterwards only the stateful side keeps paying: session_lost, relogins, lost carts."
	case compare.ActionScale:
		if e.Replicas > replicas {
			return "the new stateful replicas hold no sessions, so adding capacity makes things worse " +
				"at first (session_lost on every request that lands there). New stateless replicas are " +
				"useful at once."
		}
		return "the sessions held by the stateful replicas taken away go with them; the stateless " +
			"side just has fewer replicas."
	case compare.ActionRollingRestart:
		return "every stateful session is lost, one replica after another; the stateless side stays " +
			"at full availability."
	case compare.ActionPause, compare.ActionResume:
		return "the simulated users stop or start again; the numbers stand still in between."
	}
	return "watch both sides."
}
