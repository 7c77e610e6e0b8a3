package smart_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

func TestIDTokenVerification(t *testing.T) {
	const clientID = "calc-public"
	otherKey := smarttest.NewRSAKey(t)
	for _, tc := range []struct {
		name string
		// token returns the id_token to inject; nil keeps the server's.
		token    func(t *testing.T, fx *fixture) string
		wantErr  string // "" = valid
		fhirUser string
	}{
		{name: "server's own token", fhirUser: "Practitioner/prac-1"},
		{
			name: "profile claim (SMART v1)",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "")
				delete(c, "fhirUser")
				c["profile"] = fx.srv.FHIRBase + "/Practitioner/p9"
				return fx.srv.IDToken(t, c)
			},
			fhirUser: "/fhir/Practitioner/p9",
		},
		{
			name: "several audiences with azp",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				c["aud"], c["azp"] = []string{clientID, "other"}, clientID
				return fx.srv.IDToken(t, c)
			},
			fhirUser: "Practitioner/a",
		},
		{
			name: "expired within skew",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				c["exp"] = fx.clock.Now().Add(-30 * time.Second).Unix()
				return fx.srv.IDToken(t, c)
			},
			fhirUser: "Practitioner/a",
		},
		{
			name: "bad signature",
			token: func(t *testing.T, fx *fixture) string {
				return smarttest.SignJWT(t, otherKey, jose.RS256, fx.srv.KeyID, fx.srv.IDTokenClaims(clientID, "Practitioner/a"))
			},
			wantErr: "signature",
		},
		{
			name: "tampered payload",
			token: func(t *testing.T, fx *fixture) string {
				parts := strings.Split(fx.srv.IDToken(t, fx.srv.IDTokenClaims(clientID, "Practitioner/a")), ".")
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/admin")
				b, _ := json.Marshal(c)
				parts[1] = base64.RawURLEncoding.EncodeToString(b)
				return strings.Join(parts, ".")
			},
			wantErr: "signature",
		},
		{
			name: "unknown kid",
			token: func(t *testing.T, fx *fixture) string {
				return smarttest.SignJWT(t, otherKey, jose.RS256, "rotated-away", fx.srv.IDTokenClaims(clientID, "Practitioner/a"))
			},
			wantErr: "no JWKS key",
		},
		{
			name: "wrong audience",
			token: func(t *testing.T, fx *fixture) string {
				return fx.srv.IDToken(t, fx.srv.IDTokenClaims("another-app", "Practitioner/a"))
			},
			wantErr: "audience",
		},
		{
			name: "several audiences without azp",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				c["aud"] = []string{clientID, "other"}
				return fx.srv.IDToken(t, c)
			},
			wantErr: "azp",
		},
		{
			name: "wrong issuer",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				c["iss"] = "https://evil.example/fhir"
				return fx.srv.IDToken(t, c)
			},
			wantErr: "issuer",
		},
		{
			name: "expired",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				c["exp"] = fx.clock.Now().Add(-2 * time.Minute).Unix()
				return fx.srv.IDToken(t, c)
			},
			wantErr: "expired",
		},
		{
			name: "issued in the future",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				c["iat"] = fx.clock.Now().Add(5 * time.Minute).Unix()
				return fx.srv.IDToken(t, c)
			},
			wantErr: "future",
		},
		{
			name: "no exp",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				delete(c, "exp")
				return fx.srv.IDToken(t, c)
			},
			wantErr: "exp and iat are required",
		},
		{
			name: "no sub",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/a")
				delete(c, "sub")
				return fx.srv.IDToken(t, c)
			},
			wantErr: "no sub",
		},
		{
			name: "alg none",
			token: func(t *testing.T, fx *fixture) string {
				b, _ := json.Marshal(fx.srv.IDTokenClaims(clientID, "Practitioner/a"))
				return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
					base64.RawURLEncoding.EncodeToString(b) + "."
			},
			wantErr: "id_token",
		},
		{
			name: "HS256 with the public key as secret",
			token: func(t *testing.T, fx *fixture) string {
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("public-key-bytes-public-key-bytes")}, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(fx.srv.IDTokenClaims(clientID, "Practitioner/a"))
				jws, err := signer.Sign(b)
				if err != nil {
					t.Fatal(err)
				}
				s, _ := jws.CompactSerialize()
				return s
			},
			wantErr: "id_token",
		},
		{
			name:    "not a JWT",
			token:   func(t *testing.T, fx *fixture) string { return "garbage" },
			wantErr: "id_token",
		},
		{
			name: "fhirUser not a user reference",
			token: func(t *testing.T, fx *fixture) string {
				return fx.srv.IDToken(t, fx.srv.IDTokenClaims(clientID, "javascript:alert(1)"))
			},
			wantErr: "fhirUser",
		},
		{
			name: "no nonce (OIDC replay)",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/prac-1")
				delete(c, "nonce")
				return fx.srv.IDToken(t, c)
			},
			wantErr: "nonce",
		},
		{
			name: "another authorization's nonce",
			token: func(t *testing.T, fx *fixture) string {
				c := fx.srv.IDTokenClaims(clientID, "Practitioner/prac-1")
				c["nonce"] = "bm90LXRoZS1ub25jZS1zZW50LWF0LWF1dGhvcml6ZQ"
				return fx.srv.IDToken(t, c)
			},
			wantErr: "nonce",
		},
		{
			name: "fhirUser javascript: with a user path",
			token: func(t *testing.T, fx *fixture) string {
				return fx.srv.IDToken(t, fx.srv.IDTokenClaims(clientID, "javascript:alert(1)//Practitioner/x"))
			},
			wantErr: "fhirUser",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, smart.AuthPublic)
			if tc.token != nil {
				// Made at token time, after authorize: IDTokenClaims then
				// carries that request's nonce.
				fx.srv.EditTokenResponse(func(_ smarttest.Request, r map[string]any) { r["id_token"] = tc.token(t, fx) })
			}
			l := fx.launch(t, defaultContext)
			res, err := fx.complete(l)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Complete: %v", err)
				}
				if !strings.HasSuffix(res.Session.FHIRUser, tc.fhirUser) {
					t.Errorf("FHIRUser = %q, want …%q", res.Session.FHIRUser, tc.fhirUser)
				}
				return
			}
			e := expectKind(t, err, smart.IDTokenInvalid, http.StatusBadGateway)
			if !strings.Contains(e.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", e, tc.wantErr)
			}
			if got := fx.store.Calls(); len(got) != 2 || got[len(got)-1] != "ConsumeLaunch" {
				t.Errorf("store calls = %q, want no session created", got)
			}
		})
	}
}

