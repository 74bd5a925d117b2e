//go:build linux

package supervisor_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/supervisor"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/sqlite"
)

// supHelperEnv turns the test binary into something else than the tests:
// "server" makes it a fake replica, "runner" a runner that supervises one.
// This is the os/exec helper-process trick: the supervisor starts the test
// binary itself as its replicas, so the tests need nothing built and the
// fake does exactly what a test asks of it.
const supHelperEnv = "STATELAB_SUPERVISOR_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(supHelperEnv) {
	case "server":
		os.Exit(supFakeServer(os.Args[1:]))
	case "runner":
		os.Exit(supFakeRunner())
	}
	os.Exit(labtest.Main(m))
}

// supFakeServer is a replica with the real one's command line and
// lifecycle and none of its library: it serves /api/ready and /api/health,
// stops gracefully (exit 0) on SIGTERM or when its standard input closes,
// and misbehaves on request.
func supFakeServer(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "fake replica: name a subcommand")
		return 2
	}
	side := args[0]
	fs := flag.NewFlagSet("fake "+side, flag.ContinueOnError)
	addr := fs.String("addr", "", "`host:port` to listen on")
	id := fs.String("replica-id", "", "replica `id`")
	withStdin := fs.Bool("exit-with-stdin", false, "exit when standard input closes")
	fail := fs.String("fail", "", "say this `message` and exit 1 at once")
	failOnce := fs.String("fail-once", "", "the first process that finds this `file` missing creates it and fails as if its port had been taken")
	ignoreTerm := fs.Bool("ignore-term", false, "ignore SIGTERM: only the standard input closing stops it, as on Windows")
	ignoreStop := fs.Bool("ignore-stop", false, "ignore SIGTERM and the standard input closing: only a kill stops it")
	neverReady := fs.Bool("never-ready", false, "answer 503 on /api/ready for ever")
	neverReadyIf := fs.String("never-ready-if", "", "answer 503 on /api/ready for ever when this `file` exists at start")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *fail != "" {
		fmt.Fprintln(os.Stderr, *fail)
		return 1
	}
	if _, err := os.Stat(*neverReadyIf); *neverReadyIf != "" && err == nil {
		*neverReady = true
	}
	if *failOnce != "" {
		if f, err := os.OpenFile(*failOnce, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
			f.Close()
			fmt.Fprintf(os.Stderr, "statelab: listen on %s: listen tcp %s: bind: address already in use\n", *addr, *addr)
			return 1
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if *ignoreTerm || *ignoreStop {
		signal.Ignore(syscall.SIGTERM)
	} else {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGTERM)
		defer stop()
	}
	why := "SIGTERM"
	var stdinClosed atomic.Bool
	if *withStdin && !*ignoreStop {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stdinClosed.Store(true)
			cancel()
		}()
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "statelab: listen on %s: %v\n", *addr, err)
		return 1
	}
	var draining atomic.Bool
	answer := func(w http.ResponseWriter, status int, body map[string]any) {
		w.Header().Set(api.ReplicaHeader, *id)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/ready", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() || *neverReady {
			answer(w, http.StatusServiceUnavailable, map[string]any{"success": false, "replica": *id})
			return
		}
		answer(w, http.StatusOK, map[string]any{"success": true, "status": "ready", "replica": *id})
	})
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK, map[string]any{"success": true, "status": "healthy", "service": side, "replica": *id, "pid": os.Getpid()})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "fake %s replica %s listening on %s\n", side, *id, ln.Addr())

	<-ctx.Done()
	if stdinClosed.Load() {
		why = "standard input closed"
	}
	draining.Store(true)
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	fmt.Fprintf(os.Stderr, "fake replica %s stopped: %s\n", *id, why)
	return 0
}

// supFakeRunner supervises one fake replica, prints its pid, and waits
// until its standard input closes or it is killed.
func supFakeRunner() int {
	sup := supervisor.New(supervisor.Config{
		Side:   "stateless",
		Binary: os.Args[0],
		Env:    []string{supHelperEnv + "=server"},
		Log:    os.Stderr,
	})
	if err := sup.Scale(context.Background(), 1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("replica pid %d\n", sup.Replicas()[0].PID)
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = sup.Stop(context.Background())
	return 0
}

// supHooks records what the supervisor's hooks were told.
type supHooks struct {
	mu          sync.Mutex
	ready       []supervisor.Replica
	beforeStop  []supervisor.Replica
	changes     [][]supervisor.Replica
	onStop      func(supervisor.Replica) // run inside BeforeStop, if set
	readyAtStop []bool                   // did /api/ready answer 200 inside BeforeStop?
}

func (h *supHooks) onReady(r supervisor.Replica) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready = append(h.ready, r)
}

