package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/readiness"
	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// checkReport runs the readiness check of iss with the running local
// server's registrations.
func (e *env) checkReport(t testing.TB, iss string) *readiness.Report {
	t.Helper()
	d, err := e.Env.Doctor()
	if err != nil {
		t.Fatal(err)
	}
	return d.Check(context.Background(), iss)
}

func failing(r *readiness.Report) []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == readiness.Fail {
			out = append(out, c.ID)
		}
	}
	return out
}

func dump(r *readiness.Report) string {
	var b bytes.Buffer
	r.WriteText(&b)
	return b.String()
}

// TestDoctorSandboxProfiles: the sandbox's own registrations, one per
// profile, pass every check.
func TestDoctorSandboxProfiles(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, c := range []struct {
		profile, registration, version string
		warn                           []string // the checks that warn; every other one passes
	}{
		{ehrsim.ProfileDefault, "sandbox", "v2", nil},
		{ehrsim.ProfileOracle, "sandbox-oracle", "v1", nil},
		// A public client gets no refresh token from Epic: the sandbox's
		// Epic registration is public, as a first registration often is.
		{ehrsim.ProfileEpic, "sandbox-epic", "v2", []string{"refresh"}},
	} {
		ep, _ := e.Sandbox.Endpoints(c.profile)
		r := e.checkReport(t, ep.FHIRBase)
		var warned []string
		for _, ch := range r.Checks {
			if ch.Status == readiness.Warn {
				warned = append(warned, ch.ID)
			}
		}
		if r.Registration != c.registration || r.Summary[readiness.Pass]+len(c.warn) != len(r.Checks) || len(r.Checks) != 17 || !slices.Equal(warned, c.warn) {
			t.Errorf("%s: registration %q, %v, warnings %v (want %v):\n%s", c.profile, r.Registration, r.Summary, warned, c.warn, dump(r))
		}
		if r.Console == nil || r.Console.SMARTVersion != c.version || r.Console.LaunchURI != e.URL+"/launch" {
			t.Errorf("%s: console %+v", c.profile, r.Console)
		}
		if id, _ := r.Check("id-token"); !strings.Contains(id.Detail, ep.IDTokenIssuer) {
			t.Errorf("%s: id-token does not name the issuer %s: %s", c.profile, ep.IDTokenIssuer, id.Detail)
		}
	}
	// The Epic warning follows the client type: a confidential
	// registration gets refresh tokens from Epic.
	ep, _ := e.Sandbox.Endpoints(ehrsim.ProfileEpic)
	r := e.checkReport(t, ep.FHIRBase)
	if c, _ := r.Check("refresh"); !strings.Contains(c.Detail, "Epic issues refresh tokens only to") || !strings.Contains(c.Fix, "private_key_jwt") {
		t.Errorf("Epic, public client: refresh %+v", c)
	}
	registrationOf(e.Env, "sandbox-epic").ClientAuth = smart.ClientAuth{Type: smart.AuthPrivateKeyJWT, Key: "epic-key", KID: "k1", Alg: "RS384"}
	r = e.checkReport(t, ep.FHIRBase)
	if c, _ := r.Check("refresh"); c.Status != readiness.Pass || !strings.Contains(c.Detail, "confidential client (private_key_jwt)") {
		t.Errorf("Epic, confidential client: refresh %+v", c)
	}
}

