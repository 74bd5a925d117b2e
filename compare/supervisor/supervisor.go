package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/proccpu"
)

// Replica is one running server process, as the supervisor last saw it.
type Replica struct {
	ID        string        // "<side>-<n>"; it stays with the slot across restarts and crashes
	Addr      string        // host:port the process listens on; a graceful restart moves it to a new port
	PID       int           // the current process
	StartedAt time.Time     // when the current process was spawned
	Restarts  int           // processes replaced under this ID by Restart or Crash since Scale added it
	ReadyIn   time.Duration // from spawn to the first 200 from /api/ready
	// LastExit is how the previous process under this ID ended: "exit
	// status 0" after a Restart (known once Restart returns: the old
	// process stops after its successor has joined), "signal: killed"
	// after a Crash; nil for the first process.
	LastExit *os.ProcessState
}

// Config says which replicas a Supervisor runs and whom it tells.
type Config struct {
	Side string // names the replicas ("<side>-<n>") and labels the logs
	// Command is the subcommand every replica runs ("stateful" or
	// "stateless"); empty means Side.
	Command string
	Binary  string    // the statelab binary (the runner passes os.Executable()); empty means this program
	Args    []string  // extra flags for every replica (e.g. --db, --session-key/--jwt-secret, --log-format json)
	Env     []string  // extra environment, appended to os.Environ()
	Log     io.Writer // the replicas' stdout and stderr, whole lines at a time (nil discards them)
	Logger  *slog.Logger

	// Confine, when set, is called before each replica process starts: it
	// may change cmd (its SysProcAttr, or a wrapper program) so that the
	// process runs under a resource limit, and returns a function that is
	// called with the new process's pid once it has started, or with 0 when
	// the start failed. An error from either fails the start, so a replica
	// never runs outside its limit by mistake. (cpulimit.Limiter.Confine.)
	Confine func(id string, cmd *exec.Cmd) (started func(pid int) error, err error)

	// FreeAddr and Start, when set, put each replica on a host of its own
	// (package hosts: a network namespace). FreeAddr picks the host:port a
	// new process of replica id listens on, instead of a free port on
	// 127.0.0.1; Start starts the process, instead of cmd.Start. The
	// readiness probe still dials from the supervisor's own process, so the
	// address must be reachable from it.
	FreeAddr func(id string) (string, error)
	Start    func(id string, cmd *exec.Cmd) error

	ReadyTimeout time.Duration // how long a new process may take to answer /api/ready (default 10s)
	StopTimeout  time.Duration // graceful stop: asked to stop (askToStop), then killed after this long (default 10s)

	// Hooks, all optional. They are called synchronously, one at a time and
	// in the order of the changes they report, so a hook must not call the
	// Supervisor's operations (Replicas is fine).
	OnReady    func(Replica)   // a new process answered 200 on /api/ready and joined the set
	BeforeStop func(Replica)   // a planned, graceful stop is about to ask the replica to stop: drain it here
	OnChange   func([]Replica) // the set changed (start, stop, crash, restart, unexpected exit): the set now
}

// Supervisor starts, restarts, crashes and stops the replica processes of
// one side of the comparison.
//
// The set of replicas holds the processes in service: spawned, answered
// /api/ready, and not yet gone. A process joins it once ready and leaves it
// when it exits. A Crash therefore shows as a replica leaving and coming
// back under the same ID, with a new PID, on the same address. A Restart
// is a surge of one, as a Kubernetes rolling update with maxSurge: 1 does
// it: the successor starts on a new address and, once ready, takes the
// ID's place in the set in one change; only then is the old process
// drained and stopped. So the set never lacks the ID, and a side whose only
// replica restarts always has a replica to answer.
//
// IDs are "<side>-<n>". Scale adds the lowest free numbers and removes the
// highest, so the IDs of n replicas are always <side>-1 … <side>-n after
// Scale(n), and "replica 2" in a scenario means the same slot all run long.
//
// Operations (Scale, Restart, Crash, RollingRestart, Stop) run one at a
// time; Replicas and ReadyDurations never wait for them.
//
// Each replica runs with -exit-with-stdin and a pipe as its standard input
// whose write end only the supervisor holds. Closing it is how the
// supervisor asks a replica to stop gracefully, on every OS (on Windows,
// where a child cannot be sent SIGTERM, it is the only way; on Unix a
// SIGTERM follows). It is also why no replica outlives the runner: when the
// runner dies, however it dies, the kernel closes the pipe and the replica
// shuts down; on Linux the kernel also SIGKILLs it (Pdeathsig).
type Supervisor struct {
	cfg    Config
	logger *slog.Logger
	log    *lineLog
	client *http.Client

	op        sync.Mutex      // held by the operation in progress
	stopping  context.Context // done once Stop has begun: operations in progress give up
	beginStop context.CancelFunc

	hooks sync.Mutex // held while a hook runs

	mu    sync.Mutex
	set   map[string]*proc   // in service, by ID
	live  map[*proc]struct{} // every process spawned and not yet reaped
	ready []time.Duration
	// reapedCPU is the CPU time (user and system) of every process reaped
	// so far, as the kernel reported it at its exit.
	reapedCPU time.Duration
}

