package docs_test

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The README is a front page: what the lab teaches, one picture, two
// commands, what each needs, and links to the reference in docs/. A page
// that grows past this is reference that belongs in docs/.
const maxReadmeLines = 220

// root is the repository's root: go test runs in the package's directory.
const root = ".."

// A link is one Markdown link or image, [text](target), found outside code.
type link struct {
	file   string // the linking file, relative to root
	line   int
	text   string // the link as written, for messages
	target string
}

// A page is what the test reads of one Markdown file.
type page struct {
	lines   int
	links   []link
	anchors map[string]bool // GitHub's heading ids
}

var (
	// linkRE matches [text](target) and ![alt](target), with an optional
	// "title" after the target. Nested brackets in the text are not
	// supported; the pages do not use them.
	linkRE = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// headingRE matches an ATX heading and captures its text without the
	// optional closing hashes.
	headingRE = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	codeRE    = regexp.MustCompile("`+[^`]*`+")
	fenceRE   = regexp.MustCompile("^ {0,3}(```+|~~~+)")
	lineRE    = regexp.MustCompile(`^L\d+(-L\d+)?$`)
)

// slug returns the id GitHub gives a heading: the heading's text in lower
// case, every character that is not a letter, a digit, a mark, a space, a
// hyphen or an underscore dropped, and each space turned into a hyphen.
// Inline code keeps its text, a link keeps its text.
func slug(heading string) string {
	heading = linkRE.ReplaceAllStringFunc(heading, func(m string) string {
		return m[strings.Index(m, "[")+1 : strings.Index(m, "]")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for _, tt := range []struct {
		heading, want string
	}{
		{"Security", "security"},
		{"Scalability you can see: `make capacity`", "scalability-you-can-see-make-capacity"},
		{"Which one should I use? The strategy matrix", "which-one-should-i-use-the-strategy-matrix"},
		{"Routes, answers and error codes", "routes-answers-and-error-codes"},
		{"Retry-safe writes: `Idempotency-Key`", "retry-safe-writes-idempotency-key"},
		{"Chaos: a crash costs a stateless user nothing", "chaos-a-crash-costs-a-stateless-user-nothing"},
		{"snake_case and [a link](x.md)", "snake_case-and-a-link"},
		{"Größe × 2", "größe--2"},
	} {
		if got := slug(tt.heading); got != tt.want {
			t.Errorf("slug(%q): got %q, want %q", tt.heading, got, tt.want)
		}
	}
}

// read parses the Markdown file at rel (relative to root): its links and
// headings outside fenced code blocks and inline code.
func read(t *testing.T, rel string) page {
	t.Helper()
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	defer f.Close()
	p := page{anchors: map[string]bool{}}
	seen := map[string]int{} // slug → how many headings had it, for GitHub's -1, -2 suffixes
	fence := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		p.lines++
		line := sc.Text()
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
			case strings.HasPrefix(m[1], fence[:1]) && len(m[1]) >= len(fence):
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			s := slug(m[1])
			if n := seen[s]; n > 0 {
				p.anchors[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				p.anchors[s] = true
			}
			seen[s]++
		}
		for _, m := range linkRE.FindAllStringSubmatch(codeRE.ReplaceAllString(line, ""), -1) {
			p.links = append(p.links, link{file: rel, line: p.lines, text: m[0], target: m[1]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if fence != "" {
		t.Errorf("%s: a code block opened with %s is never closed", rel, fence)
	}
	return p
}

// pages lists the Markdown files the test walks, relative to root:
// README.md, every docs/*.md, and scripts/README.md when it exists.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md found: is the test running in docs/?")
	}
	files := []string{"README.md"}
	for _, d := range docs {
		files = append(files, filepath.ToSlash(filepath.Join("docs", filepath.Base(d))))
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "README.md")); err == nil {
		files = append(files, "scripts/README.md")
	}
	return files
}

// resolve returns the file a link points at, relative to root, and its
// anchor; file is "" for a link that leaves the repository (http, https,
// mailto).
func resolve(l link) (file, anchor string, err error) {
	target := l.target
	if target == "" {
		return "", "", fmt.Errorf("empty target")
	}
	if u, err := url.Parse(target); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "mailto") {
		return "", "", nil
	}
	path, anchor, hasAnchor := strings.Cut(target, "#")
	if hasAnchor && anchor == "" {
		return "", "", fmt.Errorf("empty anchor")
	}
	if path == "" {
		return l.file, anchor, nil
	}
	if path, err = url.PathUnescape(path); err != nil {
		return "", "", err
	}
	if strings.HasPrefix(path, "/") {
		return "", "", fmt.Errorf("an absolute path does not resolve on GitHub; make it relative to %s", l.file)
	}
	file = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(l.file), path)))
	if file == ".." || strings.HasPrefix(file, "../") {
		return "", "", fmt.Errorf("%s is outside the repository", file)
	}
	return file, anchor, nil
}

// TestLinks checks every link of the README, the reference pages and the
// scripts' README: its file exists, and its anchor is a heading there.
func TestLinks(t *testing.T) {
	read := memo(t)
	for _, rel := range pages(t) {
		for _, l := range read(rel).links {
			file, anchor, err := resolve(l)
			if err != nil {
				t.Errorf("%s:%d: link %s: %v", l.file, l.line, l.text, err)
				continue
			}
			if file == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, file)); err != nil {
				t.Errorf("%s:%d: link %s: %s does not exist", l.file, l.line, l.text, file)
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(file, ".md") {
				if !lineRE.MatchString(anchor) {
					t.Errorf("%s:%d: link %s: #%s: only Markdown files have heading anchors (elsewhere #L12 or #L12-L20)", l.file, l.line, l.text, anchor)
				}
				continue
			}
			if !read(file).anchors[anchor] {
				t.Errorf("%s:%d: link %s: %s has no heading whose anchor is #%s", l.file, l.line, l.text, file, anchor)
			}
		}
	}
}

// TestReadmeIsAFrontPage checks the README's length, that it links to every
// reference page, and that it links to each file only once.
func TestReadmeIsAFrontPage(t *testing.T) {
	readme := memo(t)("README.md")
	if readme.lines > maxReadmeLines {
		t.Errorf("README.md: %d lines, more than %d: move reference to docs/ and link it", readme.lines, maxReadmeLines)
	}
	linked := map[string][]link{} // file → the README's links to it
	for _, l := range readme.links {
		file, _, err := resolve(l)
		if err != nil || file == "" || file == "README.md" {
			continue // TestLinks reports the broken ones
		}
		linked[file] = append(linked[file], l)
	}
	for file, ls := range linked {
		if len(ls) > 1 {
			var where []string
			for _, l := range ls {
				where = append(where, fmt.Sprintf("README.md:%d %s", l.line, l.text))
			}
			t.Errorf("README.md links to %s %d times, want once: %s", file, len(ls), strings.Join(where, "; "))
		}
	}
	for _, rel := range pages(t) {
		if strings.HasPrefix(rel, "docs/") && len(linked[rel]) == 0 {
			t.Errorf("README.md does not link to %s: every reference page is linked from the front page once", rel)
		}
	}
}

// memo returns read with its pages kept, so a file that many links point
// at is parsed once.
func memo(t *testing.T) func(rel string) page {
	cache := map[string]page{}
	return func(rel string) page {
		t.Helper()
		p, ok := cache[rel]
		if !ok {
			p = read(t, rel)
			cache[rel] = p
		}
		return p
	}
}