func (h *supHooks) onBeforeStop(r supervisor.Replica) {
	status, _ := supGet(r.Addr, "/api/ready")
	h.mu.Lock()
	h.beforeStop = append(h.beforeStop, r)
	h.readyAtStop = append(h.readyAtStop, status == http.StatusOK)
	f := h.onStop
	h.mu.Unlock()
	if f != nil {
		f(r)
	}
}

func (h *supHooks) onChange(reps []supervisor.Replica) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, reps)
}

func (h *supHooks) stoppedIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return supIDs(h.beforeStop)
}

func (h *supHooks) lastChange() []supervisor.Replica {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.changes) == 0 {
		return nil
	}
	return h.changes[len(h.changes)-1]
}

// supStart returns a supervisor of fake replicas whose hooks h records;
// edit may change its config. The test's cleanup stops it.
func supStart(t *testing.T, edit func(*supervisor.Config)) (*supervisor.Supervisor, *supHooks, *labtest.Buffer) {
	t.Helper()
	h := &supHooks{}
	logs := &labtest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("supervisor log and replica output:\n%s", logs)
		}
	})
	cfg := supervisor.Config{
		Side:         "stateless",
		Binary:       os.Args[0],
		Env:          []string{supHelperEnv + "=server"},
		Log:          logs,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReadyTimeout: 10 * time.Second,
		StopTimeout:  5 * time.Second,
		OnReady:      h.onReady,
		BeforeStop:   h.onBeforeStop,
		OnChange:     h.onChange,
	}
	if edit != nil {
		edit(&cfg)
	}
	sup := supervisor.New(cfg)
	t.Cleanup(func() {
		if err := sup.Stop(context.Background()); err != nil {
			t.Errorf("Stop = %v", err)
		}
	})
	return sup, h, logs
}

func supScale(t *testing.T, sup *supervisor.Supervisor, n int) []supervisor.Replica {
	t.Helper()
	if err := sup.Scale(t.Context(), n); err != nil {
		t.Fatalf("Scale(%d) = %v", n, err)
	}
	reps := sup.Replicas()
	if len(reps) != n {
		t.Fatalf("after Scale(%d): %d replicas: %v", n, len(reps), supIDs(reps))
	}
	return reps
}

func supIDs(reps []supervisor.Replica) []string {
	ids := make([]string, len(reps))
	for i, r := range reps {
		ids[i] = r.ID
	}
	return ids
}

func supPIDs(reps []supervisor.Replica) map[string]int {
	pids := map[string]int{}
	for _, r := range reps {
		pids[r.ID] = r.PID
	}
	return pids
}

// supGet returns the status and the JSON body of GET http://addr/path.
func supGet(addr, path string) (int, map[string]any) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// supCheckHealth checks that each replica answers /api/health as itself,
// from the process the supervisor says it is.
func supCheckHealth(t *testing.T, reps []supervisor.Replica) {
	t.Helper()
	for _, r := range reps {
		status, body := supGet(r.Addr, "/api/health")
		if status != http.StatusOK || body["replica"] != r.ID || body["pid"] != float64(r.PID) {
			t.Errorf("GET %s/api/health = %d %v, want 200 from replica %s, pid %d", r.Addr, status, body, r.ID, r.PID)
		}
	}
}

// supGone reports whether no process has the pid any more. A zombie counts
// as gone: it runs nothing and holds no port, it only waits for its new
// parent (init, once the test's runner died) to reap it.
func supGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// supWaitGone polls until the process is gone.
func supWaitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !supGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs %v later", pid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// supChildren returns the pids of this process's live children.
func supChildren(t *testing.T) []int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) && fields[0] != "Z" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			kids = append(kids, pid)
		}
	}
	return kids
}

