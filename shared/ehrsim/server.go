package ehrsim

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client types a registered app may have.
const (
	ClientPublic        = "public"              // client_id in the body, no secret
	ClientSecretBasic   = "client_secret_basic" // HTTP Basic client_id:secret
	ClientPrivateKeyJWT = "private_key_jwt"     // signed JWT assertion (ES384 or RS384)
)

// UserID is the Practitioner every authorization is granted to: the sandbox
// approves at once, as this clinician, without a login page. The id_token's
// fhirUser is <FHIR base>/Practitioner/<UserID>.
const UserID = "dr-chen"

// Config configures a Server. BaseURL is required.
type Config struct {
	// BaseURL is the absolute URL the sandbox is mounted at, for example
	// "http://127.0.0.1:8080/ehr". The FHIR base, which is also the iss and
	// the id_token issuer, is BaseURL+"/fhir" unless FHIRBaseURL is set.
	BaseURL string
	// FHIRBaseURL, when set, is the FHIR base (and id_token issuer) of the
	// default profile when its FHIR server is reached on another address (a
	// listener of its own, such as a weak one in a test) serving the same
	// Server: its path must be BaseURL's path + "/fhir". Authorization, the
	// EHR pages and the other profiles stay at BaseURL.
	FHIRBaseURL string
	// AppLaunchURL is the app's launch URI that /launch redirects to, for
	// example "http://127.0.0.1:8080/launch".
	AppLaunchURL string
	// Clients are the registered apps.
	Clients []Client
	// DataDir optionally names a folder of FHIR Bundles (*.json) loaded in
	// addition to the shipped patients (SMARTCALC_SANDBOX_DATA).
	DataDir string
	// AutoPickPatient makes a standalone launch pick this patient without
	// showing the picker page (for tests). Empty shows the picker.
	AutoPickPatient string
	// Tenant is returned as the token response's tenant. Default "ehrsim".
	Tenant string
	// SigningKey signs id_tokens (RS256). A 2048-bit key is generated when nil.
	SigningKey *rsa.PrivateKey
	// AccessTokenLifetime is the access token's expires_in. Default 1 hour.
	AccessTokenLifetime time.Duration
	// FaultDelay is how long token-slow and fhir-slow wait when the fault
	// names no duration. Default 3 seconds.
	FaultDelay time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Sleep waits for the slow faults; it must return early with the
	// context's error. Default: a timer that honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// HTTPClient fetches private_key_jwt clients' JWKS URLs. Default: a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// OnFHIRRequest, when set, is called with every request to /fhir/...
	// (discovery and metadata included) before it is answered. Tests use it
	// to observe what the app asked for.
	OnFHIRRequest func(*http.Request)
}

// Client is an app registered with the sandbox.
type Client struct {
	ID   string
	Type string // ClientPublic, ClientSecretBasic or ClientPrivateKeyJWT
	// Secret is the client_secret_basic secret.
	Secret string
	// PublicKey verifies private_key_jwt assertions (*rsa.PublicKey for
	// RS384, *ecdsa.PublicKey on P-384 for ES384). KeyID, when set, must
	// equal the assertion's kid. Alternatively give JWKS (a JSON Web Key
	// Set document) or JWKSURL (fetched when needed; a jku header must
	// equal it).
	PublicKey crypto.PublicKey
	KeyID     string
	JWKS      []byte
	JWKSURL   string
	// RedirectURIs are compared exactly with the request's redirect_uri.
	RedirectURIs []string
	// Scope lists the scopes this client may be granted, space-separated.
	// Empty allows any scope the server supports. A resource scope here
	// also allows narrower ones (patient/*.rs allows patient/Observation.rs).
	// Under the Epic profile it is also what the client is granted,
	// whatever it requests (its registered APIs).
	Scope string
	// Profile is the profile (EHR) the client is registered with:
	// ProfileDefault (or ""), ProfileOracle or ProfileEpic. A client is
	// known only to the authorize and token endpoints of its profile.
	Profile string
	// SMARTVersion is the SMART version the client was registered with,
	// "v1" or "v2"; the Oracle profile grants only scopes of that syntax.
	// Empty accepts both.
	SMARTVersion string

	jwks *jose.JSONWebKeySet
}

