package calc

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
	Calculator      string            `json:"calculator"`
	Title           string            `json:"title"`
	Equation        Equation          `json:"equation"`
	ConfigVersion   string            `json:"config_version"`
	Status          Status            `json:"status"`
	Message         string            `json:"message,omitempty"`
	Values          []Value           `json:"values"`
	Components      []Component       `json:"components,omitempty"`
	Criteria        []CriterionResult `json:"criteria,omitempty"`
	Inputs          []InputEcho       `json:"inputs"`
	Missing         []string          `json:"missing"`
	OutOfRange      []string          `json:"out_of_range,omitempty"`
	Warnings        []string          `json:"warnings"`
	Recommendations []string          `json:"recommendations,omitempty"`
	References      []string          `json:"references"`
	// Assumptions are the criteria decided by an assumption because their
	// input was not given (see Criterion.Assume).
	Assumptions []AssumptionResult `json:"assumptions,omitempty"`
}

// AssumptionResult is one assumption a result rests on: the criterion, the
// input that would replace it, and the sentence that states it.
type AssumptionResult struct {
	Criterion string `json:"criterion"`
	Input     string `json:"input"`
	Statement string `json:"statement"`
}

// Value is one output. Value is a float64, a bool or nil (undetermined).
type Value struct {
	Name     string `json:"name"`
	Value    any    `json:"value"`
	Unit     string `json:"unit,omitempty"`
	Display  string `json:"display"`
	Category string `json:"category,omitempty"`
	// Range, on a value left undetermined by unknown inputs, is what those
	// inputs could make it: the chart plots it on load instead of nothing.
	Range *ValueRange `json:"range,omitempty"`
	// Note labels the value wherever it is shown: the trade-off model's
	// percentages carry its HazardModel.PercentNote.
	Note string `json:"note,omitempty"`
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
type Component struct {
	Name         string             `json:"name"`
	Input        string             `json:"input,omitempty"`
	Points       *float64           `json:"points,omitempty"`
	HazardRatios map[string]float64 `json:"hazard_ratios,omitempty"`
}

// CriterionResult is one ARC-HBR criterion at one level. Met is nil when the
// inputs cannot decide it: the clinician is asked.
type CriterionResult struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Domain   string `json:"domain"`
	Level    string `json:"level"`
	Met      *bool  `json:"met"`
	Evidence string `json:"evidence"`
	// Assumed is true when Met comes from the criterion's assumption, not
	// from a given input.
	Assumed bool `json:"assumed,omitempty"`
	// Sources are the records that met the criterion (from the inputs'
	// provenance); empty when it is not met or the inputs were entered.
	Sources []Source `json:"sources,omitempty"`
}

// InputEcho is an input as the calculator used it: the value in the
// canonical unit, where it came from, and the value as given when a unit
// conversion or a derivation produced it.
type InputEcho struct {
	Name       string    `json:"name"`
	Value      any       `json:"value"`
	Unit       string    `json:"unit,omitempty"`
	Origin     Origin    `json:"origin"`
	Source     *Source   `json:"source,omitempty"`
	Evidence   []Source  `json:"evidence,omitempty"`
	Stale      bool      `json:"stale"`
	Given      *Measured `json:"given,omitempty"`
	Derivation string    `json:"derivation,omitempty"`
}

// Measured is a number with its unit as it was given, before conversion.
type Measured struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}
