package api_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// fuzzInput has a field of each kind the API's bodies use.
type fuzzInput struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	IDs   []int64 `json:"ids"`
	Flag  *bool   `json:"flag"`
}

// fuzzDecodeCodes are the only codes Decode may fail with: a client's
// body can be wrong, too large or not JSON, but never the server's fault.
var fuzzDecodeCodes = map[string]bool{library.EINVALID: true, library.ETOOLARGE: true, library.EMEDIATYPE: true}

// FuzzDecode feeds arbitrary bodies and content types to Decode and
// DecodeOptional. When nearLimit is set the body is preceded by whitespace
// so that MaxBodyBytes falls in the middle of it.
func FuzzDecode(f *testing.F) {
	for _, s := range []struct {
		body, contentType string
		nearLimit         bool
	}{
		{`{"name":"a","count":1,"ids":[1,2],"flag":true}`, "application/json", false},
		{`{"name":"a","count":1,"ids":[1,2],"flag":true}`, "application/json", true},
		{`{"flag":null,"ids":null}`, "application/json; charset=utf-8", false},
		{`{}`, "application/problem+json", false},
		{`{} {}`, "application/json", false},
		{`{}]`, "application/json", false},
		{`{"count":"1"}`, "application/json", false},
		{`{"count":1.5}`, "application/json", false},
		{`{"count":1e400}`, "application/json", false},
		{`{"ids":[1,"x"]}`, "application/json", false},
		{`{"ids":[18446744073709551616]}`, "application/json", false},
		{`{"flag":"yes"}`, "application/json", false},
		{`{"unknown":1}`, "application/json", false},
		{`{"Name":"case-insensitive match"}`, "application/json", false},
		{`[1,2]`, "application/json", false},
		{`"text"`, "application/json", false},
		{`{"name":"\ud800"}`, "application/json", false},
		{`{"name":`, "application/json", false},
		{"", "application/json", false},
		{"   \n", "application/json", false},
		{"\xff\xfe{}", "application/json", false},
		{`{}`, "", false},
		{`{}`, "text/plain", false},
		{`{}`, "application/json; charset", false},
		{`{}`, "application/json;;", false},
		{`{}`, `application/json; x="`, false},
		{`name=a`, "application/x-www-form-urlencoded", false},
	} {
		f.Add([]byte(s.body), s.contentType, s.nearLimit)
	}

	var pad []byte // whitespace up to the limit, made once for every call
	f.Fuzz(func(t *testing.T, body []byte, contentType string, nearLimit bool) {
		if nearLimit {
			if pad == nil {
				pad = bytes.Repeat([]byte(" "), api.MaxBodyBytes)
			}
			n := max(0, api.MaxBodyBytes-len(body)/2)
			body = append(pad[:n:n], body...)
		}
		for _, name := range []string{"Decode", "DecodeOptional"} {
			r := httptest.NewRequest("POST", "/api/fuzz", bytes.NewReader(body))
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
			w := httptest.NewRecorder()
			var err error
			if name == "Decode" {
				_, err = api.Decode[fuzzInput](w, r)
			} else {
				_, err = api.DecodeOptional[fuzzInput](w, r)
			}
			if err == nil {
				if len(body) > 0 && !json.Valid(body) {
					t.Fatalf("%s(%q, %q) accepted a body that is not one JSON value", name, body, contentType)
				}
				continue
			}
			e, ok := err.(*library.Error)
			if !ok {
				t.Fatalf("%s(%q, %q): got error %T %v, want a *library.Error", name, body, contentType, err, err)
			}
			if !fuzzDecodeCodes[e.Code] {
				t.Fatalf("%s(%q, %q): got code %q (%s), want bad_request, payload_too_large or unsupported_media_type", name, body, contentType, e.Code, e.Message)
			}
			if w.Code != 200 || w.Body.Len() != 0 {
				t.Fatalf("%s(%q, %q) wrote a response (%d %q); writing one is the caller's job", name, body, contentType, w.Code, w.Body)
			}
		}
	})
}

// FuzzParseBookFilter feeds arbitrary query strings to ParseBookFilter and
// ParsePage: either a filter that passes library's own Validate (so the
// store never sees a search over the cap or a page out of range), or a
// bad request, never anything else.
func FuzzParseBookFilter(f *testing.F) {
	for _, s := range []string{
		"", "q=tolkien&limit=5&offset=10", "q=%25%25%25", "q=" + strings.Repeat("%25", 200), "q=" + strings.Repeat("a", 201),
		"author=" + strings.Repeat("_", 200), "q=" + strings.Repeat("+", 300), "available=yes", "available=1",
		"limit=0", "limit=101", "limit=-1", "limit=1e2", "limit=99999999999999999999", "offset=-5", "offset=x",
		"q=a&q=b", "q=%ff%fe", "limit=+5", "limit= 5", ";;&&==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http answers a malformed query before a handler sees it
		}
		bf, err := api.ParseBookFilter(q)
		if err == nil {
			if verr := bf.Validate(); verr != nil {
				t.Fatalf("ParseBookFilter(%q) = %+v, which fails Validate: %v", raw, bf, verr)
			}
		} else if library.ErrorCode(err) != library.EINVALID {
			t.Fatalf("ParseBookFilter(%q): got %v, want a bad_request", raw, err)
		}
		limit, offset, err := api.ParsePage(q, library.DefaultBorrowPageSize, library.MaxBorrowPageSize)
		if err == nil {
			if verr := (library.BorrowFilter{Limit: limit, Offset: offset}).Validate(); verr != nil {
				t.Fatalf("ParsePage(%q) = %d, %d, which fails Validate: %v", raw, limit, offset, verr)
			}
		} else if library.ErrorCode(err) != library.EINVALID {
			t.Fatalf("ParsePage(%q): got %v, want a bad_request", raw, err)
		}
	})
}
