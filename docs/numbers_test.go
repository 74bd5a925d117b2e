package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/stateful"
)

// The walkthrough's golden transcript (internal/walkthrough/testdata,
// rewritten by its test's -update flag from a real run) is where the
// lesson's step-by-step numbers come from. The pages that quote them are
// checked against it here, so that a change to the walkthrough that moves
// a number, an answer or the number of predictions fails until the pages
// say the same.
var golden = filepath.Join(root, "internal", "walkthrough", "testdata", "auto.golden")

// transcript is what the pages may quote of the golden transcript.
type transcript struct {
	prompts  int            // "? Predict:" blocks
	asked    int            // the closing line's "Predictions: N asked"
	answers  []string       // each "= Answer: …", in the order the predictions were asked
	deferred int            // predictions left to a run of their own
	more     map[string]int // bytes a GET /api/me with the credential sends more than one with none
	visit    int            // bytes the JWT client sent more than the API key client over a visit
}

var (
	askedRE    = regexp.MustCompile(`Predictions: (\d+) asked`)
	answerRE   = regexp.MustCompile(`(?m)^  = Answer: (.+)\.$`)
	deferredRE = regexp.MustCompile(`(?m)^  = Not answered here`)
	moreRE     = regexp.MustCompile(`(?m)^    (cookie|API key|JWT) +N bytes on the wire, (\d+) more than none`)
	visitRE    = regexp.MustCompile(`the JWT client sent (\d+) bytes more`)
)

func readTranscript(t *testing.T) transcript {
	t.Helper()
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	tr := transcript{prompts: strings.Count(s, "? Predict:"), more: map[string]int{}}
	m := askedRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s has no line %q", golden, "Predictions: N asked")
	}
	tr.asked, _ = strconv.Atoi(m[1])
	for _, m := range answerRE.FindAllStringSubmatch(s, -1) {
		tr.answers = append(tr.answers, m[1])
	}
	tr.deferred = len(deferredRE.FindAllString(s, -1))
	for _, m := range moreRE.FindAllStringSubmatch(s, -1) {
		tr.more[m[1]], _ = strconv.Atoi(m[2])
	}
	if m := visitRE.FindStringSubmatch(s); m != nil {
		tr.visit, _ = strconv.Atoi(m[1])
	}
	if len(tr.more) != 3 || tr.visit == 0 || len(tr.answers) == 0 {
		t.Fatalf("%s: found %d credentials' sizes, visit %d, %d answers: has the transcript's wording changed? Update this test with it",
			golden, len(tr.more), tr.visit, len(tr.answers))
	}
	return tr
}

// words compiles a pattern whose spaces match any run of white space, as
// a Markdown paragraph may break a line anywhere.
func words(pattern string) *regexp.Regexp {
	return regexp.MustCompile(strings.ReplaceAll(pattern, " ", `\s+`))
}

