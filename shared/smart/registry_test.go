package smart_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/smart"
)

func validRegistration() smart.Registration {
	return smart.Registration{
		ID:            "oracle-prod",
		IssuerPattern: `^https://fhir-ehr\.cerner\.com/r4/[0-9a-f-]+$`,
		ClientID:      "client-1",
		ClientAuth:    smart.ClientAuth{Type: "public"},
		Scope:         "launch openid fhirUser patient/Patient.rs",
		Launch:        []string{"ehr"},
		AllowedHosts:  []string{"authorization.cerner.com"},
		IDTokenIssuer: "https://authorization.cerner.com/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d/",
	}
}

func TestParseRegistrations(t *testing.T) {
	good := `[
	 {"id": "oracle-prod", "iss_pattern": "^https://fhir-ehr\\.cerner\\.com/r4/[0-9a-f-]+$", "client_id": "c1",
	  "client_auth": {"type": "public"}, "scope": "launch openid fhirUser patient/Patient.rs", "launch": ["ehr"],
	  "allowed_hosts": ["authorization.cerner.com"], "id_token_issuer": "https://authorization.cerner.com/tenants/t/"},
	 {"id": "epic", "iss": "https://fhir.epic.example/api/FHIR/R4", "client_id": "c2",
	  "client_auth": {"type": "private_key_jwt", "key": "epic-key", "kid": "k1", "alg": "RS384"},
	  "scope": "launch patient/Patient.read", "launch": ["ehr", "standalone"], "allowed_hosts": ["fhir.epic.example"], "pkce": "force"}
	]`
	regs, err := smart.ParseRegistrations([]byte(good))
	if err != nil {
		t.Fatalf("ParseRegistrations: %v", err)
	}
	if len(regs) != 2 || regs[1].ClientAuth.Alg != "RS384" || regs[1].PKCE != "force" || regs[0].IDTokenIssuer == "" {
		t.Fatalf("ParseRegistrations = %+v", regs)
	}
	if _, err := smart.NewRegistry(regs, false); err != nil {
		t.Fatalf("NewRegistry(parsed) = %v", err)
	}

	for _, tc := range []struct {
		name, json string
		want       []string // substrings of the error
	}{
		{"unknown field", `[{"id":"a","iss":"https://x/fhir","clientid":"c"}]`, []string{"registrations: entry 0", `"a"`, "clientid"}},
		{"unknown nested field", `[{"id":"a"},{"id":"b","client_auth":{"type":"public","secrett":"x"}}]`, []string{"registrations: entry 1", `"b"`, "secrett"}},
		{"not an array", `{"id":"a"}`, []string{"JSON array"}},
		{"trailing data", `[] []`, []string{"after the JSON array"}},
		{"wrong type", `[{"id":"a","launch":"ehr"}]`, []string{"registrations: entry 0", "launch"}},
		{"empty", ``, []string{"JSON array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := smart.ParseRegistrations([]byte(tc.json))
			if err == nil {
				t.Fatal("ParseRegistrations succeeded, want error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewRegistryValidation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(r *smart.Registration)
		loopback bool
		want     string // substring of the error; "" = valid
	}{
		{"valid pattern", func(r *smart.Registration) {}, false, ""},
		{"valid exact", func(r *smart.Registration) { r.IssuerPattern, r.Issuer = "", "https://ehr.example/fhir" }, false, ""},
		{"loopback http allowed", func(r *smart.Registration) { r.IssuerPattern, r.Issuer = "", "http://127.0.0.1:8080/ehr/fhir" }, true, ""},
		{"localhost http allowed", func(r *smart.Registration) { r.IssuerPattern, r.Issuer = "", "http://localhost:8080/ehr/fhir" }, true, ""},
		{"loopback http not allowed", func(r *smart.Registration) { r.IssuerPattern, r.Issuer = "", "http://127.0.0.1:8080/ehr/fhir" }, false, "iss: must use https"},
		{"http non-loopback", func(r *smart.Registration) { r.IssuerPattern, r.Issuer = "", "http://ehr.example/fhir" }, true, "iss: must use https"},
		{"iss with query", func(r *smart.Registration) { r.IssuerPattern, r.Issuer = "", "https://ehr.example/fhir?x=1" }, false, "iss: must not have a query"},
		{"iss relative", func(r *smart.Registration) { r.IssuerPattern, r.Issuer = "", "/fhir" }, false, "iss: not an absolute URL"},
		{"iss and pattern", func(r *smart.Registration) { r.Issuer = "https://ehr.example/fhir" }, false, "only one of iss and iss_pattern"},
		{"neither iss nor pattern", func(r *smart.Registration) { r.IssuerPattern = "" }, false, "iss: set iss or iss_pattern"},
		{"pattern not anchored at start", func(r *smart.Registration) { r.IssuerPattern = `https://x/fhir$` }, false, "iss_pattern: must be anchored"},
		{"pattern not anchored at end", func(r *smart.Registration) { r.IssuerPattern = `^https://x/fhir` }, false, "iss_pattern: must be anchored"},
		{"pattern escaped dollar", func(r *smart.Registration) { r.IssuerPattern = `^https://x/fhir\$` }, false, "iss_pattern: must be anchored"},
		{"pattern does not compile", func(r *smart.Registration) { r.IssuerPattern = `^https://x/(fhir$` }, false, "iss_pattern: error parsing regexp"},
		{"pattern lets the host vary", func(r *smart.Registration) { r.IssuerPattern = `^https://fhir-ehr(-code)?\.cerner\.com/r4/[0-9a-f-]+$` }, false, "iss_pattern: must pin the scheme and host"},
		{"pattern with an unescaped dot in the host", func(r *smart.Registration) { r.IssuerPattern = `^https://fhir-ehr.cerner\.com/r4/.+$` }, false, "iss_pattern: must pin the scheme and host"},
		{"pattern with a wildcard host", func(r *smart.Registration) { r.IssuerPattern = `^https://.*/r4/.+$` }, false, "iss_pattern: must pin the scheme and host"},
		{"pattern with alternation before the path", func(r *smart.Registration) { r.IssuerPattern = `^https://a\.example|evil\.example/fhir$` }, false, "iss_pattern: must pin the scheme and host"},
		{"pattern over plain http off loopback", func(r *smart.Registration) { r.IssuerPattern = `^http://ehr\.example/fhir/.+$` }, false, "iss_pattern:"},
		{"pattern with a literal host and port", func(r *smart.Registration) { r.IssuerPattern = `^https://ehr\.example:8443/fhir/[a-z]+$` }, true, ""},
		{"no id", func(r *smart.Registration) { r.ID = "" }, false, "id: required"},
		{"id with space", func(r *smart.Registration) { r.ID = "a b" }, false, "id: required"},
		{"no client_id", func(r *smart.Registration) { r.ClientID = " " }, false, "client_id: required"},
		{"no auth type", func(r *smart.Registration) { r.ClientAuth.Type = "" }, false, "client_auth.type: required"},
		{"bad auth type", func(r *smart.Registration) { r.ClientAuth.Type = "client_secret_post" }, false, `client_auth.type: "client_secret_post"`},
		{"public with secret", func(r *smart.Registration) { r.ClientAuth.Secret = "x" }, false, "client_auth: a public client has no secret"},
		{"basic without secret", func(r *smart.Registration) { r.ClientAuth.Type = "client_secret_basic" }, false, "client_auth.secret: required"},
		{"basic valid", func(r *smart.Registration) {
			r.ClientAuth = smart.ClientAuth{Type: "client_secret_basic", Secret: "name"}
		}, false, ""},
		{"jwt without key", func(r *smart.Registration) {
			r.ClientAuth = smart.ClientAuth{Type: "private_key_jwt", KID: "k", Alg: "ES384"}
		}, false, "client_auth.key: required"},
		{"jwt without kid", func(r *smart.Registration) {
			r.ClientAuth = smart.ClientAuth{Type: "private_key_jwt", Key: "k", Alg: "ES384"}
		}, false, "client_auth.kid: required"},
		{"jwt bad alg", func(r *smart.Registration) {
			r.ClientAuth = smart.ClientAuth{Type: "private_key_jwt", Key: "k", KID: "k", Alg: "RS256"}
		}, false, "client_auth.alg: must be ES384 or RS384"},
		{"jwt valid", func(r *smart.Registration) {
			r.ClientAuth = smart.ClientAuth{Type: "private_key_jwt", Key: "k", KID: "k", Alg: "RS384"}
		}, false, ""},
		{"no scope", func(r *smart.Registration) { r.Scope = "  " }, false, "scope: required"},
		{"ehr launch without launch scope", func(r *smart.Registration) { r.Scope = "openid patient/Patient.rs" }, false, `scope: an EHR launch needs the "launch" scope`},
		{"standalone only without launch scope", func(r *smart.Registration) {
			r.Scope, r.Launch = "launch/patient patient/Patient.rs", []string{"standalone"}
		}, false, ""},
		{"no launch modes", func(r *smart.Registration) { r.Launch = nil }, false, "launch: required"},
		{"bad launch mode", func(r *smart.Registration) { r.Launch = []string{"ehr", "backend"} }, false, `launch: "backend"`},
		{"duplicate launch mode", func(r *smart.Registration) { r.Launch = []string{"ehr", "ehr"} }, false, "launch: \"ehr\" listed twice"},
		{"no allowed_hosts", func(r *smart.Registration) { r.AllowedHosts = nil }, false, "allowed_hosts: required"},
		{"allowed_hosts with scheme", func(r *smart.Registration) { r.AllowedHosts = []string{"https://authorization.cerner.com"} }, false, "allowed_hosts: \"https://"},
		{"id_token_issuer http", func(r *smart.Registration) { r.IDTokenIssuer = "http://authorization.cerner.com/" }, false, "id_token_issuer: must use https"},
		{"bad pkce", func(r *smart.Registration) { r.PKCE = "off" }, false, `pkce: must be empty or "force"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := validRegistration()
			tc.edit(&r)
			_, err := smart.NewRegistry([]smart.Registration{r}, tc.loopback)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("NewRegistry = %v, want success", err)
			case tc.want != "" && err == nil:
				t.Fatalf("NewRegistry succeeded, want error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("NewRegistry = %q, want it to contain %q", err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), "registration 0"):
				t.Fatalf("NewRegistry = %q, want it to name the entry", err)
			}
		})
	}

	t.Run("duplicate id", func(t *testing.T) {
		a, b := validRegistration(), validRegistration()
		_, err := smart.NewRegistry([]smart.Registration{a, b}, false)
		if err == nil || !strings.Contains(err.Error(), `registration 1 ("oracle-prod"): id: duplicate`) {
			t.Fatalf("NewRegistry = %v, want duplicate id error", err)
		}
	})
}

func TestMatch(t *testing.T) {
	exact := validRegistration()
	exact.ID, exact.IssuerPattern, exact.Issuer = "epic", "", "https://fhir.epic.example/api/FHIR/R4"
	pattern := validRegistration()
	alternation := validRegistration()
	alternation.ID, alternation.IssuerPattern = "alt", `^https://a\.example/fhir|https://b\.example/fhir$`
	local := validRegistration()
	local.ID, local.IssuerPattern, local.Issuer = "sandbox", "", "http://127.0.0.1:8080/ehr/fhir"
	regs := []smart.Registration{exact, pattern, alternation, local}

	r, err := smart.NewRegistry(regs, true)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := smart.NewRegistry(regs[:3], false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		reg     *smart.Registry
		iss     string
		wantID  string
		wantErr error
	}{
		{"exact", r, "https://fhir.epic.example/api/FHIR/R4", "epic", nil},
		{"exact with trailing slash", r, "https://fhir.epic.example/api/FHIR/R4/", "epic", nil},
		{"exact, other path", r, "https://fhir.epic.example/api/FHIR/R4/x", "", smart.ErrUnknownIssuer},
		{"pattern", r, "https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d", "oracle-prod", nil},
		{"pattern is anchored at the end", r, "https://fhir-ehr.cerner.com/r4/ec2458f2/../../evil", "", smart.ErrUnknownIssuer},
		{"pattern is anchored at the start", r, "https://evil.example/https://fhir-ehr.cerner.com/r4/abc", "", smart.ErrUnknownIssuer},
		{"iss with a query is malformed", r, "https://evil.example/?https://fhir-ehr.cerner.com/r4/abc", "", smart.ErrMalformedIssuer},
		{"alternation stays anchored", r, "https://a.example/fhir.evil.example/fhir", "", smart.ErrUnknownIssuer},
		{"alternation stays anchored at the start", r, "https://evil.example/https://b.example/fhir", "", smart.ErrUnknownIssuer},
		{"alternation on the pinned host", r, "https://a.example/fhir", "alt", nil},
		{"alternation reaching another host is refused", r, "https://b.example/fhir", "", smart.ErrUnknownIssuer},
		{"unknown", r, "https://evil.example/fhir", "", smart.ErrUnknownIssuer},
		{"empty", r, "", "", smart.ErrMalformedIssuer},
		{"relative", r, "fhir-ehr.cerner.com/r4/abc", "", smart.ErrMalformedIssuer},
		{"ftp", r, "ftp://fhir.epic.example/api/FHIR/R4", "", smart.ErrMalformedIssuer},
		{"user info", r, "https://user@fhir.epic.example/api/FHIR/R4", "", smart.ErrMalformedIssuer},
		{"fragment", r, "https://fhir.epic.example/api/FHIR/R4#x", "", smart.ErrMalformedIssuer},
		{"http non-loopback refused", r, "http://fhir.epic.example/api/FHIR/R4", "", smart.ErrMalformedIssuer},
		{"http loopback allowed", r, "http://127.0.0.1:8080/ehr/fhir", "sandbox", nil},
		{"http loopback refused when not allowed", strict, "http://127.0.0.1:8080/ehr/fhir", "", smart.ErrMalformedIssuer},
		{"too long", r, "https://fhir.epic.example/" + strings.Repeat("a", 3000), "", smart.ErrMalformedIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := tc.reg.Match(tc.iss)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Match(%q) = %v, %v; want %v", tc.iss, reg, err, tc.wantErr)
				}
				return
			}
			if err != nil || reg.ID != tc.wantID {
				t.Fatalf("Match(%q) = %v, %v; want %s", tc.iss, reg, err, tc.wantID)
			}
		})
	}

	if reg, ok := r.Get("epic"); !ok || reg.Issuer != exact.Issuer {
		t.Errorf("Get(epic) = %v, %v", reg, ok)
	}
	if regs := r.Registrations(); len(regs) != 4 || regs[0].ID != "epic" || !r.AllowLoopbackHTTP() || strict.AllowLoopbackHTTP() {
		t.Errorf("Registrations() = %v", regs)
	}
	if _, ok := r.Get("nope"); ok {
		t.Errorf("Get(nope) found a registration")
	}
}
