package mapping

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/calc"
)

// testEngine is the engine on the embedded scoring configuration, which the
// mapped inputs are scored with end to end.
func testEngine(t testing.TB) *calc.Engine {
	t.Helper()
	e, err := calc.NewEngine(testConfig(t))
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

// mustEval evaluates one calculator and fails on an error or on a result
// holding a number that JSON cannot carry.
func mustEval(t testing.TB, e *calc.Engine, id string, in calc.Inputs) *calc.Result {
	t.Helper()
	r, err := e.Evaluate(id, in)
	if err != nil {
		t.Fatalf("Evaluate(%s): %v", id, err)
	}
	checkFinite(t, r)
	return r
}

// checkFinite fails if the result does not encode as JSON, which refuses NaN
// and Inf anywhere in it.
func checkFinite(t testing.TB, r *calc.Result) {
	t.Helper()
	if _, err := json.Marshal(r); err != nil {
		t.Fatalf("%s: result does not encode: %v", r.Calculator, err)
	}
	for _, v := range r.Values {
		if f, ok := v.Value.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			t.Fatalf("%s: value %s is %v", r.Calculator, v.Name, f)
		}
	}
}

func val(t testing.TB, r *calc.Result, name string) calc.Value {
	t.Helper()
	v, ok := r.Value(name)
	if !ok {
		t.Fatalf("%s: no value %q in %+v (status %s, missing %v, warnings %v)", r.Calculator, name, r.Values, r.Status, r.Missing, r.Warnings)
	}
	return v
}

func num(t testing.TB, r *calc.Result, name string) float64 {
	t.Helper()
	v := val(t, r, name)
	f, ok := v.Value.(float64)
	if !ok {
		t.Fatalf("%s: value %q is %v (%T), not a number", r.Calculator, name, v.Value, v.Value)
	}
	return f
}

func component(t testing.TB, r *calc.Result, name string) float64 {
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

// metCriteria returns the ids of the ARC-HBR criteria met and undecided.
func metCriteria(r *calc.Result) (met, undecided []string) {
	for _, c := range r.Criteria {
		switch {
		case c.Met == nil:
			undecided = append(undecided, c.ID)
		case *c.Met:
			met = append(met, c.ID)
		}
	}
	return met, undecided
}

// sameStrings reports whether a and b hold the same strings, in any order.
func sameStrings(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}
