package calc

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// FuzzEvaluate feeds arbitrary JSON inputs to every calculator through the
// same path as POST /api/evaluate, and checks that nothing panics, that a
// rejected input is an *InputError, and that no result holds NaN or Inf.
// The seed corpus runs in plain go test.
func FuzzEvaluate(f *testing.F) {
	seeds := []string{
		`{"age": 72, "hemoglobin": 12.3, "egfr": 45, "wbc": 8, "prior_bleeding": true, "oral_anticoagulation": false, "arc_hbr_other": false}`,
		`{"age": 80, "sex": "female", "hemoglobin": {"value": 110, "unit": "g/L"}, "creatinine": {"value": 150, "unit": "umol/L"}, "platelets": 99}`,
		`{"age": 18, "sex": "male", "creatinine": 0.1, "weight": 1, "wbc": 0, "hemoglobin": 1, "crcl": 0, "prior_bleeding": false}`,
		`{"age": 120, "sex": "male", "creatinine": 30, "weight": 500, "wbc": 500, "hemoglobin": 25, "platelets": 2000, "egfr": 200}`,
		`{"age": -1, "wbc": -5, "hemoglobin": 1e300, "egfr": -1e300}`,
		`{"sex": "other", "hemoglobin": 12.5, "bleeding_history": "major", "ischemic_stroke": "minor"}`,
		`{"age": 1e308, "weight": {"value": 1e308, "unit": "[lb_av]"}, "creatinine": {"value": 5e-324, "unit": "umol/L"}}`,
		`{"age": "70", "prior_bleeding": 1}`,
		`{"nonsense": true}`,
		`{"hemoglobin": {"value": 12, "unit": "mg"}}`,
		`{}`,
		`{"age": 65, "hemoglobin": 11, "egfr": 30, "liver_cancer_surgery": true, "copd": true, "current_smoker": true, "complex_pci": true, "oral_anticoagulation": true, "diabetes": true, "prior_mi": true, "nstemi_stemi": true, "bare_metal_stent": true}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	e := testEngine(f)
	ids := make([]string, 0)
	for _, c := range e.Calculators() {
		ids = append(ids, c.ID)
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		var raw map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &raw) != nil {
			return
		}
		in, err := e.ParseInputs(raw, OriginEntered)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Reason == "" {
				t.Fatalf("ParseInputs error %v is not an *InputError with a reason", err)
			}
			return
		}
		id := ids[int(which)%len(ids)]
		r, err := e.Evaluate(id, in)
		if err != nil {
			t.Fatalf("Evaluate(%s) after a clean parse: %v", id, err)
		}
		checkResult(t, r)
		all, err := e.EvaluateAll(in)
		if err != nil {
			t.Fatalf("EvaluateAll: %v", err)
		}
		for _, r := range all {
			checkResult(t, r)
		}
	})
}

func checkResult(t *testing.T, r *Result) {
	t.Helper()
	checkFinite(t, r)
	for _, h := range r.Components {
		for o, x := range h.HazardRatios {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%s: hazard ratio %s is %v", r.Calculator, o, x)
			}
		}
	}
	for _, in := range r.Inputs {
		if f, ok := in.Value.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			t.Fatalf("%s: input %s is %v", r.Calculator, in.Name, f)
		}
	}
	switch r.Status {
	case StatusOK:
		if len(r.Missing) != 0 || len(r.OutOfRange) != 0 || len(r.Values) == 0 || r.Values[0].Value == nil {
			t.Fatalf("%s: ok with missing %v, out of range %v, values %v", r.Calculator, r.Missing, r.OutOfRange, r.Values)
		}
	case StatusIncomplete:
		if len(r.Missing) == 0 {
			t.Fatalf("%s: incomplete without missing inputs", r.Calculator)
		}
	case StatusOutOfRange:
		if len(r.OutOfRange) == 0 || len(r.Values) != 0 {
			t.Fatalf("%s: out-of-range %v with values %v", r.Calculator, r.OutOfRange, r.Values)
		}
	default:
		t.Fatalf("%s: status %q", r.Calculator, r.Status)
	}
	for _, v := range r.Values {
		if f, ok := v.Value.(float64); ok && v.Unit == "%" && (f < 0 || f > 100) {
			t.Fatalf("%s: %s = %v%%", r.Calculator, v.Name, f)
		}
	}
}