func readPage(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPredictionsMatchTheWalkthrough: the walkthrough counts every
// prediction it asks, and the lesson, the worksheet and its answers have
// one of each, with the answer the walkthrough got.
func TestPredictionsMatchTheWalkthrough(t *testing.T) {
	tr := readTranscript(t)
	if tr.prompts != tr.asked {
		t.Errorf("the transcript asks %d predictions but ends with %q", tr.prompts, "Predictions: "+strconv.Itoa(tr.asked)+" asked")
	}
	if got := len(tr.answers) + tr.deferred; got != tr.asked {
		t.Errorf("the transcript answers %d predictions and leaves %d to a later run; it asked %d", len(tr.answers), tr.deferred, tr.asked)
	}

	rows := func(page string, re *regexp.Regexp) []string {
		var cells []string
		for i, m := range re.FindAllStringSubmatch(readPage(t, page), -1) {
			if m[1] != strconv.Itoa(i+1) {
				t.Errorf("%s: prediction P%s where P%d was expected", page, m[1], i+1)
			}
			cells = append(cells, m[len(m)-1])
		}
		if len(cells) != tr.asked {
			t.Errorf("%s has %d predictions, P1 to P%d; the walkthrough asks %d", page, len(cells), len(cells), tr.asked)
		}
		return cells
	}
	rows("docs/LESSON.md", regexp.MustCompile(`(?m)^\*\*P(\d+) \(`))
	rows("docs/WORKSHEET.md", regexp.MustCompile(`(?m)^\| P(\d+) \|`))
	answers := rows("docs/ANSWERS.md", regexp.MustCompile(`(?m)^\| P(\d+) \| ([^|]+) \|`))
	for i, want := range tr.answers {
		if i >= len(answers) {
			break
		}
		if got := strings.ReplaceAll(answers[i], "`", ""); !strings.Contains(got, want) {
			t.Errorf("docs/ANSWERS.md: P%d's answer is %q; the walkthrough's is %q", i+1, strings.TrimSpace(answers[i]), want)
		}
	}

	m := regexp.MustCompile(`My score: _+ of (\d+)`).FindStringSubmatch(readPage(t, "docs/WORKSHEET.md"))
	if m == nil {
		t.Fatal("docs/WORKSHEET.md: no \"My score: ___ of N\"")
	}
	if m[1] != strconv.Itoa(len(tr.answers)) {
		t.Errorf("docs/WORKSHEET.md scores %s predictions; the walkthrough answers %d", m[1], len(tr.answers))
	}
}

// TestStepFiveNumbersMatchTheWalkthrough: the sizes step 5 measures, as
// the pages quote them ("about"), are the golden transcript's, rounded.
// The transcript masks each request's own size (its Host header holds a
// port), so a page's sizes are checked as differences from the request
// with no credential, which the transcript keeps.
func TestStepFiveNumbersMatchTheWalkthrough(t *testing.T) {
	tr := readTranscript(t)
	near := func(got, want int) bool {
		d := got - want
		if d < 0 {
			d = -d
		}
		return d <= max(10, want/20)
	}
	atoi := func(s string) int {
		n, _ := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		return n
	}

	sizes := words(`about (\d+) bytes with no credential, (\d+) with the cookie, (\d+) with the API key,? and (\d+) with the JWT`)
	for _, page := range []string{"docs/LESSON.md", "docs/ANSWERS.md", "docs/COSTS.md"} {
		ms := sizes.FindAllStringSubmatch(readPage(t, page), -1)
		if len(ms) == 0 {
			t.Errorf("%s does not quote GET /api/me's sizes as %q", page, "about N bytes with no credential, N with the cookie, N with the API key and N with the JWT")
		}
		for _, m := range ms {
			none := atoi(m[1])
			for i, cred := range []string{"cookie", "API key", "JWT"} {
				if got := atoi(m[i+2]) - none; !near(got, tr.more[cred]) {
					t.Errorf("%s: %q puts the %s %d bytes above no credential; the walkthrough measured %d", page, m[0], cred, got, tr.more[cred])
				}
			}
		}
	}

	quotes := []struct {
		page string
		re   *regexp.Regexp
		want int
		what string
	}{
		{"docs/LESSON.md", words(`sends about ([\d,]+) bytes more than the API key client`), tr.visit, "the visit's difference"},
		{"docs/LESSON.md", words(`\(c\): about ([\d,]+) on this lab`), tr.visit, "the visit's difference"},
		{"docs/ANSWERS.md", words(`\| P7 \| [^|]*about ([\d,]+) bytes`), tr.visit, "the visit's difference"},
		{"docs/LESSON.md", words(`JWT's extra ([\d,]+) bytes`), tr.more["JWT"] - tr.more["API key"], "the JWT's bytes above the API key's"},
		{"docs/ANSWERS.md", words(`JWT's extra ([\d,]+) bytes`), tr.more["JWT"] - tr.more["API key"], "the JWT's bytes above the API key's"},
	}
	for _, q := range quotes {
		ms := q.re.FindAllStringSubmatch(readPage(t, q.page), -1)
		if len(ms) == 0 {
			t.Errorf("%s no longer quotes %s as %q: update this test with the page", q.page, q.what, q.re)
		}
		for _, m := range ms {
			if got := atoi(m[1]); !near(got, q.want) {
				t.Errorf("%s: %q: %s is %d in the walkthrough", q.page, m[0], q.what, q.want)
			}
		}
	}
}

// TestSecurityNumbersMatchTheCode: every limit docs/SECURITY.md quotes is
// the constant the code enforces, so that a limit changed in the code (or
// a number changed in the page) fails until both say the same. Each
// sentence is matched with its number left open, and the number read
// there is compared with the constant's.
func TestSecurityNumbersMatchTheCode(t *testing.T) {
	page := readPage(t, "docs/SECURITY.md")
	hours := func(d time.Duration) int { return int(d / time.Hour) }
	seconds := func(d time.Duration) int { return int(d / time.Second) }
	tests := []struct {
		sentence string // spaces match any white space; each (\d[\d,]*) is a number the page gives
		want     []int  // the code's, in the sentence's order
		names    string // the constants, for the message
	}{
		{`an account gets (\d[\d,]*) failures at once, then each further try waits (\d[\d,]*) s, doubling up to (\d[\d,]*) s`,
			[]int{library.SignInFreeFailures, seconds(library.SignInBackoffBase), seconds(library.SignInBackoffMax)},
			"library.SignInFreeFailures, SignInBackoffBase, SignInBackoffMax"},
		{`at most \*\*(\d[\d,]*) failures an hour from clients it does not trust, (\d[\d,]*) in all\*\*`,
			[]int{library.MaxUntrustedSignInFailures, library.MaxSignInFailures},
			"library.MaxUntrustedSignInFailures, MaxSignInFailures"},
		{`trusted (\d[\d,]*) days`, []int{int(api.DeviceTrustTTL / (24 * time.Hour))}, "api.DeviceTrustTTL"},
		{`with (\d[\d,]*) failures an hour of its own`, []int{library.MaxDeviceSignInFailures}, "library.MaxDeviceSignInFailures"},
		{"`title`, `author`, `borrower_name`: (\\d[\\d,]*) bytes, `isbn`: (\\d[\\d,]*)",
			[]int{library.MaxTitleBytes, library.MaxISBNBytes}, "library.MaxTitleBytes, MaxISBNBytes"},
		{`at most (\d[\d,]*) API keys \(the (\d[\d,]*)st revokes the oldest`,
			[]int{library.MaxAPIKeysPerMember, library.MaxAPIKeysPerMember + 1}, "library.MaxAPIKeysPerMember"},
		{`at most (\d[\d,]*) sessions in a memory or redis store \(the (\d[\d,]*)st sign-in ends the oldest`,
			[]int{library.MaxSessionsPerMember, library.MaxSessionsPerMember + 1}, "library.MaxSessionsPerMember"},
		{`at most (\d[\d,]*) in a memory or redis store, and a (\d[\d,]*)st sign-in ends the oldest`,
			[]int{library.MaxSessionsPerMember, library.MaxSessionsPerMember + 1}, "library.MaxSessionsPerMember"},
		{`at most \*\*(\d[\d,]*) books out\*\*`, []int{library.MaxActiveLoans}, "library.MaxActiveLoans"},
		{`the (\d[\d,]*)st copy is refused`, []int{library.MaxActiveLoans + 1}, "library.MaxActiveLoans"},
		{`last \*\*(\d[\d,]*) returned\*\* borrow records`, []int{library.MaxReturnedBorrows}, "library.MaxReturnedBorrows"},
		{`leave (\d[\d,]*) records and (\d[\d,]*) answers`, []int{library.MaxReturnedBorrows, library.MaxStoredReplies},
			"library.MaxReturnedBorrows, MaxStoredReplies"},
		{`\*\*(\d[\d,]*) idempotency keys, at most (\d[\d,]*) MiB\*\* in all`,
			[]int{library.MaxStoredReplies, library.MaxStoredReplyBytes >> 20}, "library.MaxStoredReplies, MaxStoredReplyBytes"},
		{`at most \*\*(\d[\d,]*) hours after the sign-in\*\*`, []int{hours(stateful.CookieLifetime)}, "stateful.CookieLifetime"},
		{`refused \(401 ` + "`session_lost`" + `\) (\d[\d,]*) hours after the sign-in`, []int{hours(stateful.CookieLifetime)}, "stateful.CookieLifetime"},
		{`wrong codes are limited to (\d[\d,]*) a second after (\d[\d,]*), the joins to (\d[\d,]*) a second after (\d[\d,]*), the class to (\d[\d,]*) students`,
			[]int{int(class.GuessRate), class.GuessBurst, int(class.DefaultJoinRate), class.DefaultJoinBurst, class.DefaultMaxStudents},
			"class.GuessRate, GuessBurst, DefaultJoinRate, DefaultJoinBurst, DefaultMaxStudents"},
	}
	// What the page says in words, not digits.
	if caps := []int{library.MaxTitleBytes, library.MaxAuthorBytes, library.MaxBorrowerNameBytes}; caps[1] != caps[0] || caps[2] != caps[0] {
		t.Errorf("docs/SECURITY.md gives title, author and borrower_name one cap; the code: %v", caps)
	}
	if w := library.SignInFailureWindow; hours(w) != 1 || w%time.Hour != 0 {
		t.Errorf("docs/SECURITY.md counts failed sign-ins \"an hour\"; library.SignInFailureWindow is %v", w)
	}
	for _, tt := range tests {
		want := tt.want
		m := words(tt.sentence).FindStringSubmatch(page)
		if m == nil {
			t.Errorf("docs/SECURITY.md no longer says %q (the numbers of %s): say it again, or change this test with the page", tt.sentence, tt.names)
			continue
		}
		for i, w := range want {
			got, err := strconv.Atoi(strings.ReplaceAll(m[i+1], ",", ""))
			if err != nil || got != w {
				t.Errorf("docs/SECURITY.md: %q gives %s where the code (%s) says %d", m[0], m[i+1], tt.names, w)
			}
		}
	}
}
