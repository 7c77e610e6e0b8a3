package smart

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
)

// TestVerifierKeyIsHMAC holds the written-out HMAC to crypto/hmac's, for
// states on both sides of the stack buffer's bound.
func TestVerifierKeyIsHMAC(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, state := range []string{"", "s", strings.Repeat("A", 43), strings.Repeat("B", maxStackState), strings.Repeat("C", maxStackState+1), strings.Repeat("D", 4096)} {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(verifierLabel + state))
		want := mac.Sum(nil)
		if got := verifierKey(key, state); !hmac.Equal(got[:], want) {
			t.Errorf("verifierKey for a %d-byte state = %x, want HMAC-SHA256 %x", len(state), got, want)
		}
	}
	other := []byte("fedcba9876543210fedcba9876543210")
	if a, b := verifierKey(key, "s"), verifierKey(other, "s"); a == b {
		t.Error("two launch keys derive the same verifier key")
	}
}
