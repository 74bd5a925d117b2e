package class

import (
	"net/http"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/client"
)

// Verdicts: what the last event did to a student on one side, judged from
// the student's own first request sent after it ended.
const (
	// VerdictKept: signed in at the event, and their next request was
	// answered as theirs.
	VerdictKept = "kept"
	// VerdictLost: signed in at the event, and their next request was
	// answered 401: the sign-in went with the event.
	VerdictLost = "lost"
	// VerdictUnheard: signed in at the event, and no request since.
	VerdictUnheard = "unheard"
	// VerdictNotSignedIn: not signed in at the event; nothing to lose.
	VerdictNotSignedIn = "not_signed_in"
)

// standing is one student on one side, as their own requests found it.
type standing struct {
	signedIn bool
	replica  string // the replica that gave the last answer
	cart     int    // what the server's cart held at its last answer
	requests uint64
	// At the last event: whether the student was signed in and not yet
	// judged, what the server's cart held, and the verdict so far.
	atRisk      bool
	cartAtEvent int
	verdict     string
	cartLost    bool
}

// Event is the last event the runner played on the sides, as the class
// saw it.
type Event struct {
	// Seq counts the events of the run: a page that saw Seq 2 knows a
	// third one when Seq is 3.
	Seq  int     `json:"seq"`
	Kind string  `json:"kind"`
	AtS  float64 `json:"at_s"`
	// Done is false while the event is being played; verdicts are judged
	// only from requests sent after it is done.
	Done bool `json:"done"`
	// Replicas are the replicas it restarted, crashed or removed, by side.
	Replicas map[string][]string `json:"replicas,omitempty"`

	ended     time.Time
	simulated map[string]Simulated // the simulated users' losses when it began
}

// Simulated is what the simulated users of one side lost: sessions the
// servers forgot, and the cart items that went with them.
type Simulated struct {
	SessionsLost  int64 `json:"sessions_lost"`
	CartItemsLost int64 `json:"cart_items_lost"`
}

// EventBegan notes, as an event starts, who is signed in on each side and
// what their carts hold, with the simulated users' losses so far: what
// the event will be judged against.
func (c *Class) EventBegan(kind string, atS float64, simulated map[string]Simulated) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.event = Event{Seq: c.event.Seq + 1, Kind: kind, AtS: atS, simulated: simulated}
	for _, st := range c.students {
		for _, s := range st.sides {
			s.atRisk, s.cartAtEvent, s.cartLost = s.signedIn, s.cart, false
			s.verdict = VerdictNotSignedIn
			if s.signedIn {
				s.verdict = VerdictUnheard
			}
		}
	}
}

