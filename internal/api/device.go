package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"time"
)

// DeviceCookie names the cookie that tells the sign-in routes a client
// signed in as an account before: a device the account trusts, which keeps
// signing in while clients that have been guessing wait (OWASP's "device
// cookies"). It is not a session and holds nothing secret: a random device
// id, when it was issued, and a MAC that binds both to the account.
const DeviceCookie = "statelab_device"

// DeviceTrustTTL is how long a device token is trusted after the sign-in
// that issued or renewed it.
const DeviceTrustTTL = 30 * 24 * time.Hour

// devicePath is where the browser sends the device cookie: the sign-in
// routes of both servers, nowhere else.
const devicePath = "/api/auth/"

// deviceTokens signs and checks device tokens with one key.
type deviceTokens struct{ key []byte }

// Sizes of a token's parts: id, issue time (Unix seconds), MAC.
const (
	deviceIDBytes  = 16
	deviceMACBytes = 16
	deviceBytes    = deviceIDBytes + 8 + deviceMACBytes
)

// mac binds a device id and its issue time to an account.
func (d deviceTokens) mac(email string, payload []byte) []byte {
	h := hmac.New(sha256.New, d.key)
	h.Write([]byte("statelab device token\x00"))
	h.Write([]byte(email))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:deviceMACBytes]
}

// trusted returns the id of the device r's cookie names, when its token is
// for email, genuine and not older than DeviceTrustTTL; "" otherwise.
func (d deviceTokens) trusted(r *http.Request, email string, now time.Time) string {
	if len(d.key) == 0 {
		return ""
	}
	c, err := r.Cookie(DeviceCookie)
	if err != nil {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != deviceBytes {
		return ""
	}
	payload, sum := raw[:deviceIDBytes+8], raw[deviceIDBytes+8:]
	if !hmac.Equal(sum, d.mac(email, payload)) {
		return ""
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(payload[deviceIDBytes:])), 0)
	if now.Sub(issued) > DeviceTrustTTL {
		return ""
	}
	return hex.EncodeToString(payload[:deviceIDBytes])
}

// issue sets the device cookie for email after a sign-in: the same device
// id renewed when the client had one (id), a new one otherwise.
func (d deviceTokens) issue(w http.ResponseWriter, r *http.Request, email, id string, now time.Time) {
	if len(d.key) == 0 {
		return
	}
	payload := make([]byte, deviceIDBytes+8)
	if b, err := hex.DecodeString(id); err == nil && len(b) == deviceIDBytes {
		copy(payload, b)
	} else {
		_, _ = rand.Read(payload[:deviceIDBytes]) // crypto/rand.Read never fails on Linux
	}
	binary.BigEndian.PutUint64(payload[deviceIDBytes:], uint64(now.Unix()))
	http.SetCookie(w, &http.Cookie{
		Name:     DeviceCookie,
		Value:    base64.RawURLEncoding.EncodeToString(append(payload, d.mac(email, payload)...)),
		Path:     devicePath,
		MaxAge:   int(DeviceTrustTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// DeviceKey derives the key that signs device tokens from a server's own
// secret (its session key or JWT secret), so that replicas that share the
// one share the other, and neither key can stand in for the other.
func DeviceKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("statelab device tokens v1"))
	return h.Sum(nil)
}
