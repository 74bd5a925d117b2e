package walkthrough

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// width is the column at which paragraphs are wrapped: narrow enough for
// an 80-column SSH terminal with room for the indent.
const width = 78

// errQuit is returned by a prompt when the student typed q.
var errQuit = errors.New("the student quit")

// term is the walkthrough's side of the terminal: what it prints, and the
// answers it reads. It knows nothing of HTTP.
type term struct {
	out   io.Writer
	color bool
	auto  bool // no pauses, no questions answered
	quiet bool // catching up on steps before Config.Step: print and ask nothing

	lines <-chan string // the student's input, a line at a time; closed at EOF
	eof   bool          // input ended: carry on as in auto mode

	posed        int // predictions asked, every one, whoever answers them
	deferred     int // of those, how many a later run answers (later): not scored here
	asked, right int // predictions answered here that the student answered, and got right
	guessedLater int // predictions answered later that the student answered
}

// newTerm starts reading in, if any, a line at a time until stop is closed.
func newTerm(out io.Writer, in io.Reader, color, auto bool, stop <-chan struct{}) *term {
	t := &term{out: out, color: color, auto: auto}
	lines := make(chan string)
	t.lines = lines
	if in == nil || auto {
		close(lines)
		t.eof = true
		return t
	}
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
				return
			}
		}
	}()
	return t
}

// ANSI styles, used only when color is on.
const (
	styleBold   = "1"
	styleDim    = "2"
	styleRed    = "31"
	styleGreen  = "32"
	styleYellow = "33"
	styleCyan   = "36"
	styleTitle  = "1;36"
)

func (t *term) paint(style, s string) string {
	if !t.color || s == "" {
		return s
	}
	return "\x1b[" + style + "m" + s + "\x1b[0m"
}

func (t *term) printf(format string, args ...any) {
	if t.quiet {
		return
	}
	fmt.Fprintf(t.out, format, args...)
}

// line prints one line as it is.
func (t *term) line(s string) { t.printf("%s\n", s) }

// blank prints an empty line.
func (t *term) blank() { t.printf("\n") }

// para prints a paragraph wrapped at width, indented by two spaces, and
// followed by an empty line.
func (t *term) para(text string) {
	t.text(text)
	t.blank()
}

// bullet prints one item of a list, wrapped, with its continuation lines
// under its first word.
func (t *term) bullet(text string) {
	for i, l := range wrap(text, width-6) {
		prefix := "    - "
		if i > 0 {
			prefix = "      "
		}
		t.line(prefix + l)
	}
}

// text prints text wrapped at width, indented by two spaces.
func (t *term) text(text string) {
	for _, l := range wrap(text, width-2) {
		t.line("  " + l)
	}
}

// note prints an indented, wrapped paragraph in the dim style, for asides.
func (t *term) note(text string) {
	for _, l := range wrap(text, width-4) {
		t.line("    " + t.paint(styleDim, l))
	}
	t.blank()
}

// heading prints a step's title, underlined.
func (t *term) heading(n, of int, title string) {
	h := fmt.Sprintf("Step %d of %d — %s", n, of, title)
	t.blank()
	t.line(t.paint(styleTitle, h))
	t.line(t.paint(styleTitle, strings.Repeat("=", utf8.RuneCountInString(h))))
	t.blank()
}

