package ehrsim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// authenticateClient authenticates the client the way it is registered:
// public clients send only client_id; client_secret_basic clients HTTP
// Basic; private_key_jwt clients a signed assertion.
func (s *Server) authenticateClient(r *http.Request, st *site, form url.Values, now time.Time) (*Client, *oauthError) {
	hasHeader := r.Header.Get("Authorization") != ""
	hasAssertion := form.Has("client_assertion") || form.Has("client_assertion_type")
	hasSecret := form.Has("client_secret")
	n := 0
	for _, b := range []bool{hasHeader, hasAssertion, hasSecret} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, errInvalidRequest("Use exactly one client authentication method.")
	}
	switch {
	case hasHeader:
		fail := &oauthError{401, "invalid_client", "Client authentication failed.", true}
		rawID, rawSecret, ok := r.BasicAuth()
		if !ok {
			fail.desc = "Only HTTP Basic client authentication is accepted in the Authorization header."
			return nil, fail
		}
		id, err1 := url.QueryUnescape(rawID)
		secret, err2 := url.QueryUnescape(rawSecret)
		if err1 != nil || err2 != nil {
			return nil, fail
		}
		c := s.clients[id]
		if c == nil || c.Type != ClientSecretBasic || c.Profile != st.name {
			return nil, fail
		}
		if !secretEqual(secret, c.Secret) {
			return nil, fail
		}
		if cid := form.Get("client_id"); cid != "" && cid != c.ID {
			return nil, fail
		}
		return c, nil
	case hasSecret:
		return nil, errInvalidClient("client_secret_post is not supported: send the secret with HTTP Basic (client_secret_basic).")
	case hasAssertion:
		return s.verifyAssertion(r, st, form, now)
	}
	id := form.Get("client_id")
	if id == "" {
		return nil, errInvalidClient("client_id is required (public clients send it in the body).")
	}
	c := s.clients[id]
	if c == nil || c.Profile != st.name {
		return nil, errInvalidClient("Unknown client.")
	}
	if c.Type != ClientPublic {
		return nil, errInvalidClient(fmt.Sprintf("This client is confidential and must authenticate with %s.", c.Type))
	}
	return c, nil
}

// verifyAssertion checks a private_key_jwt client assertion
// (client-confidential-asymmetric.md): ES384 or RS384, typ JWT, kid,
// iss = sub = client_id, aud = the token URL, exp at most 5 minutes ahead,
// and a jti not seen before.
func (s *Server) verifyAssertion(r *http.Request, st *site, form url.Values, now time.Time) (*Client, *oauthError) {
	if form.Get("client_assertion_type") != jwtBearerType {
		return nil, errInvalidClient("client_assertion_type must be " + jwtBearerType + ".")
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES384, jose.RS384})
	if err != nil || len(tok.Headers) != 1 {
		return nil, errInvalidClient("client_assertion must be a compact JWS signed with ES384 or RS384.")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "JWT" {
		return nil, errInvalidClient("The client_assertion header must have typ JWT.")
	}
	if h.KeyID == "" {
		return nil, errInvalidClient("The client_assertion header must have a kid.")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, errInvalidClient("The client_assertion claims could not be read.")
	}
	c := s.clients[unverified.Issuer]
	if c == nil || c.Type != ClientPrivateKeyJWT || c.Profile != st.name {
		return nil, errInvalidClient("The client_assertion's iss is not a registered private_key_jwt client.")
	}
	if cid := form.Get("client_id"); cid != "" && cid != c.ID {
		return nil, errInvalidClient("client_id does not match the client_assertion.")
	}
	if jku, ok := h.ExtraHeaders["jku"].(string); ok && (c.JWKSURL == "" || jku != c.JWKSURL) {
		return nil, errInvalidClient("The client_assertion's jku is not the registered JWKS URL.")
	}
	keys, err := s.clientKeys(r, c)
	if err != nil {
		return nil, errInvalidClient("The client's keys could not be fetched.")
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.KeyID != "" && k.KeyID != h.KeyID {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	switch {
	case !verified:
		return nil, errInvalidClient("The client_assertion signature does not verify with the client's registered key.")
	case claims.Issuer != c.ID || claims.Subject != c.ID:
		return nil, errInvalidClient("The client_assertion's iss and sub must both be the client_id.")
	case !claims.Audience.Contains(st.tokenURL):
		return nil, errInvalidClient("The client_assertion's aud must be the token endpoint URL.")
	case claims.Expiry == nil:
		return nil, errInvalidClient("The client_assertion must have exp.")
	case claims.ID == "":
		return nil, errInvalidClient("The client_assertion must have a jti.")
	}
	exp := claims.Expiry.Time()
	switch {
	case !now.Before(exp.Add(clockLeeway)):
		return nil, errInvalidClient("The client_assertion expired.")
	case exp.After(now.Add(assertionMaxLife + clockLeeway)):
		return nil, errInvalidClient("The client_assertion's exp must be at most 5 minutes ahead.")
	case claims.NotBefore != nil && now.Add(clockLeeway).Before(claims.NotBefore.Time()):
		return nil, errInvalidClient("The client_assertion is not valid yet (nbf).")
	}
	key := c.ID + "\x00" + claims.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.jtis[key]; seen {
		return nil, errInvalidClient("The client_assertion's jti was already used.")
	}
	s.jtis[key] = exp.Add(clockLeeway)
	return c, nil
}

func (s *Server) clientKeys(r *http.Request, c *Client) ([]jose.JSONWebKey, error) {
	switch {
	case c.PublicKey != nil:
		return []jose.JSONWebKey{{Key: c.PublicKey, KeyID: c.KeyID}}, nil
	case c.jwks != nil:
		return c.jwks.Keys, nil
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, c.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ehrsim: JWKS %s", res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	return set.Keys, nil
}

func secretEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
