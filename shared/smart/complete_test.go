package smart_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

func formKeys(f url.Values) []string {
	var keys []string
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestCompleteSuccess(t *testing.T) {
	for _, tc := range []struct {
		auth     string
		wantKeys []string
		check    func(t *testing.T, fx *fixture, req smarttest.Request)
	}{
		{
			auth:     smart.AuthPublic,
			wantKeys: []string{"client_id", "code", "code_verifier", "grant_type", "redirect_uri"},
			check: func(t *testing.T, fx *fixture, req smarttest.Request) {
				if h := req.Header.Get("Authorization"); h != "" {
					t.Errorf("public client sent Authorization %q", h)
				}
				if got := req.Form.Get("client_id"); got != "calc-public" {
					t.Errorf("client_id = %q", got)
				}
			},
		},
		{
			auth:     smart.AuthClientSecretBasic,
			wantKeys: []string{"code", "code_verifier", "grant_type", "redirect_uri"},
			check: func(t *testing.T, fx *fixture, req smarttest.Request) {
				r := &http.Request{Header: req.Header}
				id, secret, ok := r.BasicAuth()
				if !ok {
					t.Fatalf("no Basic Authorization header: %q", req.Header.Get("Authorization"))
				}
				id, _ = url.QueryUnescape(id)
				secret, _ = url.QueryUnescape(secret)
				if id != "calc-client_secret_basic" || secret != secretValue {
					t.Errorf("Basic credentials = %q:%q", id, secret)
				}
				if body := req.Form.Encode(); strings.Contains(body, url.QueryEscape(secretValue)) || req.Form.Has("client_secret") {
					t.Errorf("secret in the request body: %q", body)
				}
			},
		},
		{
			auth:     smart.AuthPrivateKeyJWT,
			wantKeys: []string{"client_assertion", "client_assertion_type", "client_id", "code", "code_verifier", "grant_type", "redirect_uri"},
			check: func(t *testing.T, fx *fixture, req smarttest.Request) {
				if h := req.Header.Get("Authorization"); h != "" {
					t.Errorf("private_key_jwt client sent Authorization %q", h)
				}
				if got := req.Form.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
					t.Errorf("client_assertion_type = %q", got)
				}
				checkAssertion(t, fx, req.Form.Get("client_assertion"))
			},
		},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			fx := newFixture(t, tc.auth)
			l := fx.launch(t, defaultContext)
			fx.store.Reset()
			before := fx.srv.Hits("/fhir/.well-known/smart-configuration")
			res, err := fx.complete(l)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if got := fx.store.Calls(); !slices.Equal(got, []string{"ConsumeLaunch", "CreateSessionAndLaunch"}) {
				t.Errorf("store calls = %q, want ConsumeLaunch, CreateSessionAndLaunch", got)
			}
			if got := fx.srv.Hits("/fhir/.well-known/smart-configuration"); got != before {
				t.Errorf("Complete fetched discovery again (%d → %d); the cache is warm", before, got)
			}

			reqs := fx.srv.Requests("/token")
			if len(reqs) != 1 {
				t.Fatalf("token requests = %d, want 1", len(reqs))
			}
			req := reqs[0]
			if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
				t.Errorf("token request %s %q", req.Method, req.Header.Get("Content-Type"))
			}
			if got := formKeys(req.Form); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("token form keys = %q, want %q", got, tc.wantKeys)
			}
			if req.Form.Get("grant_type") != "authorization_code" || req.Form.Get("code") != l.code ||
				req.Form.Get("redirect_uri") != redirectURI || len(req.Form.Get("code_verifier")) != 43 {
				t.Errorf("token form = %v", req.Form)
			}
			tc.check(t, fx, req)

			s := res.Session
			now := fx.clock.Now()
			if res.Handle == "" || s.ID != smart.SessionID(res.Handle) || !res.Bound || res.Correlation != smart.Correlation(l.state) {
				t.Errorf("result handle/id/bound/correlation = %q %q %v %q", res.Handle, s.ID, res.Bound, res.Correlation)
			}
			if h, _ := base64.RawURLEncoding.DecodeString(res.Handle); len(h) < 32 {
				t.Errorf("handle has %d random bytes, want ≥ 32", len(h))
			}
			for field, v := range map[string][2]string{
				"RegistrationID": {s.RegistrationID, "test-ehr"},
				"FHIRBase":       {s.FHIRBase, fx.srv.FHIRBase},
				"Patient":        {s.Patient, "pat-1"},
				"Encounter":      {s.Encounter, "enc-1"},
				"FHIRUser":       {s.FHIRUser, "Practitioner/prac-1"},
				"Scope":          {s.Scope, clientScope},
				"SmartStyleURL":  {s.SmartStyleURL, "https://ehr.example/style.json"},
				"Tenant":         {s.Tenant, "tenant-1"},
				"TokenURL":       {s.TokenURL, fx.srv.URL + "/token"},
			} {
				if v[0] != v[1] {
					t.Errorf("session %s = %q, want %q", field, v[0], v[1])
				}
			}
			if !s.NeedPatientBanner {
				t.Error("NeedPatientBanner = false, want true when the EHR does not say")
			}
			if !strings.HasPrefix(s.AccessToken, "at-") || !strings.HasPrefix(s.RefreshToken, "rt-") {
				t.Errorf("tokens = %q, %q", s.AccessToken, s.RefreshToken)
			}
			if !s.TokenExpiry.Equal(now.Add(time.Hour)) || !s.ExpiresAt.Equal(now.Add(smart.DefaultSessionTTL)) {
				t.Errorf("TokenExpiry %v ExpiresAt %v (now %v)", s.TokenExpiry, s.ExpiresAt, now)
			}
			if res.Launch.Verifier != "" || res.Launch.State != l.state {
				t.Errorf("returned launch: verifier %q, state %q", res.Launch.Verifier, res.Launch.State)
			}
			stored, err := fx.store.Store.GetSession(context.Background(), s.ID)
			if err != nil {
				t.Fatalf("GetSession: %v", err)
			}
			if stored.AccessToken != s.AccessToken || stored.Patient != "pat-1" || stored.Version != s.Version {
				t.Errorf("stored session = %+v", stored)
			}
		})
	}
}

