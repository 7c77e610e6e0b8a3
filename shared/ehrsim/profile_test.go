package ehrsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The apps registered with the vendor profiles in these tests.
const (
	oracleV1Scope = "launch openid fhirUser patient/Patient.read patient/Observation.read online_access"
	oracleV2Scope = "launch openid fhirUser patient/Patient.rs patient/Observation.rs online_access"
	epicScope     = "launch launch/patient openid fhirUser online_access offline_access user/Patient.read user/Observation.read user/Condition.read"
)

// profileEnv is a sandbox with apps registered at the Oracle and Epic
// profiles, and helpers that talk to one profile's server.
func profileEnv(t *testing.T) *env {
	return newEnv(t, func(c *Config) {
		c.Clients = append(c.Clients,
			Client{ID: "oracle-v1", Type: ClientPublic, Profile: ProfileOracle, SMARTVersion: "v1", Scope: oracleV1Scope, RedirectURIs: []string{appCallback}},
			Client{ID: "oracle-v2", Type: ClientPublic, Profile: ProfileOracle, SMARTVersion: "v2", Scope: oracleV2Scope, RedirectURIs: []string{appCallback}},
			Client{ID: "oracle-wild", Type: ClientPublic, Profile: ProfileOracle, SMARTVersion: "v2", Scope: "launch openid fhirUser patient/*.rs", RedirectURIs: []string{appCallback}},
			Client{ID: "epic-pub", Type: ClientPublic, Profile: ProfileEpic, Scope: epicScope, RedirectURIs: []string{appCallback}},
			Client{ID: "epic-conf", Type: ClientSecretBasic, Secret: testSecret, Profile: ProfileEpic, Scope: epicScope, RedirectURIs: []string{appCallback}},
		)
	})
}

func (e *env) endpoints(profile string) Endpoints {
	e.t.Helper()
	ep, ok := e.s.Endpoints(profile)
	if !ok {
		e.t.Fatalf("no profile %q", profile)
	}
	return ep
}

