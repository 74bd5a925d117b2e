package stateless_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statelab/statelab/internal/api"
	"github.com/statelab/statelab/internal/library"
	"github.com/statelab/statelab/internal/sqlite"
	"github.com/statelab/statelab/stateless"
)

// The fuzz targets' credentials are fixed (a fixed secret, clock and key
// bytes), so every fuzz worker process holds the same valid ones and the
// committed corpus can name them.
const fuzzKeyID = "0123456789abcdef"

// fuzzAPIKey is a well-formed API key whose secret is 32 fixed bytes.
func fuzzAPIKey() string {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i * 7)
	}
	return "slk_" + fuzzKeyID + "_" + base64.RawURLEncoding.EncodeToString(secret)
}

// fuzzIssued returns the Tokens of the fuzz targets and the JWTs it issued.
func fuzzIssued(f *testing.F, members ...library.Member) (*stateless.Tokens, []string) {
	tokens := stateless.NewTokens(tkSecret, tkTTL, tkFixed(tkNow))
	var issued []string
	for _, m := range members {
		tok, err := tokens.Issue(m)
		if err != nil {
			f.Fatalf("Issue: %v", err)
		}
		issued = append(issued, tok)
	}
	return tokens, issued
}

// fuzzMutations returns a few near misses of tok (a JWT or an API key):
// seeds from which the fuzzer looks for a change that still verifies.
func fuzzMutations(tok string) []string {
	flip := func(i int) string { return tok[:i] + string(tkOtherChar(tok[i])) + tok[i+1:] }
	mid := len(tok) / 2
	ms := []string{
		flip(len(tok) - 1),
		flip(mid),
		flip(5),
		tok[:len(tok)-1],
		tok + "=",
		tok[:mid] + "\n" + tok[mid:],
		strings.ToUpper(tok),
	}
	if dot := strings.LastIndexByte(tok, '.'); dot >= 0 {
		ms = append(ms, flip(dot+1), flip(dot-1), tok[:dot], tok[:dot+3]+"\r"+tok[dot+3:])
	}
	return ms
}

// FuzzBearerToken feeds arbitrary strings to ParseAPIKey and Tokens.Verify.
// Neither may panic, and Verify must accept only the very tokens Issue
// returned, byte for byte.
func FuzzBearerToken(f *testing.F) {
	tokens, issued := fuzzIssued(f, tkAlice, tkLorna)
	want := map[string]library.Member{issued[0]: tkAlice, issued[1]: tkLorna}

	for _, tok := range issued {
		f.Add(tok)
		for _, m := range fuzzMutations(tok) {
			f.Add(m)
		}
	}
	key := fuzzAPIKey()
	for _, s := range []string{key, key[:len(key)-1], key + "A", "slk_", "slk_" + fuzzKeyID + "_", "", "a.b.c", "..", "e30.e30.", "Bearer " + key} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := stateless.ParseAPIKey(s); ok {
			if !strings.HasPrefix(s, "slk_"+id+"_") || len(id) != 16 {
				t.Fatalf("ParseAPIKey(%q): got id %q, which does not follow slk_", s, id)
			}
			if _, err := hex.DecodeString(id); err != nil {
				t.Fatalf("ParseAPIKey(%q): got id %q, which is not hex", s, id)
			}
		}
		m, err := tokens.Verify(s)
		wantM, isIssued := want[s]
		switch {
		case err == nil && !isIssued:
			t.Fatalf("Verify(%q) accepted a token Issue never returned, for %v", s, m)
		case err != nil && isIssued:
			t.Fatalf("Verify(issued token %q): %v", s, err)
		case err == nil && m != wantM:
			t.Fatalf("Verify(issued token): got %v, want %v", m, wantM)
		case err != nil && m != (library.Member{}):
			t.Fatalf("Verify(%q) failed with %v but returned member %v", s, err, m)
		}
	})
}

// FuzzAuthorizationHeader sends GET /api/me with an arbitrary Authorization
// header through the whole stateless server. It must never answer 5xx, and
// answers 200 only for a credential that was really issued: the API key
// stored for alice or a JWT issued for her.
func FuzzAuthorizationHeader(f *testing.F) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatalf("open database: %v", err)
	}
	f.Cleanup(func() { db.Close() })
	alice, err := db.FindMemberByEmail(ctx, "alice@example.com")
	if err != nil {
		f.Fatalf("find alice: %v", err)
	}
	key := fuzzAPIKey()
	sum := sha256.Sum256([]byte(key))
	if err := db.CreateAPIKey(ctx, library.APIKey{ID: fuzzKeyID, MemberID: alice.ID, Hash: sum[:], CreatedAt: tkNow}); err != nil {
		f.Fatalf("store api key: %v", err)
	}
	tokens, jwts := fuzzIssued(f, alice)
	valid := append([]string{key}, jwts...)

	handler := stateless.NewServer(api.Config{
		Replica:  "fuzz",
		Store:    db,
		Logger:   slog.New(slog.DiscardHandler),
		Registry: prometheus.NewRegistry(),
	}, tokens, tkFixed(tkNow))

	for _, tok := range valid {
		r := httptest.NewRequest("GET", "/api/me", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		if handler.ServeHTTP(w, r); w.Code != 200 {
			f.Fatalf("the seed credential %q: got status %d (%s), want 200", tok, w.Code, w.Body)
		}
		f.Add("Bearer " + tok)
		f.Add("bearer  " + tok + " ")
		for _, m := range fuzzMutations(tok) {
			f.Add("Bearer " + m)
		}
	}
	for _, h := range []string{
		"", "Bearer", "Bearer ", "Bearer  ", "Basic YWxpY2U6d29uZGVybGFuZA==", "Token " + key,
		"Bearer slk_" + fuzzKeyID + "_" + strings.Repeat("A", 43),
		"Bearer slk_fedcba9876543210_" + strings.Repeat("A", 43),
		"Bearer slk_0123456789ABCDEF" + key[len("slk_")+16:],
		"Bearer a.b.c", "Bearer ..", "Bearer\t" + key, "Bearer " + key + "\x00",
	} {
		f.Add(h)
	}

	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/api/me", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)

		switch w.Code {
		case 200:
			// The credential the header carries, read as RFC 6750 reads it.
			scheme, tok, _ := strings.Cut(header, " ")
			if !strings.EqualFold(scheme, "Bearer") || !slices.Contains(valid, strings.TrimSpace(tok)) {
				t.Fatalf("Authorization %q: got 200, want 401: that credential was never issued", header)
			}
			var body struct {
				Data struct {
					ID    int64  `json:"id"`
					Email string `json:"email"`
				} `json:"data"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Data.ID != alice.ID || body.Data.Email != alice.Email {
				t.Fatalf("Authorization %q: 200 with body %s, want alice (error %v)", header, w.Body, err)
			}
		case 401:
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
				t.Fatalf("Authorization %q: 401 with WWW-Authenticate %q, want a Bearer challenge", header, got)
			}
		default:
			t.Fatalf("Authorization %q: got status %d (body %s), want 200 or 401", header, w.Code, w.Body)
		}
	})
}
