package hostcheck_test

import (
	"testing"

	"github.com/statelab/statelab/internal/hostcheck"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		names hostcheck.Names
		host  string
		want  bool
	}{
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "127.0.0.1:8080", true},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "localhost:8080", true},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "LOCALHOST.:8080", true},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "[::1]:8080", true},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "attacker.example:8080", false},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "attacker.example", false},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "localhost:1", false},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "10.0.0.1:8080", false},
		{hostcheck.Names{Addr: "127.0.0.1:8080"}, "", false},
		{hostcheck.Names{Addr: "0.0.0.0:8080"}, "10.0.0.1:8080", true},
		{hostcheck.Names{Addr: ":8080"}, "10.0.0.1:8080", true},
		{hostcheck.Names{Addr: ":8080"}, "attacker.example:8080", false},
		{hostcheck.Names{Addr: "lab.example:8080"}, "LAB.example:8080", true},
		{hostcheck.Names{Addr: "lab.example:8080"}, "attacker.example:8080", false},
		{hostcheck.Names{Addr: "127.0.0.1:80"}, "localhost", true},
		{hostcheck.Names{Addr: "[::ffff:10.0.0.5]:8081"}, "10.0.0.5:8081", true},
		{hostcheck.Names{Addr: "[::ffff:10.0.0.5]:8081"}, "10.0.0.6:8081", false},
		// A replica behind the lab's balancer sees the balancer's Host.
		{hostcheck.Names{Addr: "127.0.0.1:0", Proxied: true}, "127.0.0.1:8081", true},
		{hostcheck.Names{Addr: "127.0.0.1:0", Proxied: true}, "localhost:8081", true},
		{hostcheck.Names{Addr: "127.0.0.1:0", Proxied: true}, "10.0.0.5:8081", true},
		{hostcheck.Names{Addr: "127.0.0.1:0", Proxied: true}, "[fe80::1]:8081", true},
		{hostcheck.Names{Addr: "127.0.0.1:0", Proxied: true}, "attacker.example:8081", false},
		{hostcheck.Names{Addr: "127.0.0.1:0", Proxied: true}, "attacker.example", false},
		{hostcheck.Names{Addr: "127.0.0.1:0", Proxied: true}, "127.0.0.1.attacker.example:8081", false},
		{hostcheck.Names{Addr: "lab.example:5001", Proxied: true}, "lab.example", true},
		{hostcheck.Names{Addr: "not an address", Proxied: true}, "localhost", false},
	}
	for _, tt := range tests {
		if got := tt.names.Allowed(tt.host); got != tt.want {
			t.Errorf("%+v.Allowed(%q) = %v, want %v", tt.names, tt.host, got, tt.want)
		}
	}
}
