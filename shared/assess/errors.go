package assess

import (
	"errors"
	"fmt"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
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
	Message  string        `json:"message"`
	Scope    string        `json:"scope,omitempty"`  // the scope that would grant it
	Inputs   []string      `json:"inputs,omitempty"` // the inputs left unset because of it

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
	out := DataError{Resource: d.ResourceType, Message: d.Message, Inputs: d.Inputs, err: d.Err}
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
	sc := ScopeFor(typ, i)
	return DataError{Resource: typ, Kind: KindScope, Scope: sc,
		Message: "The EHR did not grant SMART Calc the scope " + sc + ", so " + typ + " data could not be read."}
}

// dataError classifies the FHIR error of interaction i on typ; ok is false
// for errors that are not about the EHR's answer (which the caller returns
// as is).
func dataError(typ string, i fhir.Interaction, err error) (DataError, bool) {
	var fe *fhir.Error
	msg := err.Error()
	if errors.As(err, &fe) {
		msg = fe.Message()
	}
	switch {
	case errors.Is(err, fhir.ErrScope):
		return DataError{Resource: typ, Kind: KindScope, Scope: ScopeFor(typ, i), Message: msg}, true
	case errors.Is(err, fhir.ErrForbidden):
		return DataError{Resource: typ, Kind: KindForbidden, Message: msg}, true
	case errors.Is(err, fhir.ErrUnauthorized):
		return DataError{Resource: typ, Kind: KindUnauthorized, Message: msg, err: err}, true
	case errors.Is(err, fhir.ErrUnavailable), errors.Is(err, fhir.ErrNotFound):
		return DataError{Resource: typ, Kind: KindUnavailable, Message: msg}, true
	case errors.Is(err, fhir.ErrBadResponse):
		return DataError{Resource: typ, Kind: KindBadResponse, Message: msg}, true
	}
	if fe != nil {
		return DataError{Resource: typ, Kind: KindUnavailable, Message: msg}, true
	}
	return DataError{}, false
}
