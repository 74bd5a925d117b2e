package hosts_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/statelab/statelab/compare/hosts"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"", hosts.Local, ""},
		{"local", hosts.Local, ""},
		{"netns", hosts.Netns, ""},
		{"docker", "", "use local"},
	} {
		got, err := hosts.ParseMode(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, an error with %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseSubnet(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"198.18.7.0/24", ""},
		{"10.99.0.0/16", ""},
		{"198.18.7.8/29", ""},
		{"198.18.7.1/24", "198.18.7.0/24"},
		{"198.18.7.0/30", "/8 to /29"},
		{"10.0.0.0/7", "/8 to /29"},
		{"fd00::/64", "IPv4"},
		{"198.18.7.0", "CIDR"},
	} {
		p, err := hosts.ParseSubnet(tc.in)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseSubnet(%q) = %v, %v; want an error with %q", tc.in, p, err, tc.err)
		}
		if err == nil && p != netip.MustParsePrefix(tc.in) {
			t.Errorf("ParseSubnet(%q) = %v", tc.in, p)
		}
	}
}
