package main

import (
	"bytes"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"

	"github.com/statelab/statelab/compare/strategy"
)

// TestMatrixHelp checks that statelab matrix -h explains every flag and
// names its environment variable.
func TestMatrixHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"statelab", "matrix", "-h"}, env(nil), nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(statelab matrix -h) = %v, want flag.ErrHelp", err)
	}
	help := stderr.String()
	for _, want := range []string{"Usage: statelab matrix", "about 5 minutes", "--quick about 90 seconds", "no process is left behind"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	chunks := map[string]string{}
	starts := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatchIndex(help, -1)
	for i, s := range starts {
		end := len(help)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		chunks[help[s[2]:s[3]]] = help[s[0]:end]
	}
	for _, name := range []string{"strategies", "faults", "quick", "users", "replicas", "window", "warmup", "think", "seed", "addr", "report", "latest", "work-dir", "store", "store-url", "read-cache", "latency", "jitter", "hosts", "hosts-subnet", "log-level", "log-format"} {
		chunk, ok := chunks[name]
		if !ok {
			t.Errorf("help does not list -%s", name)
			continue
		}
		if want := "[$" + strategy.EnvName(name) + "]"; !strings.Contains(chunk, want) {
			t.Errorf("help of -%s does not name %s:\n%s", name, want, chunk)
		}
	}
	if len(chunks) != 22 {
		t.Errorf("help lists %d flags; the test knows 22: add the new one above", len(chunks))
	}
}

// TestMatrixBadInput checks that every mistake on the command line is
// refused with a sentence that says what to fix, before any process
// starts.
func TestMatrixBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown strategy", []string{"--strategies", "memory,warp"}, nil, `unknown strategy "warp"`},
		{"strategy twice", []string{"--strategies", "apikey,jwt,apikey"}, nil, "strategy apikey is named twice"},
		{"unknown fault", []string{"--faults", "none,meteor"}, nil, `unknown fault "meteor"`},
		{"no fault", []string{"--faults", ","}, nil, "name at least one"},
		{"no users", []string{"--users", "0"}, nil, "users is 0"},
		{"too many users", []string{"--users", "201"}, nil, "use 1 to 200"},
		{"one replica", []string{"--replicas", "1"}, nil, "at least 2"},
		{"a tiny window", []string{"--window", "100ms"}, nil, "at least 1s"},
		{"no think time", []string{"--think", "0s"}, nil, "-think must be positive"},
		{"bad environment", nil, map[string]string{"STATELAB_USERS": "many"}, "$STATELAB_USERS"},
		{"a stray argument", []string{"memory"}, nil, `unexpected argument "memory"`},
		{"a negative latency", []string{"--latency", "-1ms"}, nil, "latency is -1ms"},
		{"a notify cache on SQLite", []string{"--read-cache=notify"}, nil, "-read-cache notify needs -store postgres"},
		{"an unknown read cache", []string{"--read-cache=sometimes"}, nil, `read cache "sometimes"`},
		{"unknown hosts", []string{"--hosts", "vm"}, nil, `-hosts: hosts "vm": use local`},
		{"a hosts subnet too small", []string{"--hosts", "netns", "--hosts-subnet", "198.18.7.0/30"}, nil, "/8 to /29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"statelab", "matrix", "--report", t.TempDir(), "--latest="}, tt.args...)
			err := run(t.Context(), args, env(tt.env), nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one that says %q", err, tt.want)
			}
			if strings.Contains(stdout.String(), "[run ") {
				t.Errorf("a run started:\n%s", stdout.String())
			}
		})
	}
}
