package walkthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statelab/statelab/compare/balancer"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/compare/supervisor"
)

// Steps is how many steps the walkthrough has.
const Steps = 7

// DefaultRequests is how many requests step 5 times per credential.
const DefaultRequests = 200

// Config is what Run needs.
type Config struct {
	// Binary is the statelab binary the replicas are started from (the
	// command passes os.Executable()).
	Binary string
	// Out receives the transcript.
	Out io.Writer
	// In is where the student's answers come from, a line at a time. nil,
	// or the end of it, means nobody is answering: the walkthrough carries
	// on without pauses.
	In io.Reader
	// Auto runs without pauses and without asking for predictions (the
	// questions are still shown, then the outcome): for CI and projecting.
	Auto bool
	// Color paints headings, requests and verdicts with ANSI colors.
	Color bool
	// Step is the first step shown (1 to Steps). The steps before it still
	// run, silently, because later steps use what they built.
	Step int
	// Requests is how many requests step 5 times per credential (default
	// DefaultRequests).
	Requests int
	// Log receives the replicas' output and the supervisors' log (nil
	// discards both).
	Log io.Writer
}

// Run runs the walkthrough: it starts the servers it needs, goes through
// the steps, and stops every process it started before it returns, also
// when ctx is cancelled or the student quits (which is not an error).
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Step == 0 {
		cfg.Step = 1
	}
	if cfg.Step < 1 || cfg.Step > Steps {
		return fmt.Errorf("there is no step %d: the steps are 1 to %d", cfg.Step, Steps)
	}
	if cfg.Requests <= 0 {
		cfg.Requests = DefaultRequests
	}
	if cfg.Binary == "" {
		return errors.New("walkthrough: no statelab binary to start the servers from")
	}
	stop := make(chan struct{})
	defer close(stop)
	w := &walk{cfg: cfg, t: newTerm(cfg.Out, cfg.In, cfg.Color, cfg.Auto, stop), seen: seen{
		restartLost: map[string]bool{}, addedShare: map[string]float64{}, cost: map[string]credCost{}, revoked: map[string]string{},
	}}
	w.client = newClient(&w.written)
	defer w.client.CloseIdleConnections()

	w.t.line(w.t.paint(styleTitle, "statelab walkthrough: the REST stateless constraint, one HTTP exchange at a time"))
	w.t.blank()
	if cfg.Auto {
		w.t.note("Running with --auto: no pauses, and the predictions are asked but not answered.")
	}
	defer func() {
		if ctx.Err() != nil {
			w.t.quiet = false
			w.t.blank()
			w.t.blank()
			w.t.line("  Interrupted.")
		}
		if cerr := w.close(); err == nil {
			err = cerr
		}
	}()
	if err := w.start(ctx); err != nil {
		return err
	}
	if cfg.Step > 1 {
		w.t.note(fmt.Sprintf("Catching up on steps 1 to %d quietly: step %d uses what they built.", cfg.Step-1, cfg.Step))
	}
	for i, s := range steps {
		n := i + 1
		w.t.quiet = n < cfg.Step
		w.t.heading(n, Steps, s.title)
		err := s.run(ctx, w)
		w.t.quiet = false
		if errors.Is(err, errQuit) {
			w.t.blank()
			w.t.line(fmt.Sprintf("  Stopped at step %d. Start here again with: statelab walkthrough --step %d", n, n))
			if sc := w.t.score(); sc != "" {
				w.t.para(sc)
			}
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("step %d (%s): %w", n, s.title, err)
		}
		if n < Steps && n >= cfg.Step {
			if err := w.t.pause(ctx, fmt.Sprintf("step %d", n+1)); errors.Is(err, errQuit) {
				w.t.line(fmt.Sprintf("  Stopped after step %d. Go on from here with: statelab walkthrough --step %d", n, n+1))
				if sc := w.t.score(); sc != "" {
					w.t.para(sc)
				}
				return nil
			} else if err != nil {
				return err
			}
		}
	}
	if sc := w.t.score(); sc != "" {
		w.t.para(sc)
	}
	return nil
}

// step is one step of the lesson.
type step struct {
	title string
	run   func(ctx context.Context, w *walk) error
}

// walk is one run of the walkthrough: the processes it started and what
// the client (this program) holds, which is all the state a stateless
// server's client has.
type walk struct {
	cfg    Config
	t      *term
	client *http.Client
	// written counts the bytes the client has sent, for step 5.
	written atomic.Int64

	workDir string // holds the shared database; removed at the end
	db      string
	sides   map[string]*supervisor.Supervisor
	lbs     map[string]*sideBalancer

	// What the client holds, as the steps go.
	aliceCookie string // the stateful side's session id, from the last login
	bobKey      string // an API key
	bobKeyID    string
	bobJWT      string
	bobCart     []int64 // the stateless client's own cart: it never leaves this program until it borrows

	// seen is what the steps measured that bears on the lesson's claims,
	// for the table the walkthrough ends with; okBy counts the 2xx of the
	// last ten requests step 4 sent, by the replica that answered.
	seen seen
	okBy map[string]int
}

// The two sides, in the order they are shown.
const (
	stateful  = "stateful"
	stateless = "stateless"
)

// strategyOf is the strategy a side's replicas start as, for their
// arguments and environment: the stateful server with its sessions in
// memory (its default), the stateless one with a JWT secret (it takes API
// keys as well).
func strategyOf(side string) (strategy.Strategy, error) {
	if side == stateful {
		return strategy.Parse("memory")
	}
	return strategy.Parse("jwt")
}

// sideBalancer is one side's round-robin balancer, served on loopback.
type sideBalancer struct {
	lb  *balancer.Balancer
	srv *http.Server
	url string
}

