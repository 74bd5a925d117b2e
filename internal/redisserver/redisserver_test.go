package redisserver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/redisserver"
)

// do sends one command in the RESP inline form and returns the first line
// of the answer.
func do(t *testing.T, addr, command string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "%s\r\n", command)
	line, err := bufio.NewReader(c).ReadString('\n')
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
	srv := labtest.Redis(t)
	addr, pid := srv.Addr(), srv.PID()
	if !strings.HasPrefix(addr, "127.0.0.1:") || pid == 0 {
		t.Fatalf("Addr %q, PID %d: want 127.0.0.1:port and a process", addr, pid)
	}
	steps := []struct {
		command, want string
	}{
		{"PING", "+PONG"},
		{"SET k v", "+OK"},
		{"GET k", "$1"},
		{"CONFIG GET save", "*2"},
	}
	for _, s := range steps {
		if got := do(t, addr, s.command); got != s.want {
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
	if got, want := do(t, addr, "GET k"), "$-1"; got != want {
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
}

func TestStartHonoursContext(t *testing.T) {
	if _, err := redisserver.LookPath(); err != nil {
		t.Skip(err)
	}
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
	if _, err := redisserver.LookPath(); err != nil {
		t.Skip(err)
	}
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
