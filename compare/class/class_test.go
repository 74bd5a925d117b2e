package class_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/client"
	"github.com/statelab/statelab/internal/sqlite"
)

const testCode = "KQ7M2X"

// newClass returns a class on a fresh SQLite store (the real one: the
// students' accounts must be ones a server signs in), served by an
// httptest server with the routes the runner mounts.
func newClass(t *testing.T, cfg class.Config) (*class.Class, *httptest.Server) {
	c, srv, _ := newClassDB(t, cfg)
	return c, srv
}

func newClassDB(t *testing.T, cfg class.Config) (*class.Class, *httptest.Server, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "lib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg.Store = db
	cfg.Sides = []class.Side{{Name: "memory-sticky", Credential: client.KindSession}, {Name: "apikey", Credential: client.KindAPIKey}}
	cfg.Code = testCode
	cfg.TeacherToken = "teacher-token-0123456789"
	cfg.Addr = "127.0.0.1:8080"
	c, err := class.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/class/join", c.HandleJoin())
	mux.Handle("GET /api/class/me", c.HandleMe())
	mux.Handle("GET /api/class/qr.png", c.HandleQR())
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "page") })
	srv := httptest.NewServer(c.TeacherGate(mux))
	t.Cleanup(srv.Close)
	return c, srv, db
}

