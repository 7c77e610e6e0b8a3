package smart

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/smartcalc-app/smartcalc/shared/store"
)

// Defaults of a Flow.
const (
	DefaultLaunchTTL    = 10 * time.Minute
	DefaultSessionTTL   = 8 * time.Hour
	DefaultTokenTimeout = 10 * time.Second
	// ClockSkew is the leeway for id_token exp and iat.
	ClockSkew = time.Minute
	// assertionLifetime keeps a private_key_jwt assertion's exp inside
	// SMART's five-minute limit even with a server clock a little behind.
	assertionLifetime = 4 * time.Minute
	// maxParam bounds request parameters echoed into errors.
	maxParam = 512
)

// Flow runs the SMART launch (Begin) and callback (Complete) steps and
// token refresh. Its fields are dependencies; set them before first use
// and do not copy a Flow after first use. It is safe for concurrent use.
type Flow struct {
	Registry  *Registry
	Discovery *Discoverer
	Store     store.Store
	// HTTPClient makes token requests; nil means a client with a
	// DefaultTokenTimeout timeout. Redirects are never followed: a token
	// request carries the code, the verifier and the client's credentials.
	HTTPClient *http.Client
	// RedirectURI is the one redirect URI registered with every EHR
	// (…/callback). It is sent unchanged at authorize and exchange.
	RedirectURI string
	// LaunchTTL bounds launch → callback; 0 means DefaultLaunchTTL.
	LaunchTTL time.Duration
	// SessionTTL is the app session's lifetime; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of states, handles, nonces and jti values; nil
	// means crypto/rand.
	Rand io.Reader
	// Secrets resolves a secret name (client secret, PEM private key) to
	// its value. It is called only when a token request needs it.
	Secrets func(name string) (string, error)
	// LaunchKey is the secret (LaunchKeySize random bytes) under which
	// Begin seals each launch's PKCE verifier, with a key derived from it
	// and the state, and Complete opens it. Begin and Complete refuse to
	// run without it; Refresh and ExchangeHandoff do not use it, so the
	// calculate function is not given it.
	LaunchKey []byte

	keys sync.Map // signer cache, see signer
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Flow) check() *Error {
	switch {
	case f.Registry == nil:
		return &Error{Kind: Misconfigured, Err: errors.New("flow: no Registry")}
	case f.Discovery == nil:
		return &Error{Kind: Misconfigured, Err: errors.New("flow: no Discovery")}
	case f.Store == nil:
		return &Error{Kind: Misconfigured, Err: errors.New("flow: no Store")}
	}
	if _, err := checkURL(f.RedirectURI, f.Registry.allowLoopback); err != nil {
		return &Error{Kind: Misconfigured, Err: fmt.Errorf("flow: RedirectURI: %v", err)}
	}
	return nil
}

// checkLaunchKey is check for Begin and Complete, which seal and open
// verifiers.
func (f *Flow) checkLaunchKey() *Error {
	if err := f.check(); err != nil {
		return err
	}
	if len(f.LaunchKey) != LaunchKeySize {
		return &Error{Kind: Misconfigured, Err: fmt.Errorf("flow: LaunchKey must be %d bytes, got %d", LaunchKeySize, len(f.LaunchKey))}
	}
	return nil
}

// BeginRequest is what the EHR sent to the launch URI.
type BeginRequest struct {
	// Issuer is iss: the EHR's FHIR base.
	Issuer string
	// Launch is the EHR's opaque launch parameter; "" for a standalone
	// launch.
	Launch string
}

// BeginResult tells the launch handler where to send the browser.
type BeginResult struct {
	// AuthorizeURL is the EHR's authorize endpoint with the request.
	AuthorizeURL string
	// State is the launch's state (a bearer secret until consumed: never
	// log it; log Correlation).
	State string
	// Correlation is Correlation(State).
	Correlation string
	// BindingNonce binds the launch to this browser: the handler keeps it
	// in a partitioned cookie or in sessionStorage and hands it back to
	// Complete. The launch stores only its hash.
	BindingNonce string
	Registration *Registration
}

// maxLaunchParam bounds the EHR's launch parameter.
const maxLaunchParam = 4096