// checkAssertion verifies a private_key_jwt assertion the way the token
// endpoint does and checks the claims SMART requires.
func checkAssertion(t *testing.T, fx *fixture, assertion string) {
	t.Helper()
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.ES384})
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	h := tok.Headers[0]
	if h.KeyID != "calc-key-1" || h.Algorithm != "ES384" || h.ExtraHeaders[jose.HeaderType] != "JWT" {
		t.Errorf("assertion header = %+v", h)
	}
	var c jwt.Claims
	if err := tok.Claims(fx.key.Public(), &c); err != nil {
		t.Fatalf("assertion signature: %v", err)
	}
	if c.Issuer != fx.reg.ClientID || c.Subject != fx.reg.ClientID {
		t.Errorf("assertion iss, sub = %q, %q", c.Issuer, c.Subject)
	}
	if len(c.Audience) != 1 || c.Audience[0] != fx.srv.TokenURL() {
		t.Errorf("assertion aud = %q, want %q", c.Audience, fx.srv.TokenURL())
	}
	if c.IssuedAt == nil || c.Expiry == nil || c.Expiry.Time().Sub(c.IssuedAt.Time()) > 5*time.Minute || !c.Expiry.Time().After(fx.clock.Now()) {
		t.Errorf("assertion iat %v exp %v", c.IssuedAt, c.Expiry)
	}
	if jti, _ := base64.RawURLEncoding.DecodeString(c.ID); len(jti) < 32 {
		t.Errorf("assertion jti %q", c.ID)
	}
}

func TestCompleteContextVariants(t *testing.T) {
	no := false
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, smarttest.LaunchContext{Patient: "p2", NeedPatientBanner: &no})
	res, err := fx.complete(l)
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.NeedPatientBanner || res.Session.Encounter != "" || res.Session.FHIRUser != "" {
		t.Errorf("session = %+v", res.Session)
	}

	// Oracle Health sometimes drops openid: no id_token, identity optional.
	l = fx.launch(t, smarttest.LaunchContext{Patient: "p3", FHIRUser: "Practitioner/x", GrantScope: "launch patient/Patient.rs online_access"})
	res, err = fx.complete(l)
	if err != nil {
		t.Fatalf("Complete without openid: %v", err)
	}
	if res.Session.FHIRUser != "" || res.Session.Scope != "launch patient/Patient.rs online_access" {
		t.Errorf("session fhirUser %q scope %q", res.Session.FHIRUser, res.Session.Scope)
	}

	// An id_token without openid granted is ignored, never trusted.
	fx.srv.EditTokenResponse(func(req smarttest.Request, resp map[string]any) {
		resp["id_token"] = "not-even-a-jwt"
		resp["scope"] = "launch patient/Patient.rs"
	})
	l = fx.launch(t, defaultContext)
	if res, err = fx.complete(l); err != nil || res.Session.FHIRUser != "" {
		t.Fatalf("Complete with id_token but no openid = %v, %v", res, err)
	}

	// No scope in the response: the requested scope was granted (RFC 6749 §5.1).
	fx.srv.EditTokenResponse(func(req smarttest.Request, resp map[string]any) {
		delete(resp, "scope")
		resp["need_patient_banner"] = "false"
		resp["expires_in"] = "120"
	})
	l = fx.launch(t, smarttest.LaunchContext{Patient: "p4"})
	res, err = fx.complete(l)
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.Scope != clientScope || res.Session.NeedPatientBanner || !res.Session.TokenExpiry.Equal(fx.clock.Now().Add(2*time.Minute)) {
		t.Errorf("session = %+v", res.Session)
	}
}

