package services_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/redisserver"
	"github.com/statelab/statelab/internal/services"
	"github.com/statelab/statelab/stateful"
)

// TestEveryNeededServiceStarts: every service a session store Needs has
// an entry in the table, so the runner and perf can start it.
func TestEveryNeededServiceStarts(t *testing.T) {
	for _, name := range stateful.StoreNames() {
		kind, _ := stateful.LookupStore(name)
		for _, svc := range kind.Needs() {
			if services.Name(svc) == svc.Program {
				t.Errorf("store %s needs %s, which internal/services cannot start", name, svc.Program)
			}
		}
	}
	_, err := services.Start(t.Context(), stateful.Service{Program: "no-such-server"}, services.Config{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no-such-server") {
		t.Errorf("starting an unknown service: %v, want an error that names it", err)
	}
}

// TestRedisThroughTheTable starts redis-server through the table, as the
// runner does: an address and a secret for the replicas, a process to
// measure, a restart at the same address, and a stop.
func TestRedisThroughTheTable(t *testing.T) {
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)
	svc, err := services.Start(t.Context(), stateful.RedisServer, services.Config{Dir: filepath.Join(t.TempDir(), services.Name(stateful.RedisServer))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	addr, pid := svc.Addr(), svc.PID()
	if addr == "" || svc.Secret() == "" || pid == 0 {
		t.Fatalf("Addr %q, PID %d, secret empty %v: want all three", addr, pid, svc.Secret() == "")
	}
	if err := svc.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if svc.Addr() != addr || svc.PID() == pid || svc.PID() == 0 {
		t.Errorf("after Restart: %s pid %d, want %s and a new process", svc.Addr(), svc.PID(), addr)
	}
	if !strings.HasPrefix(svc.Restarted(), "redis-server ") {
		t.Errorf("Restarted() = %q, want it to name redis-server", svc.Restarted())
	}
	if _, ok := svc.CPUTime(); !ok {
		t.Error("CPUTime: not readable")
	}
	if err := svc.Stop(); err != nil || svc.PID() != 0 {
		t.Errorf("Stop: %v, PID %d after", err, svc.PID())
	}
}
