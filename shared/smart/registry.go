// Package smart is SMART Calc's SMART App Launch 2.x client: the registry of
// EHRs the app is registered with, discovery of their endpoints, the
// authorize URL, the code exchange and refresh on golang.org/x/oauth2 (with
// an explicit AuthStyle, so a code is never POSTed twice), client
// authentication (public, client_secret_basic, private_key_jwt), id_token
// verification, and the launch and callback steps as a [Flow].
//
// Nothing here writes HTTP responses or logs: the launch and callback
// handlers call [Flow.Begin] and [Flow.Complete] and render the [*Error]
// they may return. Launch state crosses from launch to callback only through
// the store, because each step may run on a different instance.
package smart

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/smartcalc-app/smartcalc/shared/config"
)

// Launch modes a registration may allow.
const (
	LaunchEHR        = "ehr"
	LaunchStandalone = "standalone"
)

// Client authentication types (SMART App Launch §client authentication).
const (
	AuthPublic            = "public"
	AuthClientSecretBasic = "client_secret_basic"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// PKCEForce in Registration.PKCE sends S256 even when the EHR does not
// advertise it (athenahealth omits code_challenge_methods_supported).
const PKCEForce = "force"

// Sentinel errors of Registry.Match.
var (
	// ErrMalformedIssuer means iss is not an absolute https URL (http only
	// for loopback when allowed) without query, fragment or user info.
	ErrMalformedIssuer = errors.New("smart: malformed iss")
	// ErrUnknownIssuer means iss matches no registration.
	ErrUnknownIssuer = errors.New("smart: unknown iss")
)

// Registration is one EHR the app is registered with (README Design §4). It
// is configuration, not state: deployers list registrations in
// SMARTCALC_EHRS.
type Registration struct {
	ID string `json:"id"`
	// Issuer is the exact FHIR base (iss) of the EHR. Exactly one of Issuer
	// and IssuerPattern is set.
	Issuer string `json:"iss,omitempty"`
	// IssuerPattern is an anchored regular expression (^…$) matching the
	// FHIR bases of many tenants, such as Oracle Health's
	// ^https://fhir-ehr\.cerner\.com/r4/[0-9a-f-]+$. It must pin the host.
	IssuerPattern string     `json:"iss_pattern,omitempty"`
	ClientID      string     `json:"client_id"`
	ClientAuth    ClientAuth `json:"client_auth"`
	// Scope is the scope requested at EHR launch. A standalone launch
	// replaces its "launch" with "launch/patient".
	Scope string `json:"scope"`
	// Launch lists the allowed launch modes: "ehr", "standalone".
	Launch []string `json:"launch"`
	// AllowedHosts are the hosts the discovered authorize and token
	// endpoints may use. An entry with a port must match host:port.
	AllowedHosts []string `json:"allowed_hosts"`
	// IDTokenIssuer is the id_token issuer, when it differs from the
	// discovery issuer and iss (Oracle Health).
	IDTokenIssuer string `json:"id_token_issuer,omitempty"`
	// PKCE is "" (require S256 to be advertised) or "force".
	PKCE string `json:"pkce,omitempty"`
	// MaxConcurrentFHIR bounds the FHIR requests one instance has open at
	// once to this EHR, shared by every assessment; 0 means the default (4).
	MaxConcurrentFHIR int `json:"max_concurrent_fhir,omitempty"`
	// BrowserBinding is "" (required: a callback must come from the
	// browser that began the launch) or "off". Only an explicit "off"
	// turns the login-CSRF defence off, and the functions log it at start.
	BrowserBinding string `json:"browser_binding,omitempty"`
	// RedirectPerRegistration sends …/callback/<id> as this
	// registration's Redirect URI instead of the shared …/callback, so an
	// authorization response is bound to the registration that began it
	// (mix-up defence). Register that URI with the EHR before setting it.
	RedirectPerRegistration bool `json:"redirect_per_registration,omitempty"`

	pattern *regexp.Regexp
	origin  string // the scheme and host iss_pattern pins
}

// ClientAuth says how the app authenticates at the token endpoint. Secret
// and Key name secrets; their values are resolved through Flow.Secrets only
// when a token request needs them.
type ClientAuth struct {
	// Type is "public", "client_secret_basic" or "private_key_jwt".
	Type string `json:"type"`
	// Secret names the client secret (client_secret_basic).
	Secret string `json:"secret,omitempty"`
	// Key names a PEM private key (private_key_jwt): PKCS#8, SEC 1 (EC) or
	// PKCS#1 (RSA).
	Key string `json:"key,omitempty"`
	// KID is the key id of the public key registered with the EHR.
	KID string `json:"kid,omitempty"`
	// Alg is ES384 (P-384 key) or RS384 (RSA key of at least 2048 bits).
	Alg string `json:"alg,omitempty"`
}

// allows reports whether r allows the launch mode.
func (r *Registration) allows(mode string) bool { return slices.Contains(r.Launch, mode) }

// ParseRegistrations decodes the JSON array of registrations strictly:
// unknown fields and trailing data are errors, and an error names the
// entry. Validation is NewRegistry's.
func ParseRegistrations(data []byte) ([]Registration, error) {
	regs, err := config.DecodeList[Registration](data)
	if err != nil {
		return nil, fmt.Errorf("smart: registrations: %w", err)
	}
	return regs, nil
}

// Registry holds validated registrations and matches iss values against
// them without any network access. It is immutable and safe for concurrent
// use.
type Registry struct {
	regs          []*Registration
	byID          map[string]*Registration
	allowLoopback bool
}

// NewRegistry validates regs and returns a Registry. allowLoopbackHTTP
// permits http:// for loopback hosts (local runs). An error names the entry
// and the field.
func NewRegistry(regs []Registration, allowLoopbackHTTP bool) (*Registry, error) {
	r := &Registry{byID: make(map[string]*Registration, len(regs)), allowLoopback: allowLoopbackHTTP}
	for i := range regs {
		reg := regs[i] // copy: the registry owns its registrations
		reg.Launch = slices.Clone(reg.Launch)
		reg.AllowedHosts = slices.Clone(reg.AllowedHosts)
		if err := reg.validate(allowLoopbackHTTP); err != nil {
			name := ""
			if reg.ID != "" {
				name = fmt.Sprintf(" (%q)", reg.ID)
			}
			return nil, fmt.Errorf("smart: registration %d%s: %w", i, name, err)
		}
		if _, dup := r.byID[reg.ID]; dup {
			return nil, fmt.Errorf("smart: registration %d (%q): id: duplicate", i, reg.ID)
		}
		r.regs = append(r.regs, &reg)
		r.byID[reg.ID] = &reg
	}
	return r, nil
}

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
}

