package calc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Origin says where an input value came from.
type Origin string

// Origins (README Design §5). Record, entered and derived values have a
// value; absent is a value concluded from the absence of a finding; the
// inputs without a value say why: not available (a read refused or failed)
// or asked (the record holds something to confirm, or cannot tell).
const (
	OriginRecord      Origin = "record"      // stated by the EHR record
	OriginAbsent      Origin = "absent"      // no such finding in searches read in full ("None recorded")
	OriginEntered     Origin = "entered"     // typed by the clinician (what-if, standalone)
	OriginDerived     Origin = "derived"     // computed by SMART Calc from other inputs
	OriginUnavailable Origin = "unavailable" // no value: the EHR refused the read, or it failed ("Not available")
	OriginAsked       Origin = "asked"       // no value: the clinician is asked (Note says what)
)

// Source identifies the record an input was read from.
type Source struct {
	Reference string `json:"reference,omitempty"` // e.g. Observation/123
	Code      string `json:"code,omitempty"`      // system|code, e.g. http://loinc.org|718-7
	Date      string `json:"date,omitempty"`      // effective date (FHIR dateTime)
	Display   string `json:"display,omitempty"`   // what the record says, in its own words
	// Label, when set, is what SMART Calc says of the record ("inpatient
	// stay", "NIHSS 8"), in the reader's language; it is shown instead of
	// Display, which it may quote.
	Label message.Msg `json:"label,omitzero"`
}

// Describe is how a person reads the source: its Label, else the record's
// Display (the name, never led by a code), else its code named with its
// terminology ("ICD-10-CM K92.2").
func (s Source) Describe() message.Msg {
	switch {
	case !s.Label.IsZero():
		return s.Label
	case s.Display != "":
		return message.Verbatim(s.Display)
	}
	return message.Verbatim(s.CodeName())
}

// terminologies name the code systems a clinician may read a code in.
var terminologies = map[string]string{
	"http://loinc.org":                            "LOINC",
	"http://snomed.info/sct":                      "SNOMED CT",
	"http://hl7.org/fhir/sid/icd-10-cm":           "ICD-10-CM",
	"http://hl7.org/fhir/sid/icd-10":              "ICD-10",
	"http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
	"http://www.ama-assn.org/go/cpt":              "CPT",
}

// CodeName is the source's code as a person reads it, after the name:
// "SNOMED CT 415070008", the terminology named, or the bare code for a
// system without a common name. Empty when the source has no code.
func (s Source) CodeName() string {
	system, code, ok := strings.Cut(s.Code, "|")
	if !ok {
		return s.Code
	}
	if name, ok := terminologies[system]; ok {
		return name + " " + code
	}
	return code
}

// Input is one calculator input with its provenance.
//
// Value is a float64 (or any Go integer) for numbers, a bool for booleans
// and a string for enums and sex. Unit is the UCUM unit of a number; empty
// means the input's canonical unit. An empty Origin means OriginEntered.
//
// An Input with a nil Value and an Origin (unavailable, asked, absent) is
// no value but says why there is none: the calculators count it missing
// and echo its Note, so a criterion the record cannot decide says what
// could not be read or what the clinician is asked.
type Input struct {
	Value  any
	Unit   string
	Origin Origin
	Source *Source
	Stale  bool // older than the lookback window (the mapping decides)
	// Evidence lists every record behind a value drawn from several (the
	// Conditions and Procedures behind "bleeding_history: major", say);
	// Source is then the main one. Criteria met by the input show it.
	Evidence []Source
	// Note says, for a person, what a value not stated by a record rests
	// on: the search that found nothing ("no intracranial haemorrhage in
	// the problem list"), or why there is no value.
	Note message.Msg
}

// Inputs are a calculator's inputs by name (the names of the configuration's
// inputs section). An absent name is a missing input.
type Inputs map[string]Input

// Number returns an entered numeric input in unit (empty: canonical).
func Number(v float64, unit string) Input { return Input{Value: v, Unit: unit, Origin: OriginEntered} }

// Bool returns an entered boolean input.
func Bool(b bool) Input { return Input{Value: b, Origin: OriginEntered} }

// Text returns an entered enum or sex input.
func Text(s string) Input { return Input{Value: s, Origin: OriginEntered} }