// proc is one spawned process.
type proc struct {
	id       string
	addr     string
	cmd      *exec.Cmd
	stdin    *os.File // the write end of the replica's standard input
	out      *output
	spawned  time.Time
	restarts int
	lastExit *os.ProcessState
	readyIn  time.Duration // set before the process joins the set

	planned bool // the supervisor ended it; guarded by Supervisor.mu
	// retiring marks a process a surge restart replaced in the set: it
	// gets BeforeStop though it is no longer in service. Guarded by
	// Supervisor.mu.
	retiring bool
	done     chan struct{} // closed once the process is reaped, logged and reported
	state    *os.ProcessState
}

func (p *proc) replica() Replica {
	return Replica{
		ID: p.id, Addr: p.addr, PID: p.cmd.Process.Pid, StartedAt: p.spawned,
		Restarts: p.restarts, ReadyIn: p.readyIn, LastExit: p.lastExit,
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

const (
	supPollEvery  = 20 * time.Millisecond    // readiness polling interval
	supTailSize   = 2 << 10                  // how much of a replica's output an error quotes
	supStartTries = 3                        // attempts when the chosen port was taken meanwhile
	supPortTaken  = "address already in use" // what a replica says when its port was taken
)

// New returns a Supervisor that runs no replica yet: call Scale.
func New(cfg Config) *Supervisor {
	if cfg.Binary == "" {
		cfg.Binary, _ = os.Executable() // an error shows when the first replica fails to start
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Command == "" {
		cfg.Command = cfg.Side
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	stopping, beginStop := context.WithCancel(context.Background())
	return &Supervisor{
		cfg:    cfg,
		logger: logger.With("server", cfg.Side),
		log:    &lineLog{w: cfg.Log},
		// No keep-alives: a probe's idle connection would hold a replica's
		// graceful shutdown back for nothing.
		client:    &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		stopping:  stopping,
		beginStop: beginStop,
		set:       map[string]*proc{},
		live:      map[*proc]struct{}{},
	}
}

// Replicas returns the replicas in service, sorted by ID number.
func (s *Supervisor) Replicas() []Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	reps := make([]Replica, 0, len(s.set))
	for _, p := range s.set {
		reps = append(reps, p.replica())
	}
	slices.SortFunc(reps, func(a, b Replica) int { return slotNumber(a.ID) - slotNumber(b.ID) })
	return reps
}

// ReadyDurations returns, for every process that became ready, how long it
// took from spawn to the first 200 from /api/ready, in the order they
// became ready.
func (s *Supervisor) ReadyDurations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ready)
}

// CPUTime returns the CPU time (user and system) that every process this
// Supervisor started has used so far: the kernel's own account, read at
// each exit for the processes gone (a crashed one included) and from
// /proc for those still running. It is what the replicas cost the
// machine, whatever else ran on it at the same time. Where /proc cannot
// be read, running processes count as zero and ok is false.
func (s *Supervisor) CPUTime() (total time.Duration, ok bool) {
	s.mu.Lock()
	total = s.reapedCPU
	pids := make([]int, 0, len(s.live))
	for p := range s.live {
		pids = append(pids, p.cmd.Process.Pid)
	}
	s.mu.Unlock()
	ok = true
	for _, pid := range pids {
		d, err := proccpu.Of(pid)
		if err != nil {
			ok = false
			continue
		}
		total += d
	}
	return total, ok
}

// Scale starts or stops replicas until n are in service. New replicas take
// the lowest free ID numbers and start at the same time; Scale returns once
// all are ready, or with the errors of those that failed (the others stay).
// Scaling in stops the highest-numbered replicas gracefully: BeforeStop,
// a request to stop, and a kill after StopTimeout.
func (s *Supervisor) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("scale %s to %d: the number of replicas cannot be negative", s.cfg.Side, n)
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	cur := s.inService()
	switch {
	case n < len(cur):
		victims := cur[n:]
		s.logger.Info("scaling in", "from", len(cur), "to", n, "stopping", idsOf(victims))
		return s.halt(ctx, victims, true)
	case n > len(cur):
		ids := s.freeIDs(n - len(cur))
		s.logger.Info("scaling out", "from", len(cur), "to", n, "starting", ids)
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.start(ctx, id, "", 0, nil)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

// Restart replaces a replica gracefully, with a surge of one: a new
// process with the same ID on a new address; once it is ready it takes the
// old one's place in the set (OnChange, OnReady); then the old one gets
// BeforeStop, a request to stop, and a kill after StopTimeout. When the new process
// does not become ready, the old one keeps serving and Restart says why.
func (s *Supervisor) Restart(ctx context.Context, id string) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return s.replace(ctx, id, surgeRestart)
}

// RestartInPlace replaces a replica the way a person restarts a server by
// hand: BeforeStop, a request to stop, wait for the exit (a kill after
// StopTimeout), then a new process with the same ID on the same address,
// and wait until it is ready. The replica is out of the set meanwhile, so
// a side with one replica has none for that moment; Restart has no such
// gap. The walkthrough uses it, because its lesson shows the same address
// answering differently after a restart.
func (s *Supervisor) RestartInPlace(ctx context.Context, id string) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return s.replace(ctx, id, inPlaceRestart)
}

