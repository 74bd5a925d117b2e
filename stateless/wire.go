package stateless

// The stateless server's own routes, besides the library's (internal/api):
// the ones that hand out and revoke bearer tokens. gorilla/mux templates;
// internal/client builds its requests from them.
const (
	GenerateKeyRoute = "/api/auth/generate-key"
	TokenRoute       = "/api/auth/token"
	KeyRoute         = "/api/auth/keys/{key_id}"
)

// TokenType is the token_type of every token the server issues (RFC 6749),
// and the scheme of the Authorization header that carries an API key or a
// JWT back (RFC 6750).
const TokenType = "Bearer"

// KeyIssued is the data of a 201 from POST /api/auth/generate-key. KeyID
// names the key in DELETE /api/auth/keys/{key_id}.
type KeyIssued struct {
	APIKey string `json:"api_key"`
	KeyID  string `json:"key_id"`
	Email  string `json:"email"`
}

// TokenIssued is the data of a 200 from POST /api/auth/token, with RFC
// 6749's names.
type TokenIssued struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"` // seconds
}
