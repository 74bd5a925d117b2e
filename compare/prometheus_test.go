package compare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/filesd"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/labtest"
)

// The lab and a real Prometheus: the runner writes file_sd targets,
// Prometheus scrapes them with scripts/prometheus.yml, every /metrics passes
// promtool, and the Grafana dashboard asks only for metrics that exist.

// psdNeed returns the path of one of the programs of Debian's prometheus
// package. Without it the test skips on a developer's machine and fails
// under CI, which installs the package (.ci/run) so that nothing is
// silently left untested there.
func psdNeed(t *testing.T, program string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "" {
		t.Skipf("%s is not installed; install Debian's prometheus package (apt-get install prometheus) to run this test", program)
	}
	t.Fatalf("%s is not installed and CI is set, so this test must not skip: install Debian's prometheus package (apt-get install --no-install-recommends prometheus), which brings prometheus and promtool", program)
	return ""
}

// psdEventually polls cond every 50ms until it holds, or fails the test
// after within, saying what it waited for and what it saw last.
func psdEventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still waiting for %s; last seen:\n%s", within, what, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// psdGet fetches a URL and returns its body; any status but 200 is an error.
func psdGet(u string) ([]byte, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body, err
}

// psdLab is a comparison run: the runner in this test process, its replicas
// processes of a freshly built statelab binary.
type psdLab struct {
	runnerAddr string
	fileSD     string
	out        *labtest.Buffer // the runner's progress and log
}

// psdStartLab builds the binary and starts a short run with Hold, so the lab
// stays up until the test ends: one replica per side, scaled out to two
// after a second (a change the file_sd must follow), few users.
func psdStartLab(t *testing.T) *psdLab {
	t.Helper()
	dir := t.TempDir()
	bin := labtest.Binary(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lab := &psdLab{runnerAddr: ln.Addr().String(), fileSD: filepath.Join(dir, "file_sd", "statelab.json"), out: &labtest.Buffer{}}
	sc := scenario.Scenario{
		Name: "prometheus", Duration: scenario.Duration(3 * time.Second), Replicas: 1,
		Events: []scenario.Event{{At: scenario.Duration(time.Second), Action: scenario.ActionScale, Replicas: 2, Note: "a replica is added"}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := compare.New(ctx, compare.Config{
		Binary: bin, Scenario: sc, Users: 4, Seed: 1, Think: 50 * time.Millisecond,
		Sides: psdSides(t), Addr: lab.runnerAddr, BalancerAddrs: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
		ReportDir: filepath.Join(dir, "report"), WorkDir: filepath.Join(dir, "work"), Hold: true,
		Stdout: lab.out, Logger: slog.New(slog.NewTextHandler(lab.out, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FileSD: lab.fileSD,
	})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, ln)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v\n%s", err, lab.out.String())
			}
		case <-time.After(45 * time.Second):
			t.Errorf("the runner did not stop within 45s of its context's end\n%s", lab.out.String())
		}
	})
	return lab
}

// The lab's sides: the runner's names are the strategies', while the
// replicas' own server label says stateful or stateless.
const psdLeft, psdRight = "memory", "apikey"

