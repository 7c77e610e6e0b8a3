package ehrsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func getJSON(t *testing.T, e *env, u string) map[string]any {
	t.Helper()
	res := e.get(u)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q", u, ct)
	}
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func strs(v any) []string {
	var out []string
	for _, x := range asSlice(v) {
		out = append(out, x.(string))
	}
	return out
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	base := e.ts.URL + "/ehr"
	d := getJSON(t, e, e.s.FHIRBase()+"/.well-known/smart-configuration")
	want := map[string]string{
		"issuer":                 base + "/fhir",
		"authorization_endpoint": base + "/authorize",
		"token_endpoint":         base + "/token",
		"jwks_uri":               base + "/jwks",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %s", k, d[k], v)
		}
	}
	if got := strs(d["code_challenge_methods_supported"]); len(got) != 1 || got[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", got)
	}
	for k, must := range map[string][]string{
		"capabilities": {"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
			"context-ehr-patient", "context-standalone-patient", "context-banner", "sso-openid-connect",
			"permission-v1", "permission-v2", "permission-offline", "permission-online", "permission-patient", "permission-user"},
		"token_endpoint_auth_methods_supported":            {"client_secret_basic", "private_key_jwt"},
		"grant_types_supported":                            {"authorization_code", "refresh_token"},
		"response_types_supported":                         {"code"},
		"scopes_supported":                                 {"openid", "fhirUser", "launch", "launch/patient", "patient/*.rs", "patient/Observation.read"},
		"token_endpoint_auth_signing_alg_values_supported": {"ES384", "RS384"},
	} {
		got := strs(d[k])
		for _, m := range must {
			if !hasScope(got, m) {
				t.Errorf("%s lacks %q: %v", k, m, got)
			}
		}
	}
	oidc := getJSON(t, e, e.s.FHIRBase()+"/.well-known/openid-configuration")
	if oidc["issuer"] != base+"/fhir" || oidc["jwks_uri"] != base+"/jwks" {
		t.Errorf("openid-configuration issuer/jwks_uri = %v / %v", oidc["issuer"], oidc["jwks_uri"])
	}
	if got := strs(oidc["id_token_signing_alg_values_supported"]); len(got) != 1 || got[0] != "RS256" {
		t.Errorf("id_token_signing_alg_values_supported = %v", got)
	}
	keys := getJSON(t, e, base+"/jwks")
	ks := asSlice(keys["keys"])
	if len(ks) != 1 || ks[0].(map[string]any)["kid"] == "" || ks[0].(map[string]any)["d"] != nil {
		t.Errorf("jwks = %v, want one public key with a kid", keys)
	}
	// The CapabilityStatement carries the oauth-uris too (older discovery path).
	res := e.get(e.s.FHIRBase() + "/metadata")
	body := readBody(t, res)
	if res.StatusCode != 200 || !strings.Contains(body, base+"/authorize") || !strings.Contains(body, `"CapabilityStatement"`) {
		t.Errorf("metadata: %d %s", res.StatusCode, body)
	}
}

