package smart_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// session completes a launch and returns the stored session.
func (fx *fixture) session(t *testing.T) *store.Session {
	t.Helper()
	res, err := fx.complete(fx.launch(t, defaultContext))
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	s, err := fx.store.Store.GetSession(context.Background(), res.Session.ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRefresh(t *testing.T) {
	for _, tc := range []struct {
		auth     string
		rotate   bool
		wantKeys []string
	}{
		{auth: smart.AuthPublic, wantKeys: []string{"client_id", "grant_type", "refresh_token"}},
		{auth: smart.AuthPublic, rotate: true, wantKeys: []string{"client_id", "grant_type", "refresh_token"}},
		{auth: smart.AuthClientSecretBasic, wantKeys: []string{"grant_type", "refresh_token"}},
		{auth: smart.AuthPrivateKeyJWT, rotate: true, wantKeys: []string{"client_assertion", "client_assertion_type", "client_id", "grant_type", "refresh_token"}},
	} {
		name := tc.auth
		if tc.rotate {
			name += "/rotating"
		}
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, tc.auth)
			fx.srv.RotateRefreshTokens = tc.rotate
			s := fx.session(t)
			fx.clock.Add(20 * time.Minute) // within the session's idle timeout
			fx.store.Reset()

			n, err := fx.flow.Refresh(context.Background(), s)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got := fx.store.Calls(); !slices.Equal(got, []string{"UpdateTokens"}) {
				t.Errorf("store calls = %q, want UpdateTokens", got)
			}
			reqs := fx.srv.Requests("/token")
			req := reqs[len(reqs)-1]
			if got := formKeys(req.Form); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("refresh form keys = %q, want %q", got, tc.wantKeys)
			}
			if req.Form.Get("grant_type") != "refresh_token" || req.Form.Get("refresh_token") != s.RefreshToken {
				t.Errorf("refresh form = %v", req.Form)
			}
			switch tc.auth {
			case smart.AuthClientSecretBasic:
				if !strings.HasPrefix(req.Header.Get("Authorization"), "Basic ") {
					t.Errorf("refresh without Basic auth")
				}
			case smart.AuthPrivateKeyJWT:
				checkAssertion(t, fx, req.Form.Get("client_assertion"))
			}

			if n.AccessToken == s.AccessToken || !strings.HasPrefix(n.AccessToken, "at-") {
				t.Errorf("access token not renewed: %q", n.AccessToken)
			}
			if tc.rotate == (n.RefreshToken == s.RefreshToken) {
				t.Errorf("refresh token %q → %q (rotating %v)", s.RefreshToken, n.RefreshToken, tc.rotate)
			}
			if !n.TokenExpiry.Equal(fx.clock.Now().Add(time.Hour)) {
				t.Errorf("TokenExpiry = %v", n.TokenExpiry)
			}
			if n.Patient != s.Patient || n.ID != s.ID || n.Version == s.Version {
				t.Errorf("refreshed session = %+v", n)
			}
			stored, err := fx.store.Store.GetSession(context.Background(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.AccessToken != n.AccessToken || stored.RefreshToken != n.RefreshToken || stored.Version != n.Version {
				t.Errorf("stored session differs from the refreshed one")
			}
			// The new refresh token works.
			if _, err := fx.flow.Refresh(context.Background(), n); err != nil {
				t.Errorf("second Refresh: %v", err)
			}
		})
	}
}

