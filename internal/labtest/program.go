package labtest

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// NeedProgram returns the path lookPath finds for an outside program the
// test needs (redis-server, chromium, ...). Without it the test is skipped
// on a developer's machine, and fails under CI (CI set), where .ci/run
// installs every program the tests need: a silent skip there would pass a
// test that never ran.
func NeedProgram(t testing.TB, name string, lookPath func() (string, error)) string {
	t.Helper()
	path, err := lookPath()
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is needed and missing under CI: %v", name, err)
	}
	t.Skipf("%s is not installed (%v); CI installs it", name, err)
	return ""
}

// LookChromium finds a Chromium the browser tests can drive: on PATH under
// one of its usual names, or where Debian's package puts it.
func LookChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	return "", errors.New("chromium not found (Debian/Ubuntu: sudo apt-get install chromium)")
}

// Chromium returns the browser for a test, under NeedProgram's rules.
func Chromium(t testing.TB) string {
	t.Helper()
	return NeedProgram(t, "chromium", LookChromium)
}
