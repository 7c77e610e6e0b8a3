package smart_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

func TestBeginEHRLaunch(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	launch := fx.srv.NewLaunch(defaultContext)
	res, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: launch})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if got := fx.store.Calls(); !slices.Equal(got, []string{"CreateLaunch"}) {
		t.Errorf("store calls = %q, want exactly one CreateLaunch", got)
	}
	if got := fx.srv.Hits("/fhir/.well-known/smart-configuration"); got != 1 {
		t.Errorf("discovery requests = %d, want 1", got)
	}

	u := mustParse(t, res.AuthorizeURL)
	if got := u.Scheme + "://" + u.Host + u.Path; got != fx.srv.URL+"/authorize" {
		t.Errorf("authorize endpoint = %q, want %q", got, fx.srv.URL+"/authorize")
	}
	q := u.Query()
	var keys []string
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// nonce: the scope has openid.
	wantKeys := []string{"aud", "client_id", "code_challenge", "code_challenge_method", "launch", "nonce", "redirect_uri", "response_type", "scope", "state"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("authorize parameters = %q, want %q", keys, wantKeys)
	}
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             "calc-public",
		"redirect_uri":          redirectURI,
		"scope":                 clientScope,
		"aud":                   fx.srv.FHIRBase,
		"launch":                launch,
		"code_challenge_method": "S256",
		"state":                 res.State,
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorize %s = %q, want %q", k, got, want)
		}
	}
	state, err := base64.RawURLEncoding.DecodeString(res.State)
	if err != nil || len(state) < 32 {
		t.Errorf("state %q: %d random bytes (%v), want ≥ 32 base64url", res.State, len(state), err)
	}
	if res.Correlation != smart.Correlation(res.State) || len(res.Correlation) != 16 {
		t.Errorf("Correlation = %q", res.Correlation)
	}
	if res.Registration.ID != "test-ehr" {
		t.Errorf("Registration = %+v", res.Registration)
	}

	// The stored launch holds everything the callback needs.
	l, err := fx.store.Store.ConsumeLaunch(context.Background(), smart.LaunchID(res.State))
	if err != nil {
		t.Fatalf("ConsumeLaunch: %v", err)
	}
	// Keyed by sha256(state), the verifier sealed under a key from the
	// launch key and the state: the document yields neither, and neither
	// the state nor the launch key alone opens it.
	if l.State == res.State || l.State != smart.LaunchID(res.State) {
		t.Errorf("launch id %q, want sha256(state)", l.State)
	}
	verifier, err := smart.OpenLaunchVerifier(fx.flow.LaunchKey, res.State, l.Verifier)
	if err != nil || verifier == l.Verifier || strings.Contains(l.Verifier, verifier) {
		t.Fatalf("stored verifier is not sealed under the launch key and state: %v", err)
	}
	if _, err := smart.OpenLaunchVerifier(fx.flow.LaunchKey, "another-state", l.Verifier); err == nil {
		t.Error("the sealed verifier opens without the state")
	}
	if _, err := smart.OpenLaunchVerifier(newLaunchKey(t), res.State, l.Verifier); err == nil {
		t.Error("the sealed verifier opens with the state under another launch key (a store dump plus a leaked state)")
	}
	if _, err := smart.OpenLaunchVerifier(nil, res.State, l.Verifier); err == nil {
		t.Error("the sealed verifier opens with the state and no launch key")
	}
	if got, want := q.Get("code_challenge"), oauth2.S256ChallengeFromVerifier(verifier); got != want {
		t.Errorf("code_challenge = %q, want S256(stored verifier) = %q", got, want)
	}
	if len(verifier) != 43 {
		t.Errorf("verifier length = %d, want 43", len(verifier))
	}
	sum := sha256.Sum256([]byte(res.BindingNonce))
	if l.BindingHash != hex.EncodeToString(sum[:]) || strings.Contains(l.BindingHash, res.BindingNonce) {
		t.Errorf("BindingHash = %q, want sha256 hex of the nonce", l.BindingHash)
	}
	if nonce, err := base64.RawURLEncoding.DecodeString(res.BindingNonce); err != nil || len(nonce) < 32 {
		t.Errorf("BindingNonce = %q: %d bytes", res.BindingNonce, len(nonce))
	}
	now := fx.clock.Now()
	want := map[string][2]string{
		"RegistrationID": {l.RegistrationID, "test-ehr"},
		"Issuer":         {l.Issuer, fx.srv.FHIRBase},
		"Audience":       {l.Audience, fx.srv.FHIRBase},
		"AuthorizeURL":   {l.AuthorizeURL, fx.srv.URL + "/authorize"},
		"TokenURL":       {l.TokenURL, fx.srv.URL + "/token"},
		"RedirectURI":    {l.RedirectURI, redirectURI},
		"LaunchToken":    {l.LaunchToken, launch},
		"Scope":          {l.Scope, clientScope},
		// For the callback's id_token check, without discovery there.
		"JWKSURI":         {l.JWKSURI, fx.srv.URL + "/jwks"},
		"DiscoveryIssuer": {l.DiscoveryIssuer, fx.srv.FHIRBase},
	}
	for field, v := range want {
		if v[0] != v[1] {
			t.Errorf("stored %s = %q, want %q", field, v[0], v[1])
		}
	}
	if !l.CreatedAt.Equal(now) || !l.ExpiresAt.Equal(now.Add(smart.DefaultLaunchTTL)) {
		t.Errorf("stored CreatedAt, ExpiresAt = %v, %v; want %v, +10m", l.CreatedAt, l.ExpiresAt, now)
	}

	// A second Begin for the same EHR uses the cached discovery.
	if _, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: launch}); err != nil {
		t.Fatal(err)
	}
	if got := fx.srv.Hits("/fhir/.well-known/smart-configuration"); got != 1 {
		t.Errorf("discovery requests after a second launch = %d, want 1 (cached)", got)
	}
}

