package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/statelab/statelab/internal/library"
)

// MaxBodyBytes is the largest request body any handler reads.
const MaxBodyBytes = 1 << 20

// Envelope is the shape of every JSON answer, as in the original lab: a
// success flag, the data or an error code, and a sentence for people.
type Envelope struct {
	Success bool   `json:"success"`
	Data    any    `json:"data,omitempty"`
	Meta    any    `json:"meta,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Detail  any    `json:"detail,omitempty"`
}

// Encode writes v as JSON with the given status.
func Encode[T any](w http.ResponseWriter, status int, v T) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // the API speaks to programs and terminals, not HTML pages
	// An error here means the client went away; there is no one to tell.
	_ = enc.Encode(v)
}

// OK writes a success envelope.
func OK(w http.ResponseWriter, status int, data any, message string) {
	Encode(w, status, Envelope{Success: true, Data: data, Message: message})
}

// Decode reads one JSON value of type T from the request body. It insists on
// a JSON content type, at most MaxBodyBytes, no unknown fields and nothing
// after the value; every failure is a *library.Error with a sentence that
// says what to fix.
func Decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	if err := checkContentType(r); err != nil {
		return v, err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil && isTooLarge(err) {
			return v, decodeError(err)
		}
		return v, library.Errorf(library.EINVALID, "The request body must hold exactly one JSON value; found more after it.")
	}
	return v, nil
}

// DecodeOptional is Decode for bodies a client may leave out: an empty body
// gives the zero T.
func DecodeOptional[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var zero T
	if !hasBody(r) {
		return zero, nil
	}
	return Decode[T](w, r)
}

// hasBody reports whether r has a body of at least one byte. A chunked body
// of unknown length may still be empty, so it looks, and puts back what it
// read.
func hasBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return false
	}
	if r.ContentLength > 0 {
		return true
	}
	br := bufio.NewReader(r.Body)
	_, err := br.Peek(1)
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return !errors.Is(err, io.EOF)
}

func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return library.Errorf(library.EMEDIATYPE, "Send the body as JSON with the header Content-Type: application/json.")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return library.Errorf(library.EMEDIATYPE, "The body's Content-Type is %q; this API reads only application/json.", ct)
	}
	return nil
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func decodeError(err error) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case isTooLarge(err):
		return library.Errorf(library.ETOOLARGE, "The request body is larger than %d bytes.", MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return library.Errorf(library.EINVALID, "The request body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return library.Errorf(library.EINVALID, "The request body ends in the middle of a JSON value.")
	case errors.As(err, &syntaxErr):
		return library.Errorf(library.EINVALID, "The request body is not valid JSON (at byte %d).", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return library.Errorf(library.EINVALID, "Field %q must be a JSON %s, not a JSON %s.", typeErr.Field, jsonKind(typeErr.Type.String()), typeErr.Value)
		}
		return library.Errorf(library.EINVALID, "The request body must be a JSON %s, not a JSON %s.", jsonKind(typeErr.Type.String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return library.Errorf(library.EINVALID, "The request body has an unknown field %s.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return library.Errorf(library.EINVALID, "The request body could not be read as JSON: %s.", err.Error())
	}
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"), strings.HasPrefix(goType, "*int"):
		return "number"
	case goType == "string", goType == "*string":
		return "string"
	case goType == "bool", goType == "*bool":
		return "boolean"
	default:
		return "object"
	}
}

// statusOf maps each error code to its HTTP status.
var statusOf = map[string]int{
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
	library.ETOOMANYREQUESTS:  http.StatusTooManyRequests,
	library.EMISDIRECTED:      http.StatusMisdirectedRequest,
	library.ESESSIONSTORE:     http.StatusServiceUnavailable,
	library.ECOOKIETOOLARGE:   http.StatusBadRequest,
	library.EKEYREUSED:        http.StatusUnprocessableEntity,
	library.EKEYINUSE:         http.StatusConflict,
	library.EINTERNAL:         http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for an error code.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error writes err as a failure envelope with the status of its code. Only
// internal errors are logged, with their real text; the client gets a fixed
// sentence for those.
func Error(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := library.ErrorCode(err)
	switch {
	case code == library.EINTERNAL && r.Context().Err() != nil:
		// The client hung up and its request's queries were cancelled:
		// nothing went wrong here, and no one is left to answer.
		logger.Debug("client went away", "method", r.Method, "path", r.URL.Path, "err", err)
	case code == library.EINTERNAL:
		logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	env := Envelope{Code: code, Message: library.ErrorMessage(err)}
	var e *library.Error
	if errors.As(err, &e) {
		env.Detail = e.Detail
		if e.RetryAfter > 0 {
			// Whole seconds, rounded up: a client told "0" would retry at once.
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
		}
	}
	Encode(w, StatusOf(code), env)
}

// errorf is a shorthand for handlers that build an error on the spot.
func errorf(code, format string, args ...any) error {
	return library.Errorf(code, format, args...)
}
