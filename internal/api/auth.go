package api

import (
	"context"
	"net/http"
	"net/mail"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/statelab/statelab/internal/library"
)

// dummyHash is compared against when an email is unknown or has no
// password, so every failed sign-in costs the same bcrypt time and the
// timing does not reveal which emails have accounts. It hashes 32 random
// bytes that were thrown away.
var dummyHash = []byte("$2a$10$nG5pT5soRhiutLCR6pmrnukLDcwqGratNhWf3FR8AUFotpWsP4Aaq")

// Credentials is the body of every sign-in: a stateful login, a stateless
// API key or JWT request.
type Credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// NormalizeEmail trims and lower-cases an email and checks that it is one.
func NormalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return "", library.Errorf(library.EINVALID, "Send an email address.")
	}
	if len(email) > 254 {
		return "", library.Errorf(library.EINVALID, "That email address is longer than 254 characters.")
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return "", library.Errorf(library.EINVALID, "%q is not an email address.", email)
	}
	return email, nil
}

// Authenticate checks an email and password against the store. Every
// failure is the same 401 with the same cost, whatever was wrong.
func Authenticate(ctx context.Context, store library.Store, email, password string) (library.Member, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return library.Member{}, err
	}
	if password == "" {
		return library.Member{}, library.Errorf(library.EINVALID, "Send a password.")
	}
	m, err := store.FindMemberByEmail(ctx, email)
	switch {
	case err == nil && m.PasswordHash != "":
		if bcrypt.CompareHashAndPassword([]byte(m.PasswordHash), []byte(password)) == nil {
			return m, nil
		}
	case err == nil || library.ErrorCode(err) == library.ENOTFOUND:
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
	default:
		return library.Member{}, err
	}
	return library.Member{}, library.Errorf(library.EUNAUTHORIZED, "Wrong email or password.")
}

// CheckCredentials checks a sign-in's credentials and returns the member
// they name, or the error the client gets.
type CheckCredentials func(r *http.Request, c Credentials) (library.Member, error)

// PasswordCheck returns the check every sign-in route makes:
// Authenticate against store.
func PasswordCheck(store library.Store) CheckCredentials {
	return func(r *http.Request, c Credentials) (library.Member, error) {
		return Authenticate(r.Context(), store, c.Email, c.Password)
	}
}

// SignIn is the start every sign-in route shares, whatever it hands out
// afterwards (a session, an API key, a JWT): decode the Credentials, count
// the attempt against limiter (a nil limiter allows all), then check them,
// and tell the limiter whether they were wrong. The limiter comes before
// the check, so a refused attempt costs no bcrypt comparison; a body that
// does not decode counts against no limit, and one without an email or a
// password against no account's. The error is what the route answers with
// api.Error.
func SignIn(w http.ResponseWriter, r *http.Request, limiter *SignInLimiter, check CheckCredentials) (library.Member, error) {
	c, err := Decode[Credentials](w, r)
	if err != nil {
		return library.Member{}, err
	}
	a, err := limiter.begin(r, c)
	if err != nil {
		return library.Member{}, err
	}
	m, err := check(r, c)
	if endErr := limiter.end(w, r, a, err); endErr != nil {
		return library.Member{}, endErr
	}
	return m, err
}
