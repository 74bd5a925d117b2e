package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Names of the cluster's one role and of the database Start creates.
const (
	// User is the superuser initdb makes, the only role of the cluster.
	User = "statelab"
	// Database is the database Start creates for the lab.
	Database = "statelab"
	// EnvPassword is the environment variable PostgreSQL's clients (libpq,
	// pgx) read a password from when the URL has none: how the password
	// reaches another process without appearing on its command line.
	EnvPassword = "PGPASSWORD"
)

// unprivilegedUser is who runs the server when the caller is root:
// PostgreSQL refuses to run as root, and Debian's postgresql package
// creates this user.
const unprivilegedUser = "postgres"

// installHint says what to install, in every error about a missing piece.
const installHint = "install PostgreSQL's server (Debian/Ubuntu: sudo apt-get install postgresql)"

// Timeouts of Stop: fast shutdown (SIGINT) ends the clients' sessions and
// writes a checkpoint; immediate shutdown (SIGQUIT) skips the checkpoint;
// SIGKILL is the last resort.
const (
	fastGrace      = 5 * time.Second
	immediateGrace = 2 * time.Second
)

// LookPath returns the directory that holds initdb and postgres: the one
// `pg_config --bindir` names, or else the newest /usr/lib/postgresql/*/bin
// (Debian keeps the server's programs off PATH); or an error that says
// what to install.
func LookPath() (string, error) {
	return lookIn("/usr/lib/postgresql/*/bin")
}

// lookIn is LookPath with the fallback directories' glob pattern given.
func lookIn(pattern string) (string, error) {
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			if dir := strings.TrimSpace(string(out)); hasServer(dir) {
				return dir, nil
			}
		}
	}
	dirs, _ := filepath.Glob(pattern)
	// The newest version first: /usr/lib/postgresql/15/bin before 9.6.
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, dir := range dirs {
		if hasServer(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server not found: no pg_config on PATH names a directory with initdb and postgres, and there is none under %s; %s", pattern, installHint)
}

// hasServer reports whether dir holds initdb and postgres.
func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf reads the major version in .../postgresql/15/bin; 0 when
// there is none.
func versionOf(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}

// account is the user the server runs as when the caller is root.
type account struct {
	name     string
	uid, gid int
}

// runAs returns the account to run the server as: nil when the caller is
// not root, the unprivileged user when it is.
func runAs() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(unprivilegedUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as an unprivileged user, and there is no user %q (%v); %s, which creates it", unprivilegedUser, err, installHint)
	}
	uid, errUID := strconv.Atoi(u.Uid)
	gid, errGID := strconv.Atoi(u.Gid)
	if errUID != nil || errGID != nil {
		return nil, fmt.Errorf("user %q: uid %q, gid %q are not numbers", unprivilegedUser, u.Uid, u.Gid)
	}
	return &account{name: unprivilegedUser, uid: uid, gid: gid}, nil
}

// Host is a machine of the lab's own that a server can run on (package
// compare/hosts: a network namespace with an address of its own).
type Host interface {
	IP() string                // the host's address, which the server listens on
	Start(cmd *exec.Cmd) error // starts a process on the host
}

// Port is the port the server listens on when it has a host to itself.
const Port = 5432

// Server is one private PostgreSQL cluster and its server process.
type Server struct {
	bin      string   // the directory of initdb and postgres
	root     string   // the cluster's own directory, removed by Stop
	acct     *account // who runs the server; nil for the caller
	ip       string
	host     Host // nil: this machine's own network stack
	port     int
	password string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
}

// Start makes a new cluster in a new directory inside dir, starts its
// server on 127.0.0.1 and a free port, creates the database Database, and
// returns once it answers. ctx bounds the start, not the server's life:
// Stop ends it and removes the cluster.
//
// When the caller is root, the cluster belongs to the user "postgres", so
// that user must be able to reach dir (a directory made by os.MkdirTemp
// is 0700, and its children are out of reach).
func Start(ctx context.Context, dir string) (*Server, error) {
	return StartOn(ctx, dir, nil)
}