func (r *Registration) validate(allowLoopback bool) error {
	if strings.TrimSpace(r.ID) == "" || strings.ContainsAny(r.ID, " \t\r\n/") {
		return fieldErr("id", "required, without spaces or slashes")
	}
	switch {
	case r.Issuer == "" && r.IssuerPattern == "":
		return fieldErr("iss", "set iss or iss_pattern")
	case r.Issuer != "" && r.IssuerPattern != "":
		return fieldErr("iss", "set only one of iss and iss_pattern")
	case r.Issuer != "":
		if _, err := checkIssuer(r.Issuer, allowLoopback); err != nil {
			return fieldErr("iss", "%v", err)
		}
	default:
		p := r.IssuerPattern
		if !strings.HasPrefix(p, "^") || !strings.HasSuffix(p, "$") || strings.HasSuffix(p, `\$`) {
			return fieldErr("iss_pattern", "must be anchored: start with ^ and end with $")
		}
		// Wrapping again keeps an alternation such as ^a$|^b fully anchored.
		re, err := regexp.Compile(`^(?:` + p + `)$`)
		if err != nil {
			return fieldErr("iss_pattern", "%v", err)
		}
		origin, ok := literalOrigin(p)
		if !ok {
			return fieldErr("iss_pattern", `must pin the scheme and host literally, as in ^https://fhir-ehr\.cerner\.com/r4/[0-9a-f-]+$ (a pattern that lets the host vary would send tokens to any matching server; write one registration per host)`)
		}
		if _, err := checkIssuer(origin+"/", allowLoopback); err != nil {
			return fieldErr("iss_pattern", "%v", err)
		}
		r.pattern, r.origin = re, origin
	}
	if strings.TrimSpace(r.ClientID) == "" {
		return fieldErr("client_id", "required")
	}
	if err := r.ClientAuth.validate(); err != nil {
		return err
	}
	scope := strings.Fields(r.Scope)
	if len(scope) == 0 {
		return fieldErr("scope", "required")
	}
	if len(r.Launch) == 0 {
		return fieldErr("launch", `required: "ehr" and/or "standalone"`)
	}
	for i, m := range r.Launch {
		if m != LaunchEHR && m != LaunchStandalone {
			return fieldErr("launch", "%q is not ehr or standalone", m)
		}
		if slices.Contains(r.Launch[:i], m) {
			return fieldErr("launch", "%q listed twice", m)
		}
	}
	if r.allows(LaunchEHR) && !slices.Contains(scope, "launch") {
		// Without it the EHR cannot pass the patient context
		// (Oracle Health answers access_denied missing-patient).
		return fieldErr("scope", `an EHR launch needs the "launch" scope`)
	}
	if len(r.AllowedHosts) == 0 {
		return fieldErr("allowed_hosts", "required: the hosts of the EHR's authorize and token endpoints")
	}
	for i, h := range r.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			return fieldErr("allowed_hosts", "%q is not a host name", h)
		}
		r.AllowedHosts[i] = strings.ToLower(h)
	}
	if r.IDTokenIssuer != "" {
		if _, err := checkIssuer(r.IDTokenIssuer, allowLoopback); err != nil {
			return fieldErr("id_token_issuer", "%v", err)
		}
	}
	if r.MaxConcurrentFHIR < 0 || r.MaxConcurrentFHIR > 64 {
		return fieldErr("max_concurrent_fhir", "must be between 1 and 64 (0 for the default)")
	}
	if r.PKCE != "" && r.PKCE != PKCEForce {
		return fieldErr("pkce", `must be empty or "force"`)
	}
	if r.BrowserBinding != "" && r.BrowserBinding != BindingOff {
		return fieldErr("browser_binding", `must be empty (required) or "off"`)
	}
	return nil
}

