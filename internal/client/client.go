package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/stateful"
	"github.com/statelab/statelab/stateless"
)

// Headers of the API.
const (
	// ReplicaHeader names the replica that answered.
	ReplicaHeader = api.ReplicaHeader
	// IdempotencyKeyHeader carries the key that makes a write safe to
	// send again (see NewIdempotencyKey).
	IdempotencyKeyHeader = api.IdempotencyKeyHeader
	// ReplayedHeader marks an answer sent again for a key already used.
	ReplayedHeader = api.ReplayedHeader
)

// The JSON bodies of the API: the servers' own types.
type (
	// Credentials is the body of every sign-in.
	Credentials = api.Credentials
	// Me is the data of GET /api/me.
	Me = api.Me
	// PageMeta is the meta of a page of books or borrow records.
	PageMeta = api.PageMeta
	// Health is the body of GET /api/health and of a 200 from GET
	// /api/ready; it is not wrapped in an envelope.
	Health = api.Health
	// BookInput is the body of POST /api/books and PUT /api/books/{id}.
	BookInput = api.BookInput
	// BorrowInput is the optional body of POST /api/books/{id}/borrow.
	BorrowInput = api.BorrowInput
	// BorrowBooksInput is the body of POST /api/borrows.
	BorrowBooksInput = api.BorrowBooksInput
	// CartInput is the body of POST /api/cart/items.
	CartInput = stateful.CartInput
	// Cart is the data of every cart route's answer.
	Cart = stateful.Cart
	// KeyIssued is the data of POST /api/auth/generate-key.
	KeyIssued = stateless.KeyIssued
	// TokenIssued is the data of POST /api/auth/token.
	TokenIssued = stateless.TokenIssued
)

// maxAnswerBytes bounds the body ReadResponse reads. The largest answer
// of the API, a page of MaxBookPageSize books, is a few tens of kilobytes.
const maxAnswerBytes = 16 << 20

// Client sends requests to one server (or one balancer) with one
// credential. Its zero credential sends none; an HTTP client with a cookie
// jar sends the jar's cookies by itself.
type Client struct {
	base string
	hc   *http.Client
	cred Credential
}

// New returns a client of the server at base ("http://host:port") that
// sends its requests with hc (http.DefaultClient when nil).
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), hc: hc}
}

// With returns a copy of c that sends cred with every request. A session
// credential is for an HTTP client without a cookie jar: one with a jar
// would send the jar's cookies as well.
func (c *Client) With(cred Credential) *Client {
	cp := *c
	cp.cred = cred
	return &cp
}

// Request is one request of the API.
type Request struct {
	Method string
	// Path is the route with its ids and query, from the paths and path
	// functions of this package.
	Path string
	// Body, when not nil, is sent as JSON; a []byte or json.RawMessage
	// is sent as it is, and an empty one is no body.
	Body any
	// IdempotencyKey, when set, is sent in the Idempotency-Key header.
	IdempotencyKey string
}

// NewRequest returns r as an HTTP request to c's server with c's
// credential: what Do sends, for a caller that sends it its own way.
func (c *Client) NewRequest(ctx context.Context, r Request) (*http.Request, error) {
	var b []byte
	switch v := r.Body.(type) {
	case nil:
	case []byte:
		b = v
	case json.RawMessage:
		b = v
	default:
		var err error
		if b, err = json.Marshal(r.Body); err != nil {
			return nil, fmt.Errorf("%s %s: encode the body: %w", r.Method, r.Path, err)
		}
	}
	var body io.Reader
	if len(b) > 0 {
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.base+r.Path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.IdempotencyKey != "" {
		req.Header.Set(IdempotencyKeyHeader, r.IdempotencyKey)
	}
	c.cred.Set(req.Header)
	return req, nil
}

// Do sends r and reads the whole answer. The error is only about getting
// an answer (the transport's error, or the body's, as they came); an answer
// that is a failure is a Response whose Err says so.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	req, err := c.NewRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	return ReadResponse(resp)
}

