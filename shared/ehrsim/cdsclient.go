package ehrsim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// CDS Hooks client defaults.
const (
	// DefaultCDSServiceClientID is the OAuth client id the CDS service is
	// registered under at the sandbox: fhirAuthorization.subject.
	DefaultCDSServiceClientID = "smartcalc-cds"
	// DefaultCDSScope is what the sandbox grants a CDS service's
	// fhirAuthorization token: read and search in the patient's compartment.
	DefaultCDSScope = "patient/Patient.rs patient/Observation.rs patient/Condition.rs patient/MedicationRequest.rs patient/Medication.rs " +
		"patient/MedicationStatement.rs patient/Procedure.rs patient/Encounter.rs"
	cdsTokenLifetime = 5 * time.Minute
	cdsJWTLifetime   = 5 * time.Minute
	// CDSPrefetchHeader marks the FHIR requests the sandbox makes itself to
	// fill a hook's prefetch, so tests watching OnFHIRRequest can tell them
	// from the CDS service's own reads.
	CDSPrefetchHeader = "X-Ehrsim-Cds-Prefetch"
)

// CDSClientConfig configures the sandbox's CDS Hooks client.
type CDSClientConfig struct {
	// ServiceBase is the CDS service's base URL: discovery is
	// ServiceBase+"/cds-services" (for SMART Calc, <base>/calculate).
	ServiceBase string
	// ServiceClientID is fhirAuthorization.subject; default
	// DefaultCDSServiceClientID.
	ServiceClientID string
	// Scope is granted to the fhirAuthorization token; default
	// DefaultCDSScope.
	Scope string
	// Key signs the client's JWTs: an ECDSA P-384 key (ES384) or an RSA key
	// (RS384). A P-384 key is generated when nil.
	Key crypto.Signer
	// HTTPClient calls the CDS service; default a 30 s timeout.
	HTTPClient *http.Client
}

// CDSClient is the sandbox acting as a CDS Hooks client, the way an EHR
// does: it signs a JWT per call (ES384 or RS384, kid and jku headers, iss,
// aud = the service URL, exp, iat, jti) with a key it publishes at
// JWKSURL, sends the hook's context with fhirServer and a real access token
// limited to the patient (fhirAuthorization), and fills the prefetch by
// running the service's templates against its own FHIR server. It serves
// the JWK Set and a page that runs a hook and shows the cards.
type CDSClient struct {
	s      *Server
	cfg    CDSClientConfig
	alg    jose.SignatureAlgorithm
	kid    string
	jwks   jose.JSONWebKeySet
	client *http.Client

	mu        sync.Mutex
	discovery *CDSDiscovery
}

// NewCDSClient returns the sandbox's CDS Hooks client for the service at
// cfg.ServiceBase.
func (s *Server) NewCDSClient(cfg CDSClientConfig) (*CDSClient, error) {
	u, err := url.Parse(cfg.ServiceBase)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ehrsim: CDS ServiceBase %q must be an absolute http(s) URL", cfg.ServiceBase)
	}
	cfg.ServiceBase = strings.TrimRight(cfg.ServiceBase, "/")
	if cfg.ServiceClientID == "" {
		cfg.ServiceClientID = DefaultCDSServiceClientID
	}
	if cfg.Scope == "" {
		cfg.Scope = DefaultCDSScope
	}
	if cfg.Key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("ehrsim: CDS key: %w", err)
		}
		cfg.Key = k
	}
	c := &CDSClient{s: s, cfg: cfg, client: cfg.HTTPClient}
	switch k := cfg.Key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P384() {
			return nil, errors.New("ehrsim: CDS key: ECDSA keys must be on P-384 (ES384)")
		}
		c.alg = jose.ES384
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("ehrsim: CDS key: RSA keys must have at least 2048 bits")
		}
		c.alg = jose.RS384
	default:
		return nil, errors.New("ehrsim: CDS key must be *ecdsa.PrivateKey (P-384) or *rsa.PrivateKey")
	}
	pub := jose.JSONWebKey{Key: cfg.Key.Public(), Algorithm: string(c.alg), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("ehrsim: CDS key: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	c.kid, c.jwks = pub.KeyID, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}
	if c.client == nil {
		c.client = &http.Client{Timeout: 30 * time.Second}
	}
	return c, nil
}

// Issuer is the iss of the client's JWTs: the sandbox's base URL.
func (c *CDSClient) Issuer() string { return c.s.baseURL }

// JWKSURL is where the client publishes its public key (the jku header).
func (c *CDSClient) JWKSURL() string { return c.s.baseURL + "/cds-jwks" }

// PageURL is the page that runs a hook for a patient and shows the cards.
func (c *CDSClient) PageURL() string { return c.s.baseURL + "/cds" }

// ServiceURL is the URL of service id: its JWTs' aud.
func (c *CDSClient) ServiceURL(id string) string { return c.cfg.ServiceBase + "/cds-services/" + id }

// ServeHTTP serves the client's routes under the sandbox's base path:
// /cds-jwks (its JWK Set) and /cds (the hook page). Mount it at
// <base>/cds and <base>/cds-jwks.
func (c *CDSClient) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, c.s.prefix)
	switch p {
	case "/cds-jwks":
		writeDiscovery(w, r, c.jwks)
	case "/cds":
		c.servePage(w, r)
	default:
		c.s.errorPage(w, http.StatusNotFound, "Not found", "The sandbox EHR has no page at this address.")
	}
}

