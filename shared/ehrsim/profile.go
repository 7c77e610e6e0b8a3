package ehrsim

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Profile names: how a launch's EHR behaves. A launch picks one with
// /launch?patient=ID&profile=NAME; each profile is its own SMART server
// (FHIR base, authorize and token endpoints, id_token issuer) on the same
// patient data, so an app registers with each as it would with a real EHR.
const (
	// ProfileDefault is a strict SMART App Launch 2.x server: the sandbox
	// as it has always behaved.
	ProfileDefault = "default"
	// ProfileOracle behaves like Oracle Health (Cerner Millennium); see
	// oracleProfile.
	ProfileOracle = "oracle"
	// ProfileEpic behaves like Epic; see epicProfile.
	ProfileEpic = "epic"
)

// OracleTenant is the tenant id in the Oracle profile's URLs (Oracle
// Health puts the tenant in the FHIR base and in the authorization
// server's paths).
const OracleTenant = "5c1d0e3a-7b2f-4c8e-9a61-2f0d3e4b5a6c"

// ProfileInfo documents one profile for the EHR page and for tests.
type ProfileInfo struct {
	Name   string
	Title  string
	Quirks []string
}

// Profiles lists the profiles, the default first.
var Profiles = []ProfileInfo{
	{ProfileDefault, "Strict SMART App Launch 2.x server", []string{
		"id_token issuer is the FHIR base; aud must equal the FHIR base exactly",
		"unknown or unregistered scopes are dropped; none grantable is invalid_scope",
		"refresh tokens rotate on use",
	}},
	{ProfileOracle, "Oracle Health (Cerner Millennium)", []string{
		"FHIR base /oracle/r4/<tenant>; authorization server under /oracle/tenants/<tenant>/",
		"id_token issuer /oracle/tenants/<tenant>/oidc/idsps/<tenant>/, not the FHIR base",
		"an app registered as SMART v1 is granted only v1 scopes (patient/Observation.read); v2 scopes are dropped silently, and so are v1 scopes for a v2 app",
		"scopes the app was not registered for, and wildcard scopes, are dropped silently, never invalid_scope",
		"an EHR launch must request the launch scope; aud must equal the FHIR base (the iss) exactly",
		"access tokens last 570 s; a refresh returns no new refresh token (the original stays valid)",
	}},
	{ProfileEpic, "Epic", []string{
		"FHIR base /epic/api/FHIR/R4; id_token issuer /epic/oauth2, not the FHIR base; id_tokens last 5 minutes",
		"aud is required when the scope asks for launch context (launch, launch/patient) and must be the FHIR base",
		"an EHR launch must request the launch scope; the granted scope is the app's registered list (user/Observation.read …), whatever was requested",
		"the token response carries patient (FHIR ID) and __epic.dstu2.patient (DSTU2 ID), need_patient_banner as a string, token_type bearer",
		"no refresh token for public (non-confidential) clients, even with online_access; refreshes return no new refresh token",
		"a provider standalone launch returns no patient",
	}},
}

// profile is the behaviour of one profile's server. The zero value of each
// field is the default profile's strict behaviour.
type profile struct {
	name string
	// Paths under the sandbox's BaseURL.
	fhirPath, authorizePath, tokenPath, jwksPath, issuerPath string

	// audOnlyWithContext requires aud only when the scope asks for launch
	// context (Epic); otherwise aud is always required.
	audOnlyWithContext bool
	// versioned grants only scopes of the client's SMARTVersion syntax.
	versioned bool
	// noWildcards drops patient/*.rs and similar.
	noWildcards bool
	// grantRegistered grants the client's registered resource scopes
	// whatever was requested.
	grantRegistered bool
	// accessLifetime overrides Config.AccessTokenLifetime.
	accessLifetime time.Duration
	// keepRefresh: a refresh returns no new refresh token and the
	// original stays valid.
	keepRefresh bool
	// refreshConfidentialOnly issues refresh tokens only to confidential
	// clients.
	refreshConfidentialOnly bool
	// idTokenLifetime overrides the default hour.
	idTokenLifetime time.Duration
	// epicToken: token_type "bearer", need_patient_banner as a string and
	// __epic.dstu2.patient beside patient.
	epicToken bool
	// noStandalonePatient: a standalone launch gets no patient context.
	noStandalonePatient bool
	// authMethods and capabilities override the discovery document's.
	authMethods  []string
	capabilities []string
}

