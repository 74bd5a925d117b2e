package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/postgres"
)

// Environment of the helper process. The test binary re-executes itself
// with these set, so a real, separate process shares the database, the way
// a replica does. The URL carries no password: the child reads it from
// PGPASSWORD, as a replica would.
const (
	envHelper = "STATELAB_POSTGRES_HELPER"
	envURL    = "STATELAB_POSTGRES_HELPER_URL"
	envMember = "STATELAB_POSTGRES_HELPER_MEMBER"
)

// TestHelperProcess is not a test: it is the body of the child process of
// TestReadCache_SeesEveryCommitOfAnotherProcess (and of
// TestNotifyCache_SeesEveryChangeOfAnotherProcess). For each line "book
// key title" on stdin it retitles the book and revokes the key, and
// answers the same line once both are committed ("stamped": followed by
// the times each commit returned, in Unix nanoseconds).
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode != "pingpong" && mode != "stamped" {
		t.Skip("only runs as a child process")
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, os.Getenv(envURL))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer db.Close()
	var member int64
	fmt.Sscan(os.Getenv(envMember), &member)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var book int64
		var key, title string
		fmt.Sscan(in.Text(), &book, &key, &title)
		_, errUpdate := db.UpdateBook(ctx, book, library.BookUpdate{Title: &title})
		retitled := time.Now()
		errRevoke := db.RevokeAPIKey(ctx, member, key)
		revoked := time.Now()
		if err := cmpErr(errUpdate, errRevoke); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if mode == "stamped" {
			// When each commit returned, for the reader's staleness window.
			fmt.Println(in.Text(), retitled.UnixNano(), revoked.UnixNano())
			continue
		}
		fmt.Println(in.Text())
	}
}

// startHelper runs TestHelperProcess in a process of its own, as mode,
// on the database at url (env carries its password) for the member: it
// reads its orders from stdin and answers on the scanner returned. It is
// ended when the test ends.
func startHelper(t *testing.T, mode string, env []string, url string, member int64) (io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), env...), envHelper+"="+mode, envURL+"="+url, envMember+"="+fmt.Sprint(member))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	return stdin, bufio.NewScanner(stdout)
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestReadCache_SeesEveryCommitOfAnotherProcess proves the read cache's
// invalidation across processes (cache.go), as SQLite's test of the same
// name does there: another process retitles a book and revokes a key, and
// this process, whose cache held the page with the old title and served
// it a moment ago, and which accepted the key, must read the new title and
// refuse the key at once, 200 times in a row.
func TestReadCache_SeesEveryCommitOfAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx := context.Background()
	srv := labtest.SharedPostgres(t)
	name := fmt.Sprintf("test_%d", databases.Add(1))
	if err := srv.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, srv.URLWithPassword(name))
	book, err := db.CreateBook(ctx, library.Book{Title: "title-0", Author: "Pingpong Author", Copies: 1})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}

	stdin, replies := startHelper(t, "pingpong", srv.Env(), srv.URL(name), alice.ID)

	// The title as a page of the catalog shows it: what the cache holds.
	title := func() string {
		books, _, err := db.FindBooks(ctx, library.BookFilter{Author: "pingpong"})
		if err != nil || len(books) != 1 || books[0].ID != book.ID {
			t.Fatalf("FindBooks: %v, %v; want the book", books, err)
		}
		return books[0].Title
	}
	for i := 1; i <= 200; i++ {
		key := fmt.Sprintf("pingpong-%03d", i)
		if err := db.CreateAPIKey(ctx, library.APIKey{ID: key, MemberID: alice.ID, Hash: []byte{1}}); err != nil {
			t.Fatal(err)
		}
		before := fmt.Sprintf("title-%d", i-1)
		// Twice: the second page is the cache's; the key is read from the
		// server every time.
		for range 2 {
			if got := title(); got != before {
				t.Fatalf("before commit %d: read %q, want %q", i, got, before)
			}
			if _, _, err := db.FindAPIKey(ctx, key); err != nil {
				t.Fatalf("before commit %d: key %s: %v", i, key, err)
			}
		}
		line := fmt.Sprintf("%d %s title-%d", book.ID, key, i)
		fmt.Fprintln(stdin, line)
		if !replies.Scan() || replies.Text() != line {
			t.Fatalf("the writer process did not commit %q: %v", line, replies.Err())
		}
		if got, want := title(), fmt.Sprintf("title-%d", i); got != want {
			t.Fatalf("commit %d by another process: this process still reads %q, want %q (cache %+v)", i, got, want, db.CacheStats())
		}
		if _, _, err := db.FindAPIKey(ctx, key); library.ErrorCode(err) != library.ENOTFOUND {
			t.Fatalf("commit %d by another process revoked %s: this process got %v, want %s", i, key, err, library.ENOTFOUND)
		}
	}
	if st := db.CacheStats(); st.Hits < 200 {
		t.Errorf("cache stats %+v: want at least one hit per round, or the test proves nothing", st)
	}
}

// TestReadCache_Off: opened WithoutCache, every read asks the database and
// the counters stay 0; with the cache, a page is cached and a book is not.
func TestReadCache_Off(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, newDatabase(t), postgres.WithoutCache())
	for range 3 {
		if _, _, err := db.FindBooks(ctx, library.BookFilter{}); err != nil {
			t.Fatal(err)
		}
	}
	if st := db.CacheStats(); st != (library.CacheStats{}) {
		t.Errorf("cache stats without a cache: %+v, want zeros", st)
	}
	cached := openDB(t, newDatabase(t))
	for range 3 {
		if _, _, err := cached.FindBooks(ctx, library.BookFilter{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cached.FindBookByID(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if st := cached.CacheStats(); st.Hits != 2 || st.Misses != 1 {
		t.Errorf("cache stats after three reads of one page and one book: %+v, want 2 hits and 1 miss (books are not cached)", st)
	}
}
