package cds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Request is a hook call's body (CDS Hooks 2.0 §Calling a CDS Service).
type Request struct {
	Hook              string                     `json:"hook"`
	HookInstance      string                     `json:"hookInstance"`
	FHIRServer        string                     `json:"fhirServer,omitempty"`
	FHIRAuthorization *FHIRAuthorization         `json:"fhirAuthorization,omitempty"`
	Context           json.RawMessage            `json:"context"`
	Prefetch          map[string]json.RawMessage `json:"prefetch,omitempty"`
}

// FHIRAuthorization is the access token the CDS client lends the service.
// It is never logged.
type FHIRAuthorization struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Subject     string `json:"subject"`
	Patient     string `json:"patient,omitempty"`
}

// HookContext is the context of patient-view, order-select and order-sign.
type HookContext struct {
	UserID      string          `json:"userId"`
	PatientID   string          `json:"patientId"`
	EncounterID string          `json:"encounterId,omitempty"`
	Selections  []string        `json:"selections,omitempty"`
	DraftOrders json.RawMessage `json:"draftOrders,omitempty"`
}

// badRequest is a malformed call: 400 with the message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return "cds: " + e.msg }

func badf(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// call is a parsed, checked hook request.
type call struct {
	req     Request
	ctx     HookContext
	fhir    *url.URL // nil: no FHIR server given or usable
	token   string   // the fhirAuthorization access token, or ""
	scope   string
	noFetch message.Msg // why the service may not read FHIR itself, for the card
}

// parseCall decodes and checks a hook request for the service's hook.
func (s *Service) parseCall(body []byte, hook string, c *Client) (*call, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return nil, badf("the request body is not a CDS Hooks request (JSON object)")
	}
	if dec.More() {
		return nil, badf("unexpected data after the JSON request")
	}
	switch {
	case r.Hook == "":
		return nil, badf("hook is required")
	case r.Hook != hook:
		return nil, badf("this service answers the %s hook, not %q", hook, r.Hook)
	case r.HookInstance == "":
		return nil, badf("hookInstance is required")
	case len(r.Context) == 0 || bytes.Equal(r.Context, []byte("null")):
		return nil, badf("context is required")
	}
	k := &call{req: r}
	if err := json.Unmarshal(r.Context, &k.ctx); err != nil {
		return nil, badf("context does not have the %s fields", hook)
	}
	if !validID(k.ctx.PatientID) {
		return nil, badf("context.patientId is required and must be a FHIR id")
	}
	if hook != HookPatientView && (len(k.ctx.DraftOrders) == 0 || bytes.Equal(k.ctx.DraftOrders, []byte("null"))) {
		return nil, badf("context.draftOrders is required for %s", hook)
	}
	if hook == HookOrderSelect && len(k.ctx.Selections) == 0 {
		return nil, badf("context.selections is required for order-select")
	}
	switch a := r.FHIRAuthorization; {
	case a == nil || a.AccessToken == "":
		k.noFetch = message.New("cds.nofetch.no-authorization", nil)
	case r.FHIRServer == "":
		k.noFetch = message.New("cds.nofetch.no-server", nil)
	case !strings.EqualFold(a.TokenType, "Bearer"):
		k.noFetch = message.New("cds.nofetch.not-bearer", nil)
	case a.Patient != "" && a.Patient != k.ctx.PatientID:
		k.noFetch = message.New("cds.nofetch.other-patient", nil)
	default:
		u, err := url.Parse(strings.TrimRight(r.FHIRServer, "/"))
		switch {
		case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			k.noFetch = message.New("cds.nofetch.bad-url", nil)
		case !(u.Scheme == "https" || u.Scheme == "http" && s.AllowLoopbackHTTP && isLoopback(u.Hostname())):
			k.noFetch = message.New("cds.nofetch.not-https", nil)
		case !c.allowsFHIRServer(u):
			k.noFetch = message.New("cds.nofetch.host", nil)
		default:
			k.fhir, k.token, k.scope = u, a.AccessToken, a.Scope
		}
	}
	return k, nil
}

// validID reports whether s is a FHIR id: [A-Za-z0-9\-\.]{1,64}.
func validID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
