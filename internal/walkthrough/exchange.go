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

	"github.com/statelab/statelab/internal/api"
)

// cookieName is the stateful server's session cookie.
const cookieName = "session_id"

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
	body   any    // sent as JSON when not nil
}

// response is what came back, read whole.
type response struct {
	status  int
	header  http.Header
	body    []byte
	replica string // the X-Statelab-Replica header

	// The envelope every answer of the lab is wrapped in.
	Success bool            `json:"success"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// outcome is a short name for how a request went: "ok" or the error code.
func (r response) outcome() string {
	if r.status >= 200 && r.status < 300 {
		return "ok"
	}
	if r.Code != "" {
		return r.Code
	}
	return strconv.Itoa(r.status)
}

// cookie returns the value of the session cookie the response sets.
func (r response) cookie() string {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

// field decodes one field of the response's data into v.
func (r response) field(name string, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &m); err != nil {
		return fmt.Errorf("%d answer: data is not an object: %s", r.status, trim(string(r.body), 200))
	}
	raw, ok := m[name]
	if !ok {
		return fmt.Errorf("%d answer has no data.%s: %s", r.status, name, trim(string(r.body), 200))
	}
	return json.Unmarshal(raw, v)
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
func send(ctx context.Context, client *http.Client, r request) (response, error) {
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
		req.Header.Set("Cookie", cookieName+"="+r.cookie)
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, api.MaxBodyBytes))
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, body: b, replica: resp.Header.Get(api.ReplicaHeader)}
	_ = json.Unmarshal(b, &out) // a body that is not an envelope shows as it is
	return out, nil
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
		out("Cookie: " + cookieName + "=" + shorten(r.cookie))
	}
	if r.bearer != "" {
		out("Authorization: Bearer " + shorten(r.bearer))
	}
	if r.body != nil {
		b, _ := json.Marshal(r.body)
		out("Content-Type: application/json")
		out(string(b))
	}

	status := fmt.Sprintf("%d %s", resp.status, http.StatusText(resp.status))
	style := styleGreen
	if resp.status >= 400 {
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
	if resp.replica != "" {
		in(api.ReplicaHeader+": "+resp.replica, "", "")
	}
	for _, c := range resp.header.Values("Set-Cookie") {
		in("Set-Cookie: "+shortenCookie(c), ";", "")
	}
	if v := resp.header.Get("WWW-Authenticate"); v != "" {
		in("WWW-Authenticate: "+v, ",", "")
	}
	if len(resp.body) > 0 {
		in(showBody(resp.body), ", ", styleDim)
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

var (
	// secretField finds the secrets a body hands out.
	secretField = regexp.MustCompile(`"(api_key|access_token)":"([^"]*)"`)
	// subSecond finds the fraction of a second in a timestamp: noise to a
	// reader, and it would make trimmed bodies differ in length.
	subSecond = regexp.MustCompile(`(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+`)
)

// showBody returns a body as one trimmed line: secrets shortened,
// timestamps to the second.
func showBody(b []byte) string {
	s := strings.TrimSpace(string(b))
	s = secretField.ReplaceAllStringFunc(s, func(m string) string {
		sub := secretField.FindStringSubmatch(m)
		return `"` + sub[1] + `":"` + shorten(sub[2]) + `"`
	})
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
func scrape(ctx context.Context, client *http.Client, addr, metric string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
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