// launchIn runs /ehr/launch through profile and returns the launch token,
// checking the iss is that profile's FHIR base.
func (e *env) launchIn(profile, patient string, faults ...string) string {
	e.t.Helper()
	res := e.get(e.s.ProfileLaunchURL(profile, patient, faults...))
	if res.StatusCode != http.StatusFound {
		e.t.Fatalf("launch: status %d: %s", res.StatusCode, readBody(e.t, res))
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if iss := loc.Query().Get("iss"); iss != e.endpoints(profile).FHIRBase {
		e.t.Fatalf("iss = %q, want %s's FHIR base %q", iss, profile, e.endpoints(profile).FHIRBase)
	}
	return loc.Query().Get("launch")
}

// authorizeIn sends p to profile's authorize endpoint and returns the
// callback's query.
func (e *env) authorizeIn(profile string, p url.Values) url.Values {
	e.t.Helper()
	return e.redirectQuery(e.get(e.endpoints(profile).AuthorizeURL + "?" + p.Encode()))
}

// paramsIn is a valid authorization request to profile's server.
func (e *env) paramsIn(profile, client, scope, launch string) (url.Values, string) {
	p, v := e.authParams(client, scope, launch)
	p.Set("aud", e.endpoints(profile).FHIRBase)
	return p, v
}

// tokenIn posts form to profile's token endpoint as client ("epic-conf"
// authenticates with HTTP Basic, others are public).
func (e *env) tokenIn(profile, client string, form url.Values) tokenReply {
	e.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if client != "epic-conf" {
		f.Set("client_id", client)
	}
	req, _ := http.NewRequest(http.MethodPost, e.endpoints(profile).TokenURL, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client == "epic-conf" {
		req.SetBasicAuth("epic-conf", url.QueryEscape(testSecret))
	}
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	r := tokenReply{status: res.StatusCode, header: res.Header}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &r.body); err != nil {
		e.t.Fatalf("token response is not JSON: %s", b)
	}
	return r
}

// launchThrough runs a whole EHR launch through profile and returns the
// token response, which must succeed.
func (e *env) launchThrough(profile, client, scope, patient string, faults ...string) tokenReply {
	e.t.Helper()
	p, v := e.paramsIn(profile, client, scope, e.launchIn(profile, patient, faults...))
	q := e.authorizeIn(profile, p)
	if q.Get("error") != "" {
		e.t.Fatalf("authorize: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	r := e.tokenIn(profile, client, codeForm(q.Get("code"), v))
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %v", r.status, r.body)
	}
	return r
}

func idTokenClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := tok.Claims(&serverKey.PublicKey, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestProfileServers(t *testing.T) {
	e := profileEnv(t)
	base := e.ts.URL + "/ehr"
	want := map[string]Endpoints{
		ProfileDefault: {ProfileDefault, base + "/fhir", base + "/authorize", base + "/token", base + "/jwks", base + "/fhir"},
		ProfileOracle: {ProfileOracle, base + "/oracle/r4/" + OracleTenant,
			base + "/oracle/tenants/" + OracleTenant + "/protocols/oauth2/profiles/smart-v1/personas/provider/authorize",
			base + "/oracle/tenants/" + OracleTenant + "/protocols/oauth2/profiles/smart-v1/token",
			base + "/oracle/jwk", base + "/oracle/tenants/" + OracleTenant + "/oidc/idsps/" + OracleTenant + "/"},
		ProfileEpic: {ProfileEpic, base + "/epic/api/FHIR/R4", base + "/epic/oauth2/authorize", base + "/epic/oauth2/token",
			base + "/epic/api/epic/2019/Security/Open/PublicKeys/530005/OIDC", base + "/epic/oauth2"},
	}
	for _, pi := range Profiles {
		ep := e.endpoints(pi.Name)
		if ep != want[pi.Name] {
			t.Errorf("%s: endpoints %+v, want %+v", pi.Name, ep, want[pi.Name])
		}
		// Each server's discovery names its own endpoints and issuer.
		d := getJSON(t, e, ep.FHIRBase+"/.well-known/smart-configuration")
		if d["issuer"] != ep.IDTokenIssuer || d["authorization_endpoint"] != ep.AuthorizeURL || d["token_endpoint"] != ep.TokenURL || d["jwks_uri"] != ep.JWKSURL {
			t.Errorf("%s: discovery %v", pi.Name, d)
		}
		oidc := getJSON(t, e, strings.TrimSuffix(ep.IDTokenIssuer, "/")+"/.well-known/openid-configuration")
		if oidc["issuer"] != ep.IDTokenIssuer || oidc["jwks_uri"] != ep.JWKSURL {
			t.Errorf("%s: openid-configuration %v", pi.Name, oidc)
		}
		if keys := getJSON(t, e, ep.JWKSURL); len(asSlice(keys["keys"])) == 0 {
			t.Errorf("%s: JWKS %v", pi.Name, keys)
		}
		if status, md, _ := e.fhir("", ep.FHIRBase+"/metadata"); status != http.StatusOK || !strings.Contains(toJSON(md), ep.AuthorizeURL) || md["fhirVersion"] != "4.0.1" {
			t.Errorf("%s: metadata %d lacks its authorize URL or R4", pi.Name, status)
		}
	}
	if res := e.get(e.ts.URL + "/ehr/launch?patient=low-risk&profile=cerner"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown profile: %d", res.StatusCode)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestProfilesAreSeparateServers: each profile knows only the apps
// registered with it, its own launches, codes and tokens.
func TestProfilesAreSeparateServers(t *testing.T) {
	e := profileEnv(t)
	// A default-profile app is unknown to Oracle's authorize endpoint.
	p, _ := e.paramsIn(ProfileOracle, "pub", ehrScope, e.launchIn(ProfileOracle, "low-risk"))
	if res := e.get(e.endpoints(ProfileOracle).AuthorizeURL + "?" + p.Encode()); res.StatusCode != http.StatusBadRequest {
		t.Errorf("default app at Oracle's authorize: %d, want the error page", res.StatusCode)
	}
	// An Oracle launch token is unknown at Epic's authorize endpoint.
	p, _ = e.paramsIn(ProfileEpic, "epic-pub", epicScope, e.launchIn(ProfileOracle, "low-risk"))
	if q := e.authorizeIn(ProfileEpic, p); q.Get("error") != "invalid_request" {
		t.Errorf("Oracle launch at Epic: %v", q)
	}
	// An Oracle access token is refused by the default FHIR server and by
	// Epic's, and works at Oracle's.
	tok := e.launchThrough(ProfileOracle, "oracle-v1", oracleV1Scope, "low-risk").str("access_token")
	if status, _, _ := e.fhir(tok, "Patient/low-risk"); status != http.StatusUnauthorized {
		t.Errorf("Oracle token at the default FHIR base: %d, want 401", status)
	}
	if status, _, _ := e.fhir(tok, e.endpoints(ProfileEpic).FHIRBase+"/Patient/low-risk"); status != http.StatusUnauthorized {
		t.Errorf("Oracle token at Epic's FHIR base: %d, want 401", status)
	}
	status, b, _ := e.fhir(tok, e.endpoints(ProfileOracle).FHIRBase+"/Observation?patient=low-risk")
	if status != http.StatusOK || !strings.HasPrefix(link(b, "self"), e.endpoints(ProfileOracle).FHIRBase+"/") {
		t.Errorf("Oracle token at Oracle's FHIR base: %d, self link %q", status, link(b, "self"))
	}
}

func TestOracleIDTokenIssuer(t *testing.T) {
	e := profileEnv(t)
	ep := e.endpoints(ProfileOracle)
	r := e.launchThrough(ProfileOracle, "oracle-v1", oracleV1Scope, "low-risk")
	c := idTokenClaims(t, r.str("id_token"))
	if c["iss"] != ep.IDTokenIssuer || c["iss"] == ep.FHIRBase || !strings.Contains(ep.IDTokenIssuer, "/tenants/"+OracleTenant+"/") {
		t.Errorf("id_token iss %v, want the tenant issuer %s, not the FHIR base", c["iss"], ep.IDTokenIssuer)
	}
	if c["fhirUser"] != ep.FHIRBase+"/Practitioner/"+UserID {
		t.Errorf("fhirUser %v", c["fhirUser"])
	}
	// The OpenID configuration is under the issuer, not the FHIR base.
	res := e.get(ep.FHIRBase + "/.well-known/openid-configuration")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("openid-configuration at the FHIR base: %d, want 404", res.StatusCode)
	}
}

func TestOracleScopesFollowTheRegisteredSMARTVersion(t *testing.T) {
	e := profileEnv(t)
	mixed := "launch openid fhirUser patient/Patient.read patient/Patient.rs patient/Observation.read patient/Observation.rs online_access"
	for client, want := range map[string]string{
		"oracle-v1": "launch openid fhirUser patient/Patient.read patient/Observation.read online_access",
		"oracle-v2": "launch openid fhirUser patient/Patient.rs patient/Observation.rs online_access",
	} {
		if got := e.launchThrough(ProfileOracle, client, mixed, "low-risk").str("scope"); got != want {
			t.Errorf("%s: granted %q, want %q", client, got, want)
		}
	}
	// A v1 app asking only for v2 resource scopes gets none, silently:
	// the launch succeeds and FHIR reads are refused.
	r := e.launchThrough(ProfileOracle, "oracle-v1", oracleV2Scope, "low-risk")
	if got := r.str("scope"); got != "launch openid fhirUser online_access" {
		t.Errorf("v1 app asking v2: granted %q", got)
	}
	if status, _, _ := e.fhir(r.str("access_token"), e.endpoints(ProfileOracle).FHIRBase+"/Observation?patient=low-risk"); status != http.StatusForbidden {
		t.Errorf("read without a granted scope: %d, want 403", status)
	}
}

func TestOracleDropsUnregisteredAndWildcardScopes(t *testing.T) {
	e := profileEnv(t)
	req := "launch openid fhirUser patient/Patient.rs patient/Observation.rs patient/Condition.rs patient/*.rs online_access"
	r := e.launchThrough(ProfileOracle, "oracle-v2", req, "low-risk")
	if got := r.str("scope"); got != "launch openid fhirUser patient/Patient.rs patient/Observation.rs online_access" {
		t.Errorf("granted %q: Condition and the wildcard (not registered) should be dropped, without an error", got)
	}
	// A wildcard is dropped even for an app registered with it.
	r = e.launchThrough(ProfileOracle, "oracle-wild", "launch openid fhirUser patient/*.rs", "low-risk")
	if got := r.str("scope"); got != "launch openid fhirUser" {
		t.Errorf("granted %q: wildcard scopes are not supported", got)
	}
	d := getJSON(t, e, e.endpoints(ProfileOracle).FHIRBase+"/.well-known/smart-configuration")
	for _, s := range asSlice(d["scopes_supported"]) {
		if strings.Contains(s.(string), "*") {
			t.Errorf("Oracle advertises the wildcard scope %v", s)
		}
	}
}

func TestOracleEHRLaunchNeedsLaunchScope(t *testing.T) {
	e := profileEnv(t)
	p, _ := e.paramsIn(ProfileOracle, "oracle-v1", "openid fhirUser patient/Patient.read", e.launchIn(ProfileOracle, "low-risk"))
	if q := e.authorizeIn(ProfileOracle, p); q.Get("error") != "invalid_scope" || q.Get("code") != "" {
		t.Errorf("EHR launch without the launch scope: %v", q)
	}
}

func TestOracleAudMustEqualTheFHIRBase(t *testing.T) {
	e := profileEnv(t)
	base := e.endpoints(ProfileOracle).FHIRBase
	for _, aud := range []string{"", base + "/", strings.ToUpper(base[:8]) + base[8:], e.s.FHIRBase()} {
		p, _ := e.paramsIn(ProfileOracle, "oracle-v1", oracleV1Scope, e.launchIn(ProfileOracle, "low-risk"))
		p.Set("aud", aud)
		if aud == "" {
			p.Del("aud")
		}
		if q := e.authorizeIn(ProfileOracle, p); q.Get("error") != "invalid_request" {
			t.Errorf("aud %q: %v, want invalid_request", aud, q)
		}
	}
}

func TestOracleTokenLifetimeAndRefresh(t *testing.T) {
	e := profileEnv(t)
	first := e.launchThrough(ProfileOracle, "oracle-v1", oracleV1Scope, "low-risk")
	if first.body["expires_in"] != 570.0 || first.str("refresh_token") == "" {
		t.Fatalf("token: %v", first.body)
	}
	for i := range 2 {
		// The same refresh token works again: refreshes return no new one.
		r := e.tokenIn(ProfileOracle, "oracle-v1", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}})
		if r.status != http.StatusOK || r.body["refresh_token"] != nil || r.str("access_token") == "" {
			t.Errorf("refresh %d: %d %v", i, r.status, r.body)
		}
	}
}

func TestEpicAud(t *testing.T) {
	e := profileEnv(t)
	// Required when the scope asks for launch context.
	p, _ := e.paramsIn(ProfileEpic, "epic-pub", epicScope, e.launchIn(ProfileEpic, "low-risk"))
	p.Del("aud")
	if q := e.authorizeIn(ProfileEpic, p); q.Get("error") != "invalid_request" {
		t.Errorf("EHR launch without aud: %v", q)
	}
	// Not required without launch context (a standalone openid sign-in).
	p, _ = e.paramsIn(ProfileEpic, "epic-pub", "openid fhirUser", "")
	p.Del("aud")
	if q := e.authorizeIn(ProfileEpic, p); q.Get("code") == "" {
		t.Errorf("sign-in without launch context and aud: %v", q)
	}
	// When given, it must be the FHIR base.
	p, _ = e.paramsIn(ProfileEpic, "epic-pub", epicScope, e.launchIn(ProfileEpic, "low-risk"))
	p.Set("aud", e.s.FHIRBase())
	if q := e.authorizeIn(ProfileEpic, p); q.Get("error") != "invalid_request" {
		t.Errorf("another server's aud: %v", q)
	}
}

func TestEpicScopeConventions(t *testing.T) {
	e := profileEnv(t)
	// The launch scope is required in an EHR launch.
	p, _ := e.paramsIn(ProfileEpic, "epic-pub", "openid fhirUser patient/Patient.rs", e.launchIn(ProfileEpic, "low-risk"))
	if q := e.authorizeIn(ProfileEpic, p); q.Get("error") != "invalid_scope" {
		t.Errorf("EHR launch without launch: %v", q)
	}
	// The grant is the app's registered APIs, whatever was asked for.
	r := e.launchThrough(ProfileEpic, "epic-pub", "launch openid fhirUser patient/Observation.rs online_access", "low-risk")
	got := strings.Fields(r.str("scope"))
	for _, w := range []string{"launch", "openid", "fhirUser", "online_access", "user/Patient.read", "user/Observation.read", "user/Condition.read"} {
		if !slices.Contains(got, w) {
			t.Errorf("granted %v lacks %s", got, w)
		}
	}
	if slices.Contains(got, "patient/Observation.rs") || slices.Contains(got, "offline_access") {
		t.Errorf("granted %v: the request's own resource scope, or an unrequested refresh scope", got)
	}
	if status, _, _ := e.fhir(r.str("access_token"), e.endpoints(ProfileEpic).FHIRBase+"/Condition?patient=low-risk"); status != http.StatusOK {
		t.Errorf("Condition with the registered user/Condition.read: %d", status)
	}
}

func TestEpicPatientIdentifiers(t *testing.T) {
	e := profileEnv(t)
	r := e.launchThrough(ProfileEpic, "epic-pub", epicScope, "hbr-anticoag")
	dstu2 := r.str("__epic.dstu2.patient")
	if r.str("patient") != "hbr-anticoag" || dstu2 == "" || dstu2 == "hbr-anticoag" {
		t.Errorf("patient %q, __epic.dstu2.patient %q: want the FHIR ID and a different DSTU2 ID", r.str("patient"), dstu2)
	}
	if r.str("token_type") != "bearer" {
		t.Errorf("token_type %q, want bearer", r.str("token_type"))
	}
	if b, ok := r.body["need_patient_banner"].(string); !ok || b != "true" {
		t.Errorf("need_patient_banner %#v, want the string \"true\"", r.body["need_patient_banner"])
	}
	// The DSTU2 ID is no R4 resource id.
	if status, _, _ := e.fhir(r.str("access_token"), e.endpoints(ProfileEpic).FHIRBase+"/Patient/"+dstu2); status != http.StatusNotFound {
		t.Errorf("R4 read of the DSTU2 id: %d, want 404", status)
	}
	c := idTokenClaims(t, r.str("id_token"))
	ep := e.endpoints(ProfileEpic)
	if c["iss"] != ep.IDTokenIssuer || c["iss"] == ep.FHIRBase {
		t.Errorf("id_token iss %v, want %s", c["iss"], ep.IDTokenIssuer)
	}
	if c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Errorf("id_token lives %v s, want 300", c["exp"].(float64)-c["iat"].(float64))
	}
}

func TestEpicRefreshTokenPolicy(t *testing.T) {
	e := profileEnv(t)
	if r := e.launchThrough(ProfileEpic, "epic-pub", epicScope, "low-risk"); r.body["refresh_token"] != nil {
		t.Errorf("a public client got a refresh token: %v", r.body)
	}
	r := e.launchThrough(ProfileEpic, "epic-conf", epicScope, "low-risk")
	rt := r.str("refresh_token")
	if rt == "" {
		t.Fatalf("a confidential client with online_access got no refresh token: %v", r.body)
	}
	for i := range 2 {
		r := e.tokenIn(ProfileEpic, "epic-conf", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if r.status != http.StatusOK || r.body["refresh_token"] != nil {
			t.Errorf("refresh %d: %d %v", i, r.status, r.body)
		}
	}
}

func TestEpicProviderStandaloneHasNoPatient(t *testing.T) {
	e := profileEnv(t)
	p, v := e.paramsIn(ProfileEpic, "epic-pub", "launch/patient openid fhirUser user/Patient.read", "")
	q := e.authorizeIn(ProfileEpic, p)
	r := e.tokenIn(ProfileEpic, "epic-pub", codeForm(q.Get("code"), v))
	if r.status != http.StatusOK || r.body["patient"] != nil {
		t.Errorf("standalone: %d %v, want a token without patient", r.status, r.body)
	}
}

func TestPKCEMismatchFault(t *testing.T) {
	for _, profile := range []string{ProfileDefault, ProfileOracle, ProfileEpic} {
		t.Run(profile, func(t *testing.T) {
			e := profileEnv(t)
			client, scope := map[string][2]string{
				ProfileDefault: {"pub", ehrScope}, ProfileOracle: {"oracle-v1", oracleV1Scope}, ProfileEpic: {"epic-pub", epicScope},
			}[profile][0], map[string]string{ProfileDefault: ehrScope, ProfileOracle: oracleV1Scope, ProfileEpic: epicScope}[profile]
			p, v := e.paramsIn(profile, client, scope, e.launchIn(profile, "low-risk", "pkce-mismatch"))
			q := e.authorizeIn(profile, p)
			// The app's own verifier, whose challenge it sent: refused.
			r := e.tokenIn(profile, client, codeForm(q.Get("code"), v))
			if r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" || !strings.Contains(r.str("error_description"), "code_verifier") {
				t.Errorf("exchange: %d %v, want invalid_grant naming the code_verifier", r.status, r.body)
			}
		})
	}
}

func TestEHRPageListsProfiles(t *testing.T) {
	e := profileEnv(t)
	home := readBody(t, e.get(e.ts.URL+"/ehr/"))
	for _, want := range []string{`name="profile"`, "pkce-mismatch", e.endpoints(ProfileOracle).FHIRBase, e.endpoints(ProfileEpic).IDTokenIssuer,
		"Oracle Health (Cerner Millennium)", "__epic.dstu2.patient", "oracle-v1</code> (public, profile oracle, SMART v1)"} {
		if !strings.Contains(home, want) {
			t.Errorf("EHR page lacks %q", want)
		}
	}
}
