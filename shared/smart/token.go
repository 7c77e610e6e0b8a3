package smart

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/smartcalc-app/smartcalc/shared/store"
)

// AssertionType is the client_assertion_type of private_key_jwt.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// tokenClient is the HTTP client of token requests. It never follows a
// redirect: Go would resend the body (code, verifier, assertion) to the new
// location.
func (f *Flow) tokenClient() *http.Client {
	c := http.Client{Timeout: DefaultTokenTimeout}
	if f.HTTPClient != nil {
		c = *f.HTTPClient
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// credentials are what client authentication adds to a token request.
type credentials struct {
	style     oauth2.AuthStyle
	secret    string // client_secret_basic
	assertion string // private_key_jwt
}

// credentials resolves the registration's client authentication for a
// request to tokenURL: the secret, or a fresh assertion. Secret values are
// read here, at request time, never at start-up.
func (f *Flow) credentials(reg *Registration, tokenURL string) (credentials, error) {
	switch a := reg.ClientAuth; a.Type {
	case AuthPublic:
		return credentials{style: oauth2.AuthStyleInParams}, nil
	case AuthClientSecretBasic:
		secret, err := f.secret(a.Secret)
		if err != nil {
			return credentials{}, err
		}
		return credentials{style: oauth2.AuthStyleInHeader, secret: secret}, nil
	case AuthPrivateKeyJWT:
		assertion, err := f.assertion(reg, tokenURL)
		if err != nil {
			return credentials{}, err
		}
		return credentials{style: oauth2.AuthStyleInParams, assertion: assertion}, nil
	}
	return credentials{}, &Error{Kind: Misconfigured, Err: fmt.Errorf("client_auth.type %q", reg.ClientAuth.Type)}
}

func (f *Flow) secret(name string) (string, error) {
	if f.Secrets == nil {
		return "", &Error{Kind: Misconfigured, Err: fmt.Errorf("secret %q: no secret resolver configured", name)}
	}
	v, err := f.Secrets(name)
	if err != nil {
		return "", &Error{Kind: Misconfigured, Err: fmt.Errorf("secret %q: %w", name, err)}
	}
	if v == "" {
		return "", &Error{Kind: Misconfigured, Err: fmt.Errorf("secret %q is empty", name)}
	}
	return v, nil
}

// assertion signs a private_key_jwt client assertion (SMART App Launch,
// client-confidential-asymmetric): iss = sub = client_id, aud = the token
// URL, a random jti, iat, and exp within five minutes.
func (f *Flow) assertion(reg *Registration, tokenURL string) (string, error) {
	a := reg.ClientAuth
	key, err := f.signingKey(a.Key, a.Alg)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(a.Alg), Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", a.KID))
	if err != nil {
		return "", &Error{Kind: Misconfigured, Err: fmt.Errorf("private key %q: %v", a.Key, err)}
	}
	jti, err := randomString(f.Rand)
	if err != nil {
		return "", &Error{Kind: Misconfigured, Err: err}
	}
	now := f.now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   reg.ClientID,
		Subject:  reg.ClientID,
		Audience: jwt.Audience{tokenURL},
		ID:       jti,
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionLifetime)),
	}).Serialize()
	if err != nil {
		return "", &Error{Kind: Misconfigured, Err: fmt.Errorf("private key %q: signing: %v", a.Key, err)}
	}
	return s, nil
}

// signingKey resolves and parses the PEM key named name, cached by name
// and content so that a rotated secret takes effect.
func (f *Flow) signingKey(name, alg string) (crypto.Signer, error) {
	pemText, err := f.secret(name)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(pemText))
	cacheKey := name + "\x00" + alg + "\x00" + hex.EncodeToString(sum[:])
	if k, ok := f.keys.Load(cacheKey); ok {
		return k.(crypto.Signer), nil
	}
	key, err := parsePrivateKey([]byte(pemText), alg)
	if err != nil {
		return nil, &Error{Kind: Misconfigured, Err: fmt.Errorf("private key %q: %v", name, err)}
	}
	f.keys.Store(cacheKey, key)
	return key, nil
}