// PatientSummary describes one patient for the EHR page and tests.
type PatientSummary struct {
	ID          string
	Name        string
	BirthDate   string // as stored, after the date shift
	Gender      string
	MRN         string
	Description string // what the sample exercises; empty for loaded data
	Source      string // "shipped" or the DataDir file name
}

// Server is the sandbox EHR. It is safe for concurrent use. The patient data
// is read-only after New; launches, codes and tokens live in memory.
type Server struct {
	cfg      Config
	prefix   string // BaseURL's path, without a trailing slash
	baseURL  string // BaseURL without a trailing slash
	fhirBase string // the default profile's FHIR base
	sites    []*site
	data     *dataset
	clients  map[string]*Client
	signer   jose.Signer
	jwks     jose.JSONWebKeySet
	client   *http.Client

	fhirRequests  atomic.Int64
	tokenRequests atomic.Int64

	mu        sync.Mutex
	launches  map[string]*launchContext // by hash of the launch token
	pending   map[string]*pendingAuth   // standalone picker, by hash of its id
	codes     map[string]*authCode      // by hash of the code
	access    map[string]*issuedToken   // by hash of the access token
	refresh   map[string]*issuedToken   // by hash of the refresh token
	jtis      map[string]time.Time      // client_id + jti -> expiry
	pages     map[string]*pageState     // by hash of the page token
	lastSweep time.Time
}

// New validates cfg, loads the shipped patients and the Bundles in
// cfg.DataDir, and returns a ready Server.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepContext
	}
	if cfg.FaultDelay <= 0 {
		cfg.FaultDelay = 3 * time.Second
	}
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = time.Hour
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "ehrsim"
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ehrsim: BaseURL %q must be an absolute http(s) URL without query or fragment", cfg.BaseURL)
	}
	s := &Server{
		cfg:      cfg,
		prefix:   strings.TrimSuffix(u.Path, "/"),
		baseURL:  strings.TrimSuffix(cfg.BaseURL, "/"),
		clients:  map[string]*Client{},
		launches: map[string]*launchContext{},
		pending:  map[string]*pendingAuth{},
		codes:    map[string]*authCode{},
		access:   map[string]*issuedToken{},
		refresh:  map[string]*issuedToken{},
		jtis:     map[string]time.Time{},
		pages:    map[string]*pageState{},
		client:   cfg.HTTPClient,
	}
	for _, p := range allProfiles {
		s.sites = append(s.sites, newSite(p, s.baseURL))
	}
	if cfg.FHIRBaseURL != "" {
		def := s.sites[0]
		f, err := url.Parse(cfg.FHIRBaseURL)
		if err != nil || (f.Scheme != "http" && f.Scheme != "https") || f.Host == "" || f.RawQuery != "" || f.Fragment != "" ||
			strings.TrimSuffix(f.Path, "/") != s.prefix+def.fhirPath {
			return nil, fmt.Errorf("ehrsim: FHIRBaseURL %q must be an absolute http(s) URL whose path is %q", cfg.FHIRBaseURL, s.prefix+def.fhirPath)
		}
		moved := strings.TrimSuffix(cfg.FHIRBaseURL, "/")
		if def.issuer == def.fhirBase {
			def.issuer = moved // the default profile's id_tokens are issued by its FHIR base
		}
		def.fhirBase = moved
	}
	s.fhirBase = s.sites[0].fhirBase
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.AppLaunchURL != "" {
		if a, err := url.Parse(cfg.AppLaunchURL); err != nil || a.Scheme == "" || a.Host == "" {
			return nil, fmt.Errorf("ehrsim: AppLaunchURL %q must be an absolute URL", cfg.AppLaunchURL)
		}
	}
	for i := range cfg.Clients {
		c := cfg.Clients[i]
		if c.Profile == "" {
			c.Profile = ProfileDefault
		}
		if err := c.validate(); err != nil {
			return nil, err
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("ehrsim: client %q registered twice", c.ID)
		}
		s.clients[c.ID] = &c
	}
	if err := s.initSigning(cfg.SigningKey); err != nil {
		return nil, err
	}
	s.data, err = loadData(cfg.DataDir, cfg.Now(), s.fhirBase)
	if err != nil {
		return nil, err
	}
	if cfg.AutoPickPatient != "" && s.data.get("Patient", cfg.AutoPickPatient) == nil {
		return nil, fmt.Errorf("ehrsim: AutoPickPatient %q is not a loaded patient", cfg.AutoPickPatient)
	}
	return s, nil
}