// wrap breaks text into lines of at most n runes, at spaces. A word longer
// than n gets a line of its own.
func wrap(text string, n int) []string {
	var lines []string
	var cur strings.Builder
	curLen := 0
	for _, word := range strings.Fields(text) {
		wl := utf8.RuneCountInString(word)
		if curLen > 0 && curLen+1+wl > n {
			lines = append(lines, cur.String())
			cur.Reset()
			curLen = 0
		}
		if curLen > 0 {
			cur.WriteByte(' ')
			curLen++
		}
		cur.WriteString(word)
		curLen += wl
	}
	if curLen > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// read waits for the student's next line. ok is false when there is no
// more input; from then on the walkthrough runs as in auto mode.
func (t *term) read(ctx context.Context) (line string, ok bool, err error) {
	if t.eof {
		return "", false, nil
	}
	select {
	case <-ctx.Done():
		return "", false, ctx.Err()
	case l, more := <-t.lines:
		if !more {
			t.eof = true
			t.printf("\n")
			return "", false, nil
		}
		return strings.TrimSpace(l), true, nil
	}
}

// interactive reports whether the walkthrough waits for the student now.
func (t *term) interactive() bool { return !t.auto && !t.quiet && !t.eof }

// pause waits for Enter, unless nobody is there to press it.
func (t *term) pause(ctx context.Context, what string) error {
	if !t.interactive() {
		return nil
	}
	t.printf("%s", t.paint(styleDim, fmt.Sprintf("  [Enter: %s, q: quit] ", what)))
	l, _, err := t.read(ctx)
	if err != nil {
		return err
	}
	if strings.EqualFold(l, "q") || strings.EqualFold(l, "quit") {
		return errQuit
	}
	t.blank()
	return nil
}

// score says how the student's predictions went; in auto mode, that
// nobody answered them.
func (t *term) score() string {
	switch {
	case t.posed == 0:
		return ""
	case t.auto:
		return fmt.Sprintf("Predictions: %d asked, none answered (--auto). In class, ask them aloud before each "+
			"exchange; run statelab walkthrough without --auto to answer them at the prompt and get a score.", t.posed)
	case t.asked == 0:
		return fmt.Sprintf("Predictions: %d asked, none answered.", t.posed)
	}
	sc := fmt.Sprintf("Your score: %d of %d predictions right (%d asked, %d answered).", t.right, t.asked, t.posed, t.asked+t.guessedLater)
	switch {
	case t.deferred == 1:
		sc += " One more waits for a run of its own to answer it."
	case t.deferred > 1:
		sc += fmt.Sprintf(" %d more wait for runs of their own to answer them.", t.deferred)
	}
	return sc
}

// prediction is a question asked before an exchange and answered by it.
type prediction struct {
	choices map[string]string // the answers accepted, and how each is said in full
	guess   string            // the student's answer; "" when none was given
}

// predict asks a question before the exchange that answers it. prompt
// names the choices, e.g. "[y/n]".
func (t *term) predict(ctx context.Context, question, prompt string, choices map[string]string) (*prediction, error) {
	p := &prediction{choices: choices}
	if t.quiet {
		return p, nil
	}
	t.posed++
	t.line(t.paint(styleYellow, "  ? Predict:"))
	for _, l := range wrap(question+" "+prompt, width-4) {
		t.line("    " + t.paint(styleBold, l))
	}
	for t.interactive() {
		t.printf("    your answer: ")
		l, ok, err := t.read(ctx)
		if err != nil {
			return p, err
		}
		if !ok {
			break
		}
		l = strings.ToLower(l)
		if l == "q" || l == "quit" {
			return p, errQuit
		}
		if l == "yes" || l == "no" {
			l = l[:1]
		}
		if _, valid := choices[l]; valid {
			p.guess = l
			break
		}
		t.line("    " + t.paint(styleDim, "please answer "+strings.Trim(prompt, "[]")+" (or q to quit)"))
	}
	if p.guess == "" {
		t.line("    " + t.paint(styleDim, "(no answer taken: watch what happens)"))
	}
	t.blank()
	return p, nil
}

// later closes a prediction that this walkthrough cannot answer from an
// exchange of its own: it says what the student predicted and where the
// answer will be measured. It was asked all the same, so it counts among
// the predictions asked, but neither as right nor as wrong.
func (t *term) later(p *prediction, where string) {
	if t.quiet {
		return
	}
	t.deferred++
	verdict := "Not answered here: "
	if p.guess != "" {
		t.guessedLater++
		verdict = "You predicted " + p.choices[p.guess] + "; "
	}
	t.line("  " + t.paint(styleBold, "= "+verdict+"check it when you run it."))
	t.note(strings.ToUpper(where[:1]) + where[1:])
}

// reveal tells what really happened (got, one of the choices), whether the
// student predicted it, and why. want is what the lab is built to show;
// when got differs, the walkthrough says so instead of explaining an
// outcome that did not happen.
func (t *term) reveal(p *prediction, got, want, why string) {
	if t.quiet {
		return
	}
	verdict := "Answer: " + p.choices[got] + "."
	style := styleBold
	if p.guess != "" {
		t.asked++
		if p.guess == got {
			t.right++
			verdict += " You predicted " + p.choices[p.guess] + ": right."
			style = styleGreen
		} else {
			verdict += " You predicted " + p.choices[p.guess] + ": not this time."
			style = styleRed
		}
	}
	t.line("  " + t.paint(style, "= "+verdict))
	if got != want {
		t.note("This is not what the lab is built to show (" + p.choices[want] + "). Something in this run " +
			"behaves differently from the lesson: run again with --verbose to see the servers' logs.")
		return
	}
	t.note(why)
}