// parsePrivateKey parses a PEM private key (PKCS#8, SEC 1 or PKCS#1) and
// checks that it suits alg: ES384 needs P-384, RS384 RSA of ≥ 2048 bits.
// Errors never quote the key.
func parsePrivateKey(data []byte, alg string) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("cannot parse the private key")
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != "ES384" || k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("an EC key on %s does not suit %s (ES384 needs P-384)", k.Curve.Params().Name, alg)
		}
		return k, nil
	case *rsa.PrivateKey:
		if alg != "RS384" {
			return nil, fmt.Errorf("an RSA key does not suit %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 needed", k.N.BitLen())
		}
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// exchange POSTs the code to the stored token URL once, through
// oauth2.Config.Exchange with an explicit AuthStyle, and describes what it
// sent (never the secret values).
func (f *Flow) exchange(ctx context.Context, reg *Registration, l *store.Launch, code string) (*oauth2.Token, []string, error) {
	sent := append(sentBase(reg, l.TokenURL, "authorization_code"),
		"code: the code from the EHR's redirect (value not shown)",
		fmt.Sprintf("redirect_uri=%s (the same string sent to the authorize endpoint)", l.RedirectURI),
		fmt.Sprintf("code_verifier: %d characters made in the launch step (value not shown; its S256 code_challenge went to the authorize endpoint)", len(l.Verifier)),
	)
	cred, err := f.credentials(reg, l.TokenURL)
	if err != nil {
		return nil, sent, err
	}
	conf := oauth2.Config{
		ClientID:     reg.ClientID,
		ClientSecret: cred.secret,
		Endpoint:     oauth2.Endpoint{AuthURL: l.AuthorizeURL, TokenURL: l.TokenURL, AuthStyle: cred.style},
		RedirectURL:  l.RedirectURI,
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(l.Verifier)}
	if cred.assertion != "" {
		opts = append(opts,
			oauth2.SetAuthURLParam("client_assertion_type", AssertionType),
			oauth2.SetAuthURLParam("client_assertion", cred.assertion))
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.tokenClient())
	tok, err := conf.Exchange(ctx, code, opts...)
	return tok, sent, err
}

// refresh makes a refresh_token grant with the registration's client
// authentication. x/oauth2's TokenSource cannot add a client assertion, so
// private_key_jwt posts the form itself.
func (f *Flow) refresh(ctx context.Context, reg *Registration, tokenURL, refreshToken string) (*oauth2.Token, []string, error) {
	sent := append(sentBase(reg, tokenURL, "refresh_token"), "refresh_token: the session's refresh token (value not shown)")
	cred, err := f.credentials(reg, tokenURL)
	if err != nil {
		return nil, sent, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.tokenClient())
	if cred.assertion == "" {
		conf := oauth2.Config{
			ClientID:     reg.ClientID,
			ClientSecret: cred.secret,
			Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: cred.style},
		}
		tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
		return tok, sent, err
	}
	form := url.Values{
		"grant_type":            {"refresh_token"},
		"refresh_token":         {refreshToken},
		"client_id":             {reg.ClientID},
		"client_assertion_type": {AssertionType},
		"client_assertion":      {cred.assertion},
	}
	tok, err := f.postToken(ctx, tokenURL, form)
	return tok, sent, err
}