// Begin starts a launch: it matches iss against the registry (before any
// outbound request), discovers the EHR's endpoints, checks them against the
// registration, makes the state, the PKCE verifier and a binding nonce,
// stores the launch (its only store call) and builds the authorize URL.
func (f *Flow) Begin(ctx context.Context, req BeginRequest) (*BeginResult, error) {
	if err := f.checkLaunchKey(); err != nil {
		err.Issuer = clip(req.Issuer)
		return nil, err
	}
	if req.Issuer == "" {
		return nil, &Error{Kind: MalformedIssuer, Err: errors.New("iss missing")}
	}
	reg, err := f.Registry.Match(req.Issuer)
	switch {
	case errors.Is(err, ErrMalformedIssuer):
		return nil, &Error{Kind: MalformedIssuer, Issuer: clip(req.Issuer), Err: err}
	case err != nil:
		return nil, &Error{Kind: UnknownIssuer, Issuer: clip(req.Issuer), Err: err}
	}
	fail := func(k Kind, err error) error {
		return &Error{Kind: k, RegistrationID: reg.ID, Issuer: req.Issuer, Err: err}
	}
	mode := LaunchStandalone
	if req.Launch != "" {
		mode = LaunchEHR
		if len(req.Launch) > maxLaunchParam {
			return nil, fail(MalformedLaunch, errors.New("launch parameter too long"))
		}
	}
	if !reg.allows(mode) {
		return nil, fail(LaunchModeNotAllowed, fmt.Errorf("%s launch not allowed for this registration", mode))
	}

	cfg, err := f.Discovery.Discover(ctx, req.Issuer)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.RegistrationID = reg.ID
			return nil, e
		}
		return nil, fail(DiscoveryFailed, err)
	}
	if err := f.endpointAllowed(reg, "authorization_endpoint", cfg.AuthorizationEndpoint); err != nil {
		return nil, fail(EndpointNotAllowed, err)
	}
	if err := f.endpointAllowed(reg, "token_endpoint", cfg.TokenEndpoint); err != nil {
		return nil, fail(EndpointNotAllowed, err)
	}
	if cfg.JWKSURI != "" {
		if err := f.endpointAllowed(reg, "jwks_uri", cfg.JWKSURI); err != nil {
			return nil, fail(EndpointNotAllowed, err)
		}
	}
	if reg.PKCE != PKCEForce && !slices.Contains(cfg.CodeChallengeMethodsSupported, "S256") {
		return nil, fail(NoS256, fmt.Errorf("code_challenge_methods_supported %q lacks S256 (set \"pkce\": \"force\" if the EHR supports it anyway)", cfg.CodeChallengeMethodsSupported))
	}

	state, err := randomString(f.Rand)
	if err != nil {
		return nil, fail(Misconfigured, err)
	}
	nonce, err := randomString(f.Rand)
	if err != nil {
		return nil, fail(Misconfigured, err)
	}
	verifier := oauth2.GenerateVerifier()
	scope := reg.Scope
	if mode == LaunchStandalone {
		scope = standaloneScope(scope)
	}
	ttl := f.LaunchTTL
	if ttl <= 0 {
		ttl = DefaultLaunchTTL
	}
	oidcNonce, nonceHash := "", ""
	if hasScope(scope, "openid") {
		if oidcNonce, err = randomString(f.Rand); err != nil {
			return nil, fail(Misconfigured, err)
		}
		nonceHash = bindingHash(oidcNonce)
	}
	sealedVerifier, err := sealVerifier(f.LaunchKey, state, verifier, f.Rand)
	if err != nil {
		return nil, fail(Misconfigured, err)
	}
	now := f.now()
	l := &store.Launch{
		// Named by sha256(state), the verifier sealed under a key
		// derived from the launch key and the state: a store dump
		// yields neither, even with the state.
		State:          LaunchID(state),
		RegistrationID: reg.ID,
		Issuer:         req.Issuer,
		Audience:       req.Issuer,
		AuthorizeURL:   cfg.AuthorizationEndpoint,
		TokenURL:       cfg.TokenEndpoint,
		RedirectURI:    f.redirectURI(reg),
		LaunchToken:    req.Launch,
		Scope:          scope,
		Verifier:       sealedVerifier,
		BindingHash:    bindingHash(nonce),
		CreatedAt:      now,
		ExpiresAt:      now.Add(ttl),

		// The callback checks an id_token against these, without a
		// discovery fetch of its own.
		JWKSURI:            cfg.JWKSURI,
		DiscoveryIssuer:    cfg.Issuer,
		RequireResponseIss: cfg.AuthorizationResponseIssParameterSupported,
		NonceHash:          nonceHash,
	}

	launchParam := ""
	if mode == LaunchEHR {
		launchParam = req.Launch
	}
	authURL := authorizeURL(l.AuthorizeURL, reg.ClientID, l.RedirectURI, scope, state,
		oauth2.S256ChallengeFromVerifier(verifier), l.Audience, launchParam, oidcNonce)

	if err := f.Store.CreateLaunch(ctx, l); err != nil {
		e := fail(StoreFailure, fmt.Errorf("create launch: %w", err)).(*Error)
		e.Correlation = Correlation(state)
		return nil, e
	}
	return &BeginResult{
		AuthorizeURL: authURL,
		State:        state,
		Correlation:  Correlation(state),
		BindingNonce: nonce,
		Registration: reg,
	}, nil
}

