// Package config is SMART Calc's one configuration loader. Every setting
// comes from an environment variable listed in Variables; Terraform sets the
// deployed ones, and a test checks that the two lists agree.
//
// Load validates what it reads and fails with a message naming the variable.
// What only some functions need (the token-sealing key, client secrets) is
// checked by the function that needs it, so that launch, which never sees a
// token, is not given those secrets at all.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Variable describes one environment variable SMART Calc reads.
type Variable struct {
	Name     string
	Deployed bool // set by Terraform in a deployment
	Secret   bool // comes from Secret Manager
	Prefix   bool // Name is a prefix (one variable per secret name)
	Doc      string
}

// Names of the variables.
const (
	EnvBaseURL           = "SMARTCALC_BASE_URL"
	EnvEHRs              = "SMARTCALC_EHRS"
	EnvEHRsFile          = "SMARTCALC_EHRS_FILE"
	EnvCDSClients        = "SMARTCALC_CDS_CLIENTS"
	EnvFirestoreProject  = "SMARTCALC_FIRESTORE_PROJECT"
	EnvFirestoreDatabase = "SMARTCALC_FIRESTORE_DATABASE"
	EnvTokenKey          = "SMARTCALC_TOKEN_KEY"
	EnvLaunchKey         = "SMARTCALC_LAUNCH_KEY"
	EnvAdminToken        = "SMARTCALC_ADMIN_TOKEN"
	EnvSecretPrefix      = "SMARTCALC_SECRET_"
	EnvLaunchTTL         = "SMARTCALC_LAUNCH_TTL"
	EnvSessionTTL        = "SMARTCALC_SESSION_TTL"
	EnvIdleTimeout       = "SMARTCALC_IDLE_TIMEOUT"
	EnvDiscoveryTTL      = "SMARTCALC_DISCOVERY_TTL"
	EnvCDSBudget         = "SMARTCALC_CDS_BUDGET"
	EnvCDSLanguage       = "SMARTCALC_CDS_LANGUAGE"
	EnvLabLookback       = "SMARTCALC_LAB_LOOKBACK"
	EnvFrameAncestors    = "SMARTCALC_FRAME_ANCESTORS"
	EnvSandboxData       = "SMARTCALC_SANDBOX_DATA"
	EnvEmulatorHost      = "FIRESTORE_EMULATOR_HOST"
	EnvPort              = "PORT"
	EnvKService          = "K_SERVICE"
	EnvLogLevel          = "LOG_LEVEL"
)

// Variables lists every environment variable the loader reads.
var Variables = []Variable{
	{Name: EnvBaseURL, Deployed: true, Doc: "Public base URL of the functions (https://REGION-PROJECT.cloudfunctions.net); the Launch URI is BASE/launch, the Redirect URI BASE/callback, the app BASE/calculate/."},
	{Name: EnvEHRs, Deployed: true, Doc: "JSON array of EHR registrations (README Design §4)."},
	{Name: EnvEHRsFile, Doc: "A file holding the EHR registrations instead of SMARTCALC_EHRS."},
	{Name: EnvCDSClients, Deployed: true, Doc: "JSON array of the CDS Hooks clients (EHRs) allowed to call the CDS services: id, iss, jwks_url, fhir_hosts. Unset: CDS Hooks answer 401 to every call."},
	{Name: EnvFirestoreProject, Deployed: true, Doc: "Google Cloud project of the Firestore database. Unset locally: the in-memory store is used."},
	{Name: EnvFirestoreDatabase, Deployed: true, Doc: "Firestore database id; default (default)."},
	{Name: EnvTokenKey, Deployed: true, Secret: true, Doc: "Base64 of the 32-byte AES-256-GCM key that seals tokens at rest (callback and calculate)."},
	{Name: EnvLaunchKey, Deployed: true, Secret: true, Doc: "Base64 of the 32-byte key under which launch seals each PKCE verifier (with a key derived from it and the state) and callback opens it (launch and callback only)."},
	{Name: EnvAdminToken, Deployed: true, Secret: true, Doc: "The bearer token of calculate's admin path GET /admin/doctor?iss=… (the readiness check of one EHR registration); unset, the path answers 404. At least 32 characters (calculate only)."},
	{Name: EnvSecretPrefix, Deployed: true, Secret: true, Prefix: true, Doc: "SMARTCALC_SECRET_<NAME>: the value of the secret a registration names (client secret, PEM private key); NAME is the secret name upper-cased with - and . as _."},
	{Name: EnvLaunchTTL, Deployed: true, Doc: "How long a launch may take from launch to callback; default 10m."},
	{Name: EnvSessionTTL, Deployed: true, Doc: "Lifetime of an app session; default 8h."},
	{Name: EnvIdleTimeout, Deployed: true, Doc: "An app session ends after this long without a request; default 30m (calculate)."},
	{Name: EnvDiscoveryTTL, Deployed: true, Doc: "How long an instance caches an EHR's SMART configuration; default 1h."},
	{Name: EnvCDSBudget, Deployed: true, Doc: "Time budget of a CDS Hooks answer; default 2s."},
	{Name: EnvCDSLanguage, Deployed: true, Doc: "Language of the CDS Hooks cards: en (default) or zh-TW. The app's page follows each browser's Accept-Language instead."},
	{Name: EnvLabLookback, Deployed: true, Doc: "Oldest lab value the assessment uses; default 8760h (1 year)."},
	{Name: EnvFrameAncestors, Deployed: true, Doc: "Extra origins (space-separated) allowed to embed the app, besides the registered EHRs' hosts."},
	{Name: EnvSandboxData, Doc: "Local runner: a folder of FHIR Bundles loaded into the sandbox EHR."},
	{Name: EnvEmulatorHost, Doc: "host:port of a Firestore emulator; makes the store Firestore."},
	{Name: EnvPort, Doc: "Local runner: port on 127.0.0.1; default 8080."},
	{Name: EnvKService, Doc: "Set by Cloud Run: marks a deployed instance."},
	{Name: EnvLogLevel, Deployed: true, Doc: "debug, info, warn or error; default info."},
}

