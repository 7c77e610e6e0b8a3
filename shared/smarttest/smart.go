package smarttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client authentication types an AuthServer client may use.
const (
	AuthPublic            = "public"
	AuthClientSecretBasic = "client_secret_basic"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// AuthServer is a fake SMART App Launch 2.x authorization server for
// tests of the SMART client (the sandbox EHR in shared/ehrsim is the full
// one). Like go-oidc's oidctest it serves discovery, an OpenID
// configuration and JWKS; its authorize and token endpoints enforce what a
// strict EHR does: registered clients and exact redirect URIs, aud, S256
// PKCE, single-use codes that expire after CodeLifetime, client
// authentication of all three kinds (secret, assertion signature, kid, iss,
// sub, aud, exp ≤ 5 min, unique jti), and refresh tokens. It records every
// request so that tests can assert exactly what the client sent.
//
// Paths: /fhir (the FHIR base and iss), /fhir/.well-known/smart-configuration,
// /authorize, /token, /jwks, and {IDTokenIssuer}/.well-known/openid-configuration.
//
// Set the exported fields before the first request; use the methods
// afterwards.
type AuthServer struct {
	*httptest.Server
	// FHIRBase is the iss: URL + "/fhir".
	FHIRBase string
	// IDTokenIssuer is the iss of id_tokens; default FHIRBase.
	IDTokenIssuer string
	// Key and KeyID sign id_tokens (RS256).
	Key   *rsa.PrivateKey
	KeyID string
	// Now is the server's clock; default time.Now.
	Now func() time.Time
	// CodeLifetime is how long a code lives; default 60 s.
	CodeLifetime time.Duration
	// RotateRefreshTokens issues a new refresh token on every refresh and
	// invalidates the old one.
	RotateRefreshTokens bool
	// Standalone is the context of standalone launches (launch/patient).
	Standalone LaunchContext

	mu        sync.Mutex
	discovery map[string]any
	clients   map[string]Client
	launches  map[string]LaunchContext
	codes     map[string]*grant
	lastNonce atomic.Value // string: the OIDC nonce of the latest authorization request
	refresh   map[string]*grant
	jtis      map[string]bool
	requests  []Request
	hits      map[string]int
	tokenHook func(Request) (status int, body any, ok bool)
	respHook  func(Request, map[string]any)
}

// Client is a client registered with an AuthServer.
type Client struct {
	ID string
	// Auth is AuthPublic, AuthClientSecretBasic or AuthPrivateKeyJWT.
	Auth   string
	Secret string
	// PublicKey and KeyID verify private_key_jwt assertions.
	PublicKey crypto.PublicKey
	KeyID     string
	// RedirectURIs are the exact registered redirect URIs.
	RedirectURIs []string
}

// LaunchContext is the context a launch grants.
type LaunchContext struct {
	Patient, Encounter string
	// FHIRUser, if set, makes the server issue an id_token when openid and
	// fhirUser (or profile) are granted.
	FHIRUser string
	// NeedPatientBanner is sent when not nil.
	NeedPatientBanner *bool
	SmartStyleURL     string
	Tenant            string
	// GrantScope, if set, is the granted scope (a downgrade); otherwise the
	// requested scope is granted.
	GrantScope string
}

// Request is one request the server received.
type Request struct {
	Method, Path string
	Header       http.Header
	Form         url.Values // query for GET, body for POST
}

type grant struct {
	clientID, redirectURI, challenge, scope, nonce string
	ctx                                            LaunchContext
	issued                                         time.Time
	used                                           bool
	refreshToken                                   string
}

// NewAuthServer starts an AuthServer on a loopback http address, closed
// when the test ends.
func NewAuthServer(t testing.TB) *AuthServer {
	t.Helper()
	s := &AuthServer{
		Key:        sharedRSAKey(),
		KeyID:      "id-key-1",
		clients:    map[string]Client{},
		launches:   map[string]LaunchContext{},
		codes:      map[string]*grant{},
		refresh:    map[string]*grant{},
		jtis:       map[string]bool{},
		hits:       map[string]int{},
		Standalone: LaunchContext{Patient: "standalone-patient"},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	s.FHIRBase = s.URL + "/fhir"
	s.discovery = map[string]any{
		"issuer":                                s.FHIRBase,
		"jwks_uri":                              s.URL + "/jwks",
		"authorization_endpoint":                s.URL + "/authorize",
		"token_endpoint":                        s.URL + "/token",
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES384", "RS384"},
		"scopes_supported": []string{"openid", "fhirUser", "launch", "launch/patient", "online_access", "offline_access"},
		"capabilities": []string{"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
			"client-confidential-asymmetric", "sso-openid-connect", "context-ehr-patient", "context-standalone-patient",
			"permission-patient", "permission-v2", "permission-offline", "permission-online"},
	}
	return s
}

// TokenURL is the token endpoint.
func (s *AuthServer) TokenURL() string { return s.URL + "/token" }

// AddClient registers c.
func (s *AuthServer) AddClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
}

// EditDiscovery lets edit change the discovery document (delete a field, set
// relative URLs, drop S256).
func (s *AuthServer) EditDiscovery(edit func(doc map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(s.discovery)
}

// NewLaunch registers an EHR launch with ctx and returns its launch
// parameter.
func (s *AuthServer) NewLaunch(ctx LaunchContext) string {
	id := random()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.launches[id] = ctx
	return id
}

// OnToken installs a hook that may answer a token request itself (ok =
// true) with status and a body: JSON, or form-encoded if body is a
// url.Values. The request is still recorded.
func (s *AuthServer) OnToken(hook func(Request) (status int, body any, ok bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenHook = hook
}

// EditTokenResponse installs a hook that edits successful token responses
// (drop patient, change token_type, replace id_token).
func (s *AuthServer) EditTokenResponse(edit func(req Request, resp map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respHook = edit
}

// Requests returns the requests received on path ("" for all), in order.
func (s *AuthServer) Requests(path string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Hits returns how many requests arrived on path.
func (s *AuthServer) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// IDToken signs claims as an id_token with the server's key.
func (s *AuthServer) IDToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	return SignJWT(t, s.Key, jose.RS256, s.KeyID, claims)
}

// IDTokenClaims returns the claims the server puts in an id_token for
// client and fhirUser, issued now, with the latest authorization request's
// nonce.
func (s *AuthServer) IDTokenClaims(clientID, fhirUser string) map[string]any {
	now := s.now()
	c := map[string]any{
		"iss":      s.idTokenIssuer(),
		"sub":      "user-" + fhirUser,
		"aud":      clientID,
		"iat":      now.Unix(),
		"exp":      now.Add(time.Hour).Unix(),
		"fhirUser": fhirUser,
	}
	// The nonce of the latest authorization request, so that a test's
	// forged or edited id_token fails for what it means to test.
	if n, _ := s.lastNonce.Load().(string); n != "" {
		c["nonce"] = n
	}
	return c
}

func (s *AuthServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *AuthServer) idTokenIssuer() string {
	if s.IDTokenIssuer != "" {
		return s.IDTokenIssuer
	}
	return s.FHIRBase
}

func random() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *AuthServer) serve(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		form = r.PostForm
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Form: form}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.hits[r.URL.Path]++
	idPath := strings.TrimPrefix(s.idTokenIssuer(), s.URL)
	s.mu.Unlock()

	switch p := r.URL.Path; {
	case p == "/fhir/.well-known/smart-configuration" && r.Method == http.MethodGet:
		s.mu.Lock()
		doc := maps.Clone(s.discovery)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, doc)
	case p == strings.TrimSuffix(idPath, "/")+"/.well-known/openid-configuration" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                s.idTokenIssuer(),
			"jwks_uri":                              s.URL + "/jwks",
			"authorization_endpoint":                s.URL + "/authorize",
			"token_endpoint":                        s.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	case p == "/jwks" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{PublicJWK(s.Key, s.KeyID, jose.RS256)}})
	case p == "/authorize" && r.Method == http.MethodGet:
		s.serveAuthorize(w, r)
	case p == "/token" && r.Method == http.MethodPost:
		s.serveToken(w, r, req)
	default:
		http.NotFound(w, r)
	}
}