// Crash SIGKILLs a replica, with no BeforeStop and no drain (its in-flight
// requests and, on the stateful side, its sessions die with it: that is the
// point), then starts a new process with the same ID on the same address and
// waits until it is ready.
func (s *Supervisor) Crash(ctx context.Context, id string) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return s.replace(ctx, id, crashRestart)
}

// RollingRestart restarts every replica in service, one after the other,
// each as Restart does: its successor ready before it stops, and done
// before the next one begins. It gives up at the first failure.
func (s *Supervisor) RollingRestart(ctx context.Context) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	for _, p := range s.inService() {
		if err := s.replace(ctx, p.id, surgeRestart); err != nil {
			return fmt.Errorf("rolling restart: %w", err)
		}
	}
	return nil
}

// Stop stops every replica, gracefully first (BeforeStop, a request to
// stop), then with a kill after StopTimeout or once ctx is done. An operation in
// progress is abandoned. When Stop returns, no process it started is left;
// the Supervisor refuses any later operation.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.beginStop()
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	ps := make([]*proc, 0, len(s.live))
	for p := range s.live {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	slices.SortFunc(ps, func(a, b *proc) int { return slotNumber(a.id) - slotNumber(b.id) })
	if len(ps) > 0 {
		s.logger.Info("stopping all replicas", "replicas", idsOf(ps))
	}
	return s.halt(ctx, ps, true)
}

// begin waits for the operation in progress, then returns a context that
// also ends when Stop begins, and the function that ends the operation.
func (s *Supervisor) begin(ctx context.Context) (context.Context, func(), error) {
	s.op.Lock()
	if s.stopping.Err() != nil {
		s.op.Unlock()
		return nil, nil, fmt.Errorf("%s supervisor: stopped", s.cfg.Side)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopping, cancel)
	return ctx, func() { stop(); cancel(); s.op.Unlock() }, nil
}

// How replace replaces a replica.
type replacement int

const (
	surgeRestart   replacement = iota // Restart: the successor first, on a new address
	inPlaceRestart                    // RestartInPlace: stop, then start on the same address
	crashRestart                      // Crash: SIGKILL, then start on the same address
)