// EventEnded notes that the event is over, what kind it was recorded as
// (a scale is a scale-out or a scale-in) and the replicas it touched on
// each side. From now on each student's next request judges them.
func (c *Class) EventEnded(kind string, replicas map[string][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.event.Done, c.event.ended, c.event.Replicas = true, c.cfg.Now(), replicas
	if kind != "" {
		c.event.Kind = kind
	}
}

// Observation is one answer to a student's request through the runner's
// forwarder.
type Observation struct {
	Side   string
	Method string
	// Path is the route as the side saw it, without /s/{side}.
	Path string
	// Sent is when the request reached the runner.
	Sent   time.Time
	Status int
	// Replica is the answer's X-Statelab-Replica: the replica that
	// answered, "" when a balancer did.
	Replica string
	// Cart is how many items the server's cart held in the answer, -1
	// when the answer says nothing of it.
	Cart int
}

// Observe counts an answer to one of st's requests: whether it proves the
// student signed in or signed out, the replica that answered, the server's
// cart, and, for the first request sent after the last event, the verdict.
func (c *Class) Observe(st *Student, o Observation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := st.sides[o.Side]
	if s == nil {
		return
	}
	s.requests++
	if o.Replica != "" {
		s.replica = o.Replica
	}
	path, _, _ := strings.Cut(o.Path, "?")
	ok := o.Status >= 200 && o.Status < 300
	switch {
	case path == client.HealthPath || path == client.ReadyPath || path == client.MetricsPath || !strings.HasPrefix(path, client.APIPrefix):
		// Anyone gets these: they say nothing of the student.
	case client.IsSignIn(path):
		if ok {
			s.signedIn, s.cart = true, 0
		}
	case o.Status == http.StatusUnauthorized:
		s.signedIn, s.cart = false, 0
		c.judge(s, o.Sent, false)
	case ok:
		c.judge(s, o.Sent, true)
		s.signedIn = path != client.LogoutPath
		if o.Cart >= 0 {
			s.cart = o.Cart
		}
		if !s.signedIn {
			s.cart = 0
		}
	}
}

// judge gives s its verdict on the last event, from a request sent at
// sent that was answered as the student's (kept) or with 401: only the
// first request sent after the event ended counts. The caller holds c.mu.
func (c *Class) judge(s *standing, sent time.Time, kept bool) {
	if !s.atRisk || !c.event.Done || sent.Before(c.event.ended) {
		return
	}
	s.atRisk = false
	if kept {
		s.verdict = VerdictKept
		return
	}
	s.verdict, s.cartLost = VerdictLost, s.cartAtEvent > 0
}

// Feed is the class in the runner's feed.
type Feed struct {
	// Code and Join are for the teacher's page only: anyone who reaches
	// the runner can read the feed.
	Code        string              `json:"code,omitempty"`
	Join        []string            `json:"join,omitempty"`
	Students    int                 `json:"students"`
	MaxStudents int                 `json:"max_students"`
	LastEvent   *Event              `json:"last_event,omitempty"`
	Sides       map[string]SideFeed `json:"sides"`
}

// SideFeed is the class on one side.
type SideFeed struct {
	// SignedIn counts the students whose last answer found them signed in.
	SignedIn int `json:"signed_in"`
	// LostAtLastEvent names, in the order they joined, the students whose
	// first request after the last event found their sign-in gone;
	// CartsLostAtLastEvent counts those of them whose cart the server kept
	// and held something.
	LostAtLastEvent      []string `json:"lost_at_last_event"`
	CartsLostAtLastEvent int      `json:"carts_lost_at_last_event"`
	// KeptAtLastEvent counts those it found still signed in;
	// UnheardAtLastEvent those signed in at the event who have sent
	// nothing since.
	KeptAtLastEvent    int `json:"kept_at_last_event"`
	UnheardAtLastEvent int `json:"unheard_at_last_event"`
	// Requests counts the students' requests to the side, apart from the
	// simulated users'.
	Requests uint64 `json:"requests"`
	// SimulatedSinceLastEvent is what the simulated users lost since the
	// last event began, for the panel to show beside the students.
	SimulatedSinceLastEvent *Simulated `json:"simulated_since_last_event,omitempty"`
}

// Snapshot returns the class for the feed; teacher adds the code and the
// join URLs. simulated is the simulated users' losses now, by side.
func (c *Class) Snapshot(teacher bool, simulated map[string]Simulated) Feed {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := Feed{Students: len(c.students), MaxStudents: c.cfg.MaxStudents, Sides: map[string]SideFeed{}}
	if teacher {
		f.Code, f.Join = c.code, c.urls
	}
	if c.event.Seq > 0 {
		e := c.event
		f.LastEvent = &e
	}
	for _, side := range c.cfg.Sides {
		sf := SideFeed{LostAtLastEvent: []string{}}
		for _, st := range c.students {
			s := st.sides[side.Name]
			sf.Requests += s.requests
			if s.signedIn {
				sf.SignedIn++
			}
			if c.event.Seq == 0 {
				continue
			}
			switch s.verdict {
			case VerdictLost:
				sf.LostAtLastEvent = append(sf.LostAtLastEvent, st.Name)
				if s.cartLost {
					sf.CartsLostAtLastEvent++
				}
			case VerdictKept:
				sf.KeptAtLastEvent++
			case VerdictUnheard:
				sf.UnheardAtLastEvent++
			}
		}
		if now, ok := simulated[side.Name]; ok && c.event.Seq > 0 {
			then := c.event.simulated[side.Name]
			sf.SimulatedSinceLastEvent = &Simulated{SessionsLost: now.SessionsLost - then.SessionsLost, CartItemsLost: now.CartItemsLost - then.CartItemsLost}
		}
		f.Sides[side.Name] = sf
	}
	return f
}

// Me is the data of GET /api/class/me.
type Me struct {
	StudentID int               `json:"student_id"`
	Name      string            `json:"name"`
	LastEvent *Event            `json:"last_event,omitempty"`
	Sides     map[string]MySide `json:"sides"`
}

// MySide is a student's own standing on one side.
type MySide struct {
	SignedIn bool   `json:"signed_in"`
	Replica  string `json:"replica,omitempty"`
	// Cart is what the server's cart held at its last answer; 0 on a
	// side whose cart the page keeps.
	Cart     int    `json:"cart"`
	Requests uint64 `json:"requests"`
	// AtLastEvent is the verdict on the last event (a Verdict), absent
	// before the first.
	AtLastEvent string `json:"at_last_event,omitempty"`
	CartLost    bool   `json:"cart_lost,omitempty"`
}

func (c *Class) me(st *Student) Me {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := Me{StudentID: st.ID, Name: st.Name, Sides: map[string]MySide{}}
	if c.event.Seq > 0 {
		e := c.event
		m.LastEvent = &e
	}
	for name, s := range st.sides {
		ms := MySide{SignedIn: s.signedIn, Replica: s.replica, Cart: s.cart, Requests: s.requests, CartLost: s.cartLost}
		if c.event.Seq > 0 {
			ms.AtLastEvent = s.verdict
		}
		m.Sides[name] = ms
	}
	return m
}

// SessionSide reports whether side keeps its clients' carts on the
// server, in a session: the side whose cart answers Observe reads.
func (c *Class) SessionSide(side string) bool {
	for _, s := range c.cfg.Sides {
		if s.Name == side {
			return s.Credential == client.KindSession
		}
	}
	return false
}
