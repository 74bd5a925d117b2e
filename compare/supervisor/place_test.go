//go:build linux

package supervisor_test

import (
	"net"
	"os/exec"
	"slices"
	"sync"
	"testing"

	"github.com/statelab/statelab/compare/supervisor"
)

// TestSupervisorPlace checks the seam that puts replicas on hosts of
// their own (--hosts netns): every new process, the first and a surge
// restart's successor, listens where FreeAddr said for its replica and is
// started by Start, and a crash starts its replacement through Start on
// the same address.
func TestSupervisorPlace(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var picked, started []string // replica ids, in order
	var addrs []string
	sup, _, _ := supStart(t, func(cfg *supervisor.Config) {
		cfg.FreeAddr = func(id string) (string, error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return "", err
			}
			defer ln.Close()
			mu.Lock()
			defer mu.Unlock()
			picked = append(picked, id)
			addrs = append(addrs, ln.Addr().String())
			return ln.Addr().String(), nil
		}
		cfg.Start = func(id string, cmd *exec.Cmd) error {
			mu.Lock()
			started = append(started, id)
			mu.Unlock()
			return cmd.Start()
		}
	})
	first := supScale(t, sup, 1)[0]
	if err := sup.Restart(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	second := sup.Replicas()[0]
	if err := sup.Crash(t.Context(), second.ID); err != nil {
		t.Fatal(err)
	}
	third := sup.Replicas()[0]
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"stateless-1", "stateless-1"}; !slices.Equal(picked, want) {
		t.Errorf("FreeAddr asked for %v, want %v (the first process, the surge restart's successor)", picked, want)
	}
	if want := []string{"stateless-1", "stateless-1", "stateless-1"}; !slices.Equal(started, want) {
		t.Errorf("Start started %v, want %v (first, successor, replacement after the crash)", started, want)
	}
	if got := []string{first.Addr, second.Addr, third.Addr}; len(addrs) != 2 || !slices.Equal(got, []string{addrs[0], addrs[1], addrs[1]}) {
		t.Errorf("replicas listened on %v; FreeAddr gave %v", got, addrs)
	}
}
