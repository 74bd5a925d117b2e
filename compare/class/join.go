package class

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/skip2/go-qrcode"
	"golang.org/x/crypto/bcrypt"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// JoinRequest is the body of POST /api/class/join.
type JoinRequest struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// Joined is the data of a join's 201: the student's own account in the
// run's shared store. The page keeps the password and signs in with it on
// each side; nobody else is told it.
type Joined struct {
	StudentID int    `json:"student_id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Password  string `json:"password"`
}

// HandleJoin answers POST /api/class/join: with the class's code and a
// name, it makes the student an account with a random password and sets
// the class cookie that names them on every later request.
//
// A wrong code is 403, a malformed body 400 (415 when it is not JSON), a
// full class 409, and joins or wrong codes coming faster than the class
// allows 429 with Retry-After.
func (c *Class) HandleJoin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.join(w, r); err != nil {
			writeError(w, r, c.cfg.Logger, err)
		}
	})
}

func (c *Class) join(w http.ResponseWriter, r *http.Request) error {
	in, err := api.Decode[JoinRequest](w, r)
	if err != nil {
		return err
	}
	if !c.codeMatches(in.Code) {
		if !c.guesses.Allow() {
			return library.RetryAfterError(time.Second, "Too many wrong class codes at once; wait a moment, then type the code the projector shows.")
		}
		if strings.TrimSpace(in.Code) == "" {
			return library.Errorf(library.EINVALID, "Type the class code the projector shows (%d letters and digits).", CodeLength)
		}
		return library.Errorf(library.EFORBIDDEN, "That is not this class's code: type the %d letters and digits the projector shows, or scan its QR code.", CodeLength)
	}
	name, err := CleanName(in.Name)
	if err != nil {
		return err
	}
	if !c.joins.Allow() {
		return library.RetryAfterError(time.Second, "Many classmates are joining at this moment; try again in a second.")
	}
	id, err := c.reserve()
	if err != nil {
		return err
	}
	defer c.release()

	password := randomPassword()
	// The password is 128 random bits: no guess finds it, whatever the
	// hash costs, so the cheapest cost keeps 60 joins at once (and the
	// students' sign-ins on every replica) from queueing on bcrypt.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return library.Errorf(library.EINTERNAL, "hash a student's password: %v", err)
	}
	email := fmt.Sprintf("student%03d-%s@class.statelab.invalid", id, c.tag)
	if _, err := c.cfg.Store.CreateMember(r.Context(), library.Member{Email: email, Name: name, Role: library.RoleMember, PasswordHash: string(hash)}); err != nil {
		if library.ErrorCode(err) == library.ECONFLICT {
			return library.Errorf(library.ECONFLICT, "An account for this seat exists already; join again.")
		}
		return err
	}
	st := &Student{ID: id, token: randomHex(16), sides: map[string]*standing{}}
	for _, s := range c.cfg.Sides {
		st.sides[s.Name] = &standing{}
	}
	c.mu.Lock()
	c.names[name]++
	if n := c.names[name]; n > 1 {
		name = fmt.Sprintf("%s (%d)", name, n)
	}
	st.Name = name
	c.students = append(c.students, st)
	c.byToken[st.token] = st
	c.mu.Unlock()

	http.SetCookie(w, &http.Cookie{Name: StudentCookie, Value: st.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	api.OK(w, http.StatusCreated, Joined{StudentID: id, Name: name, Email: email, Password: password},
		"Welcome, "+name+": sign in on each side with this account.")
	return nil
}

// reserve holds a place in the class for a join under way and returns
// the student's number; ECONFLICT when the class is full.
func (c *Class) reserve() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.students)+c.joining >= c.cfg.MaxStudents {
		return 0, library.Errorf(library.ECONFLICT, "The class is full: %d students have joined, as many as a run takes.", c.cfg.MaxStudents)
	}
	c.joining++
	c.seq++
	return c.seq, nil
}

// release gives back the place a join held: a join that failed leaves a
// gap in the numbers, never a seat taken.
func (c *Class) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joining--
}

// codeMatches compares a typed code with the class's, ignoring case,
// spaces and dashes, in constant time.
func (c *Class) codeMatches(typed string) bool {
	typed = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return unicode.ToUpper(r)
	}, typed)
	return subtle.ConstantTimeCompare([]byte(typed), []byte(c.code)) == 1
}

// CleanName returns a student's name as the class shows it: control and
// formatting characters (a right-to-left override among them) dropped,
// runs of space made one, at most MaxNameRunes runes. Pages escape it
// wherever they show it; this only keeps it one short line.
func CleanName(name string) (string, error) {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range strings.TrimSpace(name) {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar:
			continue
		}
		if n == MaxNameRunes {
			break
		}
		if space && n > 0 {
			b.WriteByte(' ')
			n++
			if n == MaxNameRunes {
				break
			}
		}
		space = false
		b.WriteRune(r)
		n++
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", library.Errorf(library.EINVALID, "Type your name (up to %d characters): the projector lists it when something happens to you.", MaxNameRunes)
	}
	return out, nil
}

// HandleMe answers GET /api/class/me: the student's own standing on each
// side and the last event, which their page polls to tell them what
// happened to them. 401 without a class cookie.
func (c *Class) HandleMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := c.StudentOf(r)
		if st == nil {
			writeError(w, r, c.cfg.Logger, library.Errorf(library.ELOGINREQUIRED, "Join the class first: open /join and type the code the projector shows."))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		api.OK(w, http.StatusOK, c.me(st), "")
	})
}

// HandleQR answers GET /api/class/qr.png?i=N: the QR code of join URL N
// (QRURL), for the teacher's page only, as it holds the code.
func (c *Class) HandleQR() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.IsTeacher(r) {
			writeError(w, r, c.cfg.Logger, library.Errorf(library.EFORBIDDEN, "Only the teacher's page shows the QR code: open the teacher's URL statelab compare --class printed."))
			return
		}
		i := 0
		if v := r.URL.Query().Get("i"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n >= len(c.urls) {
				writeError(w, r, c.cfg.Logger, library.Errorf(library.EINVALID, "i must be 0 to %d: one QR code per join URL.", len(c.urls)-1))
				return
			}
			i = n
		}
		png, err := qrcode.Encode(c.QRURL(i), qrcode.Medium, 320)
		if err != nil {
			writeError(w, r, c.cfg.Logger, library.Errorf(library.EINTERNAL, "qr code: %v", err))
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(png)
	})
}

// TerminalQR returns the QR code of join URL i drawn with block
// characters, two rows of modules to a line, for the terminal.
func (c *Class) TerminalQR(i int) (string, error) {
	q, err := qrcode.New(c.QRURL(i), qrcode.Medium)
	if err != nil {
		return "", err
	}
	return q.ToSmallString(false), nil
}

// randomPassword returns 128 random bits, base64url: a password nobody
// types, which the student's page keeps.
func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeError writes err in the project's envelope with its code's status.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	api.Error(w, r, logger, err)
}
