package stateless_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/stateless"
)

// Helpers in this file start with "tk" so they cannot collide with helpers
// of other test files in this package.

var (
	tkSecret = []byte("0123456789abcdef0123456789abcdef")
	tkNow    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tkAlice  = library.Member{ID: 1, Email: "alice@example.com", Name: "Alice Liddell", Role: library.RoleMember}
	tkLorna  = library.Member{ID: 3, Email: "librarian@example.com", Name: "Lorna Librarian", Role: library.RoleLibrarian}
)

const tkTTL = 15 * time.Minute

func tkFixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// tkOtherChar returns a base64url character other than c.
func tkOtherChar(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

func TestAPIKeyRoundTrip(t *testing.T) {
	key, rec, err := stateless.NewAPIKey(42, tkNow)
	if err != nil {
		t.Fatalf("NewAPIKey: %v", err)
	}
	id, ok := stateless.ParseAPIKey(key)
	if !ok {
		t.Fatalf("ParseAPIKey(%q): got ok %v, want %v", key, ok, true)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"parsed id", id, rec.ID},
		{"MemberID", rec.MemberID, int64(42)},
		{"CreatedAt", rec.CreatedAt, tkNow},
		{"hash length", len(rec.Hash), sha256.Size},
		{"prefix", strings.HasPrefix(key, "slk_"+rec.ID+"_"), true},
		{"KeyMatches(key)", stateless.KeyMatches(key, rec.Hash), true},
		{"KeyMatches(key, no hash)", stateless.KeyMatches(key, nil), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}

	// Every one-character change of the key fails, wherever it is.
	for i := range len(key) {
		changed := key[:i] + string(tkOtherChar(key[i])) + key[i+1:]
		if stateless.KeyMatches(changed, rec.Hash) {
			t.Errorf("KeyMatches(key with byte %d changed to %q): got %v, want %v", i, changed[i], true, false)
		}
	}

	other, _, err := stateless.NewAPIKey(42, tkNow)
	if err != nil {
		t.Fatalf("NewAPIKey: %v", err)
	}
	if other == key || stateless.KeyMatches(other, rec.Hash) {
		t.Errorf("a second key: got %q (matches: %v), want a different key that does not match", other, stateless.KeyMatches(other, rec.Hash))
	}
}

func TestParseAPIKey(t *testing.T) {
	id := "0123456789abcdef"
	secret := base64.RawURLEncoding.EncodeToString(make([]byte, 32)) // 43 characters
	tests := []struct {
		name   string
		key    string
		wantID string
		wantOK bool
	}{
		{"well-formed", "slk_" + id + "_" + secret, id, true},
		{"empty", "", "", false},
		{"prefix only", "slk_", "", false},
		{"no secret", "slk_" + id, "", false},
		{"empty secret", "slk_" + id + "_", "", false},
		{"upper-case prefix", "SLK_" + id + "_" + secret, "", false},
		{"other prefix", "sk_" + id + "_" + secret, "", false},
		{"short id", "slk_" + id[:15] + "_" + secret, "", false},
		{"long id", "slk_" + id + "0_" + secret, "", false},
		{"id not hex", "slk_0123456789abcdeg_" + secret, "", false},
		{"short secret", "slk_" + id + "_" + secret[:42], "", false},
		{"long secret", "slk_" + id + "_" + secret + "A", "", false},
		{"padded secret", "slk_" + id + "_" + secret + "=", "", false},
		{"std base64 secret", "slk_" + id + "_" + "+" + secret[1:], "", false},
		{"space in secret", "slk_" + id + "_" + " " + secret[1:], "", false},
		{"trailing newline", "slk_" + id + "_" + secret + "\n", "", false},
		{"a JWT", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl", "", false},
		{"bearer scheme included", "Bearer slk_" + id + "_" + secret, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotID, gotOK := stateless.ParseAPIKey(tt.key)
			if gotID != tt.wantID || gotOK != tt.wantOK {
				t.Errorf("ParseAPIKey(%q): got (%q, %v), want (%q, %v)", tt.key, gotID, gotOK, tt.wantID, tt.wantOK)
			}
		})
	}
}

func TestTokensRoundTrip(t *testing.T) {
	tokens := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tkNow))
	if got := tokens.TTL(); got != tkTTL {
		t.Errorf("TTL: got %v, want %v", got, tkTTL)
	}
	for _, m := range []library.Member{tkAlice, tkLorna} {
		tok, err := tokens.Issue(m)
		if err != nil {
			t.Fatalf("Issue(%v): %v", m, err)
		}
		got, err := tokens.Verify(tok)
		if err != nil {
			t.Fatalf("Verify(Issue(%v)): %v", m, err)
		}
		if got != m {
			t.Errorf("Verify(Issue(m)): got %v, want %v", got, m)
		}
	}
}

// tkClaims returns the claims Issue would make for alice at tkNow, as a map
// a test can break one field of.
func tkClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   stateless.Issuer,
		"sub":   "1",
		"aud":   []string{stateless.Audience},
		"iat":   tkNow.Unix(),
		"exp":   tkNow.Add(tkTTL).Unix(),
		"email": tkAlice.Email,
		"name":  tkAlice.Name,
		"role":  tkAlice.Role,
	}
}

// tkWith returns tkClaims with the given fields set, or removed when the
// value is nil.
func tkWith(fields map[string]any) jwt.MapClaims {
	c := tkClaims()
	maps.Copy(c, fields)
	maps.DeleteFunc(c, func(_ string, v any) bool { return v == nil })
	return c
}

// tkSign signs claims with a method and key.
func tkSign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign with %s: %v", method.Alg(), err)
	}
	return s
}