// postToken POSTs form to tokenURL once and decodes the answer the way
// x/oauth2 does, returning an *oauth2.RetrieveError for OAuth errors.
func (f *Flow) postToken(ctx context.Context, tokenURL string, form url.Values) (*oauth2.Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := f.tokenClient().Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading token response: %w", err)
	}
	failed := resp.StatusCode < 200 || resp.StatusCode > 299
	rerr := &oauth2.RetrieveError{Response: resp, Body: body}
	var tj struct {
		AccessToken      string          `json:"access_token"`
		TokenType        string          `json:"token_type"`
		RefreshToken     string          `json:"refresh_token"`
		ExpiresIn        json.RawMessage `json:"expires_in"`
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
		ErrorURI         string          `json:"error_uri"`
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &tj); err != nil || json.Unmarshal(body, &raw) != nil {
		// SMART token responses are JSON.
		if failed {
			return nil, rerr
		}
		return nil, errors.New("token response is not JSON")
	}
	rerr.ErrorCode, rerr.ErrorDescription, rerr.ErrorURI = tj.Error, tj.ErrorDescription, tj.ErrorURI
	if failed || tj.Error != "" {
		return nil, rerr
	}
	var expiresIn int64
	if n, err := strconv.ParseInt(strings.Trim(string(tj.ExpiresIn), `"`), 10, 64); err == nil {
		expiresIn = n
	}
	tok := &oauth2.Token{AccessToken: tj.AccessToken, TokenType: tj.TokenType, RefreshToken: tj.RefreshToken, ExpiresIn: expiresIn}
	return tok.WithExtra(raw), nil
}

// sentBase describes a token request, without secret values.
func sentBase(reg *Registration, tokenURL, grant string) []string {
	s := []string{
		"POST " + tokenURL,
		"grant_type=" + grant,
		"client_id=" + reg.ClientID,
	}
	switch a := reg.ClientAuth; a.Type {
	case AuthPublic:
		s = append(s, "client authentication: public (client_id in the body, no secret)")
	case AuthClientSecretBasic:
		s = append(s, fmt.Sprintf("client authentication: client_secret_basic (HTTP Basic with the secret named %q; value not shown)", a.Secret))
	case AuthPrivateKeyJWT:
		s = append(s, fmt.Sprintf("client authentication: private_key_jwt (%s assertion, kid %q, iss = sub = client_id, aud = the token endpoint; value not shown)", a.Alg, a.KID))
	}
	return s
}

// tokenError turns a token request failure into an *Error with the likely
// causes. refresh marks a refresh_token grant.
func tokenError(err error, reg *Registration, redirectURI string, refresh bool) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e // configuration: the request was not sent
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ue *url.Error
		if errors.As(err, &ue) || isTimeout(err) || errors.Is(err, context.Canceled) {
			return &Error{Kind: TokenEndpointUnreachable, Err: err, Causes: []string{
				"the EHR's token endpoint did not answer in time or refused the connection; SMART Calc did not retry, because an authorization code works only once",
			}}
		}
		return &Error{Kind: BadTokenResponse, Err: err}
	}
	e = &Error{
		EHRError:       clip(re.ErrorCode),
		EHRDescription: clip(re.ErrorDescription),
		EHRURI:         clip(re.ErrorURI),
		Err:            err,
	}
	if re.Response != nil {
		e.Status = re.Response.StatusCode
	}
	id := reg.ClientID
	switch {
	case re.ErrorCode == "invalid_grant" && refresh:
		e.Kind = RefreshUnavailable
		e.Causes = []string{
			"the refresh token expired or was revoked (the EHR's session ended, or the user signed out)",
			"the refresh token was already used: the EHR rotates refresh tokens and another request used this one",
			fmt.Sprintf("the refresh token was issued to another client than client_id %q", id),
		}
	case re.ErrorCode == "invalid_grant":
		e.Kind = InvalidGrant
		e.Causes = InvalidGrantCauses(reg, redirectURI, re.ErrorDescription)
	case re.ErrorCode == "invalid_client" || (re.ErrorCode == "" && e.Status == http.StatusUnauthorized):
		e.Kind = InvalidClient
		e.Causes = invalidClientCauses(reg)
	default:
		e.Kind = TokenEndpointError
		switch re.ErrorCode {
		case "invalid_scope":
			e.Causes = []string{"the EHR refused the requested scope for this client; compare the registration's scope with the scopes granted to the app in the EHR"}
		case "unauthorized_client":
			e.Causes = []string{fmt.Sprintf("client_id %q is not allowed this grant type at this EHR", id)}
		case "unsupported_grant_type":
			e.Causes = []string{"the EHR does not support this grant type for the app"}
		case "invalid_request":
			e.Causes = []string{"the EHR found the token request malformed; see error_description"}
		case "":
			if e.Status >= 500 {
				e.Causes = []string{fmt.Sprintf("the EHR's token endpoint failed (HTTP %d)", e.Status)}
			} else if e.Status >= 300 && e.Status < 400 {
				e.Causes = []string{"the token endpoint answered with a redirect, which SMART Calc does not follow; the discovered token_endpoint is probably out of date"}
			}
		}
	}
	return e
}

