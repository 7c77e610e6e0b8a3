package smart_test

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

// TestProbeClient: the probe sends the code exchange a launch sends, with
// a code no EHR issued and the registration's client authentication, and
// tells an accepted client from a refused one.
func TestProbeClient(t *testing.T) {
	for _, auth := range []string{smart.AuthPublic, smart.AuthClientSecretBasic, smart.AuthPrivateKeyJWT} {
		t.Run(auth, func(t *testing.T) {
			fx := newFixture(t, auth)
			p, err := fx.flow.ProbeClient(context.Background(), &fx.reg, fx.srv.TokenURL())
			if err != nil {
				t.Fatal(err)
			}
			if !p.ClientAccepted() || p.ClientRefused() || p.Error != "invalid_grant" {
				t.Errorf("probe %+v, want invalid_grant (client accepted)", p)
			}
			reqs := fx.srv.Requests("/token")
			if len(reqs) != 1 {
				t.Fatalf("%d token requests", len(reqs))
			}
			f := reqs[0].Form
			if f.Get("grant_type") != "authorization_code" || f.Get("redirect_uri") != redirectURI || len(f.Get("code_verifier")) < 43 || f.Get("code") == "" {
				t.Errorf("form %v", f)
			}
			switch auth {
			case smart.AuthPublic:
				if f.Get("client_id") != fx.reg.ClientID || reqs[0].Header.Get("Authorization") != "" {
					t.Errorf("public: %v %q", f, reqs[0].Header.Get("Authorization"))
				}
			case smart.AuthClientSecretBasic:
				want := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(fx.reg.ClientID)+":"+url.QueryEscape(secretValue)))
				if reqs[0].Header.Get("Authorization") != want || f.Has("client_secret") {
					t.Errorf("basic: header %q", reqs[0].Header.Get("Authorization"))
				}
			case smart.AuthPrivateKeyJWT:
				if f.Get("client_assertion_type") != smart.AssertionType || strings.Count(f.Get("client_assertion"), ".") != 2 {
					t.Errorf("assertion: %v", f)
				}
			}
			sent := strings.Join(p.Sent, "\n")
			for _, secret := range []string{secretValue, f.Get("client_assertion"), f.Get("code_verifier")} {
				if secret != "" && strings.Contains(sent, secret) {
					t.Errorf("Sent shows a secret: %s", sent)
				}
			}
		})
	}
	t.Run("wrong client type", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPublic)
		reg := fx.reg
		reg.ClientAuth = smart.ClientAuth{Type: smart.AuthClientSecretBasic, Secret: "ehr-client-secret"}
		fx.secrets["ehr-client-secret"] = "not-the-secret"
		p, err := fx.flow.ProbeClient(context.Background(), &reg, fx.srv.TokenURL())
		if err != nil || !p.ClientRefused() || p.ClientAccepted() {
			t.Errorf("probe %+v, %v: want the client refused", p, err)
		}
	})
	t.Run("secret without a value", func(t *testing.T) {
		fx := newFixture(t, smart.AuthClientSecretBasic)
		delete(fx.secrets, "ehr-client-secret")
		_, err := fx.flow.ProbeClient(context.Background(), &fx.reg, fx.srv.TokenURL())
		if !smart.IsMisconfigured(err) || fx.srv.Hits("/token") != 0 {
			t.Errorf("err %v, %d requests: want Misconfigured and nothing sent", err, fx.srv.Hits("/token"))
		}
	})
	t.Run("disallowed host", func(t *testing.T) {
		fx := newFixture(t, smart.AuthClientSecretBasic)
		_, err := fx.flow.ProbeClient(context.Background(), &fx.reg, "https://evil.example/token")
		if e := asError(t, err); e.Kind != smart.EndpointNotAllowed {
			t.Errorf("kind %v", e.Kind)
		}
	})
}

// TestProbeAuthorize: a known client id and Redirect URI bring the browser
// back with an error (and no code); an unknown Redirect URI does not.
func TestProbeAuthorize(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	p, err := fx.flow.ProbeAuthorize(context.Background(), &fx.reg, fx.srv.URL+"/authorize", fx.srv.FHIRBase)
	if err != nil || !p.ToRedirectURI || p.Error != "unsupported_response_type" {
		t.Errorf("known client: %+v %v", p, err)
	}
	q := fx.srv.Requests("/authorize")[0].Form
	if q.Get("response_type") != smart.ProbeResponseType || q.Get("redirect_uri") != redirectURI || q.Get("client_id") != fx.reg.ClientID || q.Has("code_challenge") {
		t.Errorf("request %v", q)
	}
	other := fx.reg
	other.RedirectPerRegistration = true // …/callback/test-ehr, which the EHR does not know
	p, err = fx.flow.ProbeAuthorize(context.Background(), &other, fx.srv.URL+"/authorize", fx.srv.FHIRBase)
	if err != nil || p.ToRedirectURI || p.Elsewhere != "" || p.Status != 400 {
		t.Errorf("unknown Redirect URI: %+v %v", p, err)
	}
}

// TestInvalidGrantCauses: the EHR's description decides which cause comes
// first; the four causes are always there.
func TestInvalidGrantCauses(t *testing.T) {
	reg := &smart.Registration{ClientID: "calc"}
	for desc, first := range map[string]string{
		"":                                 "PKCE verifier mismatch: SMART Calc made",
		"PKCE verification failed":         "PKCE verifier mismatch, as the EHR's answer says",
		"invalid code_verifier":            "PKCE verifier mismatch, as the EHR's answer says",
		"redirect_uri does not match":      "redirect_uri mismatch",
		"The authorization code expired.":  "code reused or expired",
		"authorization code already used":  "code reused or expired",
		"urn:cerner:error:grant-not-found": "PKCE verifier mismatch: SMART Calc made",
	} {
		c := smart.English(smart.InvalidGrantCauses(reg, redirectURI, desc))
		if len(c) != 4 || !strings.HasPrefix(c[0], first) {
			t.Errorf("%q: first cause %q, want %q", desc, c[0], first)
		}
	}
	// The callback's page gives the same list.
	fx := newFixture(t, smart.AuthPublic)
	fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
		return 400, map[string]string{"error": "invalid_grant", "error_description": "code_verifier mismatch"}, true
	})
	_, err := fx.complete(fx.launch(t, defaultContext))
	if e := asError(t, err); e.Kind != smart.InvalidGrant || !slices.Equal(smart.English(e.Causes), smart.English(smart.InvalidGrantCauses(&fx.reg, redirectURI, "code_verifier mismatch"))) {
		t.Errorf("callback causes %q", e.Causes)
	}
}
