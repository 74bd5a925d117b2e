package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
)

// TestInsecureEmailOnlyKeys: the seed's email-only keys are off by
// default; the flag that brings them back says in -h and at start-up (a
// warning) that it is unsafe and why.
func TestInsecureEmailOnlyKeys(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"statelab", "stateless", "-h"}, env(nil), nil, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := stderr.String()
	if i := strings.Index(help, "-insecure-email-only-keys"); i < 0 || !strings.Contains(help[i:], "UNSAFE") || !strings.Contains(help[i:], "anyone who knows an email") {
		t.Errorf("-h does not say why -insecure-email-only-keys is unsafe:\n%s", help)
	}

	for _, tt := range []struct {
		name       string
		args       []string
		wantStatus int
		wantWarn   bool
	}{
		{"default", nil, http.StatusBadRequest, false},
		{"flag", []string{"--insecure-email-only-keys"}, http.StatusCreated, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddrs(t, 1)[0]
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, log labtest.Buffer
			runErr := make(chan error, 1)
			args := append([]string{"statelab", "stateless", "--addr", addr, "--db", filepath.Join(t.TempDir(), "library.db")}, tt.args...)
			go func() { runErr <- run(ctx, args, env(nil), nil, &out, &log) }()
			client := newTestClient()
			waitHealthy(t, client, "http://"+addr+"/api/health", runErr, &log)

			resp, err := client.Post("http://"+addr+"/api/auth/generate-key", "application/json", strings.NewReader(`{"email":"newbie@example.com"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("key for an email alone: got %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			warned := strings.Contains(log.String(), "level=WARN msg=\"-insecure-email-only-keys is on")
			if warned != tt.wantWarn {
				t.Errorf("start-up warning: got %v, want %v\nlog:\n%s", warned, tt.wantWarn, log.String())
			}
			cancel()
			select {
			case <-runErr:
			case <-time.After(15 * time.Second):
				t.Fatal("run did not return after cancel")
			}
		})
	}
}
