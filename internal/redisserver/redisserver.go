package redisserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/statelab/statelab/internal/privfile"
	"github.com/statelab/statelab/internal/proccpu"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
// Without persistence redis has nothing to write, so it exits at once.
const stopGrace = 2 * time.Second

// Program is the executable Start runs.
const Program = "redis-server"

// LookPath returns the path of redis-server, or an error that says how to
// install it.
func LookPath() (string, error) {
	p, err := exec.LookPath(Program)
	if err != nil {
		return "", errors.New("redis-server not found on PATH; install it (Debian/Ubuntu: sudo apt-get install redis-server)")
	}
	return p, nil
}

// Disabled are the commands the private redis-server refuses, renamed to
// nothing: the lab's session store needs none of them, and each would let
// whoever holds the password (a replica gone wrong) wipe every session
// (FLUSHALL, FLUSHDB), stop the store (SHUTDOWN, DEBUG), read or change
// the password and the files (CONFIG, ACL, MODULE), watch every session go
// by (MONITOR), copy the data away (REPLICAOF, SLAVEOF, SYNC, PSYNC,
// MIGRATE) or write it to disk (SAVE, BGSAVE, BGREWRITEAOF). Stop ends the
// process with a signal, not SHUTDOWN.
var Disabled = []string{
	"FLUSHALL", "FLUSHDB", "SHUTDOWN", "DEBUG", "CONFIG", "ACL", "MODULE", "MONITOR",
	"REPLICAOF", "SLAVEOF", "SYNC", "PSYNC", "MIGRATE", "SAVE", "BGSAVE", "BGREWRITEAOF",
}

// Host is a machine of the lab's own that a server can run on (package
// compare/hosts: a network namespace with an address of its own).
type Host interface {
	IP() string                // the host's address, which the server listens on
	Start(cmd *exec.Cmd) error // starts a process on the host
}

// Port is the port redis-server listens on when it has a host to itself.
const Port = 6379

// Server is one redis-server process and the address and password it
// keeps across restarts.
type Server struct {
	bin      string
	dir      string
	ip       string
	port     int
	password string
	host     Host // nil: this machine's own network stack

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
	// exitedCPU is the CPU time of the processes that have exited, by the
	// kernel's account at their exit.
	exitedCPU time.Duration
}

// Start runs redis-server on 127.0.0.1 and a free port, with dir as its
// working directory and log, no RDB snapshots and no append-only file, and
// returns once it answers PING. ctx bounds the start, not the process's
// life: Stop ends it.
//
// Every local user can reach a port on 127.0.0.1, and the port is in ps,
// so the server wants a password (Password: a fresh random one), which it
// reads with the rest of its configuration from its standard input, never
// from argv, and the Disabled commands are gone. dir is made (or
// tightened to) 0700, and its log 0600.
func Start(ctx context.Context, dir string) (*Server, error) {
	return StartOn(ctx, dir, nil)
}

// StartOn is Start on host: redis-server runs inside it and listens on its
// address and Port (with a password and the Disabled commands gone, as on
// 127.0.0.1), and the caller reaches it across the host's network. A nil
// host is Start.
func StartOn(ctx context.Context, dir string, host Host) (*Server, error) {
	bin, err := LookPath()
	if err != nil {
		return nil, err
	}
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	password := hex.EncodeToString(secret)
	// Another process may take the free port between our probe and
	// redis's bind; a few tries make that race harmless.
	for try := 0; ; try++ {
		s := &Server{bin: bin, dir: dir, ip: "127.0.0.1", port: Port, password: password, host: host}
		if host != nil {
			// A host of its own: the well-known port is free.
			s.ip = host.IP()
		} else if s.port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if try == 2 || ctx.Err() != nil {
			return nil, err
		}
	}
}

// Addr returns the host:port redis listens on, the same after a Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.ip, strconv.Itoa(s.port))
}

// Password returns the password a client must AUTH with (as the default
// user): the same after a Restart. Hand it to a replica through its
// environment, never its argv.
func (s *Server) Password() string { return s.password }

// PID returns the process id of the running redis-server, or 0 when it is
// stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	select {
	case <-s.done:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// CPUTime returns the CPU time (user and system) every redis-server process
// this Server started has used: what keeping the sessions cost the machine,
// beside what the replicas spent. ok is false when a running process's
// time could not be read (it then counts as zero).
func (s *Server) CPUTime() (total time.Duration, ok bool) {
	s.mu.Lock()
	total = s.exitedCPU
	s.mu.Unlock()
	if pid := s.PID(); pid != 0 {
		d, err := proccpu.Of(pid)
		if err != nil {
			return total, false
		}
		total += d
	}
	return total, true
}

// Restart stops the process (SIGTERM, then SIGKILL) and starts a new one on
// the same port. Every key is gone afterwards: there is no persistence.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	// The port is free once the old process is gone; redis binds with
	// SO_REUSEADDR, so connections it left in TIME_WAIT don't matter. A
	// retry covers a process that took the port meanwhile and let it go.
	var err error
	for try := 0; try < 3; try++ {
		if err = s.start(ctx); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Stop ends the process: SIGTERM, then SIGKILL if it has not exited after
// a grace period. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server %d: %w", cmd.Process.Pid, err)
	}
	<-done
	return nil
}

// start runs the process on s.port and waits for its PING.
func (s *Server) start(ctx context.Context) error {
	logPath := filepath.Join(s.dir, "redis.log")
	logFile, err := privfile.Open(logPath, os.O_APPEND)
	if err != nil {
		return err
	}
	// "-" reads the configuration from standard input: the password
	// stays off argv and off the disk.
	cmd := exec.Command(s.bin, "-")
	cmd.Stdin = strings.NewReader(s.config())
	cmd.Dir = s.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	start := cmd.Start
	if s.host != nil {
		start = func() error { return s.host.Start(cmd) }
	}
	if err := start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		s.mu.Lock()
		s.exitedCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		s.mu.Unlock()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	for {
		if ping(s.Addr(), s.password) == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited before it answered PING: %s", s.port, lastLine(logPath))
		case <-ctx.Done():
			_ = s.Stop()
			return fmt.Errorf("redis-server on port %d did not answer PING: %w", s.port, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// config is the server's configuration file, as redis-server reads it from
// its standard input.
func (s *Server) config() string {
	var b strings.Builder
	for _, line := range []string{
		"bind " + s.ip,
		"port " + strconv.Itoa(s.port),
		`save ""`,
		"appendonly no",
		"dir " + strconv.Quote(s.dir),
		"daemonize no",
		"protected-mode yes",
		"requirepass " + s.password,
	} {
		b.WriteString(line + "\n")
	}
	for _, c := range Disabled {
		fmt.Fprintf(&b, "rename-command %s \"\"\n", c)
	}
	return b.String()
}

// ping sends AUTH and PING in the RESP inline form and wants +OK and +PONG
// back.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := fmt.Fprintf(c, "AUTH %s\r\nPING\r\n", password); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != want {
			return fmt.Errorf("AUTH, PING answered %q", strings.TrimSpace(line))
		}
	}
	return nil
}

// privateDir makes dir, readable by its owner only, and tightens it if it
// is there already: the log is in it, and nothing else of anyone's.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// freePort asks the kernel for a port no one listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lastLine returns the last line of the log, which says why redis stopped.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
