package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// The walkthrough itself is tested in internal/walkthrough, against a
// binary built from this command; these tests cover its flags.

func TestRunWalkthroughHelpListsEveryFlagWithItsEnvironmentVariable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"statelab", "walkthrough", "-h"}, env(nil), nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(statelab walkthrough -h) = %v, want flag.ErrHelp", err)
	}
	for flagName, envName := range map[string]string{
		"auto":     "STATELAB_AUTO",
		"step":     "STATELAB_STEP",
		"no-color": "STATELAB_NO_COLOR",
		"requests": "STATELAB_REQUESTS",
		"verbose":  "STATELAB_VERBOSE",
	} {
		if !strings.Contains(stderr.String(), "-"+flagName) || !strings.Contains(stderr.String(), "$"+envName) {
			t.Errorf("help does not show -%s with $%s; got:\n%s", flagName, envName, stderr.String())
		}
	}
}

func TestRunWalkthroughRejectsBadFlags(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"step 0", []string{"--step", "0"}, nil, "-step 0: the steps are 1 to 7"},
		{"step 8", []string{"--step", "8"}, nil, "-step 8: the steps are 1 to 7"},
		{"step from the environment", nil, map[string]string{"STATELAB_STEP": "9"}, "-step 9"},
		{"no requests", []string{"--requests", "0"}, nil, "-requests must be at least 1"},
		{"an argument", []string{"now"}, nil, `unexpected argument "now"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{"statelab", "walkthrough"}, tt.args...), env(tt.env), nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run(walkthrough %q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}
