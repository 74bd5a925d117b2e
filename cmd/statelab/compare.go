package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/compare/hosts"
	"github.com/statelab/statelab/compare/link"
	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/matrix"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/store"
	"github.com/statelab/statelab/web"
)

// runCompare runs the comparison: replicas of both servers behind balancers,
// simulated users, a scenario timeline, a report.
func runCompare(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("statelab compare", getenv, stderr)
	var f compareFlags
	f.add(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := f.st.check(getenv); err != nil {
		return err
	}
	if f.load.readCache.Mode() == library.ReadCacheNotify && store.Chosen(f.st.kind, f.st.url) != store.Postgres {
		return errors.New("-read-cache notify needs -store postgres: it is PostgreSQL's (LISTEN/NOTIFY), and SQLite's exact cache already costs no round trip")
	}
	sc, pair, load, err := f.scenario(fs.set())
	if err != nil {
		return err
	}
	if f.think <= 0 {
		return errors.New("-think must be positive")
	}
	bin, err := executable()
	if err != nil {
		return err
	}
	if f.reportDir == "" {
		f.reportDir = filepath.Join("reports", time.Now().Format("20060102-150405"))
	}
	dir, cleanup, err := workDir(f.dir, "compare")
	if err != nil {
		return err
	}
	defer cleanup()
	logger := newLogger(stderr, f.logFormat, f.logLevel).With("component", "compare")

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another lab running? pick another address with -addr)", f.addr, err)
	}
	r, err := compare.New(ctx, compare.Config{
		Binary: bin, Scenario: sc, Sides: pair, Users: load.users, Seed: f.seed, Think: f.think,
		Addr: ln.Addr().String(), BalancerAddrs: [2]string{f.leftAddr, f.rightAddr},
		ReportDir: f.reportDir, WorkDir: dir, Hold: f.hold, Manual: f.manual, Class: f.class, Stdout: stdout, Interactive: isTerminal(stdout), Logger: logger,
		FileSD:    f.fileSD,
		Dashboard: dashboard(f.matrixFile),
		Rate:      load.rate, RateUsers: load.rateUsers, Deadline: load.deadline, ReplicaCPU: load.replicaCPU, MaxOutstanding: load.maxOutstanding,
		Calibrate:   load.calibrate,
		NoReadCache: load.readCache.Mode() == library.ReadCacheOff,
		ReadCache:   load.readCache,
		Store:       f.st.kind, StoreURL: f.st.url,
		Latency: f.lk.latency, Jitter: f.lk.jitter,
		Hosts: f.hf.mode, HostsSubnet: f.hf.subnet,
	})
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "statelab compare: %s vs %s, scenario %q, %s, %d users and %d replica(s) per side\ndashboard and feed: http://%s/\n", pair[0].Name, pair[1].Name, sc.Name, sc.Duration.Std(), load.users, sc.Replicas, ln.Addr())
	if f.manual && len(sc.Events) > 0 {
		printManual(stdout, r.Class(), len(sc.Events), ln.Addr())
	}
	if c := r.Class(); c != nil {
		printClass(stdout, c, ln.Addr())
	}
	_, err = r.Run(ctx, ln)
	return err
}

// compareFlags are statelab compare's flags.
type compareFlags struct {
	scenarioName, addr, leftAddr, rightAddr, reportDir, dir, logFormat string
	sides, fileSD, matrixFile                                          string
	replicas                                                           int
	seed                                                               int64
	duration, think                                                    time.Duration
	hold, manual, class                                                bool
	logLevel                                                           slog.Level
	load                                                               compareLoad
	st                                                                 storeFlags
	lk                                                                 linkFlags
	hf                                                                 hostsFlags
}

