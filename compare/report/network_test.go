package report_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/statelab/statelab/compare/report"
)

// TestNetworkOnHosts checks what a run with --hosts netns says of its
// network: report.json's network.hosts and network.subnet, and the
// sentence of report.md and the terminal.
func TestNetworkOnHosts(t *testing.T) {
	for _, tc := range []struct {
		n        report.Network
		json     string
		sentence []string
	}{
		{report.Network{Hosts: report.HostsLocal}, `{"hosts":"local","latency_ms":0,"jitter_ms":0}`,
			[]string{"every process on this machine, over loopback", "no delay"}},
		{report.Network{Hosts: report.HostsNetns, Subnet: "198.18.7.0/24"}, `{"hosts":"netns","subnet":"198.18.7.0/24","latency_ms":0,"jitter_ms":0}`,
			[]string{"network namespace of its own", "its own address in 198.18.7.0/24", "no delay"}},
		{report.Network{Hosts: report.HostsNetns, Subnet: "198.18.7.0/24", LatencyMS: 1}, `{"hosts":"netns","subnet":"198.18.7.0/24","latency_ms":1,"jitter_ms":0}`,
			[]string{"its own address in 198.18.7.0/24", "holds the bytes 1 ms each way", "costs 2 ms"}},
	} {
		b, err := json.Marshal(tc.n)
		if err != nil || string(b) != tc.json {
			t.Errorf("json of %+v = %s, %v; want %s", tc.n, b, err, tc.json)
		}
		for _, want := range tc.sentence {
			if !strings.Contains(tc.n.String(), want) {
				t.Errorf("%+v says %q; want %q in it", tc.n, tc.n.String(), want)
			}
		}
	}
}