// Overlay returns a copy of in with the inputs of over replacing those of
// the same name: record values overlaid with a clinician's what-if values.
func (in Inputs) Overlay(over Inputs) Inputs {
	out := make(Inputs, len(in)+len(over))
	for k, v := range in {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// ParseInputs decodes the JSON inputs of an API request: each value a
// number in the canonical unit, {"value": n, "unit": UCUM}, true or false,
// or a string (enums and sex); null means not given. Every input gets
// origin. Unknown names, wrong types, unknown units and invalid values give
// an *InputError.
func (e *Engine) ParseInputs(raw map[string]json.RawMessage, origin Origin) (Inputs, error) {
	out := make(Inputs, len(raw))
	for _, name := range sortedKeys(raw) {
		def, ok := e.cfg.Inputs[name]
		if !ok {
			return nil, &InputError{Input: name, Reason: "unknown input (see GET /api/scoring-config for the names)", Err: ErrUnknownInput}
		}
		msg := bytes.TrimSpace(raw[name])
		if len(msg) == 0 || bytes.Equal(msg, []byte("null")) {
			continue
		}
		in := Input{Origin: origin}
		switch msg[0] {
		case '{':
			var q struct {
				Value *json.Number `json:"value"`
				Unit  *string      `json:"unit"`
			}
			dec := json.NewDecoder(bytes.NewReader(msg))
			dec.DisallowUnknownFields()
			dec.UseNumber()
			if err := dec.Decode(&q); err != nil {
				return nil, &InputError{Input: name, Reason: `want a number or {"value": number, "unit": "UCUM unit"}: ` + err.Error(), Err: ErrWrongType}
			}
			if q.Value == nil {
				return nil, &InputError{Input: name, Reason: `missing "value"`, Err: ErrWrongType}
			}
			f, err := q.Value.Float64()
			if err != nil {
				return nil, &InputError{Input: name, Reason: "value is not a finite number", Err: ErrInvalidValue}
			}
			in.Value = f
			if q.Unit != nil {
				in.Unit = *q.Unit
			}
		case '"':
			var s string
			if err := json.Unmarshal(msg, &s); err != nil {
				return nil, &InputError{Input: name, Reason: "malformed string", Err: ErrWrongType}
			}
			in.Value = s
		case 't', 'f':
			var b bool
			if err := json.Unmarshal(msg, &b); err != nil {
				return nil, &InputError{Input: name, Reason: "malformed boolean", Err: ErrWrongType}
			}
			in.Value = b
		case '[':
			return nil, &InputError{Input: name, Reason: "an array is not a valid value; want " + describeType(def), Err: ErrWrongType}
		default:
			var n json.Number
			dec := json.NewDecoder(bytes.NewReader(msg))
			dec.UseNumber()
			if err := dec.Decode(&n); err != nil {
				return nil, &InputError{Input: name, Reason: "malformed value; want " + describeType(def), Err: ErrWrongType}
			}
			f, err := n.Float64()
			if err != nil {
				return nil, &InputError{Input: name, Reason: "value is not a finite number", Err: ErrInvalidValue}
			}
			in.Value = f
		}
		if _, err := e.normalize(name, in); err != nil {
			return nil, err
		}
		out[name] = in
	}
	return out, nil
}

func describeType(def InputDef) string {
	switch def.Type {
	case TypeNumber:
		return `a number or {"value": number, "unit": "UCUM unit"}`
	case TypeBoolean:
		return "true or false"
	case TypeSex:
		return `"female" or "male"`
	default:
		return "one of " + strings.Join(quoteAll(def.Values), ", ")
	}
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// given is one input after checking and unit conversion.
type given struct {
	name string
	def  *InputDef
	num  float64 // numbers, in the canonical unit
	b    bool
	s    string
	in   Input
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// normalize checks one input against its definition and converts numbers to
// the canonical unit.
func (e *Engine) normalize(name string, in Input) (given, error) {
	dp, ok := e.defs[name]
	if !ok {
		return given{}, &InputError{Input: name, Reason: "unknown input (see GET /api/scoring-config for the names)", Err: ErrUnknownInput}
	}
	def := *dp
	v := given{name: name, def: dp, in: in}
	if v.in.Origin == "" {
		v.in.Origin = OriginEntered
	}
	wrong := func() (given, error) {
		return given{}, &InputError{Input: name, Reason: fmt.Sprintf("wrong type %T; want %s", in.Value, describeType(def)), Err: ErrWrongType}
	}
	if in.Unit != "" && def.Type != TypeNumber {
		return given{}, &InputError{Input: name, Reason: "a unit is only allowed on numbers", Err: ErrWrongType}
	}
	switch def.Type {
	case TypeNumber:
		f, ok := toFloat(in.Value)
		if !ok {
			return wrong()
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return given{}, &InputError{Input: name, Reason: "value is not a finite number", Err: ErrInvalidValue}
		}
		c, err := e.cfg.Convert(def.Quantity, f, in.Unit)
		if err != nil {
			return given{}, &InputError{Input: name, Unit: in.Unit, Reason: fmt.Sprintf("unit %q is not accepted (accepted: %s)", in.Unit, strings.Join(e.cfg.AcceptedUnits(def.Quantity), ", ")), Err: ErrUnknownUnit}
		}
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return given{}, &InputError{Input: name, Reason: "value is too large", Err: ErrInvalidValue}
		}
		v.num = c
	case TypeBoolean:
		b, ok := in.Value.(bool)
		if !ok {
			return wrong()
		}
		v.b = b
	case TypeEnum:
		s, ok := in.Value.(string)
		if !ok {
			return wrong()
		}
		if !contains(def.Values, s) {
			return given{}, &InputError{Input: name, Reason: fmt.Sprintf("%q is not one of %s", s, strings.Join(quoteAll(def.Values), ", ")), Err: ErrInvalidValue}
		}
		v.s = s
	case TypeSex:
		s, ok := in.Value.(string)
		if !ok {
			return wrong()
		}
		// Any string is accepted: a sex other than female or male leaves
		// the sex-dependent parts undetermined (never a default).
		v.s = strings.ToLower(strings.TrimSpace(s))
	}
	return v, nil
}

// normalizeAll checks every input, in name order so errors are stable. It
// returns the inputs with a value, and those without one that say why
// (a nil Value with an Origin other than entered).
func (e *Engine) normalizeAll(in Inputs) (map[string]given, map[string]Input, error) {
	out := make(map[string]given, len(in))
	why := map[string]Input{}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if in[name].Value == nil {
			// nil is "not given"; with a reason, the reason is echoed.
			if o := in[name].Origin; o != "" && o != OriginEntered {
				if _, ok := e.defs[name]; !ok {
					return nil, nil, &InputError{Input: name, Reason: "unknown input (see GET /api/scoring-config for the names)", Err: ErrUnknownInput}
				}
				why[name] = in[name]
			}
			continue
		}
		v, err := e.normalize(name, in[name])
		if err != nil {
			return nil, nil, err
		}
		out[name] = v
	}
	return out, why, nil
}