// defaultProfile is the strict SMART App Launch 2.x server.
var defaultProfile = &profile{
	name:          ProfileDefault,
	fhirPath:      "/fhir",
	authorizePath: "/authorize",
	tokenPath:     "/token",
	jwksPath:      "/jwks",
	issuerPath:    "/fhir",
}

// oracleProfile reproduces Oracle Health's published behaviour. Sources,
// read on the vendor's own pages:
//
//   - id_token issuer: https://fhir.cerner.com/authorization/openid-connect/
//     ("OpenID Connect", the example id_token's iss is
//     https://authorization.cerner.com/tenants/<tenant>/oidc/idsps/<tenant>/
//     and its OpenID configuration lives under that issuer, with jwks_uri
//     https://authorization.cerner.com/jwk). The FHIR base is
//     https://fhir-ehr.cerner.com/r4/<tenant>, so the issuer is not iss.
//   - launch scope and aud in an EHR launch:
//     https://fhir.cerner.com/authorization/authorization-specification/
//     ("EHR Launch Flow", Authorization Request: the app SHALL send aud,
//     "the value of the issuer parameter received ... from the EHR launch
//     request", and "MUST include the scope of launch"). The sandbox
//     compares aud with the FHIR base byte for byte.
//   - scopes: https://fhir.cerner.com/authorization/ ("Supported Scopes":
//     wildcard scopes "are currently not supported"; the token response's
//     scope "may differ from the list of scopes included in the initial
//     request. In some circumstances, the server may redact scopes"), and
//     "Duration Scopes": access tokens are "valid for 570 seconds"; "The
//     token response from a refresh will not contain a new refresh token.
//     The original refresh token from the initial grant response must be
//     retained."
//   - SMART version: Oracle's developer portal guide
//     (https://docs.oracle.com/en/industries/health/health-ai-application-suite/aidpu/index.html)
//     has the developer select the SMART version at registration, which
//     "cannot be changed after the application is registered".
//
// Not confirmed on a vendor page, implemented as the issue states it:
// that an app registered as SMART v1 gets only v1 scopes and v2 scopes are
// dropped silently (Oracle's developer forum has reports of v2 scopes
// missing from the grant, but no documentation), and that scopes the app
// was not registered for are dropped silently rather than refused (the
// pages above say only that the server "may redact scopes").
var oracleProfile = &profile{
	name:           ProfileOracle,
	fhirPath:       "/oracle/r4/" + OracleTenant,
	authorizePath:  "/oracle/tenants/" + OracleTenant + "/protocols/oauth2/profiles/smart-v1/personas/provider/authorize",
	tokenPath:      "/oracle/tenants/" + OracleTenant + "/protocols/oauth2/profiles/smart-v1/token",
	jwksPath:       "/oracle/jwk",
	issuerPath:     "/oracle/tenants/" + OracleTenant + "/oidc/idsps/" + OracleTenant + "/",
	versioned:      true,
	noWildcards:    true,
	accessLifetime: 570 * time.Second,
	keepRefresh:    true,
	authMethods:    []string{"client_secret_basic", "private_key_jwt"},
}

