//go:build unix

package redisserver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/redisserver"
)

// do sends one command in the RESP inline form, after AUTH with the
// password unless it is empty, and returns the first line of the answer.
func do(t *testing.T, addr, password, command string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	if password != "" {
		fmt.Fprintf(c, "AUTH %s\r\n", password)
		if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "+OK" {
			t.Fatalf("AUTH: got %q, %v; want +OK", line, err)
		}
	}
	fmt.Fprintf(c, "%s\r\n", command)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	return strings.TrimSpace(line)
}

func TestLookPathSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := redisserver.LookPath()
	if err == nil {
		t.Fatal("LookPath with an empty PATH: got no error")
	}
	for _, want := range []string{"redis-server not found on PATH", "apt-get install redis-server"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestStartRestartStop(t *testing.T) {
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)
	dir := t.TempDir()
	srv, err := redisserver.Start(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	addr, pid, pw := srv.Addr(), srv.PID(), srv.Password()
	if !strings.HasPrefix(addr, "127.0.0.1:") || pid == 0 {
		t.Fatalf("Addr %q, PID %d: want 127.0.0.1:port and a process", addr, pid)
	}
	steps := []struct {
		command, want string
	}{
		{"PING", "+PONG"},
		{"SET k v", "+OK"},
		{"GET k", "$1"},
	}
	for _, s := range steps {
		if got := do(t, addr, pw, s.command); got != s.want {
			t.Errorf("%s: got %q, want %q", s.command, got, s.want)
		}
	}

	if err := srv.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got := srv.Addr(); got != addr {
		t.Errorf("Addr after Restart: got %q, want the same %q", got, addr)
	}
	if got := srv.PID(); got == pid || got == 0 {
		t.Errorf("PID after Restart: got %d, want a new process (was %d)", got, pid)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the old process %d still runs after Restart", pid)
	}
	if got := srv.Password(); got != pw {
		t.Errorf("Password after Restart: got another one, want the same")
	}
	if got, want := do(t, addr, pw, "GET k"), "$-1"; got != want {
		t.Errorf("GET k after Restart: got %q, want %q: without persistence every key is gone", got, want)
	}

	pid = srv.PID()
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if got := srv.PID(); got != 0 {
		t.Errorf("PID after Stop: got %d, want 0", got)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d still runs after Stop", pid)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", addr)
	}
	// No persistence: SIGTERM wrote no snapshot and there is no
	// append-only file.
	for _, name := range []string{"dump.rdb", "appendonly.aof", "appendonlydir"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s is in redis's directory: want no persistence", name)
		}
	}
}

// TestOnlyWithPassword is what another local user finds at the port ps
// shows: nothing without the password, and with it no command that wipes,
// stops, reconfigures or copies the store.
func TestOnlyWithPassword(t *testing.T) {
	srv := labtest.Redis(t)
	addr, pw := srv.Addr(), srv.Password()
	if len(pw) < 32 {
		t.Fatalf("Password %q: want a long random one", pw)
	}
	if got := do(t, addr, "", "SET statelab:session:x y"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("SET without AUTH: got %q, want -NOAUTH", got)
	}
	for _, cmd := range []string{"GET statelab:session:x", "KEYS *", "SCAN 0"} {
		if got := do(t, addr, "", cmd); !strings.HasPrefix(got, "-NOAUTH") {
			t.Errorf("%s without AUTH: got %q, want -NOAUTH", cmd, got)
		}
	}
	if got := do(t, addr, "", "AUTH wrong-password"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("AUTH with a wrong password: got %q, want -WRONGPASS", got)
	}
	if got := do(t, addr, pw, "SET statelab:session:x y"); got != "+OK" {
		t.Errorf("SET with the password: got %q, want +OK", got)
	}
	for _, cmd := range []string{"FLUSHALL", "FLUSHDB", "CONFIG GET requirepass", "SHUTDOWN NOSAVE", "DEBUG SLEEP 0", "ACL LIST", "MONITOR", "REPLICAOF 127.0.0.1 1", "BGSAVE", "MODULE LIST"} {
		if got := do(t, addr, pw, cmd); !strings.HasPrefix(got, "-ERR unknown command") {
			t.Errorf("%s with the password: got %q, want -ERR unknown command", cmd, got)
		}
	}
	if got := do(t, addr, pw, "GET statelab:session:x"); got != "$1" {
		t.Errorf("GET after the refused commands: got %q, want $1 (still there)", got)
	}
	if srv.PID() == 0 {
		t.Error("redis-server stopped: SHUTDOWN or DEBUG went through")
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", srv.PID())); err == nil && strings.Contains(string(cmdline), pw) {
		t.Errorf("the password is on redis-server's command line: %q", cmdline)
	}
}

// TestFilesPrivate: the directory and the log of a run are its owner's
// alone, also when an older run left them open to everyone.
func TestFilesPrivate(t *testing.T) {
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)
	dir := filepath.Join(t.TempDir(), "redis")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "redis.log"), []byte("an older run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask made of it
		t.Fatal(err)
	}
	srv, err := redisserver.Start(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	for _, f := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700}, {filepath.Join(dir, "redis.log"), 0o600}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != f.want {
			t.Errorf("%s: mode %v, want %v", f.path, got, f.want)
		}
	}
}

func TestStartHonoursContext(t *testing.T) {
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if srv, err := redisserver.Start(ctx, t.TempDir()); err == nil {
		srv.Stop()
		t.Fatal("Start with a cancelled context: got no error")
	}
}

// TestProcessDiesWithCaller runs a helper process (this test binary again)
// that starts redis and then is SIGKILLed, with no chance to call Stop:
// the kernel must take redis with it.
func TestProcessDiesWithCaller(t *testing.T) {
	if os.Getenv("REDISSERVER_HELPER") == "1" {
		srv, err := redisserver.Start(context.Background(), os.Getenv("REDISSERVER_DIR"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(srv.PID())
		select {} // until killed
	}
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessDiesWithCaller$")
	cmd.Env = append(os.Environ(), "REDISSERVER_HELPER=1", "REDISSERVER_DIR="+t.TempDir())
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
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("redis-server %d does not run under the helper: %v", pid, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("redis-server %d outlived the process that started it", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
