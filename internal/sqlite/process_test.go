package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/seed"
	"github.com/statelab/statelab/internal/sqlite"
)

// Environment of the helper process. The test binary re-executes itself
// with these set, so real, separate processes share the database file, the
// way replicas do.
const (
	envHelper = "STATELAB_SQLITE_HELPER"
	envPath   = "STATELAB_SQLITE_HELPER_PATH"
	envBook   = "STATELAB_SQLITE_HELPER_BOOK"
	envFirst  = "STATELAB_SQLITE_HELPER_FIRST_USER"
	envStart  = "STATELAB_SQLITE_HELPER_START"
	envKey    = "STATELAB_SQLITE_HELPER_KEY"
	envMember = "STATELAB_SQLITE_HELPER_MEMBER"
)

// helperCmd returns a command that runs this test binary as a helper
// process (TestHelperProcess) in mode, with env added to this process's
// environment.
func helperCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), envHelper+"="+mode), env...)
	return cmd
}

// helperBorrowers is how many goroutines each helper process runs.
const helperBorrowers = 10

// TestHelperProcess is not a test: it is the body of a child process
// started by TestBorrow_LastCopyRace_Processes. It borrows one book from
// several goroutines at a given wall-clock time and prints how many
// attempts ended with each error code.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv(envHelper) {
	case "open":
		helperOpen()
		return
	case "write":
		helperWrite()
		return
	case "pingpong":
		helperPingPong()
		return
	case "1":
	default:
		t.Skip("only runs as a child process")
	}
	ctx := context.Background()
	book, _ := strconv.ParseInt(os.Getenv(envBook), 10, 64)
	first, _ := strconv.Atoi(os.Getenv(envFirst))
	start, _ := time.Parse(time.RFC3339Nano, os.Getenv(envStart))

	db, err := sqlite.Open(ctx, os.Getenv(envPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer db.Close()
	members := make([]int64, helperBorrowers)
	for i := range members {
		m, err := db.FindMemberByEmail(ctx, seed.LoadTestEmail(first+i))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		members[i] = m.ID
	}

	time.Sleep(time.Until(start))
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for _, member := range members {
		wg.Go(func() {
			_, err := db.Borrow(ctx, library.BorrowRequest{MemberID: member, BookIDs: []int64{book}})
			if code := library.ErrorCode(err); code == library.EINTERNAL {
				fmt.Fprintln(os.Stderr, err)
			}
			mu.Lock()
			codes[library.ErrorCode(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := json.NewEncoder(os.Stdout).Encode(codes); err != nil {
		os.Exit(2)
	}
}

// helperOpen opens the database at a given wall-clock time, as a replica
// starting beside others does.
func helperOpen() {
	start, _ := time.Parse(time.RFC3339Nano, os.Getenv(envStart))
	time.Sleep(time.Until(start))
	db, err := sqlite.Open(context.Background(), os.Getenv(envPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	db.Close()
}

// helperWrite changes what the parent has read through its prepared
// statements: a book's title, an API key (revoked), the catalog's size.
func helperWrite() {
	ctx := context.Background()
	book, _ := strconv.ParseInt(os.Getenv(envBook), 10, 64)
	member, _ := strconv.ParseInt(os.Getenv(envMember), 10, 64)
	db, err := sqlite.Open(ctx, os.Getenv(envPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer db.Close()
	title := "Changed by another process"
	_, errUpdate := db.UpdateBook(ctx, book, library.BookUpdate{Title: &title})
	errRevoke := db.RevokeAPIKey(ctx, member, os.Getenv(envKey))
	_, errCreate := db.CreateBook(ctx, library.Book{Title: "Added by another process", Author: "Someone Else", Copies: 1})
	for _, err := range []error{errUpdate, errRevoke, errCreate} {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}

// TestPreparedReads_SeeOtherProcessesWrites reads through the prepared
// statements on every connection of the read pool, lets another process
// write, and reads again: a prepared statement keeps its parsed SQL, never
// a result, so each read sees the file as it is now.
func TestPreparedReads_SeeOtherProcessesWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "statelab.db")
	db := openDB(t, path)
	book := createBook(t, db, "As It Was", 1)
	alice := memberID(t, db, "alice@example.com")
	key := library.APIKey{ID: "prepared-key", MemberID: alice, Hash: []byte{1, 2, 3}}
	if err := db.CreateAPIKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	read := func() (title string, total int, keyErr error) {
		b, err := db.FindBookByID(ctx, book.ID)
		if err != nil {
			t.Fatalf("FindBookByID: %v", err)
		}
		_, _, keyErr = db.FindAPIKey(ctx, key.ID)
		if _, total, err = db.FindBooks(ctx, library.BookFilter{Limit: 1}); err != nil {
			t.Fatalf("FindBooks: %v", err)
		}
		return b.Title, total, keyErr
	}
	// Read from several goroutines at once, so every pooled connection
	// prepares its statements and holds them when the other process writes.
	var wg sync.WaitGroup
	totals := make([]int, 8)
	for i := range totals {
		wg.Go(func() {
			title, total, keyErr := read()
			if title != "As It Was" || keyErr != nil {
				t.Errorf("before: got %q, key %v; want the title as created and the key", title, keyErr)
			}
			totals[i] = total
		})
	}
	wg.Wait()
	// Again, so the read cache answers: the other process's writes must
	// reach a cache that holds every one of these answers.
	hits := db.CacheStats().Hits
	if read(); db.CacheStats().Hits != hits+3 {
		t.Fatalf("cache stats %+v after a second read of the same three: want 3 more hits than %d", db.CacheStats(), hits)
	}

	cmd := helperCmd(t, "write", envPath+"="+path,
		envBook+"="+strconv.FormatInt(book.ID, 10), envMember+"="+strconv.FormatInt(alice, 10), envKey+"="+key.ID)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writer process: %v\n%s", err, out)
	}

	for range 2 * len(totals) {
		wg.Go(func() {
			title, total, keyErr := read()
			if title != "Changed by another process" {
				t.Errorf("title after the other process changed it: got %q", title)
			}
			if library.ErrorCode(keyErr) != library.ENOTFOUND {
				t.Errorf("API key after the other process revoked it: got %v, want %s", keyErr, library.ENOTFOUND)
			}
			if total != totals[0]+1 {
				t.Errorf("books after the other process added one: got %d, want %d", total, totals[0]+1)
			}
		})
	}
	wg.Wait()
}

// helperPingPong changes a book's title to each line it reads on stdin, and
// answers each with the same line once the change is committed.
func helperPingPong() {
	ctx := context.Background()
	book, _ := strconv.ParseInt(os.Getenv(envBook), 10, 64)
	db, err := sqlite.Open(ctx, os.Getenv(envPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer db.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		title := in.Text()
		if _, err := db.UpdateBook(ctx, book, library.BookUpdate{Title: &title}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(title)
	}
}

// TestReadCache_SeesEveryCommitOfAnotherProcess proves the read cache's
// invalidation across processes (cache.go): another process commits a new
// title, and this process, whose cache held the old one and served it a
// moment ago, must answer the new one at once, 200 times in a row.
func TestReadCache_SeesEveryCommitOfAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "statelab.db")
	db := openDB(t, path)
	book := createBook(t, db, "title 0", 1)

	cmd := helperCmd(t, "pingpong", envPath+"="+path, envBook+"="+strconv.FormatInt(book.ID, 10))
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
	replies := bufio.NewScanner(stdout)

	title := func() string {
		b, err := db.FindBookByID(ctx, book.ID)
		if err != nil {
			t.Fatalf("FindBookByID: %v", err)
		}
		return b.Title
	}
	for i := 1; i <= 200; i++ {
		before := fmt.Sprintf("title %d", i-1)
		// Twice: the second read is the cache's.
		if got, again := title(), title(); got != before || again != before {
			t.Fatalf("before commit %d: read %q then %q, want %q", i, got, again, before)
		}
		want := fmt.Sprintf("title %d", i)
		fmt.Fprintln(stdin, want)
		if !replies.Scan() || replies.Text() != want {
			t.Fatalf("the writer process did not commit %q: %v", want, replies.Err())
		}
		if got := title(); got != want {
			t.Fatalf("commit %d by another process: this process still reads %q, want %q (cache %+v)", i, got, want, db.CacheStats())
		}
	}
	if st := db.CacheStats(); st.Hits < 200 {
		t.Errorf("cache stats %+v: want at least one hit per round, or the test proves nothing", st)
	}
}

// TestOpen_FreshFile_Processes opens one brand-new file from several
// processes at the same moment, as the replicas of a fresh lab do: every
// one must succeed, and the seed must be there once.
func TestOpen_FreshFile_Processes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "fresh.db")
	start := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	const processes = 6
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i := range processes {
		cmd := helperCmd(t, "open", envPath+"="+path, envStart+"="+start)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		wg.Go(func() {
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, stderr.String())
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d could not open the fresh file: %v", i, err)
		}
	}
	db := openDB(t, path)
	if _, err := db.FindMemberByEmail(context.Background(), seed.LoadTestEmail(seed.LoadTestUsers)); err != nil {
		t.Errorf("seed: %v", err)
	}
	if c := checkConsistent(t, db); c.Books == 0 {
		t.Errorf("seeded books: got 0")
	}
}

// TestBorrow_LastCopyRace_Processes races borrowers in separate processes
// for one copy: exactly one may win.
func TestBorrow_LastCopyRace_Processes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "statelab.db")
	db := openDB(t, path)
	book := createBook(t, db, "The Last Copy", 1)

	const processes = 3
	// The start time leaves the children time to launch and open the
	// file, so their borrows really overlap.
	start := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)
	cmds := make([]*exec.Cmd, processes)
	for i := range cmds {
		cmd := helperCmd(t, "1",
			envPath+"="+path,
			envBook+"="+strconv.FormatInt(book.ID, 10),
			envFirst+"="+strconv.Itoa(1+i*helperBorrowers),
			envStart+"="+start,
		)
		cmd.Stderr = os.Stderr
		cmds[i] = cmd
	}
	outs := make([][]byte, processes)
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], errs[i] = cmd.Output() })
	}
	wg.Wait()

	total := map[string]int{}
	for i := range cmds {
		if errs[i] != nil {
			t.Fatalf("helper process %d: %v", i, errs[i])
		}
		var codes map[string]int
		// The test binary prints "PASS" after the helper's line.
		if err := json.NewDecoder(bytes.NewReader(outs[i])).Decode(&codes); err != nil {
			t.Fatalf("helper process %d output %q: %v", i, outs[i], err)
		}
		for code, n := range codes {
			total[code] += n
		}
	}
	want := map[string]int{"": 1, library.EUNAVAILABLE: processes*helperBorrowers - 1}
	if !reflect.DeepEqual(total, want) {
		t.Errorf("outcomes by error code: got %v, want %v", total, want)
	}
	if c := checkConsistent(t, db); c.ActiveBorrows != 1 {
		t.Errorf("active borrows: got %d, want 1", c.ActiveBorrows)
	}
}