func TestSupervisorScaleOut(t *testing.T) {
	t.Parallel()
	sup, h, _ := supStart(t, nil)
	reps := supScale(t, sup, 2)

	if got, want := supIDs(reps), []string{"stateless-1", "stateless-2"}; !slices.Equal(got, want) {
		t.Errorf("IDs %v, want %v", got, want)
	}
	if reps[0].PID == reps[1].PID || reps[0].Addr == reps[1].Addr {
		t.Errorf("replicas share a pid or an address: %+v", reps)
	}
	for _, r := range reps {
		if r.PID == os.Getpid() || supGone(r.PID) {
			t.Errorf("replica %s: pid %d is not a running child", r.ID, r.PID)
		}
		if !strings.HasPrefix(r.Addr, "127.0.0.1:") || r.Restarts != 0 || r.LastExit != nil || r.StartedAt.IsZero() {
			t.Errorf("replica %+v: want a loopback address, no restarts, no last exit, a start time", r)
		}
	}
	supCheckHealth(t, reps)

	h.mu.Lock()
	readyIDs := supIDs(h.ready)
	h.mu.Unlock()
	slices.Sort(readyIDs)
	if want := []string{"stateless-1", "stateless-2"}; !slices.Equal(readyIDs, want) {
		t.Errorf("OnReady for %v, want %v", readyIDs, want)
	}
	if got := supIDs(h.lastChange()); !slices.Equal(got, supIDs(reps)) {
		t.Errorf("last OnChange %v, want %v", got, supIDs(reps))
	}
	d := sup.ReadyDurations()
	if len(d) != 2 {
		t.Fatalf("ReadyDurations = %v, want 2", d)
	}
	for i, r := range reps {
		if r.ReadyIn <= 0 || !slices.Contains(d, r.ReadyIn) {
			t.Errorf("replica %d ReadyIn %v, not among ReadyDurations %v", i, r.ReadyIn, d)
		}
	}
	t.Logf("fake replicas ready in %v", d)

	if err := sup.Scale(t.Context(), 2); err != nil || !maps.Equal(supPIDs(sup.Replicas()), supPIDs(reps)) {
		t.Errorf("Scale(2) again = %v, replicas %v; want nil and the same processes", err, sup.Replicas())
	}
}

func TestSupervisorRestart(t *testing.T) {
	t.Parallel()
	var sup *supervisor.Supervisor
	var duringOp []int
	sup, h, _ := supStart(t, nil)
	h.onStop = func(supervisor.Replica) { duringOp = append(duringOp, len(sup.Replicas())) } // must not wait for the Restart in progress
	old := supScale(t, sup, 1)[0]

	if err := sup.Restart(t.Context(), old.ID); err != nil {
		t.Fatalf("Restart = %v", err)
	}
	reps := sup.Replicas()
	if len(reps) != 1 {
		t.Fatalf("after Restart: %v", reps)
	}
	r := reps[0]
	if r.ID != old.ID || r.Addr == old.Addr || r.PID == old.PID || r.Restarts != 1 {
		t.Errorf("after Restart: %+v; want %s on a new address (not %s) with a new pid (old %d) and 1 restart", r, old.ID, old.Addr, old.PID)
	}
	if r.LastExit == nil || !r.LastExit.Success() {
		t.Errorf("LastExit = %v, want exit status 0 (a graceful stop)", r.LastExit)
	}
	if !supGone(old.PID) {
		t.Errorf("old process %d still exists after Restart", old.PID)
	}
	supCheckHealth(t, reps)

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.beforeStop) != 1 || h.beforeStop[0].PID != old.PID {
		t.Fatalf("BeforeStop got %+v, want the old process once", h.beforeStop)
	}
	if !h.readyAtStop[0] {
		t.Error("inside BeforeStop the replica no longer answered ready: SIGTERM came before BeforeStop")
	}
	if !slices.Equal(duringOp, []int{1}) {
		t.Errorf("Replicas() inside BeforeStop saw %v, want [1]: the successor in service", duringOp)
	}
	// A surge: the successor takes the old one's place in one change, so
	// the set never lacks the replica.
	var sets [][]int
	for _, c := range h.changes {
		sets = append(sets, slices.Collect(maps.Values(supPIDs(c))))
	}
	if want := [][]int{{old.PID}, {r.PID}}; !slices.EqualFunc(sets, want, slices.Equal) {
		t.Errorf("OnChange sets (pids) %v, want %v (started, replaced in one step)", sets, want)
	}
	if len(h.ready) != 2 || h.ready[1].PID != r.PID {
		t.Errorf("OnReady got %+v, want the first and then the new process", h.ready)
	}
}