// Two instances refresh one session at once: one writer wins, and the
// loser returns the winner's tokens.
func TestRefreshConcurrent(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(map[bool]string{false: "static refresh token", true: "rotating refresh token"}[rotate], func(t *testing.T) {
			fx := newFixture(t, smart.AuthPublic)
			fx.srv.RotateRefreshTokens = rotate
			s := fx.session(t)

			const n = 2
			results := make([]*store.Session, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					snapshot := *s
					results[i], errs[i] = fx.flow.Refresh(context.Background(), &snapshot)
				}()
			}
			wg.Wait()
			stored, err := fx.store.Store.GetSession(context.Background(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("Refresh %d: %v", i, errs[i])
				}
				if results[i].AccessToken != stored.AccessToken || results[i].RefreshToken != stored.RefreshToken || results[i].Version != stored.Version {
					t.Errorf("Refresh %d returned tokens that are not the stored winner's", i)
				}
			}
			if stored.AccessToken == s.AccessToken {
				t.Error("stored access token not renewed")
			}
			refreshes := 0
			for _, r := range fx.srv.Requests("/token") {
				if r.Form.Get("grant_type") == "refresh_token" {
					refreshes++
				}
			}
			if refreshes != n {
				t.Errorf("refresh requests = %d, want %d", refreshes, n)
			}
		})
	}
}

// A loser that arrives after the winner rotated the refresh token is
// refused by the EHR; it then returns the winner's session.
func TestRefreshStaleAfterRotation(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	fx.srv.RotateRefreshTokens = true
	s := fx.session(t)
	stale := *s
	won, err := fx.flow.Refresh(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fx.flow.Refresh(context.Background(), &stale)
	if err != nil {
		t.Fatalf("stale Refresh: %v", err)
	}
	if got.AccessToken != won.AccessToken || got.Version != won.Version {
		t.Errorf("stale Refresh returned %q, want the winner's %q", got.AccessToken, won.AccessToken)
	}
}

func TestRefreshErrors(t *testing.T) {
	t.Run("no refresh token", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPublic)
		s := fx.session(t)
		s.RefreshToken = ""
		_, err := fx.flow.Refresh(context.Background(), s)
		expectKind(t, err, smart.RefreshUnavailable, http.StatusUnauthorized)
		if got := len(fx.srv.Requests("/token")); got != 1 {
			t.Errorf("token requests = %d, want only the exchange", got)
		}
	})
	t.Run("refresh token revoked", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPublic)
		s := fx.session(t)
		s.RefreshToken = "rt-revoked"
		_, err := fx.flow.Refresh(context.Background(), s)
		e := expectKind(t, err, smart.RefreshUnavailable, http.StatusUnauthorized)
		if e.EHRError != "invalid_grant" || len(e.Causes) == 0 || !strings.Contains(strings.Join(smart.English(e.Sent), " "), "grant_type=refresh_token") {
			t.Errorf("error = %+v", e)
		}
		if strings.Contains(e.Error(), "rt-revoked") || slices.ContainsFunc(smart.English(e.Sent), func(s string) bool { return strings.Contains(s, "rt-revoked") }) {
			t.Errorf("refresh token leaked into the error")
		}
	})
	t.Run("session signed out meanwhile", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPublic)
		s := fx.session(t)
		if err := fx.store.Store.SignOut(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}
		_, err := fx.flow.Refresh(context.Background(), s)
		expectKind(t, err, smart.RefreshUnavailable, http.StatusUnauthorized)
	})
	t.Run("bad response", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPrivateKeyJWT)
		s := fx.session(t)
		fx.srv.OnToken(func(r smarttest.Request) (int, any, bool) {
			return http.StatusOK, map[string]any{"access_token": "at-x", "token_type": "pop"}, true
		})
		_, err := fx.flow.Refresh(context.Background(), s)
		expectKind(t, err, smart.BadTokenResponse, http.StatusBadGateway)
	})
	t.Run("private_key_jwt refresh refused", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPrivateKeyJWT)
		s := fx.session(t)
		fx.srv.OnToken(func(r smarttest.Request) (int, any, bool) {
			return http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "jti reused"}, true
		})
		_, err := fx.flow.Refresh(context.Background(), s)
		e := expectKind(t, err, smart.InvalidClient, http.StatusBadGateway)
		if e.Status != http.StatusUnauthorized || e.EHRDescription != "jti reused" {
			t.Errorf("error = %+v", e)
		}
	})
}
