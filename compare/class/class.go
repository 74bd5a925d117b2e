package class

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/statelab/statelab/internal/library"
)

// Limits of a class.
const (
	// DefaultMaxStudents is how many students may join one run: a large
	// lecture room. Each is an account and a few sessions on each side.
	DefaultMaxStudents = 200
	// MaxNameRunes caps a student's name: enough for a first name and a
	// surname, short enough for a line of the projector.
	MaxNameRunes = 40
	// CodeLength is how many characters the class code has.
	CodeLength = 6
	// DefaultJoinRate and DefaultJoinBurst bound how fast students join:
	// a room of 60 who scan the QR code at once all get in, and a script
	// cannot make accounts faster than a few a second.
	DefaultJoinRate  = rate.Limit(10)
	DefaultJoinBurst = 100
	// GuessRate and GuessBurst bound the tries with a wrong code: a typo
	// or two from every student, not a search of the codes.
	GuessRate  = rate.Limit(1)
	GuessBurst = 20
)

// Cookies and parameters the runner's pages use.
const (
	// StudentCookie names the student on every request of their page:
	// a random token the runner set at join. HttpOnly, SameSite=Strict.
	StudentCookie = "statelab_student"
	// TeacherCookie holds the teacher token in the teacher's browser.
	// HttpOnly, SameSite=Strict: no page of another site can send it.
	TeacherCookie = "statelab_teacher"
	// TeacherParam is the query parameter of the teacher's URL, which the
	// runner turns into TeacherCookie and removes from the address bar.
	TeacherParam = "teacher"
)

// codeAlphabet leaves out the characters a class misreads from a
// projector: 0 and O, 1, I and L.
const codeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// Side is one side of the run, as the class needs it.
type Side struct {
	// Name is the strategy's name: the side's key in the feed, and its
	// prefix /s/{Name}/ on the runner's address.
	Name string
	// Credential is what the side's clients sign in for: a session
	// cookie ("cookie"), whose cart the server keeps, or a bearer token.
	Credential string
}

// Config is what a class needs.
type Config struct {
	// Store is the run's shared store, where each student's account is
	// made.
	Store library.Store
	// Sides are the run's two sides, left first.
	Sides []Side
	// Addr is the address the runner listens on, for the join URLs.
	Addr string
	// MaxStudents caps the joins; 0 is DefaultMaxStudents.
	MaxStudents int
	// JoinRate and JoinBurst bound how fast students join; 0 is
	// DefaultJoinRate, DefaultJoinBurst.
	JoinRate  rate.Limit
	JoinBurst int
	// Code and TeacherToken are drawn at random when empty (tests give
	// their own).
	Code, TeacherToken string
	Logger             *slog.Logger
	Now                func() time.Time
}

// Class is one run's class: its code, its teacher, its students and what
// their requests found.
type Class struct {
	cfg     Config
	code    string
	teacher string
	// tag makes this run's student emails differ from another run's on
	// the same database.
	tag     string
	joins   *rate.Limiter
	guesses *rate.Limiter
	urls    []string

	mu       sync.Mutex
	students []*Student
	byToken  map[string]*Student
	names    map[string]int // how many students joined with each name
	event    Event
	// joining counts the joins under way: each holds a place in the class
	// while its account is made, so joins at once cannot pass the cap.
	joining int
	seq     int // the last student number handed out
}

// Student is one student who joined.
type Student struct {
	ID    int
	Name  string
	token string
	sides map[string]*standing
}

// New returns a class with a random code and teacher token unless cfg
// gives them.
func New(cfg Config) (*Class, error) {
	if cfg.Store == nil {
		return nil, errors.New("class: no store to make the students' accounts in")
	}
	if len(cfg.Sides) == 0 {
		return nil, errors.New("class: no sides")
	}
	cfg.MaxStudents = cmp.Or(cfg.MaxStudents, DefaultMaxStudents)
	cfg.JoinRate = cmp.Or(cfg.JoinRate, DefaultJoinRate)
	cfg.JoinBurst = cmp.Or(cfg.JoinBurst, DefaultJoinBurst)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Class{
		cfg: cfg, code: strings.ToUpper(cfg.Code), teacher: cfg.TeacherToken, tag: randomHex(3),
		joins:   rate.NewLimiter(cfg.JoinRate, cfg.JoinBurst),
		guesses: rate.NewLimiter(GuessRate, GuessBurst),
		byToken: map[string]*Student{}, names: map[string]int{},
	}
	if c.code == "" {
		c.code = newCode()
	}
	if c.teacher == "" {
		c.teacher = randomHex(16)
	}
	c.urls = JoinURLs(cfg.Addr, interfaceIPs())
	return c, nil
}