// TestSupervisorRestartInPlace restarts a replica as a person does by
// hand: the old process stops, then the new one starts on its address.
func TestSupervisorRestartInPlace(t *testing.T) {
	t.Parallel()
	sup, h, _ := supStart(t, nil)
	old := supScale(t, sup, 1)[0]
	if err := sup.RestartInPlace(t.Context(), old.ID); err != nil {
		t.Fatalf("RestartInPlace = %v", err)
	}
	reps := sup.Replicas()
	if len(reps) != 1 || reps[0].Addr != old.Addr || reps[0].PID == old.PID || reps[0].Restarts != 1 || reps[0].LastExit == nil || !reps[0].LastExit.Success() {
		t.Fatalf("after RestartInPlace: %+v; want %s on %s with a new pid, 1 restart, a clean exit of the old one", reps, old.ID, old.Addr)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var sizes []int
	for _, c := range h.changes {
		sizes = append(sizes, len(c))
	}
	if want := []int{1, 0, 1}; !slices.Equal(sizes, want) {
		t.Errorf("OnChange set sizes %v, want %v (started, left, back)", sizes, want)
	}
	if len(h.beforeStop) != 1 || h.beforeStop[0].PID != old.PID || !h.readyAtStop[0] {
		t.Errorf("BeforeStop got %+v (ready then: %v), want the old process once, still ready", h.beforeStop, h.readyAtStop)
	}
}

// TestSupervisorRestartFails starts a successor that never becomes ready:
// the old process goes on serving, and Restart says why.
func TestSupervisorRestartFails(t *testing.T) {
	t.Parallel()
	broken := filepath.Join(t.TempDir(), "broken")
	sup, h, _ := supStart(t, func(c *supervisor.Config) {
		c.ReadyTimeout = time.Second
		c.Args = []string{"--never-ready-if", broken}
	})
	old := supScale(t, sup, 1)[0]
	h.mu.Lock()
	h.changes = nil
	h.mu.Unlock()
	if err := os.WriteFile(broken, nil, 0o644); err != nil { // the next process will never be ready
		t.Fatal(err)
	}
	err := sup.Restart(t.Context(), old.ID)
	if err == nil || !strings.Contains(err.Error(), "goes on serving") {
		t.Errorf("Restart = %v, want an error saying the old process goes on serving", err)
	}
	if reps := sup.Replicas(); len(reps) != 1 || reps[0].PID != old.PID {
		t.Errorf("after the failed Restart: %+v, want the old process %d", reps, old.PID)
	}
	if got := h.stoppedIDs(); len(got) != 0 {
		t.Errorf("BeforeStop for %v: the old process must not be stopped", got)
	}
	if got := h.lastChange(); got != nil {
		t.Errorf("OnChange %v, want no change", supIDs(got))
	}
}

func TestSupervisorCrash(t *testing.T) {
	t.Parallel()
	sup, h, _ := supStart(t, nil)
	old := supScale(t, sup, 2)[1]

	if err := sup.Crash(t.Context(), old.ID); err != nil {
		t.Fatalf("Crash = %v", err)
	}
	reps := sup.Replicas()
	if len(reps) != 2 {
		t.Fatalf("after Crash: %v", reps)
	}
	r := reps[1]
	if r.ID != old.ID || r.Addr != old.Addr || r.PID == old.PID || r.Restarts != 1 {
		t.Errorf("after Crash: %+v; want %s on %s with a new pid (old %d) and 1 restart", r, old.ID, old.Addr, old.PID)
	}
	if r.LastExit == nil {
		t.Fatal("LastExit is nil after Crash")
	}
	if ws, ok := r.LastExit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("LastExit = %v, want killed by SIGKILL", r.LastExit)
	}
	if !supGone(old.PID) {
		t.Errorf("crashed process %d still exists", old.PID)
	}
	if got := h.stoppedIDs(); len(got) != 0 {
		t.Errorf("BeforeStop called for %v: a crash gives no warning", got)
	}
	supCheckHealth(t, reps)
}

