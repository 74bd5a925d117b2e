// Package link puts a network between the lab's processes: each Link is a
// TCP proxy on 127.0.0.1 (Shopify's Toxiproxy, embedded, with a latency
// toxic of its own that counts in microseconds) that holds the bytes for a
// latency in each direction, so any round trip across it costs
// twice the latency. On loopback every hop is otherwise free, and the
// strategies that pay a round trip per request look as cheap as those
// that pay none.
//
// The runner puts a Link between each balancer and each of its replicas,
// and between the replicas and each shared service (redis-server,
// PostgreSQL). A Set keeps the links of one run by the address they lead
// to. With the processes on hosts of their own (--hosts netns, package
// hosts), the links listen on the runner's address on the lab's bridge
// instead (NewSetOn), which every host reaches.
package link

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// MaxLatency is the longest one-way latency a link accepts.
const MaxLatency = 10 * time.Second

// Validate checks a one-way latency and its jitter: whole microseconds
// (0.5ms, a hop inside one data centre, is fine), at most MaxLatency, and
// a jitter no larger than the latency, so no byte is held for less than 0.
func Validate(latency, jitter time.Duration) error {
	if latency < 0 || latency > MaxLatency || latency%time.Microsecond != 0 {
		return fmt.Errorf("latency is %s; use whole microseconds from 0 to %s (e.g. 500us, 2ms)", latency, MaxLatency)
	}
	if jitter < 0 || jitter > latency || jitter%time.Microsecond != 0 {
		return fmt.Errorf("jitter is %s; use whole microseconds from 0 to the latency (%s)", jitter, latency)
	}
	return nil
}

// Link is one TCP proxy (on 127.0.0.1, or the IP given to NewSetOn) to
// an upstream address, holding what crosses it for the latency (± jitter)
// in each direction.
type Link struct {
	proxy    *toxiproxy.Proxy
	upstream string
}

// Addr is the host:port to dial instead of the upstream.
func (l *Link) Addr() string { return l.proxy.Listen }

// Upstream is the host:port the link leads to.
func (l *Link) Upstream() string { return l.upstream }

// Close stops listening and cuts every connection across the link.
func (l *Link) Close() { l.proxy.Stop() }

// Set is the links of one run, by the upstream address they lead to, all
// with one latency and jitter.
type Set struct {
	latency, jitter time.Duration
	listen          string // the IP every link listens on
	server          *toxiproxy.ApiServer

	mu     sync.Mutex
	links  map[string]*Link
	closed bool
}

// NewSet returns an empty set whose links will hold bytes for latency ±
// jitter each way. Validate them first.
func NewSet(latency, jitter time.Duration) *Set {
	return NewSetOn("127.0.0.1", latency, jitter)
}

// NewSetOn is NewSet with the links listening on ip instead of 127.0.0.1:
// with the lab's processes on hosts of their own (package hosts), the
// runner's address on the lab's bridge, which every host reaches. A link
// still dials its upstream from the runner's own network stack.
func NewSetOn(ip string, latency, jitter time.Duration) *Set {
	return &Set{
		latency: latency, jitter: jitter, listen: ip,
		// Toxiproxy's proxies report to an API server; this one is
		// never served, and its metrics go to a registry nobody reads.
		server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		links:  map[string]*Link{},
	}
}

// Latency is the one-way latency of the set's links.
func (s *Set) Latency() time.Duration { return s.latency }

// Jitter is the jitter of the set's links.
func (s *Set) Jitter() time.Duration { return s.jitter }

// To returns the address of the link to upstream, opening it if there is
// none yet.
func (s *Set) To(upstream string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("link set closed")
	}
	if l, ok := s.links[upstream]; ok {
		return l.Addr(), nil
	}
	l, err := s.open(upstream)
	if err != nil {
		return "", err
	}
	s.links[upstream] = l
	return l.Addr(), nil
}

// Lookup returns the address of the link to upstream, if there is one.
func (s *Set) Lookup(upstream string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[upstream]
	if !ok {
		return "", false
	}
	return l.Addr(), true
}

// Upstreams returns the addresses the set's links lead to.
func (s *Set) Upstreams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.links))
	for u := range s.links {
		out = append(out, u)
	}
	return out
}

// Remove closes the link to upstream, if there is one.
func (s *Set) Remove(upstream string) {
	s.mu.Lock()
	l, ok := s.links[upstream]
	delete(s.links, upstream)
	s.mu.Unlock()
	if ok {
		l.Close()
	}
}

// Close closes every link; To fails afterwards.
func (s *Set) Close() {
	s.mu.Lock()
	links := s.links
	s.links, s.closed = map[string]*Link{}, true
	s.mu.Unlock()
	for _, l := range links {
		l.Close()
	}
}

func (s *Set) open(upstream string) (*Link, error) {
	name := "link-" + strings.NewReplacer(":", "-", "[", "", "]", "").Replace(upstream)
	p := toxiproxy.NewProxy(s.server, name, net.JoinHostPort(s.listen, "0"), upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("link to %s: %w", upstream, err)
	}
	l := &Link{proxy: p, upstream: upstream}
	for _, dir := range []string{"upstream", "downstream"} {
		body, err := json.Marshal(map[string]any{
			"name": "latency_" + dir, "type": toxicType, "stream": dir, "toxicity": 1.0,
			"attributes": map[string]int64{"latency_us": s.latency.Microseconds(), "jitter_us": s.jitter.Microseconds()},
		})
		if err != nil {
			l.Close()
			return nil, err
		}
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(string(body))); err != nil {
			l.Close()
			return nil, fmt.Errorf("link to %s: latency %s: %w", upstream, dir, err)
		}
	}
	return l, nil
}
