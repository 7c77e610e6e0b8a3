package smart

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/store"
)

// HandoffTTL bounds callback → the app page's exchange of the hand-off code.
const HandoffTTL = 60 * time.Second

// ErrHandoff means a hand-off code is unknown, already used, expired, or
// shown by another browser than the one it was issued to. The API answers
// 401 for all of them alike.
var ErrHandoff = errors.New("smart: hand-off code not valid here")

// handoffDocPrefix names hand-off documents among the launches: they use
// the same exactly-once consumption.
const handoffDocPrefix = "handoff."

// Handoff is a one-time code for the app page, which exchanges it for the
// session handle (architecture §1): the handle never rides in a URL.
type Handoff struct {
	// Code goes in the app URL's fragment (#handoff=…). A bearer secret
	// for at most HandoffTTL and for one use: never log it.
	Code string
	// Nonce binds the code to the browser: the callback hands it back in
	// a cookie (HandoffCookie) or in sessionStorage. "" when the
	// registration turned the browser binding off.
	Nonce string
	// Correlation is Correlation(Code), for cookie names and logs.
	Correlation string
}

// newHandoff makes a hand-off of handle for a session of registration reg:
// the code and binding nonce for the browser, and the document that the
// callback stores with the session (Complete). The document holds neither
// the code nor the handle in a usable form: it is named by sha256(code) and
// holds the handle sealed under a key derived from the code.
func (f *Flow) newHandoff(reg *Registration, handle string, now time.Time) (*Handoff, *store.Launch, error) {
	code, err := randomString(f.Rand)
	if err != nil {
		return nil, nil, fmt.Errorf("hand-off: %w", err)
	}
	h := &Handoff{Code: code, Correlation: Correlation(code)}
	bindHash := ""
	if reg.BindingRequired() {
		if h.Nonce, err = randomString(f.Rand); err != nil {
			return nil, nil, fmt.Errorf("hand-off: %w", err)
		}
		bindHash = bindingHash(h.Nonce)
	}
	sealed, err := sealHandle(code, handle, f.Rand)
	if err != nil {
		return nil, nil, err
	}
	return h, &store.Launch{
		State:          handoffID(code),
		RegistrationID: reg.ID,
		Verifier:       sealed,
		BindingHash:    bindHash,
		CreatedAt:      now,
		ExpiresAt:      now.Add(HandoffTTL),
	}, nil
}

// ExchangeHandoff spends code, once, and returns the session handle if nonce
// is the one the code was issued with. Every failure wraps ErrHandoff,
// except a store failure.
func (f *Flow) ExchangeHandoff(ctx context.Context, code, nonce string) (string, error) {
	if len(code) != 43 {
		return "", fmt.Errorf("%w: malformed code", ErrHandoff)
	}
	l, err := f.Store.ConsumeLaunch(ctx, handoffID(code))
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConsumed), errors.Is(err, store.ErrExpired):
		return "", fmt.Errorf("%w: %w", ErrHandoff, err)
	case err != nil:
		return "", fmt.Errorf("smart: hand-off: consume: %w", err)
	}
	if l.BindingHash != "" && (nonce == "" ||
		subtle.ConstantTimeCompare([]byte(bindingHash(nonce)), []byte(l.BindingHash)) != 1) {
		return "", fmt.Errorf("%w: browser binding does not match", ErrHandoff)
	}
	handle, err := openHandle(code, l.Verifier)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrHandoff, err)
	}
	return handle, nil
}

func handoffID(code string) string {
	sum := sha256.Sum256([]byte("handoff\x00" + code))
	return handoffDocPrefix + hex.EncodeToString(sum[:])
}

// secretAEAD is AES-256-GCM under a key derived from a bearer secret that
// the store never holds (a hand-off code), for label.
func secretAEAD(label, secret string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte(label + "-key\x00" + secret))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealHandle(code, handle string, r io.Reader) (string, error) {
	return sealWithSecret("handoff", code, handle, r)
}

func openHandle(code, sealed string) (string, error) {
	return openWithSecret("handoff", code, sealed)
}

// sealWithSecret seals plaintext under secretAEAD(label, secret).
func sealWithSecret(label, secret, plaintext string, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	aead, err := secretAEAD(label, secret)
	if err != nil {
		return "", fmt.Errorf("smart: hand-off: %w", err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(r, nonce); err != nil {
		return "", fmt.Errorf("smart: hand-off: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(plaintext), nil)), nil
}

// openWithSecret opens what sealWithSecret sealed.
func openWithSecret(label, secret, sealed string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", errors.New("sealed " + label + ": not base64url")
	}
	aead, err := secretAEAD(label, secret)
	if err != nil {
		return "", err
	}
	if len(raw) < aead.NonceSize() {
		return "", errors.New("sealed " + label + ": too short")
	}
	out, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], nil)
	if err != nil {
		return "", errors.New("sealed " + label + ": does not open")
	}
	return string(out), nil
}

// LaunchID is the id of the launch document for state: sha256(state), so
// that a store dump holds no usable state.
func LaunchID(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}