func TestSupervisorScaleIn(t *testing.T) {
	t.Parallel()
	sup, h, _ := supStart(t, nil)
	before := supPIDs(supScale(t, sup, 4))

	after := supScale(t, sup, 1)
	if after[0].ID != "stateless-1" || after[0].PID != before["stateless-1"] {
		t.Errorf("after Scale(1): %+v, want stateless-1 still pid %d", after[0], before["stateless-1"])
	}
	stopped := h.stoppedIDs()
	slices.Sort(stopped)
	if want := []string{"stateless-2", "stateless-3", "stateless-4"}; !slices.Equal(stopped, want) {
		t.Errorf("BeforeStop for %v, want %v", stopped, want)
	}
	for _, id := range []string{"stateless-2", "stateless-3", "stateless-4"} {
		if !supGone(before[id]) {
			t.Errorf("%s (pid %d) still runs after Scale(1)", id, before[id])
		}
	}
	if got := supIDs(h.lastChange()); !slices.Equal(got, []string{"stateless-1"}) {
		t.Errorf("last OnChange %v, want [stateless-1]", got)
	}

	// Freed numbers are used again, lowest first.
	again := supScale(t, sup, 3)
	if got, want := supIDs(again), []string{"stateless-1", "stateless-2", "stateless-3"}; !slices.Equal(got, want) {
		t.Errorf("after Scale(3): %v, want %v", got, want)
	}
	if again[0].PID != before["stateless-1"] {
		t.Errorf("stateless-1 changed pid on scale-out: %d, was %d", again[0].PID, before["stateless-1"])
	}
	supCheckHealth(t, again)

	if err := sup.Scale(t.Context(), -1); err == nil {
		t.Error("Scale(-1) = nil, want an error")
	}
}

func TestSupervisorRollingRestart(t *testing.T) {
	t.Parallel()
	sup, h, _ := supStart(t, nil)
	before := supScale(t, sup, 3)
	h.mu.Lock()
	from := len(h.changes)
	h.mu.Unlock()

	if err := sup.RollingRestart(t.Context()); err != nil {
		t.Fatalf("RollingRestart = %v", err)
	}
	after := sup.Replicas()
	if !slices.Equal(supIDs(after), supIDs(before)) {
		t.Fatalf("after RollingRestart: %v, want %v", supIDs(after), supIDs(before))
	}
	for i := range after {
		if after[i].PID == before[i].PID || after[i].Addr == before[i].Addr || after[i].Restarts != 1 {
			t.Errorf("%s: %+v, want a new pid (old %d) on a new address (not %s), 1 restart", after[i].ID, after[i], before[i].PID, before[i].Addr)
		}
		if !supGone(before[i].PID) {
			t.Errorf("%s: old process %d still exists", before[i].ID, before[i].PID)
		}
	}
	if got, want := h.stoppedIDs(), supIDs(before); !slices.Equal(got, want) {
		t.Errorf("stopped in the order %v, want %v", got, want)
	}
	h.mu.Lock()
	for _, c := range h.changes[from:] {
		if len(c) != 3 {
			t.Errorf("during the rolling restart the set was %v: a surge restart never leaves a replica out", supIDs(c))
		}
	}
	h.mu.Unlock()
	supCheckHealth(t, after)
}

// TestSupervisorStop is not parallel: it checks that the test process has
// no child left, and parallel tests run their replicas only after it.
func TestSupervisorStop(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		stopTimeout time.Duration
		wantErr     string // "" for none
		wantWhy     string // what each replica said stopped it, if it matters
	}{
		{name: "graceful", stopTimeout: 5 * time.Second},
		// What a replica on Windows hears: no SIGTERM, only its standard
		// input closing. The stop is as graceful as with SIGTERM.
		{name: "replica hears only its standard input", args: []string{"--ignore-term"}, stopTimeout: 30 * time.Second, wantWhy: "standard input closed"},
		{name: "replica ignores every request to stop", args: []string{"--ignore-stop"}, stopTimeout: 300 * time.Millisecond, wantErr: "did not stop within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sup, h, logs := supStart(t, func(c *supervisor.Config) {
				c.Args = tt.args
				c.StopTimeout = tt.stopTimeout
			})
			reps := supScale(t, sup, 3)

			start := time.Now()
			err := sup.Stop(t.Context())
			took := time.Since(start)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Stop = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.wantErr != "" && took < tt.stopTimeout {
				t.Errorf("Stop killed after %v, before the StopTimeout %v", took, tt.stopTimeout)
			}
			if kids := supChildren(t); len(kids) > 0 {
				t.Errorf("after Stop these children are left: %v", kids)
			}
			for _, r := range reps {
				if !supGone(r.PID) {
					t.Errorf("%s (pid %d) still exists after Stop", r.ID, r.PID)
				}
			}
			if got := sup.Replicas(); len(got) != 0 {
				t.Errorf("Replicas() after Stop = %v", got)
			}
			if got := h.lastChange(); len(got) != 0 {
				t.Errorf("last OnChange %v, want the empty set", supIDs(got))
			}
			if got := len(h.stoppedIDs()); got != 3 {
				t.Errorf("BeforeStop called %d times, want 3", got)
			}
			if tt.wantWhy != "" {
				for _, r := range reps {
					if want := "fake replica " + r.ID + " stopped: " + tt.wantWhy; !strings.Contains(logs.String(), want) {
						t.Errorf("the replicas' output lacks %q", want)
					}
				}
			}
			if err := sup.Scale(t.Context(), 1); err == nil {
				t.Error("Scale after Stop = nil, want an error")
			}
			if err := sup.Stop(t.Context()); err != nil {
				t.Errorf("second Stop = %v", err)
			}
		})
	}
}

