package calc

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers decide with errors.Is; an *InputError wraps the
// input sentinels and names the input.
var (
	// ErrUnknownCalculator means no calculator has the requested id.
	ErrUnknownCalculator = errors.New("calc: unknown calculator")
	// ErrUnknownInput means an input name the configuration does not define.
	ErrUnknownInput = errors.New("calc: unknown input")
	// ErrUnknownUnit means a unit the input's quantity does not convert from.
	ErrUnknownUnit = errors.New("calc: unknown unit")
	// ErrWrongType means a value of the wrong JSON or Go type for the input.
	ErrWrongType = errors.New("calc: wrong type")
	// ErrInvalidValue means a value of the right type that is not allowed:
	// NaN or Inf, or a value outside an enum.
	ErrInvalidValue = errors.New("calc: invalid value")
)

// InputError is a caller's mistake in one input: an unknown name, a wrong
// type, an unknown unit or an invalid value. It is an error of the request,
// not a clinical result: an API answers it with 400. (A value outside the
// validated domain is not an InputError: it gives status out-of-range.)
type InputError struct {
	Input  string // the input's name
	Reason string // for a person, e.g. `unit "mg" is not accepted (g/dL, g/L, mmol/L)`
	Err    error  // one of the sentinels above
}

func (e *InputError) Error() string { return fmt.Sprintf("calc: input %q: %s", e.Input, e.Reason) }

// Unwrap returns the sentinel.
func (e *InputError) Unwrap() error { return e.Err }

// ConfigError names a missing or invalid field of the scoring configuration.
type ConfigError struct {
	Path   string // e.g. calculators[precise-hbr].points.linear[0].pivot
	Reason string
}

func (e *ConfigError) Error() string { return "calc: config: " + e.Path + ": " + e.Reason }