func TestIDTokenKeyRotation(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	if _, err := fx.complete(fx.launch(t, defaultContext)); err != nil {
		t.Fatal(err)
	}
	if got := fx.srv.Hits("/jwks"); got != 1 {
		t.Fatalf("JWKS fetches = %d, want 1", got)
	}
	if _, err := fx.complete(fx.launch(t, defaultContext)); err != nil {
		t.Fatal(err)
	}
	if got := fx.srv.Hits("/jwks"); got != 1 {
		t.Errorf("JWKS fetches = %d, want 1 (cached)", got)
	}
	// The EHR rotates its signing key: the cached JWKS lacks the new kid,
	// so it is fetched once more.
	fx.srv.Key, fx.srv.KeyID = smarttest.NewRSAKey(t), "id-key-2"
	res, err := fx.complete(fx.launch(t, defaultContext))
	if err != nil {
		t.Fatalf("Complete after key rotation: %v", err)
	}
	if res.Session.FHIRUser != "Practitioner/prac-1" {
		t.Errorf("FHIRUser = %q", res.Session.FHIRUser)
	}
	if got := fx.srv.Hits("/jwks"); got != 2 {
		t.Errorf("JWKS fetches = %d, want 2", got)
	}
}

// Oracle Health issues id_tokens from
// https://authorization.cerner.com/tenants/{tenant}/ for a FHIR base ending
// in /r4/{tenant}; the registration names that issuer.
func TestIDTokenIssuerDiffersFromIss(t *testing.T) {
	for _, tc := range []struct {
		name        string
		regIssuer   bool
		dropJWKSURI bool
		wantErr     bool
	}{
		{name: "registration names the issuer", regIssuer: true},
		{name: "keys from the issuer's openid-configuration", regIssuer: true, dropJWKSURI: true},
		{name: "registration does not name it", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fx *fixture
			fx = newFixture(t, smart.AuthPublic, func(r *smart.Registration) {
				if tc.regIssuer {
					r.IDTokenIssuer = strings.Replace(r.Issuer, "/fhir", "/tenants/ec2458f2/", 1)
				}
			})
			fx.srv.IDTokenIssuer = fx.srv.URL + "/tenants/ec2458f2/"
			if tc.dropJWKSURI {
				fx.srv.EditDiscovery(func(doc map[string]any) { delete(doc, "jwks_uri") })
			}
			res, err := fx.complete(fx.launch(t, defaultContext))
			if tc.wantErr {
				e := expectKind(t, err, smart.IDTokenInvalid, http.StatusBadGateway)
				if !strings.Contains(e.Error(), "issuer") {
					t.Errorf("error = %v", e)
				}
				return
			}
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if res.Session.FHIRUser != "Practitioner/prac-1" {
				t.Errorf("FHIRUser = %q", res.Session.FHIRUser)
			}
			if tc.dropJWKSURI {
				if got := fx.srv.Hits("/tenants/ec2458f2/.well-known/openid-configuration"); got != 1 {
					t.Errorf("openid-configuration fetches = %d, want 1", got)
				}
			}
		})
	}
}

