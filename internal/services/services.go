// Package services starts the programs a session store needs running
// beside the replicas (stateful.Service: redis-server today), each private
// to its caller, through one table from the service to how it starts. The
// runner and perf start a strategy's services here, hand the replicas
// each one's Addr and Secret, and restart, measure and stop them through
// Running, so that a store that needs another program adds one entry here
// and its process package, and nothing that starts replicas changes.
package services

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/statelab/statelab/internal/redisserver"
	"github.com/statelab/statelab/stateful"
)

// Running is one started service. Its address and secret stay the same
// across a Restart, so the replicas keep reaching it.
type Running interface {
	// Addr is the host:port the replicas reach it at.
	Addr() string
	// Secret is the password it wants, "" for none: hand it to a replica
	// through its environment (the service's SecretFlag), never its argv.
	Secret() string
	// Restart ends the process and starts a fresh one holding nothing.
	Restart(ctx context.Context) error
	// Stop ends it; stopping a stopped service does nothing.
	Stop() error
	// PID is the running process's id, 0 when it is stopped.
	PID() int
	// CPUTime is the CPU time every process it started has used; ok is
	// false when a running one's could not be read.
	CPUTime() (total time.Duration, ok bool)
}

// Host is where a service runs: a host of the lab's (package hosts), whose
// address it listens on. A nil Host is this machine's network stack.
type Host interface {
	IP() string
	Start(cmd *exec.Cmd) error
}

// Config is where a service runs.
type Config struct {
	Dir  string // its working directory and log, made private
	Host Host   // nil: 127.0.0.1 and a free port
}

// kind is how one service starts and what a restart does to it.
type kind struct {
	// name is short, for directories and hosts: "redis".
	name string
	// lost says what a restart loses, after the program's name.
	lost  string
	start func(ctx context.Context, cfg Config) (Running, error)
}

// kinds is the table: every stateful.Service a store Needs has its entry.
var kinds = map[stateful.Service]kind{
	stateful.RedisServer: {name: "redis", lost: "restarted without persistence: every session it held is gone", start: startRedis},
}

// Service is a started service: what it is and the process behind it.
type Service struct {
	stateful.Service
	Running
	kind kind
}

// Start starts svc as cfg says and returns once it answers. ctx bounds the
// start, not the service's life: Stop ends it.
func Start(ctx context.Context, svc stateful.Service, cfg Config) (*Service, error) {
	k, ok := kinds[svc]
	if !ok {
		return nil, fmt.Errorf("no way to start %s: internal/services has no entry for it", svc.Program)
	}
	run, err := k.start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", svc.Program, err)
	}
	return &Service{Service: svc, Running: run, kind: k}, nil
}

// Name is svc's short name, for its directory and its host: "redis" for
// redis-server.
func Name(svc stateful.Service) string {
	if k, ok := kinds[svc]; ok {
		return k.name
	}
	return svc.Program
}

// Restarted says what a Restart did to what the service held, for a record
// of the event.
func (s *Service) Restarted() string { return s.Program + " " + s.kind.lost }

// redis is redisserver.Server as a Running.
type redis struct{ *redisserver.Server }

func (r redis) Secret() string { return r.Password() }

func startRedis(ctx context.Context, cfg Config) (Running, error) {
	var on redisserver.Host // nil: this machine's network stack
	if cfg.Host != nil {
		on = cfg.Host
	}
	s, err := redisserver.StartOn(ctx, cfg.Dir, on)
	if err != nil {
		return nil, err
	}
	return redis{s}, nil
}
