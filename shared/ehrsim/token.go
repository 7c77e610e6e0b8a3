package ehrsim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// oauthError is a token endpoint error (RFC 6749 §5.2).
type oauthError struct {
	status int
	code   string
	desc   string
	basic  bool // the client tried HTTP Basic: answer with WWW-Authenticate
}

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{400, "invalid_request", desc, false}
}
func errInvalidGrant(desc string) *oauthError { return &oauthError{400, "invalid_grant", desc, false} }
func errInvalidClient(desc string) *oauthError {
	return &oauthError{401, "invalid_client", desc, false}
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Patient      string `json:"patient,omitempty"`
	// EpicDSTU2Patient is the Epic profile's second patient identifier.
	EpicDSTU2Patient string `json:"__epic.dstu2.patient,omitempty"`
	Encounter        string `json:"encounter,omitempty"`
	// NeedPatientBanner is a bool, or a string under the Epic profile.
	NeedPatientBanner any    `json:"need_patient_banner,omitempty"`
	SmartStyleURL     string `json:"smart_style_url,omitempty"`
	Tenant            string `json:"tenant,omitempty"`
}

// serveToken is the token endpoint of st's profile.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, st *site) {
	s.tokenRequests.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{http.StatusMethodNotAllowed, "invalid_request", "The token endpoint accepts POST only.", false})
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, errInvalidRequest("The token request must be application/x-www-form-urlencoded."))
		return
	}
	if r.URL.RawQuery != "" {
		writeOAuthError(w, errInvalidRequest("Token request parameters belong in the body, not the URL."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, errInvalidRequest("The token request body could not be read."))
		return
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			writeOAuthError(w, errInvalidRequest(k+" must be given once."))
			return
		}
	}
	grantType := form.Get("grant_type")
	switch grantType {
	case "":
		writeOAuthError(w, errInvalidRequest("grant_type is required."))
		return
	case "authorization_code", "refresh_token":
	default:
		writeOAuthError(w, &oauthError{400, "unsupported_grant_type", "Only authorization_code and refresh_token are supported.", false})
		return
	}
	// Look the grant up first: its launch's faults decide how to misbehave.
	var code *authCode
	var rt *issuedToken
	s.mu.Lock()
	if grantType == "authorization_code" {
		code = s.codes[hashKey(form.Get("code"))]
	} else {
		rt = s.refresh[hashKey(form.Get("refresh_token"))]
	}
	s.mu.Unlock()
	// Another profile's server never issued them.
	if code != nil && code.a.site != st {
		code = nil
	}
	if rt != nil && rt.a.site != st {
		rt = nil
	}
	var f faultSet
	switch {
	case code != nil:
		f = code.a.faults
	case rt != nil:
		f = rt.a.faults
	}
	if f.tokenDelay > 0 {
		if err := s.cfg.Sleep(r.Context(), f.tokenDelay); err != nil {
			return
		}
	}
	if f.token5xx {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "<html><body><h1>503 Service Temporarily Unavailable</h1><p>Service temporarily unavailable.</p></body></html>\n")
		return
	}
	now := s.cfg.Now()
	client, oerr := s.authenticateClient(r, st, form, now)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	if f.invalidClient {
		writeOAuthError(w, errInvalidClient("Client authentication failed."))
		return
	}
	var a *authorization
	if grantType == "authorization_code" {
		a, oerr = s.checkCode(form, code, client, now)
	} else {
		a, oerr = s.checkRefresh(form, rt, client, now)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	resp, err := s.issueTokens(a, client, now, grantType == "authorization_code")
	if err != nil {
		writeOAuthError(w, &oauthError{500, "server_error", "The tokens could not be issued.", false})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(resp)
}

// checkCode validates an authorization_code grant and consumes the code.
func (s *Server) checkCode(form url.Values, code *authCode, client *Client, now time.Time) (*authorization, *oauthError) {
	if form.Get("code") == "" {
		return nil, errInvalidRequest("code is required.")
	}
	if code == nil {
		return nil, errInvalidGrant("The authorization code is unknown or expired.")
	}
	if code.a.faults.invalidGrant {
		return nil, errInvalidGrant("The authorization code was rejected.")
	}
	s.mu.Lock()
	if code.used {
		// RFC 6749 §4.1.2: a replayed code revokes what it issued.
		for k, t := range s.access {
			if t.a.codeID == code.a.codeID {
				delete(s.access, k)
			}
		}
		for k, t := range s.refresh {
			if t.a.codeID == code.a.codeID {
				delete(s.refresh, k)
			}
		}
		s.mu.Unlock()
		return nil, errInvalidGrant("The authorization code was already used; the tokens issued with it are revoked.")
	}
	code.used = true
	s.mu.Unlock()
	switch {
	case code.a.clientID != client.ID:
		return nil, errInvalidGrant("The authorization code was issued to another client.")
	case now.Sub(code.issued) > codeLifetime:
		return nil, errInvalidGrant("The authorization code expired (codes last 60 seconds).")
	}
	switch ru := form.Get("redirect_uri"); {
	case ru == "":
		return nil, errInvalidRequest("redirect_uri is required.")
	case ru != code.redirectURI:
		return nil, errInvalidGrant("redirect_uri does not match the authorization request.")
	}
	v := form.Get("code_verifier")
	switch {
	case v == "":
		return nil, errInvalidRequest("code_verifier is required (PKCE).")
	case !verifierRE.MatchString(v):
		return nil, errInvalidRequest("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~.")
	}
	sum := sha256.Sum256([]byte(v))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.challenge)) != 1 {
		return nil, errInvalidGrant("PKCE verification failed: the code_verifier does not match the code_challenge of the authorization request.")
	}
	return code.a, nil
}

