package smart

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// Kind classifies a launch, callback or refresh failure. Handlers choose the
// page and the log fields from it; the clinician-facing text comes from
// [Error.Title] and [Error.Advice].
type Kind int

// The kinds of failure, in the order a launch meets them.
const (
	// KindUnknown is the zero Kind; Flow never returns it.
	KindUnknown Kind = iota
	// MalformedIssuer: the iss parameter is missing, not an absolute URL, or
	// not https (http only for loopback during local runs).
	MalformedIssuer
	// MalformedLaunch: the EHR's launch parameter is unusable (too long).
	MalformedLaunch
	// UnknownIssuer: iss matches no registration. Refused before any
	// outbound request.
	UnknownIssuer
	// LaunchModeNotAllowed: an EHR launch or a standalone launch for a
	// registration that does not list that mode.
	LaunchModeNotAllowed
	// DiscoveryFailed: {iss}/.well-known/smart-configuration could not be
	// fetched or lacks the authorize or token endpoint.
	DiscoveryFailed
	// EndpointNotAllowed: a discovered endpoint is not https or its host is
	// not in the registration's allowed_hosts.
	EndpointNotAllowed
	// NoS256: the EHR does not advertise PKCE S256 and the registration
	// does not force it.
	NoS256
	// MissingState: the callback carries no state.
	MissingState
	// UnknownState: no launch has that state.
	UnknownState
	// ExpiredState: the launch took longer than the launch TTL.
	ExpiredState
	// ReplayedState: the launch was already used (reload, back button, or a
	// second tab).
	ReplayedState
	// BindingMismatch: the callback did not prove it came from the browser
	// that began the launch (login CSRF): a wrong nonce or none at all.
	BindingMismatch
	// EHRDenied: the EHR redirected back with an OAuth error instead of a
	// code.
	EHRDenied
	// MissingCode: the callback has a state but neither code nor error.
	MissingCode
	// InvalidGrant: the token endpoint answered invalid_grant.
	InvalidGrant
	// InvalidClient: the token endpoint answered invalid_client.
	InvalidClient
	// TokenEndpointError: any other error from the token endpoint.
	TokenEndpointError
	// TokenEndpointUnreachable: the token request failed on the network or
	// timed out. It was not retried.
	TokenEndpointUnreachable
	// BadTokenResponse: a 2xx token response that is not a usable SMART
	// token response (no access_token, token_type not Bearer, bad JSON).
	BadTokenResponse
	// IDTokenInvalid: an id_token was returned and failed verification.
	IDTokenInvalid
	// NoPatientContext: the token response names no patient.
	NoPatientContext
	// RefreshUnavailable: the session has no refresh token, so the access
	// token cannot be renewed.
	RefreshUnavailable
	// Misconfigured: SMART Calc itself is misconfigured (a secret is
	// missing, a registration was removed, a key does not parse).
	Misconfigured
	// StoreFailure: the launch or session store failed.
	StoreFailure
	// MixUp: the authorization response did not come from the EHR the
	// launch began with (RFC 9207 iss mismatch or missing where required,
	// or the response arrived at another registration's Redirect URI).
	MixUp
)

var kindNames = [...]string{
	KindUnknown:              "unknown",
	MalformedIssuer:          "malformed_issuer",
	MalformedLaunch:          "malformed_launch",
	UnknownIssuer:            "unknown_issuer",
	LaunchModeNotAllowed:     "launch_mode_not_allowed",
	DiscoveryFailed:          "discovery_failed",
	EndpointNotAllowed:       "endpoint_not_allowed",
	NoS256:                   "no_s256",
	MissingState:             "missing_state",
	UnknownState:             "unknown_state",
	ExpiredState:             "expired_state",
	ReplayedState:            "replayed_state",
	BindingMismatch:          "binding_mismatch",
	EHRDenied:                "ehr_denied",
	MissingCode:              "missing_code",
	InvalidGrant:             "invalid_grant",
	InvalidClient:            "invalid_client",
	TokenEndpointError:       "token_endpoint_error",
	TokenEndpointUnreachable: "token_endpoint_unreachable",
	BadTokenResponse:         "bad_token_response",
	IDTokenInvalid:           "id_token_invalid",
	NoPatientContext:         "no_patient_context",
	RefreshUnavailable:       "refresh_unavailable",
	Misconfigured:            "misconfigured",
	StoreFailure:             "store_failure",
	MixUp:                    "mix_up",
}

