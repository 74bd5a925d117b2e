package compare

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/statelab/statelab/compare/hosts"
	"github.com/statelab/statelab/compare/link"
	"github.com/statelab/statelab/internal/pgserver"
	"github.com/statelab/statelab/internal/store"
)

// openLab opens the run's hosts with Config.Hosts netns; nil otherwise.
func openLab(ctx context.Context, cfg Config) (*hosts.Lab, error) {
	if cfg.Hosts != hosts.Netns {
		return nil, nil
	}
	return hosts.Open(ctx, hosts.Config{Subnet: cfg.HostsSubnet, Logger: cfg.Logger})
}

// openStore opens the shared store; a private PostgreSQL goes on a host of
// its own when the run has hosts.
func openStore(ctx context.Context, cfg Config, lab *hosts.Lab) (*store.Shared, error) {
	var on pgserver.Host // nil: this machine's network stack
	if lab != nil && store.Chosen(cfg.Store, cfg.StoreURL) == store.Postgres && cfg.StoreURL == "" {
		h, err := lab.Host("postgres")
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL: %w", err)
		}
		on = h
	}
	return store.OpenSharedOn(ctx, cfg.Store, cfg.StoreURL, cfg.WorkDir, on)
}

// newLinks returns an empty set of links with the run's latency. With
// hosts, the links listen on the runner's address on the bridge, which
// every host reaches; on 127.0.0.1 otherwise.
func (r *Runner) newLinks() *link.Set {
	if r.lab != nil {
		return link.NewSetOn(r.lab.Addr().String(), r.cfg.Latency, r.cfg.Jitter)
	}
	return link.NewSet(r.cfg.Latency, r.cfg.Jitter)
}

// placeReplicas returns the supervisor's FreeAddr and Start that put each
// replica on a host of its own, named by its ID: a replica keeps its host
// (and its address) across restarts and crashes; a surge restart's
// successor listens on another port of the same host. Both are nil
// without hosts.
func (r *Runner) placeReplicas() (func(string) (string, error), func(string, *exec.Cmd) error) {
	if r.lab == nil {
		return nil, nil
	}
	freeAddr := func(id string) (string, error) {
		h, err := r.lab.Host(id)
		if err != nil {
			return "", err
		}
		return h.FreeAddr()
	}
	start := func(id string, cmd *exec.Cmd) error {
		h, err := r.lab.Host(id)
		if err != nil {
			return err
		}
		return h.Start(cmd)
	}
	return freeAddr, start
}

// hostsArgs are the replicas' extra flags with hosts. Every request
// reaches a replica from its balancer (or the runner's link), whose
// address on the bridge then stands for every user at once, as 127.0.0.1
// does without hosts, where loopback is exempt from the per-address
// sign-in limit; on the bridge the limit is lifted to the same effect.
// The per-account limits still apply.
func (r *Runner) hostsArgs() []string {
	if r.lab == nil {
		return nil
	}
	return []string{"--sign-in-addr-rate", "1e9", "--sign-in-addr-burst", strconv.Itoa(1 << 30)}
}

// closeLab removes the run's hosts, once nothing runs in them.
func (r *Runner) closeLab() {
	if err := r.lab.Close(); err != nil {
		r.cfg.Logger.Warn("hosts left behind; the next run's sweep removes them", "err", err)
	}
}
