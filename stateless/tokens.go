package stateless

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statelab/statelab/internal/library"
)

// API keys look like "slk_<key id>_<secret>": the id finds the stored hash
// without scanning, the secret (256 random bits) is what proves possession.
const (
	apiKeyPrefix  = "slk_"
	keyIDBytes    = 8
	keySecretSize = 32
)

// NewAPIKey returns a fresh key for a member and the record to store: only
// its id and SHA-256 hash, never the key itself.
func NewAPIKey(memberID int64, now time.Time) (string, library.APIKey, error) {
	id := make([]byte, keyIDBytes)
	secret := make([]byte, keySecretSize)
	if _, err := rand.Read(id); err != nil {
		return "", library.APIKey{}, fmt.Errorf("make api key id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return "", library.APIKey{}, fmt.Errorf("make api key secret: %w", err)
	}
	keyID := hex.EncodeToString(id)
	key := apiKeyPrefix + keyID + "_" + base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(key))
	return key, library.APIKey{ID: keyID, MemberID: memberID, Hash: sum[:], CreatedAt: now}, nil
}

// ParseAPIKey returns the key id of a well-formed API key.
func ParseAPIKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, apiKeyPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 2*keyIDBytes || base64.RawURLEncoding.DecodedLen(len(secret)) != keySecretSize {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return "", false
	}
	return id, true
}

// KeyMatches reports in constant time whether key hashes to the stored hash.
func KeyMatches(key string, stored []byte) bool {
	sum := sha256.Sum256([]byte(key))
	return subtle.ConstantTimeCompare(sum[:], stored) == 1
}

// JWT issuer and audience: a token made for another service, or by one, is
// refused.
const (
	Issuer   = "statelab"
	Audience = "statelab-library"
)

// Claims are what a statelab JWT says about its member: everything a request
// needs, so verifying one touches no database.
type Claims struct {
	jwt.RegisteredClaims
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// Tokens issues and verifies HS256 JWTs with one secret. Every replica given
// the same secret accepts every replica's tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// NewTokens returns a Tokens that signs with secret and issues tokens valid
// for ttl. Verification pins the algorithm to HS256 (a token that names
// "none" or RS256 is refused before its signature is looked at) and requires
// an expiry, the issuer and the audience.
func NewTokens(secret []byte, ttl time.Duration, now func() time.Time) *Tokens {
	return &Tokens{
		secret: secret,
		ttl:    ttl,
		now:    now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithIssuer(Issuer),
			jwt.WithAudience(Audience),
			jwt.WithTimeFunc(now),
			// Strict: the signature's spare trailing bits must be zero, so
			// one signature has one spelling.
			jwt.WithStrictDecoding(),
		),
	}
}

// TTL returns how long an issued token is valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed token for m.
func (t *Tokens) Issue(m library.Member) (string, error) {
	now := t.now()
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   strconv.FormatInt(m.ID, 10),
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
		Email: m.Email,
		Name:  m.Name,
		Role:  m.Role,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// ErrExpired is returned by Verify for a genuine token past its expiry.
var ErrExpired = errors.New("token expired")

// Verify checks a token and returns the member it names. Only the exact
// bytes Issue returned verify: the base64 decoder skips CR and LF, so a
// token with any byte outside the base64url alphabet and "." is refused
// before it is parsed.
func (t *Tokens) Verify(token string) (library.Member, error) {
	if strings.IndexFunc(token, notTokenChar) >= 0 {
		return library.Member{}, errors.New("token holds a character outside base64url")
	}
	var c Claims
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if errors.Is(err, jwt.ErrTokenExpired) {
		return library.Member{}, ErrExpired
	} else if err != nil {
		return library.Member{}, err
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 || c.Email == "" {
		return library.Member{}, errors.New("token names no member")
	}
	if c.Role != library.RoleMember && c.Role != library.RoleLibrarian {
		return library.Member{}, fmt.Errorf("token names unknown role %q", c.Role)
	}
	return library.Member{ID: id, Email: c.Email, Name: c.Name, Role: c.Role}, nil
}

// notTokenChar reports whether r cannot appear in a compact JWT.
func notTokenChar(r rune) bool {
	switch {
	case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		return false
	}
	return true
}