func TestBeginStandalone(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	res, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	q := mustParse(t, res.AuthorizeURL).Query()
	if q.Has("launch") {
		t.Errorf("standalone authorize URL has a launch parameter: %q", q.Get("launch"))
	}
	scope := strings.Fields(q.Get("scope"))
	if slices.Contains(scope, "launch") || !slices.Contains(scope, "launch/patient") {
		t.Errorf("standalone scope = %q, want launch replaced by launch/patient", scope)
	}
	if want := strings.Replace(clientScope, "launch ", "", 1); strings.Join(scope[1:], " ") != want {
		t.Errorf("standalone scope = %q, want launch/patient %s", scope, want)
	}
	// The fake server grants the standalone patient.
	code, state, err := fx.srv.Authorize(res.AuthorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := fx.flow.Complete(context.Background(), smart.CompleteRequest{State: state, Code: code, BindingNonce: res.BindingNonce})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if cr.Session.Patient != "standalone-patient" || cr.Launch.LaunchToken != "" {
		t.Errorf("session patient = %q, launch token %q", cr.Session.Patient, cr.Launch.LaunchToken)
	}
}

func TestBeginRefusals(t *testing.T) {
	for _, tc := range []struct {
		name          string
		edit          func(*smart.Registration)
		discovery     func(doc map[string]any)
		iss           func(fx *fixture) string
		standalone    bool
		want          smart.Kind
		status        int
		wantDiscovery int // discovery requests expected
	}{
		{
			name: "unknown iss makes no request",
			iss:  func(fx *fixture) string { return "https://evil.example/fhir" },
			want: smart.UnknownIssuer, status: http.StatusForbidden,
		},
		{
			name: "unknown loopback iss makes no request",
			iss:  func(fx *fixture) string { return fx.srv.URL + "/other/fhir" },
			want: smart.UnknownIssuer, status: http.StatusForbidden,
		},
		{
			name: "malformed iss",
			iss:  func(fx *fixture) string { return "not a url" },
			want: smart.MalformedIssuer, status: http.StatusBadRequest,
		},
		{
			name: "missing iss",
			iss:  func(fx *fixture) string { return "" },
			want: smart.MalformedIssuer, status: http.StatusBadRequest,
		},
		{
			name:       "standalone not allowed",
			edit:       func(r *smart.Registration) { r.Launch = []string{"ehr"} },
			standalone: true,
			want:       smart.LaunchModeNotAllowed, status: http.StatusForbidden,
		},
		{
			name: "ehr launch not allowed",
			edit: func(r *smart.Registration) { r.Launch = []string{"standalone"} },
			want: smart.LaunchModeNotAllowed, status: http.StatusForbidden,
		},
		{
			name:      "discovery fails",
			discovery: func(doc map[string]any) { delete(doc, "token_endpoint") },
			want:      smart.DiscoveryFailed, status: http.StatusBadGateway, wantDiscovery: 1,
		},
		{
			name:      "no S256 advertised",
			discovery: func(doc map[string]any) { delete(doc, "code_challenge_methods_supported") },
			want:      smart.NoS256, status: http.StatusBadGateway, wantDiscovery: 1,
		},
		{
			name:      "only plain advertised",
			discovery: func(doc map[string]any) { doc["code_challenge_methods_supported"] = []string{"plain"} },
			want:      smart.NoS256, status: http.StatusBadGateway, wantDiscovery: 1,
		},
		{
			name: "token endpoint host not allowed",
			discovery: func(doc map[string]any) {
				doc["token_endpoint"] = "https://evil.example/token"
			},
			want: smart.EndpointNotAllowed, status: http.StatusBadGateway, wantDiscovery: 1,
		},
		{
			name: "authorize endpoint host not allowed",
			edit: func(r *smart.Registration) { r.AllowedHosts = []string{"authorization.cerner.com"} },
			want: smart.EndpointNotAllowed, status: http.StatusBadGateway, wantDiscovery: 1,
		},
		{
			name: "http endpoint on an allowed non-loopback host",
			edit: func(r *smart.Registration) { r.AllowedHosts = []string{"127.0.0.1", "ehr.example"} },
			discovery: func(doc map[string]any) {
				doc["token_endpoint"] = "http://ehr.example/token"
			},
			want: smart.EndpointNotAllowed, status: http.StatusBadGateway, wantDiscovery: 1,
		},
		{
			name: "very long launch parameter",
			iss:  func(fx *fixture) string { return fx.srv.FHIRBase },
			want: smart.MalformedLaunch, status: http.StatusBadRequest,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var edits []func(*smart.Registration)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			fx := newFixture(t, smart.AuthPublic, edits...)
			if tc.discovery != nil {
				fx.srv.EditDiscovery(tc.discovery)
			}
			iss := fx.srv.FHIRBase
			if tc.iss != nil {
				iss = tc.iss(fx)
			}
			launch := "launch-123"
			if tc.standalone {
				launch = ""
			}
			if tc.want == smart.MalformedLaunch {
				launch = strings.Repeat("x", 5000)
			}
			res, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: iss, Launch: launch})
			if err == nil {
				t.Fatalf("Begin = %+v, want %v", res, tc.want)
			}
			e := asError(t, err)
			if e.Kind != tc.want || e.HTTPStatus() != tc.status {
				t.Errorf("Begin error kind %v status %d, want %v %d (%v)", e.Kind, e.HTTPStatus(), tc.want, tc.status, e)
			}
			if e.Title().IsZero() || e.Advice().IsZero() {
				t.Errorf("empty Title or Advice for %v", e.Kind)
			}
			if got := len(fx.srv.Requests("")); got != tc.wantDiscovery {
				t.Errorf("outbound requests = %d, want %d", got, tc.wantDiscovery)
			}
			if got := fx.store.Calls(); len(got) != 0 {
				t.Errorf("store calls = %q, want none", got)
			}
		})
	}
}

