package api_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
)

// TestSignIn checks the start every sign-in route shares: what each step
// answers, and that a step's failure stops the steps after it.
func TestSignIn(t *testing.T) {
	alice := library.Member{ID: 1, Email: "alice@example.com"}
	tests := []struct {
		name        string
		contentType string
		body        string
		spent       int // sign-ins of alice the limiter has counted before
		checked     bool
		want        string // the error's code; "" for a sign-in
	}{
		{"signed in", "application/json", `{"email":"alice@example.com","password":"wonderland"}`, 0, true, ""},
		{"wrong password", "application/json", `{"email":"alice@example.com","password":"nope"}`, 0, true, library.EUNAUTHORIZED},
		{"not JSON", "application/json", `{"email":`, 0, false, library.EINVALID},
		{"unknown field", "application/json", `{"email":"alice@example.com","pass":"x"}`, 0, false, library.EINVALID},
		{"not a JSON content type", "text/plain", `{"email":"alice@example.com","password":"wonderland"}`, 0, false, library.EMEDIATYPE},
		{"over the account's limit", "application/json", `{"email":"Alice@Example.com ","password":"wonderland"}`, 2, false, library.ETOOMANYREQUESTS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			limiter := api.NewSignInLimiter(api.SignInLimits{AccountRate: 1, AccountBurst: 2, AddrRate: 100, AddrBurst: 100}, func() time.Time { return now })
			checked := false
			check := func(r *http.Request, c api.Credentials) (library.Member, error) {
				checked = true
				if c.Email == "alice@example.com" && c.Password == "wonderland" {
					return alice, nil
				}
				return library.Member{}, library.Errorf(library.EUNAUTHORIZED, "Wrong email or password.")
			}
			for range tt.spent { // wrong passwords spend the account's sign-ins
				_, err := api.SignIn(httptest.NewRecorder(), siRequest("application/json", `{"email":"alice@example.com","password":"nope"}`), limiter, check)
				if got := library.ErrorCode(err); got != library.EUNAUTHORIZED {
					t.Fatalf("a wrong password to spend the budget: %v, want %s", err, library.EUNAUTHORIZED)
				}
			}
			checked = false
			m, err := api.SignIn(httptest.NewRecorder(), siRequest(tt.contentType, tt.body), limiter, check)
			if got := library.ErrorCode(err); got != tt.want || tt.want == "" && err != nil {
				t.Fatalf("SignIn: error %v (code %q), want code %q", err, got, tt.want)
			}
			if tt.want == "" && m != alice {
				t.Errorf("SignIn: got member %+v, want %+v", m, alice)
			}
			if checked != tt.checked {
				t.Errorf("the credentials were checked: %v, want %v", checked, tt.checked)
			}
			if tt.want == library.ETOOMANYREQUESTS {
				if e := (*library.Error)(nil); !errors.As(err, &e) || e.RetryAfter <= 0 {
					t.Errorf("a refused sign-in must say when to retry: %#v", err)
				}
			}
		})
	}
}

// TestSignInCountsDecodedAttemptsOnly checks that a body that does not
// decode spends none of the account's sign-ins, and that a nil limiter
// allows all.
func TestSignInCountsDecodedAttemptsOnly(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	limiter := api.NewSignInLimiter(api.SignInLimits{AccountRate: 1, AccountBurst: 1, AddrRate: 100, AddrBurst: 100}, func() time.Time { return now })
	ok := func(*http.Request, api.Credentials) (library.Member, error) { return library.Member{ID: 1}, nil }
	for range 3 {
		if _, err := api.SignIn(httptest.NewRecorder(), siRequest("application/json", `{"email":"bob@example.com",`), limiter, ok); library.ErrorCode(err) != library.EINVALID {
			t.Fatalf("a broken body: got %v, want %s", err, library.EINVALID)
		}
	}
	body := `{"email":"bob@example.com","password":"x"}`
	if _, err := api.SignIn(httptest.NewRecorder(), siRequest("application/json", body), limiter, ok); err != nil {
		t.Fatalf("the first sign-in that decodes: %v", err)
	}
	if _, err := api.SignIn(httptest.NewRecorder(), siRequest("application/json", body), limiter, ok); library.ErrorCode(err) != library.ETOOMANYREQUESTS {
		t.Fatalf("the second, beyond a burst of 1: got %v, want %s", err, library.ETOOMANYREQUESTS)
	}
	for range 5 {
		if _, err := api.SignIn(httptest.NewRecorder(), siRequest("application/json", body), nil, ok); err != nil {
			t.Fatalf("a nil limiter: %v", err)
		}
	}
}

func siRequest(contentType, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/auth/login", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	return r
}
