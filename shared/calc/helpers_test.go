package calc

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func testEngine(t testing.TB) *Engine {
	t.Helper()
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

func mustEval(t testing.TB, e *Engine, id string, in Inputs) *Result {
	t.Helper()
	r, err := e.Evaluate(id, in)
	if err != nil {
		t.Fatalf("Evaluate(%s): %v", id, err)
	}
	checkFinite(t, r)
	return r
}

// checkFinite fails if any number in the result is NaN or Inf, or if the
// result does not encode as JSON (which rejects both).
func checkFinite(t testing.TB, r *Result) {
	t.Helper()
	if _, err := json.Marshal(r); err != nil {
		t.Fatalf("%s: result does not encode: %v", r.Calculator, err)
	}
	for _, v := range r.Values {
		if f, ok := v.Value.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			t.Fatalf("%s: value %s is %v", r.Calculator, v.Name, f)
		}
	}
	for _, c := range r.Components {
		if c.Points != nil && (math.IsNaN(*c.Points) || math.IsInf(*c.Points, 0)) {
			t.Fatalf("%s: component %s is %v", r.Calculator, c.Name, *c.Points)
		}
	}
}

func val(t testing.TB, r *Result, name string) Value {
	t.Helper()
	v, ok := r.Value(name)
	if !ok {
		t.Fatalf("%s: no value %q in %+v (status %s, missing %v, warnings %v)", r.Calculator, name, r.Values, r.Status, r.Missing, r.Warnings)
	}
	return v
}

func num(t testing.TB, r *Result, name string) float64 {
	t.Helper()
	v := val(t, r, name)
	f, ok := v.Value.(float64)
	if !ok {
		t.Fatalf("%s: value %q is %v (%T), not a number; status %s, missing %v, warnings %v", r.Calculator, name, v.Value, v.Value, r.Status, r.Missing, r.Warnings)
	}
	return f
}

func component(t testing.TB, r *Result, name string) float64 {
	t.Helper()
	for _, c := range r.Components {
		if c.Name == name {
			if c.Points == nil {
				t.Fatalf("%s: component %s has no points", r.Calculator, name)
			}
			return *c.Points
		}
	}
	t.Fatalf("%s: no component %q in %+v", r.Calculator, name, r.Components)
	return 0
}

// hasWarning reports whether a warning's kind, input or English text
// contains substr.
func hasWarning(r *Result, substr string) bool {
	for _, w := range r.Warnings {
		if strings.Contains(w.Kind+" "+w.Input+" "+w.Text.String(), substr) {
			return true
		}
	}
	return false
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// with returns base overlaid with the given inputs; a nil Value removes one.
func with(base Inputs, kv ...any) Inputs {
	out := base.Overlay(nil)
	for i := 0; i < len(kv); i += 2 {
		name := kv[i].(string)
		switch v := kv[i+1].(type) {
		case nil:
			delete(out, name)
		case Input:
			out[name] = v
		case float64:
			out[name] = Number(v, "")
		case int:
			out[name] = Number(float64(v), "")
		case bool:
			out[name] = Bool(v)
		case string:
			out[name] = Text(v)
		default:
			panic("with: bad value")
		}
	}
	return out
}

// fullInputs gives every input of every calculator a neutral value.
func fullInputs() Inputs {
	return Inputs{
		"age": Number(60, ""), "sex": Text("male"), "hemoglobin": Number(14, ""), "egfr": Number(90, ""),
		"creatinine": Number(0.9, ""), "crcl": Number(90, ""), "wbc": Number(7, ""), "platelets": Number(250, ""),
		"weight": Number(80, ""), "prior_bleeding": Bool(false), "oral_anticoagulation": Bool(false),
		"arc_hbr_other": Bool(false), "bleeding_diathesis": Bool(false), "active_malignancy": Bool(false),
		"cirrhosis_portal_hypertension": Bool(false), "recent_major_surgery_trauma": Bool(false),
		"nondeferrable_major_surgery": Bool(false), "nsaid_or_steroid": Bool(false), "bleeding_history": Text("none"),
		"intracranial_hemorrhage": Bool(false), "brain_avm": Bool(false), "ischemic_stroke": Text("none"),
		"liver_cancer_surgery": Bool(false), "copd": Bool(false), "current_smoker": Bool(false), "complex_pci": Bool(false),
		"diabetes": Bool(false), "prior_mi": Bool(false), "nstemi_stemi": Bool(false), "bare_metal_stent": Bool(false),
	}
}

// testConfig is the embedded scoring configuration.
func testConfig(t testing.TB) *Config {
	t.Helper()
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

// resultVerdict returns the result's own hbr verdict as the JSON reads it:
// true, false or nil (undecided). A result without a verdict fails.
func resultVerdict(t testing.TB, r *Result) any {
	t.Helper()
	if r.HBR == nil {
		t.Fatalf("%s: no hbr verdict on the result", r.Calculator)
	}
	if r.HBR.HBR == nil {
		return nil
	}
	return *r.HBR.HBR
}