func (f *compareFlags) add(fs *flagSet) {
	f.logLevel = slog.LevelWarn
	fs.String(&f.sides, "sides", "", "the two `strategies` to put side by side, left column first: any two of "+strings.Join(strategy.Names(), ", ")+", each optionally with the suffix "+strategy.OwnSecretsSuffix+" (statelab strategies explains them); default: the scenario's own sides, else "+defaultSides)
	fs.String(&f.scenarioName, "scenario", "default", "scenario `name or file`: a YAML/JSON file (see compare/scenario/builtin/default.yaml) or a built-in one:"+scenarioList())
	fs.Bool(&f.manual, "manual", false, "hold each scenario event until it is fired (the dashboard's Next event button, or POST "+compare.NextRoute+"), then run as long after the last one as the scenario does")
	fs.Bool(&f.class, "class", false, "let a class join with their own browsers: prints a join URL, a class code and a QR code for the projector, and the teacher's URL; each student gets an account of their own and both sides through /s/{side}/ on this address, and only the teacher's URL fires events, pauses or scales (--users 0: no simulated users). Students on other machines need --addr on an address they reach (docs/SECURITY.md, docs/CLASS.md)")
	fs.Duration(&f.duration, "duration", 0, "run this long instead of the scenario's duration (events after it are dropped)")
	fs.Int(&f.load.users, "users", 20, "simulated users per side (when not given: the scenario's users, if it names a number, else this default)")
	fs.Int(&f.replicas, "replicas", 0, "replicas per side at the start, instead of the scenario's")
	fs.Int64(&f.seed, "seed", 1, "seed of the users' decisions: the same seed gives the same journeys")
	fs.Duration(&f.think, "think", 150*time.Millisecond, "mean think time between a user's steps")
	fs.String(&f.addr, "addr", "127.0.0.1:8080", "the runner's `host:port`: dashboard, "+compare.FeedRoute+", /metrics")
	fs.String(&f.leftAddr, "left-addr", "127.0.0.1:8001", "`host:port` of the first side's load balancer")
	fs.String(&f.rightAddr, "right-addr", "127.0.0.1:8002", "`host:port` of the second side's load balancer")
	fs.String(&f.reportDir, "report", "", "`dir`ectory for report.json and report.md (default ./reports/<start time>)")
	fs.String(&f.dir, "work-dir", "", "`dir`ectory for the shared database and the replicas' log (default: a temporary one, removed afterwards)")
	f.st.add(fs)
	networkDefaults, _ := scenario.Load("network")
	f.lk.add(fs, "; when unset, the scenario's (network: "+networkDefaults.Latency.Std().String()+")")
	f.hf.add(fs)
	fs.Bool(&f.hold, "hold", false, "after the timeline, keep replicas, balancers and the dashboard up until Ctrl-C")
	fs.String(&f.matrixFile, "matrix", matrix.LatestFile, "the `file` the dashboard serves at /matrix: the page statelab matrix last made (its -latest)")
	fs.String(&f.fileSD, "file-sd", "./data/file_sd/statelab.json", "Prometheus file_sd `file` the runner keeps listing itself and every live replica, for scripts/prometheus.yml (make prometheus); -file-sd= writes none")
	fs.Func("log-level", "runner log `level`: debug, info, warn or error (default warn)", f.logLevel.UnmarshalText)
	fs.String(&f.logFormat, "log-format", "text", "log `format`: text or json")
	// The help quotes the built-in capacity scenario's load.
	capacityDefaults, _ := scenario.Load("capacity")
	fs.Float64(&f.load.replicaCPU, "replica-cpu", 0, "run every replica under a CPU limit of this many `cores` (0.25: a quarter of one), enforced by the kernel like a container's resources.limits.cpu: a cgroup per replica with a CFS quota (cgroup v2 cpu.max or v1 cpu.cfs_quota_us; root, or a systemd user scope). Where the machine cannot enforce it the runner says so and runs unlimited. 0 with no limit; when unset, the scenario's (capacity: "+fmt.Sprint(capacityDefaults.ReplicaCPU)+")")
	fs.Float64(&f.load.rate, "rate", 0, "open-loop load: `requests` per second per side that arrive whether or not the side keeps up, from --rate-users signed-in users, each with --deadline; when unset, the scenario's (capacity: "+fmt.Sprint(capacityDefaults.Rate)+"); 0 sends none")
	fs.Float64(&f.load.calibrate, "calibrate", 0, "choose the --rate by measuring, before the clock starts, what one replica answers per second under its --replica-cpu limit: offer this many `times` what the starting replicas carry (1.5: half as much again), bounded by what the runner can send; where the limit is not enforced the rate stays --rate; 0 measures nothing; when unset, the scenario's (capacity: "+fmt.Sprint(capacityDefaults.Calibrate)+"), unless --rate is set")
	fs.Int(&f.load.rateUsers, "rate-users", 0, "signed-in `users` per side the --rate requests come from (default: the scenario's, else "+strconv.Itoa(load.DefaultRateUsers)+")")
	fs.Int(&f.load.maxOutstanding, "max-outstanding", 0, "at most this many --rate `requests` outstanding per side; an arrival beyond them is dropped and counts as a timeout (default: the scenario's, else twice what the rate has in flight when every request waits its whole deadline)")
	fs.Var(&f.load.readCache, "read-cache", "the replicas' read cache `mode`, given with = (-read-cache=notify; a bare -read-cache is true; statelab stateful -h): true (exact: never stale; on PostgreSQL a hit costs a round trip, so only pages are cached), false (every read asks the database), or notify (--store postgres only: books, API keys and pages from memory with no round trip, stale after another replica's write until PostgreSQL's notification arrives); when unset, the scenario's (capacity: off, so each request costs what an uncached one does)")
	fs.Duration(&f.load.deadline, "deadline", 0, "how long a --rate request waits for its answer; past it, it counts as a timeout, a failure the user sees (default: the scenario's, else "+load.DefaultDeadline.String()+")")
}

