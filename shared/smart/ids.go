package smart

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// randomBytes is the entropy of a state, a session handle, a binding nonce
// and an assertion jti: 256 bits, above SMART's 122-bit floor for state.
const randomBytes = 32

// Correlation returns the first 16 hex characters of sha256(state). Logs
// and error pages carry it instead of the state, which is a bearer secret
// until the callback consumes it.
func Correlation(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:8])
}

// SessionID returns the hex sha256 of a session handle: the id of the
// session's document, so that a store dump does not reveal usable handles.
func SessionID(handle string) string {
	sum := sha256.Sum256([]byte(handle))
	return hex.EncodeToString(sum[:])
}

// bindingHash is what a launch stores of its browser-binding nonce.
func bindingHash(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

// randomString reads randomBytes from r (crypto/rand if nil) as base64url
// without padding (43 characters).
func randomString(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [randomBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