// The callback may run on an instance that never saw the launch: its
// Discoverer cache is empty. It verifies the id_token with the jwks_uri and
// issuer that discovery found at launch, stored with the launch, and never
// asks for the smart-configuration again.
func TestIDTokenColdInstanceNoDiscovery(t *testing.T) {
	for _, tc := range []struct {
		name string
		// discoveryIssuer, if set, is the smart-configuration's issuer and
		// the id_tokens' iss (the registration does not name it).
		discoveryIssuer string
	}{
		{name: "issuer is iss"},
		{name: "discovered issuer differs from iss", discoveryIssuer: "/oidc/tenant-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, smart.AuthPublic)
			if tc.discoveryIssuer != "" {
				iss := fx.srv.URL + tc.discoveryIssuer
				fx.srv.EditDiscovery(func(doc map[string]any) { doc["issuer"] = iss })
				fx.srv.IDTokenIssuer = iss
			}
			l := fx.launch(t, defaultContext)
			if got := fx.srv.Hits("/fhir/.well-known/smart-configuration"); got != 1 {
				t.Fatalf("discovery requests at launch = %d, want 1", got)
			}

			fx.flow.Discovery = &smart.Discoverer{Now: fx.clock.Now} // another instance
			res, err := fx.complete(l)
			if err != nil {
				t.Fatalf("Complete on a cold instance: %v", err)
			}
			if res.Session.FHIRUser != "Practitioner/prac-1" {
				t.Errorf("FHIRUser = %q: the id_token was not verified", res.Session.FHIRUser)
			}
			if got := fx.srv.Hits("/fhir/.well-known/smart-configuration"); got != 1 {
				t.Errorf("discovery requests = %d, want 1 (the launch's only): the callback fetched smart-configuration", got)
			}
			if got := fx.srv.Hits("/jwks"); got != 1 {
				t.Errorf("JWKS requests = %d, want 1 (the cold cache holds no key set)", got)
			}
			wantIssuer := fx.srv.FHIRBase
			if tc.discoveryIssuer != "" {
				wantIssuer = fx.srv.URL + tc.discoveryIssuer
			}
			if res.Launch.JWKSURI != fx.srv.URL+"/jwks" || res.Launch.DiscoveryIssuer != wantIssuer {
				t.Errorf("launch JWKSURI, DiscoveryIssuer = %q, %q; want %q, %q",
					res.Launch.JWKSURI, res.Launch.DiscoveryIssuer, fx.srv.URL+"/jwks", wantIssuer)
			}
			for _, r := range fx.srv.Requests("") {
				if strings.Contains(r.Path, "/.well-known/") && r.Path != "/fhir/.well-known/smart-configuration" {
					t.Errorf("unexpected discovery request %s", r.Path)
				}
			}
		})
	}
}

