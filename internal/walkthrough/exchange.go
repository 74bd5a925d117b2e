package walkthrough

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/statelab/statelab/internal/client"
)

// userAgent names the walkthrough in the servers' logs. Fixed, so the bytes
// a request takes do not depend on the Go version.
const userAgent = "statelab-walkthrough"

// request is one HTTP request the walkthrough sends.
type request struct {
	method string
	base   string // "http://host:port"
	path   string
	cookie string // a session id cookie value, sent as Cookie
	bearer string // an API key or a JWT, sent as Authorization: Bearer
	body   any    // sent as JSON when not nil: one of client's body types
}

// response is what came back, read whole, with its envelope.
type response struct{ client.Response }

// cookie returns the value of the session cookie the response sets.
func (r response) cookie() string {
	for _, c := range r.Cookies() {
		if c.Name == client.CookieName {
			return c.Value
		}
	}
	return ""
}

// keyIssued returns the API key and its id from a generate-key answer.
func (r response) keyIssued() (key, id string, err error) {
	var k client.KeyIssued
	if err := r.Decode(&k); err != nil {
		return "", "", err
	}
	if k.APIKey == "" || k.KeyID == "" {
		return "", "", fmt.Errorf("%d answer has no key or key id: %s", r.Status, trim(string(r.Body), 200))
	}
	return k.APIKey, k.KeyID, nil
}

// tokenIssued returns the JWT from a token answer.
func (r response) tokenIssued() (string, error) {
	var t client.TokenIssued
	if err := r.Decode(&t); err != nil {
		return "", err
	}
	if t.AccessToken == "" {
		return "", fmt.Errorf("%d answer has no token: %s", r.Status, trim(string(r.Body), 200))
	}
	return t.AccessToken, nil
}

// newClient returns the client of one conversation with the servers: keep-
// alive connections, no proxy, no transparent gzip (so what is counted is
// what the request really carries), and a counter of the bytes written.
func newClient(written *atomic.Int64) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &countingConn{Conn: c, written: written}, nil
			},
			MaxIdleConnsPerHost: 4,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// countingConn counts the bytes a client writes: the request line, the
