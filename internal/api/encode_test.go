package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// input is a body with a field of each JSON kind.
type input struct {
	Name string   `json:"name"`
	N    int      `json:"n"`
	Tags []string `json:"tags"`
	On   *bool    `json:"on"`
}

// padded returns a JSON object of exactly n bytes.
func padded(n int) string {
	const open, closing = `{"name":"`, `"}`
	return open + strings.Repeat("a", n-len(open)-len(closing)) + closing
}

func TestDecode(t *testing.T) {
	t.Parallel()
	yes := true
	for _, tt := range []struct {
		name     string
		ctype    string
		body     string
		want     input
		wantCode string // "" for success
		wantMsg  string // part of the message a client reads
	}{
		{name: "object", ctype: "application/json", body: `{"name":"a","n":1,"tags":["x"],"on":true}`, want: input{Name: "a", N: 1, Tags: []string{"x"}, On: &yes}},
		{name: "empty object", ctype: "application/json", body: `{}`},
		{name: "null", ctype: "application/json", body: `null`},
		{name: "whitespace around", ctype: "application/json", body: " \n{\"n\":2}\n\n", want: input{N: 2}},
		{name: "charset parameter", ctype: "application/json; charset=utf-8", body: `{"n":3}`, want: input{N: 3}},
		{name: "media type in capitals", ctype: "Application/JSON", body: `{"n":4}`, want: input{N: 4}},
		{name: "+json media type", ctype: "application/merge-patch+json", body: `{"n":5}`, want: input{N: 5}},
		{name: "exactly the size limit", ctype: "application/json", body: padded(api.MaxBodyBytes), want: input{Name: strings.Repeat("a", api.MaxBodyBytes-11)}},

		{name: "no content type", body: `{}`, wantCode: library.EMEDIATYPE, wantMsg: "application/json"},
		{name: "text/plain", ctype: "text/plain", body: `{}`, wantCode: library.EMEDIATYPE, wantMsg: "text/plain"},
		{name: "form", ctype: "application/x-www-form-urlencoded", body: `n=1`, wantCode: library.EMEDIATYPE},
		{name: "json lookalike", ctype: "application/jsonp", body: `{}`, wantCode: library.EMEDIATYPE},
		{name: "malformed content type", ctype: "application/json; charset", body: `{}`, wantCode: library.EMEDIATYPE},

		{name: "empty", ctype: "application/json", body: "", wantCode: library.EINVALID, wantMsg: "empty"},
		{name: "only whitespace", ctype: "application/json", body: " \n\t", wantCode: library.EINVALID, wantMsg: "empty"},
		{name: "truncated", ctype: "application/json", body: `{"name":`, wantCode: library.EINVALID, wantMsg: "middle"},
		{name: "syntax error", ctype: "application/json", body: `{"name" "a"}`, wantCode: library.EINVALID, wantMsg: "not valid JSON (at byte"},
		{name: "string for a number", ctype: "application/json", body: `{"n":"one"}`, wantCode: library.EINVALID, wantMsg: `Field "n" must be a JSON number, not a JSON string`},
		{name: "number for a string", ctype: "application/json", body: `{"name":1}`, wantCode: library.EINVALID, wantMsg: `Field "name" must be a JSON string`},
		{name: "string for an array", ctype: "application/json", body: `{"tags":"x"}`, wantCode: library.EINVALID, wantMsg: `Field "tags" must be a JSON array`},
		{name: "string for a boolean", ctype: "application/json", body: `{"on":"yes"}`, wantCode: library.EINVALID, wantMsg: `Field "on" must be a JSON boolean`},
		{name: "number too big", ctype: "application/json", body: `{"n":1e400}`, wantCode: library.EINVALID, wantMsg: `"n"`},
		{name: "array for the object", ctype: "application/json", body: `[1]`, wantCode: library.EINVALID, wantMsg: "must be a JSON object, not a JSON array"},
		{name: "string for the object", ctype: "application/json", body: `"text"`, wantCode: library.EINVALID, wantMsg: "must be a JSON object"},
		{name: "unknown field", ctype: "application/json", body: `{"name":"a","colour":"red"}`, wantCode: library.EINVALID, wantMsg: `unknown field "colour"`},
		{name: "second value", ctype: "application/json", body: `{} {}`, wantCode: library.EINVALID, wantMsg: "exactly one JSON value"},
		{name: "trailing garbage", ctype: "application/json", body: `{}x`, wantCode: library.EINVALID, wantMsg: "exactly one JSON value"},
		{name: "trailing bracket", ctype: "application/json", body: `{}]`, wantCode: library.EINVALID, wantMsg: "exactly one JSON value"},
		{name: "one byte over the size limit", ctype: "application/json", body: padded(api.MaxBodyBytes + 1), wantCode: library.ETOOLARGE, wantMsg: fmt.Sprint(api.MaxBodyBytes)},
		{name: "over the size limit after the value", ctype: "application/json", body: `{}` + strings.Repeat(" ", api.MaxBodyBytes), wantCode: library.ETOOLARGE},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			got, err := api.Decode[input](httptest.NewRecorder(), r)
			if code := library.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("code: got %q (%v), want %q", code, err, tt.wantCode)
			}
			if err != nil {
				// Every failure is the client's to fix, told in a sentence.
				var e *library.Error
				if !errors.As(err, &e) {
					t.Errorf("got %T, want a *library.Error", err)
				}
				if msg := library.ErrorMessage(err); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("message: got %q, want it to contain %q", msg, tt.wantMsg)
				}
				return
			}
			if !jsonEqual(t, got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeOptional(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		ctype    string
		body     io.Reader
		want     input
		wantCode string
	}{
		{name: "no body", body: nil},
		{name: "no body with a content type", ctype: "application/json", body: nil},
		{name: "empty body", body: strings.NewReader("")},
		{name: "a body", ctype: "application/json", body: strings.NewReader(`{"n":7}`), want: input{N: 7}},
		{name: "an empty body of unknown length", body: io.MultiReader()},
		{name: "a body of unknown length", ctype: "application/json", body: io.MultiReader(strings.NewReader(`{"n":8}`)), want: input{N: 8}},
		{name: "a body without content type", body: strings.NewReader(`{"n":7}`), wantCode: library.EMEDIATYPE},
		{name: "a malformed body", ctype: "application/json", body: strings.NewReader(`{"n":`), wantCode: library.EINVALID},
		{name: "a body of whitespace", ctype: "application/json", body: strings.NewReader(" "), wantCode: library.EINVALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/", tt.body)
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			got, err := api.DecodeOptional[input](httptest.NewRecorder(), r)
			if code := library.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("code: got %q (%v), want %q", code, err, tt.wantCode)
			}
			if err == nil && !jsonEqual(t, got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// jsonEqual compares two values as the wire would carry them.
func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func TestEncode(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	api.Encode(w, http.StatusAccepted, map[string]string{"html": "<b>Tom & Jerry</b>"})
	if w.Code != http.StatusAccepted {
		t.Errorf("status: got %d, want %d", w.Code, http.StatusAccepted)
	}
	if got, want := w.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	// Programs and terminals read this API: no \u003c in their way.
	if got, want := w.Body.String(), `{"html":"<b>Tom & Jerry</b>"}`+"\n"; got != want {
		t.Errorf("body: got %q, want %q", got, want)
	}
}

func TestOK(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		status  int
		data    any
		message string
		want    string
	}{
		{"data and message", http.StatusCreated, map[string]int{"id": 7}, "Added.", `{"success":true,"data":{"id":7},"message":"Added."}`},
		{"message only", http.StatusOK, nil, "Gone.", `{"success":true,"message":"Gone."}`},
		{"empty list", http.StatusOK, []int{}, "", `{"success":true,"data":[]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			api.OK(w, tt.status, tt.data, tt.message)
			if w.Code != tt.status {
				t.Errorf("status: got %d, want %d", w.Code, tt.status)
			}
			if got := strings.TrimSuffix(w.Body.String(), "\n"); got != tt.want {
				t.Errorf("body: got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestError checks the one place that turns an error into a status and an
// envelope, for every code the domain has.
func TestError(t *testing.T) {
	t.Parallel()
	unavailable := library.Errorf(library.EUNAVAILABLE, "No copy left of book 3")
	unavailable.Detail = map[string][]int64{"unavailable_book_ids": {3}}
	for _, tt := range []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
		wantLogged bool
	}{
		{"bad request", library.Errorf(library.EINVALID, "Say more."), 400, `{"success":false,"code":"bad_request","message":"Say more."}`, false},
		{"unauthorized", library.Errorf(library.EUNAUTHORIZED, "m"), 401, `{"success":false,"code":"unauthorized","message":"m"}`, false},
		{"login required", library.Errorf(library.ELOGINREQUIRED, "m"), 401, `{"success":false,"code":"login_required","message":"m"}`, false},
		{"session lost", library.Errorf(library.ESESSIONLOST, "m"), 401, `{"success":false,"code":"session_lost","message":"m"}`, false},
		{"invalid session", library.Errorf(library.EINVALIDSESSION, "m"), 401, `{"success":false,"code":"invalid_session","message":"m"}`, false},
		{"invalid token", library.Errorf(library.EINVALIDTOKEN, "m"), 401, `{"success":false,"code":"invalid_token","message":"m"}`, false},
		{"forbidden", library.Errorf(library.EFORBIDDEN, "m"), 403, `{"success":false,"code":"forbidden","message":"m"}`, false},
		{"not found", library.Errorf(library.ENOTFOUND, "Book %d not found", 7), 404, `{"success":false,"code":"not_found","message":"Book 7 not found"}`, false},
		{"method not allowed", library.Errorf(library.EMETHODNOTALLOWED, "m"), 405, `{"success":false,"code":"method_not_allowed","message":"m"}`, false},
		{"unavailable with detail", unavailable, 409, `{"success":false,"code":"unavailable","message":"No copy left of book 3","detail":{"unavailable_book_ids":[3]}}`, false},
		{"conflict", library.Errorf(library.ECONFLICT, "m"), 409, `{"success":false,"code":"conflict","message":"m"}`, false},
		{"too large", library.Errorf(library.ETOOLARGE, "m"), 413, `{"success":false,"code":"payload_too_large","message":"m"}`, false},
		{"media type", library.Errorf(library.EMEDIATYPE, "m"), 415, `{"success":false,"code":"unsupported_media_type","message":"m"}`, false},
		{"not ready", library.Errorf(library.ENOTREADY, "m"), 503, `{"success":false,"code":"not_ready","message":"m"}`, false},
		{"wrapped", fmt.Errorf("find book: %w", library.Errorf(library.ENOTFOUND, "No book.")), 404, `{"success":false,"code":"not_found","message":"No book."}`, false},
		{"internal by code", library.Errorf(library.EINTERNAL, "the secret table is locked"), 500,
			`{"success":false,"code":"internal","message":"the secret table is locked"}`, true},
		{"internal", errors.New("sqlite: the secret table is locked"), 500,
			`{"success":false,"code":"internal","message":"` + library.ErrorMessage(errors.New("")) + `"}`, true},
		{"unknown code", library.Errorf("no_such_code", "m"), 500, `{"success":false,"code":"no_such_code","message":"m"}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			w := httptest.NewRecorder()
			api.Error(w, httptest.NewRequest("GET", "/api/books/7", nil), slog.New(slog.NewTextHandler(&logs, nil)), tt.err)
			if w.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", w.Code, tt.wantStatus)
			}
			if got := strings.TrimSuffix(w.Body.String(), "\n"); got != tt.wantBody {
				t.Errorf("body: got %s, want %s", got, tt.wantBody)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
			if logged := logs.Len() > 0; logged != tt.wantLogged {
				t.Errorf("logged: got %v (%q), want %v", logged, logs.String(), tt.wantLogged)
			}
			if tt.wantLogged && !strings.Contains(logs.String(), tt.err.Error()) {
				t.Errorf("log: got %q, want the error's own text %q for the operator", logs.String(), tt.err.Error())
			}
		})
	}
}

// A request whose client hung up cancels its queries; that is not an
// internal error worth an operator's attention.
func TestErrorClientGone(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/api/books/7", nil).WithContext(ctx)
	api.Error(httptest.NewRecorder(), r, slog.New(slog.NewTextHandler(&logs, nil)), fmt.Errorf("sqlite: find book: %w", context.Canceled))
	if logs.Len() > 0 {
		t.Errorf("logged at info or above: %q, want nothing", logs.String())
	}
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{
		library.EINVALID:          http.StatusBadRequest,
		library.EUNAUTHORIZED:     http.StatusUnauthorized,
		library.ELOGINREQUIRED:    http.StatusUnauthorized,
		library.ESESSIONLOST:      http.StatusUnauthorized,
		library.EINVALIDSESSION:   http.StatusUnauthorized,
		library.EINVALIDTOKEN:     http.StatusUnauthorized,
		library.EFORBIDDEN:        http.StatusForbidden,
		library.ENOTFOUND:         http.StatusNotFound,
		library.EMETHODNOTALLOWED: http.StatusMethodNotAllowed,
		library.EUNAVAILABLE:      http.StatusConflict,
		library.ELOANLIMIT:        http.StatusConflict,
		library.ECONFLICT:         http.StatusConflict,
		library.ETOOLARGE:         http.StatusRequestEntityTooLarge,
		library.EMEDIATYPE:        http.StatusUnsupportedMediaType,
		library.ENOTREADY:         http.StatusServiceUnavailable,
		library.ESESSIONSTORE:     http.StatusServiceUnavailable,
		library.ECOOKIETOOLARGE:   http.StatusBadRequest,
		library.EINTERNAL:         http.StatusInternalServerError,
		"":                        http.StatusInternalServerError,
		"no_such_code":            http.StatusInternalServerError,
	} {
		if got := api.StatusOf(code); got != want {
			t.Errorf("StatusOf(%q): got %d, want %d", code, got, want)
		}
	}
}