// Config is the validated configuration.
type Config struct {
	BaseURL           *url.URL      // where the functions are served, without a trailing slash
	EHRs              []byte        // the registrations' JSON; smart.ParseRegistrations validates it
	CDSClients        []byte        // the CDS clients' JSON; cds.ParseClients validates it
	FirestoreProject  string        // "" means the in-memory store
	FirestoreDatabase string        // "" or "(default)" means the default database
	TokenKey          []byte        // nil when not configured for this function
	LaunchKey         []byte        // nil when not configured for this function
	AdminToken        string        // "" when the admin path is off (never logged)
	LaunchTTL         time.Duration //
	SessionTTL        time.Duration //
	IdleTimeout       time.Duration //
	DiscoveryTTL      time.Duration //
	CDSBudget         time.Duration //
	CDSLanguage       message.Lang  // the cards' language; default English
	LabLookback       time.Duration //
	FrameAncestors    []string      // extra origins
	SandboxData       string        //
	EmulatorHost      string        //
	Deployed          bool          // running on Cloud Run / Cloud Functions

	getenv func(string) string
}

// Load reads and validates the configuration from getenv (os.Getenv when
// nil). A deployed instance (K_SERVICE set) must name its base URL, its EHRs
// and its Firestore project: it never falls back to the in-memory store.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &Config{getenv: getenv}
	var errs []error
	fail := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, a...)))
	}

	c.Deployed = getenv(EnvKService) != ""
	if s := strings.TrimSpace(getenv(EnvBaseURL)); s != "" {
		u, err := url.Parse(strings.TrimRight(s, "/"))
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			fail(EnvBaseURL, "must be an absolute http(s) URL, got %q", s)
		case u.Scheme == "http" && !IsLoopback(u.Hostname()):
			fail(EnvBaseURL, "must use https (http only on loopback), got %q", s)
		case u.RawQuery != "" || u.Fragment != "":
			fail(EnvBaseURL, "must not carry a query or fragment, got %q", s)
		default:
			c.BaseURL = u
		}
	} else if c.Deployed {
		fail(EnvBaseURL, "required in a deployment")
	}

	switch ehrs, file := getenv(EnvEHRs), getenv(EnvEHRsFile); {
	case ehrs != "" && file != "":
		fail(EnvEHRs, "set either %s or %s, not both", EnvEHRs, EnvEHRsFile)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			fail(EnvEHRsFile, "%v", err)
		}
		c.EHRs = b
	case ehrs != "":
		c.EHRs = []byte(ehrs)
	case c.Deployed:
		fail(EnvEHRs, "required in a deployment")
	}

	if v := strings.TrimSpace(getenv(EnvCDSClients)); v != "" {
		c.CDSClients = []byte(v)
	}
	c.FirestoreProject = strings.TrimSpace(getenv(EnvFirestoreProject))
	c.FirestoreDatabase = strings.TrimSpace(getenv(EnvFirestoreDatabase))
	c.EmulatorHost = strings.TrimSpace(getenv(EnvEmulatorHost))
	if c.Deployed && c.FirestoreProject == "" {
		fail(EnvFirestoreProject, "required in a deployment (the in-memory store cannot be shared between instances)")
	}

	for _, k := range []struct {
		name string
		dst  *[]byte
	}{{EnvTokenKey, &c.TokenKey}, {EnvLaunchKey, &c.LaunchKey}} {
		if s := strings.TrimSpace(getenv(k.name)); s != "" {
			key, err := decodeKey(s)
			if err != nil {
				fail(k.name, "%v", err)
			}
			*k.dst = key
		}
	}

	if s := strings.TrimSpace(getenv(EnvAdminToken)); s != "" {
		if len(s) < minAdminToken {
			fail(EnvAdminToken, "must be at least %d characters (a random value, such as 32 random bytes in base64)", minAdminToken)
		} else {
			c.AdminToken = s
		}
	}

	durations := []struct {
		name string
		dst  *time.Duration
		def  time.Duration
		min  time.Duration
		max  time.Duration
	}{
		{EnvLaunchTTL, &c.LaunchTTL, 10 * time.Minute, time.Minute, time.Hour},
		{EnvSessionTTL, &c.SessionTTL, 8 * time.Hour, 5 * time.Minute, 24 * time.Hour},
		{EnvIdleTimeout, &c.IdleTimeout, 30 * time.Minute, 5 * time.Minute, 24 * time.Hour},
		{EnvDiscoveryTTL, &c.DiscoveryTTL, time.Hour, 0, 24 * time.Hour},
		{EnvCDSBudget, &c.CDSBudget, 2 * time.Second, 100 * time.Millisecond, 30 * time.Second},
		{EnvLabLookback, &c.LabLookback, 365 * 24 * time.Hour, 24 * time.Hour, 20 * 365 * 24 * time.Hour},
	}
	for _, d := range durations {
		*d.dst = d.def
		s := strings.TrimSpace(getenv(d.name))
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			fail(d.name, "not a duration (like 10m or 2s): %q", s)
			continue
		}
		if v < d.min || v > d.max {
			fail(d.name, "%v is outside %v to %v", v, d.min, d.max)
			continue
		}
		*d.dst = v
	}

	for _, o := range strings.Fields(getenv(EnvFrameAncestors)) {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname()))) {
			fail(EnvFrameAncestors, "%q is not an https origin", o)
			continue
		}
		c.FrameAncestors = append(c.FrameAncestors, u.Scheme+"://"+u.Host)
	}
	c.CDSLanguage = message.English
	if s := strings.TrimSpace(getenv(EnvCDSLanguage)); s != "" {
		if l, ok := message.ParseLang(s); ok {
			c.CDSLanguage = l
		} else {
			fail(EnvCDSLanguage, "want one of %v, got %q", message.Langs, s)
		}
	}
	c.SandboxData = getenv(EnvSandboxData)
	return c, errors.Join(errs...)
}