// standaloneScope replaces the EHR-launch "launch" scope with
// "launch/patient" (and adds launch/patient if absent): a standalone launch
// has no launch parameter and asks the EHR to pick a patient.
func standaloneScope(scope string) string {
	var out []string
	for _, s := range strings.Fields(scope) {
		if s == "launch" || s == "launch/patient" {
			continue
		}
		out = append(out, s)
	}
	return strings.Join(append([]string{"launch/patient"}, out...), " ")
}

// endpointAllowed checks a discovered or stored endpoint against the
// registration: https (http only for allowed loopback) and an allowed host.
func (f *Flow) endpointAllowed(reg *Registration, name, raw string) error {
	u, err := checkURL(raw, f.Registry.allowLoopback)
	if err != nil {
		return fmt.Errorf("%s %q: %v", name, clip(raw), err)
	}
	if !hostAllowed(u, reg.AllowedHosts) {
		return fmt.Errorf("%s %q: host %q is not in allowed_hosts %q", name, clip(raw), u.Host, reg.AllowedHosts)
	}
	return nil
}

// CompleteRequest is what the EHR's redirect (and the browser) brought to
// the callback.
type CompleteRequest struct {
	State, Code string
	// Error, ErrorDescription and ErrorURI are an authorize error redirect
	// (RFC 6749 §4.1.2.1).
	Error, ErrorDescription, ErrorURI string
	// BindingNonce is the nonce from Begin, from the browser's cookie or
	// sessionStorage; "" if the browser kept none.
	BindingNonce string
	// ResponseIssuer is the authorization response's iss (RFC 9207); ""
	// when the EHR sent none.
	ResponseIssuer string
	// RouteRegistration is <id> when the response arrived at
	// …/callback/<id>; "" at the shared …/callback.
	RouteRegistration string
}

// CompleteResult is a new app session.
type CompleteResult struct {
	// Handle is the session handle for the browser (a bearer secret).
	Handle string
	// Session is the stored session; its ID is SessionID(Handle).
	Session     *store.Session
	Correlation string
	// Bound reports whether the callback proved it came from the browser
	// that began the launch. It is false only for a registration with
	// "browser_binding": "off"; the handler logs it.
	Bound bool
	// Launch is the consumed launch, with Verifier cleared.
	Launch *store.Launch
	// Handoff is the one-time code (and binding nonce) for the app page,
	// stored with the session.
	Handoff *Handoff
	// Dropped says which context values failed validation and were left
	// out of the session (no secret values); the handler logs them.
	Dropped []string
}