// replace stops one replica and starts its successor, as how says. The
// caller holds the operation lock.
func (s *Supervisor) replace(ctx context.Context, id string, how replacement) error {
	verb := "restart"
	if how == crashRestart {
		verb = "crash"
	}
	s.mu.Lock()
	old := s.set[id]
	s.mu.Unlock()
	if old == nil {
		return fmt.Errorf("%s %s: no such replica (running: %s)", verb, id, strings.Join(idsOf(s.inService()), ", "))
	}
	if how == surgeRestart {
		return s.surge(ctx, old)
	}
	began := time.Now()
	if err := s.halt(ctx, []*proc{old}, how == inPlaceRestart); err != nil {
		// The old process is gone all the same: its successor can start.
		s.logger.Warn("replica did not stop cleanly", "id", id, "err", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: stopped, not started again: %w", verb, id, err)
	}
	if err := s.start(ctx, id, old.addr, old.restarts+1, old.state); err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	s.mu.Lock()
	pid := s.set[id].cmd.Process.Pid
	s.mu.Unlock()
	s.logger.Info("replica replaced", "how", verb, "id", id, "old_pid", old.cmd.Process.Pid, "pid", pid,
		"old_exit", exitStatus(old.state), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// surge replaces old by a process on a new address that is ready before
// old stops. The caller holds the operation lock.
func (s *Supervisor) surge(ctx context.Context, old *proc) error {
	began := time.Now()
	p, err := s.launch(ctx, old.id, "", old.restarts+1, nil)
	if err != nil {
		return fmt.Errorf("restart %s: its successor did not start, so it goes on serving: %w", old.id, err)
	}
	s.mu.Lock()
	old.planned, old.retiring = true, true
	s.mu.Unlock()
	s.join(p) // takes old's place in the set: one OnChange, the new address instead of the old
	if err := s.halt(ctx, []*proc{old}, true); err != nil {
		s.logger.Warn("replica did not stop cleanly", "id", old.id, "err", err)
	}
	s.mu.Lock()
	p.lastExit = old.state
	s.mu.Unlock()
	s.logger.Info("replica replaced", "how", "restart", "id", old.id, "old_pid", old.cmd.Process.Pid, "pid", p.cmd.Process.Pid,
		"old_addr", old.addr, "addr", p.addr, "old_exit", exitStatus(old.state), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// inService returns the processes in service, sorted by ID number.
func (s *Supervisor) inService() []*proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*proc, 0, len(s.set))
	for _, p := range s.set {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *proc) int { return slotNumber(a.id) - slotNumber(b.id) })
	return ps
}

// freeIDs returns the k lowest ID numbers not in service.
func (s *Supervisor) freeIDs(k int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for n := 1; len(ids) < k; n++ {
		id := s.cfg.Side + "-" + strconv.Itoa(n)
		if s.set[id] == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// start spawns a process for id and waits until it is ready; then it joins
// the set. An empty addr picks a free port. Finding a free port means
// listening on port 0 and closing the listener before the replica listens
// there: another program can take the port in between. The replica then
// fails with "address already in use", and start tries another port.
func (s *Supervisor) start(ctx context.Context, id, addr string, restarts int, lastExit *os.ProcessState) error {
	p, err := s.launch(ctx, id, addr, restarts, lastExit)
	if err != nil {
		return err
	}
	s.join(p)
	return nil
}

// join puts a ready process in the set under its ID, in place of any
// process there, and tells the hooks.
func (s *Supervisor) join(p *proc) {
	s.mu.Lock()
	s.set[p.id] = p
	s.ready = append(s.ready, p.readyIn)
	s.mu.Unlock()
	s.logger.Info("replica ready", "id", p.id, "pid", p.cmd.Process.Pid, "addr", p.addr, "ready_in", p.readyIn.Round(time.Microsecond))
	s.changed()
	s.call(s.cfg.OnReady, p.replica())
}

// launch spawns a process for id and waits until it is ready, trying
// another port when the one chosen was taken meanwhile; see start.
func (s *Supervisor) launch(ctx context.Context, id, addr string, restarts int, lastExit *os.ProcessState) (*proc, error) {
	for try := 1; ; try++ {
		a := addr
		if a == "" {
			var err error
			if a, err = s.freeAddr(id); err != nil {
				return nil, fmt.Errorf("start %s: find a free port: %w", id, err)
			}
		}
		p, err := s.spawn(id, a, restarts, lastExit)
		if err != nil {
			return nil, err
		}
		err = s.waitReady(ctx, p)
		if err == nil {
			return p, nil
		}
		_ = s.halt(context.WithoutCancel(ctx), []*proc{p}, false)
		if try < supStartTries && strings.Contains(p.out.String(), supPortTaken) {
			s.logger.Warn("port taken before the replica could listen: trying another", "id", id, "addr", a)
			addr = ""
			continue
		}
		return nil, err
	}
}

// spawn starts one process and the goroutine that reaps it.
func (s *Supervisor) spawn(id, addr string, restarts int, lastExit *os.ProcessState) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	args := append([]string{s.cfg.Command, "--addr", addr, "--replica-id", id, "--exit-with-stdin"}, s.cfg.Args...)
	cmd := exec.Command(s.cfg.Binary, args...)
	cmd.Env = append(os.Environ(), s.cfg.Env...)
	cmd.Stdin = r
	out := &output{log: s.log}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that kept the output pipe open must not keep Wait from
	// returning once the replica itself has exited.
	cmd.WaitDelay = time.Second
	var started func(pid int) error
	if s.cfg.Confine != nil {
		if started, err = s.cfg.Confine(id, cmd); err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("start %s: confine: %w", id, err)
		}
	}
	p := &proc{id: id, addr: addr, cmd: cmd, stdin: w, out: out, restarts: restarts, lastExit: lastExit, done: make(chan struct{})}
	p.spawned = time.Now()
	if s.cfg.Start != nil {
		err = s.cfg.Start(id, cmd)
	} else {
		err = cmd.Start()
	}
	r.Close() // the replica has its own copy; keeping ours would hide the runner's death from it
	if err != nil {
		w.Close()
		if started != nil {
			_ = started(0)
		}
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	s.mu.Lock()
	s.live[p] = struct{}{}
	s.mu.Unlock()
	go s.reap(p)
	if started != nil {
		if err := started(cmd.Process.Pid); err != nil {
			_ = s.halt(context.Background(), []*proc{p}, false)
			return nil, fmt.Errorf("start %s: confine pid %d: %w", id, cmd.Process.Pid, err)
		}
	}
	s.logger.Debug("replica spawned", "id", id, "pid", cmd.Process.Pid, "addr", addr)
	return p, nil
}

// reap is the one goroutine that waits for a process. An exit the
// supervisor did not cause takes the replica out of the set.
func (s *Supervisor) reap(p *proc) {
	defer close(p.done)
	_ = p.cmd.Wait() // the exit status is in ProcessState
	p.stdin.Close()
	p.out.flush()
	p.state = p.cmd.ProcessState

	s.mu.Lock()
	delete(s.live, p)
	if p.state != nil {
		s.reapedCPU += p.state.UserTime() + p.state.SystemTime()
	}
	unexpected := !p.planned && s.set[p.id] == p
	if unexpected {
		delete(s.set, p.id)
	}
	s.mu.Unlock()

	if !unexpected {
		s.logger.Debug("replica exited", "id", p.id, "pid", p.cmd.Process.Pid, "exit", exitStatus(p.state))
		return
	}
	s.logger.Warn("replica exited unexpectedly: it leaves the set", "id", p.id, "pid", p.cmd.Process.Pid,
		"exit", exitStatus(p.state), "output", p.out.String())
	s.changed()
}

// waitReady polls /api/ready until the process answers 200 under its own
// replica id (a 200 from whoever else holds the port does not count), the
// process exits, ReadyTimeout passes, or ctx is done.
func (s *Supervisor) waitReady(ctx context.Context, p *proc) error {
	tooSlow := errors.New("not ready in time")
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.ReadyTimeout, tooSlow)
	defer cancel()
	url := "http://" + p.addr + client.ReadyPath
	tick := time.NewTicker(supPollEvery)
	defer tick.Stop()
	for {
		if s.probe(ctx, url, p.id) {
			p.readyIn = time.Since(p.spawned)
			return nil
		}
		select {
		case <-p.done:
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		switch {
		case p.exited():
			return fmt.Errorf("replica %s (pid %d) exited before it was ready (%s); its last output:\n%s",
				p.id, p.cmd.Process.Pid, exitStatus(p.state), p.out.String())
		case context.Cause(ctx) == tooSlow:
			return fmt.Errorf("replica %s (pid %d) was not ready within %v; its last output:\n%s",
				p.id, p.cmd.Process.Pid, s.cfg.ReadyTimeout, p.out.String())
		default:
			return fmt.Errorf("replica %s (pid %d) not ready: %w", p.id, p.cmd.Process.Pid, ctx.Err())
		}
	}
}

func (s *Supervisor) probe(ctx context.Context, url, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get(client.ReplicaHeader) == id
}

// halt ends the given processes and returns once all have exited.
// Gracefully: BeforeStop for each one in service (or just replaced by a
// surge restart), askToStop, and a kill for those still running after
// StopTimeout or once ctx is done. Otherwise: a kill at once. Those in service leave the set, and OnChange hears of it
// once.
func (s *Supervisor) halt(ctx context.Context, ps []*proc, graceful bool) error {
	if len(ps) == 0 {
		return nil
	}
	s.mu.Lock()
	for _, p := range ps {
		p.planned = true
	}
	s.mu.Unlock()
	began := time.Now()
	if graceful {
		for _, p := range ps {
			s.mu.Lock()
			warn := s.set[p.id] == p || p.retiring
			s.mu.Unlock()
			if warn {
				s.call(s.cfg.BeforeStop, p.replica())
			}
		}
		for _, p := range ps {
			askToStop(p)
		}
		timer := time.NewTimer(s.cfg.StopTimeout)
		defer timer.Stop()
	wait:
		for _, p := range ps {
			select {
			case <-p.done:
			case <-timer.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
	}
	var errs []error
	for _, p := range ps {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			if graceful {
				errs = append(errs, fmt.Errorf("replica %s (pid %d) did not stop within %v: killed", p.id, p.cmd.Process.Pid, time.Since(began).Round(time.Millisecond)))
			}
		}
	}
	removed := false
	for _, p := range ps {
		<-p.done
		s.mu.Lock()
		if s.set[p.id] == p {
			delete(s.set, p.id)
			removed = true
		}
		s.mu.Unlock()
		s.logger.Info("replica stopped", "id", p.id, "pid", p.cmd.Process.Pid, "graceful", graceful,
			"exit", exitStatus(p.state), "took", time.Since(began).Round(time.Millisecond))
	}
	if removed {
		s.changed()
	}
	return errors.Join(errs...)
}

// changed tells OnChange the set as it is now. Taking the snapshot inside
// the hook lock makes the last call always carry the latest set.
func (s *Supervisor) changed() {
	s.hooks.Lock()
	defer s.hooks.Unlock()
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(s.Replicas())
	}
}

func (s *Supervisor) call(hook func(Replica), r Replica) {
	s.hooks.Lock()
	defer s.hooks.Unlock()
	if hook != nil {
		hook(r)
	}
}

// slotNumber is the number at the end of a replica ID.
func slotNumber(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

func idsOf(ps []*proc) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.id
	}
	return ids
}

func exitStatus(st *os.ProcessState) string {
	if st == nil {
		return "still running"
	}
	return st.String()
}

// freeAddr is Config.FreeAddr, or else a free port on 127.0.0.1.
func (s *Supervisor) freeAddr(id string) (string, error) {
	if s.cfg.FreeAddr != nil {
		return s.cfg.FreeAddr(id)
	}
	return freeAddr()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// lineLog is the writer all replicas' output goes to. Write errors are
// dropped: a full disk must not block a replica on its own output.
type lineLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineLog) write(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}

// output is one process's stdout and stderr: it keeps the last
// supTailSize bytes for error messages and passes whole lines on to the
// shared log, so the lines of different replicas never interleave.
type output struct {
	mu      sync.Mutex
	log     *lineLog
	tail    []byte
	pending []byte
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tail = append(o.tail, b...)
	if extra := len(o.tail) - supTailSize; extra > 0 {
		o.tail = append(o.tail[:0], o.tail[extra:]...)
	}
	o.pending = append(o.pending, b...)
	if i := bytes.LastIndexByte(o.pending, '\n'); i >= 0 {
		o.log.write(o.pending[:i+1])
		o.pending = append(o.pending[:0], o.pending[i+1:]...)
	} else if len(o.pending) > 64<<10 {
		o.log.write(o.pending)
		o.pending = o.pending[:0]
	}
	return len(b), nil
}

// flush passes on a last line that did not end in a newline.
func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) > 0 {
		o.log.write(append(o.pending, '\n'))
		o.pending = nil
	}
}

// String returns the end of the output, from the start of a line.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.tail
	if len(t) == supTailSize {
		if i := bytes.IndexByte(t, '\n'); i >= 0 {
			t = t[i+1:]
		}
	}
	return strings.TrimRight(string(t), "\n")
}
