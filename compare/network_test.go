//go:build linux

package compare_test

import (
	"testing"
	"time"

	"github.com/statelab/statelab/compare/report"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/redisserver"
)

// TestNetworkScenario runs the network scenario short, as `statelab
// compare --scenario network` does, and reads from report.json what the
// class is to see: with every hop a link of latency D, the redis side's
// authenticated reads pay at least one more round trip (2·D) than the jwt
// side's, and the replicas' own counts say why: a redis session calls
// redis-server on every request, a JWT calls no shared service.
func TestNetworkScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statelab and runs a 12-second comparison through links")
	}
	bin := labtest.Binary(t)
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)

	r := rtStartRunner(t, bin, "--scenario", "network", "--duration", "12s", "--users", "8")
	select {
	case <-r.exited:
	case <-time.After(90 * time.Second):
		t.Fatal("the runner did not finish within 90s")
	}
	if r.err != nil {
		t.Fatalf("the runner failed: %v\n%s", r.err, r.out)
	}
	rep := rtReadReport(t, r.report)
	const d = 1.0 // ms, the scenario's latency
	if want := (report.Network{Hosts: report.HostsLocal, LatencyMS: d}); rep.Network != want {
		t.Errorf("report.json network = %+v, want %+v", rep.Network, want)
	}
	redis, jwt := rep.Sides["redis"], rep.Sides["jwt"]
	if redis.Requests == 0 || jwt.Requests == 0 {
		t.Fatalf("sides %v: want redis and jwt, both with requests", rep.SideOrder)
	}
	for _, name := range rep.SideOrder {
		s := rep.Sides[name]
		if len(s.Replicas) != 2 {
			t.Errorf("%s: replicas %+v, want the scenario's 2", name, s.Replicas)
		}
		for _, rp := range s.Replicas {
			if rp.Name == "" || rp.Addr == "" || rp.Link == "" || rp.Link == rp.Addr {
				t.Errorf("%s: replica %+v: want a name, an address and a link of its own", name, rp)
			}
		}
		if s.Errors5xx != 0 || s.ConnErrors != 0 {
			t.Errorf("%s: %d 5xx, %d connection errors through the links; want none", name, s.Errors5xx, s.ConnErrors)
		}
	}
	rp50, jp50 := redis.Costs.ReadLatencyMS.P50, jwt.Costs.ReadLatencyMS.P50
	t.Logf("authenticated read p50: redis %.2f ms, jwt %.2f ms; shared-service round trips per request: redis %.2f, jwt %.2f",
		rp50, jp50, redis.Costs.SharedRoundTripsPerRequest, jwt.Costs.SharedRoundTripsPerRequest)
	if redis.Costs.Reads == 0 || jwt.Costs.Reads == 0 {
		t.Fatalf("authenticated reads: redis %d, jwt %d; want some on both", redis.Costs.Reads, jwt.Costs.Reads)
	}
	if rp50-jp50 < 2*d {
		t.Errorf("authenticated read p50: redis %.2f ms, jwt %.2f ms; want redis at least one round trip (%.0f ms) above", rp50, jp50, 2*d)
	}
	if jwt.Costs.SharedRoundTrips != 0 || jwt.Costs.SharedRoundTripsPerRequest != 0 {
		t.Errorf("jwt: %d shared-service round trips (%.2f per request); want none", jwt.Costs.SharedRoundTrips, jwt.Costs.SharedRoundTripsPerRequest)
	}
	if redis.Costs.Identifications == 0 || redis.Costs.SharedRoundTripsPerRequest < 1 {
		t.Errorf("redis: %.2f shared-service round trips per request over %d identified; want 1 or more",
			redis.Costs.SharedRoundTripsPerRequest, redis.Costs.Identifications)
	}
}
