package filesd_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"

	"github.com/statelab/statelab/compare/filesd"
	"github.com/statelab/statelab/compare/supervisor"
)

func TestTargetGroups(t *testing.T) {
	replicas := []filesd.TargetSide{
		{Strategy: "memory-sticky", Server: "stateful", Replicas: []supervisor.Replica{{ID: "memory-sticky-1", Addr: "127.0.0.1:3001"}, {ID: "memory-sticky-2", Addr: "127.0.0.1:3002"}}},
		{Strategy: "apikey", Server: "stateless", Replicas: []supervisor.Replica{{ID: "apikey-1", Addr: "127.0.0.1:4001"}}},
	}
	wantReplicas := []filesd.TargetGroup{
		{Targets: []string{"127.0.0.1:3001"}, Labels: map[string]string{"role": "replica", "server": "stateful", "strategy": "memory-sticky", "replica": "memory-sticky-1"}},
		{Targets: []string{"127.0.0.1:3002"}, Labels: map[string]string{"role": "replica", "server": "stateful", "strategy": "memory-sticky", "replica": "memory-sticky-2"}},
		{Targets: []string{"127.0.0.1:4001"}, Labels: map[string]string{"role": "replica", "server": "stateless", "strategy": "apikey", "replica": "apikey-1"}},
	}
	runner := func(addr string) []filesd.TargetGroup {
		return []filesd.TargetGroup{{Targets: []string{addr}, Labels: map[string]string{"role": "runner"}}}
	}
	tests := []struct {
		name       string
		runnerAddr string
		replicas   []filesd.TargetSide
		want       []filesd.TargetGroup
	}{
		{"runner and replicas, in the sides' order", "127.0.0.1:8080", replicas, append(runner("127.0.0.1:8080"), wantReplicas...)},
		{"no runner address", "", replicas, wantReplicas},
		{"no replicas yet", "127.0.0.1:8080", nil, runner("127.0.0.1:8080")},
		{"empty host", ":8080", nil, runner("127.0.0.1:8080")},
		{"IPv4 wildcard", "0.0.0.0:8080", nil, runner("127.0.0.1:8080")},
		{"IPv6 wildcard", "[::]:8080", nil, runner("127.0.0.1:8080")},
		{"IPv6 loopback kept", "[::1]:8080", nil, runner("[::1]:8080")},
		{"host name kept", "lab.example:8080", nil, runner("lab.example:8080")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := filesd.TargetGroups(tt.runnerAddr, tt.replicas)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// psdDirNames lists a directory, to show what a write left behind.
func psdDirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileSD(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "file_sd") // missing: WriteFileSD makes it
	path := filepath.Join(dir, "statelab.json")
	first := filesd.TargetGroups("127.0.0.1:8080", []filesd.TargetSide{
		{Strategy: "memory", Server: "stateful", Replicas: []supervisor.Replica{{ID: "memory-1", Addr: "127.0.0.1:3001"}}},
		{Strategy: "jwt", Server: "stateless", Replicas: []supervisor.Replica{{ID: "jwt-1", Addr: "127.0.0.1:4001"}}},
	})
	second := filesd.TargetGroups("127.0.0.1:8080", nil)

	for _, groups := range [][]filesd.TargetGroup{first, second} {
		if err := filesd.WriteFileSD(path, groups); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, path); !reflect.DeepEqual(got, groups) {
			t.Errorf("read back %+v, want %+v", got, groups)
		}
		if got, want := psdDirNames(t, dir), []string{"statelab.json"}; !reflect.DeepEqual(got, want) {
			t.Errorf("directory holds %q, want %q: a temporary file was left behind", got, want)
		}
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), os.FileMode(0o644); got != want {
			t.Errorf("mode %v, want %v: a Prometheus running as another user must read it", got, want)
		}
	}

	if err := filesd.WriteFileSD(path, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "[]\n" {
		t.Errorf("no groups wrote %q, want %q", b, "[]\n")
	}
}

func TestWriteFileSDError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := filesd.WriteFileSD(filepath.Join(blocker, "statelab.json"), nil); err == nil {
		t.Fatal("writing under a regular file succeeded")
	}
	// A rename onto a directory fails after the temporary file is written:
	// it must be cleaned up.
	target := filepath.Join(dir, "statelab.json")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := filesd.WriteFileSD(target, nil); err == nil {
		t.Fatal("renaming onto a directory succeeded")
	}
	if got, want := psdDirNames(t, dir), []string{"not-a-dir", "statelab.json"}; !reflect.DeepEqual(got, want) {
		t.Errorf("directory holds %q, want %q: a temporary file was left behind", got, want)
	}
}

// TestWriteFileSDAtomic reads the file over and over while it is rewritten
// with lists of different lengths: Prometheus may read it at any moment
// and must never see half a list.
func TestWriteFileSDAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "statelab.json")
	var lists [][]filesd.TargetGroup
	for n := range 4 {
		reps := make([]supervisor.Replica, n*8)
		for i := range reps {
			reps[i] = supervisor.Replica{ID: "stateful-" + string(rune('a'+i)), Addr: "127.0.0.1:3000"}
		}
		lists = append(lists, filesd.TargetGroups("127.0.0.1:8080", []filesd.TargetSide{{Strategy: "memory", Server: "stateful", Replicas: reps}}))
	}
	if err := filesd.WriteFileSD(path, lists[0]); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err == nil {
				var groups []filesd.TargetGroup
				err = json.Unmarshal(b, &groups)
			}
			if err != nil {
				readErr = errors.Join(readErr, err)
				return
			}
		}
	})
	for i := range 400 {
		if err := filesd.WriteFileSD(path, lists[i%len(lists)]); err != nil {
			close(done)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("a reader saw a broken file: %v", readErr)
	}
}

func mustRead(t *testing.T, path string) []filesd.TargetGroup {
	t.Helper()
	groups, err := filesd.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return groups
}
