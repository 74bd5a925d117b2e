//go:build unix

package pgserver_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/pgserver"
)

func TestLookPathSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := pgserver.LookIn(filepath.Join(t.TempDir(), "*", "bin"))
	if err == nil {
		t.Fatal("LookIn with an empty PATH and no server directory: got no error")
	}
	for _, want := range []string{"PostgreSQL server not found", "apt-get install postgresql"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// query runs one query on a new connection to url and scans one row.
func query(ctx context.Context, url, q string, dest ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, q).Scan(dest...)
}

// children returns the processes whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(status)) {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "PPid:" && f[1] == strconv.Itoa(pid) {
				kids = append(kids, p)
			}
		}
	}
	return kids
}

func TestStartConnectStop(t *testing.T) {
	ctx := t.Context()
	srv := labtest.Postgres(t)
	addr, pid, dir := srv.Addr(), srv.PID(), srv.Dir()
	if !strings.HasPrefix(addr, "127.0.0.1:") || pid == 0 {
		t.Fatalf("Addr %q, PID %d: want 127.0.0.1:port and a process", addr, pid)
	}

	var user, db, method string
	if err := query(ctx, srv.URLWithPassword(pgserver.Database), `SELECT current_user, current_database()`, &user, &db); err != nil {
		t.Fatalf("connect with the password: %v", err)
	}
	if user != pgserver.User || db != pgserver.Database {
		t.Errorf("connected as %s to %s, want %s to %s", user, db, pgserver.User, pgserver.Database)
	}
	if err := query(ctx, srv.URLWithPassword("postgres"),
		`SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules WHERE type <> 'local'`, &method); err != nil || method != "scram-sha-256" {
		t.Errorf("authentication over TCP: got %q, %v; want scram-sha-256 only", method, err)
	}

	// The password is needed: not given, or wrong, no way in; given
	// through the environment, as a replica gets it, the way in.
	t.Setenv(pgserver.EnvPassword, "")
	if err := query(ctx, srv.URL(pgserver.Database), `SELECT 1`, new(int)); err == nil {
		t.Error("connect without a password: got in")
	}
	wrong := strings.Replace(srv.URLWithPassword(pgserver.Database), srv.Password(), "wrong", 1)
	if err := query(ctx, wrong, `SELECT 1`, new(int)); err == nil {
		t.Error("connect with a wrong password: got in")
	}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if err := query(ctx, srv.URL(pgserver.Database), `SELECT 1`, new(int)); err != nil {
		t.Errorf("connect with the password from the environment: %v", err)
	}
	if strings.Contains(srv.URL(pgserver.Database), srv.Password()) {
		t.Error("URL holds the password")
	}

	if runtime.GOOS == "linux" {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cmdline), srv.Password()) {
			t.Error("the password is on the server's command line")
		}
		if os.Geteuid() == 0 {
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if strings.Contains(string(status), "\nUid:\t0\t") {
				t.Error("the server runs as root")
			}
		}
	}
	kids := children(t, pid)
	if len(kids) == 0 {
		t.Errorf("the postmaster %d has no children; is /proc what this test thinks?", pid)
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if got := srv.PID(); got != 0 {
		t.Errorf("PID after Stop: got %d, want 0", got)
	}
	for _, p := range append(kids, pid) {
		if err := syscall.Kill(p, 0); err == nil {
			t.Errorf("process %d still runs after Stop", p)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the cluster's directory %s after Stop: %v, want it gone", dir, err)
	}
	if err := query(ctx, srv.URLWithPassword(pgserver.Database), `SELECT 1`, new(int)); err == nil {
		t.Error("connect after Stop: got in")
	}
}

func TestCreateDatabase(t *testing.T) {
	ctx := t.Context()
	srv := labtest.Postgres(t)
	if err := srv.CreateDatabase(ctx, "second_db"); err != nil {
		t.Fatal(err)
	}
	var db string
	if err := query(ctx, srv.URLWithPassword("second_db"), `SELECT current_database()`, &db); err != nil || db != "second_db" {
		t.Errorf("connect to the new database: got %q, %v", db, err)
	}
	for _, name := range []string{"", "Upper", "semi;colon", `quote"`, strings.Repeat("x", 64)} {
		if err := srv.CreateDatabase(ctx, name); err == nil {
			t.Errorf("CreateDatabase(%q): got no error", name)
		}
	}
}

// TestProcessDiesWithCaller runs a helper process (this test binary again)
// that starts PostgreSQL and then is SIGKILLed, with no chance to call
// Stop: the kernel must take the server with it, and the server its
// children.
func TestProcessDiesWithCaller(t *testing.T) {
	if os.Getenv("PGSERVER_HELPER") == "1" {
		srv, err := pgserver.Start(context.Background(), os.Getenv("PGSERVER_DIR"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(srv.PID())
		select {} // until killed
	}
	labtest.NeedProgram(t, "PostgreSQL", pgserver.LookPath)
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux only")
	}
	dir, err := os.MkdirTemp("", "statelab-pg-"+strconv.Itoa(os.Getpid())+"-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessDiesWithCaller$")
	cmd.Env = append(os.Environ(), "PGSERVER_HELPER=1", "PGSERVER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("helper said nothing: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("helper said %q, want a pid", line)
	}
	kids := children(t, pid)
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range append([]int{pid}, kids...) {
		for syscall.Kill(p, 0) == nil {
			if time.Now().After(deadline) {
				syscall.Kill(p, syscall.SIGKILL)
				t.Fatalf("PostgreSQL process %d outlived the process that started it", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