// start starts one replica of each side on a fresh shared database, each
// side with its own random secret, so every later replica of a side
// accepts what the others signed.
func (w *walk) start(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "statelab-walkthrough-")
	if err != nil {
		return err
	}
	w.workDir = dir
	w.db = filepath.Join(dir, "library.db")

	var logOut io.Writer = io.Discard
	if w.cfg.Log != nil {
		// The supervisors' loggers and the replicas' output write at once.
		logOut = &lockedWriter{w: w.cfg.Log}
	}
	logger := slog.New(slog.NewTextHandler(logOut, nil)).With("component", "walkthrough")
	w.sides = map[string]*supervisor.Supervisor{}
	w.lbs = map[string]*sideBalancer{}
	// The read cache off: step 5 times finding the caller, and a cached
	// API key would cost no lookup at all, which is not what a key costs
	// on a busy server whose data changes.
	rc := strategy.ReplicaConfig{DB: w.db, NoReadCache: true, ShutdownTimeout: 5 * time.Second}
	for _, side := range []string{stateful, stateless} {
		st, err := strategyOf(side)
		if err != nil {
			return err
		}
		w.sides[side] = supervisor.New(supervisor.Config{
			Side:   side,
			Binary: w.cfg.Binary,
			// -v shows the servers' log to a person: text, not the JSON
			// the runner reads (the last --log-format wins).
			Args: append(st.ReplicaArgs(rc), "--log-format", "text"),
			// The side's secret, made once here so that every replica of
			// the side shares it, goes in the environment, not on the
			// command line, where ps would show it.
			Env:          st.ReplicaEnv(rc),
			Log:          logOut,
			Logger:       logger,
			ReadyTimeout: 30 * time.Second,
			StopTimeout:  5 * time.Second,
		})
	}

	w.t.text("Starting one stateful and one stateless server: real processes, started from this " +
		"binary, sharing one SQLite database.")
	// One side first: the first process creates and seeds the database.
	for _, side := range []string{stateful, stateless} {
		if err := w.sides[side].Scale(ctx, 1); err != nil {
			return fmt.Errorf("start the %s server: %w", side, err)
		}
	}
	w.t.blank()
	for _, side := range []string{stateful, stateless} {
		r := w.replica(side, 1)
		w.t.line(fmt.Sprintf("    %-12s http://%s (pid %d)", r.ID, r.Addr, r.PID))
	}
	w.t.line(fmt.Sprintf("    %-12s %s", "database", w.db))
	w.t.blank()
	return nil
}

// close stops every process and server the walkthrough started and removes
// its database.
func (w *walk) close() error {
	if w.sides == nil && w.workDir == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	for _, side := range []string{stateful, stateless} {
		if lb := w.lbs[side]; lb != nil {
			errs = append(errs, lb.srv.Shutdown(ctx))
		}
	}
	n := 0
	for _, side := range []string{stateful, stateless} {
		if s := w.sides[side]; s != nil {
			n += len(s.Replicas())
			errs = append(errs, s.Stop(ctx))
		}
	}
	if w.workDir != "" {
		errs = append(errs, os.RemoveAll(w.workDir))
	}
	err := errors.Join(errs...)
	if err == nil && n > 0 {
		w.t.text(fmt.Sprintf("Stopped the %d server processes the walkthrough started, and removed its database.", n))
	}
	return err
}

// replica returns the n-th replica of a side in service now.
func (w *walk) replica(side string, n int) supervisor.Replica {
	id := fmt.Sprintf("%s-%d", side, n)
	for _, r := range w.sides[side].Replicas() {
		if r.ID == id {
			return r
		}
	}
	return supervisor.Replica{ID: id}
}

// url is the base URL of the n-th replica of a side.
func (w *walk) url(side string, n int) string { return "http://" + w.replica(side, n).Addr }

// show sends a request and prints the exchange.
func (w *walk) show(ctx context.Context, r request) (response, error) {
	resp, err := send(ctx, w.client, r)
	if err != nil {
		return resp, err
	}
	w.t.printExchange(r, resp)
	return resp, nil
}

// must is show for a request whose status the next steps depend on: any
// other status stops the walkthrough, since what follows would teach
// nonsense.
func (w *walk) must(ctx context.Context, r request, want int) (response, error) {
	resp, err := w.show(ctx, r)
	if err == nil && resp.Status != want {
		err = fmt.Errorf("%s %s answered %d %s, not %d: %s", r.method, r.path, resp.Status, resp.Outcome(), want, trim(string(resp.Body), 300))
	}
	return resp, err
}

// startBalancer puts a round-robin balancer with no stickiness in front of
// every replica of a side, served on a loopback port.
func (w *walk) startBalancer(side string) (*sideBalancer, error) {
	lb := balancer.New(balancer.Config{Side: side})
	var backends []balancer.Backend
	for _, r := range w.sides[side].Replicas() {
		backends = append(backends, balancer.Backend{ID: r.ID, Addr: r.Addr})
	}
	lb.SetBackends(backends)
	for _, b := range backends {
		// The supervisor saw every one answer /api/ready already.
		lb.MarkReady(b.ID)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &sideBalancer{
		lb: lb,
		// Timeouts, like every server of the lab's: a trickled body or an
		// idle keep-alive must not hold a connection for ever.
		srv: &http.Server{Handler: lb, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute},
		url: "http://" + ln.Addr().String(),
	}
	go func() { _ = b.srv.Serve(ln) }() // ErrServerClosed when close shuts it down
	w.lbs[side] = b
	return b, nil
}

// lockedWriter lets several goroutines write to one writer, a whole
// write at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ms formats a duration in milliseconds with three decimals, the one way
// the walkthrough prints a time it measured.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// plural returns "1 book" or "2 books".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// joinIDs writes ids as a JSON array would.
func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