// Complete finishes a launch: it consumes the launch for req.State exactly
// once, checks the browser binding, exchanges the code once (never retried)
// with the stored verifier, redirect URI and token URL, checks the token
// response and the id_token, and creates the session and its one-time
// hand-off. Its store calls are ConsumeLaunch and CreateSessionAndLaunch:
// three Firestore RPCs in all. It never fetches the EHR's
// smart-configuration: the endpoints, the jwks_uri and the issuer come from
// the launch, as discovered there.
func (f *Flow) Complete(ctx context.Context, req CompleteRequest) (*CompleteResult, error) {
	if err := f.checkLaunchKey(); err != nil {
		if req.State != "" {
			err.Correlation = Correlation(req.State)
		}
		return nil, err
	}
	if req.State == "" {
		if req.Error != "" {
			e := ehrDenied(req, "")
			e.Unmatched = true
			return nil, e
		}
		return nil, &Error{Kind: MissingState, Err: errors.New("callback without state")}
	}
	corr := Correlation(req.State)
	l, err := f.Store.ConsumeLaunch(ctx, LaunchID(req.State))
	if req.Error != "" {
		// The launch is consumed whatever the outcome, so that it cannot
		// be reused after the EHR's refusal.
		e := ehrDenied(req, corr)
		if err == nil {
			e.RegistrationID, e.Issuer = l.RegistrationID, l.Issuer
			// Anyone can mint a state with one /launch call: the EHR's
			// text is shown only to the browser that began the launch.
			e.Unbound = !(req.BindingNonce != "" && l.BindingHash != "" &&
				subtle.ConstantTimeCompare([]byte(bindingHash(req.BindingNonce)), []byte(l.BindingHash)) == 1)
		} else {
			e.Unmatched = true
		}
		return nil, e
	}
	if err != nil {
		e := &Error{Correlation: corr, Err: err}
		switch {
		case errors.Is(err, store.ErrNotFound):
			e.Kind = UnknownState
		case errors.Is(err, store.ErrConsumed):
			e.Kind = ReplayedState
		case errors.Is(err, store.ErrExpired):
			e.Kind = ExpiredState
		default:
			e.Kind = StoreFailure
			e.Err = fmt.Errorf("consume launch: %w", err)
		}
		return nil, e
	}
	fail := func(k Kind, err error) *Error {
		return &Error{Kind: k, Correlation: corr, RegistrationID: l.RegistrationID, Issuer: l.Issuer, Err: err}
	}
	l.State = req.State
	if l.Verifier, err = OpenLaunchVerifier(f.LaunchKey, req.State, l.Verifier); err != nil {
		// The launch function sealed it under another launch key (a key
		// rotated while this launch was in flight, or launch and callback
		// given different keys), or the document was altered.
		return nil, fail(Misconfigured, fmt.Errorf("launch verifier: %w", err))
	}
	reg, ok := f.Registry.Get(l.RegistrationID)
	if !ok {
		return nil, fail(Misconfigured, errors.New("the launch's registration is no longer configured"))
	}
	// Fail closed: without a matching nonce no session is created, unless
	// the registration turned the binding off explicitly.
	bound := req.BindingNonce != "" && l.BindingHash != "" &&
		subtle.ConstantTimeCompare([]byte(bindingHash(req.BindingNonce)), []byte(l.BindingHash)) == 1
	if !bound && reg.BindingRequired() {
		if req.BindingNonce == "" {
			return nil, fail(BindingMismatch, errors.New("no browser binding nonce came back (cookie or sessionStorage)"))
		}
		return nil, fail(BindingMismatch, errors.New("browser binding nonce does not match the launch"))
	}
	if err := f.checkResponseOrigin(req, l); err != nil {
		return nil, fail(MixUp, err)
	}
	if req.Code == "" {
		return nil, fail(MissingCode, errors.New("callback without code or error"))
	}
	// Registrations may have changed since the launch; the stored token
	// URL must still be allowed before a code and credentials go there.
	if err := f.endpointAllowed(reg, "token_endpoint", l.TokenURL); err != nil {
		return nil, fail(EndpointNotAllowed, err)
	}

	tok, sent, err := f.exchange(ctx, reg, l, req.Code)
	if err != nil {
		e := tokenError(err, reg, l.RedirectURI, false)
		e.Correlation, e.RegistrationID, e.Issuer = corr, reg.ID, l.Issuer
		if e.Kind != Misconfigured { // otherwise nothing was sent
			e.Sent = sent
		}
		return nil, e
	}
	resp, err := parseTokenResponse(tok, l.Scope, f.now())
	if err != nil {
		e := err.(*Error)
		e.Correlation, e.RegistrationID, e.Issuer = corr, reg.ID, l.Issuer
		return nil, e
	}
	if resp.patient == "" {
		return nil, fail(NoPatientContext, fmt.Errorf("token response has no patient (granted scope %q)", resp.scope))
	}
	var fhirUser string
	if resp.idToken != "" && hasScope(resp.scope, "openid") {
		if fhirUser, err = f.verifyIDToken(ctx, reg, l, resp.idToken); err != nil {
			return nil, fail(IDTokenInvalid, err)
		}
	}

	// Context values the UI may use as links: an https URL on an allowed
	// host, or nothing (the handler logs the drop).
	var dropped []string
	if resp.smartStyleURL != "" {
		if err := f.endpointAllowed(reg, "smart_style_url", resp.smartStyleURL); err != nil {
			dropped = append(dropped, err.Error())
			resp.smartStyleURL = ""
		}
	}
	handle, err := randomString(f.Rand)
	if err != nil {
		return nil, fail(Misconfigured, err)
	}
	ttl := f.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	now := f.now()
	s := &store.Session{
		ID:                SessionID(handle),
		RegistrationID:    reg.ID,
		FHIRBase:          l.Audience,
		Patient:           resp.patient,
		Encounter:         resp.encounter,
		FHIRUser:          fhirUser,
		Scope:             resp.scope,
		NeedPatientBanner: resp.needPatientBanner,
		SmartStyleURL:     resp.smartStyleURL,
		Tenant:            resp.tenant,
		AccessToken:       tok.AccessToken,
		RefreshToken:      tok.RefreshToken,
		TokenURL:          l.TokenURL,
		TokenExpiry:       resp.expiry,
		CreatedAt:         now,
		ExpiresAt:         now.Add(ttl),
	}
	ho, hdoc, err := f.newHandoff(reg, handle, now)
	if err != nil {
		return nil, fail(Misconfigured, err)
	}
	// The session and its hand-off in one write: the callback's third
	// and last RPC.
	if err := f.Store.CreateSessionAndLaunch(ctx, s, hdoc); err != nil {
		return nil, fail(StoreFailure, fmt.Errorf("create session and hand-off: %w", err))
	}
	consumed := *l
	consumed.Verifier = ""
	return &CompleteResult{Handle: handle, Session: s, Correlation: corr, Bound: bound, Launch: &consumed, Handoff: ho, Dropped: dropped}, nil
}

