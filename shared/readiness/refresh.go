package readiness

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// Vendors doctor recognises from the shape of an EHR's URLs, for the
// policies discovery does not advertise.
const (
	vendorEpic   = "Epic"
	vendorOracle = "Oracle Health"
)

// vendorOf names the EHR's vendor when its FHIR base and token endpoint
// have that vendor's published shape, else "": Epic serves FHIR R4 at
// …/api/FHIR/R4 and OAuth 2.0 at …/oauth2/token
// (https://fhir.epic.com/Documentation?docId=oauth2); Oracle Health's
// token endpoints live under …/tenants/<tenant>/protocols/oauth2/
// (https://fhir.cerner.com/authorization/).
func vendorOf(iss, tokenEndpoint string) string {
	fhirBase, err1 := url.Parse(iss)
	token, err2 := url.Parse(tokenEndpoint)
	if err1 != nil || err2 != nil {
		return ""
	}
	switch {
	case strings.HasSuffix(strings.TrimSuffix(fhirBase.Path, "/"), "/api/FHIR/R4") && strings.HasSuffix(token.Path, "/oauth2/token"):
		return vendorEpic
	case strings.Contains(token.Path, "/tenants/") && strings.Contains(token.Path, "/protocols/oauth2/"):
		return vendorOracle
	}
	return ""
}

// refresh checks what will keep a session's access token alive: the
// registration must ask for online_access or offline_access, and a refresh
// token must be one the EHR gives this client type. Discovery does not
// advertise whether an EHR gives a public client a refresh token: where the
// vendor is known and its published policy says no (Epic), this warns;
// elsewhere it says what the first launch shows.
func (x *run) refresh() {
	online, offline := hasScope(x.reg.Scope, "online_access"), hasScope(x.reg.Scope, "offline_access")
	public := x.reg.ClientAuth.Type == smart.AuthPublic
	vendor := vendorOf(x.iss, x.cfg.TokenEndpoint)
	ends := "a session ends when its access token expires (the token response's expires_in, often an hour or less), long before SMART Calc's session lifetime, and the clinician relaunches from the EHR"
	firstLaunch := `The first launch tells: the callback's "session created" log line says refresh_token true or false.`
	if !online && !offline {
		x.set("refresh", Warn, "The scope asks for neither online_access nor offline_access, so the EHR issues no refresh token: "+ends+".",
			fmt.Sprintf("Add online_access to %s (and to the scopes registered with the EHR).", field(x.reg, "scope")))
		return
	}
	asked := "online_access"
	if offline {
		asked = "offline_access"
	}
	capability := "permission-" + strings.TrimSuffix(asked, "_access")
	advertised := "The EHR advertises " + capability + "."
	if !slices.Contains(x.cfg.Capabilities, capability) {
		advertised = "The EHR does not advertise " + capability + " (not every EHR lists it)."
	}
	switch {
	case vendor == vendorEpic && public:
		x.set("refresh", Warn, fmt.Sprintf("This EHR has Epic's URL shapes (FHIR base …/api/FHIR/R4, token endpoint …/oauth2/token). Epic issues refresh tokens only to clients that can keep a credential (confidential clients; https://fhir.epic.com/Documentation?docId=oauth2), whatever the scope asks: with client_auth public no refresh token comes back, so %s. %s", ends, firstLaunch),
			fmt.Sprintf("For sessions that outlive the access token, register the app with Epic as a confidential client with a public key (JWK Set) that the organisation enables for refresh tokens, and set %s to {\"type\": \"private_key_jwt\", \"key\": …, \"kid\": …, \"alg\": \"RS384\" or \"ES384\"}; otherwise clinicians relaunch when the access token expires.", field(x.reg, "client_auth")))
	case public:
		who := "this EHR"
		if vendor != "" {
			who = vendor
		}
		x.set("refresh", Pass, fmt.Sprintf("The scope asks for %s. %s Whether %s gives a public client a refresh token is its policy, which discovery does not show; without one, %s. %s", asked, advertised, who, ends, firstLaunch), "")
	default:
		x.set("refresh", Pass, fmt.Sprintf("The scope asks for %s, for a confidential client (%s). %s %s", asked, x.reg.ClientAuth.Type, advertised, firstLaunch), "")
	}
}