func psdSides(t *testing.T) [2]strategy.Strategy {
	t.Helper()
	pair, err := strategy.ParsePair(psdLeft + "," + psdRight)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// psdFeed is the part of the runner's /api/feed the test reads.
type psdFeed struct {
	Now compare.Sample `json:"now"`
}

// waitReady waits until both sides run two replicas and have served users.
func (lab *psdLab) waitReady(t *testing.T) psdFeed {
	t.Helper()
	var feed psdFeed
	psdEventually(t, 30*time.Second, "two replicas per side and successful requests on both", func() (bool, string) {
		body, err := psdGet("http://" + lab.runnerAddr + "/api/feed")
		if err != nil {
			return false, err.Error() + "\n" + lab.out.String()
		}
		feed = psdFeed{}
		if err := json.Unmarshal(body, &feed); err != nil {
			return false, err.Error()
		}
		for _, side := range []string{psdLeft, psdRight} {
			s := feed.Now.Sides[side]
			if len(s.Replicas) != 2 || s.OK == 0 {
				return false, string(body)
			}
		}
		return true, ""
	})
	return feed
}

// psdMetricNames returns the names of the samples in a text exposition:
// histograms give their _bucket, _sum and _count.
func psdMetricNames(exposition []byte) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(string(exposition)) {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

func TestPrometheus(t *testing.T) {
	parent := t
	lab := psdStartLab(t)
	feed := lab.waitReady(t)

	// The file must list the runner and exactly the replicas the feed
	// shows, with the labels scripts/prometheus.yml documents.
	want := []filesd.TargetGroup{{Targets: []string{lab.runnerAddr}, Labels: map[string]string{"role": "runner"}}}
	for _, side := range []struct{ strategy, server string }{{psdLeft, strategy.Stateful}, {psdRight, strategy.Stateless}} {
		for _, rep := range feed.Now.Sides[side.strategy].Replicas {
			want = append(want, filesd.TargetGroup{
				Targets: []string{rep.Addr},
				Labels:  map[string]string{"role": "replica", "server": side.server, "strategy": side.strategy, "replica": rep.ID},
			})
		}
	}
	t.Run("file_sd lists the runner and every replica", func(t *testing.T) {
		// The supervisor changes its set, then calls the hook that writes
		// the file: the feed may be a moment ahead.
		psdEventually(t, 5*time.Second, fmt.Sprintf("%s to list\n%+v", lab.fileSD, want), func() (bool, string) {
			got := psdReadFileSD(t, lab.fileSD)
			return slices.EqualFunc(got, want, psdSameGroup), fmt.Sprintf("%+v", got)
		})
		entries, err := os.ReadDir(filepath.Dir(lab.fileSD))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "statelab.json" {
			t.Errorf("the file_sd directory holds %v: a temporary file was left behind", entries)
		}
	})

	// One /metrics of each kind: the runner and a replica of each side.
	expositions := map[string][]byte{}
	for _, g := range want {
		name := g.Labels["role"]
		if name == "replica" {
			name = g.Labels["server"] + " replica"
		}
		if _, ok := expositions[name]; ok {
			continue
		}
		body, err := psdGet("http://" + g.Targets[0] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		expositions[name] = body
	}

	t.Run("promtool check metrics", func(t *testing.T) {
		promtool := psdNeed(t, "promtool")
		for _, name := range slices.Sorted(maps.Keys(expositions)) {
			t.Run(name, func(t *testing.T) {
				cmd := exec.Command(promtool, "check", "metrics")
				cmd.Stdin = bytes.NewReader(expositions[name])
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", name, err, out)
				}
			})
		}
	})

	t.Run("grafana dashboard asks for exposed metrics", func(t *testing.T) {
		exposed := map[string]bool{}
		for _, e := range expositions {
			maps.Copy(exposed, psdMetricNames(e))
		}
		for _, q := range psdDashboardQueries(t) {
			for _, name := range psdMetricRef.FindAllString(q.expr, -1) {
				if !exposed[name] {
					t.Errorf("%s: %s is exposed by neither the runner nor a replica\n%s", q.where, name, q.expr)
				}
			}
		}
	})

	var prom *psdPrometheusAPI // once it runs
	t.Run("prometheus scrapes the lab", func(t *testing.T) {
		// It runs on for the scale-in below: the parent test stops it.
		api := psdStartPrometheus(t, parent, psdNeed(t, "prometheus"), lab.fileSD)
		prom = &api
		psdEventually(t, 30*time.Second, "Prometheus to scrape the runner and all four replicas", func() (bool, string) {
			targets, err := api.targets()
			if err != nil {
				return false, err.Error()
			}
			up := map[string]bool{}
			for _, tg := range targets {
				if tg.Health == "up" {
					up[tg.Labels["role"]+"/"+tg.Labels["replica"]] = true
				}
			}
			return up["runner/"] && len(up) == 5, fmt.Sprintf("%+v", targets)
		})

		requests := api.query(t, "statelab_client_requests_total")
		servers := map[string]bool{}
		for _, s := range requests {
			servers[s.Metric["server"]] = true
			if s.Metric["role"] != "runner" {
				t.Errorf("%v: want the runner target's role=\"runner\"", s.Metric)
			}
		}
		if !servers[strategy.Stateful] || !servers[strategy.Stateless] || len(servers) != 2 {
			t.Errorf("statelab_client_requests_total has servers %v, want stateful and stateless", slices.Sorted(maps.Keys(servers)))
		}

		sessions := api.query(t, "statelab_sessions_active")
		var ids []string
		for _, s := range sessions {
			ids = append(ids, s.Metric["replica"])
			if s.Metric["server"] != strategy.Stateful || s.Metric["role"] != "replica" {
				t.Errorf("%v: want server=\"stateful\" (the replica's own label) and role=\"replica\" (the target's)", s.Metric)
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"memory-1", "memory-2"}) {
			t.Errorf("statelab_sessions_active comes from replicas %q, want memory-1 and memory-2", ids)
		}

		// Metrics the replicas expose without labels get the target's.
		goroutines := api.query(t, `go_goroutines{role="replica",server="stateless"}`)
		if len(goroutines) != 2 {
			t.Errorf(`go_goroutines{role="replica",server="stateless"}: %d series, want one per stateless replica: %v`, len(goroutines), goroutines)
		}

		// honor_labels: nothing renamed to exported_*.
		for _, q := range []string{`{exported_server!=""}`, `{exported_replica!=""}`} {
			if clash := api.query(t, q); len(clash) > 0 {
				t.Errorf("%s: labels renamed on a clash between target and exposition: %v", q, clash)
			}
		}

		// Every query of the Grafana dashboard parses and runs.
		for _, q := range psdDashboardQueries(t) {
			expr := strings.ReplaceAll(q.expr, "$__rate_interval", "10s")
			if _, err := api.get("query", url.Values{"query": {expr}}); err != nil {
				t.Errorf("%s: %v", q.where, err)
			}
		}
	})

	t.Run("file_sd follows a scale-in", func(t *testing.T) {
		if prom != nil {
			// The dashboard's annotations see a counter's first event
			// only once Prometheus has scraped the runner for 4s.
			psdEventually(t, 10*time.Second, "4s of the runner's samples in Prometheus", func() (bool, string) {
				return len(prom.query(t, `up{role="runner"} offset 5s`)) == 1, ""
			})
		}
		resp, err := http.Post("http://"+lab.runnerAddr+"/api/control/scale-down", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/control/scale-down: %s: %s", resp.Status, body)
		}
		// The control answers once both sides have scaled in, and the
		// supervisor calls OnChange before that.
		var replicas []string
		for _, g := range psdReadFileSD(t, lab.fileSD) {
			replicas = append(replicas, g.Labels["replica"])
		}
		if want := []string{"", psdLeft + "-1", psdRight + "-1"}; !slices.Equal(replicas, want) {
			t.Errorf("after a scale-in, the file lists replicas %q, want %q (\"\": the runner)", replicas, want)
		}
		if prom == nil {
			return
		}
		psdEventually(t, 20*time.Second, "Prometheus to drop the stopped replicas", func() (bool, string) {
			targets, err := prom.targets()
			if err != nil {
				return false, err.Error()
			}
			var ids []string
			for _, tg := range targets {
				ids = append(ids, tg.Labels["replica"])
			}
			slices.Sort(ids)
			want := []string{"", psdRight + "-1", psdLeft + "-1"}
			slices.Sort(want)
			return slices.Equal(ids, want), fmt.Sprintf("%+v", targets)
		})

		// The scale-in is the first control event of its kind: each side's
		// annotation must find it, though its counter is new.
		d := psdLoadDashboard(t)
		for _, a := range d.Annotations.List {
			if !strings.Contains(a.Expr, "statelab_scenario_events_total") {
				continue
			}
			psdEventually(t, 10*time.Second, fmt.Sprintf("annotation %q to show the scale-in", a.Name), func() (bool, string) {
				found := prom.query(t, a.Expr)
				for _, s := range found {
					if s.Metric["kind"] == "scale-in" && s.Metric["source"] == "control" && len(s.Value) == 2 && s.Value[1] == "1" {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%v", found)
			})
		}
	})
}

// psdSameGroup compares target groups.
func psdSameGroup(a, b filesd.TargetGroup) bool {
	return slices.Equal(a.Targets, b.Targets) && maps.Equal(a.Labels, b.Labels)
}

// psdPrometheusAPI is a Prometheus server's HTTP API.
type psdPrometheusAPI struct{ base string }

// psdTarget is one of /api/v1/targets' active targets.
type psdTarget struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

// psdSeries is one series of an instant query's result.
type psdSeries struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// get calls /api/v1/<endpoint> and returns its data.
func (p psdPrometheusAPI) get(endpoint string, params url.Values) (json.RawMessage, error) {
	body, err := psdGet(p.base + "/api/v1/" + endpoint + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	if env.Status != "success" {
		return nil, fmt.Errorf("%s: %s", env.Status, env.Error)
	}
	return env.Data, nil
}

func (p psdPrometheusAPI) targets() ([]psdTarget, error) {
	data, err := p.get("targets", url.Values{"state": {"active"}})
	if err != nil {
		return nil, err
	}
	var d struct {
		ActiveTargets []psdTarget `json:"activeTargets"`
	}
	err = json.Unmarshal(data, &d)
	return d.ActiveTargets, err
}

func (p psdPrometheusAPI) query(t *testing.T, q string) []psdSeries {
	t.Helper()
	data, err := p.get("query", url.Values{"query": {q}})
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	var d struct {
		ResultType string      `json:"resultType"`
		Result     []psdSeries `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	return d.Result
}

// psdPrometheusConfig returns scripts/prometheus.yml with the file_sd file
// replaced by fileSD: the configuration `make prometheus` runs, pointed at
// this test's lab.
func psdPrometheusConfig(t *testing.T, fileSD string) []byte {
	t.Helper()
	b, err := os.ReadFile("../scripts/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("scripts/prometheus.yml: %v", err)
	}
	jobs, _ := cfg["scrape_configs"].([]any)
	found := false
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		sds, _ := job["file_sd_configs"].([]any)
		if job["job_name"] != "statelab" || len(sds) != 1 {
			continue
		}
		sd, _ := sds[0].(map[string]any)
		sd["files"] = []any{fileSD}
		found = true
	}
	if !found {
		t.Fatal("scripts/prometheus.yml has no statelab job with one file_sd_configs entry")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// psdStartPrometheus runs prometheus on a free port with the lab's
// configuration and its storage in a temporary directory, and returns its
// API once it is ready. It is stopped (SIGINT, then SIGKILL) when owner,
// t or a test t belongs to, ends.
func psdStartPrometheus(t, owner *testing.T, prom, fileSD string) psdPrometheusAPI {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, psdPrometheusConfig(t, fileSD), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(psdNeed(t, "promtool"), "check", "config", config).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}

	// The free port may be taken between its choice and Prometheus's
	// listen: try again then.
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()

		cmd := exec.Command(prom,
			"--config.file="+config,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprint("data-", attempt)),
			"--web.listen-address="+addr,
			"--log.level=warn")
		out := &labtest.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = 10 * time.Second
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				owner.Errorf("prometheus did not stop within 10s of SIGINT\n%s", out.String())
			}
		}

		api := psdPrometheusAPI{base: "http://" + addr}
		for {
			if _, err := psdGet(api.base + "/-/ready"); err == nil {
				t.Logf("prometheus ready on %s in %s", addr, time.Since(start).Round(time.Millisecond))
				owner.Cleanup(stop)
				return api
			}
			select {
			case <-exited:
			case <-time.After(50 * time.Millisecond):
				if time.Since(start) > 20*time.Second {
					stop()
					t.Fatalf("prometheus not ready within 20s\n%s", out.String())
				}
				continue
			}
			break
		}
		if attempt < 3 && strings.Contains(out.String(), "address already in use") {
			continue
		}
		t.Fatalf("prometheus exited before it was ready: %v\n%s", waitErr, out.String())
	}
}

// psdMetricRef finds the statelab metric names a PromQL expression reads.
var psdMetricRef = regexp.MustCompile(`statelab_[a-z0-9_]+`)

// psdQuery is one PromQL expression of the Grafana dashboard, and where.
type psdQuery struct{ where, expr string }

// psdDashboard is the part of a Grafana dashboard the tests check.
type psdDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []psdVariable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string        `json:"name"`
			BuiltIn    int           `json:"builtIn"`
			Datasource psdDatasource `json:"datasource"`
			Expr       string        `json:"expr"`
			Filter     *psdAnnFilter `json:"filter"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []psdPanel `json:"panels"`
}

type psdVariable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query string `json:"query"`
}

type psdDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type psdAnnFilter struct {
	Exclude bool  `json:"exclude"`
	IDs     []int `json:"ids"`
}

type psdPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *psdDatasource           `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Datasource *psdDatasource `json:"datasource"`
		Expr       string         `json:"expr"`
	} `json:"targets"`
	Panels []psdPanel `json:"panels"` // a collapsed row's
}

// psdLoadDashboard reads scripts/grafana-dashboard.json.
func psdLoadDashboard(t *testing.T) psdDashboard {
	t.Helper()
	b, err := os.ReadFile("../scripts/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d psdDashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("scripts/grafana-dashboard.json is not valid JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("scripts/grafana-dashboard.json: more after the dashboard object")
	}
	return d
}

// psdAllPanels flattens rows.
func psdAllPanels(ps []psdPanel) []psdPanel {
	var all []psdPanel
	for _, p := range ps {
		all = append(all, p)
		all = append(all, psdAllPanels(p.Panels)...)
	}
	return all
}

// psdDashboardQueries returns every PromQL expression of the dashboard:
// the panels' and the annotations'.
func psdDashboardQueries(t *testing.T) []psdQuery {
	t.Helper()
	d := psdLoadDashboard(t)
	var qs []psdQuery
	for _, p := range psdAllPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs = append(qs, psdQuery{fmt.Sprintf("panel %d %q, query %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, psdQuery{fmt.Sprintf("annotation %q", a.Name), a.Expr})
		}
	}
	return qs
}

// TestGrafanaDashboard checks the dashboard's shape: what Grafana needs to
// import it, and the same panels on both sides. TestPrometheus checks its
// queries against a running lab.
func TestGrafanaDashboard(t *testing.T) {
	d := psdLoadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed to import it", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or newer (datasource references by uid)", d.SchemaVersion)
	}
	if !slices.Contains(d.Templating.List, psdVariable{Name: "DS_PROMETHEUS", Type: "datasource", Query: "prometheus"}) {
		t.Error("no templating variable DS_PROMETHEUS of type datasource, query prometheus")
	}
	wantDS := psdDatasource{Type: "prometheus", UID: "${DS_PROMETHEUS}"}

	panels := psdAllPanels(d.Panels)
	ids := map[int]bool{}
	titles := map[string][]string{} // by side, with the side taken off
	sideOf := map[int]string{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %d %q: gridPos %+v does not fit Grafana's 24 columns", p.ID, p.Title, g)
		}
		if len(p.Targets) == 0 {
			continue
		}
		if p.Datasource == nil || *p.Datasource != wantDS {
			t.Errorf("panel %d %q: datasource %+v, want %+v", p.ID, p.Title, p.Datasource, wantDS)
		}
		side, rest, ok := strings.Cut(p.Title, " · ")
		if !ok || (side != strategy.Stateful && side != strategy.Stateless) {
			t.Errorf("panel %d %q: the title should start with its side, \"stateful · \" or \"stateless · \"", p.ID, p.Title)
			continue
		}
		titles[side] = append(titles[side], rest)
		sideOf[p.ID] = side
		for _, tg := range p.Targets {
			if tg.Datasource != nil && *tg.Datasource != wantDS {
				t.Errorf("panel %d %q query %s: datasource %+v, want %+v", p.ID, p.Title, tg.RefID, *tg.Datasource, wantDS)
			}
			if !strings.Contains(tg.Expr, `server="`+side+`"`) {
				t.Errorf("panel %d %q query %s: does not select server=%q: %s", p.ID, p.Title, tg.RefID, side, tg.Expr)
			}
		}
	}
	if !slices.Equal(titles[strategy.Stateful], titles[strategy.Stateless]) || len(titles[strategy.Stateful]) == 0 {
		t.Errorf("the sides differ: stateful has %q, stateless %q", titles[strategy.Stateful], titles[strategy.Stateless])
	}

	// The page's panels, by the metric each needs.
	read := map[string]bool{}
	for _, q := range psdDashboardQueries(t) {
		for _, m := range psdMetricRef.FindAllString(q.expr, -1) {
			read[m] = true
		}
	}
	for _, m := range []string{
		"statelab_client_requests_total",                  // successful requests/s, errors by kind
		"statelab_client_sessions_lost_total",             // sessions lost/s
		"statelab_client_cart_items_lost_total",           // cart items lost/s
		"statelab_client_request_duration_seconds_bucket", // latency p50/p99
		"statelab_replicas_up",                            // replicas up
		"statelab_sessions_active",                        // sessions held per replica
		"statelab_scenario_events_total",                  // events, as annotations
	} {
		if !read[m] {
			t.Errorf("no query reads %s", m)
		}
	}

	events := 0
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 1 {
			continue
		}
		if a.Datasource != wantDS {
			t.Errorf("annotation %q: datasource %+v, want %+v", a.Name, a.Datasource, wantDS)
		}
		if strings.Contains(a.Expr, "statelab_scenario_events_total") {
			events++
		}
		if a.Filter != nil {
			for _, id := range a.Filter.IDs {
				if !ids[id] {
					t.Errorf("annotation %q: filter names panel %d, which does not exist", a.Name, id)
				} else if side := sideOf[id]; side != "" && !strings.HasPrefix(a.Name, side) {
					t.Errorf("annotation %q: shown on panel %d of the %s side", a.Name, id, side)
				}
			}
		}
	}
	if events == 0 {
		t.Error("no annotation shows the scenario events")
	}
}

// psdReadFileSD reads a file_sd file as Prometheus would.
func psdReadFileSD(t *testing.T, path string) []filesd.TargetGroup {
	t.Helper()
	groups, err := filesd.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return groups
}