// RedirectURIFor is the Redirect URI reg's launches send: the one to
// register with its EHR.
func (f *Flow) RedirectURIFor(reg *Registration) string { return f.redirectURI(reg) }

// CheckEndpoint checks a discovered endpoint URL against reg as a launch
// does before using it: https (http only for loopback when allowed) and a
// host in allowed_hosts. The error names the field and the host.
func (f *Flow) CheckEndpoint(reg *Registration, name, raw string) error {
	return f.endpointAllowed(reg, name, raw)
}

// redirectURI is the Redirect URI a registration's launches send.
func (f *Flow) redirectURI(reg *Registration) string {
	if reg.RedirectPerRegistration {
		return strings.TrimSuffix(f.RedirectURI, "/") + "/" + url.PathEscape(reg.ID)
	}
	return f.RedirectURI
}

// checkResponseOrigin is the mix-up defence: the response must arrive at
// the Redirect URI its launch sent, and its RFC 9207 iss, when present (and
// it must be when discovery advertised it), must be the issuer discovered
// at launch.
func (f *Flow) checkResponseOrigin(req CompleteRequest, l *store.Launch) error {
	want := f.RedirectURI
	if req.RouteRegistration != "" {
		want = strings.TrimSuffix(f.RedirectURI, "/") + "/" + url.PathEscape(req.RouteRegistration)
	}
	if l.RedirectURI != want {
		return fmt.Errorf("the response arrived at %q, but the launch (registration %q) sent redirect_uri %q", clip(want), l.RegistrationID, l.RedirectURI)
	}
	iss := req.ResponseIssuer
	if iss == "" {
		if l.RequireResponseIss {
			return errors.New("the EHR advertises authorization_response_iss_parameter_supported, but the response has no iss")
		}
		return nil
	}
	expected := l.DiscoveryIssuer
	if expected == "" {
		expected = l.Issuer
	}
	if iss != expected {
		return fmt.Errorf("response iss %q is not the issuer discovered at launch %q", clip(iss), expected)
	}
	return nil
}