func TestCompleteStateErrors(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	ctx := context.Background()

	_, err := fx.flow.Complete(ctx, smart.CompleteRequest{Code: "c"})
	expectKind(t, err, smart.MissingState, http.StatusBadRequest)

	_, err = fx.flow.Complete(ctx, smart.CompleteRequest{State: "never-issued", Code: "c"})
	expectKind(t, err, smart.UnknownState, http.StatusBadRequest)

	l := fx.launch(t, defaultContext)
	if _, err := fx.complete(l); err != nil {
		t.Fatal(err)
	}
	_, err = fx.complete(l)
	expectKind(t, err, smart.ReplayedState, http.StatusConflict)
	if got := len(fx.srv.Requests("/token")); got != 1 {
		t.Errorf("token requests after a replay = %d, want 1", got)
	}

	l = fx.launch(t, defaultContext)
	fx.clock.Add(smart.DefaultLaunchTTL)
	_, err = fx.complete(l)
	expectKind(t, err, smart.ExpiredState, http.StatusBadRequest)
}

func TestCompleteBindingMismatch(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	other := fx.launch(t, defaultContext)
	_, err := fx.flow.Complete(context.Background(), smart.CompleteRequest{State: l.state, Code: l.code, BindingNonce: other.begin.BindingNonce})
	expectKind(t, err, smart.BindingMismatch, http.StatusForbidden)
	if got := len(fx.srv.Requests("/token")); got != 0 {
		t.Errorf("token requests = %d, want 0: the code must not be exchanged", got)
	}
	// The launch is spent.
	_, err = fx.complete(l)
	expectKind(t, err, smart.ReplayedState, http.StatusConflict)
}

func TestCompleteEHRError(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	_, err := fx.flow.Complete(context.Background(), smart.CompleteRequest{
		State:            l.state,
		Error:            "access_denied",
		ErrorDescription: "The user denied the request",
		ErrorURI:         "urn:cerner:error:authorization-server:oauth2:access-denied?correlation=abc-123",
		BindingNonce:     l.begin.BindingNonce, // a bound callback: the EHR's text is shown
	})
	e := expectKind(t, err, smart.EHRDenied, http.StatusForbidden)
	if e.EHRError != "access_denied" || e.EHRDescription != "The user denied the request" ||
		!strings.Contains(e.EHRURI, "correlation=abc-123") || e.RegistrationID != "test-ehr" || e.Correlation != smart.Correlation(l.state) {
		t.Errorf("EHRDenied = %+v", e)
	}
	if !strings.Contains(e.Error(), "access_denied") || !strings.Contains(e.Error(), "correlation=abc-123") {
		t.Errorf("Error() = %q, want the EHR's error and error_uri", e.Error())
	}
	if e.Unmatched || e.Unbound || !strings.Contains(smart.Problem(e).EHRError, "The user denied the request") {
		t.Errorf("an error redirect for a known launch: Unmatched %v, page EHRError %q", e.Unmatched, smart.Problem(e).EHRError)
	}
	// The launch was consumed: the code that might follow cannot use it.
	_, err = fx.complete(l)
	expectKind(t, err, smart.ReplayedState, http.StatusConflict)

	// server_error is the EHR's failure.
	_, err = fx.flow.Complete(context.Background(), smart.CompleteRequest{State: "x", Error: "server_error"})
	expectKind(t, err, smart.EHRDenied, http.StatusBadGateway)
	// An error redirect without state (old launcher's bad_audience).
	_, err = fx.flow.Complete(context.Background(), smart.CompleteRequest{Error: "bad_audience"})
	expectKind(t, err, smart.EHRDenied, http.StatusForbidden)

	// Anyone can craft an error redirect: one that matches no launch
	// (no, unknown or spent state) keeps its text off the page.
	for _, req := range []smart.CompleteRequest{
		{Error: "access_denied", ErrorDescription: "Call 555-0100"},
		{State: "never-issued", Error: "access_denied", ErrorDescription: "Call 555-0100"},
		{State: l.state, Error: "access_denied", ErrorDescription: "Call 555-0100"},
	} {
		_, err = fx.flow.Complete(context.Background(), req)
		e := expectKind(t, err, smart.EHRDenied, http.StatusForbidden)
		if !e.Unmatched || e.EHRDescription != "Call 555-0100" {
			t.Errorf("state %q: Unmatched %v, EHRDescription %q; want true and the text kept for the log", req.State, e.Unmatched, e.EHRDescription)
		}
		if p := smart.Problem(e); p.EHRError != "" {
			t.Errorf("state %q: page shows %q", req.State, p.EHRError)
		}
	}
}