// String returns a stable snake_case name, suitable as a log field or an
// API error code.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is the one error type of Flow and Discoverer. It carries what a
// handler needs to render the page and log the failure. No field holds a
// secret: never the code, the verifier, a client secret, an assertion or a
// token.
type Error struct {
	Kind Kind
	// Correlation is Correlation(state), when a state is known.
	Correlation string
	// RegistrationID and Issuer identify the EHR, when known.
	RegistrationID string
	Issuer         string
	// EHRError, EHRDescription and EHRURI are the OAuth error, error
	// description and error URI the EHR returned (authorize redirect or
	// token endpoint). Oracle Health's error_uri carries a correlation id
	// its support desk asks for.
	EHRError, EHRDescription, EHRURI string
	// Unmatched marks an EHR error redirect (EHRDenied) that matched no
	// launch: it came without a state, or with one that is unknown, expired
	// or already used. Anyone can craft such a URL, so Problem leaves its
	// EHR text off the page (LogFailure still logs it).
	Unmatched bool
	// Unbound marks an EHR error redirect for a launch whose browser
	// binding did not come back: it too may be an attacker's link, so
	// Problem leaves the EHR text off the page (LogFailure logs it).
	Unbound bool
	// Status is the HTTP status of the EHR's response (token endpoint or
	// discovery), if there was one.
	Status int
	// Causes lists likely causes, most likely first, as messages: the
	// error page writes them in the reader's language, the log in English.
	Causes []message.Msg
	// Sent describes what SMART Calc sent, without secret values; the
	// request's own tokens (URLs, parameter names) stay as they are.
	Sent []message.Msg
	// Err is the underlying error, if any. For token endpoint errors it is
	// the *oauth2.RetrieveError.
	Err error
}

// Error implements error. It starts with "smart: " and never contains a
// secret.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smart: ")
	b.WriteString(e.Kind.String())
	if e.RegistrationID != "" {
		fmt.Fprintf(&b, " (registration %q)", e.RegistrationID)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.EHRError != "" {
		fmt.Fprintf(&b, ": error=%q", e.EHRError)
		if e.EHRDescription != "" {
			fmt.Fprintf(&b, " error_description=%q", e.EHRDescription)
		}
		if e.EHRURI != "" {
			fmt.Fprintf(&b, " error_uri=%q", e.EHRURI)
		}
	}
	if e.Err != nil {
		var re *oauth2.RetrieveError
		if errors.As(e.Err, &re) {
			// RetrieveError.Error may quote the response body; the
			// fields above already say what matters.
			if e.EHRError == "" {
				b.WriteString(": token endpoint error")
			}
		} else {
			b.WriteString(": ")
			b.WriteString(strings.TrimPrefix(e.Err.Error(), "smart: "))
		}
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Title says, for the clinician, what happened.
func (e *Error) Title() message.Msg {
	switch e.Kind {
	case StoreFailure:
		if e.StoreUnavailable() {
			return message.New("signin.store_unavailable.title", nil)
		}
	case KindUnknown:
		return message.New("signin.failed.title", nil)
	}
	return message.New("signin."+e.Kind.String()+".title", nil)
}

// Advice says, for the clinician, what to do next.
func (e *Error) Advice() message.Msg {
	key := "relaunch"
	switch e.Kind {
	case MalformedIssuer, MalformedLaunch, UnknownIssuer, LaunchModeNotAllowed, EndpointNotAllowed, NoS256:
		key = "registered"
	case DiscoveryFailed, TokenEndpointUnreachable, TokenEndpointError:
		key = "wait"
	case MissingState, UnknownState:
		key = "from-chart"
	case ReplayedState:
		key = "replayed"
	case BindingMismatch:
		key = "binding"
	case MixUp:
		key = "mix-up"
	case EHRDenied:
		key = "admin"
		if e.EHRError == "access_denied" {
			key = "declined"
		}
	case NoPatientContext:
		key = "open-chart"
	case InvalidGrant, InvalidClient, BadTokenResponse, IDTokenInvalid, MissingCode:
		key = "admin"
	case StoreFailure:
		key = "later"
		if e.StoreUnavailable() {
			key = "store"
		}
	case Misconfigured:
		key = "later"
	}
	return message.New("signin.advice."+key, nil)
}

// HTTPStatus is the status the handler answers with: 4xx when the request
// (the clinician's browser or the EHR's redirect) is the problem, 502 when
// the EHR answered badly, 504 when it did not answer, 500 when SMART Calc
// itself failed.
func (e *Error) HTTPStatus() int {
	switch e.Kind {
	case MalformedIssuer, MalformedLaunch, MissingState, UnknownState, ExpiredState, MissingCode:
		return http.StatusBadRequest
	case UnknownIssuer, LaunchModeNotAllowed, BindingMismatch, MixUp:
		return http.StatusForbidden
	case ReplayedState:
		return http.StatusConflict
	case EHRDenied:
		switch e.EHRError {
		case "server_error", "temporarily_unavailable":
			return http.StatusBadGateway
		}
		return http.StatusForbidden
	case RefreshUnavailable:
		return http.StatusUnauthorized
	case DiscoveryFailed:
		if isTimeout(e.Err) {
			return http.StatusGatewayTimeout
		}
		return http.StatusBadGateway
	case TokenEndpointUnreachable:
		return http.StatusGatewayTimeout
	case StoreFailure:
		if e.StoreUnavailable() {
			return http.StatusServiceUnavailable
		}
	case EndpointNotAllowed, NoS256, InvalidGrant, InvalidClient, TokenEndpointError,
		BadTokenResponse, IDTokenInvalid, NoPatientContext:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// StoreUnavailable reports whether the store did not answer in time or
// could not be reached (store.ErrUnavailable): a transient failure, answered
// with 503 and Retry-After.
func (e *Error) StoreUnavailable() bool {
	return e.Kind == StoreFailure && errors.Is(e.Err, store.ErrUnavailable)
}

// isTimeout reports whether err is a deadline or network timeout.
func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