func ehrDenied(req CompleteRequest, corr string) *Error {
	return &Error{
		Kind:           EHRDenied,
		Correlation:    corr,
		EHRError:       clip(req.Error),
		EHRDescription: clip(req.ErrorDescription),
		EHRURI:         clip(req.ErrorURI),
	}
}

// Refresh renews the session's access token with its refresh token, using
// the registration's client authentication. One writer wins: the new tokens
// are stored with UpdateTokens against s.Version; if another instance
// refreshed first (ErrConflict, or a refresh token it already rotated), the
// session it stored is returned instead. Access tokens are never parsed.
func (f *Flow) Refresh(ctx context.Context, s *store.Session) (*store.Session, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	fail := func(k Kind, err error) *Error {
		return &Error{Kind: k, RegistrationID: s.RegistrationID, Issuer: s.FHIRBase, Err: err}
	}
	if s.RefreshToken == "" {
		return nil, fail(RefreshUnavailable, errors.New("session has no refresh token (online_access or offline_access not granted)"))
	}
	reg, ok := f.Registry.Get(s.RegistrationID)
	if !ok {
		return nil, fail(Misconfigured, errors.New("the session's registration is no longer configured"))
	}
	if err := f.endpointAllowed(reg, "token_endpoint", s.TokenURL); err != nil {
		return nil, fail(EndpointNotAllowed, err)
	}
	tok, sent, err := f.refresh(ctx, reg, s.TokenURL, s.RefreshToken)
	if err != nil {
		// With rotating refresh tokens the loser of a race is refused;
		// the winner's session is then the answer.
		var re *oauth2.RetrieveError
		if cur := f.otherWriter(ctx, s, errors.As(err, &re) && re.ErrorCode == "invalid_grant"); cur != nil {
			return cur, nil
		}
		e := tokenError(err, reg, "", true)
		e.RegistrationID, e.Issuer = reg.ID, s.FHIRBase
		if e.Kind != Misconfigured {
			e.Sent = sent
		}
		return nil, e
	}
	resp, err := parseTokenResponse(tok, s.Scope, f.now())
	if err != nil {
		e := err.(*Error)
		e.RegistrationID, e.Issuer = reg.ID, s.FHIRBase
		return nil, e
	}
	n := *s
	n.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		n.RefreshToken = tok.RefreshToken
	}
	n.TokenExpiry = resp.expiry
	switch err := f.Store.UpdateTokens(ctx, &n); {
	case errors.Is(err, store.ErrConflict):
		cur, gerr := f.Store.GetSession(ctx, s.ID)
		if gerr != nil {
			return nil, sessionGone(fail, gerr)
		}
		return cur, nil
	case err != nil:
		return nil, sessionGone(fail, err)
	}
	return &n, nil
}

// otherWriterWaits are the pauses before re-reading a session whose
// refresh token the EHR refused: another instance that rotated it is
// usually about to store its new tokens.
var otherWriterWaits = []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}

// otherWriter returns the stored session if another writer has replaced
// s's tokens. With wait it re-reads a few times, about 750 ms in all.
func (f *Flow) otherWriter(ctx context.Context, s *store.Session, wait bool) *store.Session {
	waits := otherWriterWaits[:1]
	if wait {
		waits = otherWriterWaits
	}
	for _, d := range waits {
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
		}
		cur, err := f.Store.GetSession(ctx, s.ID)
		if err != nil {
			return nil
		}
		if cur.Version != s.Version {
			return cur
		}
	}
	return nil
}

func sessionGone(fail func(Kind, error) *Error, err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrSignedOut) || errors.Is(err, store.ErrIdle) {
		return fail(RefreshUnavailable, fmt.Errorf("session: %w", err))
	}
	return fail(StoreFailure, fmt.Errorf("update tokens: %w", err))
}