// scenario loads the scenario and applies the flags to it: its latency,
// sides, replicas and duration unless the flags say otherwise, and its
// load where a flag was not set (set names those given).
func (f *compareFlags) scenario(set map[string]bool) (scenario.Scenario, [2]strategy.Strategy, compareLoad, error) {
	sc, err := scenario.Load(f.scenarioName)
	if err != nil {
		return sc, [2]strategy.Strategy{}, compareLoad{}, err
	}
	if !set["latency"] {
		f.lk.latency = sc.Latency.Std()
	}
	if err := f.lk.check(); err != nil {
		return sc, [2]strategy.Strategy{}, compareLoad{}, err
	}
	if err := f.hf.check(); err != nil {
		return sc, [2]strategy.Strategy{}, compareLoad{}, err
	}
	pair, err := strategy.ParsePair(cmp.Or(f.sides, sc.Sides, defaultSides))
	if err != nil {
		return sc, pair, compareLoad{}, err
	}
	if f.replicas > 0 {
		sc.Replicas = f.replicas
	}
	if f.duration > 0 {
		sc.Shorten(f.duration)
	}
	if err := sc.Validate(); err != nil {
		return sc, pair, compareLoad{}, fmt.Errorf("scenario %s: %w", f.scenarioName, err)
	}
	return sc, pair, resolveLoad(sc, set, f.load), nil
}

// printManual tells how to fire the held events: the dashboard's button,
// or a POST to the runner's control route, with the teacher's token when
// a class is on (only the teacher fires events then).
func printManual(w io.Writer, c *class.Class, events int, addr net.Addr) {
	auth := ""
	if c != nil {
		auth = "-H 'Authorization: Bearer " + c.TeacherToken() + "' "
	}
	fmt.Fprintf(w, "manual: each of the %d event(s) waits until you fire it: the dashboard's Next event button, or\n  curl -X POST %shttp://%s%s\n", events, auth, addr, compare.NextRoute)
}

// printClass tells the teacher how the class joins: the join URLs and the
// code (for the projector), a QR code of the first URL, and the teacher's
// own URL, which fires the events.
func printClass(w io.Writer, c *class.Class, addr net.Addr) {
	fmt.Fprintf(w, "class: students open this on their phone or laptop and type the code (up to %d students)\n", c.MaxStudents())
	for _, u := range c.JoinURLs() {
		fmt.Fprintf(w, "  %s\n", u)
	}
	fmt.Fprintf(w, "  class code: %s\n", c.Code())
	if qr, err := c.TerminalQR(0); err == nil {
		fmt.Fprintf(w, "  or scan (%s):\n%s", c.QRURL(0), qr)
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		fmt.Fprintf(w, "  (only this machine reaches %s: for students' own devices, bind an address they reach, e.g. --addr 192.0.2.10:8080; read docs/SECURITY.md first)\n", addr)
	}
	fmt.Fprintf(w, "teacher: open this yourself, on the projector; it alone fires events, pauses and scales (keep it out of the students' sight):\n")
	for _, u := range c.TeacherURLs() {
		fmt.Fprintf(w, "  %s\n", u)
	}
}

// linkFlags are --latency and --jitter: the links between the lab's
// processes (package link), for compare and matrix alike.
type linkFlags struct {
	latency, jitter time.Duration
}