// Without a jwks_uri the keys come from the issuer's openid-configuration.
// An issuer taken from the EHR's discovery document must pass the same URL
// rules as any endpoint before SMART Calc fetches from it.
func TestIDTokenOpenIDConfigurationIssuerChecked(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	var fetched atomic.Int32
	fx.flow.Discovery = &smart.Discoverer{HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fetched.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}}
	fx.srv.EditDiscovery(func(doc map[string]any) {
		delete(doc, "jwks_uri")
		doc["issuer"] = "http://ehr.example/oidc"
	})
	l := fx.launch(t, defaultContext)
	fetched.Store(0)
	_, err := fx.complete(l)
	e := expectKind(t, err, smart.IDTokenInvalid, http.StatusBadGateway)
	if !strings.Contains(e.Error(), `"http://ehr.example/oidc": must use https`) {
		t.Errorf("error = %v", e)
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("%d key or configuration requests, want none", n)
	}
}

// jwks_uri to an unregistered host: the discovered jwks_uri, and the issuer
// whose openid-configuration would name one, must be on allowed_hosts,
// checked at launch and again before any fetch.
func TestJWKSHostChecked(t *testing.T) {
	t.Run("discovered jwks_uri", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPublic)
		fx.srv.EditDiscovery(func(doc map[string]any) { doc["jwks_uri"] = "https://attacker.example/jwks" })
		_, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: fx.srv.NewLaunch(defaultContext)})
		e := expectKind(t, err, smart.EndpointNotAllowed, http.StatusBadGateway)
		if !strings.Contains(e.Error(), "jwks_uri") {
			t.Errorf("error = %v", e)
		}
	})
	t.Run("openid-configuration issuer", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPublic)
		var fetched atomic.Int32
		fx.flow.Discovery = &smart.Discoverer{HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			fetched.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		})}}
		fx.srv.EditDiscovery(func(doc map[string]any) {
			delete(doc, "jwks_uri")
			doc["issuer"] = "https://attacker.example/oidc"
		})
		l := fx.launch(t, defaultContext)
		fetched.Store(0)
		_, err := fx.complete(l)
		e := expectKind(t, err, smart.IDTokenInvalid, http.StatusBadGateway)
		if !strings.Contains(e.Error(), "allowed_hosts") {
			t.Errorf("error = %v", e)
		}
		if n := fetched.Load(); n != 0 {
			t.Errorf("%d requests to the unregistered host, want none", n)
		}
	})
	// The openid-configuration of an allowed issuer may name any host as
	// its jwks_uri: only the check right before the key fetch stops it.
	t.Run("openid-configuration jwks_uri", func(t *testing.T) {
		fx := newFixture(t, smart.AuthPublic)
		var attacker, config atomic.Int32
		fx.flow.Discovery = &smart.Discoverer{HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch {
			case r.URL.Host == "attacker.example":
				attacker.Add(1)
				return nil, errors.New("the test's attacker host is never reached")
			case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
				config.Add(1)
				body := `{"issuer":"` + fx.srv.FHIRBase + `","jwks_uri":"https://attacker.example/jwks"}`
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
			}
			return http.DefaultTransport.RoundTrip(r)
		})}}
		fx.srv.EditDiscovery(func(doc map[string]any) {
			delete(doc, "jwks_uri")
			doc["issuer"] = fx.srv.FHIRBase
		})
		l := fx.launch(t, defaultContext)
		_, err := fx.complete(l)
		e := expectKind(t, err, smart.IDTokenInvalid, http.StatusBadGateway)
		if !strings.Contains(e.Error(), "jwks_uri") || !strings.Contains(e.Error(), "allowed_hosts") {
			t.Errorf("error = %v", e)
		}
		if config.Load() == 0 {
			t.Error("the openid-configuration was never read: the test proves nothing")
		}
		if n := attacker.Load(); n != 0 {
			t.Errorf("%d requests to the unregistered jwks_uri host, want none", n)
		}
	})
}