// TestDoctorFindsEachBreakage breaks a registration (or the EHR's side of
// it) one way at a time; each breakage fails exactly one check, whose fix
// names what to change.
func TestDoctorFindsEachBreakage(t *testing.T) {
	const secret = "the-registered-client-secret-0123456789"
	tests := []struct {
		name    string
		profile string
		vars    map[string]string
		tune    func(*env)
		sandbox func(*ehrsim.Config)
		check   string
		fix     []string // what the fix must say
	}{
		{name: "wrong scope syntax", profile: ehrsim.ProfileDefault,
			tune: func(e *env) {
				r := registrationOf(e.Env, "sandbox")
				r.Scope = strings.Replace(r.Scope, "patient/Observation.rs", "patient/Observation.sr", 1)
			},
			check: "scope-syntax", fix: []string{`"scope" of registration "sandbox"`, "patient/<Type>.rs"}},
		{name: "missing Redirect URI", profile: ehrsim.ProfileOracle,
			sandbox: func(c *ehrsim.Config) {
				for i := range c.Clients {
					if c.Clients[i].Profile == ehrsim.ProfileOracle {
						c.Clients[i].RedirectURIs = []string{"https://app.example/callback"}
					}
				}
			},
			check: "redirect-uri", fix: []string{"/callback/sandbox-oracle", "character for character"}},
		{name: "wrong id_token issuer", profile: ehrsim.ProfileDefault,
			tune:  func(e *env) { registrationOf(e.Env, "sandbox").IDTokenIssuer = "https://wrong.example/issuer" },
			check: "id-token", fix: []string{`"id_token_issuer" of registration "sandbox"`, "/ehr/fhir"}},
		{name: "the FHIR base as Oracle's id_token issuer", profile: ehrsim.ProfileOracle,
			tune: func(e *env) {
				r := registrationOf(e.Env, "sandbox-oracle")
				r.IDTokenIssuer = r.Issuer
			},
			check: "id-token", fix: []string{`"id_token_issuer" of registration "sandbox-oracle"`, "/tenants/" + ehrsim.OracleTenant + "/oidc/idsps/"}},
		{name: "public registration, confidential client", profile: ehrsim.ProfileEpic,
			sandbox: func(c *ehrsim.Config) {
				for i := range c.Clients {
					if c.Clients[i].Profile == ehrsim.ProfileEpic {
						c.Clients[i].Type, c.Clients[i].Secret = ehrsim.ClientSecretBasic, secret
					}
				}
			},
			check: "client-auth", fix: []string{`"client_auth" of registration "sandbox-epic"`, "client_secret_basic"}},
		{name: "confidential registration, public client", profile: ehrsim.ProfileDefault,
			vars: map[string]string{config.SecretVariable("sandbox-secret"): secret},
			tune: func(e *env) {
				registrationOf(e.Env, "sandbox").ClientAuth = smart.ClientAuth{Type: smart.AuthClientSecretBasic, Secret: "sandbox-secret"}
			},
			check: "client-auth", fix: []string{`"sandbox-secret"`, `{"type": "public"}`}},
		{name: "disallowed host", profile: ehrsim.ProfileDefault,
			tune:  func(e *env) { registrationOf(e.Env, "sandbox").AllowedHosts = []string{"ehr.example.org"} },
			check: "hosts", fix: []string{`"allowed_hosts" of registration "sandbox"`, `"127.0.0.1"`}},
		{name: "unknown iss", profile: "unknown",
			check: "registration", fix: []string{`Add a registration with "iss"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tune *Tune
			if tt.sandbox != nil {
				tune = &Tune{Sandbox: tt.sandbox}
			}
			e := start(t, memoryStore, tt.vars, tune, nil)
			if tt.tune != nil {
				tt.tune(e)
			}
			iss := e.URL + "/ehr/nowhere/fhir"
			if ep, ok := e.Sandbox.Endpoints(tt.profile); ok {
				iss = ep.FHIRBase
			}
			r := e.checkReport(t, iss)
			t.Logf("report:\n%s", dump(r))
			if got := failing(r); !slices.Equal(got, []string{tt.check}) {
				t.Fatalf("failing checks %v, want exactly [%s]:\n%s", got, tt.check, dump(r))
			}
			c, _ := r.Check(tt.check)
			for _, w := range tt.fix {
				if !strings.Contains(c.Fix, w) {
					t.Errorf("fix %q lacks %q", c.Fix, w)
				}
			}
			if strings.Contains(dump(r), secret) {
				t.Error("the report shows the client secret")
			}
		})
	}
}

// TestDoctorScopeVersionNotAdvertised: v2 scopes for an EHR that
// advertises only SMART v1 scopes fail scope-syntax, and the fix gives the
// v1 scope string.
func TestDoctorScopeVersionNotAdvertised(t *testing.T) {
	ehr := fakeSMART(t, []string{"launch-ehr", "client-public", "context-ehr-patient", "sso-openid-connect", "permission-v1"})
	e := start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) {
		en.Registrations = append(en.Registrations, smart.Registration{ID: "v1-only", Issuer: ehr + "/fhir", ClientID: "c",
			ClientAuth: smart.ClientAuth{Type: smart.AuthPublic}, Scope: SandboxScope, Launch: []string{"ehr"},
			AllowedHosts: []string{"127.0.0.1"}, RedirectPerRegistration: true})
	}}, nil)
	r := e.checkReport(t, ehr+"/fhir")
	c, _ := r.Check("scope-syntax")
	if c.Status != readiness.Fail || !strings.Contains(c.Fix, "patient/Observation.read") || strings.Contains(c.Fix, "Observation.rs") {
		t.Errorf("scope-syntax %+v", c)
	}
}

// fakeSMART serves a SMART configuration with these capabilities and
// nothing else, on loopback; it returns its base URL.
func fakeSMART(t *testing.T, caps []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fhir/.well-known/smart-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"code_challenge_methods_supported": []string{"S256"}, "capabilities": caps,
		})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return base
}

// TestDoctorCommand runs the subcommand as the README shows it: against
// the sandbox it serves itself, by iss and by registration id, as text and
// JSON; exit codes 0, 1 and 2.
func TestDoctorCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	base := "http://127.0.0.1:" + port
	vars := map[string]string{config.EnvPort: port}
	getenv := func(k string) string { return vars[k] }
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := doctor(context.Background(), args, getenv, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run(base + "/ehr/fhir")
	if code != 0 || !strings.Contains(out, "Registration: sandbox\n") || !strings.Contains(out, "Summary: 17 pass, 0 warn, 0 fail, 0 skip") {
		t.Errorf("text: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run("-json", "sandbox-epic")
	var rep readiness.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Registration != "sandbox-epic" || rep.Console.RedirectURI != base+"/callback/sandbox-epic" {
		t.Errorf("json: exit %d, %v: %.500s", code, err, out)
	}
	// A deployer's registration of the same iss with a wrong host: exit 1.
	regs, _ := json.Marshal([]map[string]any{{"id": "mine", "iss": base + "/ehr/fhir", "client_id": SandboxClientID,
		"client_auth": map[string]string{"type": "public"}, "scope": SandboxScope, "launch": []string{"ehr"}, "allowed_hosts": []string{"ehr.example.org"}}})
	vars[config.EnvEHRs] = string(regs)
	code, out, _ = run(base + "/ehr/fhir")
	if code != 1 || !strings.Contains(out, "Registration: mine") || !strings.Contains(out, "FAIL  hosts") {
		t.Errorf("broken registration: exit %d\n%s", code, out)
	}
	delete(vars, config.EnvEHRs)
	for _, args := range [][]string{nil, {"a", "b"}, {"no-such-registration"}, {"-bogus", "x"}} {
		if code, _, errOut := run(args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestAdminDoctorPath: calculate's /admin/doctor answers the report only to
// the admin token, and does not exist without one.
func TestAdminDoctorPath(t *testing.T) {
	const token = "admin-token-for-the-readiness-path-0123456789"
	e := start(t, memoryStore, map[string]string{config.EnvAdminToken: token}, nil, nil)
	ep, _ := e.Sandbox.Endpoints(ehrsim.ProfileOracle)
	path := e.URL + "/calculate/admin/doctor?iss=" + url.QueryEscape(ep.FHIRBase)
	get := func(u, auth string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := get(path, "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || strings.Contains(body, "checks") {
		t.Errorf("no token: %d %s", resp.StatusCode, body)
	}
	for _, wrong := range []string{"Bearer " + token[:len(token)-1], "Bearer " + token + "x", "Basic " + token, "Bearer wrong"} {
		if resp, body := get(path, wrong); resp.StatusCode == http.StatusOK || strings.Contains(body, "checks") {
			t.Errorf("%.12s…: %d %s", wrong, resp.StatusCode, body)
		}
	}
	if resp, _ := get(path, "Bearer wrong"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong token: %d, want 403", resp.StatusCode)
	}
	resp, body = get(path, "Bearer "+token)
	var rep readiness.Report
	if err := json.Unmarshal([]byte(body), &rep); resp.StatusCode != http.StatusOK || err != nil || rep.Registration != "sandbox-oracle" || rep.Failed() ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("with the token: %d %v %.300s", resp.StatusCode, err, body)
	}
	resp, body = get(path+"&format=text", "Bearer "+token)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "Registration: sandbox-oracle") {
		t.Errorf("text: %s %.200s", resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get(e.URL+"/calculate/admin/doctor", "Bearer "+token); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no iss: %d", resp.StatusCode)
	}
	logs := e.logs.String()
	if strings.Contains(logs, token) || strings.Contains(logs, token[:20]) {
		t.Error("the admin token reached the log")
	}
	if !strings.Contains(logs, `"message":"readiness check"`) || !strings.Contains(logs, `"cause":"wrong_admin_token"`) {
		t.Errorf("the log lacks the check or the refusals:\n%s", logs)
	}

	// Without a token configured the path does not exist.
	e = start(t, memoryStore, nil, nil, nil)
	if resp, _ := get(e.URL+"/calculate/admin/doctor?iss="+url.QueryEscape(ep.FHIRBase), "Bearer "+token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no token configured: %d, want 404", resp.StatusCode)
	}
}