// BindingOff in Registration.BrowserBinding turns the browser binding off.
const BindingOff = "off"

// BindingRequired reports whether callbacks of r must prove they come from
// the browser that began the launch.
func (r *Registration) BindingRequired() bool { return r.BrowserBinding != BindingOff }

func (a *ClientAuth) validate() error {
	switch a.Type {
	case AuthPublic:
		if a.Secret != "" || a.Key != "" {
			return fieldErr("client_auth", "a public client has no secret or key")
		}
	case AuthClientSecretBasic:
		if a.Secret == "" {
			return fieldErr("client_auth.secret", "required for client_secret_basic: the name of the secret")
		}
		if a.Key != "" {
			return fieldErr("client_auth.key", "not used with client_secret_basic")
		}
	case AuthPrivateKeyJWT:
		if a.Key == "" {
			return fieldErr("client_auth.key", "required for private_key_jwt: the name of the PEM private key secret")
		}
		if a.KID == "" {
			return fieldErr("client_auth.kid", "required for private_key_jwt")
		}
		if a.Alg != "ES384" && a.Alg != "RS384" {
			return fieldErr("client_auth.alg", "must be ES384 or RS384")
		}
		if a.Secret != "" {
			return fieldErr("client_auth.secret", "not used with private_key_jwt")
		}
	case "":
		return fieldErr("client_auth.type", "required: public, client_secret_basic or private_key_jwt")
	default:
		return fieldErr("client_auth.type", "%q is not public, client_secret_basic or private_key_jwt", a.Type)
	}
	return nil
}