// tokenResponse holds the checked fields of a token response.
type tokenResponse struct {
	scope, patient, encounter, smartStyleURL, tenant, idToken string
	needPatientBanner                                         bool
	expiry                                                    time.Time
}

// isFHIRID reports whether s is FHIR's id datatype: 1 to 64 letters,
// digits, hyphens and dots (^[A-Za-z0-9\-.]{1,64}$).
func isFHIRID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// parseTokenResponse checks a token response (SMART App Launch §token
// response): Bearer, an access token, FHIR ids for patient and encounter.
// A missing scope means the requested one (RFC 6749 §5.1).
func parseTokenResponse(tok *oauth2.Token, requested string, now time.Time) (*tokenResponse, error) {
	bad := func(format string, args ...any) error {
		return &Error{Kind: BadTokenResponse, Err: fmt.Errorf(format, args...)}
	}
	if tok.AccessToken == "" {
		return nil, bad("no access_token")
	}
	if !strings.EqualFold(tok.TokenType, "Bearer") {
		return nil, bad("token_type %q is not Bearer", clip(tok.TokenType))
	}
	r := &tokenResponse{scope: extraString(tok, "scope"), needPatientBanner: true}
	if r.scope == "" {
		r.scope = requested
	}
	r.patient = extraString(tok, "patient")
	if r.patient != "" && !isFHIRID(r.patient) {
		return nil, bad("patient %q is not a FHIR id", clip(r.patient))
	}
	r.encounter = extraString(tok, "encounter")
	if r.encounter != "" && !isFHIRID(r.encounter) {
		return nil, bad("encounter %q is not a FHIR id", clip(r.encounter))
	}
	switch v := tok.Extra("need_patient_banner").(type) {
	case bool:
		r.needPatientBanner = v
	case string:
		r.needPatientBanner = !strings.EqualFold(v, "false")
	}
	r.smartStyleURL = extraString(tok, "smart_style_url")
	r.tenant = extraString(tok, "tenant")
	r.idToken = extraString(tok, "id_token")
	expiresIn := tok.ExpiresIn
	if expiresIn == 0 {
		if n, err := strconv.ParseInt(extraString(tok, "expires_in"), 10, 64); err == nil {
			expiresIn = n
		}
	}
	if expiresIn > 0 {
		expiresIn = min(expiresIn, math.MaxInt32)
		r.expiry = now.Add(time.Duration(expiresIn) * time.Second)
	}
	return r, nil
}

// extraString returns a token response field as a string. Form-encoded
// responses give numbers for numeric-looking values.
func extraString(tok *oauth2.Token, key string) string {
	switch v := tok.Extra(key).(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

func hasScope(scope, s string) bool { return slices.Contains(strings.Fields(scope), s) }

// clip bounds a request- or EHR-provided string kept in an error.
func clip(s string) string {
	if len(s) <= maxParam {
		return s
	}
	i := maxParam
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// authorizeURL is the authorization request (SMART App Launch §2.1.5):
// the parameters x/oauth2's AuthCodeURL would send with
// S256ChallengeOption, plus aud and, for an EHR launch, launch; in the same
// sorted order, appended with & when the endpoint already has a query. It is
// written out because it runs on every launch: AuthCodeURL's url.Values
// building was half of the launch handler's allocations.
func authorizeURL(endpoint, clientID, redirectURI, scope, state, challenge, aud, launch, nonce string) string {
	var b strings.Builder
	b.Grow(len(endpoint) + len(clientID) + 3*(len(redirectURI)+len(scope)+len(aud)) + len(state) + len(challenge) + len(launch) + len(nonce) + 170)
	b.WriteString(endpoint)
	if strings.Contains(endpoint, "?") {
		b.WriteByte('&')
	} else {
		b.WriteByte('?')
	}
	param := func(k, v string, first bool) {
		if !first {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	param("aud", aud, true)
	param("client_id", clientID, false)
	param("code_challenge", challenge, false)
	param("code_challenge_method", "S256", false)
	if launch != "" {
		param("launch", launch, false)
	}
	if nonce != "" {
		param("nonce", nonce, false)
	}
	param("redirect_uri", redirectURI, false)
	param("response_type", "code", false)
	param("scope", scope, false)
	param("state", state, false)
	return b.String()
}