// TestSupervisorReplicaDiesWithRunner kills a runner with SIGKILL, which
// gives it no chance to stop its replica, and checks that the replica goes
// anyway.
func TestSupervisorReplicaDiesWithRunner(t *testing.T) {
	t.Parallel()
	runner := exec.Command(os.Args[0])
	runner.Env = append(os.Environ(), supHelperEnv+"=runner")
	var stderr labtest.Buffer
	runner.Stderr = &stderr
	stdin, err := runner.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := runner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = runner.Process.Kill()
		_ = runner.Wait()
		if t.Failed() {
			t.Logf("runner output:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Scan()
		line <- sc.Text()
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var pid int
	select {
	case l := <-line:
		if _, err := fmt.Sscanf(l, "replica pid %d", &pid); err != nil {
			t.Fatalf("runner said %q, want its replica's pid", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the runner did not report its replica")
	}
	if supGone(pid) {
		t.Fatalf("replica %d is not running", pid)
	}

	if err := runner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = runner.Wait()
	supWaitGone(t, pid, 10*time.Second)
}

func TestSupervisorStartFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		edit     func(*supervisor.Config)
		wantErrs []string
	}{
		{
			name: "replica exits at once",
			edit: func(c *supervisor.Config) {
				c.Args = []string{"--fail", "open database /nowhere/library.db: permission denied"}
			},
			wantErrs: []string{"exited before it was ready", "exit status 1", "open database /nowhere/library.db: permission denied"},
		},
		{
			name: "replica never ready",
			edit: func(c *supervisor.Config) {
				c.Args = []string{"--never-ready"}
				// Long enough that even a loaded machine starts the
				// fake and prints its "listening on" line first.
				c.ReadyTimeout = 2 * time.Second
			},
			wantErrs: []string{"not ready within 2s", "listening on"},
		},
		{
			name:     "no such binary",
			edit:     func(c *supervisor.Config) { c.Binary = filepath.Join(t.TempDir(), "no-statelab") },
			wantErrs: []string{"start stateless-1", "no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sup, h, _ := supStart(t, tt.edit)
			err := sup.Scale(t.Context(), 1)
			if err == nil {
				t.Fatal("Scale(1) = nil, want an error")
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Scale(1) = %q, want it to mention %q", err, want)
				}
			}
			if m := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(err.Error()); m != nil {
				pid, _ := strconv.Atoi(m[1])
				if !supGone(pid) {
					t.Errorf("the failed replica (pid %d) was left running", pid)
				}
			}
			if got := sup.Replicas(); len(got) != 0 {
				t.Errorf("Replicas() = %v, want none", got)
			}
			if d := sup.ReadyDurations(); len(d) != 0 {
				t.Errorf("ReadyDurations() = %v, want none", d)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.changes)+len(h.ready) != 0 {
				t.Errorf("hooks called: OnChange %d times, OnReady %d times; want none", len(h.changes), len(h.ready))
			}
		})
	}
}

func TestSupervisorRetriesTakenPort(t *testing.T) {
	t.Parallel()
	once := filepath.Join(t.TempDir(), "failed-once")
	sup, _, logs := supStart(t, func(c *supervisor.Config) { c.Args = []string{"--fail-once", once} })
	reps := supScale(t, sup, 1)
	if !strings.Contains(logs.String(), "port taken") {
		t.Errorf("the log does not tell of the retry:\n%s", logs)
	}
	if d := sup.ReadyDurations(); len(d) != 1 {
		t.Errorf("ReadyDurations() = %v, want the one replica that became ready", d)
	}
	supCheckHealth(t, reps)
}

func TestSupervisorUnexpectedExit(t *testing.T) {
	t.Parallel()
	sup, h, logs := supStart(t, nil)
	reps := supScale(t, sup, 2)

	if err := syscall.Kill(reps[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The set changes first, then OnChange is called: wait for both.
	deadline := time.Now().Add(10 * time.Second)
	for len(sup.Replicas()) != 1 || !slices.Equal(supIDs(h.lastChange()), []string{"stateless-2"}) {
		if time.Now().After(deadline) {
			t.Fatalf("10s after the SIGKILL: Replicas() %v, last OnChange %v; want [stateless-2] in both", supIDs(sup.Replicas()), supIDs(h.lastChange()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "exited unexpectedly") {
		t.Error("the unexpected exit was not logged")
	}
	if got := h.stoppedIDs(); len(got) != 0 {
		t.Errorf("BeforeStop called for %v", got)
	}

	again := supScale(t, sup, 2)
	if again[0].ID != "stateless-1" || again[0].PID == reps[0].PID || again[1].PID != reps[1].PID {
		t.Errorf("after Scale(2): %+v, want a new stateless-1 beside the old stateless-2", again)
	}
	if err := sup.Restart(t.Context(), "stateless-9"); err == nil || !strings.Contains(err.Error(), "no such replica") {
		t.Errorf("Restart of a missing replica = %v, want an error saying so", err)
	}
}

// TestSupervisorConcurrentOperations runs operations from many goroutines,
// as the scenario timeline and an instructor's buttons do, while others read
// the set. Run it with -race.
func TestSupervisorConcurrentOperations(t *testing.T) {
	t.Parallel()
	sup, _, _ := supStart(t, nil)
	supScale(t, sup, 2)

	ops := []func(context.Context) error{
		func(ctx context.Context) error { return sup.Restart(ctx, "stateless-1") },
		func(ctx context.Context) error { return sup.Crash(ctx, "stateless-2") },
		func(ctx context.Context) error { return sup.Scale(ctx, 3) },
		func(ctx context.Context) error { return sup.RollingRestart(ctx) },
	}
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = op(t.Context()) }()
	}
	done := make(chan struct{})
	readers := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				readers <- n
				return
			default:
			}
			_ = sup.Replicas()
			_ = sup.ReadyDurations()
			n++
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(done)
	if n := <-readers; n == 0 {
		t.Error("Replicas() was never read during the operations")
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("operation %d = %v", i, err)
		}
	}
	reps := sup.Replicas()
	if got, want := supIDs(reps), []string{"stateless-1", "stateless-2", "stateless-3"}; !slices.Equal(got, want) {
		t.Fatalf("in the end: %v, want %v", got, want)
	}
	supCheckHealth(t, reps)
}

// TestSupervisorRealServer runs the real statelab binary: two stateless
// replicas on one database, a restart, a stop, and a replica whose standard
// input closes.
func TestSupervisorRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real server")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := labtest.Binary(t)
	db := filepath.Join(dir, "library.db")
	// Create and seed the database once, as the runner does, before
	// replicas race to do it.
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	secret := strings.Repeat("0123456789abcdef", 4)
	args := []string{"--db", db, "--jwt-secret", secret, "--log-format", "json", "--shutdown-timeout", "5s"}

	sup, h, logs := supStart(t, func(c *supervisor.Config) {
		c.Binary = bin
		c.Env = nil
		c.Args = args
	})
	reps := supScale(t, sup, 2)
	for _, r := range reps {
		status, body := supGet(r.Addr, "/api/health")
		if status != http.StatusOK || body["replica"] != r.ID {
			t.Errorf("GET %s/api/health = %d %v, want 200 from %s", r.Addr, status, body, r.ID)
		}
	}

	if err := sup.Restart(t.Context(), "stateless-2"); err != nil {
		t.Fatalf("Restart = %v", err)
	}
	after := sup.Replicas()
	if after[1].PID == reps[1].PID || after[1].Addr == reps[1].Addr || after[1].LastExit == nil || !after[1].LastExit.Success() {
		t.Errorf("after Restart: %+v, want a new pid on a new address (not %s) and a clean exit of the old one", after[1], reps[1].Addr)
	}
	if !supGone(reps[1].PID) {
		t.Errorf("old stateless-2 (pid %d) still exists", reps[1].PID)
	}
	if status, body := supGet(after[1].Addr, "/api/health"); status != http.StatusOK || body["replica"] != "stateless-2" {
		t.Errorf("restarted replica answers %d %v", status, body)
	}
	if !h.readyAtStop[0] {
		t.Error("inside BeforeStop the real replica no longer answered ready")
	}
	if !strings.Contains(logs.String(), `"replica":"stateless-2"`) {
		t.Error("the replicas' JSON log did not reach Log")
	}

	if err := sup.Stop(t.Context()); err != nil {
		t.Errorf("Stop = %v", err)
	}
	for _, r := range append(reps, after...) {
		if !supGone(r.PID) {
			t.Errorf("%s (pid %d) still exists after Stop", r.ID, r.PID)
		}
	}
	d := sup.ReadyDurations()
	if len(d) != 3 {
		t.Errorf("ReadyDurations() = %v, want 3 (two starts, one restart)", d)
	}
	t.Logf("real stateless replicas: spawn to first 200 from /api/ready: %v", d)

	t.Run("exits when stdin closes", func(t *testing.T) {
		cmd := exec.Command(bin, append([]string{"stateless", "--addr", "127.0.0.1:0", "--replica-id", "orphan", "--exit-with-stdin"}, args...)...)
		var out labtest.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(10 * time.Second)
		for !strings.Contains(out.String(), `"msg":"listening"`) {
			select {
			case err := <-exited:
				t.Fatalf("the server exited before listening: %v\n%s", err, out.String())
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("the server did not listen within 10s:\n%s", out.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		stdin.Close() // what the kernel does when the runner dies
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit: %v, want a graceful exit 0\n%s", err, out.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("the server still runs 10s after its standard input closed:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "standard input closed") {
			t.Errorf("the server did not say why it stopped:\n%s", out.String())
		}
	})
}

// TestConfine checks the hook that puts each process under a limit: it is
// called for every process with the replica's id and then with its pid,
// a failure of either fails the start, and a process whose confinement
// failed after it started is not left running.
func TestConfine(t *testing.T) {
	var mu sync.Mutex
	var calls []string // "id" before the start, "id pid" after it
	failBefore, failAfter := "", ""
	sup, _, _ := supStart(t, func(c *supervisor.Config) {
		c.Confine = func(id string, cmd *exec.Cmd) (func(int) error, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, id)
			if id == failBefore {
				return nil, errors.New("no group for " + id)
			}
			return func(pid int) error {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, fmt.Sprintf("%s %d", id, pid))
				if id == failAfter {
					return errors.New("could not move " + id)
				}
				return nil
			}, nil
		}
	})
	reps := supScale(t, sup, 1)
	mu.Lock()
	if want := []string{"stateless-1", fmt.Sprintf("stateless-1 %d", reps[0].PID)}; !slices.Equal(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
	failBefore = "stateless-2"
	mu.Unlock()
	if err := sup.Scale(t.Context(), 2); err == nil || !strings.Contains(err.Error(), "no group for stateless-2") {
		t.Errorf("Scale(2) with a failing Confine = %v, want its error", err)
	}
	mu.Lock()
	failBefore, failAfter, calls = "", "stateless-2", nil
	mu.Unlock()
	before := supChildren(t)
	err := sup.Scale(t.Context(), 2)
	if err == nil || !strings.Contains(err.Error(), "could not move stateless-2") {
		t.Errorf("Scale(2) with a failing started = %v, want its error", err)
	}
	if got := supIDs(sup.Replicas()); !slices.Equal(got, []string{"stateless-1"}) {
		t.Errorf("replicas %v, want only stateless-1", got)
	}
	mu.Lock()
	var pid int
	if len(calls) == 2 {
		_, _ = fmt.Sscanf(calls[1], "stateless-2 %d", &pid)
	}
	mu.Unlock()
	if pid == 0 {
		t.Fatalf("calls %q: started was not called with a pid", calls)
	}
	supWaitGone(t, pid, 5*time.Second)
	if after := supChildren(t); len(after) > len(before) {
		t.Errorf("children %v after a failed confinement, %v before", after, before)
	}
}
