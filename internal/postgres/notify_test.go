package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/postgres"
)

// liveness bounds how long a change may take to reach the notify cache
// before a test calls it lost: a behaviour check, not a speed target.
const liveness = 5 * time.Second

// waitListening waits for db's listener to be connected and LISTENing, and
// returns its server process.
func waitListening(t testing.TB, db *postgres.DB) uint32 {
	t.Helper()
	for end := time.Now().Add(liveness); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if live, pid := postgres.Listening(db); live {
			return pid
		}
	}
	t.Fatalf("the notify cache's listener did not connect within %s", liveness)
	return 0
}

// untilHit repeats read until the cache answers it, so that what follows
// starts from a cached answer; a notification of an earlier change may
// empty the cache in between.
func untilHit(t testing.TB, db *postgres.DB, read func()) {
	t.Helper()
	for end := time.Now().Add(liveness); time.Now().Before(end); {
		before := db.CacheStats().Hits
		read()
		if db.CacheStats().Hits > before {
			return
		}
	}
	t.Fatalf("no read was a cache hit within %s (cache %+v)", liveness, db.CacheStats())
}

// TestNotifyCache_HitCostsNoQuery: once the notify cache holds a book, an
// API key and a page, reading them again sends the server nothing (counted
// by the pool's tracer, which does not see the listener's connection) and
// counts no key lookup, 1,000 times over.
func TestNotifyCache_HitCostsNoQuery(t *testing.T) {
	ctx := context.Background()
	var queries atomic.Uint64
	db := openDB(t, newDatabase(t), postgres.WithNotifyCache(), postgres.WithQueryCount(&queries))
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAPIKey(ctx, library.APIKey{ID: "hit", MemberID: alice.ID, Hash: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	lookups := prometheus.NewCounter(prometheus.CounterOpts{Name: "lookups"})
	if !db.CountKeyLookups(lookups) {
		t.Fatal("CountKeyLookups = false, want the store to count its own lookups")
	}
	waitListening(t, db)
	reads := func() {
		if _, err := db.FindBookByID(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.FindAPIKey(ctx, "hit"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.FindBooks(ctx, library.BookFilter{}); err != nil {
			t.Fatal(err)
		}
	}
	// The notification of the key's creation may still be on its way:
	// read until a whole round costs nothing.
	for end := time.Now().Add(liveness); ; {
		q := queries.Load()
		reads()
		if queries.Load() == q {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("every round of reads still asks the server after %s (cache %+v)", liveness, db.CacheStats())
		}
	}
	q, l, st := queries.Load(), testutil.ToFloat64(lookups), db.CacheStats()
	const rounds = 1000
	for range rounds {
		reads()
	}
	if got := queries.Load() - q; got != 0 {
		t.Errorf("%d rounds of cached reads sent %d queries, want 0", rounds, got)
	}
	if got := testutil.ToFloat64(lookups) - l; got != 0 {
		t.Errorf("%d cached key lookups counted %v round trips, want 0", rounds, got)
	}
	if got := db.CacheStats().Hits - st.Hits; got != 3*rounds {
		t.Errorf("hits: %d, want %d", got, 3*rounds)
	}
	// A miss asks, and is counted.
	if _, _, err := db.FindAPIKey(ctx, "no-such-key"); library.ErrorCode(err) != library.ENOTFOUND {
		t.Fatalf("unknown key: %v", err)
	}
	if got := testutil.ToFloat64(lookups) - l; got != 1 {
		t.Errorf("an uncached key lookup counted %v round trips, want 1", got)
	}
}

// TestNotifyCache_SeesEveryChangeOfAnotherProcess: another process
// retitles a book and revokes a key 200 times; each time this process,
// whose notify cache answered both from memory a moment before, must
// read the new title and refuse the key once the notifications arrive
// (within the liveness bound). The time from the writer's commit to the
// moment this process sees it is the window in which it is stale: logged.
func TestNotifyCache_SeesEveryChangeOfAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx := context.Background()
	srv := labtest.SharedPostgres(t)
	name := fmt.Sprintf("test_%d", databases.Add(1))
	if err := srv.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, srv.URLWithPassword(name), postgres.WithNotifyCache())
	book, err := db.CreateBook(ctx, library.Book{Title: "title-0", Author: "Notify Author", Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	key := func(i int) string { return fmt.Sprintf("notify-%03d", i) }
	waitListening(t, db)

	stdin, replies := startHelper(t, "stamped", srv.Env(), srv.URL(name), alice.ID)

	title := func() string {
		b, err := db.FindBookByID(ctx, book.ID)
		if err != nil {
			t.Fatal(err)
		}
		return b.Title
	}
	// Every read after a line is sent is timed; once the writer says when
	// its commits returned, the window of each change is from its commit
	// to the start of the first read that saw it (negative when this
	// process saw it before the writer heard its commit was done).
	type reply struct {
		line              string
		retitled, revoked time.Time
	}
	replyc := make(chan reply, 1)
	go func() {
		for replies.Scan() {
			var r reply
			var book int64
			var key, title string
			var retitled, revoked int64
			fmt.Sscan(replies.Text(), &book, &key, &title, &retitled, &revoked)
			r.line = fmt.Sprintf("%d %s %s", book, key, title)
			r.retitled, r.revoked = time.Unix(0, retitled), time.Unix(0, revoked)
			replyc <- r
		}
		close(replyc)
	}()
	var (
		titleWindows, keyWindows []time.Duration
		staleRounds              int // rounds in which a read that began after a commit returned still answered the old state
	)
	for i := 1; i <= rounds; i++ {
		// This process's own write empties its cache at its commit, and
		// again when its notification comes back (one: the statements of a
		// transaction notify once per table): wait for that, so that only
		// the other's notifications empty it while it measures.
		gen := postgres.Generation(db)
		if err := db.CreateAPIKey(ctx, library.APIKey{ID: key(i), MemberID: alice.ID, Hash: []byte{1}}); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(liveness); postgres.Generation(db) < gen+2; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(end) {
				t.Fatalf("round %d: the notification of this process's own commit did not arrive within %s", i, liveness)
			}
		}
		before := fmt.Sprintf("title-%d", i-1)
		untilHit(t, db, func() {
			if got := title(); got != before {
				t.Fatalf("round %d before the change: read %q, want %q", i, got, before)
			}
		})
		untilHit(t, db, func() {
			if _, _, err := db.FindAPIKey(ctx, key(i)); err != nil {
				t.Fatalf("round %d before the change: key %s: %v", i, key(i), err)
			}
		})
		line := fmt.Sprintf("%d %s title-%d", book.ID, key(i), i)
		sent := time.Now()
		fmt.Fprintln(stdin, line)
		want := fmt.Sprintf("title-%d", i)
		var titleSeen, keySeen, lastOldTitle, lastOldKey time.Time
		for titleSeen.IsZero() || keySeen.IsZero() {
			if time.Since(sent) > liveness {
				t.Fatalf("round %d: %s after the line was sent to another process this process still reads the old title %v / accepts the key %v (cache %+v)",
					i, liveness, titleSeen.IsZero(), keySeen.IsZero(), db.CacheStats())
			}
			if start := time.Now(); titleSeen.IsZero() {
				switch got := title(); got {
				case want:
					titleSeen = start
				case before:
					lastOldTitle = start
				default:
					t.Fatalf("round %d: read %q, want %q or %q", i, got, before, want)
				}
			}
			if start := time.Now(); keySeen.IsZero() {
				_, _, err := db.FindAPIKey(ctx, key(i))
				if library.ErrorCode(err) == library.ENOTFOUND {
					keySeen = start
				} else {
					lastOldKey = start
				}
			}
			// A short sleep, not a spin: on two cores a spinning reader
			// takes the CPU the listener needs to hear the change, and
			// measures itself.
			time.Sleep(20 * time.Microsecond)
		}
		r, ok := <-replyc
		if !ok || r.line != line {
			t.Fatalf("the writer process did not commit %q: got %q, %v", line, r.line, replies.Err())
		}
		titleWindows = append(titleWindows, titleSeen.Sub(r.retitled))
		keyWindows = append(keyWindows, keySeen.Sub(r.revoked))
		if lastOldTitle.After(r.retitled) || lastOldKey.After(r.revoked) {
			staleRounds++
		}
	}
	summary := func(w []time.Duration) string {
		slices.Sort(w)
		at := func(q float64) time.Duration { return w[int(q*float64(len(w)-1))].Round(time.Microsecond) }
		return fmt.Sprintf("p50 %s, p99 %s, max %s", at(.5), at(.99), at(1))
	}
	t.Logf("notify cache, %d changes by another process, from the writer's commit returning to this process reading the change: retitle %s; revocation %s; %d of %d rounds served the old state after the commit (cache %+v)",
		rounds, summary(titleWindows), summary(keyWindows), staleRounds, rounds, db.CacheStats())
}

// TestNotifyCache_ListenerLost: with its listener's connection cut
// (pg_terminate_backend), the notify cache answers nothing from memory —
// every read is a miss, so a change committed meanwhile is read at once —
// until the listener is back; then it caches again, from the new state.
func TestNotifyCache_ListenerLost(t *testing.T) {
	ctx := context.Background()
	url := newDatabase(t)
	// The listener waits 2 s before it connects again: time to look.
	db := openDB(t, url, postgres.WithNotifyCache(), postgres.WithListenRetry(2*time.Second))
	other := openDB(t, url, postgres.WithoutCache()) // another replica
	book, err := other.CreateBook(ctx, library.Book{Title: "before", Author: "Lost Listener", Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	pid := waitListening(t, db)
	title := func() string {
		b, err := db.FindBookByID(ctx, book.ID)
		if err != nil {
			t.Fatal(err)
		}
		return b.Title
	}
	untilHit(t, db, func() {
		if got := title(); got != "before" {
			t.Fatalf("read %q, want before", got)
		}
	})

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed bool
	if err := conn.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int64(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d): %v, %v", pid, killed, err)
	}
	for end := time.Now().Add(liveness); ; time.Sleep(time.Millisecond) {
		if live, _ := postgres.Listening(db); !live {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the cache still thinks its listener is there %s after its connection was cut", liveness)
		}
	}
	changed := "changed while the listener was away"
	if _, err := other.UpdateBook(ctx, book.ID, library.BookUpdate{Title: &changed}); err != nil {
		t.Fatal(err)
	}
	st := db.CacheStats()
	const reads = 20
	for range reads {
		if got := title(); got != changed {
			t.Fatalf("without a listener the cache served %q, want %q", got, changed)
		}
	}
	if live, _ := postgres.Listening(db); !live {
		now := db.CacheStats()
		if now.Hits != st.Hits || now.Misses != st.Misses+reads {
			t.Errorf("without a listener: %d hits and %d misses over %d reads, want every read a miss", now.Hits-st.Hits, now.Misses-st.Misses, reads)
		}
	} else {
		t.Log("the listener came back during the reads: the miss count is not checked")
	}
	if again := waitListening(t, db); again == pid {
		t.Errorf("the listener is back on server process %d, the one that was terminated", pid)
	}
	untilHit(t, db, func() {
		if got := title(); got != changed {
			t.Fatalf("after the listener came back: read %q, want %q", got, changed)
		}
	})
}

// BenchmarkNotifyCache_FindAPIKey checks a bearer key through the notify
// cache: a map read, and no query (queries/op).
func BenchmarkNotifyCache_FindAPIKey(b *testing.B) {
	ctx := context.Background()
	var queries atomic.Uint64
	db := openDB(b, newDatabase(b), postgres.WithNotifyCache(), postgres.WithQueryCount(&queries))
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		b.Fatal(err)
	}
	if err := db.CreateAPIKey(ctx, library.APIKey{ID: "bench", MemberID: alice.ID, Hash: []byte{1}}); err != nil {
		b.Fatal(err)
	}
	waitListening(b, db)
	untilHit(b, db, func() { db.FindAPIKey(ctx, "bench") })
	q := queries.Load()
	for b.Loop() {
		if _, _, err := db.FindAPIKey(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(queries.Load()-q)/float64(b.N), "queries/op")
}

// TestNotifyCache_ChangesEmptyWhatDependsOnThem: a borrow, which changes
// books, whether another handle's or this one's own, leaves the API keys
// cached (the workload's commits cost the keys nothing), and re-reads the
// book; a key created or revoked anywhere empties the keys.
func TestNotifyCache_ChangesEmptyWhatDependsOnThem(t *testing.T) {
	ctx := context.Background()
	url := newDatabase(t)
	var queries atomic.Uint64
	db := openDB(t, url, postgres.WithNotifyCache(), postgres.WithQueryCount(&queries))
	other := openDB(t, url, postgres.WithoutCache())
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	waitListening(t, db)
	g := postgres.Generation(db)
	if err := db.CreateAPIKey(ctx, library.APIKey{ID: "kept", MemberID: alice.ID, Hash: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	// The key's creation is heard of twice: at its own commit, and when
	// its notification comes back. Start once both have.
	for end := time.Now().Add(liveness); postgres.Generation(db) < g+2; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the notification of the key's creation did not arrive within %s", liveness)
		}
	}
	key := func() {
		if _, _, err := db.FindAPIKey(ctx, "kept"); err != nil {
			t.Fatal(err)
		}
	}
	book := func(id int64) library.Book {
		b, err := db.FindBookByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// asks reports how many queries read sent.
	asks := func(read func()) uint64 {
		q := queries.Load()
		read()
		return queries.Load() - q
	}
	// seen waits until db reads the book's copies as want: the
	// notification of another handle's commit has arrived.
	seen := func(id int64, want int) {
		t.Helper()
		for end := time.Now().Add(liveness); book(id).AvailableCopies != want; time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("book %d still reads %d copies after %s, want %d", id, book(id).AvailableCopies, liveness, want)
			}
		}
	}
	untilHit(t, db, key)

	// Another handle lends a copy of book 2: the books change.
	before := book(2).AvailableCopies
	if _, err := other.Borrow(ctx, library.BorrowRequest{MemberID: alice.ID, BookIDs: []int64{2}}); err != nil {
		t.Fatal(err)
	}
	seen(2, before-1)
	if n := asks(key); n != 0 {
		t.Errorf("after another handle's borrow, the key's lookup sent %d queries, want 0 (a change to books leaves keys cached)", n)
	}
	// This handle's own borrow: it reads its own write at once, and the
	// keys stay cached.
	three := book(3).AvailableCopies
	if _, err := db.Borrow(ctx, library.BorrowRequest{MemberID: alice.ID, BookIDs: []int64{3}}); err != nil {
		t.Fatal(err)
	}
	if got := book(3).AvailableCopies; got != three-1 {
		t.Errorf("right after its own borrow, this handle reads %d copies of book 3, want %d", got, three-1)
	}
	if n := asks(key); n != 0 {
		t.Errorf("after this handle's own borrow, the key's lookup sent %d queries, want 0", n)
	}

	// Another handle creates a key: the keys change, and are asked again.
	if err := other.CreateAPIKey(ctx, library.APIKey{ID: "new", MemberID: alice.ID, Hash: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(liveness); asks(key) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the key was still answered from memory %s after another handle created a key", liveness)
		}
	}
	// And a revocation of this very key is refused once heard of.
	if err := other.RevokeAPIKey(ctx, alice.ID, "kept"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(liveness); ; time.Sleep(time.Millisecond) {
		if _, _, err := db.FindAPIKey(ctx, "kept"); library.ErrorCode(err) == library.ENOTFOUND {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the revoked key was still accepted %s after its revocation", liveness)
		}
	}
}
