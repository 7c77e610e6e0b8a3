package calc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/message"
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
	Reason string // for the log and API clients, e.g. `unit "mg" is not accepted (g/dL, g/L, mmol/L)`
	Unit   string // the unit refused, with ErrUnknownUnit
	Err    error  // one of the sentinels above
}

func (e *InputError) Error() string { return fmt.Sprintf("calc: input %q: %s", e.Input, e.Reason) }

// Unwrap returns the sentinel.
func (e *InputError) Unwrap() error { return e.Err }

// InputErrorMessage says what is wrong with the input for a person, in the
// catalogue's words: the input by its label, what it takes.
func (c *Config) InputErrorMessage(ie *InputError) message.Msg {
	def, known := c.Inputs[ie.Input]
	if !known {
		return message.New("input-error.unknown", message.Args{"input": ie.Input})
	}
	args := message.Args{"input": c.InputLabel(ie.Input)}
	switch def.Type {
	case TypeNumber:
		units := message.List{}
		for _, u := range c.AcceptedUnits(def.Quantity) {
			units = append(units, c.UnitLabel(def.Quantity, u))
		}
		args["want"] = message.New("input-error.want.number", message.Args{"units": units})
	case TypeBoolean:
		args["want"] = message.New("input-error.want.boolean", nil)
	case TypeSex:
		args["want"] = message.New("input-error.want.sex", nil)
	default:
		vals := message.List{}
		for _, v := range def.Values {
			vals = append(vals, c.EnumLabel(ie.Input, v))
		}
		args["want"] = message.New("input-error.want.enum", message.Args{"values": vals})
	}
	switch {
	case errors.Is(ie, ErrUnknownUnit):
		args["unit"] = strings.TrimSpace(ie.Unit)
		return message.New("input-error.unit", args)
	case errors.Is(ie, ErrInvalidValue):
		return message.New("input-error.invalid", args)
	}
	return message.New("input-error.wrong-type", args)
}

// ConfigError names a missing or invalid field of the scoring configuration.
type ConfigError struct {
	Path   string // e.g. calculators[precise-hbr].points.linear[0].pivot
	Reason string
}

func (e *ConfigError) Error() string { return "calc: config: " + e.Path + ": " + e.Reason }
