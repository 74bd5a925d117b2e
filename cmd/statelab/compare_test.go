package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/load"
	"github.com/statelab/statelab/compare/scenario"
	"github.com/statelab/statelab/internal/library"
)

func TestResolveLoad(t *testing.T) {
	zero, off := 0, false
	capacity := scenario.Scenario{Users: &zero, ReplicaCPU: 0.1, Rate: 480, RateUsers: 12, Deadline: scenario.Duration(time.Second), MaxOutstanding: 160, ReadCache: &off}
	flags := compareLoad{users: 20, replicaCPU: 0.25, rate: 100, calibrate: 2, rateUsers: 5, deadline: 3 * time.Second, maxOutstanding: 50, readCache: library.ReadCacheExact}
	calibrated := capacity
	calibrated.Calibrate = 1.5
	tests := []struct {
		name string
		sc   scenario.Scenario
		set  []string
		want compareLoad
	}{
		{"the scenario's load when no flag is set", capacity, nil,
			compareLoad{users: 0, replicaCPU: 0.1, rate: 480, rateUsers: 12, deadline: time.Second, maxOutstanding: 160, readCache: library.ReadCacheOff}},
		{"a flag that is set wins", capacity, []string{"users", "replica-cpu", "rate", "calibrate", "rate-users", "deadline", "max-outstanding", "read-cache"}, flags},
		{"--replica-cpu 0 takes the scenario's limit away", capacity, []string{"replica-cpu"},
			compareLoad{users: 0, replicaCPU: 0.25, rate: 480, rateUsers: 12, deadline: time.Second, maxOutstanding: 160, readCache: library.ReadCacheOff}},
		{"a scenario without a load: the flags' defaults", scenario.Scenario{}, nil,
			compareLoad{users: 20, rateUsers: load.DefaultRateUsers, readCache: library.ReadCacheExact}}, // the deadline's default is compare.New's
		{"the scenario calibrates", calibrated, nil,
			compareLoad{users: 0, replicaCPU: 0.1, rate: 480, calibrate: 1.5, rateUsers: 12, deadline: time.Second, maxOutstanding: 160, readCache: library.ReadCacheOff}},
		{"a --rate given is the rate wanted: no calibration", calibrated, []string{"rate"},
			compareLoad{users: 0, replicaCPU: 0.1, rate: 100, rateUsers: 12, deadline: time.Second, maxOutstanding: 160, readCache: library.ReadCacheOff}},
		{"--calibrate wins, with --rate too", calibrated, []string{"rate", "calibrate"},
			compareLoad{users: 0, replicaCPU: 0.1, rate: 100, calibrate: 2, rateUsers: 12, deadline: time.Second, maxOutstanding: 160, readCache: library.ReadCacheOff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := map[string]bool{}
			for _, f := range tt.set {
				set[f] = true
			}
			if got := resolveLoad(tt.sc, set, flags); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRunCompareHelpListsTheLoadFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"statelab", "compare", "-h"}, env(nil), nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(statelab compare -h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{
		"-replica-cpu cores", "[$STATELAB_REPLICA_CPU]", "enforced by the kernel", "runs unlimited",
		"-rate requests", "[$STATELAB_RATE]", "(capacity: ",
		"-rate-users users", "[$STATELAB_RATE_USERS]",
		"-calibrate times", "[$STATELAB_CALIBRATE]", "what one replica answers per second",
		"-deadline duration", "[$STATELAB_DEADLINE]", "timeout",
		"-max-outstanding requests", "[$STATELAB_MAX_OUTSTANDING]", "dropped",
		"-latency delay", "[$STATELAB_LATENCY]", "-jitter much", "[$STATELAB_JITTER]",
		"-hosts mode", "[$STATELAB_HOSTS]", "-hosts-subnet CIDR", "[$STATELAB_HOSTS_SUBNET]",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("compare -h does not say %q", want)
		}
	}
}

func TestRunCompareRejectsBadLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"negative rate", []string{"--rate", "-5"}, nil, "rate is -5"},
		{"rate from the environment", nil, map[string]string{"STATELAB_RATE": "99999"}, "rate is 99999"},
		{"tiny CPU limit", []string{"--replica-cpu", "0.001"}, nil, "CPU limit is 0.001"},
		{"no users and no rate", []string{"--users", "0"}, nil, "users is 0; use 1 to 500"},
		{"a pool of no users", []string{"--rate", "50"}, map[string]string{"STATELAB_RATE_USERS": "0"}, "rate users is 0"},
		{"a calibration below 1", []string{"--scenario", "capacity", "--calibrate", "0.5"}, nil, "calibrate is 0.5; use 1 to 10"},
		{"a calibration without a CPU limit", []string{"--scenario", "capacity", "--replica-cpu", "0"}, nil, "needs a replica CPU limit"},
		{"a deadline too short", []string{"--rate", "50", "--deadline", "1ms"}, nil, "deadline is 1ms"},
		{"an unknown store", []string{"--store", "mysql"}, nil, `-store "mysql": use sqlite or postgres`},
		{"a store password on the command line", []string{"--store-url", "postgres://statelab:hunter2@127.0.0.1:1/statelab"}, nil, "-store-url holds a password"},
		{"a store URL of another kind", nil, map[string]string{"STATELAB_STORE_URL": "mysql://127.0.0.1/statelab"}, "want a postgres:// URL"},
		{"a latency finer than a microsecond", []string{"--latency", "1500ns"}, nil, "latency is 1.5µs; use whole microseconds"},
		{"a jitter beyond the latency", nil, map[string]string{"STATELAB_LATENCY": "1ms", "STATELAB_JITTER": "2ms"}, "jitter is 2ms"},
		{"unknown hosts", []string{"--hosts", "docker"}, nil, `-hosts: hosts "docker": use local`},
		{"a hosts subnet without netns", []string{"--hosts-subnet", "198.18.7.0/24"}, nil, "-hosts-subnet is for -hosts netns"},
		{"a hosts subnet with host bits", nil, map[string]string{"STATELAB_HOSTS": "netns", "STATELAB_HOSTS_SUBNET": "198.18.7.1/24"}, "give the network's own address, 198.18.7.0/24"},
		{"an IPv6 hosts subnet", []string{"--hosts", "netns", "--hosts-subnet", "fd00::/64"}, nil, "use an IPv4 subnet"},
		{"hosts with a database of one's own", []string{"--hosts", "netns", "--store-url", "postgres://statelab@127.0.0.1:1/statelab"}, nil, "cannot reach the database of --store-url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"statelab", "compare", "--addr", "127.0.0.1:0", "--left-addr", "127.0.0.1:0", "--right-addr", "127.0.0.1:0",
				"--work-dir", filepath.Join(dir, "work"), "--report", filepath.Join(dir, "report"), "--file-sd="}, tt.args...)
			var stdout, stderr bytes.Buffer
			err := run(ctx, args, env(tt.env), nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run(%q) = %v, want an error saying %q", args[2:], err, tt.wantErr)
			}
		})
	}
}
