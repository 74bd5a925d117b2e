// Package privfile opens the files the lab writes for the one running it
// (the replicas' and the services' logs), which can hold what a server
// logged about a request: readable by their owner alone.
package privfile

import "os"

// Open opens path for writing with flag (os.O_APPEND or os.O_TRUNC, say),
// creating it 0600; a file an older run left with a wider mode is
// tightened to 0600 too, whatever the umask.
func Open(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