func TestCompleteMissingCode(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	_, err := fx.flow.Complete(context.Background(), smart.CompleteRequest{State: l.state, BindingNonce: l.begin.BindingNonce})
	expectKind(t, err, smart.MissingCode, http.StatusBadRequest)
}

func expectKind(t *testing.T, err error, kind smart.Kind, status int) *smart.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %v", kind)
	}
	e := asError(t, err)
	if e.Kind != kind || e.HTTPStatus() != status {
		t.Fatalf("error %v: kind %v status %d, want %v %d", e, e.Kind, e.HTTPStatus(), kind, status)
	}
	if e.Title().IsZero() || e.Advice().IsZero() {
		t.Errorf("%v: empty Title or Advice", kind)
	}
	return e
}

func TestCompleteInvalidGrant(t *testing.T) {
	fx := newFixture(t, smart.AuthClientSecretBasic)
	res, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: fx.srv.NewLaunch(defaultContext)})
	if err != nil {
		t.Fatal(err)
	}
	// Something else (fhirclient.js, say) ran authorize with its own
	// verifier for this client: the code is bound to another challenge.
	u := mustParse(t, res.AuthorizeURL)
	q := u.Query()
	q.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	u.RawQuery = q.Encode()
	code, state, err := fx.srv.Authorize(u.String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = fx.flow.Complete(context.Background(), smart.CompleteRequest{State: state, Code: code, BindingNonce: res.BindingNonce})
	e := expectKind(t, err, smart.InvalidGrant, http.StatusBadGateway)
	if got := len(fx.srv.Requests("/token")); got != 1 {
		t.Errorf("token requests = %d, want exactly 1 (never retried)", got)
	}
	if e.EHRError != "invalid_grant" || e.EHRDescription != "Invalid grant or Invalid PKCE Verifier" || e.Status != http.StatusBadRequest {
		t.Errorf("error = %+v", e)
	}
	wantCauses := []string{"PKCE verifier mismatch", "redirect_uri mismatch", "code reused or expired", "code issued to another client"}
	if len(e.Causes) != len(wantCauses) {
		t.Fatalf("Causes = %q", e.Causes)
	}
	for i, w := range wantCauses {
		if !strings.HasPrefix(smart.English(e.Causes)[i], w) {
			t.Errorf("Causes[%d] = %q, want it to start with %q", i, smart.English(e.Causes)[i], w)
		}
	}
	if !strings.Contains(smart.English(e.Causes)[0], "fhirclient.js") || !strings.Contains(smart.English(e.Causes)[1], `"`+redirectURI+`"`) ||
		!strings.Contains(smart.English(e.Causes)[2], "60 seconds") || !strings.Contains(smart.English(e.Causes)[3], `"calc-client_secret_basic"`) {
		t.Errorf("Causes lack detail: %q", e.Causes)
	}
	sent := strings.Join(smart.English(e.Sent), "\n")
	for _, w := range []string{
		"POST " + fx.srv.TokenURL(), "client_id=calc-client_secret_basic", "redirect_uri=" + redirectURI,
		"client_secret_basic", "code_verifier: 43 characters",
	} {
		if !strings.Contains(sent, w) {
			t.Errorf("Sent lacks %q:\n%s", w, sent)
		}
	}
	tokenForm := fx.srv.Requests("/token")[0].Form
	for _, secret := range []string{code, tokenForm.Get("code_verifier"), secretValue} {
		for _, s := range append(smart.English(e.Sent), e.Error()) {
			if strings.Contains(s, secret) {
				t.Errorf("%q contains a secret", s)
			}
		}
	}
}

func TestCompleteTokenEndpointErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		auth   string
		setup  func(fx *fixture)
		kind   smart.Kind
		status int
		check  func(t *testing.T, e *smart.Error)
		tokens int // token requests expected
	}{
		{
			name:  "code expired",
			auth:  smart.AuthPublic,
			setup: func(fx *fixture) { fx.srv.CodeLifetime = time.Nanosecond; fx.clock.Add(0) },
			kind:  smart.InvalidGrant, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name:  "invalid_client: wrong secret",
			auth:  smart.AuthClientSecretBasic,
			setup: func(fx *fixture) { fx.secrets["ehr-client-secret"] = "wrong" },
			kind:  smart.InvalidClient, status: http.StatusBadGateway, tokens: 1,
			check: func(t *testing.T, e *smart.Error) {
				if e.Status != http.StatusUnauthorized || len(e.Causes) != 3 || !strings.HasPrefix(smart.English(e.Causes)[0], "secret mismatch") ||
					!strings.HasPrefix(smart.English(e.Causes)[1], "wrong client type registered") {
					t.Errorf("error = %+v", e)
				}
				if sent := strings.Join(smart.English(e.Sent), "\n"); !strings.Contains(sent, "client_secret_basic") || strings.Contains(sent, "wrong") {
					t.Errorf("Sent = %q", e.Sent)
				}
			},
		},
		{
			name: "invalid_client: wrong key",
			auth: smart.AuthPrivateKeyJWT,
			setup: func(fx *fixture) {
				fx.secrets["ehr-client-key"] = smarttest.PEM(t, smarttest.NewECKey(t))
			},
			kind: smart.InvalidClient, status: http.StatusBadGateway, tokens: 1,
			check: func(t *testing.T, e *smart.Error) {
				if !strings.HasPrefix(smart.English(e.Causes)[0], "key mismatch") {
					t.Errorf("Causes = %q", e.Causes)
				}
			},
		},
		{
			name: "invalid_client: public client registered as confidential",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.AddClient(smarttest.Client{ID: "calc-public", Auth: smarttest.AuthClientSecretBasic, Secret: "x", RedirectURIs: []string{redirectURI}})
			},
			kind: smart.InvalidClient, status: http.StatusBadGateway, tokens: 1,
			check: func(t *testing.T, e *smart.Error) {
				if !strings.HasPrefix(smart.English(e.Causes)[0], "client type mismatch") {
					t.Errorf("Causes = %q", e.Causes)
				}
			},
		},
		{
			name: "other OAuth error",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
					return http.StatusBadRequest, map[string]string{"error": "invalid_scope", "error_description": "scope not allowed"}, true
				})
			},
			kind: smart.TokenEndpointError, status: http.StatusBadGateway, tokens: 1,
			check: func(t *testing.T, e *smart.Error) {
				if e.EHRError != "invalid_scope" || e.EHRDescription != "scope not allowed" || len(e.Causes) == 0 {
					t.Errorf("error = %+v", e)
				}
			},
		},
		{
			name: "5xx without body",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.OnToken(func(smarttest.Request) (int, any, bool) { return http.StatusServiceUnavailable, nil, true })
			},
			kind: smart.TokenEndpointError, status: http.StatusBadGateway, tokens: 1,
			check: func(t *testing.T, e *smart.Error) {
				if e.Status != http.StatusServiceUnavailable {
					t.Errorf("Status = %d", e.Status)
				}
			},
		},
		{
			name: "2xx with error field",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
					return http.StatusOK, map[string]string{"error": "invalid_grant"}, true
				})
			},
			kind: smart.InvalidGrant, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name: "missing access_token",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
					return http.StatusOK, map[string]any{"token_type": "Bearer", "patient": "p"}, true
				})
			},
			kind: smart.BadTokenResponse, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name: "token_type not Bearer",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.EditTokenResponse(func(_ smarttest.Request, r map[string]any) { r["token_type"] = "mac" })
			},
			kind: smart.BadTokenResponse, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name: "token_type missing",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.EditTokenResponse(func(_ smarttest.Request, r map[string]any) { delete(r, "token_type") })
			},
			kind: smart.BadTokenResponse, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name: "no patient",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.EditTokenResponse(func(_ smarttest.Request, r map[string]any) { delete(r, "patient") })
			},
			kind: smart.NoPatientContext, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name: "patient not a FHIR id",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.srv.EditTokenResponse(func(_ smarttest.Request, r map[string]any) { r["patient"] = "../Patient/x?_format=xml" })
			},
			kind: smart.BadTokenResponse, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name: "redirect from the token endpoint is not followed",
			auth: smart.AuthClientSecretBasic,
			setup: func(fx *fixture) {
				fx.srv.OnToken(func(r smarttest.Request) (int, any, bool) { return http.StatusTemporaryRedirect, nil, true })
			},
			kind: smart.TokenEndpointError, status: http.StatusBadGateway, tokens: 1,
		},
		{
			name:  "secret missing",
			auth:  smart.AuthClientSecretBasic,
			setup: func(fx *fixture) { delete(fx.secrets, "ehr-client-secret") },
			kind:  smart.Misconfigured, status: http.StatusInternalServerError, tokens: 0,
			check: func(t *testing.T, e *smart.Error) {
				if !strings.Contains(e.Error(), `"ehr-client-secret"`) {
					t.Errorf("error %q does not name the secret", e)
				}
			},
		},
		{
			name: "key does not suit alg",
			auth: smart.AuthPrivateKeyJWT,
			setup: func(fx *fixture) {
				fx.secrets["ehr-client-key"] = smarttest.PEM(t, smarttest.NewRSAKey(t))
			},
			kind: smart.Misconfigured, status: http.StatusInternalServerError, tokens: 0,
		},
		{
			name:  "key not PEM",
			auth:  smart.AuthPrivateKeyJWT,
			setup: func(fx *fixture) { fx.secrets["ehr-client-key"] = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" },
			kind:  smart.Misconfigured, status: http.StatusInternalServerError, tokens: 0,
		},
		{
			name: "session store fails",
			auth: smart.AuthPublic,
			setup: func(fx *fixture) {
				fx.store.fail = map[string]error{"CreateSessionAndLaunch": errors.New("unavailable")}
			},
			kind: smart.StoreFailure, status: http.StatusInternalServerError, tokens: 1,
		},
		{
			// Launch and callback given different keys, or the key
			// rotated while this launch was in flight: the verifier does
			// not open, and no code is sent anywhere.
			name:  "verifier sealed under another launch key",
			auth:  smart.AuthPublic,
			setup: func(fx *fixture) { fx.flow.LaunchKey = newLaunchKey(t) },
			kind:  smart.Misconfigured, status: http.StatusInternalServerError, tokens: 0,
		},
		{
			name:  "no launch key",
			auth:  smart.AuthPublic,
			setup: func(fx *fixture) { fx.flow.LaunchKey = nil },
			kind:  smart.Misconfigured, status: http.StatusInternalServerError, tokens: 0,
		},
		{
			name:  "launch store fails",
			auth:  smart.AuthPublic,
			setup: func(fx *fixture) { fx.store.fail = map[string]error{"ConsumeLaunch": errors.New("unavailable")} },
			kind:  smart.StoreFailure, status: http.StatusInternalServerError, tokens: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, tc.auth)
			l := fx.launch(t, defaultContext)
			tc.setup(fx)
			fx.clock.Add(time.Second)
			_, err := fx.complete(l)
			e := expectKind(t, err, tc.kind, tc.status)
			if got := len(fx.srv.Requests("/token")); got != tc.tokens {
				t.Errorf("token requests = %d, want %d", got, tc.tokens)
			}
			if e.Correlation != smart.Correlation(l.state) {
				t.Errorf("Correlation = %q", e.Correlation)
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

// failingTransport fails every request like an unreachable host.
type failingTransport struct{ calls atomic.Int32 }

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestCompleteTokenEndpointUnreachable(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	tr := &failingTransport{}
	fx.flow.HTTPClient = &http.Client{Transport: tr}
	_, err := fx.complete(l)
	e := expectKind(t, err, smart.TokenEndpointUnreachable, http.StatusGatewayTimeout)
	if got := tr.calls.Load(); got != 1 {
		t.Errorf("token requests = %d, want 1 (never retried)", got)
	}
	if len(e.Sent) == 0 || len(e.Causes) == 0 {
		t.Errorf("error = %+v", e)
	}
}

func TestCompleteEndpointNoLongerAllowed(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	// A redeploy narrowed allowed_hosts between launch and callback.
	reg := fx.reg
	reg.AllowedHosts = []string{"authorization.cerner.com"}
	registry, err := smart.NewRegistry([]smart.Registration{reg}, true)
	if err != nil {
		t.Fatal(err)
	}
	fx.flow.Registry = registry
	_, err = fx.complete(l)
	expectKind(t, err, smart.EndpointNotAllowed, http.StatusBadGateway)
	if got := len(fx.srv.Requests("/token")); got != 0 {
		t.Errorf("token requests = %d, want 0", got)
	}
}

func TestCompleteRegistrationRemoved(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	registry, err := smart.NewRegistry(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	fx.flow.Registry = registry
	_, err = fx.complete(l)
	expectKind(t, err, smart.Misconfigured, http.StatusInternalServerError)
}

// The store contract: a consumed launch is gone for every later caller,
// whatever the outcome of the exchange.
func TestCompleteConsumesOnFailure(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
		return http.StatusBadRequest, map[string]string{"error": "invalid_grant"}, true
	})
	if _, err := fx.complete(l); err == nil {
		t.Fatal("want an error")
	}
	if _, err := fx.store.Store.ConsumeLaunch(context.Background(), smart.LaunchID(l.state)); !errors.Is(err, store.ErrConsumed) {
		t.Errorf("ConsumeLaunch after a failed exchange = %v, want ErrConsumed", err)
	}
}

func TestCompletePrivateKeyForms(t *testing.T) {
	ec := smarttest.NewECKey(t)
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := smarttest.NewRSAKey(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		alg  string
		pub  crypto.PublicKey
		pem  string
		ok   bool
	}{
		{"ES384 SEC 1", "ES384", ec.Public(), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})), true},
		{"RS384 PKCS#1", "RS384", rsaKey.Public(), string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})), true},
		{"RS384 PKCS#8", "RS384", rsaKey.Public(), smarttest.PEM(t, rsaKey), true},
		{"RSA 1024", "RS384", small.Public(), smarttest.PEM(t, small), false},
		{"P-256 for ES384", "ES384", p256.Public(), smarttest.PEM(t, p256), false},
		{"EC key for RS384", "RS384", ec.Public(), smarttest.PEM(t, ec), false},
		{"public key PEM", "ES384", ec.Public(), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, smart.AuthPrivateKeyJWT, func(r *smart.Registration) { r.ClientAuth.Alg = tc.alg })
			fx.secrets["ehr-client-key"] = tc.pem
			fx.srv.AddClient(smarttest.Client{ID: fx.reg.ClientID, Auth: smarttest.AuthPrivateKeyJWT, PublicKey: tc.pub, KeyID: "calc-key-1", RedirectURIs: []string{redirectURI}})
			_, err := fx.complete(fx.launch(t, defaultContext))
			if tc.ok {
				if err != nil {
					t.Fatalf("Complete: %v", err)
				}
				tok, err := jwt.ParseSigned(fx.srv.Requests("/token")[0].Form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.alg)})
				if err != nil || tok.Headers[0].Algorithm != tc.alg {
					t.Errorf("assertion alg: %v %v", tok, err)
				}
				return
			}
			e := expectKind(t, err, smart.Misconfigured, http.StatusInternalServerError)
			if strings.Contains(e.Error(), tc.pem) || !strings.Contains(e.Error(), `"ehr-client-key"`) {
				t.Errorf("error = %q", e)
			}
		})
	}
}

