package store

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealPrefix marks the format of a sealed value: AES-256-GCM, a random
// 12-byte nonce, then the ciphertext and its 16-byte tag, base64url without
// padding. A later format (for example one naming a key for rotation) gets
// a new prefix, so old values stay readable.
const sealPrefix = "v1."

// SealKeySize is the length in bytes of a sealing key (AES-256).
const SealKeySize = 32

// Sealer encrypts token fields before they are persisted. It uses
// AES-256-GCM with a random nonce per value and binds each value to
// additional authenticated data, which the stores set to the session id so
// that a sealed token copied into another session's document fails to open.
//
// A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for key, which must be exactly SealKeySize (32)
// random bytes, for example from Secret Manager.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SealKeySize {
		return nil, fmt.Errorf("store: sealing key must be %d bytes (AES-256), got %d", SealKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: sealing key: %w", err)
	}
	// NewGCMWithRandomNonce draws a fresh 12-byte nonce from crypto/rand for
	// every Seal and prepends it to the output.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("store: sealing key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad and returns a printable, versioned
// string. An empty plaintext (no refresh token, say) seals to "", so absence
// survives a round trip without a ciphertext.
func (s *Sealer) Seal(plaintext, aad string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	if s == nil || s.aead == nil {
		return "", errors.New("store: seal: no sealing key configured")
	}
	ct := s.aead.Seal(nil, nil, []byte(plaintext), []byte(aad))
	return sealPrefix + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open reverses Seal. It fails if sealed was not produced by Seal under the
// same key and the same aad, or was altered. Open("") returns "".
func (s *Sealer) Open(sealed, aad string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if s == nil || s.aead == nil {
		return "", errors.New("store: open: no sealing key configured")
	}
	body, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errors.New("store: open: unknown sealed format")
	}
	ct, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", errors.New("store: open: malformed sealed value")
	}
	pt, err := s.aead.Open(nil, nil, ct, []byte(aad))
	if err != nil {
		// Deliberately vague: wrong key, wrong aad and tampering look alike.
		return "", ErrUnsealable
	}
	return string(pt), nil
}