// minAdminToken is the shortest admin token accepted.
const minAdminToken = 32

// URL returns the absolute URL of path below the base URL ("/callback").
func (c *Config) URL(path string) string {
	if c.BaseURL == nil {
		return path
	}
	return c.BaseURL.String() + path
}

// RedirectURI is the one redirect URI to register in the EHRs.
func (c *Config) RedirectURI() string { return c.URL("/callback") }

// LaunchURI is the launch URI to register in the EHRs.
func (c *Config) LaunchURI() string { return c.URL("/launch") }

// AppURL is where the callback sends the browser: the calculate function's UI.
func (c *Config) AppURL() string { return c.URL("/calculate/") }

// ErrSecretMissing means a registration names a secret this function was not
// given.
var ErrSecretMissing = errors.New("config: secret not configured")

// SecretVariable returns the environment variable that holds the secret
// named name: SMARTCALC_SECRET_ + name upper-cased, other characters as _.
func SecretVariable(name string) string {
	return EnvSecretPrefix + strings.ToUpper(strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name))
}

// Secret returns the value of the secret named name, as Terraform exposes it
// to the functions that need it. The error names the variable, never a value.
func (c *Config) Secret(name string) (string, error) {
	v := c.getenv(SecretVariable(name))
	if v == "" {
		return "", fmt.Errorf("%w: %s (set %s)", ErrSecretMissing, name, SecretVariable(name))
	}
	return v, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("must decode to 32 bytes, got %d", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

// IsLoopback reports whether host names this machine: where plain http is
// allowed, for local runs and tests.
func IsLoopback(host string) bool {
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasPrefix(host, "127.")
}