func invalidClientCauses(reg *Registration) []string {
	id := reg.ClientID
	var first string
	switch a := reg.ClientAuth; a.Type {
	case AuthPublic:
		first = fmt.Sprintf("client type mismatch: SMART Calc is configured as a public client, but client_id %q may be registered in the EHR as confidential", id)
	case AuthClientSecretBasic:
		first = fmt.Sprintf("secret mismatch: the secret named %q does not match the one the EHR holds for client_id %q (Oracle Health manages it under System Accounts)", a.Secret, id)
	case AuthPrivateKeyJWT:
		first = fmt.Sprintf("key mismatch: the EHR could not verify the %s assertion signed with kid %q; check the public key (JWKS) registered for client_id %q, its kid and its alg, and the server's clock", a.Alg, a.KID, id)
	}
	return []string{
		first,
		fmt.Sprintf("wrong client type registered: client_id %q must be registered in the EHR with client authentication %s", id, reg.ClientAuth.Type),
		fmt.Sprintf("unknown client_id %q at this EHR (another tenant or environment)", id),
	}
}

// InvalidGrantCauses lists the likely causes of an invalid_grant answer to
// a code exchange, most likely first: the one list the callback's error
// page, its log line and the readiness check give. The EHR's
// error_description, when it names the code_verifier (or PKCE), the
// redirect_uri or an expired or used code, moves that cause first.
func InvalidGrantCauses(reg *Registration, redirectURI, description string) []string {
	id := reg.ClientID
	pkce := fmt.Sprintf("PKCE verifier mismatch: SMART Calc made the code_verifier on the server in the launch step and sent it unchanged, so check that nothing else (for example fhirclient.js in the browser) ran authorize for client_id %q", id)
	redirect := fmt.Sprintf("redirect_uri mismatch: SMART Calc sent redirect_uri %q at authorize and at exchange; it must equal, character for character, the redirect URI registered in the EHR for client_id %q", redirectURI, id)
	reused := "code reused or expired: authorization codes live about 60 seconds and work once; SMART Calc never retries an exchange, so a reloaded callback page or a slow sign-in causes this"
	other := fmt.Sprintf("code issued to another client: the code must have been issued to client_id %q", id)
	d := strings.ToLower(description)
	switch {
	case strings.Contains(d, "verifier") || strings.Contains(d, "pkce") || strings.Contains(d, "challenge"):
		pkce = fmt.Sprintf("PKCE verifier mismatch, as the EHR's answer says: the code_challenge the EHR holds for this code belongs to a different code_verifier than the one SMART Calc sent. SMART Calc makes one verifier per launch, on the server, and sends its S256 challenge to authorize; a second component that also ran authorize for client_id %q made its own (the original app's bug: a browser library such as fhirclient.js and the server each running PKCE). Register exactly SMART Calc's Launch URI in the EHR and remove the other component", id)
		return []string{pkce, redirect, reused, other}
	case strings.Contains(d, "redirect"):
		return []string{redirect, pkce, reused, other}
	case strings.Contains(d, "expired") || strings.Contains(d, "used") || strings.Contains(d, "reuse"):
		return []string{reused, pkce, redirect, other}
	}
	return []string{pkce, redirect, reused, other}
}