type envelope struct {
	Success bool            `json:"success"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func join(t *testing.T, srv *httptest.Server, contentType, body string) (*http.Response, envelope) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/class/join", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("join %s: the answer is not the JSON envelope: %v", body, err)
	}
	return resp, env
}

// TestClassJoin: each bad join gets its own 4xx in the envelope, with a
// message; a good one gets 201, an account that signs in, and the class
// cookie.
func TestClassJoin(t *testing.T) {
	c, srv, db := newClassDB(t, class.Config{})
	tests := []struct {
		name, contentType, body string
		wantStatus              int
		wantCode                string
	}{
		{"not JSON", "text/plain", `code=` + testCode, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"bad JSON", "application/json", `{"code":`, http.StatusBadRequest, "bad_request"},
		{"unknown field", "application/json", `{"code":"` + testCode + `","name":"A","admin":true}`, http.StatusBadRequest, "bad_request"},
		{"no code", "application/json", `{"name":"Ann"}`, http.StatusBadRequest, "bad_request"},
		{"wrong code", "application/json", `{"code":"AAAAAA","name":"Ann"}`, http.StatusForbidden, "forbidden"},
		{"no name", "application/json", `{"code":"` + testCode + `","name":"  \u202e "}`, http.StatusBadRequest, "bad_request"},
		{"good", "application/json", `{"code":"kq7-m2x","name":"Ann"}`, http.StatusCreated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := join(t, srv, tt.contentType, tt.body)
			if resp.StatusCode != tt.wantStatus || env.Code != tt.wantCode {
				t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, env.Code, env.Message, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus != http.StatusCreated {
				if env.Message == "" || env.Success {
					t.Errorf("a refusal without a message: %+v", env)
				}
				return
			}
			var j class.Joined
			if err := json.Unmarshal(env.Data, &j); err != nil {
				t.Fatal(err)
			}
			if j.StudentID != 1 || j.Name != "Ann" || j.Email == "" || len(j.Password) < 20 {
				t.Errorf("joined %+v", j)
			}
			// The account is a real one: the password signs in.
			if _, err := api.Authenticate(t.Context(), db, j.Email, j.Password); err != nil {
				t.Errorf("the student's account does not sign in: %v", err)
			}
			var cookie *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == class.StudentCookie {
					cookie = ck
				}
			}
			if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || len(cookie.Value) < 32 {
				t.Errorf("class cookie %+v, want an HttpOnly SameSite=Strict random token", cookie)
			}
		})
	}
	if n := c.Students(); n != 1 {
		t.Errorf("%d students joined, want 1", n)
	}
}

// TestClassJoinLimits: the class fills at its cap (409), joins faster than
// the class allows are 429 with Retry-After, and so are wrong codes beyond
// their own budget, without spending the joins'.
func TestClassJoinLimits(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		_, srv := newClass(t, class.Config{MaxStudents: 2})
		for i, want := range []int{201, 201, 409, 409} {
			resp, env := join(t, srv, "application/json", fmt.Sprintf(`{"code":%q,"name":"S%d"}`, testCode, i))
			if resp.StatusCode != want {
				t.Errorf("join %d: %d %s, want %d", i+1, resp.StatusCode, env.Message, want)
			}
		}
	})
	t.Run("too fast", func(t *testing.T) {
		_, srv := newClass(t, class.Config{JoinRate: rate.Every(time.Hour), JoinBurst: 2})
		for i, want := range []int{201, 201, 429} {
			resp, env := join(t, srv, "application/json", fmt.Sprintf(`{"code":%q,"name":"S%d"}`, testCode, i))
			if resp.StatusCode != want || (want == 429 && (env.Code != "too_many_requests" || resp.Header.Get("Retry-After") == "")) {
				t.Errorf("join %d: %d %q Retry-After %q, want %d", i+1, resp.StatusCode, env.Code, resp.Header.Get("Retry-After"), want)
			}
		}
	})
	t.Run("guessing", func(t *testing.T) {
		_, srv := newClass(t, class.Config{})
		got := map[int]int{}
		for i := range class.GuessBurst + 5 {
			resp, _ := join(t, srv, "application/json", fmt.Sprintf(`{"code":"WRONG%d","name":"G"}`, i))
			got[resp.StatusCode]++
		}
		if got[403] < class.GuessBurst-2 || got[429] < 3 {
			t.Errorf("wrong codes answered %v; want 403s, then 429 once the guesses' budget is spent", got)
		}
		if resp, env := join(t, srv, "application/json", `{"code":"`+testCode+`","name":"Real"}`); resp.StatusCode != 201 {
			t.Errorf("a student with the right code after the guesses: %d %s, want 201", resp.StatusCode, env.Message)
		}
	})
}

// TestClassNames: names are cleaned, capped and kept apart.
func TestClassNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Ann  ", "Ann"},
		{"Ann\tMarie\n Smith", "Ann Marie Smith"},
		{"Eve\u202egnp.exe", "Evegnp.exe"},
		{"<b>Bo</b>", "<b>Bo</b>"}, // kept as typed: every page shows it as text
		{strings.Repeat("é", 50), strings.Repeat("é", class.MaxNameRunes)},
		{strings.Repeat("a", 39) + " b", strings.Repeat("a", 39) + " "},
	}
	for _, tt := range tests {
		got, err := class.CleanName(tt.in)
		if err != nil {
			t.Errorf("CleanName(%q): %v", tt.in, err)
			continue
		}
		if want := strings.TrimSpace(tt.want); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", tt.in, got, want)
		}
	}
	_, srv := newClass(t, class.Config{})
	var names []string
	for range 2 {
		_, env := join(t, srv, "application/json", `{"code":"`+testCode+`","name":"Sam"}`)
		var j class.Joined
		_ = json.Unmarshal(env.Data, &j)
		names = append(names, j.Name)
	}
	if names[0] != "Sam" || names[1] != "Sam (2)" {
		t.Errorf("two Sams are %q; want them told apart", names)
	}
}

// TestClassTeacher: the teacher's URL sets an HttpOnly SameSite=Strict
// cookie and leaves the address bar; a wrong token is 403; the QR code
// is the teacher's alone.
func TestClassTeacher(t *testing.T) {
	c, srv := newClass(t, class.Config{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(srv.URL + "/?view=projector&teacher=" + c.TeacherToken())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == class.TeacherCookie {
			cookie = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?view=projector" {
		t.Errorf("teacher URL: %d to %q, want 303 to /?view=projector", resp.StatusCode, resp.Header.Get("Location"))
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value != c.TeacherToken() {
		t.Fatalf("teacher cookie %+v", cookie)
	}
	if resp, _ := noRedirect.Get(srv.URL + "/?teacher=guess"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a wrong teacher token: %d, want 403", resp.StatusCode)
	}
	for _, tt := range []struct {
		name   string
		cookie *http.Cookie
		want   int
	}{{"student", nil, 403}, {"teacher", cookie, 200}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/class/qr.png", nil)
		if tt.cookie != nil {
			req.AddCookie(tt.cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want || (tt.want == 200 && resp.Header.Get("Content-Type") != "image/png") {
			t.Errorf("%s: QR code %d %s, want %d", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), tt.want)
		}
	}
}

// TestClassVerdicts: a student is judged by their own first request sent
// after the event ended: a 401 is a loss (with the cart the server held),
// a success a keep; a request sent during the event judges nothing; a
// student who was not signed in has nothing to lose; one who sent nothing
// is unheard. The feed lists the lost by name and counts the carts.
func TestClassVerdicts(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	c, srv := newClass(t, class.Config{Now: clock})
	var students []*class.Student
	for _, name := range []string{"Ann", "Bo", "Cy", "Di", "Ed"} {
		resp, _ := join(t, srv, "application/json", `{"code":"`+testCode+`","name":"`+name+`"}`)
		req := &http.Request{Header: http.Header{}}
		for _, ck := range resp.Cookies() {
			req.AddCookie(ck)
		}
		students = append(students, c.StudentOf(req))
	}
	ann, bo, cy, di, ed := students[0], students[1], students[2], students[3], students[4]
	obs := func(st *class.Student, side, method, path string, status int, replica string, cart int) {
		c.Observe(st, class.Observation{Side: side, Method: method, Path: path, Sent: now, Status: status, Replica: replica, Cart: cart})
	}
	// Ann, Bo, Cy and Di sign in on both sides and fill a cart on the
	// session side; Ed never signs in.
	for i, st := range []*class.Student{ann, bo, cy, di} {
		rep := fmt.Sprintf("memory-sticky-%d", i%2+1)
		obs(st, "memory-sticky", "POST", client.LoginPath, 200, rep, -1)
		obs(st, "memory-sticky", "POST", client.CartItemsPath, 201, rep, 1+i%2)
		obs(st, "apikey", "POST", client.GenerateKeyPath, 201, "apikey-1", -1)
	}
	// A cart emptied by a checkout holds nothing to lose.
	obs(di, "memory-sticky", "POST", client.CheckoutPath, 201, "memory-sticky-2", 0)

	c.EventBegan("restart", 30, map[string]class.Simulated{"memory-sticky": {SessionsLost: 4, CartItemsLost: 6}})
	now = now.Add(time.Second)
	// Sent while the restart was under way: judges nothing.
	obs(ann, "memory-sticky", "GET", client.CartPath, 200, "memory-sticky-1", 1)
	c.EventEnded("restart", map[string][]string{"memory-sticky": {"memory-sticky-1"}, "apikey": {"apikey-1"}})
	now = now.Add(time.Second)
	obs(ann, "memory-sticky", "GET", client.CartPath, 401, "memory-sticky-1", -1)
	obs(cy, "memory-sticky", "GET", client.CartPath, 401, "memory-sticky-1", -1)
	obs(bo, "memory-sticky", "GET", client.CartPath, 200, "memory-sticky-2", 2)
	obs(di, "memory-sticky", "GET", client.MePath, 401, "memory-sticky-2", -1)
	// A second request after the verdict does not change it.
	obs(bo, "memory-sticky", "GET", client.CartPath, 401, "memory-sticky-2", -1)
	for _, st := range []*class.Student{ann, bo, cy} {
		obs(st, "apikey", "GET", client.MePath, 200, "apikey-2", -1)
	}
	obs(ed, "apikey", "GET", client.HealthPath, 200, "apikey-2", -1)

	f := c.Snapshot(false, map[string]class.Simulated{"memory-sticky": {SessionsLost: 9, CartItemsLost: 10}, "apikey": {}})
	if f.Code != "" || f.Join != nil {
		t.Errorf("a student's feed has the code %q and join URLs %v", f.Code, f.Join)
	}
	ms, ak := f.Sides["memory-sticky"], f.Sides["apikey"]
	if got := strings.Join(ms.LostAtLastEvent, ","); got != "Ann,Cy,Di" {
		t.Errorf("memory-sticky lost %q, want Ann,Cy,Di", got)
	}
	if ms.CartsLostAtLastEvent != 2 || ms.KeptAtLastEvent != 1 || ms.UnheardAtLastEvent != 0 || ms.SignedIn != 0 {
		t.Errorf("memory-sticky: %+v; want 2 carts lost (Di's was empty), 1 kept, nobody unheard, nobody signed in (Bo's last answer was a 401)", ms)
	}
	if s := ms.SimulatedSinceLastEvent; s == nil || s.SessionsLost != 5 || s.CartItemsLost != 4 {
		t.Errorf("simulated users since the event: %+v, want 5 sessions and 4 cart items", s)
	}
	if len(ak.LostAtLastEvent) != 0 || ak.KeptAtLastEvent != 3 || ak.UnheardAtLastEvent != 1 || ak.SignedIn != 4 {
		t.Errorf("apikey: %+v; want nobody lost, 3 kept, Di unheard, 4 signed in", ak)
	}
	if f.LastEvent == nil || f.LastEvent.Seq != 1 || !f.LastEvent.Done || f.Students != 5 {
		t.Errorf("feed %+v", f)
	}
	if tf := c.Snapshot(true, nil); tf.Code != testCode || len(tf.Join) != 1 || tf.Join[0] != "http://127.0.0.1:8080/join" {
		t.Errorf("the teacher's feed: code %q, join %v", tf.Code, tf.Join)
	}
}

// TestClassJoinURLs: one join URL for the address the runner listens on,
// or one per address of the machine when it listens on all of them.
func TestClassJoinURLs(t *testing.T) {
	ips := []net.IP{net.ParseIP("192.0.2.10"), net.ParseIP("fe80::1"), net.ParseIP("2001:db8::5"), net.ParseIP("127.0.0.1")}
	tests := []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8080", []string{"http://127.0.0.1:8080/join"}},
		{"192.0.2.10:9000", []string{"http://192.0.2.10:9000/join"}},
		{"0.0.0.0:8080", []string{"http://192.0.2.10:8080/join", "http://[2001:db8::5]:8080/join", "http://127.0.0.1:8080/join"}},
		{"[::]:8080", []string{"http://192.0.2.10:8080/join", "http://[2001:db8::5]:8080/join", "http://127.0.0.1:8080/join"}},
	}
	for _, tt := range tests {
		if got := class.JoinURLs(tt.addr, ips); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("JoinURLs(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// BenchmarkClassSnapshot is what the feed pays for a full class: 200
// students, each polled once a second.
func BenchmarkClassSnapshot(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "lib.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c, err := class.New(class.Config{Store: db, Code: testCode, Addr: "127.0.0.1:8080",
		Sides: []class.Side{{Name: "memory-sticky", Credential: client.KindSession}, {Name: "apikey", Credential: client.KindAPIKey}}})
	if err != nil {
		b.Fatal(err)
	}
	h := c.HandleJoin()
	for i := range class.DefaultMaxStudents {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/api/class/join", strings.NewReader(fmt.Sprintf(`{"code":%q,"name":"S%03d"}`, testCode, i)))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, r)
	}
	c.EventBegan("restart", 1, nil)
	c.EventEnded("restart", nil)
	b.ResetTimer()
	for b.Loop() {
		_ = c.Snapshot(true, nil)
	}
}
