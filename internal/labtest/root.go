package labtest

import (
	"os"
	"runtime"
	"testing"
)

// NeedRoot skips a test that needs Linux and root (network namespaces,
// a bridge, veth pairs), unless CI is set: CI runs as root on Linux, so
// there a test that cannot run has found a broken machine, and fails.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if runtime.GOOS == "linux" && os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s needs Linux and root, and CI has %s with uid %d", why, runtime.GOOS, os.Geteuid())
	}
	t.Skipf("%s needs Linux and root; CI runs it", why)
}