// StartOn is Start on host: the server runs inside it and listens on its
// address and Port, and takes password connections from the host's own
// subnet (pg_hba's samenet), which the caller reaches it across. A nil
// host is Start.
func StartOn(ctx context.Context, dir string, host Host) (*Server, error) {
	bin, err := LookPath()
	if err != nil {
		return nil, err
	}
	acct, err := runAs()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(dir, "postgres-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, root: root, acct: acct, ip: "127.0.0.1", host: host, port: Port}
	if host != nil {
		s.ip = host.IP()
	}
	if err := s.initdb(ctx); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	// Another process may take the free port between our probe and the
	// server's bind; a few tries make that race harmless. A host of its
	// own has the well-known port free.
	for try := 0; ; try++ {
		if host == nil {
			if s.port, err = freePort(); err != nil {
				os.RemoveAll(root)
				return nil, err
			}
		}
		if err = s.start(ctx); err == nil {
			break
		}
		if try == 2 || ctx.Err() != nil || !strings.Contains(err.Error(), "already in use") {
			s.Stop()
			return nil, err
		}
	}
	if err := s.CreateDatabase(ctx, Database); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// initdb makes the cluster in root/data with one superuser, User, whose
// password is a new random one, written to a file only for initdb to read.
func (s *Server) initdb(ctx context.Context) error {
	if s.acct != nil {
		if err := reachable(s.root, s.acct); err != nil {
			return err
		}
		if err := os.Chown(s.root, s.acct.uid, s.acct.gid); err != nil {
			return err
		}
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	s.password = base64.RawURLEncoding.EncodeToString(secret)
	pwfile := filepath.Join(s.root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if s.acct != nil {
		if err := os.Chown(pwfile, s.acct.uid, s.acct.gid); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "initdb"),
		"--pgdata", filepath.Join(s.root, "data"),
		"--username", User,
		"--pwfile", pwfile,
		"--auth", "scram-sha-256",
		"--encoding", "UTF8",
		// The C locale folds case in ASCII only, as SQLite's NOCASE and
		// LIKE do, so both stores match emails and searches alike.
		"--locale", "C",
		// A throwaway cluster: nothing to lose in a crash at initdb.
		"--no-sync",
		"--no-instructions",
	)
	cmd.Dir = s.root
	cmd.SysProcAttr = sysProcAttr(s.acct)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if s.host == nil {
		return nil
	}
	// initdb lets in loopback only; on a host of its own the clients
	// come from the host's subnet, with the password all the same.
	hba, err := os.OpenFile(filepath.Join(s.root, "data", "pg_hba.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = hba.WriteString("host all all samenet scram-sha-256\n")
	return errors.Join(err, hba.Close())
}

// reachable returns an error when acct cannot search every directory
// above path.
func reachable(path string, acct *account) error {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		perm := st.Mode().Perm()
		need := os.FileMode(0o001)
		if uid, gid, ok := owner(st); ok {
			switch {
			case uid == acct.uid:
				need = 0o100
			case gid == acct.gid:
				need = 0o010
			}
		}
		if perm&need == 0 {
			return fmt.Errorf("running as root, PostgreSQL runs as the user %q, which cannot reach %s: %s is mode %v; give it a directory that user can reach", acct.name, path, p, perm)
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

// start runs the server on s.port and waits until it answers.
func (s *Server) start(ctx context.Context) error {
	logPath := filepath.Join(s.root, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"),
		"-D", filepath.Join(s.root, "data"),
		"-c", "listen_addresses="+s.ip,
		"-c", "port="+strconv.Itoa(s.port),
		// No unix socket: the one way in is TCP with a password.
		"-c", "unix_socket_directories=",
		// Room for the replicas' pools and a test's 100 racing borrowers.
		"-c", "max_connections=300",
		// A commit returns before its WAL record is on disk, as SQLite's
		// synchronous=NORMAL in WAL mode does: a crash may lose the last
		// commits, never consistency. Like for like with the SQLite store.
		"-c", "synchronous_commit=off",
		// Parallel queries' shared memory in files under the cluster, not
		// in /dev/shm: a server killed with its runner (SIGKILL) leaves
		// them where the next run's sweep removes the cluster.
		"-c", "dynamic_shared_memory_type=mmap",
	)
	cmd.Dir = s.root
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr(s.acct)
	start := cmd.Start
	if s.host != nil {
		start = func() error { return s.host.Start(cmd) }
	}
	if err := start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	for {
		if err := s.ping(ctx); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("postgres on port %d exited before it answered: %s", s.port, lastLine(logPath))
		case <-ctx.Done():
			_ = s.stopProcess()
			return fmt.Errorf("postgres on port %d did not answer: %w", s.port, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping connects to the maintenance database and runs one query.
func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URLWithPassword("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	return conn.QueryRow(ctx, `SELECT 1`).Scan(&one)
}

// databaseName is what CreateDatabase accepts: a plain identifier, so it
// needs no quoting anywhere.
var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase creates an empty database on the server; URL names it.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if !databaseName.MatchString(name) {
		return fmt.Errorf("database name %q: use lower-case letters, digits and _", name)
	}
	conn, err := pgx.Connect(ctx, s.URLWithPassword("postgres"))
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// URL returns the URL of a database on this server without the password:
// safe to print and to pass on a command line. A client in another process
// reads the password from its environment (Env).
func (s *Server) URL(database string) string {
	u := url.URL{Scheme: "postgres", User: url.User(User), Host: s.Addr(), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// URLWithPassword returns the URL of a database with the password in it,
// for a client in this process. Never put it on a command line.
func (s *Server) URLWithPassword(database string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(User, s.password), Host: s.Addr(), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// Password returns the superuser's password.
func (s *Server) Password() string { return s.password }

// Env returns the environment a client process needs beside URL: the
// password, as PostgreSQL's clients read it.
func (s *Server) Env() []string { return []string{EnvPassword + "=" + s.password} }

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.ip, strconv.Itoa(s.port))
}

// Dir returns the cluster's directory, which Stop removes.
func (s *Server) Dir() string { return s.root }

// PID returns the process id of the running server (the postmaster), or 0
// when it is stopped.
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

// Stop ends the server and removes the cluster's directory. Stopping a
// stopped server does nothing.
func (s *Server) Stop() error {
	err := s.stopProcess()
	if rmErr := os.RemoveAll(s.root); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return err
}

// stopProcess asks for a fast shutdown (SIGINT: the sessions end, a
// checkpoint is written), then an immediate one (SIGQUIT), then kills. The
// server's own children end with it.
func (s *Server) stopProcess() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	for _, step := range []struct {
		sig   os.Signal
		grace time.Duration
	}{{os.Interrupt, fastGrace}, {syscall.SIGQUIT, immediateGrace}} {
		select {
		case <-done:
			return nil
		default:
		}
		_ = cmd.Process.Signal(step.sig)
		select {
		case <-done:
			return nil
		case <-time.After(step.grace):
		}
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill postgres %d: %w", cmd.Process.Pid, err)
	}
	<-done
	return nil
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

// lastLine returns the last line of the log, which says why the server
// stopped.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
