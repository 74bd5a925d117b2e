//go:build linux

package compare_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/compare"
	"github.com/statelab/statelab/compare/class"
	"github.com/statelab/statelab/internal/labtest"
)

// clClassScenario is a class's run: two replicas a side, one restart of
// replica 1 that the teacher fires.
const clClassScenario = `name: class
description: a class of students, one restart fired by the teacher
replicas: 2
duration: 3s
events:
  - at: 1s
    action: restart
    replica: 1
`

// clStudent is one student's browser, as an HTTP client: its own cookie
// jar, the Origin a browser on a LAN address sends (and no
// Sec-Fetch-Site, which browsers send only to secure origins).
type clStudent struct {
	base    string
	hc      *http.Client
	joined  class.Joined
	key     string // the API key of the apikey side
	replica string // the replica that holds the memory-sticky session
}

func (s *clStudent) do(t *testing.T, method, path, body string, header ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", s.base)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var env map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return resp.StatusCode, resp.Header, env
}

// TestClassSixtyStudents runs statelab compare --class --users 0 --manual
// and has 60 students join at once, each with an HTTP client of their
// own: every join, sign-in on both sides and cart gets through (no
// sign-in limit, no session cap shared), through the runner's forwarder
// with the Origin a browser on a LAN sends; the feed's class counts them
// and stays small. A student cannot fire an event (403) nor read or
// return another's borrows; a wrong code cannot join; a page of another
// origin is refused by the replicas behind the forwarder. When the
// teacher fires the restart, the students whose next request finds their
// session gone are exactly those whose session was on the restarted
// replica, and no API-key student loses anything.
func TestClassSixtyStudents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statelab and runs real replica processes")
	}
	const students = 60
	file := filepath.Join(t.TempDir(), "class.yaml")
	if err := os.WriteFile(file, []byte(clClassScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	r := rtStartRunner(t, labtest.Binary(t), "--class", "--users", "0", "--manual", "--hold", "--scenario", file)
	base := "http://" + r.addr
	var code, token string
	deadline := time.Now().Add(60 * time.Second)
	for code == "" || token == "" {
		out := r.out.String()
		if m := regexp.MustCompile(`class code: (\w+)`).FindStringSubmatch(out); m != nil {
			code = m[1]
		}
		if m := regexp.MustCompile(`\?teacher=(\w+)`).FindStringSubmatch(out); m != nil {
			token = m[1]
		}
		select {
		case <-r.exited:
			t.Fatalf("the runner exited: %v\n%s", r.err, out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no class code and teacher URL printed within 60 s:\n%s", out)
		}
	}
	if !strings.Contains(r.out.String(), base+"/join") {
		t.Errorf("the join URL %s/join is not printed:\n%s", base, r.out.String())
	}
	teacherFeed := func() (int, clClassFeed) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/feed", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := rtClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var f clClassFeed
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("feed: %v", err)
		}
		return len(b), f
	}
	for {
		if b, err := rtGet(base + "/api/feed"); err == nil && bytes.Contains(b, []byte(`"phase":"waiting"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run was not waiting for its event within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sizeBefore, before := teacherFeed()
	if before.Class == nil || before.Class.Code != code || before.Class.Students != 0 {
		t.Fatalf("the teacher's feed has class %+v, want code %s and no students", before.Class, code)
	}
	if b, _ := rtGet(base + "/api/feed"); bytes.Contains(b, []byte(code)) {
		t.Error("the feed anyone reads carries the class code")
	}

	newStudent := func() *clStudent {
		jar, _ := cookiejar.New(nil)
		return &clStudent{base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	}
	// A wrong code cannot join.
	if status, _, env := newStudent().do(t, "POST", "/api/class/join", `{"code":"XXXXXX","name":"Mallory"}`); status != http.StatusForbidden {
		t.Errorf("a wrong code: %d %v, want 403", status, env)
	}

	// 60 students at once: join, sign in on both sides, one book in the
	// session's cart.
	all := make([]*clStudent, students)
	var mu sync.Mutex
	statuses := map[string]int{}
	count := func(what string, status int) {
		mu.Lock()
		statuses[fmt.Sprintf("%s %d", what, status)]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range students {
		wg.Go(func() {
			s := newStudent()
			all[i] = s
			status, _, env := s.do(t, "POST", "/api/class/join", fmt.Sprintf(`{"code":%q,"name":"Student %02d"}`, strings.ToLower(code), i+1))
			count("join", status)
			if status != http.StatusCreated {
				return
			}
			b, _ := json.Marshal(env["data"])
			_ = json.Unmarshal(b, &s.joined)
			creds := fmt.Sprintf(`{"email":%q,"password":%q}`, s.joined.Email, s.joined.Password)
			status, h, _ := s.do(t, "POST", "/s/memory-sticky/api/auth/login", creds)
			count("login", status)
			s.replica = h.Get("X-Statelab-Replica")
			status, _, _ = s.do(t, "POST", "/s/memory-sticky/api/cart/items", fmt.Sprintf(`{"book_id":%d}`, i%20+1))
			count("cart", status)
			status, _, env = s.do(t, "POST", "/s/apikey/api/auth/generate-key", creds)
			count("key", status)
			if d, ok := env["data"].(map[string]any); ok {
				s.key, _ = d["api_key"].(string)
			}
			status, _, _ = s.do(t, "GET", "/s/apikey/api/me", "", "Authorization", "Bearer "+s.key)
			count("me", status)
		})
	}
	wg.Wait()
	want := map[string]int{"join 201": students, "login 200": students, "cart 201": students, "key 201": students, "me 200": students}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("60 students at once got %v; want %v (no 429, no 401: no limit or cap tripped)", statuses, want)
	}
	onFirst := map[string]bool{}
	for _, s := range all {
		if s.replica == "memory-sticky-1" {
			onFirst[s.joined.Name] = true
		}
	}
	t.Logf("%d of %d students' sessions are on memory-sticky-1", len(onFirst), students)

	sizeJoined, joined := teacherFeed()
	c := joined.Class
	if c == nil || c.Students != students || c.Sides["memory-sticky"].SignedIn != students || c.Sides["apikey"].SignedIn != students {
		t.Fatalf("feed's class after the joins: %+v", c)
	}
	// The feed's cost does not grow with the class: its class part holds
	// counts, not lists, until an event loses someone.
	classBefore, classJoined := jsonSize(t, before.Class), jsonSize(t, c)
	if grew := classJoined - classBefore; grew > 32 {
		t.Errorf("the feed's class grew by %d bytes with 60 students (from %d to %d)", grew, classBefore, classJoined)
	}
	t.Logf("feed: %d bytes (class %d) before the students, %d (class %d) with 60 joined", sizeBefore, classBefore, sizeJoined, classJoined)

	// A student's browser cannot fire an event, nor pause the users.
	for _, action := range []string{"next", "restart", "pause"} {
		if status, _, env := all[0].do(t, "POST", "/api/control/"+action, ""); status != http.StatusForbidden {
			t.Errorf("a student's POST /api/control/%s: %d %v, want 403", action, status, env)
		}
	}
	// Nor read or return another student's borrows.
	status, _, env := all[0].do(t, "POST", "/s/apikey/api/books/3/borrow", "", "Authorization", "Bearer "+all[0].key)
	if status != http.StatusCreated {
		t.Fatalf("borrow: %d %v", status, env)
	}
	rec, _ := env["data"].(map[string]any)
	if rec["id"] == nil {
		t.Fatalf("borrow answered no record: %v", env)
	}
	borrowID := fmt.Sprint(rec["id"])
	_, _, env = all[1].do(t, "GET", "/s/apikey/api/borrows", "", "Authorization", "Bearer "+all[1].key)
	if list, _ := env["data"].([]any); len(list) != 0 {
		t.Errorf("another student's borrows list %d records, want none of student 1's: %v", len(list), list)
	}
	if status, _, env := all[1].do(t, "POST", "/s/apikey/api/borrows/"+borrowID+"/return", "", "Authorization", "Bearer "+all[1].key); status != http.StatusForbidden {
		t.Errorf("returning another student's borrow: %d %v, want 403", status, env)
	}
	// A page of another origin is refused behind the forwarder, as it is
	// at the balancer; without the class cookie the forwarder refuses.
	if status, _, env := all[2].do(t, "POST", "/s/memory-sticky/api/auth/logout", "", "Origin", "http://attacker.example"); status != http.StatusForbidden {
		t.Errorf("a cross-origin logout through the forwarder: %d %v, want 403", status, env)
	}
	if status, _, _ := newStudent().do(t, "GET", "/s/apikey/api/health", ""); status != http.StatusForbidden {
		t.Errorf("the forwarder without a class cookie: %d, want 403", status)
	}

	// The teacher fires the restart.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/control/next", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the teacher's next: %d", resp.StatusCode)
	}
	lost := map[string]bool{}
	for _, s := range all {
		status, _, _ := s.do(t, "GET", "/s/memory-sticky/api/cart", "")
		if status == http.StatusUnauthorized {
			lost[s.joined.Name] = true
		}
		if status, _, _ := s.do(t, "GET", "/s/apikey/api/me", "", "Authorization", "Bearer "+s.key); status != http.StatusOK {
			t.Errorf("%s's API key after the restart: %d, want 200", s.joined.Name, status)
		}
	}
	if !sameSet(lost, onFirst) {
		t.Errorf("the students who lost their session: %d, want exactly the %d on memory-sticky-1", len(lost), len(onFirst))
	}
	sizeAfter, after := teacherFeed()
	ms, ak := after.Class.Sides["memory-sticky"], after.Class.Sides["apikey"]
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range onFirst {
			if !yield(n) {
				return
			}
		}
	})
	if got := slices.Sorted(slices.Values(ms.LostAtLastEvent)); !slices.Equal(got, names) || ms.CartsLostAtLastEvent != len(names) || ms.UnheardAtLastEvent != 0 {
		t.Errorf("the feed's memory-sticky: lost %v, %d carts, %d unheard; want %v, as many carts, none unheard", got, ms.CartsLostAtLastEvent, ms.UnheardAtLastEvent, names)
	}
	if len(ak.LostAtLastEvent) != 0 || ak.CartsLostAtLastEvent != 0 || ak.KeptAtLastEvent != students {
		t.Errorf("the feed's apikey: %+v; want nobody lost, all %d kept", ak, students)
	}
	if after.Class.LastEvent == nil || after.Class.LastEvent.Kind != "restart" || !slices.Contains(after.Class.LastEvent.Replicas["memory-sticky"], "memory-sticky-1") {
		t.Errorf("the feed's last event: %+v", after.Class.LastEvent)
	}
	t.Logf("feed after the restart: %d bytes, class %d (%d names lost)", sizeAfter, jsonSize(t, after.Class), len(ms.LostAtLastEvent))
}

// jsonSize is how many bytes v takes in JSON.
func jsonSize(t *testing.T, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// sameSet reports whether two sets are equal.
func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// clClassFeed is the part of GET /api/feed a class adds.
type clClassFeed struct {
	Class *class.Feed    `json:"class"`
	Now   compare.Sample `json:"now"`
}
