package smart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// probeCode is the authorization code the client probe exchanges. No EHR
// issued it, so no EHR can accept it: the probe never obtains a token.
const probeCode = "smartcalc-readiness-check-not-a-code"

// ClientProbe is the token endpoint's answer to a code exchange with a code
// no EHR issued, sent with the registration's client authentication (the
// readiness check's "client authentication without a user"). OAuth 2.0
// servers authenticate the client before they look at the grant (RFC 6749
// §3.2.1, §5.2), so invalid_grant means the client was accepted and only
// the made-up code was refused, and invalid_client that the client
// authentication itself failed.
type ClientProbe struct {
	Status                       int
	Error, Description, ErrorURI string
	// Sent describes the request, without secret values.
	Sent []string
}

// ClientAccepted reports whether the EHR authenticated the client and
// refused only the code.
func (p *ClientProbe) ClientAccepted() bool { return p.Error == "invalid_grant" }

// ClientRefused reports whether the EHR refused the client authentication.
func (p *ClientProbe) ClientRefused() bool {
	return p.Error == "invalid_client" || (p.Error == "" && p.Status == http.StatusUnauthorized)
}

// ProbeClient POSTs a code exchange with a code no EHR issued to tokenURL,
// authenticated as reg says (a client_secret_basic secret or a fresh
// private_key_jwt assertion, resolved here; values never leave this call),
// with the Redirect URI and a PKCE verifier as a real exchange sends them.
// It checks tokenURL against reg first, so no credential goes to a host
// the registration does not allow. A configuration problem (a secret
// without a value, a key that does not parse) is an *Error of kind
// Misconfigured.
func (f *Flow) ProbeClient(ctx context.Context, reg *Registration, tokenURL string) (*ClientProbe, error) {
	if err := f.endpointAllowed(reg, "token_endpoint", tokenURL); err != nil {
		return nil, &Error{Kind: EndpointNotAllowed, RegistrationID: reg.ID, Err: err}
	}
	redirect := f.redirectURI(reg)
	p := &ClientProbe{Sent: English(append(sentBase(reg, tokenURL, "authorization_code"),
		message.New("sent.probe-code", message.Args{"code": probeCode}),
		message.Verbatim("redirect_uri="+redirect),
		message.New("sent.probe-verifier", nil)))}
	cred, err := f.credentials(reg, tokenURL)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {probeCode},
		"redirect_uri":  {redirect},
		"code_verifier": {oauth2.GenerateVerifier()},
	}
	if cred.secret == "" {
		form.Set("client_id", reg.ClientID)
	}
	if cred.assertion != "" {
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", cred.assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if cred.secret != "" {
		// As x/oauth2's AuthStyleInHeader: both parts form-encoded.
		req.SetBasicAuth(url.QueryEscape(reg.ClientID), url.QueryEscape(cred.secret))
	}
	resp, err := f.tokenClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("smart: token endpoint: %w", err)
	}
	defer resp.Body.Close()
	p.Status = resp.StatusCode
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorURI         string `json:"error_uri"`
	}
	if json.Unmarshal(body, &e) == nil {
		p.Error, p.Description, p.ErrorURI = clip(e.Error), clip(e.ErrorDescription), clip(e.ErrorURI)
	}
	return p, nil
}

// AuthorizeProbe is the authorization endpoint's answer to a request for
// reg's client id and Redirect URI with a response_type no server supports.
// RFC 6749 §4.1.2.1: a server that does not know the client id or the
// Redirect URI MUST NOT redirect, and tells the user instead; one that
// knows both redirects back with an error (here unsupported_response_type).
// No code is issued either way.
type AuthorizeProbe struct {
	Status int
	// ToRedirectURI: the EHR sent the browser back to the Redirect URI.
	ToRedirectURI bool
	// Elsewhere is where else it redirected (scheme, host and path), such
	// as a sign-in page; "" if it did not redirect.
	Elsewhere string
	// Error and Description are the redirect's OAuth error, when it went
	// to the Redirect URI.
	Error, Description string
}

// ProbeResponseType is the response_type the authorize probe sends.
const ProbeResponseType = "smartcalc_readiness_check"

// ProbeAuthorize GETs authorizeURL with reg's client id, Redirect URI,
// scope and aud, and an unsupported response_type, and reads where the EHR
// sends the browser. It checks authorizeURL against reg first.
func (f *Flow) ProbeAuthorize(ctx context.Context, reg *Registration, authorizeURL, aud string) (*AuthorizeProbe, error) {
	if err := f.endpointAllowed(reg, "authorization_endpoint", authorizeURL); err != nil {
		return nil, &Error{Kind: EndpointNotAllowed, RegistrationID: reg.ID, Err: err}
	}
	state, err := randomString(f.Rand)
	if err != nil {
		return nil, err
	}
	redirect := f.redirectURI(reg)
	q := url.Values{
		"response_type": {ProbeResponseType},
		"client_id":     {reg.ClientID},
		"redirect_uri":  {redirect},
		"scope":         {reg.Scope},
		"state":         {state},
		"aud":           {aud},
	}
	sep := "?"
	if strings.Contains(authorizeURL, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL+sep+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.tokenClient().Do(req) // never follows redirects
	if err != nil {
		return nil, fmt.Errorf("smart: authorization endpoint: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	p := &AuthorizeProbe{Status: resp.StatusCode}
	loc := resp.Header.Get("Location")
	if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
		return p, nil
	}
	u, err := req.URL.Parse(loc)
	if err != nil {
		p.Elsewhere = clip(loc)
		return p, nil
	}
	target := u.Scheme + "://" + u.Host + u.Path
	want, _ := url.Parse(redirect)
	if want != nil && target == want.Scheme+"://"+want.Host+want.Path && u.Query().Get("state") == state {
		p.ToRedirectURI = true
		p.Error, p.Description = clip(u.Query().Get("error")), clip(u.Query().Get("error_description"))
		return p, nil
	}
	p.Elsewhere = clip(target)
	return p, nil
}

// IsMisconfigured reports whether err is a configuration problem on SMART
// Calc's side (a secret without a value, a key that does not parse).
func IsMisconfigured(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Misconfigured
}
