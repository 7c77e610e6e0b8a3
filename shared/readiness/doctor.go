package readiness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// Doctor runs the readiness checks. Its fields are dependencies; set them
// before first use and do not copy a Doctor after. It is safe for
// concurrent use.
type Doctor struct {
	// Registrations are the configured registrations (SMARTCALC_EHRS and
	// any the local runner adds), not yet validated: the check validates
	// them as the functions do at start-up.
	Registrations []smart.Registration
	// RegistrationsError is why SMARTCALC_EHRS could not be read, if it
	// could not.
	RegistrationsError error
	// AllowLoopbackHTTP permits http:// for loopback hosts (local runs).
	AllowLoopbackHTTP bool
	// HTTPClient makes every request; nil means http.DefaultClient with
	// shared/smart's own timeouts.
	HTTPClient *http.Client
	// LaunchURI and RedirectURI are SMART Calc's, as registered with EHRs.
	LaunchURI, RedirectURI string
	// Secrets resolves client secrets and keys for the client
	// authentication check, inside shared/smart.
	Secrets func(name string) (string, error)
	// Needs are what the assessment reads. When nil they are computed
	// from Scoring (assess.Needs) on the first check, not at start-up.
	Needs   []assess.Need
	Scoring *calc.Config

	needsOnce sync.Once
	needs     []assess.Need
}

func (d *Doctor) needList() []assess.Need {
	d.needsOnce.Do(func() {
		d.needs = d.Needs
		if d.needs == nil && d.Scoring != nil {
			d.needs = assess.Needs(d.Scoring)
		}
	})
	return d.needs
}

// checkTitles lists the checks in report order.
var checkTitles = []struct{ id, title string }{
	{"registration", "The iss matches a valid registration"},
	{"discovery", "The EHR's SMART configuration is reachable and parses"},
	{"hosts", "Discovered endpoints are on the registration's allowed hosts"},
	{"pkce", "PKCE S256, with one verifier per launch"},
	{"launch-modes", "The EHR advertises the registered launch modes"},
	{"client-type", "The EHR advertises the registered client type"},
	{"context", "The EHR advertises patient context and OpenID Connect"},
	{"scope-syntax", "The scope's syntax and the SMART version it implies"},
	{"scopes-supported", "Every requested scope is one the EHR lists"},
	{"auth-methods", "The token endpoint supports the client authentication"},
	{"refresh", "Refresh tokens keep a session beyond its first access token"},
	{"response-iss", "Authorization response iss (RFC 9207, mix-up defence)"},
	{"id-token", "id_token issuer and signing keys"},
	{"fhir", "FHIR R4 CapabilityStatement covers what the assessment reads"},
	{"redirect-uri", "The EHR knows the client id and its Redirect URI"},
	{"client-auth", "The EHR accepts the client authentication"},
	{"console", "What the EHR's app registration must say"},
}

// run is the state of one Check call.
type run struct {
	d    *Doctor
	r    *Report
	reg  *smart.Registration
	flow *smart.Flow
	cfg  *smart.Configuration
	iss  string
	// allowed records which discovered URLs passed the hosts check.
	allowed map[string]bool
	needs   []assess.Need
	// sharing is the number of valid registrations that use the shared
	// Redirect URI (no redirect_per_registration).
	sharing int
}

func (x *run) set(id string, st Status, detail, fix string) {
	for _, t := range checkTitles {
		if t.id == id {
			x.r.add(Check{ID: id, Title: t.title, Status: st, Detail: detail, Fix: fix})
			return
		}
	}
	panic("readiness: unknown check " + id)
}

// skipFrom marks every check after id as skipped for reason; the console
// check too unless a registration matched (it needs nothing else).
func (x *run) skipFrom(id, reason string) {
	after := false
	for _, t := range checkTitles {
		if after && (t.id != "console" || x.reg == nil) {
			x.set(t.id, Skip, "Not run: "+reason+".", "")
		}
		after = after || t.id == id
	}
}

// field names a registration field in the deployer's terms.
func field(reg *smart.Registration, name string) string {
	return fmt.Sprintf("%q of registration %q (SMARTCALC_EHRS, or ehrs in terraform.tfvars)", name, reg.ID)
}

// Check runs every check for iss and returns the report. It never
// returns nil; a check that cannot run is skipped, with the reason.
func (d *Doctor) Check(ctx context.Context, iss string) *Report {
	x := &run{d: d, r: &Report{Issuer: iss, Summary: map[Status]int{}}, iss: iss, needs: d.needList()}
	if !x.registration() {
		x.skipFrom("registration", "no registration matches this iss")
		return x.r
	}
	x.r.Registration = x.reg.ID
	x.r.Console = x.console()
	if !x.discovery(ctx) {
		x.skipFrom("discovery", "the SMART configuration could not be read")
		x.consoleCheck()
		return x.r
	}
	x.hosts()
	x.pkce()
	x.launchModes()
	x.clientType()
	x.context()
	x.scopeSyntax()
	x.scopesSupported()
	x.authMethods()
	x.refresh()
	x.responseIss()
	x.idToken(ctx)
	x.fhir(ctx)
	x.redirectURI(ctx)
	x.clientAuth(ctx)
	x.consoleCheck()
	return x.r
}

