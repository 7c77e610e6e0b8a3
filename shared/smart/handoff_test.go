package smart_test

import (
	"context"
	"errors"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// TestHandoff covers the hand-off code: single use, at most HandoffTTL, and
// only for the browser that holds its binding nonce. A code taken from
// history, from a link or by another browser gets ErrHandoff (the API's
// 401).
func TestHandoff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		attack  func(fx *fixture, h, other *smart.Handoff) (code, nonce string)
		wantErr bool
	}{
		{"the launching browser", func(fx *fixture, h, o *smart.Handoff) (string, string) { return h.Code, h.Nonce }, false},
		{"replayed code (history)", func(fx *fixture, h, o *smart.Handoff) (string, string) {
			if _, err := fx.flow.ExchangeHandoff(context.Background(), h.Code, h.Nonce); err != nil {
				t.Fatal(err)
			}
			return h.Code, h.Nonce
		}, true},
		{"link opened in another browser (no nonce)", func(fx *fixture, h, o *smart.Handoff) (string, string) { return h.Code, "" }, true},
		{"another browser's nonce", func(fx *fixture, h, o *smart.Handoff) (string, string) { return h.Code, o.Nonce }, true},
		{"after 60 s", func(fx *fixture, h, o *smart.Handoff) (string, string) {
			fx.clock.Add(smart.HandoffTTL)
			return h.Code, h.Nonce
		}, true},
		{"malformed code", func(fx *fixture, h, o *smart.Handoff) (string, string) { return "x/../" + h.Code, h.Nonce }, true},
		{"unknown code", func(fx *fixture, h, o *smart.Handoff) (string, string) { return o.Code[1:] + "A", o.Nonce }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, smart.AuthPublic)
			res, err := fx.complete(fx.launch(t, defaultContext))
			if err != nil {
				t.Fatal(err)
			}
			// Another launch, as another browser would make it.
			resOther, err := fx.complete(fx.launch(t, defaultContext))
			if err != nil {
				t.Fatal(err)
			}
			h, other := res.Handoff, resOther.Handoff
			if h == nil || h.Nonce == "" || h.Code == res.Handle || h.Code == other.Code || h.Nonce == other.Nonce {
				t.Fatalf("hand-off %+v", h)
			}
			code, nonce := tc.attack(fx, h, other)
			handle, err := fx.flow.ExchangeHandoff(context.Background(), code, nonce)
			if tc.wantErr {
				if !errors.Is(err, smart.ErrHandoff) || handle != "" {
					t.Fatalf("ExchangeHandoff = %q, %v; want ErrHandoff", handle, err)
				}
				return
			}
			if err != nil || handle != res.Handle {
				t.Fatalf("ExchangeHandoff = %q, %v", handle, err)
			}
		})
	}
}

// With the binding off for the registration, the code alone suffices.
func TestHandoffBindingOff(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic, func(r *smart.Registration) { r.BrowserBinding = smart.BindingOff })
	l := fx.launch(t, defaultContext)
	res, err := fx.complete(l)
	if err != nil {
		t.Fatal(err)
	}
	h := res.Handoff
	if h == nil || h.Nonce != "" {
		t.Fatalf("Handoff = %+v", h)
	}
	if got, err := fx.flow.ExchangeHandoff(context.Background(), h.Code, ""); err != nil || got != res.Handle {
		t.Fatalf("ExchangeHandoff = %q, %v", got, err)
	}
}
