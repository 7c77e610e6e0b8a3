package calc

import "github.com/smartcalc-app/smartcalc/shared/message"

// Status is a result's overall state.
type Status string

// Statuses (README Design §5).
const (
	StatusOK            Status = "ok"
	StatusIncomplete    Status = "incomplete"     // inputs missing: see Missing
	StatusOutOfRange    Status = "out-of-range"   // an input outside its validated domain: see OutOfRange
	StatusNotApplicable Status = "not-applicable" // the calculator does not apply to this patient
)

// Result is one calculator's answer, in the shape of README Design §5.
type Result struct {
	Calculator    string      `json:"calculator"`
	Title         message.Msg `json:"title"`
	Equation      Equation    `json:"equation"`
	ConfigVersion string      `json:"config_version"`
	Status        Status      `json:"status"`
	// HBR is the calculator's own verdict, for the calculators that give
	// one (ARC-HBR, PRECISE-HBR): what the summary combines.
	HBR *Verdict `json:"hbr,omitempty"`
	// Message says what a status other than ok means for this result:
	// what is missing and what that does to it.
	Message         message.Msg       `json:"message,omitzero"`
	Values          []Value           `json:"values"`
	Components      []Component       `json:"components,omitempty"`
	Criteria        []CriterionResult `json:"criteria,omitempty"`
	Inputs          []InputEcho       `json:"inputs"`
	Missing         []string          `json:"missing"`
	OutOfRange      []string          `json:"out_of_range,omitempty"`
	Warnings        []Warning         `json:"warnings"`
	Recommendations []string          `json:"recommendations,omitempty"`
	References      []string          `json:"references"`
	// Unverified names the calculator's parameters whose provenance is not
	// verified against a source that was read (CalculatorDef.Unverified),
	// and Parameters counts those that carry a provenance: the page, the
	// print view and the CDS cards say so beside the result.
	Unverified []string `json:"unverified"`
	Parameters int      `json:"parameters"`
	// Caveat is what the model's numbers cannot be used for (the trade-off
	// model's unverified parameters): said with every result of the model,
	// not as a warning about the patient's inputs.
	Caveat message.Msg `json:"caveat,omitzero"`
	// Assumptions are the criteria decided by an assumption because their
	// input was not given (see Criterion.Assume).
	Assumptions []AssumptionResult `json:"assumptions,omitempty"`
}

// AssumptionResult is one assumption a result rests on: the criterion, the
// input that would replace it, and the sentence that states it.
type AssumptionResult struct {
	Criterion string      `json:"criterion"`
	Input     string      `json:"input"`
	Statement message.Msg `json:"statement"`
}

// Warning is one problem for a person to check: what kind, the input it is
// about ("" for the result as a whole) and the sentence. Across the
// calculators of one assessment a problem is warned once per input (see
// WarningKey).
type Warning struct {
	Kind  string      `json:"kind"`
	Input string      `json:"input,omitempty"`
	Text  message.Msg `json:"text"`
	// Calculators are the calculators it concerns, when an assessment
	// gathers one warning from several results.
	Calculators []string `json:"calculators,omitempty"`
}

// Warning kinds. The mapping adds its own (stale, access, record).
const (
	WarnRange       = "range"       // outside the validated range: no result
	WarnPlausible   = "plausible"   // outside the plausible range: check the unit
	WarnValue       = "value"       // a value that cannot be used as given
	WarnExtrapolate = "extrapolate" // a risk read off the curve outside its calibration
	WarnConflict    = "conflict"    // a summary answer contradicted by its criteria
)

// WarningKey identifies a problem across calculators: the same kind about
// the same input is one problem, whichever calculator found it.
func (w Warning) WarningKey() string { return w.Kind + "\x00" + w.Input + "\x00" + w.Text.Key }

// Value is one output. Value is a float64, a bool or nil (undetermined).
type Value struct {
	Name     string      `json:"name"`
	Value    any         `json:"value"`
	Unit     string      `json:"unit,omitempty"`
	Display  message.Msg `json:"display"`
	Category string      `json:"category,omitempty"`
	// Range, on a value left undetermined by unknown inputs, is what those
	// inputs could make it: the chart plots it on load instead of nothing.
	Range *ValueRange `json:"range,omitempty"`
	// Note labels the value wherever it is shown: the trade-off model's
	// percentages carry its HazardModel.PercentNote.
	Note message.Msg `json:"note,omitzero"`
}

// ValueRange is the interval an undetermined value lies in, whatever its
// unknown inputs turn out to be.
type ValueRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Value returns the output called name.
func (r *Result) Value(name string) (Value, bool) {
	for _, v := range r.Values {
		if v.Name == name {
			return v, true
		}
	}
	return Value{}, false
}

// Criterion returns the criterion result with the given id.
func (r *Result) Criterion(id string) (CriterionResult, bool) {
	for _, c := range r.Criteria {
		if c.ID == id {
			return c, true
		}
	}
	return CriterionResult{}, false
}

// Component is one term of a score: its points (points scores) or its hazard
// ratios per outcome (hazard models), for the input it reads.
//
// A linear term whose input lies outside the range the score defines
// counts the nearest limit instead: Counted is that value (canonical unit)
// and Truncated says which limit ("upper" or "lower"). The page shows it in
// the component's row; it is the score's rule, not a problem to warn of.
type Component struct {
	Name         string             `json:"name"`
	Input        string             `json:"input,omitempty"`
	Points       *float64           `json:"points,omitempty"`
	HazardRatios map[string]float64 `json:"hazard_ratios,omitempty"`
	Counted      *float64           `json:"counted,omitempty"`
	Truncated    string             `json:"truncated,omitempty"`
}

// CriterionResult is one ARC-HBR criterion at one level. Met is nil when the
// inputs cannot decide it: the clinician is asked.
//
// Evidence says, in clinical language, what decided it: the value with its
// date and the range it falls in, the records that met it, the search that
// found nothing, or why it cannot be decided.
type CriterionResult struct {
	ID       string      `json:"id"`
	Name     message.Msg `json:"name"`
	Domain   string      `json:"domain"`
	Level    string      `json:"level"`
	Met      *bool       `json:"met"`
	Evidence message.Msg `json:"evidence"`
	// Assumed is true when Met comes from the criterion's assumption, not
	// from a given input.
	Assumed bool `json:"assumed,omitempty"`
	// Sources are the records that met the criterion (from the inputs'
	// provenance); empty when it is not met or the inputs were entered.
	Sources []Source `json:"sources,omitempty"`
}

// InputEcho is an input as the calculator used it: the value in the
// canonical unit, where it came from, and for a number the value and unit
// as reported. A derived value (eGFR, creatinine clearance) carries the
// date of the results it was computed from in Source.Date and those
// results in Evidence. An input without a value (Value nil) says why in
// Note.
type InputEcho struct {
	Name       string      `json:"name"`
	Value      any         `json:"value"`
	Unit       string      `json:"unit,omitempty"`
	Origin     Origin      `json:"origin"`
	Source     *Source     `json:"source,omitempty"`
	Evidence   []Source    `json:"evidence,omitempty"`
	Stale      bool        `json:"stale"`
	Reported   *Measured   `json:"reported,omitempty"`
	Derivation message.Msg `json:"derivation,omitzero"`
	Note       message.Msg `json:"note,omitzero"`
}

// Measured is a number with its unit as it was given, before conversion.
type Measured struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}
