package labtest

import (
	"os"
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
