package smart

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// LaunchKeySize is the length in bytes of Flow.LaunchKey.
const LaunchKeySize = 32

// verifierPrefix marks a PKCE verifier sealed under the launch key.
const verifierPrefix = "k1."

// verifierAEAD is AES-256-GCM under the key of one launch:
// HMAC-SHA256(launchKey, "smartcalc verifier" NUL state). Opening a sealed
// verifier needs both the launch key, which only the launch and callback
// functions hold (a Secret Manager secret), and the state, which the store
// never holds (the launch document is named by its SHA-256). So a store dump
// yields no verifier, not with a leaked state (a callback URL in a log, say)
// and not with the launch key alone.
func verifierAEAD(launchKey []byte, state string) (cipher.AEAD, error) {
	if len(launchKey) != LaunchKeySize {
		return nil, fmt.Errorf("launch key must be %d bytes, got %d", LaunchKeySize, len(launchKey))
	}
	key := verifierKey(launchKey, state)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// verifierLabel separates the verifier keys from any other use of the
// launch key.
const verifierLabel = "smartcalc verifier\x00"

// verifierKey is HMAC-SHA256(launchKey, verifierLabel || state) (RFC 2104),
// written out over stack buffers for a state of up to maxStackState bytes
// (every state Begin makes), because it runs on every launch and
// crypto/hmac allocates six times per key; longer input takes crypto/hmac.
// TestVerifierKeyIsHMAC holds the two to the same result. launchKey is
// LaunchKeySize bytes, shorter than SHA-256's block, so it is used as is.
func verifierKey(launchKey []byte, state string) [sha256.Size]byte {
	if len(state) > maxStackState {
		mac := hmac.New(sha256.New, launchKey)
		mac.Write([]byte(verifierLabel))
		mac.Write([]byte(state))
		var out [sha256.Size]byte
		mac.Sum(out[:0])
		return out
	}
	var inner [sha256.BlockSize + len(verifierLabel) + maxStackState]byte
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		k := byte(0)
		if i < len(launchKey) {
			k = launchKey[i]
		}
		inner[i] = k ^ 0x36
		outer[i] = k ^ 0x5c
	}
	n := sha256.BlockSize
	n += copy(inner[n:], verifierLabel)
	n += copy(inner[n:], state)
	ih := sha256.Sum256(inner[:n])
	copy(outer[sha256.BlockSize:], ih[:])
	return sha256.Sum256(outer[:])
}

// maxStackState bounds the state verifierKey hashes without allocating;
// Begin's states are 43 bytes.
const maxStackState = 128

// sealVerifier seals verifier for the launch with state, with a random
// nonce from r (crypto/rand when nil).
func sealVerifier(launchKey []byte, state, verifier string, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	aead, err := verifierAEAD(launchKey, state)
	if err != nil {
		return "", fmt.Errorf("seal verifier: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(verifier)+aead.Overhead())
	if _, err := io.ReadFull(r, nonce); err != nil {
		return "", fmt.Errorf("seal verifier: %w", err)
	}
	return verifierPrefix + base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(verifier), nil)), nil
}

// OpenLaunchVerifier opens the PKCE verifier a launch document holds, with
// the launch key and the launch's state. It fails alike for a wrong key, a
// wrong state and a tampered value.
func OpenLaunchVerifier(launchKey []byte, state, sealed string) (string, error) {
	body, ok := strings.CutPrefix(sealed, verifierPrefix)
	if !ok {
		return "", errors.New("sealed verifier: unknown format")
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", errors.New("sealed verifier: not base64url")
	}
	aead, err := verifierAEAD(launchKey, state)
	if err != nil {
		return "", fmt.Errorf("sealed verifier: %w", err)
	}
	if len(raw) < aead.NonceSize() {
		return "", errors.New("sealed verifier: too short")
	}
	out, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], nil)
	if err != nil {
		return "", errors.New("sealed verifier: does not open under this launch key and state")
	}
	return string(out), nil
}
