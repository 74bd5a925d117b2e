//go:build unix

package walkthrough_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/walkthrough"
)

var update = flag.Bool("update", false, "rewrite testdata/auto.golden from this run")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(labtest.Main(m))
}

// statelabBinary builds cmd/statelab once and returns the binary's path.
// The servers run as separate processes, without -race, like in class.
func statelabBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs servers as processes; skipped with -short")
	}
	return labtest.Binary(t)
}

// masks replace what changes from run to run (ports, pids, secrets, times,
// measurements) with placeholders; everything else in the transcript is
// compared as it is.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\S*/statelab-walkthrough-\d+`), "WORKDIR"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`pid \d+`), "pid PID"},
	{regexp.MustCompile(`session_id=[A-Za-z0-9_=-]+…`), "session_id=COOKIE…"},
	{regexp.MustCompile(`statelab_device=[A-Za-z0-9_-]+…`), "statelab_device=DEVICE…"},
	{regexp.MustCompile(`slk_[0-9a-f]+…`), "slk_KEY…"},
	{regexp.MustCompile(`\b[0-9a-f]{16}\b`), "KEYID"},
	{regexp.MustCompile(`[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), "DATE"},
	{regexp.MustCompile(`[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT`), "HTTPDATE"},
	{regexp.MustCompile(`\d+\.\d{3} ms`), "N ms"},
	{regexp.MustCompile(`"(exp|iat)":\d+`), `"$1":N`},
	{regexp.MustCompile(`in \d+ seconds`), "in N seconds"},
	{regexp.MustCompile(`\d+ bytes on the wire`), "N bytes on the wire"},
	// A visit's sizes hold the port's digits; the difference between two
	// clients of one server does not.
	{regexp.MustCompile(`sign-in \d+ bytes \+ (\d+) reads \d+ bytes = \d+ bytes`), "sign-in N bytes + $1 reads N bytes = N bytes"},
	// The claims at the end quote what step 5 measured.
	{regexp.MustCompile(`\d+\.\d µs`), "N µs"},
	{regexp.MustCompile(`\b\d+ B\b`), "N B"},
	{regexp.MustCompile(`\d+ characters`), "N characters"},
	// Which of two microsecond timings is the larger (the cookie's or the
	// JWT's identification) is the machine's to say, run by run.
	{regexp.MustCompile(`(?m)^  (held|did not hold) +(Cost: authentication on every request)$`), "  VERDICT       $2"},
	{regexp.MustCompile(`(?m)^( +)\w+ paid no more than \w+: (API key [0-9N])`), "$1$2"},
}

func mask(s string) string {
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

// stepHeading starts each step's part of the transcript.
var stepHeading = regexp.MustCompile(`(?m)^Step (\d+) of \d+ — `)

// sections splits a transcript into its preamble (key "start") and one
// part per step (keys "step 1" …), so a difference is reported for the
// step it is in.
func sections(s string) (keys []string, parts map[string]string) {
	parts = map[string]string{}
	idx := stepHeading.FindAllStringSubmatchIndex(s, -1)
	prev, key := 0, "start"
	for _, m := range idx {
		keys = append(keys, key)
		parts[key] = s[prev:m[0]]
		prev, key = m[0], "step "+s[m[2]:m[3]]
	}
	keys = append(keys, key)
	parts[key] = s[prev:]
	return keys, parts
}

// firstDifference describes where two texts part, with a few lines of
// each around it.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	around := func(lines []string) string {
		from, to := max(0, i-2), min(len(lines), i+4)
		var b strings.Builder
		for j := from; j < to; j++ {
			mark := "  "
			if j == i {
				mark = "> "
			}
			fmt.Fprintf(&b, "    %s%s\n", mark, lines[j])
		}
		return b.String()
	}
	return fmt.Sprintf("first difference at line %d of the section\n  got:\n%s  want:\n%s", i+1, around(g), around(w))
}

// TestAutoTranscript runs the whole walkthrough as CI and a projector do
// and compares its transcript, step by step, with testdata/auto.golden.
// Run "go test ./internal/walkthrough -run TestAutoTranscript -update"
// after changing the walkthrough on purpose, and read the diff.
func TestAutoTranscript(t *testing.T) {
	bin := statelabBinary(t)
	var out, log bytes.Buffer
	began := time.Now()
	err := walkthrough.Run(t.Context(), walkthrough.Config{
		Binary: bin, Out: &out, Auto: true, Requests: 50, Log: &log,
	})
	t.Logf("walkthrough --auto took %v", time.Since(began).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("Run: %v\ntranscript so far:\n%s\nservers' log:\n%s", err, out.String(), log.String())
	}
	assertProcessesGone(t, out.String())

	got := mask(out.String())
	golden := filepath.Join("testdata", "auto.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", golden)
		return
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	want := string(b)
	gotKeys, gotParts := sections(got)
	wantKeys, wantParts := sections(want)
	if strings.Join(gotKeys, ",") != strings.Join(wantKeys, ",") {
		t.Errorf("sections = %v, want %v", gotKeys, wantKeys)
	}
	for _, k := range wantKeys {
		if gotParts[k] != wantParts[k] {
			t.Errorf("%s of the transcript differs from %s: %s", k, golden, firstDifference(gotParts[k], wantParts[k]))
		}
	}
	if t.Failed() {
		t.Logf("the whole masked transcript:\n%s", got)
	}
}

// assertProcessesGone checks that every server process the transcript
// names has exited: the walkthrough cleans up after itself.
func assertProcessesGone(t *testing.T, transcript string) {
	t.Helper()
	pids := regexp.MustCompile(`pid (\d+)`).FindAllStringSubmatch(transcript, -1)
	if len(pids) == 0 {
		t.Fatal("the transcript names no server process")
	}
	for _, m := range pids {
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("server process %d is still there after Run returned (kill -0: %v)", pid, err)
		}
	}
}

// TestInteractivePredictions answers like a student at a terminal: step
// 4 asks its two predictions before anything is sent, and gets an answer
// that is not one of the choices, a right prediction and a wrong one;
// then Enter, Enter, a right one, Enter, and q at the next question. It
// starts at step 4, so steps 1 to 3 run silently first, and ends with the
// score so far.
func TestInteractivePredictions(t *testing.T) {
	bin := statelabBinary(t)
	var out bytes.Buffer
	in := strings.NewReader("maybe\n5\n9\n\n\n0\n\nq\n")
	err := walkthrough.Run(t.Context(), walkthrough.Config{Binary: bin, Out: &out, In: in, Step: 4})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"Catching up on steps 1 to 3 quietly",
		"Step 4 of 7 — Two replicas behind a round-robin balancer",
		"please answer 0-10 (or q to quit)",
		"= Answer: 5 of 10. You predicted 5 of 10: right.",
		`"code":"session_lost"`,
		"[Enter: the same with the stateless side, q: quit]",
		"= Answer: 10 of 10. You predicted 9 of 10: not this time.",
		"= Answer: 0 of 10. You predicted 0 of 10: right.",
		"Stopped at step 5. Start here again with: statelab walkthrough --step 5",
		"Your score: 2 of 3 predictions right (4 asked, 3 answered).",
		"Stopped the 4 server processes",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the transcript does not contain %q", want)
		}
	}
	for _, unwanted := range []string{"Step 1 of 7", "Step 3 of 7", "Step 6 of 7"} {
		if strings.Contains(s, unwanted) {
			t.Errorf("the transcript contains %q", unwanted)
		}
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", s)
	}
	assertProcessesGone(t, s)
}

func TestRunRejectsAStepThatDoesNotExist(t *testing.T) {
	for _, step := range []int{-1, walkthrough.Steps + 1} {
		err := walkthrough.Run(t.Context(), walkthrough.Config{Binary: "statelab", Step: step})
		if err == nil || !strings.Contains(err.Error(), "there is no step") {
			t.Errorf("Run(Step: %d) = %v, want an error saying there is no such step", step, err)
		}
	}
}
