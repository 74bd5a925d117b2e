package library

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each is the machine-readable code a client sees in the JSON
// envelope's "code" field; internal/api maps each to an HTTP status.
const (
	EINVALID          = "bad_request"            // the request is malformed or a field is wrong
	EUNAUTHORIZED     = "unauthorized"           // credentials were given but are wrong
	ELOGINREQUIRED    = "login_required"         // stateful: no session cookie at all
	ESESSIONLOST      = "session_lost"           // stateful: a valid cookie whose session this process does not hold
	EINVALIDSESSION   = "invalid_session"        // stateful: a cookie that fails its signature check
	EINVALIDTOKEN     = "invalid_token"          // stateless: missing, malformed, unknown, revoked, expired or forged bearer token
	EFORBIDDEN        = "forbidden"              // authenticated, but not allowed
	ENOTFOUND         = "not_found"              // no such resource
	EMETHODNOTALLOWED = "method_not_allowed"     // the path exists, the method does not
	EUNAVAILABLE      = "unavailable"            // no copy left to borrow
	ELOANLIMIT        = "loan_limit"             // the member holds as many loans as one may (MaxActiveLoans)
	ECONFLICT         = "conflict"               // the request conflicts with the current state (already returned, duplicate)
	ETOOLARGE         = "payload_too_large"      // the body is over the limit
	EMEDIATYPE        = "unsupported_media_type" // the body is not JSON
	ENOTREADY         = "not_ready"              // the process is draining or its store is unreachable
	ETOOMANYREQUESTS  = "too_many_requests"      // over a rate limit (sign-ins); RetryAfter says when to try again
	EMISDIRECTED      = "misdirected_request"    // the Host header names another server (DNS rebinding)
	EINTERNAL         = "internal"               // a bug or an outage; details go to the log, never to the client
)

// Error codes that only some of the stateful server's session stores
// produce: redis can be unreachable, and a cookie can outgrow what a browser
// keeps.
const (
	ESESSIONSTORE   = "session_store_unavailable" // stateful: the shared session store (redis) cannot be reached
	ECOOKIETOOLARGE = "cookie_too_large"          // stateful: the session would outgrow the cookie a browser keeps
)

// Error codes of the Idempotency-Key header (draft-ietf-httpapi-
// idempotency-key-header-07): a key is one request's name, so sending it
// with another request, or again before the first has finished, is refused.
const (
	EKEYREUSED = "idempotency_key_reused" // the key was used for a different request (another route or body)
	EKEYINUSE  = "idempotency_key_in_use" // the request the key names is still being processed
)

// Error is a domain error: a code from the list above and a sentence meant
// for the client. Anything that is not an *Error is treated as internal.
type Error struct {
	Code    string
	Message string
	// Detail is optional machine-readable data for the client, such as the
	// ids of the books that could not be borrowed.
	Detail any
	// RetryAfter, when set, is how long the client should wait before
	// trying again; it becomes the Retry-After header.
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("statelab error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err when it is (or wraps) an *Error,
// EINTERNAL for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-facing message of err. Internal errors get
// a fixed sentence: their text may hold details a client must not see.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error: the server could not complete the request. It has been logged."
}