// Some servers answer form-encoded; x/oauth2 decodes those too, with
// numeric-looking values as numbers.
func TestCompleteFormEncodedTokenResponse(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
		return http.StatusOK, url.Values{
			"access_token": {"at-form"}, "token_type": {"bearer"}, "expires_in": {"600"},
			"patient": {"12345"}, "scope": {"launch patient/Patient.rs"},
		}, true
	})
	res, err := fx.complete(l)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	s := res.Session
	if s.Patient != "12345" || s.AccessToken != "at-form" || !s.TokenExpiry.Equal(fx.clock.Now().Add(10*time.Minute)) || s.Scope != "launch patient/Patient.rs" {
		t.Errorf("session = %+v", s)
	}
}

func TestErrorUnwrap(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	l := fx.launch(t, defaultContext)
	if _, err := fx.complete(l); err != nil {
		t.Fatal(err)
	}
	_, err := fx.complete(l)
	if !errors.Is(err, store.ErrConsumed) {
		t.Errorf("replayed error %v does not wrap store.ErrConsumed", err)
	}
	fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
		return http.StatusBadRequest, map[string]string{"error": "invalid_grant"}, true
	})
	_, err = fx.complete(fx.launch(t, defaultContext))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("token error %v does not wrap *oauth2.RetrieveError", err)
	}
	if got := smart.InvalidGrant.String(); got != "invalid_grant" {
		t.Errorf("Kind.String = %q", got)
	}
}