// Code returns the class code the students type.
func (c *Class) Code() string { return c.code }

// TeacherToken returns the teacher's token: the teacher's URL carries it.
func (c *Class) TeacherToken() string { return c.teacher }

// MaxStudents returns how many students may join.
func (c *Class) MaxStudents() int { return c.cfg.MaxStudents }

// JoinURLs returns the address of the join page for each address the
// runner listens on.
func (c *Class) JoinURLs() []string { return c.urls }

// QRURL returns what the QR code of join URL i holds: the URL with the
// code filled in, so a phone that scans it joins with a name alone.
func (c *Class) QRURL(i int) string { return c.urls[i] + "?code=" + url.QueryEscape(c.code) }

// TeacherURLs returns the teacher's URL for each address.
func (c *Class) TeacherURLs() []string {
	var out []string
	for _, u := range c.urls {
		out = append(out, strings.TrimSuffix(u, "/join")+"/?"+TeacherParam+"="+c.teacher)
	}
	return out
}

// IsTeacher reports whether r comes from the teacher: it carries the
// teacher cookie, or (for a program such as curl) the token as
// Authorization: Bearer.
func (c *Class) IsTeacher(r *http.Request) bool {
	got := ""
	if ck, err := r.Cookie(TeacherCookie); err == nil {
		got = ck.Value
	} else if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimPrefix(h, "Bearer ")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.teacher)) == 1
}

// StudentOf returns the student whose class cookie r carries, or nil.
func (c *Class) StudentOf(r *http.Request) *Student {
	ck, err := r.Cookie(StudentCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byToken[ck.Value]
}

// Students returns how many students have joined.
func (c *Class) Students() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.students)
}

// JoinURLs returns http://HOST:PORT/join for the address addr the runner
// listens on: its own host, or, for an unspecified one (0.0.0.0, ::), one
// for each of ips, the machine's addresses.
func JoinURLs(addr string, ips []net.IP) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []string{"http://" + addr + "/join"}
	}
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		return []string{"http://" + net.JoinHostPort(host, port) + "/join"}
	}
	var out []string
	for _, ip := range ips {
		if ip.To4() == nil && ip.IsLinkLocalUnicast() {
			continue // an fe80:: address needs a zone no phone types
		}
		out = append(out, "http://"+net.JoinHostPort(ip.String(), port)+"/join")
	}
	if len(out) == 0 {
		out = []string{"http://" + net.JoinHostPort("127.0.0.1", port) + "/join"}
	}
	return out
}

// interfaceIPs returns the machine's addresses, loopback last: the ones a
// student's phone can reach come first.
func interfaceIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out, loop []net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if n.IP.IsLoopback() {
			loop = append(loop, n.IP)
		} else {
			out = append(out, n.IP)
		}
	}
	return append(out, loop...)
}

// TeacherGate turns the teacher's URL into the teacher cookie: a GET that
// carries ?teacher=TOKEN gets the cookie and is sent on to the same
// address without the token, so it leaves the address bar and the
// browser's history; a wrong token gets 403. Every other request goes to
// next untouched.
func (c *Class) TeacherGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !q.Has(TeacherParam) || r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		if subtle.ConstantTimeCompare([]byte(q.Get(TeacherParam)), []byte(c.teacher)) != 1 {
			writeError(w, r, c.cfg.Logger, library.Errorf(library.EFORBIDDEN,
				"That teacher token is not this run's: copy the teacher's URL statelab compare --class printed, or leave ?teacher= out to watch as a student."))
			return
		}
		http.SetCookie(w, &http.Cookie{Name: TeacherCookie, Value: c.teacher, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q.Del(TeacherParam)
		u := *r.URL
		u.RawQuery = q.Encode()
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
	})
}

// newCode draws a class code from codeAlphabet.
func newCode() string {
	b := make([]byte, CodeLength)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// String names the class for logs, without its secrets.
func (c *Class) String() string {
	return fmt.Sprintf("class of %d students", c.Students())
}