// verifyIDToken checks the id_token against the sandbox's JWKS.
func verifyIDToken(t *testing.T, e *env, raw string) map[string]any {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(e.get(e.ts.URL + "/ehr/jwks").Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	kid := tok.Headers[0].KeyID
	keys := set.Key(kid)
	if kid == "" || len(keys) != 1 {
		t.Fatalf("id_token kid %q not in JWKS", kid)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("id_token signature: %v", err)
	}
	return claims
}

func TestEHRLaunchEachClientType(t *testing.T) {
	for _, client := range []string{"pub", "conf", "jwt-ec", "jwt-rsa"} {
		t.Run(client, func(t *testing.T) {
			e := newEnv(t)
			p, v := e.authParams(client, ehrScope, e.launch("hbr-anticoag"))
			p.Set("nonce", "n-123")
			r := e.token(client, codeForm(e.code(p), v))
			if r.status != 200 {
				t.Fatalf("token: %d %v", r.status, r.body)
			}
			if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
				t.Errorf("cache headers: %v", r.header)
			}
			want := map[string]any{
				"token_type": "Bearer", "expires_in": 3600.0, "scope": ehrScope, "patient": "hbr-anticoag",
				"need_patient_banner": true, "tenant": "ehrsim", "smart_style_url": e.ts.URL + "/ehr/smart-style.json",
			}
			for k, w := range want {
				if r.body[k] != w {
					t.Errorf("%s = %v, want %v", k, r.body[k], w)
				}
			}
			if !strings.HasPrefix(r.str("encounter"), "hbr-anticoag-enc-") {
				t.Errorf("encounter = %q, want the in-progress encounter", r.str("encounter"))
			}
			if len(r.str("access_token")) < 40 || len(r.str("refresh_token")) < 40 {
				t.Errorf("tokens too short: %v", r.body)
			}
			claims := verifyIDToken(t, e, r.str("id_token"))
			wantClaims := map[string]any{"iss": e.s.FHIRBase(), "aud": client, "sub": UserID,
				"fhirUser": e.s.FHIRBase() + "/Practitioner/" + UserID, "nonce": "n-123"}
			for k, w := range wantClaims {
				if claims[k] != w {
					t.Errorf("id_token %s = %v, want %v", k, claims[k], w)
				}
			}
			if claims["exp"].(float64) <= claims["iat"].(float64) {
				t.Errorf("id_token exp %v <= iat %v", claims["exp"], claims["iat"])
			}
			status, pat, _ := e.fhir(r.str("access_token"), "Patient/hbr-anticoag")
			if status != 200 || pat["id"] != "hbr-anticoag" {
				t.Errorf("Patient read: %d %v", status, pat["id"])
			}
			// The user resource of fhirUser is readable with user/ or patient/*.
			if status, _, _ := e.fhir(r.str("access_token"), "Practitioner/"+UserID); status != 200 {
				t.Errorf("Practitioner read: %d", status)
			}
		})
	}
}

