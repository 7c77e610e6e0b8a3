package readiness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/readiness"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

const (
	launchURI   = "https://app.example/launch"
	redirectURI = "https://app.example/callback"
	scope       = "launch openid fhirUser patient/Patient.rs patient/Observation.rs patient/Condition.rs patient/MedicationRequest.rs patient/MedicationStatement.rs patient/Medication.rs patient/Procedure.rs patient/Encounter.rs online_access"
)

// fakeEHR is an EHR whose every answer a test can change.
type fakeEHR struct {
	*httptest.Server
	mu        sync.Mutex
	discovery map[string]any
	metadata  map[string]any
	// authorize answers /authorize; token answers /token.
	authorize func(w http.ResponseWriter, r *http.Request)
	token     func(w http.ResponseWriter, r *http.Request)
	requests  []string
	jwks      jose.JSONWebKeySet
}

func newFakeEHR(t *testing.T) *fakeEHR {
	t.Helper()
	f := &fakeEHR{jwks: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{smarttest.PublicJWK(smarttest.NewECKey(t), "k1", jose.ES256)}}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	base := f.URL
	f.discovery = map[string]any{
		"issuer": base + "/fhir", "jwks_uri": base + "/jwks",
		"authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_basic", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES384", "RS384"},
		"capabilities": []string{"launch-ehr", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
			"context-ehr-patient", "sso-openid-connect", "permission-v1", "permission-v2"},
		"scopes_supported": append(strings.Fields(scope), "patient/*.rs"),
		"authorization_response_iss_parameter_supported": true,
	}
	var res []map[string]any
	for _, n := range needs(t) {
		var sp []map[string]string
		for _, p := range n.SearchParams {
			sp = append(sp, map[string]string{"name": p})
		}
		res = append(res, map[string]any{"type": n.Resource, "interaction": []map[string]string{{"code": "read"}, {"code": "search-type"}}, "searchParam": sp})
	}
	f.metadata = map[string]any{"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": []map[string]any{{"mode": "server", "resource": res}}}
	f.authorize = func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"error": {"unsupported_response_type"}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	}
	f.token = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"unknown code"}`)
	}
	return f
}

func (f *fakeEHR) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	disc, md, authz, tok := f.discovery, f.metadata, f.authorize, f.token
	f.mu.Unlock()
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/fhir/.well-known/smart-configuration":
		if disc == nil {
			http.NotFound(w, r)
			return
		}
		writeJSON(disc)
	case "/fhir/.well-known/openid-configuration":
		writeJSON(map[string]any{"issuer": f.URL + "/fhir", "jwks_uri": f.URL + "/jwks"})
	case "/jwks":
		writeJSON(f.jwks)
	case "/fhir/metadata":
		writeJSON(md)
	case "/authorize":
		authz(w, r)
	case "/token":
		tok(w, r)
	default:
		http.NotFound(w, r)
	}
}

func needs(t *testing.T) []assess.Need {
	t.Helper()
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return assess.Needs(cfg)
}

func (f *fakeEHR) registration(edit ...func(*smart.Registration)) smart.Registration {
	r := smart.Registration{ID: "fake", Issuer: f.URL + "/fhir", ClientID: "calc", ClientAuth: smart.ClientAuth{Type: smart.AuthPublic},
		Scope: scope, Launch: []string{"ehr"}, AllowedHosts: []string{"127.0.0.1"}}
	for _, e := range edit {
		e(&r)
	}
	return r
}

func doctor(t *testing.T, regs ...smart.Registration) *readiness.Doctor {
	return &readiness.Doctor{Registrations: regs, AllowLoopbackHTTP: true, LaunchURI: launchURI, RedirectURI: redirectURI,
		Secrets: func(name string) (string, error) { return "", fmt.Errorf("secret %s not configured", name) }, Needs: needs(t)}
}

func statuses(r *readiness.Report) map[string]readiness.Status {
	out := map[string]readiness.Status{}
	for _, c := range r.Checks {
		out[c.ID] = c.Status
	}
	return out
}

func text(r *readiness.Report) string {
	var b bytes.Buffer
	r.WriteText(&b)
	return b.String()
}

func TestAllPass(t *testing.T) {
	f := newFakeEHR(t)
	r := doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
	if r.Summary[readiness.Pass] != 17 || r.Failed() {
		t.Fatalf("%v\n%s", r.Summary, text(r))
	}
	if c := r.Console; c.LaunchURI != launchURI || c.RedirectURI != redirectURI || c.ClientID != "calc" || c.SMARTVersion != "v2" {
		t.Errorf("console %+v", c)
	}
	out := text(r)
	for _, want := range []string{"SMART Calc readiness check for " + f.URL + "/fhir", "Registration: fake", "PASS  client-auth",
		"Redirect URI:  " + redirectURI, "Summary: 17 pass, 0 warn, 0 fail, 0 skip"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

func TestRegistrationProblems(t *testing.T) {
	f := newFakeEHR(t)
	bad := f.registration(func(r *smart.Registration) {
		r.ID, r.Issuer, r.AllowedHosts = "broken", "https://other.example/fhir", nil
	})
	r := doctor(t, f.registration(), bad).Check(context.Background(), f.URL+"/fhir")
	c, _ := r.Check("registration")
	if c.Status != readiness.Fail || !strings.Contains(c.Detail, `entry 1 ("broken"): allowed_hosts: required`) || statuses(r)["fhir"] != readiness.Pass {
		t.Errorf("registration %+v; other checks %v", c, statuses(r))
	}
	for iss, want := range map[string]string{"not a url": "is not an EHR's FHIR base", "https://unknown.example/fhir": "No registration's iss"} {
		r = doctor(t, f.registration()).Check(context.Background(), iss)
		c, _ = r.Check("registration")
		if c.Status != readiness.Fail || !strings.Contains(c.Detail, want) || r.Summary[readiness.Skip] != 16 {
			t.Errorf("%s: %+v, %v", iss, c, r.Summary)
		}
	}
	d := doctor(t)
	d.RegistrationsError = fmt.Errorf("SMARTCALC_EHRS: entry 0: unknown field")
	if r := d.Check(context.Background(), f.URL+"/fhir"); !strings.Contains(r.Checks[0].Detail, "unknown field") || !r.Failed() {
		t.Errorf("%+v", r.Checks[0])
	}
}

func TestDiscoveryFailureSkipsTheRest(t *testing.T) {
	f := newFakeEHR(t)
	f.discovery = nil
	r := doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
	st := statuses(r)
	if st["discovery"] != readiness.Fail || st["client-auth"] != readiness.Skip || st["console"] != readiness.Pass || r.Summary[readiness.Skip] != 14 {
		t.Errorf("%v\n%s", st, text(r))
	}
	for _, req := range f.requests {
		if strings.HasSuffix(req, "/token") || strings.HasSuffix(req, "/authorize") {
			t.Errorf("sent %s after discovery failed", req)
		}
	}
}

func TestPKCE(t *testing.T) {
	f := newFakeEHR(t)
	f.discovery["code_challenge_methods_supported"] = []string{"plain"}
	r := doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
	c, _ := r.Check("pkce")
	if c.Status != readiness.Fail || !strings.Contains(c.Fix, `"pkce" of registration "fake"`) {
		t.Errorf("no S256: %+v", c)
	}
	r = doctor(t, f.registration(func(r *smart.Registration) { r.PKCE = smart.PKCEForce })).Check(context.Background(), f.URL+"/fhir")
	if c, _ := r.Check("pkce"); c.Status != readiness.Warn {
		t.Errorf("forced: %+v", c)
	}
}

func TestFHIRCapabilityStatement(t *testing.T) {
	f := newFakeEHR(t)
	rest := f.metadata["rest"].([]map[string]any)[0]
	var kept []map[string]any
	for _, r := range rest["resource"].([]map[string]any) {
		if r["type"] != "Observation" && r["type"] != "Encounter" {
			kept = append(kept, r)
		}
	}
	rest["resource"] = kept
	r := doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
	c, _ := r.Check("fhir")
	if c.Status != readiness.Warn || !strings.Contains(c.Detail, "Observation: not in the CapabilityStatement") ||
		!strings.Contains(c.Detail, "precise-hbr") || !strings.Contains(c.Detail, "Encounter: not in") || strings.Contains(c.Detail, "Condition:") {
		t.Errorf("%+v", c)
	}
	f.metadata["fhirVersion"] = "3.0.2"
	r = doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
	if c, _ := r.Check("fhir"); c.Status != readiness.Fail || !strings.Contains(c.Fix, "R4") {
		t.Errorf("STU3: %+v", c)
	}
}

func TestRedirectURISignInFirst(t *testing.T) {
	f := newFakeEHR(t)
	f.authorize = func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://login.example/sso?next=1", http.StatusFound)
	}
	r := doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
	if c, _ := r.Check("redirect-uri"); c.Status != readiness.Warn || !strings.Contains(c.Detail, "https://login.example/sso") || !strings.Contains(c.Fix, redirectURI) {
		t.Errorf("%+v", c)
	}
}

func TestClientAuthAnswers(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		status     int
		want       readiness.Status
		detail     string
	}{
		{"accepted, naming PKCE", `{"error":"invalid_grant","error_description":"PKCE verification failed"}`, 400, readiness.Pass, "PKCE verifier mismatch, as the EHR's answer says"},
		{"refused", `{"error":"invalid_client","error_description":"bad client"}`, 401, readiness.Fail, "a launch would fail with invalid_client"},
		{"not allowed the grant", `{"error":"unauthorized_client"}`, 400, readiness.Fail, "may not use the authorization code grant"},
		{"server failure", `<html>oops</html>`, 503, readiness.Warn, "HTTP 503"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEHR(t)
			f.token = func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}
			r := doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
			if c, _ := r.Check("client-auth"); c.Status != tt.want || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("%+v", c)
			}
		})
	}
	t.Run("secret without a value", func(t *testing.T) {
		f := newFakeEHR(t)
		reg := f.registration(func(r *smart.Registration) {
			r.ClientAuth = smart.ClientAuth{Type: smart.AuthClientSecretBasic, Secret: "ehr-secret"}
		})
		r := doctor(t, reg).Check(context.Background(), f.URL+"/fhir")
		c, _ := r.Check("client-auth")
		if c.Status != readiness.Fail || !strings.Contains(c.Fix, `"ehr-secret"`) || slices.Contains(f.requests, "POST /token") {
			t.Errorf("%+v; requests %v", c, f.requests)
		}
	})
}

func TestIDToken(t *testing.T) {
	f := newFakeEHR(t)
	delete(f.discovery, "issuer")
	delete(f.discovery, "jwks_uri")
	// The OpenID configuration at the FHIR base names the issuer.
	r := doctor(t, f.registration(func(r *smart.Registration) { r.IDTokenIssuer = "https://other.example/" })).Check(context.Background(), f.URL+"/fhir")
	c, _ := r.Check("id-token")
	if c.Status != readiness.Fail || !strings.Contains(c.Detail, "the OpenID configuration at the FHIR base") || !strings.Contains(c.Fix, f.URL+"/fhir") {
		t.Errorf("%+v", c)
	}
	r = doctor(t, f.registration(func(r *smart.Registration) { r.Scope = strings.Replace(scope, "openid ", "", 1) })).Check(context.Background(), f.URL+"/fhir")
	if c, _ := r.Check("id-token"); c.Status != readiness.Pass || !strings.Contains(c.Detail, "no openid") {
		t.Errorf("without openid: %+v", c)
	}
}

func TestScopes(t *testing.T) {
	f := newFakeEHR(t)
	mixed := strings.Replace(scope, "patient/Patient.rs", "patient/Patient.read", 1)
	r := doctor(t, f.registration(func(r *smart.Registration) { r.Scope = mixed })).Check(context.Background(), f.URL+"/fhir")
	if c, _ := r.Check("scope-syntax"); c.Status != readiness.Warn || !strings.Contains(c.Fix, "patient/Patient.rs") {
		t.Errorf("mixed: %+v", c)
	}
	narrow := "launch openid fhirUser patient/Patient.rs patient/Observation.rs"
	r = doctor(t, f.registration(func(r *smart.Registration) { r.Scope = narrow })).Check(context.Background(), f.URL+"/fhir")
	if c, _ := r.Check("scope-syntax"); c.Status != readiness.Warn || !strings.Contains(c.Detail, "Condition (") || !strings.Contains(c.Detail, "arc-hbr") {
		t.Errorf("narrow: %+v", c)
	}
	f.discovery["scopes_supported"] = []string{"launch", "openid", "fhirUser", "patient/*.rs"}
	r = doctor(t, f.registration()).Check(context.Background(), f.URL+"/fhir")
	if c, _ := r.Check("scopes-supported"); c.Status != readiness.Warn || c.Detail != "Not in the EHR's scopes_supported, so probably not granted: online_access. (The list need not be complete; the first launch's granted scope is the answer.)" {
		t.Errorf("supported: %+v", c)
	}
}

// TestNoSecretInReport: the private key, the assertion and the secret
// never appear in the report.
func TestNoSecretInReport(t *testing.T) {
	f := newFakeEHR(t)
	key := smarttest.NewECKey(t)
	pemKey := smarttest.PEM(t, key)
	var assertion string
	f.token = func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		assertion = r.PostForm.Get("client_assertion")
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
	}
	reg := f.registration(func(r *smart.Registration) {
		r.ClientAuth = smart.ClientAuth{Type: smart.AuthPrivateKeyJWT, Key: "k", KID: "kid-1", Alg: "ES384"}
	})
	d := doctor(t, reg)
	d.Secrets = func(string) (string, error) { return pemKey, nil }
	r := d.Check(context.Background(), f.URL+"/fhir")
	js, _ := json.Marshal(r)
	out := text(r) + string(js)
	if assertion == "" || r.Failed() {
		t.Fatalf("no assertion sent, or a failure:\n%s", text(r))
	}
	for _, s := range []string{assertion, pemKey, strings.Split(assertion, ".")[1]} {
		if strings.Contains(out, s) {
			t.Errorf("the report holds %.20s…", s)
		}
	}
}

// TestRefresh: without online_access or offline_access no refresh token
// comes back (warn, with the scope to add); with it, a public client of an
// EHR whose policy discovery does not show passes with what the first
// launch tells; a confidential client passes.
func TestRefresh(t *testing.T) {
	f := newFakeEHR(t)
	for _, tc := range []struct {
		name   string
		edit   func(*smart.Registration)
		status readiness.Status
		detail []string
		fix    []string
	}{
		{"public, online_access", nil, readiness.Pass,
			[]string{"asks for online_access", "does not advertise permission-online", "this EHR gives a public client a refresh token is its policy", `"session created" log line says refresh_token true or false`}, nil},
		{"no refresh scope", func(r *smart.Registration) { r.Scope = strings.TrimSuffix(scope, " online_access") }, readiness.Warn,
			[]string{"neither online_access nor offline_access", "expires_in"}, []string{"Add online_access", `"scope" of registration "fake"`}},
		{"confidential, offline_access", func(r *smart.Registration) {
			r.Scope = strings.Replace(scope, "online_access", "offline_access", 1)
			r.ClientAuth = smart.ClientAuth{Type: smart.AuthClientSecretBasic, Secret: "s"}
		}, readiness.Pass, []string{"asks for offline_access, for a confidential client (client_secret_basic)"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var edits []func(*smart.Registration)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			r := doctor(t, f.registration(edits...)).Check(context.Background(), f.URL+"/fhir")
			c, ok := r.Check("refresh")
			if !ok || c.Status != tc.status {
				t.Fatalf("refresh %+v, want %s", c, tc.status)
			}
			for _, w := range tc.detail {
				if !strings.Contains(c.Detail, w) {
					t.Errorf("detail %q lacks %q", c.Detail, w)
				}
			}
			for _, w := range tc.fix {
				if !strings.Contains(c.Fix, w) {
					t.Errorf("fix %q lacks %q", c.Fix, w)
				}
			}
		})
	}
}
