//go:build !linux

package hosts

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"runtime"
)

type labSys struct{}

type hostSys struct{}

// errUnsupported is every answer here: network namespaces are Linux's.
var errUnsupported = errors.New("--hosts netns needs Linux (network namespaces), and this is " + runtime.GOOS + "; use --hosts local")

// Open fails: there are no network namespaces outside Linux.
func Open(context.Context, Config) (*Lab, error) { return nil, errUnsupported }

// Sweep has nothing to remove outside Linux.
func Sweep(string) ([]string, error) { return nil, nil }

// Host fails outside Linux.
func (l *Lab) Host(string) (*Host, error) { return nil, errUnsupported }

// Close has nothing to remove outside Linux.
func (l *Lab) Close() error { return nil }

// Do fails outside Linux.
func (h *Host) Do(func() error) error { return errUnsupported }

// Listen fails outside Linux.
func (h *Host) Listen(string, string) (net.Listener, error) { return nil, errUnsupported }

// DialContext fails outside Linux.
func (h *Host) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, errUnsupported
}

// Start fails outside Linux.
func (h *Host) Start(*exec.Cmd) error { return errUnsupported }

// FreeAddr fails outside Linux.
func (h *Host) FreeAddr() (string, error) { return "", errUnsupported }