func (c *Client) validate() error {
	if c.ID == "" {
		return errors.New("ehrsim: a client has an empty ID")
	}
	if len(c.RedirectURIs) == 0 {
		return fmt.Errorf("ehrsim: client %q: RedirectURIs is empty", c.ID)
	}
	for _, r := range c.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("ehrsim: client %q: redirect URI %q must be absolute and without a fragment", c.ID, r)
		}
	}
	if _, err := profileNamed(c.Profile); err != nil {
		return fmt.Errorf("ehrsim: client %q: %v", c.ID, err)
	}
	if c.SMARTVersion != "" && c.SMARTVersion != "v1" && c.SMARTVersion != "v2" {
		return fmt.Errorf("ehrsim: client %q: SMARTVersion %q must be v1, v2 or empty", c.ID, c.SMARTVersion)
	}
	switch c.Type {
	case ClientPublic:
	case ClientSecretBasic:
		if c.Secret == "" {
			return fmt.Errorf("ehrsim: client %q: client_secret_basic needs a Secret", c.ID)
		}
	case ClientPrivateKeyJWT:
		if c.PublicKey == nil && len(c.JWKS) == 0 && c.JWKSURL == "" {
			return fmt.Errorf("ehrsim: client %q: private_key_jwt needs PublicKey, JWKS or JWKSURL", c.ID)
		}
		if len(c.JWKS) > 0 {
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(c.JWKS, &set); err != nil {
				return fmt.Errorf("ehrsim: client %q: JWKS: %w", c.ID, err)
			}
			c.jwks = &set
		}
	default:
		return fmt.Errorf("ehrsim: client %q: unknown Type %q (want %s, %s or %s)", c.ID, c.Type, ClientPublic, ClientSecretBasic, ClientPrivateKeyJWT)
	}
	return nil
}

// FHIRBase returns the default profile's FHIR base URL, which is also the
// iss of its EHR launches and the issuer of its id_tokens.
func (s *Server) FHIRBase() string { return s.fhirBase }

// TokenURL returns the default profile's token endpoint, the aud of
// private_key_jwt assertions.
func (s *Server) TokenURL() string { return s.sites[0].tokenURL }

// AuthorizeURL returns the default profile's authorization endpoint.
func (s *Server) AuthorizeURL() string { return s.sites[0].authorizeURL }

// Endpoints returns the URLs of the named profile's server (see Profiles).
func (s *Server) Endpoints(profile string) (Endpoints, bool) {
	st := s.site(profile)
	if st == nil {
		return Endpoints{}, false
	}
	return st.endpoints(), true
}

func (s *Server) site(profile string) *site {
	if profile == "" {
		profile = ProfileDefault
	}
	for _, st := range s.sites {
		if st.name == profile {
			return st
		}
	}
	return nil
}

// LaunchURL returns the sandbox URL that starts an EHR launch of the app into
// patientID with the given faults (see Faults), as the EHR page's links do.
func (s *Server) LaunchURL(patientID string, faults ...string) string {
	return s.ProfileLaunchURL(ProfileDefault, patientID, faults...)
}

