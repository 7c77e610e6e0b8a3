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

	"github.com/smartcalc-app/smartcalc/shared/message"
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
func (f *Flow) exchange(ctx context.Context, reg *Registration, l *store.Launch, code string) (*oauth2.Token, []message.Msg, error) {
	sent := append(sentBase(reg, l.TokenURL, "authorization_code"),
		message.New("sent.code", nil),
		message.New("sent.redirect-uri", message.Args{"redirect_uri": l.RedirectURI}),
		message.New("sent.verifier", message.Args{"n": len(l.Verifier)}),
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
func (f *Flow) refresh(ctx context.Context, reg *Registration, tokenURL, refreshToken string) (*oauth2.Token, []message.Msg, error) {
	sent := append(sentBase(reg, tokenURL, "refresh_token"), message.New("sent.refresh-token", nil))
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

// sentBase describes a token request, without secret values: the
// request line and parameters as sent, the client authentication in words.
func sentBase(reg *Registration, tokenURL, grant string) []message.Msg {
	s := []message.Msg{
		message.Verbatim("POST " + tokenURL),
		message.Verbatim("grant_type=" + grant),
		message.Verbatim("client_id=" + reg.ClientID),
	}
	switch a := reg.ClientAuth; a.Type {
	case AuthPublic:
		s = append(s, message.New("sent.auth-public", nil))
	case AuthClientSecretBasic:
		s = append(s, message.New("sent.auth-basic", message.Args{"secret": a.Secret}))
	case AuthPrivateKeyJWT:
		s = append(s, message.New("sent.auth-jwt", message.Args{"alg": a.Alg, "kid": a.KID}))
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
			return &Error{Kind: TokenEndpointUnreachable, Err: err, Causes: []message.Msg{message.New("cause.token-unreachable", nil)}}
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
	id := message.Args{"client_id": reg.ClientID}
	switch {
	case re.ErrorCode == "invalid_grant" && refresh:
		e.Kind = RefreshUnavailable
		e.Causes = []message.Msg{message.New("cause.refresh-expired", nil), message.New("cause.refresh-used", nil), message.New("cause.refresh-other-client", id)}
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
			e.Causes = []message.Msg{message.New("cause.invalid-scope", nil)}
		case "unauthorized_client":
			e.Causes = []message.Msg{message.New("cause.unauthorized-client", id)}
		case "unsupported_grant_type":
			e.Causes = []message.Msg{message.New("cause.unsupported-grant", nil)}
		case "invalid_request":
			e.Causes = []message.Msg{message.New("cause.invalid-request", nil)}
		case "":
			if e.Status >= 500 {
				e.Causes = []message.Msg{message.New("cause.token-failed", message.Args{"status": e.Status})}
			} else if e.Status >= 300 && e.Status < 400 {
				e.Causes = []message.Msg{message.New("cause.token-redirect", nil)}
			}
		}
	}
	return e
}

func invalidClientCauses(reg *Registration) []message.Msg {
	id := reg.ClientID
	var first message.Msg
	switch a := reg.ClientAuth; a.Type {
	case AuthPublic:
		first = message.New("cause.client-public", message.Args{"client_id": id})
	case AuthClientSecretBasic:
		first = message.New("cause.client-secret", message.Args{"client_id": id, "secret": a.Secret})
	case AuthPrivateKeyJWT:
		first = message.New("cause.client-key", message.Args{"client_id": id, "alg": a.Alg, "kid": a.KID})
	}
	return []message.Msg{
		first,
		message.New("cause.client-type", message.Args{"client_id": id, "auth": string(reg.ClientAuth.Type)}),
		message.New("cause.client-unknown", message.Args{"client_id": id}),
	}
}

// InvalidGrantCauses lists the likely causes of an invalid_grant answer to
// a code exchange, most likely first: the one list the callback's error
// page, its log line and the readiness check give. The EHR's
// error_description, when it names the code_verifier (or PKCE), the
// redirect_uri or an expired or used code, moves that cause first.
func InvalidGrantCauses(reg *Registration, redirectURI, description string) []message.Msg {
	id := message.Args{"client_id": reg.ClientID}
	pkce := message.New("cause.pkce", id)
	redirect := message.New("cause.redirect-uri", message.Args{"client_id": reg.ClientID, "redirect_uri": redirectURI})
	reused := message.New("cause.code-reused", nil)
	other := message.New("cause.code-other-client", id)
	d := strings.ToLower(description)
	switch {
	case NamesPKCE(description):
		return []message.Msg{message.New("cause.pkce-named", id), redirect, reused, other}
	case strings.Contains(d, "redirect"):
		return []message.Msg{redirect, pkce, reused, other}
	case strings.Contains(d, "expired") || strings.Contains(d, "used") || strings.Contains(d, "reuse"):
		return []message.Msg{reused, pkce, redirect, other}
	}
	return []message.Msg{pkce, redirect, reused, other}
}

// NamesPKCE reports whether an EHR's error_description names PKCE (the
// code_verifier, its challenge, or PKCE itself): then a PKCE mismatch is
// the likely cause of an invalid_grant.
func NamesPKCE(description string) bool {
	d := strings.ToLower(description)
	return strings.Contains(d, "verifier") || strings.Contains(d, "pkce") || strings.Contains(d, "challenge")
}