// Match returns the registration for iss, checking exact issuers first and
// then patterns in order. It makes no network request. A trailing slash on
// iss is ignored when comparing with an exact issuer.
func (r *Registry) Match(iss string) (*Registration, error) {
	if _, err := checkIssuer(iss, r.allowLoopback); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedIssuer, err)
	}
	trimmed := strings.TrimSuffix(iss, "/")
	for _, reg := range r.regs {
		if reg.Issuer != "" && strings.TrimSuffix(reg.Issuer, "/") == trimmed {
			return reg, nil
		}
	}
	for _, reg := range r.regs {
		// The origin check holds even against a pattern whose alternation
		// reaches past the pinned host (^https://a/x|^https://b/.*$).
		if reg.pattern != nil && reg.pattern.MatchString(iss) && strings.HasPrefix(iss, reg.origin+"/") {
			return reg, nil
		}
	}
	return nil, ErrUnknownIssuer
}

// Get returns the registration with that id.
func (r *Registry) Get(id string) (*Registration, bool) {
	reg, ok := r.byID[id]
	return reg, ok
}

// Registrations returns the registrations in configuration order. The
// caller must not modify them.
func (r *Registry) Registrations() []*Registration { return slices.Clone(r.regs) }

// AllowLoopbackHTTP reports whether http is allowed for loopback hosts.
func (r *Registry) AllowLoopbackHTTP() bool { return r.allowLoopback }

// maxURLLen bounds any URL the app accepts from a request or an EHR.
const maxURLLen = 2048

// hostLiteral matches an escaped literal host (and port) in a pattern:
// letters, digits, hyphens, \. for dots, and an optional :port.
// It is compiled on first use: only an iss_pattern registration needs it.
var hostLiteral = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9-]+(?:\\\.[A-Za-z0-9-]+)*(?::[0-9]+)?$`)
})

// literalOrigin returns the scheme and host an iss_pattern pins, "https://host",
// when the pattern starts with ^https:// (or ^http://) followed by a
// literal host and a literal /; ok is false when the host part has any
// regular-expression operator, so the pattern could match another host.
func literalOrigin(pattern string) (origin string, ok bool) {
	rest, found := strings.CutPrefix(pattern, "^")
	if !found {
		return "", false
	}
	var scheme string
	switch {
	case strings.HasPrefix(rest, "https://"):
		scheme, rest = "https", rest[len("https://"):]
	case strings.HasPrefix(rest, "http://"):
		scheme, rest = "http", rest[len("http://"):]
	default:
		return "", false
	}
	host, _, found := strings.Cut(rest, "/")
	if !found || !hostLiteral().MatchString(host) {
		return "", false
	}
	return scheme + "://" + strings.ReplaceAll(host, `\.`, "."), true
}

// checkIssuer parses a FHIR base or issuer URL: absolute, https (http for
// loopback hosts if allowed), no user info, query or fragment.
func checkIssuer(raw string, allowLoopback bool) (*url.URL, error) {
	u, err := checkURL(raw, allowLoopback)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("must not have a query")
	}
	return u, nil
}

// checkURL parses an endpoint URL: absolute, https (http for loopback hosts
// if allowed), no user info or fragment.
func checkURL(raw string, allowLoopback bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty URL")
	}
	if len(raw) > maxURLLen {
		return nil, errors.New("URL too long")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, errors.New("not an absolute URL")
	}
	if u.User != nil {
		return nil, errors.New("must not carry user info")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("must not have a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowLoopback || !isLoopback(u.Hostname()) {
			return nil, errors.New("must use https")
		}
	default:
		return nil, fmt.Errorf("scheme %q: must use https", u.Scheme)
	}
	return u, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostAllowed reports whether u's host is in allowed (lower-case entries;
// an entry with a port must match host:port).
func hostAllowed(u *url.URL, allowed []string) bool {
	host := strings.ToLower(u.Hostname())
	hostPort := strings.ToLower(u.Host)
	for _, a := range allowed {
		if a == host || a == hostPort {
			return true
		}
	}
	return false
}
