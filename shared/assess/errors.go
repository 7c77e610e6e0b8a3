package assess

import (
	"errors"
	"fmt"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// DataErrorKind says why part of the record could not be read.
type DataErrorKind string

// The kinds. forbidden and scope are refusals, shown as such; they never
// read as "no data".
const (
	KindForbidden    DataErrorKind = "forbidden"    // 403, e.g. break-the-glass
	KindScope        DataErrorKind = "scope"        // the granted scope does not cover it
	KindUnavailable  DataErrorKind = "unavailable"  // 5xx, timeout, network
	KindUnauthorized DataErrorKind = "unauthorized" // the token was refused
	KindBadResponse  DataErrorKind = "bad_response" // malformed or foreign data
)

// DataError is a part of the record that could not be read.
type DataError struct {
	Resource string        `json:"resource"`
	Kind     DataErrorKind `json:"kind"`
	// BreakTheGlass is a refusal lifted by break-the-glass access;
	// TooLarge an answer larger than SMART Calc reads.
	BreakTheGlass bool `json:"break_the_glass,omitempty"`
	TooLarge      bool `json:"too_large,omitempty"`
	// Message says it for a person ("Not available: …"); EHRSaid is the
	// EHR's own OperationOutcome text, verbatim, for support.
	Message message.Msg `json:"message"`
	EHRSaid string      `json:"ehr_said,omitempty"`
	Scope   string      `json:"scope,omitempty"`  // the scope that would grant it
	Inputs  []string    `json:"inputs,omitempty"` // the inputs left unset because of it

	err error // the FHIR error, to tell an expired session from a failed refresh
}

// sessionError is what an "unauthorized" data error means for the whole
// request: the EHR's sign-in service failed (try again), or the session is
// over (relaunch).
func (d DataError) sessionError() error {
	if errors.Is(d.err, ErrEHRUnavailable) {
		return fmt.Errorf("%w (%s)", ErrEHRUnavailable, d.Resource)
	}
	return ErrSessionExpired
}

// NotChecked reports whether these records were read but not examined: the
// mapping's deadline passed first (mapping.ErrNotChecked).
func (d DataError) NotChecked() bool { return errors.Is(d.err, mapping.ErrNotChecked) }

// fromCalc converts the mapping's data error to the API's.
func fromCalc(d mapping.DataError) DataError {
	out := DataError{Resource: d.ResourceType, Message: d.Message, Inputs: d.Inputs, err: d.Err,
		BreakTheGlass: d.BreakTheGlass, TooLarge: d.TooLarge, EHRSaid: d.EHRSaid}
	switch d.Kind {
	case mapping.DataRefused:
		out.Kind = KindForbidden
	case mapping.DataScope:
		out.Kind = KindScope
		out.Scope = ScopeFor(d.ResourceType, fhir.InteractionSearch)
		if d.ResourceType == "Patient" {
			out.Scope = ScopeFor("Patient", fhir.InteractionRead)
		}
	case mapping.DataUnauthorized:
		out.Kind = KindUnauthorized
	case mapping.DataUnavailable:
		out.Kind = KindUnavailable
	default:
		out.Kind = KindBadResponse
	}
	return out
}

func scopeError(typ string, i fhir.Interaction) DataError {
	return DataError{Resource: typ, Kind: KindScope, Scope: ScopeFor(typ, i),
		Message: mapping.ReadMessage(typ, &fhir.Error{Type: typ, Kind: fhir.ErrScope})}
}

// dataError classifies the FHIR error of interaction i on typ; ok is false
// for errors that are not about the EHR's answer (which the caller returns
// as is).
func dataError(typ string, i fhir.Interaction, err error) (DataError, bool) {
	var fe *fhir.Error
	isFHIR := errors.As(err, &fe)
	d := DataError{Resource: typ, Message: mapping.ReadMessage(typ, err)}
	if isFHIR {
		d.BreakTheGlass, d.TooLarge, d.EHRSaid = fe.BreakTheGlass, fe.TooLarge, fe.Outcome.Text()
	}
	switch {
	case errors.Is(err, fhir.ErrScope):
		d.Kind, d.Scope = KindScope, ScopeFor(typ, i)
	case errors.Is(err, fhir.ErrForbidden):
		d.Kind = KindForbidden
	case errors.Is(err, fhir.ErrUnauthorized):
		d.Kind, d.err = KindUnauthorized, err
	case errors.Is(err, fhir.ErrUnavailable), errors.Is(err, fhir.ErrNotFound):
		d.Kind = KindUnavailable
	case errors.Is(err, fhir.ErrBadResponse):
		d.Kind = KindBadResponse
	case isFHIR:
		d.Kind = KindUnavailable
	default:
		return DataError{}, false
	}
	return d, true
}
