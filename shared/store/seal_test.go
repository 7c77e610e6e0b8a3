package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/store"
)

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := store.NewSealer(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Errorf("NewSealer(%d-byte key) = %v, want an error naming the 32-byte size", n, err)
		}
	}
	if _, err := store.NewSealer(make([]byte, 32)); err != nil {
		t.Errorf("NewSealer(32-byte key) = %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	s := testSealer(t)
	otherKey := sha256.Sum256([]byte("another key"))
	other, err := store.NewSealer(otherKey[:])
	if err != nil {
		t.Fatal(err)
	}
	const plain, aad = "eyJhbGciOi.access-token.sig", "session-a"

	sealed, err := s.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, "v1.") || strings.Contains(sealed, plain) {
		t.Fatalf("Seal = %q, want v1. and no plaintext", sealed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "v1."))
	if err != nil {
		t.Fatalf("sealed body is not base64url: %v", err)
	}
	if want := 12 + len(plain) + 16; len(raw) != want {
		t.Errorf("sealed body is %d bytes, want nonce+ciphertext+tag = %d", len(raw), want)
	}
	if got, err := s.Open(sealed, aad); err != nil || got != plain {
		t.Errorf("Open = %q, %v; want %q", got, err, plain)
	}

	again, _ := s.Seal(plain, aad)
	if again == sealed || bytes.Equal(raw[:12], mustDecode(t, again)[:12]) {
		t.Error("two seals of one value share a nonce")
	}

	flipped := mustDecode(t, sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		sealer *store.Sealer
		sealed string
		aad    string
	}{
		{"other aad", s, sealed, "session-b"},
		{"empty aad", s, sealed, ""},
		{"other key", other, sealed, aad},
		{"tampered", s, "v1." + base64.RawURLEncoding.EncodeToString(flipped), aad},
		{"truncated", s, sealed[:len(sealed)-4], aad},
		{"no prefix", s, strings.TrimPrefix(sealed, "v1."), aad},
		{"unknown version", s, "v2." + strings.TrimPrefix(sealed, "v1."), aad},
		{"not base64", s, "v1.***", aad},
		{"too short", s, "v1.AAAA", aad},
		{"plaintext", s, plain, aad},
	}
	for _, tt := range tests {
		got, err := tt.sealer.Open(tt.sealed, tt.aad)
		if err == nil {
			t.Errorf("%s: Open = %q, want an error", tt.name, got)
			continue
		}
		if !strings.HasPrefix(err.Error(), "store: open: ") || strings.Contains(err.Error(), plain) {
			t.Errorf("%s: error %q", tt.name, err)
		}
	}
}

func TestSealEmpty(t *testing.T) {
	s := testSealer(t)
	if got, err := s.Seal("", "id"); got != "" || err != nil {
		t.Errorf(`Seal("") = %q, %v; want ""`, got, err)
	}
	if got, err := s.Open("", "id"); got != "" || err != nil {
		t.Errorf(`Open("") = %q, %v; want ""`, got, err)
	}
	var none *store.Sealer
	if _, err := none.Seal("token", "id"); err == nil {
		t.Error("nil Sealer sealed a token")
	}
	if got, err := none.Seal("", "id"); got != "" || err != nil {
		t.Errorf(`nil Sealer: Seal("") = %q, %v`, got, err)
	}
}

func mustDecode(t *testing.T, sealed string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "v1."))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