// TestCompleteFailsClosed is the login-CSRF attack: a victim opens the
// attacker's callback URL and carries no binding nonce (or another one). No
// code is exchanged and no session is created, unless the registration
// turned the binding off explicitly.
func TestCompleteFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		binding string // Registration.BrowserBinding
		nonce   func(l, other launched) string
		wantErr bool
	}{
		{"no nonce (victim without the cookie)", "", func(l, o launched) string { return "" }, true},
		{"another launch's nonce", "", func(l, o launched) string { return o.begin.BindingNonce }, true},
		{"forged nonce", "", func(l, o launched) string { return "AAAA" }, true},
		{"own nonce", "", func(l, o launched) string { return l.begin.BindingNonce }, false},
		{"binding off, no nonce", smart.BindingOff, func(l, o launched) string { return "" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, smart.AuthPublic, func(r *smart.Registration) { r.BrowserBinding = tc.binding })
			l := fx.launch(t, defaultContext)
			other := fx.launch(t, defaultContext)
			res, err := fx.flow.Complete(context.Background(), smart.CompleteRequest{State: l.state, Code: l.code, BindingNonce: tc.nonce(l, other)})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Complete: %v", err)
				}
				if res.Bound != (tc.binding == "") {
					t.Errorf("Bound = %v", res.Bound)
				}
				return
			}
			e := expectKind(t, err, smart.BindingMismatch, http.StatusForbidden)
			if !strings.Contains(e.Title().String(), "Open SMART Calc from the EHR again") {
				t.Errorf("Title = %q", e.Title())
			}
			if got := len(fx.srv.Requests("/token")); got != 0 {
				t.Errorf("token requests = %d, want 0", got)
			}
		})
	}
}