func TestStandaloneLaunch(t *testing.T) {
	e := newEnv(t)
	scope := "launch/patient openid fhirUser patient/*.rs offline_access"
	p, v := e.authParams("pub", scope, "")
	res := e.authorize(p)
	page := readBody(t, res)
	if res.StatusCode != 200 || !strings.Contains(page, "Select a patient") || !strings.Contains(page, "O&#39;Brien") {
		t.Fatalf("picker: %d %s", res.StatusCode, page)
	}
	reqID := between(page, `name="request" value="`, `"`)
	if reqID == "" {
		t.Fatal("picker has no request id")
	}
	pick := func(form url.Values) *http.Response {
		res, err := e.hc.PostForm(e.ts.URL+"/ehr/authorize/pick", form)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	q := e.redirectQuery(pick(url.Values{"request": {reqID}, "patient": {"low-risk"}}))
	if q.Get("state") != p.Get("state") || q.Get("code") == "" {
		t.Fatalf("pick redirect: %v", q)
	}
	r := e.token("pub", codeForm(q.Get("code"), v))
	if r.status != 200 || r.str("patient") != "low-risk" || r.body["need_patient_banner"] != true || r.str("refresh_token") == "" {
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	if r.body["encounter"] != nil {
		t.Errorf("standalone launch got encounter %v", r.body["encounter"])
	}
	// The picker request is single-use.
	if res := pick(url.Values{"request": {reqID}, "patient": {"low-risk"}}); res.StatusCode != 400 {
		t.Errorf("second pick: %d, want 400", res.StatusCode)
	}
	// Cancel sends access_denied back to the app.
	p2, _ := e.authParams("pub", scope, "")
	reqID = between(readBody(t, e.authorize(p2)), `name="request" value="`, `"`)
	if q := e.redirectQuery(pick(url.Values{"request": {reqID}, "cancel": {"1"}})); q.Get("error") != "access_denied" || q.Get("state") != p2.Get("state") {
		t.Errorf("cancel: %v", q)
	}

	// AutoPickPatient skips the page, and POST authorize works too.
	e2 := newEnv(t, func(c *Config) { c.AutoPickPatient = "stroke" })
	p3, v3 := e2.authParams("pub", scope, "")
	res, err := e2.hc.PostForm(e2.s.AuthorizeURL(), p3)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r = e2.token("pub", codeForm(e2.redirectQuery(res).Get("code"), v3))
	if r.status != 200 || r.str("patient") != "stroke" {
		t.Fatalf("auto-pick token: %d %v", r.status, r.body)
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

func TestAuthorizeRejections(t *testing.T) {
	e := newEnv(t)
	launch := e.launch("hbr-anticoag")
	tests := []struct {
		name     string
		edit     func(url.Values)
		page     bool   // an HTML error page, no redirect
		wantErr  string // else the error in the redirect
		wantDesc string
	}{
		{"unknown client", func(p url.Values) { p.Set("client_id", "nobody") }, true, "", "nobody"},
		{"unregistered redirect_uri", func(p url.Values) { p.Set("redirect_uri", appCallback+"/other") }, true, "", "not registered"},
		{"redirect_uri with extra query", func(p url.Values) { p.Set("redirect_uri", appCallback+"?x=1") }, true, "", "not registered"},
		{"missing redirect_uri", func(p url.Values) { p.Del("redirect_uri") }, true, "", "redirect_uri"},
		{"missing PKCE", func(p url.Values) { p.Del("code_challenge"); p.Del("code_challenge_method") }, false, "invalid_request", "PKCE is required"},
		{"plain PKCE", func(p url.Values) { p.Set("code_challenge_method", "plain") }, false, "invalid_request", "must be S256"},
		{"challenge without method", func(p url.Values) { p.Del("code_challenge_method") }, false, "invalid_request", "PKCE is required"},
		{"malformed challenge", func(p url.Values) { p.Set("code_challenge", "short") }, false, "invalid_request", "code_challenge"},
		{"wrong aud", func(p url.Values) { p.Set("aud", "https://evil.example/fhir") }, false, "invalid_request", "Bad audience value"},
		{"aud with trailing slash", func(p url.Values) { p.Set("aud", e.s.FHIRBase()+"/") }, false, "invalid_request", "Bad audience value"},
		{"missing aud", func(p url.Values) { p.Del("aud") }, false, "invalid_request", "aud is required"},
		{"missing state", func(p url.Values) { p.Del("state") }, false, "invalid_request", "state is required"},
		{"response_type token", func(p url.Values) { p.Set("response_type", "token") }, false, "unsupported_response_type", ""},
		{"missing response_type", func(p url.Values) { p.Del("response_type") }, false, "invalid_request", "response_type"},
		{"unknown launch", func(p url.Values) { p.Set("launch", "made-up") }, false, "invalid_request", "launch parameter"},
		{"launch without launch scope", func(p url.Values) { p.Set("scope", "openid fhirUser patient/*.rs") }, false, "invalid_scope", "launch scope"},
		{"launch scope without launch", func(p url.Values) { p.Del("launch") }, false, "invalid_request", "launch parameter"},
		{"patient scope without context", func(p url.Values) { p.Del("launch"); p.Set("scope", "openid patient/*.rs") }, false, "access_denied", "patient context"},
		{"no grantable scope", func(p url.Values) { p.Del("launch"); p.Set("scope", "system/*.rs made-up") }, false, "invalid_scope", ""},
		{"empty scope", func(p url.Values) { p.Set("scope", " ") }, false, "invalid_scope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := e.authParams("pub", ehrScope, launch)
			tt.edit(p)
			res := e.authorize(p)
			if tt.page {
				body := readBody(t, res)
				if res.StatusCode != 400 || res.Header.Get("Location") != "" || !strings.Contains(body, tt.wantDesc) {
					t.Fatalf("want an HTML 400 page mentioning %q, got %d Location=%q %s", tt.wantDesc, res.StatusCode, res.Header.Get("Location"), body)
				}
				return
			}
			q := e.redirectQuery(res)
			if q.Get("error") != tt.wantErr || !strings.Contains(q.Get("error_description"), tt.wantDesc) || q.Get("code") != "" {
				t.Fatalf("error = %q (%q), want %q containing %q", q.Get("error"), q.Get("error_description"), tt.wantErr, tt.wantDesc)
			}
			if q.Get("state") != p.Get("state") {
				t.Errorf("state = %q, want %q", q.Get("state"), p.Get("state"))
			}
		})
	}
	t.Run("expired launch", func(t *testing.T) {
		launch := e.launch("low-risk")
		e.clock.Add(11 * time.Minute)
		p, _ := e.authParams("pub", ehrScope, launch)
		if q := e.redirectQuery(e.authorize(p)); q.Get("error") != "invalid_request" {
			t.Errorf("expired launch: %v", q)
		}
	})
}

func TestTokenRejections(t *testing.T) {
	type tc struct {
		name       string
		client     string // who exchanges (default pub)
		issuedTo   string // who authorized (default pub)
		edit       func(e *env, f url.Values, req *http.Request)
		before     func(e *env)
		wantStatus int
		wantErr    string
		wantDesc   string
	}
	tests := []tc{
		{name: "wrong verifier", edit: func(_ *env, f url.Values, _ *http.Request) { v, _ := pkce(); f.Set("code_verifier", v) },
			wantStatus: 400, wantErr: "invalid_grant", wantDesc: "PKCE verification failed"},
		{name: "missing verifier", edit: func(_ *env, f url.Values, _ *http.Request) { f.Del("code_verifier") },
			wantStatus: 400, wantErr: "invalid_request", wantDesc: "code_verifier"},
		{name: "code after 61 s", before: func(e *env) { e.clock.Add(61 * time.Second) },
			wantStatus: 400, wantErr: "invalid_grant", wantDesc: "expired"},
		{name: "different redirect_uri", edit: func(_ *env, f url.Values, _ *http.Request) { f.Set("redirect_uri", appCallback+"?x") },
			wantStatus: 400, wantErr: "invalid_grant", wantDesc: "redirect_uri"},
		{name: "unknown code", edit: func(_ *env, f url.Values, _ *http.Request) { f.Set("code", "nope") },
			wantStatus: 400, wantErr: "invalid_grant"},
		{name: "code of another client", client: "conf", issuedTo: "pub",
			wantStatus: 400, wantErr: "invalid_grant", wantDesc: "another client"},
		{name: "wrong client secret", client: "conf", issuedTo: "conf",
			edit:       func(_ *env, _ url.Values, r *http.Request) { r.SetBasicAuth("conf", "wrong") },
			wantStatus: 401, wantErr: "invalid_client"},
		{name: "confidential client without auth", client: "conf", issuedTo: "conf",
			edit:       func(_ *env, f url.Values, r *http.Request) { r.Header.Del("Authorization"); f.Set("client_id", "conf") },
			wantStatus: 401, wantErr: "invalid_client"},
		{name: "client_secret_post refused", client: "conf", issuedTo: "conf",
			edit: func(_ *env, f url.Values, r *http.Request) {
				r.Header.Del("Authorization")
				f.Set("client_id", "conf")
				f.Set("client_secret", testSecret)
			},
			wantStatus: 401, wantErr: "invalid_client"},
		{name: "public client with Basic", edit: func(_ *env, f url.Values, r *http.Request) { r.SetBasicAuth("pub", "") },
			wantStatus: 401, wantErr: "invalid_client"},
		{name: "public client with secret", edit: func(_ *env, f url.Values, _ *http.Request) { f.Set("client_secret", "x") },
			wantStatus: 401, wantErr: "invalid_client"},
		{name: "unsupported grant type", edit: func(_ *env, f url.Values, _ *http.Request) { f.Set("grant_type", "password") },
			wantStatus: 400, wantErr: "unsupported_grant_type"},
		{name: "assertion with wrong aud", client: "jwt-ec", issuedTo: "jwt-ec",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(clientEC, jose.ES384, "ec1", "jwt-ec", func(c map[string]any) { c["aud"] = e.s.FHIRBase() }))
			}, wantStatus: 401, wantErr: "invalid_client", wantDesc: "aud"},
		{name: "assertion exp too far", client: "jwt-ec", issuedTo: "jwt-ec",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(clientEC, jose.ES384, "ec1", "jwt-ec", func(c map[string]any) { c["exp"] = e.clock.Now().Add(10 * time.Minute).Unix() }))
			}, wantStatus: 401, wantErr: "invalid_client", wantDesc: "5 minutes"},
		{name: "assertion expired", client: "jwt-ec", issuedTo: "jwt-ec",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(clientEC, jose.ES384, "ec1", "jwt-ec", func(c map[string]any) { c["exp"] = e.clock.Now().Add(-time.Minute).Unix() }))
			}, wantStatus: 401, wantErr: "invalid_client", wantDesc: "expired"},
		{name: "assertion signed by another key", client: "jwt-ec", issuedTo: "jwt-ec",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(otherEC, jose.ES384, "ec1", "jwt-ec", nil))
			}, wantStatus: 401, wantErr: "invalid_client", wantDesc: "signature"},
		{name: "assertion with unknown kid", client: "jwt-rsa", issuedTo: "jwt-rsa",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(clientRSA, jose.RS384, "other", "jwt-rsa", nil))
			}, wantStatus: 401, wantErr: "invalid_client"},
		{name: "assertion RS256 refused", client: "jwt-rsa", issuedTo: "jwt-rsa",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(clientRSA, jose.RS256, "rsa1", "jwt-rsa", nil))
			}, wantStatus: 401, wantErr: "invalid_client", wantDesc: "ES384 or RS384"},
		{name: "assertion sub differs", client: "jwt-ec", issuedTo: "jwt-ec",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(clientEC, jose.ES384, "ec1", "jwt-ec", func(c map[string]any) { c["sub"] = "someone" }))
			}, wantStatus: 401, wantErr: "invalid_client", wantDesc: "sub"},
		{name: "assertion without jti", client: "jwt-ec", issuedTo: "jwt-ec",
			edit: func(e *env, f url.Values, _ *http.Request) {
				f.Set("client_assertion", e.assertion(clientEC, jose.ES384, "ec1", "jwt-ec", func(c map[string]any) { delete(c, "jti") }))
			}, wantStatus: 401, wantErr: "invalid_client", wantDesc: "jti"},
		{name: "wrong assertion type", client: "jwt-ec", issuedTo: "jwt-ec",
			edit:       func(_ *env, f url.Values, _ *http.Request) { f.Set("client_assertion_type", "urn:other") },
			wantStatus: 401, wantErr: "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			issuedTo, client := tt.issuedTo, tt.client
			if issuedTo == "" {
				issuedTo = "pub"
			}
			if client == "" {
				client = "pub"
			}
			p, v := e.authParams(issuedTo, ehrScope, e.launch("hbr-anticoag"))
			code := e.code(p)
			if tt.before != nil {
				tt.before(e)
			}
			form := codeForm(code, v)
			req := e.tokenRequest(client, form)
			if tt.edit != nil {
				f, _ := url.ParseQuery(readAll(t, req))
				tt.edit(e, f, req)
				req = rebuild(req, f)
			}
			res, err := e.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]string
			json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != tt.wantStatus || body["error"] != tt.wantErr || !strings.Contains(body["error_description"], tt.wantDesc) {
				t.Fatalf("got %d %v, want %d %s containing %q", res.StatusCode, body, tt.wantStatus, tt.wantErr, tt.wantDesc)
			}
			if strings.Contains(body["error_description"], code) || strings.Contains(body["error_description"], v) {
				t.Errorf("error_description echoes a secret: %q", body["error_description"])
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", res.Header.Get("Cache-Control"))
			}
		})
	}
}

