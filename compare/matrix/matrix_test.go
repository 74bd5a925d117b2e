package matrix_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/matrix"
	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/compare/strategy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with what the code writes now")

func mustStrategies(t *testing.T, names ...string) []strategy.Strategy {
	t.Helper()
	var out []strategy.Strategy
	for _, n := range names {
		st, err := strategy.Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

func TestParseFaults(t *testing.T) {
	tests := []struct {
		list    string
		want    []string
		wantErr string
	}{
		{"none,restart,crash,scale-out,scale-in,rolling-restart,restart-store", matrix.FaultNames(), ""},
		// The columns keep the matrix's order: scale-in after scale-out.
		{"scale-in, crash ,scale-out", []string{"scale-out", "crash", "scale-in"}, ""},
		{"restart,restart", []string{"restart"}, ""},
		{"restart,meteor", nil, `unknown fault "meteor"`},
		{" , ", nil, "name at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			fs, err := matrix.ParseFaults(tt.list)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestScenario checks the scenario every run plays: a warm-up, then one
// event per fault at the start of its window, each meeting the replica
// count the faults before it left.
func TestScenario(t *testing.T) {
	fs, err := matrix.ParseFaults(strings.Join(matrix.FaultNames(), ","))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := matrix.Scenario(matrix.Config{Faults: fs, Replicas: 2, Warmup: 2 * time.Second, Window: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		at                time.Duration
		action            string
		replica, replicas int
	}
	want := []ev{
		{2 * time.Second, scenario.ActionMark, 0, 0},
		{5 * time.Second, scenario.ActionScale, 0, 4},
		{8 * time.Second, scenario.ActionRestart, 1, 0},
		{11 * time.Second, scenario.ActionCrash, 2, 0},
		{14 * time.Second, scenario.ActionScale, 0, 2},
		{17 * time.Second, scenario.ActionRollingRestart, 0, 0},
		{20 * time.Second, scenario.ActionRestartStore, 0, 0},
	}
	var got []ev
	for _, e := range sc.Events {
		got = append(got, ev{e.At.Std(), e.Action, e.Replica, e.Replicas})
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	if sc.Duration.Std() != 23*time.Second || sc.Replicas != 2 {
		t.Errorf("duration %s with %d replicas, want 23s with 2", sc.Duration.Std(), sc.Replicas)
	}

	// Without a scale-out before it, a scale-in from two replicas takes
	// one away; from one, there is nothing to take, and the scenario says
	// so.
	in, _ := matrix.ParseFaults("scale-in")
	sc, err = matrix.Scenario(matrix.Config{Faults: in, Replicas: 2, Warmup: time.Second, Window: time.Second})
	if err != nil || sc.Events[0].Replicas != 1 {
		t.Errorf("a scale-in from 2 replicas: %v, %+v; want a scale to 1", err, sc.Events)
	}
	if _, err := matrix.Scenario(matrix.Config{Faults: in, Replicas: 1, Warmup: time.Second, Window: time.Second}); err == nil {
		t.Error("a scale-in from 1 replica: no error")
	}
}

func TestPairs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want [][2]string
	}{
		{
			// The default rows: the two that fail at rest run together,
			// so their re-login storms slow down no sound strategy.
			"default", matrix.DefaultStrategies(),
			[][2]string{{"memory", "jwt+own-secrets"}, {"memory-sticky", "memory-hash"}, {"redis", "cookie"}, {"apikey", "jwt"}},
		},
		{"odd: a filler that is a row", []string{"apikey", "jwt", "cookie"}, [][2]string{{"apikey", "jwt"}, {"cookie", "apikey"}}},
		{"one", []string{"memory"}, [][2]string{{"memory", "memory-sticky"}}},
		{"one sound strategy", []string{"memory-sticky"}, [][2]string{{"memory-sticky", "memory-hash"}}},
		{"api keys need no shared secret", []string{"apikey+own-secrets", "memory+own-secrets"}, [][2]string{{"memory+own-secrets", "apikey+own-secrets"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][2]string
			for _, p := range matrix.Pairs(mustStrategies(t, tt.in...)) {
				got = append(got, [2]string{p[0].Name, p[1].Name})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCellOf(t *testing.T) {
	a := load.Totals{Requests: 100, OK: 90, Conflicts: 2, SessionLost: 8, SessionsLost: 8, Relogins: 7, CartItemsLost: 3, Errors5xx: 0}
	b := load.Totals{Requests: 300, OK: 270, Conflicts: 5, SessionLost: 20, SessionsLost: 20, Relogins: 18, CartItemsLost: 5, Errors5xx: 3, ConnErrors: 2, InvalidCredential: 1}
	c := matrix.CellOf(a, b)
	c.Applies = true
	// 200 requests, 180 ok, 3 conflicts: 17 failed (12 session_lost, 3 5xx,
	// 2 with no answer; 1 invalid credential is among the 12 + ... no: the
	// failures are every request but the 2xx and the 409s).
	want := matrix.Cell{Applies: true, Requests: 200, Failures: 17, FailuresPer1000: 85, SessionsLost: 12, Relogins: 11, CartItemsLost: 2, Errors5xx: 3, ConnErrors: 2, InvalidCredential: 1}
	if *c != want {
		t.Errorf("got %+v\nwant %+v", *c, want)
	}
	if c.Glyph() != matrix.GlyphLost {
		t.Errorf("glyph %s, want %s", c.Glyph(), matrix.GlyphLost)
	}

	tests := []struct {
		cell matrix.Cell
		want string
	}{
		{matrix.Cell{Applies: true, Requests: 10}, matrix.GlyphClean},
		{matrix.Cell{Applies: true, Requests: 10, Failures: 1}, matrix.GlyphFailures},
		{matrix.Cell{Applies: true, Requests: 10, SessionsLost: 1, Failures: 1}, matrix.GlyphLost},
		// A re-login forced by a loss in the window before.
		{matrix.Cell{Applies: true, Requests: 10, Relogins: 1}, matrix.GlyphClean},
		{matrix.Cell{Applies: false, Requests: 10, SessionsLost: 3}, matrix.GlyphNA},
	}
	for _, tt := range tests {
		if got := tt.cell.Glyph(); got != tt.want {
			t.Errorf("%+v: glyph %s, want %s", tt.cell, got, tt.want)
		}
	}
}

// fixed is a small matrix with every kind of cell: clean, failures, sign-ins
// lost, n/a, unmeasured, and a skipped row.
func fixed() *matrix.Matrix {
	about := map[string]strategy.Strategy{}
	for _, n := range []string{"memory-sticky", "redis", "apikey"} {
		st, _ := strategy.Parse(n)
		about[n] = st
	}
	share := &report.BalanceWindow{FromS: 6, ToS: 8, After: "scale-out",
		Requests: map[string]uint64{"memory-sticky-1": 60, "memory-sticky-2": 40, "memory-sticky-3": 0},
		Shares:   map[string]float64{"memory-sticky-1": .6, "memory-sticky-2": .4, "memory-sticky-3": 0}, Imbalance: 1.8}
	return &matrix.Matrix{
		Strategies: []string{"memory-sticky", "redis", "apikey"},
		Faults:     []string{"none", "crash", "scale-out", "restart-store"},
		Cells: map[string]map[string]*matrix.Cell{
			"memory-sticky": {
				"none":          {Applies: true, FromS: 2, ToS: 4, Requests: 400},
				"crash":         {Applies: true, FromS: 4, ToS: 6, Requests: 380, Failures: 12, FailuresPer1000: 31.6, SessionsLost: 9, Relogins: 9, CartItemsLost: 4, Errors5xx: 3},
				"scale-out":     {Applies: true, FromS: 6, ToS: 8, Requests: 410, Balance: share},
				"restart-store": {Applies: false, FromS: 8, ToS: 10, Requests: 390},
			},
			"apikey": {
				"none":  {Applies: true, FromS: 2, ToS: 4, Requests: 500},
				"crash": {Applies: true, FromS: 4, ToS: 6, Requests: 520, Failures: 2, FailuresPer1000: 3.846, Errors5xx: 2},
			},
		},
		Costs: map[string]*matrix.Costs{
			"memory-sticky": {Costs: report.Costs{
				UserCosts:   load.UserCosts{RequestBytesP50: 327, JourneyBytesP50: 3950, Journeys: 40, ReadLatencyMS: load.Percentile{P50: 1.5, P99: 35.2}},
				ServerCosts: report.ServerCosts{IdentifyUSP50: 4.2, IdentifyUS: 9.1, CPUPerRequestUS: 812},
			}, Revocation: matrix.Revocation{Verdict: matrix.RevokedAtOnce, How: "log in, log out, send the old cookies", Saw: "refused 6 times out of 6 (6 × 401 session_lost)"}},
		},
		Seed: 7, StartedAt: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
		Users: 16, Replicas: 2, WarmupS: 2, WindowS: 2, ThinkMS: 150, DurationS: 61.25, Interrupted: true,
		Runs: []matrix.RunRecord{
			{Sides: []string{"memory-sticky", "apikey"}, Report: "runs/1-memory-sticky-apikey/report.json", DurationS: 30, Interrupted: true, Consistent: true},
		},
		Skipped:  map[string]string{"redis": "redis-server not found on PATH"},
		About:    about,
		FaultsDo: map[string]string{"none": "no event", "crash": "SIGKILL", "scale-out": "one more", "restart-store": "redis restarted"},
		Claims: report.Judge([]report.Evidence{
			{Side: "memory-sticky", Parts: about["memory-sticky"].Parts(), Stops: 1, LostAtStops: 9, Sized: 400, CredentialBytes: 150, RoutingBytes: 30,
				Identifications: 400, IdentifyUS: 4.2, Revocation: matrix.RevokedAtOnce},
			{Side: "apikey", Stateless: true, Parts: about["apikey"].Parts(), Stops: 1, Sized: 520, CredentialBytes: 62,
				Identifications: 520, IdentifyUS: 96, RoundTrips: 1},
		}, report.Conditions{WritesPerS: 2}),
	}
}

// TestOutputs compares the terminal table and matrix.md with their golden
// files, and checks that matrix.json reads back and matrix.html needs
// nothing from the network.
func TestOutputs(t *testing.T) {
	m := fixed()
	var table, md bytes.Buffer
	m.PrintTable(&table)
	m.Markdown(&md)
	for name, got := range map[string][]byte{"table.golden": table.Bytes(), "matrix.md.golden": md.Bytes()} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs (go test ./compare/matrix -run TestOutputs -update, then read the diff):\n%s", name, got)
		}
	}

	dir := t.TempDir()
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "matrix.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"strategies", "faults", "cells", "costs", "seed", "started_at", "store", "read_cache", "latency_ms", "jitter_ms", "hosts"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("matrix.json lacks %q, which the issue names", k)
		}
	}
	var back matrix.Matrix
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Cells["memory-sticky"]["crash"]; got == nil || *got != *m.Cells["memory-sticky"]["crash"] {
		t.Errorf("matrix.json reads back a crash cell of %+v", got)
	}

	page, err := os.ReadFile(filepath.Join(dir, "matrix.html"))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	// Self-contained: no script, no style sheet, no image, no font from
	// anywhere.
	if loc := regexp.MustCompile(`(?i)(src=|href=["']?https?:|@import|url\(|<script)`).FindString(html); loc != "" {
		t.Errorf("matrix.html loads something: %q", loc)
	}
	for _, want := range []string{
		`<td class="cell clean"`, `<td class="cell h3"`, `<td class="cell h2"`, `<td class="cell na"`, `<td class="cell unmeasured">?</td>`,
		`<span class="glyph">✗</span>32 <span class="lost">(9)</span>`,
		`skipped: redis-server not found on PATH`,
		"in the memory of one replica", // the sentence on where the state is kept
		"Revoked <em>at once</em>",
		"<th>memory-sticky</th><td class=\"num\">327</td>",
		"Interrupted",
		"<h2>The lesson's claims, judged by this matrix</h2>",
		"<tr><th>Reliability: a replica that stops loses no one&#39;s sign-in</th><td><strong>held</strong></td>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("matrix.html lacks %q", want)
		}
	}
}

// TestWriteLatest checks that only a complete matrix replaces the page the
// dashboard serves.
func TestWriteLatest(t *testing.T) {
	dir := t.TempDir()
	latest := filepath.Join(dir, "latest", "matrix.html")
	partial := fixed() // interrupted, with cells missing
	if err := partial.Write(dir); err != nil {
		t.Fatal(err)
	}
	if copied, err := partial.WriteLatest(dir, latest); err != nil || copied {
		t.Fatalf("an interrupted matrix: WriteLatest = %v, %v; want nothing copied", copied, err)
	}
	if _, err := os.Stat(latest); !os.IsNotExist(err) {
		t.Fatalf("an interrupted matrix left %s: %v", latest, err)
	}

	whole := &matrix.Matrix{
		Strategies: []string{"apikey"}, Faults: []string{"none"},
		Cells:   map[string]map[string]*matrix.Cell{"apikey": {"none": {Applies: true, FromS: 2, ToS: 4, Requests: 500}}},
		Costs:   map[string]*matrix.Costs{"apikey": {}},
		Skipped: map[string]string{},
	}
	if !whole.Complete() {
		t.Fatal("the fixture should be a complete matrix")
	}
	if err := whole.Write(dir); err != nil {
		t.Fatal(err)
	}
	if copied, err := whole.WriteLatest(dir, ""); err != nil || copied {
		t.Errorf("no latest file named: WriteLatest = %v, %v; want nothing copied", copied, err)
	}
	if copied, err := whole.WriteLatest(dir, latest); err != nil || !copied {
		t.Fatalf("a complete matrix: WriteLatest = %v, %v; want it copied", copied, err)
	}
	got, err := os.ReadFile(latest)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "matrix.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the latest page is not the matrix's matrix.html")
	}
}