// epicProfile reproduces Epic's published behaviour. Sources, read on the
// vendor's own pages:
//
//   - https://fhir.epic.com/Documentation?docId=oauth2 ("OAuth 2.0
//     Specification"): in an EHR launch "a scope of launch is required";
//     aud: organisations may require it "if a launch context is included in
//     the scope parameter" and from May 2023 it "will be required", with
//     "the FHIR base URL of the resource server ... typically the FHIR
//     server returned by the iss"; the token response carries patient (the
//     FHIR ID) and epic.dstu2.patient ("the DSTU2 FHIR ID for the
//     patient"), token_type "always includes the value bearer"; the
//     id_token's iss is "the OAuth 2.0 server endpoint, e.g.
//     https://<Interconnect Server URL>/oauth2" and its exp "the current
//     time plus 5 minutes"; "The patient's FHIR ID is not returned for
//     provider-facing standalone launch workflows"; refresh tokens are for
//     apps that "can securely store credentials" (the non-confidential
//     token responses carry none, and "Refresh tokens are not typically
//     needed for embedded (SMART on FHIR) launches"), and the refresh
//     responses shown carry no new refresh token.
//   - https://fhir.epic.com/Documentation?docId=oauth2tutorial ("OAuth 2.0
//     Tutorial", Retrieving Launch Context): a sandbox token response whose
//     scope lists the app's registered APIs as user/<Type>.read (with
//     launch, launch/patient, openid, fhirUser …), need_patient_banner
//     "false" as a string, and __epic.dstu2.patient beside patient; "the
//     iss for an OIDC flow is not the same as the iss from the first step
//     of an EHR launch".
//   - https://fhir.epic.com/interconnect-fhir-oauth/oauth2/.well-known/openid-configuration
//     (Epic's own OpenID configuration: issuer .../oauth2, a jwks_uri under
//     /api/epic/2019/Security/Open/PublicKeys/).
//
// The sandbox sends __epic.dstu2.patient under that name, as the tutorial's
// example shows (the specification page lists it as epic.dstu2.patient).
var epicProfile = &profile{
	name:                    ProfileEpic,
	fhirPath:                "/epic/api/FHIR/R4",
	authorizePath:           "/epic/oauth2/authorize",
	tokenPath:               "/epic/oauth2/token",
	jwksPath:                "/epic/api/epic/2019/Security/Open/PublicKeys/530005/OIDC",
	issuerPath:              "/epic/oauth2",
	audOnlyWithContext:      true,
	grantRegistered:         true,
	keepRefresh:             true,
	refreshConfidentialOnly: true,
	idTokenLifetime:         5 * time.Minute,
	epicToken:               true,
	noStandalonePatient:     true,
	authMethods:             []string{"client_secret_basic", "private_key_jwt"},
}

var allProfiles = []*profile{defaultProfile, oracleProfile, epicProfile}

// profileNamed returns the profile called name ("" is the default).
func profileNamed(name string) (*profile, error) {
	if name == "" {
		return defaultProfile, nil
	}
	for _, p := range allProfiles {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("unknown profile %q (known: %s, %s, %s)", name, ProfileDefault, ProfileOracle, ProfileEpic)
}

// site is one profile served under one sandbox: its absolute URLs.
type site struct {
	*profile
	fhirBase, authorizeURL, tokenURL, jwksURL, issuer string
}

func newSite(p *profile, baseURL string) *site {
	return &site{profile: p,
		fhirBase:     baseURL + p.fhirPath,
		authorizeURL: baseURL + p.authorizePath,
		tokenURL:     baseURL + p.tokenPath,
		jwksURL:      baseURL + p.jwksPath,
		issuer:       baseURL + p.issuerPath,
	}
}

// Endpoints are the URLs of one profile's server, what an app registration
// for it needs.
type Endpoints struct {
	Profile       string
	FHIRBase      string // the iss of its EHR launches
	AuthorizeURL  string
	TokenURL      string
	JWKSURL       string
	IDTokenIssuer string // the iss of its id_tokens
}

func (st *site) endpoints() Endpoints {
	return Endpoints{Profile: st.name, FHIRBase: st.fhirBase, AuthorizeURL: st.authorizeURL,
		TokenURL: st.tokenURL, JWKSURL: st.jwksURL, IDTokenIssuer: st.issuer}
}

// audRequired reports whether an authorization request with these scopes
// must carry aud.
func (p *profile) audRequired(scopes []string) bool {
	if !p.audOnlyWithContext {
		return true
	}
	for _, s := range scopes {
		if s == "launch" || strings.HasPrefix(s, "launch/") {
			return true
		}
	}
	return false
}

// scopeVersion is "v1" for a resource scope in v1 syntax (.read, .write,
// .*), "v2" for v2 (.cruds letters), "" for anything else.
func scopeVersion(s string) string {
	m := scopeRE.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	switch m[3] {
	case "read", "write", "*":
		return "v1"
	}
	return "v2"
}

// otherChallenge is the S256 challenge of a fresh verifier nobody holds.
func otherChallenge() (verifier, challenge string) {
	verifier = randomToken()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// dstu2ID is the Epic profile's stand-in for a patient's DSTU2 FHIR ID: a
// different, stable, opaque id (so an app that takes it for the FHIR ID
// reads the wrong patient, or none).
func dstu2ID(patient string) string {
	sum := sha256.Sum256([]byte("dstu2:" + patient))
	return "T" + base64.RawURLEncoding.EncodeToString(sum[:])
}
