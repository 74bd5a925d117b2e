// Package filesd writes the lab's Prometheus targets as a file_sd file.
//
// The runner tells a real Prometheus what to scrape through file-based
// service discovery (file_sd): a JSON file listing target groups, which
// Prometheus re-reads whenever it changes. The runner rewrites it every time
// a side's set of replicas changes, so a replica shows up in Prometheus once
// it is ready and goes away once it has stopped. scripts/prometheus.yml
// reads it.
//
// Labels. Every replica already stamps its own metrics with the constant
// labels server and replica (internal/api), and the runner's per-side
// metrics carry server. The targets carry the same names — role ("runner"
// or "replica") and, for replicas, server and replica — because the series
// Prometheus makes up itself (up, scrape_duration_seconds) and the
// replicas' go_* and process_* metrics have no other way to say which
// process they are about. Prometheus would rename a scraped label that a
// target label of the same name also sets to exported_server, even when
// the two agree; scripts/prometheus.yml therefore scrapes with
// honor_labels: true, so the labels the process exposes win and the target
// labels only fill in where the exposition has none. For a replica the two
// always agree: both come from the ID the supervisor gave it.
package filesd

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/statelab/statelab/compare/supervisor"
)

// TargetGroup is one entry of a Prometheus file_sd file: addresses to
// scrape and the labels Prometheus attaches to what it scrapes from them.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// TargetSide is one side's replicas, as TargetGroups lists them.
type TargetSide struct {
	Strategy string // the side's strategy name
	Server   string // the subcommand its replicas run: stateful or stateless
	Replicas []supervisor.Replica
}

// TargetGroups returns the file_sd target groups for a runner listening on
// runnerAddr (left out when empty) and the replicas in service: the runner
// first, then each side's replicas in the order given. Every process is a
// group of its own, because each carries its own labels. An unspecified
// host (":8080", "0.0.0.0:8080") is given as 127.0.0.1: Prometheus runs on
// this machine, and needs an address it can connect to.
func TargetGroups(runnerAddr string, sides []TargetSide) []TargetGroup {
	var groups []TargetGroup
	if runnerAddr != "" {
		groups = append(groups, TargetGroup{
			Targets: []string{scrapeAddr(runnerAddr)},
			Labels:  map[string]string{"role": "runner"},
		})
	}
	for _, side := range sides {
		for _, rep := range side.Replicas {
			groups = append(groups, TargetGroup{
				Targets: []string{scrapeAddr(rep.Addr)},
				Labels:  map[string]string{"role": "replica", "server": side.Server, "strategy": side.Strategy, "replica": rep.ID},
			})
		}
	}
	return groups
}

// scrapeAddr turns a listening address into one a local client can dial.
func scrapeAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// WriteFileSD replaces the file at path with groups, creating its directory
// when missing. It writes a temporary file in the same directory and renames
// it over path, so Prometheus, which may read the file at any moment, sees
// the old list or the new one, never half of one. The temporary file's name
// ends in .tmp, so a file_sd glob like *.json never picks it up.
func WriteFileSD(path string, groups []TargetGroup) error {
	if groups == nil {
		groups = []TargetGroup{} // an empty list, not null
	}
	b, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("file_sd: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("file_sd: %w", err)
	}
	tmp := f.Name()
	// No fsync: the file is rewritten from the live replica set at every
	// change, so losing the last version in a power cut costs nothing.
	_, err = f.Write(b)
	if err == nil {
		// CreateTemp makes the file 0600; a Prometheus running as its own
		// user (Debian's service does) must be able to read it.
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file_sd: %w", err)
	}
	return nil
}

// Read reads a file_sd file as Prometheus would.
func Read(path string) ([]TargetGroup, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var groups []TargetGroup
	if err := json.Unmarshal(b, &groups); err != nil {
		return nil, fmt.Errorf("%s is not a file_sd list: %w", path, err)
	}
	return groups, nil
}
