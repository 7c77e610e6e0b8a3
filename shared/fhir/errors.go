package fhir

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error the client returns is an *Error; errors.Is
// against these tells callers what to show.
var (
	// ErrForbidden means the server refused access (HTTP 403), including a
	// break-the-glass refusal, or withheld part of a search result for
	// permission reasons. The UI reports it as a permission refusal, never as
	// missing data. ErrScope errors match it too.
	ErrForbidden = errors.New("fhir: forbidden")
	// ErrScope means the granted scope does not allow the interaction: the
	// request was skipped before it was sent, or the server answered 403 with
	// error="insufficient_scope" (Cerner scope trimming). It also matches
	// ErrForbidden.
	ErrScope = errors.New("fhir: not permitted by the granted scope")
	// ErrUnauthorized means the token was refused (HTTP 401) even after the
	// one refresh and retry, or the refresh itself failed: the user must
	// relaunch from the EHR.
	ErrUnauthorized = errors.New("fhir: unauthorized")
	// ErrNotFound means the resource does not exist (HTTP 404 or 410).
	ErrNotFound = errors.New("fhir: not found")
	// ErrUnavailable means the server could not answer: a 5xx, a 429 after the
	// retries, a timeout or a network failure. Retrying later may work.
	ErrUnavailable = errors.New("fhir: server unavailable")
	// ErrBadResponse means the server answered with something the client
	// cannot use: malformed JSON, the wrong resource type, a response over
	// the size limit, a next link to another origin, or resources of another
	// patient.
	ErrBadResponse = errors.New("fhir: unusable response")
)

// Error is the error every Client method returns. It never holds the access
// token, the request URL or a resource body.
type Error struct {
	// Op is "read" or "search".
	Op string
	// Type is the FHIR resource type the request was for.
	Type string
	// Status is the HTTP status, or 0 when no response was received (or the
	// request was never sent).
	Status int
	// Code is the OAuth error code of a WWW-Authenticate challenge
	// (invalid_token, insufficient_scope), when the server sent one.
	Code string
	// Outcome is the OperationOutcome the server sent, if any.
	Outcome *OperationOutcome
	// BreakTheGlass is set when Outcome asks for break-the-glass access.
	BreakTheGlass bool
	// TooLarge is set (with Kind ErrBadResponse) when a response exceeded
	// the per-response cap or the record fetch's byte budget and was not
	// read.
	TooLarge bool
	// Kind is one of the sentinel errors, or nil for other 4xx answers (400
	// and the like), which callers can examine through Status.
	Kind error
	// Err is the underlying cause (network error, JSON error, refresh
	// error), if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fhir: ")
	b.WriteString(e.Op)
	if e.Type != "" {
		b.WriteByte(' ')
		b.WriteString(e.Type)
	}
	b.WriteString(": ")
	switch {
	case e.Kind != nil:
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "fhir: "))
	case e.Status != 0:
		b.WriteString("request rejected")
	default:
		b.WriteString("failed")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.BreakTheGlass {
		b.WriteString(" (break-the-glass required)")
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if t := e.Outcome.Text(); t != "" {
		b.WriteString(": ")
		b.WriteString(t)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and Err, so errors.Is sees both the sentinel and the
// cause (context.DeadlineExceeded, for example).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Is makes every scope refusal a permission refusal too.
func (e *Error) Is(target error) bool {
	return target == ErrForbidden && (e.Kind == ErrScope || e.Code == "insufficient_scope")
}

// Message returns text for a person: what failed, without HTTP detail. The
// server's OperationOutcome text, when any, is appended.
func (e *Error) Message() string {
	var s string
	switch {
	case errors.Is(e, ErrScope):
		s = fmt.Sprintf("The app was not granted access to %s records. Ask for the app's access to be extended, or enter the values by hand.", e.Type)
	case e.BreakTheGlass:
		s = fmt.Sprintf("The EHR requires break-the-glass access to %s records for this patient. Those records were not read.", e.Type)
	case errors.Is(e, ErrForbidden):
		s = fmt.Sprintf("The EHR refused access to %s records for this user. Those records were not read.", e.Type)
	case errors.Is(e, ErrUnauthorized):
		s = "The EHR session has ended. Relaunch the app from the EHR."
	case errors.Is(e, ErrNotFound):
		s = fmt.Sprintf("The EHR has no such %s.", e.Type)
	case errors.Is(e, ErrUnavailable):
		s = fmt.Sprintf("The EHR did not answer the request for %s records. Try again later.", e.Type)
	case e.TooLarge:
		s = fmt.Sprintf("The EHR's answer for %s records was larger than SMART Calc reads, so those records were not read. Check them in the EHR and enter the values by hand.", e.Type)
	default:
		s = fmt.Sprintf("The EHR's answer for %s records could not be used.", e.Type)
	}
	if t := e.Outcome.Text(); t != "" {
		s += " The EHR said: " + t
	}
	return s
}