func readAll(t *testing.T, req *http.Request) string {
	t.Helper()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rebuild(req *http.Request, f url.Values) *http.Request {
	r2, _ := http.NewRequest(req.Method, req.URL.String(), strings.NewReader(f.Encode()))
	r2.Header = req.Header.Clone()
	return r2
}

func TestCodeIsSingleUse(t *testing.T) {
	e := newEnv(t)
	p, v := e.authParams("pub", ehrScope, e.launch("hbr-anticoag"))
	code := e.code(p)
	first := e.token("pub", codeForm(code, v))
	if first.status != 200 {
		t.Fatalf("first exchange: %d %v", first.status, first.body)
	}
	second := e.token("pub", codeForm(code, v))
	if second.status != 400 || second.str("error") != "invalid_grant" {
		t.Fatalf("second exchange: %d %v, want invalid_grant", second.status, second.body)
	}
	// RFC 6749 §4.1.2: the replay revokes the tokens the code issued.
	if status, _, _ := e.fhir(first.str("access_token"), "Patient/hbr-anticoag"); status != 401 {
		t.Errorf("access token after code replay: %d, want 401", status)
	}
	r := e.token("pub", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}})
	if r.str("error") != "invalid_grant" {
		t.Errorf("refresh after code replay: %d %v", r.status, r.body)
	}
	// A failed PKCE check consumes the code as well.
	p, v = e.authParams("pub", ehrScope, e.launch("hbr-anticoag"))
	code = e.code(p)
	wrong, _ := pkce()
	if r := e.token("pub", codeForm(code, wrong)); !strings.HasPrefix(r.str("error_description"), "PKCE verification failed") {
		t.Fatalf("wrong verifier: %v", r.body)
	}
	if r := e.token("pub", codeForm(code, v)); r.str("error") != "invalid_grant" {
		t.Errorf("right verifier after a failed attempt: %d %v", r.status, r.body)
	}
}

