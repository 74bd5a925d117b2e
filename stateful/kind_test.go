package stateful_test

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/statelab/statelab/stateful"
)

func TestOpenStore(t *testing.T) {
	for _, k := range stateful.StoreKinds() {
		t.Run(k.Name(), func(t *testing.T) {
			// The redis store does not connect until it is used: no
			// redis-server is needed to open one.
			s, err := stateful.OpenStore(k.Name(), stateful.StoreConfig{Key: msKey, Cookie: msOptions, RedisAddr: "127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			if c, ok := s.(io.Closer); ok {
				t.Cleanup(func() { c.Close() })
			}
			// The kind's description, answered by a nil store of the
			// type, is the opened store's.
			if s.Name() != k.Name() || s.Where("r1") != k.Where("r1") || s.Lost("r1") != k.Lost("r1") ||
				s.Shared() != k.Shared() || s.Revocable() != k.Revocable() || !slices.Equal(s.Needs(), k.Needs()) {
				t.Errorf("OpenStore(%q) describes itself otherwise than its kind", k.Name())
			}
			if k.Usage == "" {
				t.Error("no usage line for -sessions")
			}
		})
	}
}

func TestOpenStoreUnknown(t *testing.T) {
	for _, name := range []string{"", "disk", "Redis", " memory"} {
		s, err := stateful.OpenStore(name, stateful.StoreConfig{Key: msKey})
		if err == nil {
			t.Errorf("OpenStore(%q) = %v, want an error", name, s)
			continue
		}
		for _, want := range []string{"unknown session store", "memory, redis, cookie"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("OpenStore(%q) error %q does not say %q", name, err, want)
			}
		}
	}
}

func TestStoreDescriptions(t *testing.T) {
	tests := []struct {
		name              string
		where             string // what Where("r7") says
		lost              string // a part of Lost("r7")
		shared, revocable bool
		needs             []stateful.Service
	}{
		{"memory", "in the memory of replica r7", "replica r7 holds no session", false, true, nil},
		{"redis", "in redis, shared by every replica", "redis holds no session", true, true, []stateful.Service{stateful.RedisServer}},
		{"cookie", "sealed in your cookie; no server holds it", "sealed in it has expired", true, false, nil},
	}
	if got, want := len(tests), len(stateful.StoreKinds()); got != want {
		t.Errorf("the table describes %d stores, the lab has %d", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := stateful.LookupStore(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := k.Where("r7"); got != tt.where {
				t.Errorf("Where: got %q, want %q", got, tt.where)
			}
			if got := k.Lost("r7"); !strings.Contains(got, tt.lost) || !strings.HasSuffix(got, "Log in again.") {
				t.Errorf("Lost: got %q, want it to say %q and end with what to do", got, tt.lost)
			}
			if k.Shared() != tt.shared || k.Revocable() != tt.revocable {
				t.Errorf("Shared, Revocable: got %v, %v, want %v, %v", k.Shared(), k.Revocable(), tt.shared, tt.revocable)
			}
			if got := k.Needs(); !slices.Equal(got, tt.needs) {
				t.Errorf("Needs: got %v, want %v", got, tt.needs)
			}
		})
	}
	if stateful.RedisServer.Program != "redis-server" || stateful.RedisServer.AddrFlag != "redis-addr" {
		t.Errorf("RedisServer = %+v: the program and the flag the replicas take", stateful.RedisServer)
	}
}