func TestRegistrationBrowserBinding(t *testing.T) {
	for _, v := range []string{"on", "OFF", "false"} {
		reg := smart.Registration{ID: "x", Issuer: "https://ehr.example/fhir", ClientID: "c", ClientAuth: smart.ClientAuth{Type: smart.AuthPublic},
			Scope: "launch patient/Patient.rs", Launch: []string{"ehr"}, AllowedHosts: []string{"ehr.example"}, BrowserBinding: v}
		if _, err := smart.NewRegistry([]smart.Registration{reg}, false); err == nil || !strings.Contains(err.Error(), "browser_binding") {
			t.Errorf("browser_binding %q: err = %v", v, err)
		}
	}
}

// TestCompleteEHRErrorUnbound is the phishing-text attack: anyone can mint
// a state with /launch and send an error redirect for it. Without the
// launch's binding the EHR's text stays off the page; the log keeps it.
func TestCompleteEHRErrorUnbound(t *testing.T) {
	for _, nonce := range []string{"", "forged"} {
		fx := newFixture(t, smart.AuthPublic)
		l := fx.launch(t, defaultContext)
		_, err := fx.flow.Complete(context.Background(), smart.CompleteRequest{
			State: l.state, Error: "access_denied", ErrorDescription: "Call 555-0100", ErrorURI: "https://evil.example/", BindingNonce: nonce,
		})
		e := expectKind(t, err, smart.EHRDenied, http.StatusForbidden)
		p := smart.Problem(e)
		if !e.Unbound || p.EHRError != "" || strings.Contains(strings.Join(smart.English(p.Causes), " "), "555-0100") {
			t.Errorf("nonce %q: Unbound %v, page %+v", nonce, e.Unbound, p)
		}
		if e.EHRDescription != "Call 555-0100" {
			t.Errorf("the log loses the EHR's text: %+v", e)
		}
	}
}

// smart_style_url must be an https URL on an allowed host; otherwise the
// session goes on without it and the result says what was dropped.
func TestCompleteDropsBadStyleURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"javascript:alert(1)", ""},
		{"https://attacker.example/style.json", ""},
		{"http://ehr.example/style.json", ""},
		{"https://ehr.example/style.json", "https://ehr.example/style.json"},
	} {
		fx := newFixture(t, smart.AuthPublic)
		ctx := defaultContext
		ctx.SmartStyleURL = tc.url
		res, err := fx.complete(fx.launch(t, ctx))
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if res.Session.SmartStyleURL != tc.want || (tc.want == "") != (len(res.Dropped) == 1) {
			t.Errorf("%s: session smart_style_url %q, dropped %q", tc.url, res.Session.SmartStyleURL, res.Dropped)
		}
	}
}
