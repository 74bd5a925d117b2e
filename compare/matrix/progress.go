package matrix

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/statelab/statelab/compare/strategy"
)

// progress prints which cells are being measured and how long the matrix
// has left: on a terminal one line redrawn every second, elsewhere a line
// whenever the cell changes.
type progress struct {
	out     io.Writer
	tty     bool
	runs    int
	scen    time.Duration // one run's scenario
	windows []window

	mu       sync.Mutex
	run      int // index of the run under way
	pair     [2]strategy.Strategy
	runStart time.Time
	what     string        // what is being measured now
	overhead time.Duration // a run's measured time beyond its scenario (start, report, probe, stop)
	measured int           // runs whose overhead was measured
	addr     string        // the live dashboard of the run under way
	done     chan struct{}
	stopped  bool
}

// initialOverhead is the guess of a run's time beyond its scenario before
// one has been measured: starting replicas, the report, the probe, stopping.
const initialOverhead = 4 * time.Second

func newProgress(cfg Config, runs int, scen time.Duration, windows []window) *progress {
	out := cfg.Stdout
	if out == nil {
		out = io.Discard
	}
	p := &progress{out: out, tty: cfg.Interactive, runs: runs, scen: scen, windows: windows, overhead: initialOverhead, done: make(chan struct{})}
	if p.tty {
		go p.tick()
	}
	return p
}

// estimate is how long the whole matrix takes, from its start.
func (p *progress) estimate() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Duration(p.runs) * (p.scen + p.overhead)
}

// left is how long the matrix has to go. The caller holds p.mu.
func (p *progress) left() time.Duration {
	per := p.scen + p.overhead
	rest := time.Duration(p.runs-p.run-1) * per
	if !p.runStart.IsZero() {
		rest += max(0, per-time.Since(p.runStart))
	}
	return rest
}

func (p *progress) startRun(i int, pair [2]strategy.Strategy) {
	p.set(func() {
		p.run, p.pair, p.runStart = i, pair, time.Now()
		p.what = "starting replicas"
	}, true)
}

func (p *progress) dashboard(addr string) {
	p.mu.Lock()
	changed := addr != p.addr
	p.addr = addr
	p.mu.Unlock()
	if changed {
		p.print(fmt.Sprintf("live dashboard of the pair being measured: http://%s/ (the last matrix: http://%s/matrix)", addr, addr))
	}
}

func (p *progress) window(k int) {
	p.set(func() {
		if k < len(p.windows) {
			p.what = fmt.Sprintf("%s (window %d of %d)", p.windows[k].fault.Name, k+1, len(p.windows))
		}
	}, true)
}

func (p *progress) probing() {
	p.set(func() { p.what = "revocation probe" }, true)
}

func (p *progress) endRun(took time.Duration) {
	p.mu.Lock()
	// The mean of the runs so far: the next ones start, report and stop
	// alike.
	p.overhead = (p.overhead*time.Duration(p.measured) + max(0, took-p.scen)) / time.Duration(p.measured+1)
	p.measured++
	p.runStart = time.Time{}
	p.mu.Unlock()
}

// set changes what the line says; off a terminal it prints the new line.
// Every write happens under p.mu, so lines never interleave.
func (p *progress) set(fn func(), announce bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn()
	if announce && !p.tty && !p.stopped {
		fmt.Fprintln(p.out, p.lineLocked())
	}
}

func (p *progress) lineLocked() string {
	return fmt.Sprintf("[run %d/%d] %s + %s: %s — about %s left",
		p.run+1, p.runs, p.pair[0].Name, p.pair[1].Name, p.what, p.left().Round(time.Second))
}

// print writes a line of its own, under the progress line on a terminal.
func (p *progress) print(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.out, "\r\033[K%s\n", line)
		return
	}
	fmt.Fprintln(p.out, line)
}

func (p *progress) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if !p.stopped {
			fmt.Fprintf(p.out, "\r\033[K%s", p.lineLocked())
		}
		p.mu.Unlock()
	}
}

func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	close(p.done)
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K")
	}
}