// CDSDiscovery is a CDS service's discovery document.
type CDSDiscovery struct {
	Services []CDSService `json:"services"`
}

// CDSService is one discovered service.
type CDSService struct {
	Hook        string            `json:"hook"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	ID          string            `json:"id"`
	Prefetch    map[string]string `json:"prefetch"`
}

// Discover fetches the discovery document, signed like every call, and
// caches it for later calls.
func (c *CDSClient) Discover(ctx context.Context) (*CDSDiscovery, error) {
	u := c.cfg.ServiceBase + "/cds-services"
	jwtStr, err := c.SignJWT(u, nil, nil)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("ehrsim: cds discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+jwtStr)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ehrsim: cds discovery: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ehrsim: cds discovery: HTTP %d", resp.StatusCode)
	}
	var d CDSDiscovery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("ehrsim: cds discovery: %w", err)
	}
	c.mu.Lock()
	c.discovery = &d
	c.mu.Unlock()
	return &d, nil
}

func (c *CDSClient) service(ctx context.Context, hook, id string) (*CDSService, error) {
	c.mu.Lock()
	d := c.discovery
	c.mu.Unlock()
	if d == nil {
		var err error
		if d, err = c.Discover(ctx); err != nil {
			return nil, err
		}
	}
	for i := range d.Services {
		sv := &d.Services[i]
		if (id == "" || sv.ID == id) && (hook == "" || sv.Hook == hook) {
			return sv, nil
		}
	}
	return nil, fmt.Errorf("ehrsim: the CDS service offers no service for hook %q (id %q)", hook, id)
}

// SignJWT signs the client's authentication JWT for the endpoint aud.
// edit, when not nil, may change the claims first, and key, when not nil,
// signs instead of the client's key (tests of refused tokens).
func (c *CDSClient) SignJWT(aud string, edit func(claims map[string]any), key crypto.Signer) (string, error) {
	now := c.s.cfg.Now()
	claims := map[string]any{
		"iss": c.Issuer(),
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(cdsJWTLifetime).Unix(),
		"jti": randomToken(),
	}
	if c.s.cfg.Tenant != "" {
		claims["tenant"] = c.s.cfg.Tenant
	}
	if edit != nil {
		edit(claims)
	}
	alg := c.alg
	if key == nil {
		key = c.cfg.Key
	} else if _, ok := key.(*rsa.PrivateKey); ok {
		alg = jose.RS384
	} else {
		alg = jose.ES384
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", c.kid).WithHeader("jku", c.JWKSURL())
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("ehrsim: cds jwt: %w", err)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// CDSCall is one hook call.
type CDSCall struct {
	Hook      string // patient-view, order-select or order-sign
	ServiceID string // default: the discovered service for Hook
	Patient   string
	// Encounter defaults to the patient's in-progress encounter.
	Encounter string
	// DraftOrders are the order hooks' draft resources
	// (see DraftMedicationRequest); Selections default to all of them.
	DraftOrders []json.RawMessage
	Selections  []string
	// NoPrefetch sends no prefetch; PrefetchKeys, when not nil, fills only
	// those keys; otherwise every template is filled.
	NoPrefetch   bool
	PrefetchKeys []string
	// NoFHIRAccess omits fhirServer and fhirAuthorization.
	NoFHIRAccess bool
	// Faults are carried by the fhirAuthorization token (see Faults), for
	// example "fhir-slow:5s": the CDS service's own reads then misbehave.
	Faults []string
	// EditClaims and SignWith tamper with the JWT; Bearer, when set, is
	// sent as is instead of a fresh JWT (replays).
	EditClaims func(map[string]any)
	SignWith   crypto.Signer
	Bearer     string
}

// CDSCard is a card as the client reads it.
type CDSCard struct {
	UUID      string `json:"uuid"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail"`
	Indicator string `json:"indicator"`
	Source    struct {
		Label string `json:"label"`
		URL   string `json:"url"`
	} `json:"source"`
	Links []struct {
		Label      string `json:"label"`
		URL        string `json:"url"`
		Type       string `json:"type"`
		AppContext string `json:"appContext"`
	} `json:"links"`
	Suggestions []json.RawMessage `json:"suggestions"`
}