// ProfileLaunchURL is LaunchURL through the named profile's server.
func (s *Server) ProfileLaunchURL(profile, patientID string, faults ...string) string {
	q := url.Values{"patient": {patientID}}
	if profile != "" && profile != ProfileDefault {
		q.Set("profile", profile)
	}
	if len(faults) > 0 {
		q.Set("fault", strings.Join(faults, ","))
	}
	return s.baseURL + "/launch?" + q.Encode()
}

// Patients lists the loaded patients: the shipped ones first, in file order,
// then those from DataDir.
func (s *Server) Patients() []PatientSummary {
	out := make([]PatientSummary, 0, len(s.data.patients))
	for _, p := range s.data.patients {
		out = append(out, summarize(p))
	}
	return out
}

// FHIRRequests counts the requests to /fhir/... so far.
func (s *Server) FHIRRequests() int64 { return s.fhirRequests.Load() }

// TokenRequests counts the requests to the token endpoint so far.
func (s *Server) TokenRequests() int64 { return s.tokenRequests.Load() }

// ServeHTTP routes requests under the BaseURL's path. It accepts paths with
// that prefix (a mux entry such as "/ehr/") and, for http.StripPrefix, paths
// without it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if s.prefix != "" && (p == s.prefix || strings.HasPrefix(p, s.prefix+"/")) {
		p = strings.TrimPrefix(p, s.prefix)
	}
	if p == "" {
		p = "/"
	}
	for _, st := range s.sites {
		switch {
		case p == st.fhirPath || strings.HasPrefix(p, st.fhirPath+"/"):
			s.serveFHIR(w, r, st, strings.TrimPrefix(p, st.fhirPath))
			return
		case p == st.authorizePath:
			s.serveAuthorize(w, r, st)
			return
		case p == st.tokenPath:
			s.serveToken(w, r, st)
			return
		case p == st.jwksPath:
			s.serveJWKS(w, r)
			return
		case st.issuerPath != st.fhirPath && p == strings.TrimSuffix(st.issuerPath, "/")+"/.well-known/openid-configuration":
			s.serveOpenIDConfiguration(w, r, st)
			return
		}
	}
	switch {
	case p == "/":
		s.serveHome(w, r)
	case p == "/launch":
		s.serveLaunch(w, r)
	case p == "/embed":
		s.serveEmbed(w, r)
	case p == "/authorize/pick":
		s.servePick(w, r)
	case p == "/smart-style.json":
		s.serveStyle(w, r)
	default:
		s.errorPage(w, http.StatusNotFound, "Not found", "The sandbox EHR has no page at this address.")
	}
}

// sweep drops expired launches, codes, tokens, assertion ids and page
// tokens. Callers hold s.mu. It runs at most once a minute.
func (s *Server) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	for k, v := range s.launches {
		if now.After(v.expires) {
			delete(s.launches, k)
		}
	}
	for k, v := range s.pending {
		if now.After(v.expires) {
			delete(s.pending, k)
		}
	}
	for k, v := range s.codes {
		// Keep used codes a while so that a replay is recognised as one.
		if now.Sub(v.issued) > codeMemory {
			delete(s.codes, k)
		}
	}
	for k, v := range s.access {
		if now.After(v.expires) {
			delete(s.access, k)
		}
	}
	for k, v := range s.refresh {
		if now.After(v.expires) {
			delete(s.refresh, k)
		}
	}
	for k, v := range s.jtis {
		if now.After(v) {
			delete(s.jtis, k)
		}
	}
	for k, v := range s.pages {
		if now.After(v.expires) {
			delete(s.pages, k)
		}
	}
}

// randomToken returns 256 random bits, base64url without padding.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("ehrsim: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashKey is the map key for a secret value, so that the maps never hold
// tokens in the clear.
func hashKey(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