// tkForge builds a token whose header says alg but whose signature is an
// HMAC-SHA256 with secret: the algorithm-confusion attack, where a server
// that trusts the header verifies an "RS256" token with its HMAC secret.
func tkForge(alg string, secret []byte, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["alg"] = alg
	input, err := tok.SigningString()
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestTokensVerifyRejects(t *testing.T) {
	tokens := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tkNow))
	valid, err := tokens.Issue(tkAlice)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	dot := strings.LastIndexByte(valid, '.')
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", valid[len(valid)-1])
	// A signature of 32 bytes leaves two spare bits in its last base64
	// character; flipping one spells the same bytes differently.
	respelled := valid[:len(valid)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1])

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error // nil: any error will do, but there must be one
	}{
		{"expired", valid, tkNow.Add(tkTTL + time.Second), stateless.ErrExpired},
		{"expired long ago", valid, tkNow.Add(24 * time.Hour), stateless.ErrExpired},
		{"issued in the future", valid, tkNow.Add(-time.Minute), nil},
		{"other secret", tkSign(t, jwt.SigningMethodHS256, []byte("another secret, just as long...."), tkClaims()), tkNow, nil},
		{"alg none", tkSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, tkClaims()), tkNow, nil},
		{"alg none, no dot", strings.TrimSuffix(tkSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, tkClaims()), "."), tkNow, nil},
		{"RS256 header, HMAC signature", tkForge("RS256", tkSecret, tkClaims()), tkNow, nil},
		{"HS512 with the right secret", tkSign(t, jwt.SigningMethodHS512, tkSecret, tkClaims()), tkNow, nil},
		{"HS384 with the right secret", tkSign(t, jwt.SigningMethodHS384, tkSecret, tkClaims()), tkNow, nil},
		{"no exp", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"exp": nil})), tkNow, nil},
		{"wrong iss", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"iss": "someone-else"})), tkNow, nil},
		{"no iss", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"iss": nil})), tkNow, nil},
		{"wrong aud", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"aud": []string{"statelab-admin"}})), tkNow, nil},
		{"no aud", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"aud": nil})), tkNow, nil},
		{"role admin", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"role": "admin"})), tkNow, nil},
		{"no role", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"role": nil})), tkNow, nil},
		{"role in capitals", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"role": "MEMBER"})), tkNow, nil},
		{"sub not a number", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"sub": "alice"})), tkNow, nil},
		{"sub zero", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"sub": "0"})), tkNow, nil},
		{"sub negative", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"sub": "-1"})), tkNow, nil},
		{"sub empty", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"sub": ""})), tkNow, nil},
		{"sub a JSON number", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"sub": 1})), tkNow, nil},
		{"no email", tkSign(t, jwt.SigningMethodHS256, tkSecret, tkWith(map[string]any{"email": nil})), tkNow, nil},
		{"empty", "", tkNow, nil},
		{"garbage", "not a token", tkNow, nil},
		{"three empty segments", "..", tkNow, nil},
		{"signature cut", valid[:dot+1], tkNow, nil},
		{"signature respelled", respelled, tkNow, nil},
		{"newline in signature", valid[:dot+5] + "\n" + valid[dot+5:], tkNow, nil},
		{"CR in signature", valid[:dot+5] + "\r" + valid[dot+5:], tkNow, nil},
		{"padded signature", valid + "=", tkNow, nil},
		{"trailing space", valid + " ", tkNow, nil},
		{"an API key", "slk_0123456789abcdef_" + strings.Repeat("A", 43), tkNow, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tt.now)).Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify(%q): got member %v and no error, want an error", tt.token, m)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify: got error %v, want %v", err, tt.want)
			}
			if tt.want == nil && errors.Is(err, stateless.ErrExpired) {
				t.Errorf("Verify: got error %v, want one that is not ErrExpired", err)
			}
			if m != (library.Member{}) {
				t.Errorf("Verify failed but returned member %v, want the zero Member", m)
			}
		})
	}

	// The checks above must fail for the reason named, not by accident:
	// the same claims, properly signed, verify.
	if _, err := tokens.Verify(tkSign(t, jwt.SigningMethodHS256, tkSecret, tkClaims())); err != nil {
		t.Errorf("Verify(tkClaims signed HS256): got error %v, want %v", err, nil)
	}
	if _, err := tokens.Verify(valid); err != nil {
		t.Errorf("Verify(issued token): got error %v, want %v", err, nil)
	}
}

func TestTokensVerifyExpiryBoundary(t *testing.T) {
	issued, err := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tkNow)).Issue(tkAlice)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	tests := []struct {
		after time.Duration
		want  error
	}{
		{0, nil},
		{tkTTL - time.Second, nil},
		{tkTTL, stateless.ErrExpired},
		{tkTTL + time.Second, stateless.ErrExpired},
	}
	for _, tt := range tests {
		_, err := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tkNow.Add(tt.after))).Verify(issued)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Verify %v after issue: got error %v, want %v", tt.after, err, tt.want)
		}
	}
}

func TestTokensSecretIsShared(t *testing.T) {
	// Two replicas with one secret accept each other's tokens.
	a := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tkNow))
	b := stateless.NewTokens([]byte("another secret, just as long...."), tkTTL, tkFixed(tkNow))
	tok, err := a.Issue(tkAlice)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if _, err := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tkNow)).Verify(tok); err != nil {
		t.Errorf("Verify on a replica with the same secret: got error %v, want %v", err, nil)
	}
	if _, err := b.Verify(tok); err == nil {
		t.Errorf("Verify on a replica with another secret: got no error, want one")
	}
}