// CDSResult is the service's answer.
type CDSResult struct {
	Status       int
	Cards        []CDSCard
	Body         []byte
	JWT          string        // the JWT sent (for replay tests)
	Latency      time.Duration // from sending the call to reading the answer
	PrefetchKeys []string      // the keys sent
	Request      []byte        // the JSON body sent
}

// Call runs one hook: it discovers the service (once), fills the prefetch,
// lends a patient-scoped access token, signs the JWT and posts the call.
// The access token is revoked when the answer has arrived, as CDS Hooks
// recommends.
func (c *CDSClient) Call(ctx context.Context, call CDSCall) (*CDSResult, error) {
	if c.s.data.get("Patient", call.Patient) == nil {
		return nil, fmt.Errorf("ehrsim: no patient %q", call.Patient)
	}
	sv, err := c.service(ctx, call.Hook, call.ServiceID)
	if err != nil {
		return nil, err
	}
	faults, err := parseFaults(call.Faults, c.s.cfg.FaultDelay)
	if err != nil {
		return nil, fmt.Errorf("ehrsim: %w", err)
	}
	enc := call.Encounter
	if enc == "" {
		enc = c.s.currentEncounter(call.Patient)
	}
	hookCtx := map[string]any{"userId": "Practitioner/" + UserID, "patientId": call.Patient}
	if enc != "" {
		hookCtx["encounterId"] = enc
	}
	if call.Hook == "order-select" || call.Hook == "order-sign" {
		entries := make([]map[string]any, 0, len(call.DraftOrders))
		var ids []string
		for _, d := range call.DraftOrders {
			entries = append(entries, map[string]any{"resource": d})
			var h struct{ ResourceType, ID string }
			if json.Unmarshal(d, &h) == nil && h.ID != "" {
				ids = append(ids, h.ResourceType+"/"+h.ID)
			}
		}
		hookCtx["draftOrders"] = map[string]any{"resourceType": "Bundle", "type": "collection", "entry": entries}
		if call.Hook == "order-select" {
			sel := call.Selections
			if sel == nil {
				sel = ids
			}
			hookCtx["selections"] = sel
		}
	}
	body := map[string]any{
		"hook":         call.Hook,
		"hookInstance": uuid(),
		"context":      hookCtx,
	}
	now := c.s.cfg.Now()
	a := &authorization{site: c.s.sites[0], clientID: c.cfg.ServiceClientID, scopes: strings.Fields(c.cfg.Scope), patient: call.Patient,
		encounter: enc, user: UserID, faults: faults}
	var revoke []string
	defer func() {
		c.s.mu.Lock()
		for _, k := range revoke {
			delete(c.s.access, k)
		}
		c.s.mu.Unlock()
	}()
	if !call.NoFHIRAccess {
		tok := c.s.issueAccess(a, now, cdsTokenLifetime)
		revoke = append(revoke, hashKey(tok))
		body["fhirServer"] = c.s.fhirBase
		body["fhirAuthorization"] = map[string]any{
			"access_token": tok, "token_type": "Bearer", "expires_in": int(cdsTokenLifetime / time.Second),
			"scope": c.cfg.Scope, "subject": c.cfg.ServiceClientID, "patient": call.Patient,
		}
	}
	res := &CDSResult{}
	if !call.NoPrefetch && len(sv.Prefetch) > 0 {
		internal := *a
		internal.faults = faultSet{} // the EHR's own prefetch is not what is slow
		tok := c.s.issueAccess(&internal, now, cdsTokenLifetime)
		revoke = append(revoke, hashKey(tok))
		pf := map[string]json.RawMessage{}
		for key, tmpl := range sv.Prefetch {
			if call.PrefetchKeys != nil && !slices.Contains(call.PrefetchKeys, key) {
				continue
			}
			v, ok := c.prefetch(ctx, tmpl, hookCtx, tok)
			if ok {
				pf[key] = v
				res.PrefetchKeys = append(res.PrefetchKeys, key)
			}
		}
		sort.Strings(res.PrefetchKeys)
		body["prefetch"] = pf
	}
	res.JWT = call.Bearer
	if res.JWT == "" {
		if res.JWT, err = c.SignJWT(c.ServiceURL(sv.ID), call.EditClaims, call.SignWith); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("ehrsim: cds call: %w", err)
	}
	res.Request = b
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ServiceURL(sv.ID), bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("ehrsim: cds call: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+res.JWT)
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ehrsim: cds call: %w", err)
	}
	res.Body, err = io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	res.Latency = time.Since(start)
	res.Status = resp.StatusCode
	if err != nil {
		return res, fmt.Errorf("ehrsim: cds call: reading the answer: %w", err)
	}
	if res.Status == http.StatusOK {
		var out struct {
			Cards []CDSCard `json:"cards"`
		}
		if err := json.Unmarshal(res.Body, &out); err != nil {
			return res, fmt.Errorf("ehrsim: cds call: the answer is not a cards object: %w", err)
		}
		res.Cards = out.Cards
	}
	return res, nil
}

