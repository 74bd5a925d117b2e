package sqlite_test

import (
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
)

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
		m, err := db.FindMemberByEmail(ctx, sqlite.LoadTestEmail(first+i))
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

// TestOpen_FreshFile_Processes opens one brand-new file from several
// processes at the same moment, as the replicas of a fresh lab do: every
// one must succeed, and the seed must be there once.
func TestOpen_FreshFile_Processes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fresh.db")
	start := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	const processes = 6
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i := range processes {
		cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envHelper+"=open", envPath+"="+path, envStart+"="+start)
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
	if _, err := db.FindMemberByEmail(context.Background(), sqlite.LoadTestEmail(sqlite.LoadTestUsers)); err != nil {
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
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
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
		cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			envHelper+"=1",
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
