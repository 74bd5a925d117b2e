package link_test

import (
	"bufio"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/link"
)

// echo serves one line back per line received, until the listener closes.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line and waits for it back, on an open connection.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func TestRoundTripCostsTwiceTheLatency(t *testing.T) {
	for _, d := range []time.Duration{20 * time.Millisecond, 700 * time.Microsecond} {
		t.Run(d.String(), func(t *testing.T) { testRoundTrip(t, d) })
	}
}

// testRoundTrip checks that a round trip across a link of latency d takes
// at least 2·d; under a millisecond too, where a link that rounded to whole
// milliseconds would hold nothing.
func testRoundTrip(t *testing.T, d time.Duration) {
	up := echo(t)
	s := link.NewSet(d, 0)
	defer s.Close()
	addr, err := s.To(up)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.To(up); again != addr {
		t.Errorf("second To(%s) = %s, want the same link %s", up, again, addr)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := range 3 {
		if got := roundTrip(t, c, r); got < 2*d {
			t.Errorf("round trip %d took %s, want at least %s (2·latency)", i, got, 2*d)
		}
	}
}

func TestRemoveAndClose(t *testing.T) {
	up := echo(t)
	s := link.NewSet(time.Millisecond, 0)
	addr, err := s.To(up)
	if err != nil {
		t.Fatal(err)
	}
	s.Remove(up)
	if _, ok := s.Lookup(up); ok {
		t.Errorf("Lookup(%s) after Remove found a link", up)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("dial %s after Remove: connected, want refused", addr)
	}
	if _, err := s.To(up); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(s.Upstreams()) != 0 {
		t.Errorf("Upstreams after Close = %v, want none", s.Upstreams())
	}
	if _, err := s.To(up); err == nil {
		t.Error("To after Close: no error")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		latency, jitter time.Duration
		ok              bool
	}{
		{0, 0, true},
		{time.Millisecond, 0, true},
		{20 * time.Millisecond, 5 * time.Millisecond, true},
		{500 * time.Microsecond, 0, true},
		{500 * time.Microsecond, 100 * time.Microsecond, true},
		{1500 * time.Nanosecond, 0, false},
		{-time.Millisecond, 0, false},
		{time.Millisecond, 2 * time.Millisecond, false},
		{link.MaxLatency + time.Millisecond, 0, false},
	} {
		if err := link.Validate(tc.latency, tc.jitter); (err == nil) != tc.ok {
			t.Errorf("Validate(%s, %s) = %v, want ok %v", tc.latency, tc.jitter, err, tc.ok)
		}
	}
}

// TestNewSetOn checks that a set's links listen on the IP given, where the
// hosts of --hosts netns reach the runner, and still lead to their
// upstream. 127.0.0.2 is a loopback address of its own on Linux.
func TestNewSetOn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("127.0.0.2 answers on Linux only")
	}
	up := echo(t)
	s := link.NewSetOn("127.0.0.2", time.Millisecond, 0)
	defer s.Close()
	addr, err := s.To(up)
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.2" {
		t.Errorf("link at %s, want one on 127.0.0.2", addr)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := roundTrip(t, c, bufio.NewReader(c)); got < 2*time.Millisecond {
		t.Errorf("round trip took %s, want at least 2ms", got)
	}
}
