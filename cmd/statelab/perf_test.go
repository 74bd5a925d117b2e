package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/strategy"
)

func TestRunPerfRejectsBadConfiguration(t *testing.T) {
	// An already-cancelled context: should a case wrongly pass the checks,
	// run ends at once instead of measuring for a minute.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string
	}{
		{"unknown strategy", []string{"--strategies", "apikey,carrier-pigeon"}, nil, []string{"carrier-pigeon"}},
		{"unknown strategy from env", nil, map[string]string{"STATELAB_STRATEGIES": "sessions"}, []string{"sessions"}},
		{"own secrets", []string{"--strategies", "jwt+own-secrets"}, nil, []string{"jwt+own-secrets", "one replica"}},
		{"unknown request", []string{"--requests", "book,cover"}, nil, []string{`"cover"`, "book, page"}},
		{"no connections", []string{"--connections", "0"}, nil, []string{"-connections"}},
		{"no rounds from env", nil, map[string]string{"STATELAB_ROUNDS": "0"}, []string{"-rounds"}},
		{"no duration", []string{"--duration", "0s"}, nil, []string{"-duration"}},
		{"stray argument", []string{"now"}, nil, []string{`unexpected argument "now"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"statelab", "perf"}, tt.args...)
			var stdout, stderr bytes.Buffer
			err := run(ctx, args, env(tt.env), nil, &stdout, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil, want an error", args[1:])
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("run(%q) = %q, want it to mention %q", args[1:], err, want)
				}
			}
		})
	}
}

func TestRunPerfAndBaselineHelpNameTheirEnvironment(t *testing.T) {
	for _, tt := range []struct {
		cmd   string
		flags []string
	}{
		{"perf", []string{"strategies", "requests", "connections", "rounds", "duration", "warmup", "no-pin", "no-read-cache", "json", "work-dir", "quiet"}},
		{"baseline", []string{"addr", "replica-id", "exit-with-stdin"}},
	} {
		t.Run(tt.cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"statelab", tt.cmd, "-h"}, env(nil), nil, &stdout, &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run(statelab %s -h) = %v, want flag.ErrHelp", tt.cmd, err)
			}
			help := stderr.String()
			for _, name := range tt.flags {
				chunk := regexp.MustCompile(`(?ms)^  -` + name + `\b.*?(?:^  -|\z)`).FindString(help)
				want := "[$" + strategy.EnvName(name) + "]"
				if !strings.Contains(chunk, want) {
					t.Errorf("help of -%s does not name %s:\n%s", name, want, help)
				}
			}
		})
	}
}

// TestRunBaselineServes starts the bare server through run, as statelab
// perf's supervisor does, and stops it by closing its standard input.
func TestRunBaselineServes(t *testing.T) {
	addr := freeAddrs(t, 1)[0]
	// The read end goes to run as its standard input; closing the write
	// end is what a runner's death looks like to the server.
	stdin, w := io.Pipe()
	closeStdin := func() { w.Close() }
	t.Cleanup(closeStdin)
	runErr := make(chan error, 1)
	go func() {
		runErr <- run(t.Context(), []string{"statelab", "baseline", "--addr", addr, "--replica-id", "bare-1", "--exit-with-stdin"},
			env(nil), stdin, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	client := newTestClient()
	deadline := time.Now().Add(10 * time.Second)
	var resp *http.Response
	for {
		var err error
		if resp, err = client.Get("http://" + addr + "/api/books/1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("baseline never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer resp.Body.Close()
	var env struct {
		Success bool `json:"success"`
		Data    struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != http.StatusOK || !env.Success || env.Data.ID != 1 {
		t.Errorf("GET /api/books/1: %s, %+v, %v; want 200 and book 1", resp.Status, env, err)
	}
	if got := resp.Header.Get("X-Statelab-Replica"); got != "bare-1" {
		t.Errorf("replica header: got %q, want bare-1", got)
	}
	closeStdin()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("run returned %v after stdin closed, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("baseline still running 10s after its stdin closed")
	}
}