// add defines the flags; more is said after --latency's help.
func (l *linkFlags) add(fs *flagSet, more string) {
	fs.Duration(&l.latency, "latency", 0, "one-way `delay` of every link the lab controls (balancer to replica, replica to redis-server and to PostgreSQL), each a TCP proxy on 127.0.0.1 (Toxiproxy, embedded) that holds the bytes this long in each direction, so a round trip costs twice it; e.g. 500us (one data centre) or 2ms; 0 puts no link in between"+more)
	fs.Duration(&l.jitter, "jitter", 0, "each link's delay varies by up to this `much` either way (at most --latency)")
}

func (l *linkFlags) check() error {
	if err := link.Validate(l.latency, l.jitter); err != nil {
		return fmt.Errorf("-latency/-jitter: %w", err)
	}
	return nil
}

// hostsFlags are --hosts and --hosts-subnet: where the lab's processes run
// (package hosts), for compare and matrix alike.
type hostsFlags struct {
	mode, subnetText string
	subnet           netip.Prefix
}

func (h *hostsFlags) add(fs *flagSet) {
	fs.String(&h.mode, "hosts", hosts.Local, "where the lab's processes run, a `mode`: local (all on this machine's network stack, over loopback) or netns (every replica, balancer and shared service on a network namespace of its own with its own address, joined by one bridge; the users reach the balancers over it, and --latency's links carry the latency; the balancers keep the ports of -left-addr and -right-addr, on their own addresses; Linux, as root; nothing is routed beyond the bridge, and everything is removed at exit)")
	fs.String(&h.subnetText, "hosts-subnet", "", "with --hosts netns, the IPv4 `CIDR` the run's addresses come from: the runner takes the first on the bridge, each host the next (default: a /24 inside "+hosts.DefaultRange.String()+", the block reserved for network benchmarks, that nothing on this machine uses)")
}

func (h *hostsFlags) check() error {
	var err error
	if h.mode, err = hosts.ParseMode(h.mode); err != nil {
		return fmt.Errorf("-hosts: %w", err)
	}
	if h.subnetText == "" {
		return nil
	}
	if h.mode != hosts.Netns {
		return errors.New("-hosts-subnet is for -hosts netns; add -hosts netns, or drop -hosts-subnet")
	}
	if h.subnet, err = hosts.ParseSubnet(h.subnetText); err != nil {
		return fmt.Errorf("-hosts-subnet: %w", err)
	}
	return nil
}

// defaultSides is the pair statelab compare puts side by side when neither
// the command line nor the scenario names one: what a real team would run
// against a stateless API.
const defaultSides = "memory-sticky,apikey"

// scenarioList lists the built-in scenarios with their one-line
// descriptions, for -h.
func scenarioList() string {
	var b strings.Builder
	for _, sc := range scenario.Builtins() {
		fmt.Fprintf(&b, "\n  %-12s %s", sc.Name, sc.Description)
	}
	return b.String() + "\n"
}

// compareLoad is the load statelab compare puts on the sides.
type compareLoad struct {
	users                       int
	replicaCPU, rate, calibrate float64
	rateUsers, maxOutstanding   int
	deadline                    time.Duration
	readCache                   library.ReadCache
}

// resolveLoad takes each part of the load from its flag when the command
// line or the environment set it (set names those flags), else from the
// scenario, else from the flag's default.
func resolveLoad(sc scenario.Scenario, set map[string]bool, flags compareLoad) compareLoad {
	l := flags
	if !set["users"] && sc.Users != nil {
		l.users = *sc.Users
	}
	if !set["replica-cpu"] {
		l.replicaCPU = sc.ReplicaCPU
	}
	if !set["rate"] {
		l.rate = sc.Rate
	}
	if !set["calibrate"] {
		l.calibrate = sc.Calibrate
		if set["rate"] {
			l.calibrate = 0 // a rate given on the command line is the rate wanted
		}
	}
	if !set["rate-users"] {
		l.rateUsers = cmp.Or(sc.RateUsers, load.DefaultRateUsers)
	}
	if !set["deadline"] {
		l.deadline = sc.Deadline.Std() // zero: compare.New applies load.DefaultDeadline
	}
	if !set["max-outstanding"] {
		l.maxOutstanding = sc.MaxOutstanding
	}
	if !set["read-cache"] && sc.ReadCache != nil {
		l.readCache = map[bool]library.ReadCache{true: library.ReadCacheExact, false: library.ReadCacheOff}[*sc.ReadCache]
	}
	return l
}

// dashboard is what a runner serves at /: the live page, and at /matrix the
// page the last matrix wrote.
func dashboard(matrixFile string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.Handle("/matrix", web.MatrixPage(matrixFile))
	return mux
}