// checkRefresh validates a refresh_token grant and rotates the token.
func (s *Server) checkRefresh(form url.Values, rt *issuedToken, client *Client, now time.Time) (*authorization, *oauthError) {
	tok := form.Get("refresh_token")
	if tok == "" {
		return nil, errInvalidRequest("refresh_token is required.")
	}
	if rt == nil {
		return nil, errInvalidGrant("The refresh token is unknown, expired or already used (refresh tokens rotate on use).")
	}
	if rt.a.faults.refreshExpired {
		return nil, errInvalidGrant("The refresh token expired.")
	}
	if rt.a.clientID != client.ID {
		return nil, errInvalidGrant("The refresh token was issued to another client.")
	}
	if !now.Before(rt.expires) {
		return nil, errInvalidGrant("The refresh token expired.")
	}
	a := *rt.a
	if sc := form.Get("scope"); sc != "" {
		want := strings.Fields(sc)
		if !scopeSubset(want, rt.a.scopes) {
			return nil, &oauthError{400, "invalid_scope", "A refresh may only ask for scopes that were granted.", false}
		}
		a.scopes = want
	}
	if rt.a.site.keepRefresh {
		// The refresh token stays valid; the response brings no new one.
		return &a, nil
	}
	key := hashKey(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refresh[key] != rt {
		return nil, errInvalidGrant("The refresh token was already used (refresh tokens rotate on use).")
	}
	delete(s.refresh, key)
	return &a, nil
}

// issueTokens makes and stores the access (and refresh) token for a, and
// the token response. The launch context and id_token come with the code
// exchange only.
func (s *Server) issueTokens(a *authorization, c *Client, now time.Time, fromCode bool) (*tokenResponse, error) {
	st := a.site
	life := s.cfg.AccessTokenLifetime
	if st.accessLifetime > 0 {
		life = st.accessLifetime
	}
	resp := &tokenResponse{
		AccessToken: randomToken(),
		TokenType:   "Bearer",
		ExpiresIn:   int64(life / time.Second),
		Scope:       strings.Join(a.scopes, " "),
	}
	if st.epicToken {
		resp.TokenType = "bearer"
	}
	expires := now.Add(life)
	if fromCode && a.faults.tokenExpired {
		resp.ExpiresIn, expires = 1, now
	}
	var refreshLife time.Duration
	switch {
	case a.faults.noRefresh:
	case !fromCode && st.keepRefresh:
		// The original refresh token stays valid and is not replaced.
	case st.refreshConfidentialOnly && c.Type == ClientPublic:
	case hasScope(a.scopes, "offline_access"):
		refreshLife = offlineRefresh
	case hasScope(a.scopes, "online_access"):
		refreshLife = onlineRefresh
	}
	if refreshLife > 0 {
		resp.RefreshToken = randomToken()
	}
	if fromCode {
		if hasScope(a.scopes, "openid") && (hasScope(a.scopes, "fhirUser") || hasScope(a.scopes, "profile")) {
			idt, err := s.idToken(a, c, now)
			if err != nil {
				return nil, err
			}
			resp.IDToken = idt
		}
		if a.patient != "" {
			resp.Patient, resp.Encounter = a.patient, a.encounter
			resp.NeedPatientBanner = a.needBanner
			if st.epicToken {
				resp.NeedPatientBanner = strconv.FormatBool(a.needBanner)
				resp.EpicDSTU2Patient = dstu2ID(a.patient)
			}
		}
		resp.SmartStyleURL = s.baseURL + "/smart-style.json"
		resp.Tenant = s.cfg.Tenant
	}
	s.mu.Lock()
	s.sweep(now)
	s.access[hashKey(resp.AccessToken)] = &issuedToken{a: a, expires: expires}
	if resp.RefreshToken != "" {
		s.refresh[hashKey(resp.RefreshToken)] = &issuedToken{a: a, expires: now.Add(refreshLife)}
	}
	s.mu.Unlock()
	return resp, nil
}

func (s *Server) idToken(a *authorization, c *Client, now time.Time) (string, error) {
	life := idTokenLifetime
	if a.site.idTokenLifetime > 0 {
		life = a.site.idTokenLifetime
	}
	claims := map[string]any{
		"iss": a.site.issuer,
		"sub": a.user,
		"aud": c.ID,
		"iat": now.Unix(),
		"exp": now.Add(life).Unix(),
	}
	user := a.site.fhirBase + "/Practitioner/" + a.user
	if hasScope(a.scopes, "fhirUser") {
		claims["fhirUser"] = user
	}
	if hasScope(a.scopes, "profile") {
		claims["profile"] = user
	}
	if a.nonce != "" {
		claims["nonce"] = a.nonce
	}
	return jwt.Signed(s.signer).Claims(claims).Serialize()
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized && e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="ehrsim"`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": sanitizeDescription(e.desc)})
}

// sanitizeDescription keeps error_description within RFC 6749's character
// set (%x20-21 / %x23-5B / %x5D-7E).
func sanitizeDescription(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