// AuthorizeError is an authorize refusal (RFC 6749 §4.1.2.1).
type AuthorizeError struct {
	Code, Description string
	// Redirect reports whether the error may be sent to the redirect URI
	// (the client and redirect URI were valid).
	Redirect bool
}

func (e *AuthorizeError) Error() string {
	return fmt.Sprintf("smarttest: authorize: %s: %s", e.Code, e.Description)
}

// Authorize performs the authorize step for authorizeURL as if the user
// approved at once, without an HTTP round trip, and returns the code and
// the state to bring to the callback. It fails with *AuthorizeError.
func (s *AuthServer) Authorize(authorizeURL string) (code, state string, err error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	code, aerr := s.authorize(q)
	if aerr != nil {
		return "", q.Get("state"), aerr
	}
	return code, q.Get("state"), nil
}

func (s *AuthServer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	code, aerr := s.authorize(q)
	if aerr != nil && !aerr.Redirect {
		http.Error(w, aerr.Error(), http.StatusBadRequest)
		return
	}
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := url.Values{"state": {q.Get("state")}}
	if aerr != nil {
		v.Set("error", aerr.Code)
		v.Set("error_description", aerr.Description)
	} else {
		v.Set("code", code)
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *AuthServer) authorize(q url.Values) (string, *AuthorizeError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(redirect bool, code, format string, args ...any) (string, *AuthorizeError) {
		return "", &AuthorizeError{Code: code, Description: fmt.Sprintf(format, args...), Redirect: redirect}
	}
	c, ok := s.clients[q.Get("client_id")]
	if !ok {
		return fail(false, "unauthorized_client", "unknown client_id %q", q.Get("client_id"))
	}
	if !slices.Contains(c.RedirectURIs, q.Get("redirect_uri")) {
		return fail(false, "invalid_request", "redirect_uri %q is not registered", q.Get("redirect_uri"))
	}
	if q.Get("response_type") != "code" {
		return fail(true, "unsupported_response_type", "response_type must be code")
	}
	if q.Get("state") == "" {
		return fail(true, "invalid_request", "state required")
	}
	if q.Get("aud") != s.FHIRBase {
		return fail(true, "invalid_request", "Bad audience value %q. Expected %q", q.Get("aud"), s.FHIRBase)
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		return fail(true, "invalid_request", "Invalid code_challenge_method. Must be S256.")
	}
	scope := strings.Fields(q.Get("scope"))
	var ctx LaunchContext
	switch {
	case slices.Contains(scope, "launch"):
		l, ok := s.launches[q.Get("launch")]
		if !ok {
			return fail(true, "invalid_request", "launch:invalid-launch-code")
		}
		ctx = l
	case q.Get("launch") != "":
		return fail(true, "invalid_request", "launch parameter without the launch scope")
	case slices.Contains(scope, "launch/patient"):
		ctx = s.Standalone
	}
	granted := strings.Join(scope, " ")
	if ctx.GrantScope != "" {
		granted = ctx.GrantScope
	}
	code := random()
	s.codes[code] = &grant{
		clientID: c.ID, redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		scope: granted, ctx: ctx, issued: s.now(), nonce: q.Get("nonce"),
	}
	s.lastNonce.Store(q.Get("nonce"))
	return code, nil
}

func (s *AuthServer) serveToken(w http.ResponseWriter, r *http.Request, req Request) {
	s.mu.Lock()
	hook, edit := s.tokenHook, s.respHook
	s.mu.Unlock()
	if hook != nil {
		if status, body, ok := hook(req); ok {
			if form, isForm := body.(url.Values); isForm {
				w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				w.WriteHeader(status)
				w.Write([]byte(form.Encode()))
				return
			}
			writeJSON(w, status, body)
			return
		}
	}
	if mt := r.Header.Get("Content-Type"); mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	c, desc := s.authenticate(r, req.Form)
	if desc != "" {
		oauthError(w, http.StatusUnauthorized, "invalid_client", desc)
		return
	}
	s.mu.Lock()
	var g *grant
	switch req.Form.Get("grant_type") {
	case "authorization_code":
		g = s.codes[req.Form.Get("code")]
		switch {
		case g == nil:
			desc = "unknown code"
		case g.used:
			desc = "code already used"
		case s.now().Sub(g.issued) > s.codeLifetime():
			desc = "code expired"
		}
		if g != nil {
			g.used = true
		}
		switch {
		case desc != "":
		case g.clientID != c.ID:
			desc = "code issued to another client"
		case req.Form.Get("redirect_uri") != g.redirectURI:
			desc = "Invalid redirect_uri parameter"
		case req.Form.Get("code_verifier") == "":
			desc = "Missing code_verifier parameter"
		case challenge(req.Form.Get("code_verifier")) != g.challenge:
			desc = "Invalid grant or Invalid PKCE Verifier"
		}
	case "refresh_token":
		g = s.refresh[req.Form.Get("refresh_token")]
		switch {
		case g == nil:
			desc = "unknown or expired refresh token"
		case g.clientID != c.ID:
			desc = "refresh token issued to another client"
		}
	default:
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
		return
	}
	if desc != "" {
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant", desc)
		return
	}
	resp := map[string]any{
		"access_token": "at-" + random(),
		"token_type":   "Bearer",
		"expires_in":   3600,
		"scope":        g.scope,
	}
	granted := strings.Fields(g.scope)
	if req.Form.Get("grant_type") == "refresh_token" {
		if s.RotateRefreshTokens {
			delete(s.refresh, g.refreshToken)
			g.refreshToken = "rt-" + random()
			s.refresh[g.refreshToken] = g
			resp["refresh_token"] = g.refreshToken
		}
	} else {
		if slices.Contains(granted, "online_access") || slices.Contains(granted, "offline_access") {
			g.refreshToken = "rt-" + random()
			s.refresh[g.refreshToken] = g
			resp["refresh_token"] = g.refreshToken
		}
		if g.ctx.Patient != "" {
			resp["patient"] = g.ctx.Patient
		}
		if g.ctx.Encounter != "" {
			resp["encounter"] = g.ctx.Encounter
		}
		if g.ctx.NeedPatientBanner != nil {
			resp["need_patient_banner"] = *g.ctx.NeedPatientBanner
		}
		if g.ctx.SmartStyleURL != "" {
			resp["smart_style_url"] = g.ctx.SmartStyleURL
		}
		if g.ctx.Tenant != "" {
			resp["tenant"] = g.ctx.Tenant
		}
	}
	s.mu.Unlock()
	if g.ctx.FHIRUser != "" && slices.Contains(granted, "openid") &&
		(slices.Contains(granted, "fhirUser") || slices.Contains(granted, "profile")) &&
		req.Form.Get("grant_type") == "authorization_code" {
		claims := s.IDTokenClaims(c.ID, g.ctx.FHIRUser)
		delete(claims, "nonce")
		if g.nonce != "" {
			claims["nonce"] = g.nonce // OIDC: the nonce of this authorization request
		}
		tok, err := signJWT(s.Key, jose.RS256, s.KeyID, claims)
		if err != nil {
			oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
		resp["id_token"] = tok
	}
	if edit != nil {
		edit(req, resp)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *AuthServer) codeLifetime() time.Duration {
	if s.CodeLifetime > 0 {
		return s.CodeLifetime
	}
	return 60 * time.Second
}

// challenge is the S256 code challenge of a verifier.
func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authenticate checks the client authentication of a token request and
// returns the client, or an invalid_client description.
func (s *AuthServer) authenticate(r *http.Request, form url.Values) (Client, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, secret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		c, known := s.clients[id]
		switch {
		case !known:
			return Client{}, "unknown client"
		case c.Auth != AuthClientSecretBasic:
			return Client{}, "client is not registered for client_secret_basic"
		case subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1:
			return Client{}, "invalid client secret"
		case form.Get("client_secret") != "":
			return Client{}, "client_secret in both header and body"
		case form.Get("client_id") != "" && form.Get("client_id") != id:
			return Client{}, "client_id differs from the authenticated client"
		}
		return c, ""
	}
	if a := form.Get("client_assertion"); a != "" {
		if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			return Client{}, "bad client_assertion_type"
		}
		return s.verifyAssertion(r, a, form)
	}
	c, known := s.clients[form.Get("client_id")]
	switch {
	case !known:
		return Client{}, "unknown client"
	case c.Auth != AuthPublic:
		return Client{}, "confidential client without authentication"
	case form.Get("client_secret") != "":
		return Client{}, "public client sent a secret"
	}
	return c, ""
}

// verifyAssertion checks a private_key_jwt assertion as smart-launcher-v2
// does. Called with s.mu held.
func (s *AuthServer) verifyAssertion(r *http.Request, a string, form url.Values) (Client, string) {
	tok, err := jwt.ParseSigned(a, []jose.SignatureAlgorithm{jose.ES384, jose.RS384})
	if err != nil {
		return Client{}, "assertion: " + err.Error()
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "JWT" {
		return Client{}, "assertion: typ must be JWT"
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return Client{}, "assertion: " + err.Error()
	}
	c, known := s.clients[unverified.Issuer]
	switch {
	case !known:
		return Client{}, "assertion: unknown client"
	case c.Auth != AuthPrivateKeyJWT:
		return Client{}, "client is not registered for private_key_jwt"
	case h.KeyID != c.KeyID:
		return Client{}, fmt.Sprintf("assertion: unknown kid %q", h.KeyID)
	}
	var claims jwt.Claims
	if err := tok.Claims(c.PublicKey, &claims); err != nil {
		return Client{}, "assertion: signature: " + err.Error()
	}
	now := s.now()
	switch {
	case claims.Issuer != c.ID || claims.Subject != c.ID:
		return Client{}, "assertion: iss and sub must be the client_id"
	case len(claims.Audience) != 1 || claims.Audience[0] != s.TokenURL():
		return Client{}, fmt.Sprintf("assertion: aud %q is not the token URL", claims.Audience)
	case claims.Expiry == nil || !now.Before(claims.Expiry.Time()):
		return Client{}, "assertion: expired or no exp"
	case claims.Expiry.Time().After(now.Add(5*time.Minute + time.Second)):
		return Client{}, "assertion: exp more than five minutes ahead"
	case claims.IssuedAt == nil:
		return Client{}, "assertion: no iat"
	case claims.ID == "":
		return Client{}, "assertion: no jti"
	case s.jtis[claims.ID]:
		return Client{}, "assertion: jti reused"
	case form.Get("client_id") != "" && form.Get("client_id") != c.ID:
		return Client{}, "client_id differs from the assertion"
	case r.Header.Get("Authorization") != "":
		return Client{}, "two client authentications"
	}
	s.jtis[claims.ID] = true
	return c, ""
}

func signJWT(key crypto.Signer, alg jose.SignatureAlgorithm, kid string, claims any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// ForwardAuthorize plays a hostile registered EHR's authorize endpoint in a
// mix-up attack: it forwards the app's authorization request (its state and
// code_challenge untouched) to honest's authorize endpoint as honest's
// client clientID with redirectURI, the way a browser redirected there
// would, and returns what honest redirects back with.
func ForwardAuthorize(authorizeURL string, honest *AuthServer, clientID, redirectURI string) (code, state string, err error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("client_id", clientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("aud", honest.FHIRBase)
	q.Del("launch")
	return honest.Authorize(honest.URL + "/authorize?" + q.Encode())
}
