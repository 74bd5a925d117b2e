//go:build linux

package compare_test

import (
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/hosts"
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

// TestNetworkScenarioOnHosts runs the network scenario, shorter still,
// with --hosts netns: every replica, balancer and redis-server on a
// network namespace of its own. From report.json: the run says netns and
// its subnet; every replica listens on an address of its own in it (an
// address no other namespace has, so the process was in its own), reached
// through a link on the runner's address; the users' requests succeed over
// the bridge, the redis side still pays its round trips and the jwt side
// none; and once the runner has exited, no namespace, veth or bridge of
// its is left.
func TestNetworkScenarioOnHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statelab and runs an 8-second comparison on network namespaces")
	}
	labtest.NeedRoot(t, "--hosts netns")
	bin := labtest.Binary(t)
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)

	r := rtStartRunner(t, bin, "--scenario", "network", "--duration", "8s", "--users", "6", "--hosts", "netns", "--latency", "1ms")
	select {
	case <-r.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("the runner did not finish within 60s")
	}
	if r.err != nil {
		t.Fatalf("the runner failed: %v\n%s", r.err, r.out)
	}
	if left := hostsLeftBehind(t, r.cmd.Process.Pid); len(left) > 0 {
		t.Errorf("after the run: %v left behind", left)
	}
	rep := rtReadReport(t, r.report)
	subnet, err := netip.ParsePrefix(rep.Network.Subnet)
	if err != nil || rep.Network.Hosts != report.HostsNetns || rep.Network.LatencyMS != 1 || !hosts.DefaultRange.Overlaps(subnet) {
		t.Fatalf("report.json network = %+v; want hosts netns, 1 ms, a subnet inside %s", rep.Network, hosts.DefaultRange)
	}
	runner := subnet.Addr().Next() // the first address is the runner's, on the bridge
	seen := map[netip.Addr]string{}
	for _, name := range rep.SideOrder {
		s := rep.Sides[name]
		if s.Requests == 0 || s.Errors5xx != 0 || s.ConnErrors != 0 {
			t.Errorf("%s: %d requests, %d 5xx, %d connection errors over the bridge; want requests and no failures", name, s.Requests, s.Errors5xx, s.ConnErrors)
		}
		if len(s.Replicas) != 2 {
			t.Errorf("%s: replicas %+v, want the scenario's 2", name, s.Replicas)
		}
		for _, rp := range s.Replicas {
			addr, err1 := netip.ParseAddrPort(rp.Addr)
			link, err2 := netip.ParseAddrPort(rp.Link)
			if err1 != nil || err2 != nil || !subnet.Contains(addr.Addr()) || addr.Addr() == runner || link.Addr() != runner {
				t.Errorf("%s: replica %+v: want an address of its own in %s, and a link on the runner's %s", name, rp, subnet, runner)
				continue
			}
			if other, ok := seen[addr.Addr()]; ok {
				t.Errorf("replicas %s and %s share the address %s", other, rp.Name, addr.Addr())
			}
			seen[addr.Addr()] = rp.Name
		}
	}
	balancers := 0
	for line := range strings.Lines(r.out.String()) {
		_, url, ok := strings.Cut(line, " balancer http://")
		if !ok {
			continue
		}
		host, _, _ := strings.Cut(url, " ")
		if ap, err := netip.ParseAddrPort(host); err != nil || !subnet.Contains(ap.Addr()) || seen[ap.Addr()] != "" || ap.Addr() == runner {
			t.Errorf("balancer at %s: want an address of its own in %s", host, subnet)
		}
		balancers++
	}
	if balancers != 2 {
		t.Errorf("the runner's output names %d balancers, want 2:\n%s", balancers, r.out)
	}
	redis, jwt := rep.Sides["redis"].Costs, rep.Sides["jwt"].Costs
	if jwt.SharedRoundTrips != 0 || redis.SharedRoundTripsPerRequest < 1 {
		t.Errorf("shared-service round trips per request: redis %.2f, jwt %.2f (%d); want redis 1 or more, jwt none",
			redis.SharedRoundTripsPerRequest, jwt.SharedRoundTripsPerRequest, jwt.SharedRoundTrips)
	}
	t.Logf("authenticated read p50 on hosts: redis %.2f ms, jwt %.2f ms", redis.ReadLatencyMS.P50, jwt.ReadLatencyMS.P50)
	if redis.ReadLatencyMS.P50-jwt.ReadLatencyMS.P50 < 2 {
		t.Errorf("authenticated read p50: redis %.2f ms, jwt %.2f ms; want redis at least one round trip (2 ms) above", redis.ReadLatencyMS.P50, jwt.ReadLatencyMS.P50)
	}
}

// hostsLeftBehind lists the network namespaces and links named after the
// runner with pid.
func hostsLeftBehind(t *testing.T, pid int) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	name := hosts.DefaultPrefix + strconv.Itoa(pid)
	var left []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			left = append(left, "netns "+e.Name())
		}
	}
	links, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name() == name || strings.HasPrefix(l.Name(), name+"-") {
			left = append(left, "link "+l.Name())
		}
	}
	return left
}