func TestAssertionReplay(t *testing.T) {
	e := newEnv(t)
	assertion := e.assertion(clientEC, jose.ES384, "ec1", "jwt-ec", nil)
	exchange := func() tokenReply {
		p, v := e.authParams("jwt-ec", ehrScope, e.launch("hbr-anticoag"))
		f := codeForm(e.code(p), v)
		f.Set("client_assertion_type", jwtBearerType)
		f.Set("client_assertion", assertion)
		return e.token("", f)
	}
	if r := exchange(); r.status != 200 {
		t.Fatalf("first use: %d %v", r.status, r.body)
	}
	if r := exchange(); r.status != 401 || r.str("error") != "invalid_client" || !strings.Contains(r.str("error_description"), "jti") {
		t.Fatalf("replay: %d %v", r.status, r.body)
	}
}

func TestRefreshRotation(t *testing.T) {
	for _, client := range []string{"pub", "conf", "jwt-ec"} {
		t.Run(client, func(t *testing.T) {
			e := newEnv(t)
			first := e.ehrLaunch("hbr-anticoag", client, ehrScope)
			refresh := func(rt string, extra url.Values) tokenReply {
				f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
				for k, v := range extra {
					f[k] = v
				}
				return e.token(client, f)
			}
			second := refresh(first.str("refresh_token"), nil)
			if second.status != 200 || second.body["expires_in"] != 3600.0 || second.str("scope") != ehrScope {
				t.Fatalf("refresh: %d %v", second.status, second.body)
			}
			if second.str("refresh_token") == "" || second.str("refresh_token") == first.str("refresh_token") ||
				second.str("access_token") == first.str("access_token") {
				t.Fatalf("refresh did not rotate: %v", second.body)
			}
			if second.str("id_token") != "" {
				t.Errorf("refresh returned an id_token")
			}
			if status, _, _ := e.fhir(second.str("access_token"), "Observation?patient=hbr-anticoag"); status != 200 {
				t.Errorf("refreshed access token: %d", status)
			}
			if r := refresh(first.str("refresh_token"), nil); r.status != 400 || r.str("error") != "invalid_grant" {
				t.Errorf("old refresh token: %d %v, want invalid_grant", r.status, r.body)
			}
			third := refresh(second.str("refresh_token"), url.Values{"scope": {"launch patient/*.rs online_access"}})
			if third.status != 200 || third.str("scope") != "launch patient/*.rs online_access" {
				t.Errorf("narrowed refresh: %d %v", third.status, third.body)
			}
			if r := refresh(third.str("refresh_token"), url.Values{"scope": {"user/*.rs"}}); r.str("error") != "invalid_scope" {
				t.Errorf("widened refresh: %d %v, want invalid_scope", r.status, r.body)
			}
		})
	}
	t.Run("another client's refresh token", func(t *testing.T) {
		e := newEnv(t)
		first := e.ehrLaunch("hbr-anticoag", "pub", ehrScope)
		r := e.token("conf", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}})
		if r.str("error") != "invalid_grant" {
			t.Errorf("got %d %v", r.status, r.body)
		}
	})
	t.Run("no online_access, no refresh token", func(t *testing.T) {
		e := newEnv(t)
		r := e.ehrLaunch("hbr-anticoag", "pub", "launch patient/*.rs")
		if r.body["refresh_token"] != nil || r.body["id_token"] != nil {
			t.Errorf("got refresh or id token without online_access/openid: %v", r.body)
		}
	})
	t.Run("refresh token expires", func(t *testing.T) {
		e := newEnv(t)
		r := e.ehrLaunch("hbr-anticoag", "pub", ehrScope)
		e.clock.Add(onlineRefresh + time.Second)
		r2 := e.token("pub", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}})
		if r2.str("error") != "invalid_grant" {
			t.Errorf("got %d %v", r2.status, r2.body)
		}
	})
}