// registration matches iss against the valid registrations and reports
// every invalid one (the functions refuse to start while any is).
func (x *run) registration() bool {
	d := x.d
	if d.RegistrationsError != nil {
		x.set("registration", Fail, "The registrations could not be read: "+d.RegistrationsError.Error(),
			"Correct the JSON of SMARTCALC_EHRS (or ehrs in terraform.tfvars); the error names the entry.")
		return false
	}
	var valid []smart.Registration
	var problems []string
	ids := map[string]bool{}
	for i, reg := range d.Registrations {
		name := fmt.Sprintf("entry %d", i)
		if reg.ID != "" {
			name += fmt.Sprintf(" (%q)", reg.ID)
		}
		if _, err := smart.NewRegistry([]smart.Registration{reg}, d.AllowLoopbackHTTP); err != nil {
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if ids[reg.ID] {
			problems = append(problems, fmt.Sprintf("%s: id: duplicate", name))
			continue
		}
		ids[reg.ID] = true
		valid = append(valid, reg)
	}
	for _, reg := range valid {
		if !reg.RedirectPerRegistration {
			x.sharing++
		}
	}
	registry, err := smart.NewRegistry(valid, d.AllowLoopbackHTTP)
	if err != nil { // cannot happen: each entry was validated alone
		x.set("registration", Fail, err.Error(), "")
		return false
	}
	invalid := ""
	if len(problems) > 0 {
		invalid = "Invalid registrations (the functions refuse to start until each is fixed):\n  " + strings.Join(problems, "\n  ")
	}
	reg, err := registry.Match(x.iss)
	switch {
	case errors.Is(err, smart.ErrMalformedIssuer):
		x.set("registration", Fail, fmt.Sprintf("%q is not an EHR's FHIR base: %v.", x.iss, errors.Unwrap(err)),
			"Give the FHIR base URL the EHR sends as iss: absolute, https (http only for loopback in a local run), without query or fragment.")
		return false
	case err != nil:
		var known []string
		for _, r := range registry.Registrations() {
			k := r.Issuer
			if k == "" {
				k = r.IssuerPattern
			}
			known = append(known, fmt.Sprintf("%s: %s", r.ID, k))
		}
		detail := fmt.Sprintf("No registration's iss or iss_pattern matches %q. SMART Calc refuses a launch from it before any request. Registered: %s.", x.iss, strings.Join(known, "; "))
		if invalid != "" {
			detail += "\n" + invalid
		}
		x.set("registration", Fail, detail,
			fmt.Sprintf(`Add a registration with "iss": %q to SMARTCALC_EHRS (or ehrs in terraform.tfvars), or correct the iss of the one meant for this EHR (tenant id, /r4/, trailing path).`, x.iss))
		return false
	}
	x.reg = reg
	x.flow = &smart.Flow{
		Registry:    registry,
		Discovery:   &smart.Discoverer{HTTPClient: d.HTTPClient},
		HTTPClient:  d.HTTPClient,
		RedirectURI: d.RedirectURI,
		Secrets:     d.Secrets,
	}
	how := "exact iss"
	if reg.IssuerPattern != "" {
		how = "iss_pattern " + reg.IssuerPattern
	}
	detail := fmt.Sprintf("Matches registration %q (%s), client_id %q, client_auth %s, launch %v.", reg.ID, how, reg.ClientID, reg.ClientAuth.Type, reg.Launch)
	if invalid != "" {
		x.set("registration", Fail, detail+"\n"+invalid, "Fix each invalid entry: the error names its field.")
		return true
	}
	x.set("registration", Pass, detail, "")
	return true
}

// discovery reads {iss}/.well-known/smart-configuration as a launch does.
func (x *run) discovery(ctx context.Context) bool {
	cfg, err := x.flow.Discovery.Discover(ctx, x.iss)
	if err != nil {
		x.set("discovery", Fail, strings.TrimPrefix(err.Error(), "smart: "),
			fmt.Sprintf("Check that %s is the EHR's FHIR base (its /.well-known/smart-configuration must answer JSON with authorization_endpoint and token_endpoint) and that this network can reach it.", x.iss))
		return false
	}
	x.cfg = cfg
	detail := fmt.Sprintf("%s/.well-known/smart-configuration: authorize %s, token %s.", strings.TrimSuffix(x.iss, "/"), cfg.AuthorizationEndpoint, cfg.TokenEndpoint)
	if strings.HasPrefix(x.iss, "http://") {
		detail += " Plain http on loopback: allowed in a local run only."
	}
	x.set("discovery", Pass, detail, "")
	return true
}

// hosts checks the discovered endpoints the app will use against
// allowed_hosts, as a launch does before it sends anything there.
func (x *run) hosts() {
	x.allowed = map[string]bool{}
	type ep struct{ name, url string }
	eps := []ep{{"authorization_endpoint", x.cfg.AuthorizationEndpoint}, {"token_endpoint", x.cfg.TokenEndpoint}}
	if x.cfg.JWKSURI != "" {
		eps = append(eps, ep{"jwks_uri", x.cfg.JWKSURI})
	}
	if x.cfg.Issuer != "" && hasScope(x.reg.Scope, "openid") {
		eps = append(eps, ep{"issuer", x.cfg.Issuer})
	}
	var bad, good []string
	badHosts := map[string]bool{}
	for _, e := range eps {
		if err := x.flow.CheckEndpoint(x.reg, e.name, e.url); err != nil {
			if e.name == "issuer" && x.cfg.JWKSURI != "" {
				// Only the readiness check would fetch from it.
				continue
			}
			bad = append(bad, err.Error())
			badHosts[hostOf(e.url)] = true
			continue
		}
		x.allowed[e.url] = true
		good = append(good, e.name)
	}
	if len(bad) > 0 {
		hosts := slices.Sorted(func(yield func(string) bool) {
			for h := range badHosts {
				if !yield(h) {
					return
				}
			}
		})
		verb := "belongs"
		if len(hosts) > 1 {
			verb = "belong"
		}
		x.set("hosts", Fail, strings.Join(bad, "\n")+"\nSMART Calc sends nothing to these endpoints: a launch fails with endpoint_not_allowed.",
			fmt.Sprintf("After checking that %s %s to the EHR, add %s to %s.", strings.Join(hosts, ", "), verb, quoteAll(hosts), field(x.reg, "allowed_hosts")))
		return
	}
	x.set("hosts", Pass, fmt.Sprintf("%s on %v.", strings.Join(good, ", "), x.reg.AllowedHosts), "")
}

func (x *run) pkce() {
	single := "SMART Calc makes one code_verifier per launch, on the server, and sends its S256 challenge to authorize; nothing else may run authorize for this client id (a browser library doing its own PKCE gets invalid_grant at the exchange, the original app's bug)."
	switch {
	case slices.Contains(x.cfg.CodeChallengeMethodsSupported, "S256"):
		x.set("pkce", Pass, "code_challenge_methods_supported lists S256. "+single, "")
	case x.reg.PKCE == smart.PKCEForce:
		x.set("pkce", Warn, fmt.Sprintf("code_challenge_methods_supported is %q, without S256; the registration forces S256 anyway. %s", x.cfg.CodeChallengeMethodsSupported, single),
			"Keep \"pkce\": \"force\" only if the EHR's documentation says it supports S256.")
	default:
		x.set("pkce", Fail, fmt.Sprintf("code_challenge_methods_supported is %q, without S256: a launch fails with no_s256.", x.cfg.CodeChallengeMethodsSupported),
			fmt.Sprintf("If the EHR supports S256 without advertising it, set %s to \"force\"; otherwise this EHR cannot be used.", field(x.reg, "pkce")))
	}
}

func (x *run) launchModes() {
	caps := x.cfg.Capabilities
	if len(caps) == 0 {
		x.set("launch-modes", Warn, "The EHR advertises no capabilities; the first launch shows whether it supports "+strings.Join(x.reg.Launch, " and ")+" launches.", "")
		return
	}
	var missing []string
	for _, m := range x.reg.Launch {
		if !slices.Contains(caps, "launch-"+m) {
			missing = append(missing, "launch-"+m)
		}
	}
	if len(missing) > 0 {
		x.set("launch-modes", Warn, fmt.Sprintf("The registration allows %v launches, but the EHR does not advertise %s.", x.reg.Launch, strings.Join(missing, ", ")),
			fmt.Sprintf("Remove the mode from %s unless the EHR supports it anyway.", field(x.reg, "launch")))
		return
	}
	x.set("launch-modes", Pass, fmt.Sprintf("The EHR advertises %s.", prefixed("launch-", x.reg.Launch)), "")
}

func (x *run) clientType() {
	want := map[string]string{
		smart.AuthPublic:            "client-public",
		smart.AuthClientSecretBasic: "client-confidential-symmetric",
		smart.AuthPrivateKeyJWT:     "client-confidential-asymmetric",
	}[x.reg.ClientAuth.Type]
	switch {
	case len(x.cfg.Capabilities) == 0:
		x.set("client-type", Warn, "The EHR advertises no capabilities, so not "+want+"; the client-auth check below tells.", "")
	case !slices.Contains(x.cfg.Capabilities, want):
		x.set("client-type", Warn, fmt.Sprintf("client_auth %s needs %s, which the EHR does not advertise.", x.reg.ClientAuth.Type, want),
			fmt.Sprintf("Set %s to the client type the EHR registered the app as (see client-auth below).", field(x.reg, "client_auth")))
	default:
		x.set("client-type", Pass, fmt.Sprintf("client_auth %s: the EHR advertises %s.", x.reg.ClientAuth.Type, want), "")
	}
}

func (x *run) context() {
	var want []string
	if slices.Contains(x.reg.Launch, smart.LaunchEHR) {
		want = append(want, "context-ehr-patient")
	}
	if slices.Contains(x.reg.Launch, smart.LaunchStandalone) {
		want = append(want, "context-standalone-patient")
	}
	if hasScope(x.reg.Scope, "openid") {
		want = append(want, "sso-openid-connect")
	}
	var missing []string
	for _, c := range want {
		if !slices.Contains(x.cfg.Capabilities, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		x.set("context", Warn, fmt.Sprintf("The EHR does not advertise %s. Without patient context a launch ends with no_patient_context; without OpenID Connect no id_token (and no fhirUser) comes back.", strings.Join(missing, ", ")),
			"Nothing to change unless the first launch fails; then ask the EHR to enable patient context (and OpenID Connect) for the app.")
		return
	}
	x.set("context", Pass, "The EHR advertises "+strings.Join(want, ", ")+".", "")
}

func (x *run) responseIss() {
	switch {
	case x.cfg.AuthorizationResponseIssParameterSupported:
		x.set("response-iss", Pass, "The EHR advertises authorization_response_iss_parameter_supported: the callback requires its iss on every response.", "")
	case x.reg.RedirectPerRegistration:
		x.set("response-iss", Pass, "The EHR sends no iss with its responses; the registration's own Redirect URI (/callback/"+x.reg.ID+") binds each response to it.", "")
	case x.sharing > 1:
		x.set("response-iss", Warn, fmt.Sprintf("The EHR sends no iss with its authorization responses, and %d registrations share one Redirect URI: a response cannot be tied to its EHR (mix-up).", x.sharing),
			fmt.Sprintf("Set %s to true and register %s with the EHR.", field(x.reg, "redirect_per_registration"), x.flowRedirectFor(true)))
	default:
		x.set("response-iss", Pass, "The EHR sends no iss with its authorization responses; no other registration shares this Redirect URI, so there is no other EHR to mix it up with.", "")
	}
}

// flowRedirectFor is the Redirect URI the registration would send with
// redirect_per_registration set to perReg.
func (x *run) flowRedirectFor(perReg bool) string {
	r := *x.reg
	r.RedirectPerRegistration = perReg
	return x.flow.RedirectURIFor(&r)
}

func (x *run) console() *Console {
	v1, v2, _ := assess.ScopeSyntax(x.reg.Scope)
	version := "v2"
	switch {
	case len(v1) > 0 && len(v2) > 0:
		version = "mixed v1 and v2 (see scope-syntax)"
	case len(v1) > 0:
		version = "v1"
	}
	a := x.reg.ClientAuth
	clientType := map[string]string{
		smart.AuthPublic:            "public (no secret)",
		smart.AuthClientSecretBasic: fmt.Sprintf("confidential, client secret sent with HTTP Basic (its value is the secret named %q)", a.Secret),
		smart.AuthPrivateKeyJWT:     fmt.Sprintf("confidential, public key (JWK Set) under kid %q, alg %s", a.KID, a.Alg),
	}[a.Type]
	return &Console{
		LaunchURI:    x.d.LaunchURI,
		RedirectURI:  x.flow.RedirectURIFor(x.reg),
		Scope:        x.reg.Scope,
		SMARTVersion: version,
		ClientType:   clientType,
		ClientID:     x.reg.ClientID,
	}
}

func (x *run) consoleCheck() {
	c := x.r.Console
	x.set("console", Pass, fmt.Sprintf("Enter exactly, character for character: Launch URI %s, Redirect URI %s; SMART version %s; client type %s; the scopes of the registration.", c.LaunchURI, c.RedirectURI, c.SMARTVersion, c.ClientType), "")
}

func hasScope(scope, s string) bool { return slices.Contains(strings.Fields(scope), s) }

func prefixed(p string, s []string) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = p + v
	}
	return strings.Join(out, ", ")
}

func quoteAll(s []string) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(out, ", ")
}

func hostOf(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	h, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.ToLower(h)
}