// Response is an answer, read whole, and the envelope it came in.
type Response struct {
	Method, Path string // of the request, for messages
	Status       int
	Header       http.Header
	// Request is the request as it was sent, with the cookies a jar
	// added to it.
	Request *http.Request
	Body    []byte
	// The envelope's fields; all zero when the body is none.
	Success bool
	Code    string
	Message string
	Data    json.RawMessage
	Meta    json.RawMessage
	Detail  json.RawMessage
	// notEnvelope says why the body could not be read as an envelope.
	notEnvelope error
}

// ReadResponse reads and closes the body of resp and decodes its envelope.
// A body that is not an envelope (a proxy's error page, an empty body)
// leaves the envelope's fields zero; Decode then says so. The error is the
// one reading the body returned, as it is: the answer did not arrive.
func ReadResponse(resp *http.Response) (*Response, error) {
	defer resp.Body.Close()
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Request: resp.Request}
	if resp.Request != nil {
		r.Method, r.Path = resp.Request.Method, resp.Request.URL.RequestURI()
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, err
	}
	r.Body = b
	// The envelope's Data, Meta and Detail are interfaces: holding a
	// pointer, they are decoded into what it points at.
	env := api.Envelope{Data: &r.Data, Meta: &r.Meta, Detail: &r.Detail}
	if err := json.Unmarshal(b, &env); err != nil {
		r.notEnvelope = err
	} else {
		r.Success, r.Code, r.Message = env.Success, env.Code, env.Message
	}
	return r, nil
}

// OK reports whether the answer is a success (2xx).
func (r *Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Replica returns the replica that answered (the X-Statelab-Replica
// header); "" when a balancer answered itself.
func (r *Response) Replica() string { return r.Header.Get(ReplicaHeader) }

// Replayed reports whether the answer was stored under the request's
// Idempotency-Key and is sent again: nothing changed this time.
func (r *Response) Replayed() bool { return r.Header.Get(ReplayedHeader) == "true" }

// Cookies returns the cookies the answer sets.
func (r *Response) Cookies() []*http.Cookie {
	return (&http.Response{Header: r.Header}).Cookies()
}

// Outcome names how the request went in a word: "ok" for a success, else
// the error code, or the status when the answer had none.
func (r *Response) Outcome() string {
	switch {
	case r.OK():
		return "ok"
	case r.Code != "":
		return r.Code
	}
	return strconv.Itoa(r.Status)
}

// Err returns nil for a success and an *Error for any other answer.
func (r *Response) Err() error {
	if r.OK() {
		return nil
	}
	e := &Error{Method: r.Method, Path: r.Path, Status: r.Status, Code: r.Code, Message: r.Message}
	if r.notEnvelope != nil {
		e.Message = trim(strings.TrimSpace(string(r.Body)), 200)
	}
	return e
}

// Decode decodes the envelope's data into v.
func (r *Response) Decode(v any) error {
	switch {
	case r.notEnvelope != nil:
		return fmt.Errorf("%s %s: the %d answer is not a JSON envelope (%v): %s", r.Method, r.Path, r.Status, r.notEnvelope, trim(string(r.Body), 200))
	case len(r.Data) == 0:
		return fmt.Errorf("%s %s: the %d answer has no data: %s", r.Method, r.Path, r.Status, trim(string(r.Body), 200))
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("%s %s: the %d answer's data: %w", r.Method, r.Path, r.Status, err)
	}
	return nil
}

// Error is an answer that is not a success: its status, and the code and
// message of its envelope. An answer that was no envelope has no code, and
// the start of its body as the message.
type Error struct {
	Method, Path string
	Status       int
	Code         string // one of library's error codes, or a balancer's
	Message      string
}

// Error implements the error interface.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, code, e.Message)
}

// ErrorCode returns the code of err when it is (or wraps) an *Error, and ""
// for any other error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// NewIdempotencyKey returns a key no other request of this or any run has:
// 128 random bits, in hex.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// trim cuts s to at most n runes, marking the cut.
func trim(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + " …"
}