// headers and the body, as they went out.
type countingConn struct {
	net.Conn
	written *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// send makes one request and reads the whole answer.
func send(ctx context.Context, hc *http.Client, r request) (response, error) {
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.base+r.path, body)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("User-Agent", userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.cookie != "" {
		client.Session(r.cookie).Set(req.Header)
	}
	if r.bearer != "" {
		client.Bearer(r.bearer).Set(req.Header)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	// A body that is not an envelope shows as it is.
	out, err := client.ReadResponse(resp)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	return response{*out}, nil
}

// Shown bodies are cut here: long enough for an error's sentence, short
// enough to read at a glance.
const maxShownBody = 300

// printExchange prints a request and its answer the way curl -v does: ">"
// for what went out, "<" for what came back, with only the headers the
// lesson is about, secrets shortened and bodies trimmed.
func (t *term) printExchange(r request, resp response) {
	out := func(s string) { t.line("  " + t.paint(styleCyan, "> "+s)) }
	out(r.method + " " + r.base + r.path)
	if r.cookie != "" {
		// Written out: Session would drop the shortened value's "…".
		out("Cookie: " + client.CookieName + "=" + shorten(r.cookie))
	}
	if r.bearer != "" {
		out(client.Bearer(shorten(r.bearer)).Line())
	}
	if r.body != nil {
		b, _ := json.Marshal(r.body)
		out("Content-Type: application/json")
		out(string(b))
	}

	status := fmt.Sprintf("%d %s", resp.Status, http.StatusText(resp.Status))
	style := styleGreen
	if resp.Status >= 400 {
		style = styleRed
	}
	t.line("  " + t.paint(style, "< "+status))
	// Long lines are broken only after the separators given, so a token
	// (a date, an id, a shortened secret) is never cut in two.
	in := func(s, seps, style string) {
		for i, l := range breakAfter(s, width-6, seps) {
			prefix := "  < "
			if i > 0 {
				prefix = "  <   "
			}
			t.line(prefix + t.paint(style, l))
		}
	}
	if replica := resp.Replica(); replica != "" {
		in(client.ReplicaHeader+": "+replica, "", "")
	}
	for _, c := range resp.Header.Values("Set-Cookie") {
		in("Set-Cookie: "+shortenCookie(c), ";", "")
	}
	if v := resp.Header.Get("WWW-Authenticate"); v != "" {
		in("WWW-Authenticate: "+v, ",", "")
	}
	if len(resp.Body) > 0 {
		in(showBody(resp), ", ", styleDim)
	}
	t.blank()
}

// breakAfter breaks s into lines of at most n runes, only right after one
// of the runes in seps; a piece longer than n stays whole. Spaces at the
// ends of lines are dropped.
func breakAfter(s string, n int, seps string) []string {
	var pieces []string
	start := 0
	for i, r := range s {
		if strings.ContainsRune(seps, r) {
			end := i + utf8.RuneLen(r)
			pieces = append(pieces, s[start:end])
			start = end
		}
	}
	if start < len(s) {
		pieces = append(pieces, s[start:])
	}
	var lines []string
	cur := ""
	for _, p := range pieces {
		if cur != "" && utf8.RuneCountInString(cur)+utf8.RuneCountInString(strings.TrimRight(p, " ")) > n {
			lines = append(lines, strings.TrimRight(cur, " "))
			cur = strings.TrimLeft(p, " ")
			continue
		}
		cur += p
	}
	if cur = strings.TrimRight(cur, " "); cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// shorten shows the start of a secret and its length: enough to recognise
// it from one request to the next, and to see how big it is.
func shorten(v string) string {
	if len(v) <= 24 {
		return v
	}
	return v[:16] + "… (" + strconv.Itoa(len(v)) + " bytes)"
}

// shortenCookie shortens the value of a Set-Cookie header and keeps its
// attributes.
func shortenCookie(h string) string {
	nameValue, attrs, _ := strings.Cut(h, ";")
	name, value, ok := strings.Cut(nameValue, "=")
	if !ok || value == "" {
		return h
	}
	s := name + "=" + shorten(value)
	if attrs != "" {
		s += ";" + attrs
	}
	return s
}

// subSecond finds the fraction of a second in a timestamp: noise to a
// reader, and it would make trimmed bodies differ in length.
var subSecond = regexp.MustCompile(`(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+`)

// showBody returns a body as one trimmed line: the secrets it hands out
// (an API key, a JWT) shortened, timestamps to the second.
func showBody(resp response) string {
	s := strings.TrimSpace(string(resp.Body))
	var issued struct {
		client.KeyIssued
		client.TokenIssued
	}
	if resp.Decode(&issued) == nil {
		for _, secret := range []string{issued.APIKey, issued.AccessToken} {
			if secret != "" {
				s = strings.ReplaceAll(s, `"`+secret+`"`, `"`+shorten(secret)+`"`)
			}
		}
	}
	s = subSecond.ReplaceAllString(s, "$1")
	return trim(s, maxShownBody)
}

// trim cuts s to at most n runes, marking the cut.
func trim(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n]) + " …"
}

// scrape reads the Prometheus text exposition of one replica and returns
// the sum of the samples of metric whose labels include every one of
// labels (each written as `name="value"`).
func scrape(ctx context.Context, hc *http.Client, addr, metric string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+client.MetricsPath, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the metrics of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		l := sc.Text()
		name, rest, ok := strings.Cut(l, "{")
		if !ok {
			name, rest, ok = strings.Cut(l, " ")
			if !ok {
				continue
			}
			rest = "} " + rest
		}
		if name != metric {
			continue
		}
		for _, want := range labels {
			if !strings.Contains(rest, want) {
				continue lines
			}
		}
		i := strings.LastIndexByte(rest, ' ')
		v, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics of %s: %q: %w", addr, l, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read the metrics of %s: %w", addr, err)
	}
	return sum, nil
}