// Feedback posts a feedback body to service id's feedback endpoint and
// returns the HTTP status.
func (c *CDSClient) Feedback(ctx context.Context, id string, feedback any) (int, error) {
	u := c.ServiceURL(id) + "/feedback"
	tok, err := c.SignJWT(u, nil, nil)
	if err != nil {
		return 0, err
	}
	b, err := json.Marshal(feedback)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// issueAccess stores an access token for a, as the token endpoint would.
func (s *Server) issueAccess(a *authorization, now time.Time, life time.Duration) string {
	tok := randomToken()
	s.mu.Lock()
	s.sweep(now)
	s.access[hashKey(tok)] = &issuedToken{a: a, expires: now.Add(life)}
	s.mu.Unlock()
	return tok
}

var prefetchToken = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// prefetch resolves one template against the hook context and runs it
// against the sandbox's own FHIR server. ok is false when the template
// uses a token the sandbox cannot fill: the key is then omitted, as CDS
// Hooks asks. A read that finds nothing is null; a failed search is the
// server's OperationOutcome.
func (c *CDSClient) prefetch(ctx context.Context, tmpl string, hookCtx map[string]any, tok string) (json.RawMessage, bool) {
	ok := true
	rel := prefetchToken.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := strings.TrimSpace(m[2 : len(m)-2])
		var v string
		switch name {
		case "context.patientId", "userPatientId":
			v, _ = hookCtx["patientId"].(string)
		case "context.encounterId":
			v, _ = hookCtx["encounterId"].(string)
		case "context.userId":
			v, _ = hookCtx["userId"].(string)
		case "userPractitionerId":
			v = UserID
		}
		if v == "" {
			ok = false
		}
		return url.QueryEscape(v)
	})
	if !ok {
		return nil, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.s.fhirBase+"/"+strings.TrimPrefix(rel, "/"), nil)
	if err != nil {
		return nil, false
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set(CDSPrefetchHeader, "1")
	w := &bufferWriter{header: http.Header{}}
	c.s.ServeHTTP(w, req)
	switch {
	case w.status == http.StatusOK:
		return w.body.Bytes(), true
	case w.status == http.StatusNotFound && !strings.Contains(rel, "?"):
		return json.RawMessage("null"), true
	}
	return w.body.Bytes(), true
}

// bufferWriter is an in-process http.ResponseWriter.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }
func (w *bufferWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *bufferWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

// uuid returns a random version 4 UUID (hookInstance).
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// DraftMedicationRequest returns a draft MedicationRequest for the order
// hooks: an RxNorm-coded drug ordered for patient.
func DraftMedicationRequest(id, patient, rxnorm, display string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "MedicationRequest",
		"id":           id,
		"status":       "draft",
		"intent":       "order",
		"subject":      map[string]string{"reference": "Patient/" + patient},
		"medicationCodeableConcept": map[string]any{
			"coding": []map[string]string{{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm, "display": display}},
			"text":   display,
		},
	})
	return b
}