func TestClientScopeLimit(t *testing.T) {
	e := newEnv(t)
	r := e.ehrLaunch("hbr-anticoag", "limited", "launch openid fhirUser patient/Patient.rs patient/Observation.rs online_access")
	if got := r.str("scope"); got != "launch openid fhirUser patient/Patient.rs" {
		t.Errorf("granted %q, want the request intersected with the client's scopes", got)
	}
}

// TestConcurrentRedemption: of many simultaneous exchanges of one code, or
// refreshes with one refresh token, exactly one wins.
func TestConcurrentRedemption(t *testing.T) {
	e := newEnv(t)
	p, v := e.authParams("pub", ehrScope, e.launch("hbr-anticoag"))
	code := e.code(p)
	race := func(form url.Values) (wins int) {
		const n = 8
		results := make(chan int, n)
		for range n {
			go func() {
				res, err := e.hc.Do(e.tokenRequest("pub", form))
				if err != nil {
					results <- 0
					return
				}
				res.Body.Close()
				results <- res.StatusCode
			}()
		}
		for range n {
			if <-results == 200 {
				wins++
			}
		}
		return wins
	}
	if wins := race(codeForm(code, v)); wins != 1 {
		t.Errorf("%d exchanges of one code succeeded, want 1", wins)
	}
	r := e.ehrLaunch("hbr-anticoag", "pub", ehrScope)
	if wins := race(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}}); wins != 1 {
		t.Errorf("%d refreshes with one token succeeded, want 1", wins)
	}
}

func TestIDTokenNeedsIdentityScopes(t *testing.T) {
	e := newEnv(t)
	r := e.ehrLaunch("hbr-anticoag", "pub", "launch openid patient/*.rs")
	if r.body["id_token"] != nil {
		t.Errorf("id_token issued for openid without fhirUser or profile")
	}
	r = e.ehrLaunch("hbr-anticoag", "pub", "launch openid profile patient/*.rs")
	claims := verifyIDToken(t, e, r.str("id_token"))
	if claims["profile"] != e.s.FHIRBase()+"/Practitioner/"+UserID || claims["fhirUser"] != nil {
		t.Errorf("claims %v", claims)
	}
}