func TestBeginForcePKCE(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic, func(r *smart.Registration) { r.PKCE = smart.PKCEForce })
	fx.srv.EditDiscovery(func(doc map[string]any) { delete(doc, "code_challenge_methods_supported") })
	res, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: fx.srv.NewLaunch(defaultContext)})
	if err != nil {
		t.Fatalf("Begin with pkce=force: %v", err)
	}
	q := mustParse(t, res.AuthorizeURL).Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		t.Errorf("forced PKCE not sent: %q", res.AuthorizeURL)
	}
}

func TestBeginStoreFailure(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	fx.store.fail = map[string]error{"CreateLaunch": context.DeadlineExceeded}
	_, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: "x"})
	e := asError(t, err)
	if e.Kind != smart.StoreFailure || e.HTTPStatus() != http.StatusInternalServerError || e.Correlation == "" {
		t.Errorf("Begin = %+v, want StoreFailure 500 with a correlation", e)
	}
}

func TestBeginMisconfigured(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	fx.flow.RedirectURI = "http://app.example/callback"
	_, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: "x"})
	if e := asError(t, err); e.Kind != smart.Misconfigured || e.HTTPStatus() != http.StatusInternalServerError {
		t.Errorf("Begin with an http redirect URI = %v, want Misconfigured", err)
	}
	// Without a launch key (or with a short one) nothing is stored and no
	// request leaves.
	for _, key := range [][]byte{nil, make([]byte, smart.LaunchKeySize-1)} {
		fx := newFixture(t, smart.AuthPublic)
		fx.flow.LaunchKey = key
		before := len(fx.srv.Requests(""))
		_, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: "x"})
		if e := asError(t, err); e.Kind != smart.Misconfigured || !strings.Contains(e.Error(), "LaunchKey") {
			t.Errorf("Begin with a %d-byte launch key = %v, want Misconfigured naming LaunchKey", len(key), err)
		}
		if got := fx.store.Calls(); len(got) != 0 {
			t.Errorf("store calls = %q, want none", got)
		}
		if got := len(fx.srv.Requests("")) - before; got != 0 {
			t.Errorf("%d requests to the EHR, want none", got)
		}
	}
}

func TestBeginLaunchTTL(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	fx.flow.LaunchTTL = 3 * time.Minute
	l := fx.launch(t, defaultContext)
	fx.clock.Add(3*time.Minute + time.Second)
	_, err := fx.complete(l)
	if e := asError(t, err); e.Kind != smart.ExpiredState {
		t.Errorf("Complete after LaunchTTL = %v, want ExpiredState", err)
	}
}

// Both Begin variants pass through the fake server's authorize checks.
func TestBeginAcceptedByStrictServer(t *testing.T) {
	fx := newFixture(t, smart.AuthPublic)
	for _, launch := range []string{fx.srv.NewLaunch(smarttest.LaunchContext{Patient: "p"}), ""} {
		res, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: launch})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := fx.srv.Authorize(res.AuthorizeURL); err != nil {
			t.Errorf("server refused authorize (launch %q): %v", launch, err)
		}
	}
}
