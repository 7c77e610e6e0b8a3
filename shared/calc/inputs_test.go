package calc

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestParseInputs(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name  string
		body  string
		err   error
		input string // the input an error names
		check func(t *testing.T, in Inputs)
	}{
		{name: "numbers, objects, booleans, strings and null", body: `{"age": 70, "hemoglobin": {"value": 120, "unit": "g/L"}, "wbc": {"value": 8}, "prior_bleeding": true, "sex": "female", "bleeding_history": "minor", "platelets": null}`,
			check: func(t *testing.T, in Inputs) {
				if in["age"].Value != 70.0 || in["hemoglobin"].Unit != "g/L" || in["hemoglobin"].Value != 120.0 || in["wbc"].Unit != "" ||
					in["prior_bleeding"].Value != true || in["sex"].Value != "female" || in["age"].Origin != OriginEntered {
					t.Errorf("parsed %+v", in)
				}
				if _, ok := in["platelets"]; ok {
					t.Error("null input kept")
				}
			}},
		{name: "unknown input", body: `{"agee": 70}`, err: ErrUnknownInput, input: "agee"},
		{name: "unknown unit", body: `{"hemoglobin": {"value": 12, "unit": "mg"}}`, err: ErrUnknownUnit, input: "hemoglobin"},
		{name: "plain mL/min is not an eGFR", body: `{"egfr": {"value": 50, "unit": "mL/min"}}`, err: ErrUnknownUnit, input: "egfr"},
		{name: "string for a number", body: `{"age": "70"}`, err: ErrWrongType, input: "age"},
		{name: "number for a boolean", body: `{"prior_bleeding": 1}`, err: ErrWrongType, input: "prior_bleeding"},
		{name: "string for a boolean", body: `{"prior_bleeding": "yes"}`, err: ErrWrongType, input: "prior_bleeding"},
		{name: "number for sex", body: `{"sex": 1}`, err: ErrWrongType, input: "sex"},
		{name: "array", body: `{"age": [70]}`, err: ErrWrongType, input: "age"},
		{name: "unit on a boolean", body: `{"prior_bleeding": {"value": 1, "unit": "a"}}`, err: ErrWrongType, input: "prior_bleeding"},
		{name: "object without value", body: `{"age": {"unit": "a"}}`, err: ErrWrongType, input: "age"},
		{name: "object with an unknown field", body: `{"age": {"value": 70, "units": "a"}}`, err: ErrWrongType, input: "age"},
		{name: "enum value not allowed", body: `{"bleeding_history": "sometimes"}`, err: ErrInvalidValue, input: "bleeding_history"},
		{name: "number too large for float64", body: `{"age": 1e999}`, err: ErrInvalidValue, input: "age"},
		{name: "conversion overflows", body: `{"hemoglobin": {"value": 1.5e308, "unit": "mmol/L"}}`, err: ErrInvalidValue, input: "hemoglobin"},
		{name: "any sex string is accepted", body: `{"sex": "unknown"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.body), &raw); err != nil {
				t.Fatal(err)
			}
			in, err := e.ParseInputs(raw, OriginEntered)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if tt.check != nil {
					tt.check(t, in)
				}
				return
			}
			var ie *InputError
			if !errors.Is(err, tt.err) || !errors.As(err, &ie) || ie.Input != tt.input {
				t.Fatalf("error %v, want %v naming %s", err, tt.err, tt.input)
			}
			if msg := err.Error(); len(msg) < 10 || msg[:6] != "calc: " {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	e := testEngine(t)
	if _, err := e.Evaluate("precise-xyz", nil); !errors.Is(err, ErrUnknownCalculator) {
		t.Errorf("unknown calculator: %v", err)
	}
	for _, tt := range []struct {
		in  Input
		err error
	}{
		{Input{Value: math.NaN()}, ErrInvalidValue},
		{Input{Value: math.Inf(1)}, ErrInvalidValue},
		{Input{Value: "70"}, ErrWrongType},
		{Input{Value: int64(70), Unit: "mo"}, ErrUnknownUnit},
	} {
		if _, err := e.Evaluate("precise-hbr", Inputs{"age": tt.in}); !errors.Is(err, tt.err) {
			t.Errorf("%v: error %v, want %v", tt.in, err, tt.err)
		}
	}
	if _, err := e.EvaluateAll(Inputs{"nonsense": Number(1, "")}); !errors.Is(err, ErrUnknownInput) {
		t.Errorf("EvaluateAll unknown input: %v", err)
	}
}

func TestProvenanceIsEchoed(t *testing.T) {
	e := testEngine(t)
	src := &Source{Reference: "Observation/hb-1", Code: "http://loinc.org|718-7", Date: "2025-01-02"}
	in := with(hbrBase(), "hemoglobin", Input{Value: 118.0, Unit: "g/L", Origin: OriginRecord, Source: src, Stale: true})
	r := mustEval(t, e, "precise-hbr", in)
	var echo *InputEcho
	for i := range r.Inputs {
		if r.Inputs[i].Name == "hemoglobin" {
			echo = &r.Inputs[i]
		}
	}
	if echo == nil {
		t.Fatal("hemoglobin not echoed")
	}
	if echo.Origin != OriginRecord || echo.Source != src || !echo.Stale || echo.Unit != "g/dL" || math.Abs(echo.Value.(float64)-11.8) > 1e-9 ||
		echo.Reported == nil || echo.Reported.Value != 118 || echo.Reported.Unit != "g/L" {
		t.Errorf("echo %+v (reported %+v)", echo, echo.Reported)
	}
	// Staleness is marked on the input; the mapping warns of it once for
	// every calculator, so the calculator does not warn again.
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %v: a stale input is marked, not warned by each calculator", r.Warnings)
	}
}

func TestPlausibilityWarning(t *testing.T) {
	e := testEngine(t)
	r := mustEval(t, e, "precise-hbr", with(hbrBase(), "hemoglobin", 2.5))
	if r.Status != StatusOK || !hasWarning(r, "plausible") {
		t.Errorf("status %s warnings %v", r.Status, r.Warnings)
	}
}

func TestEvaluateAllAndDeclaredInputs(t *testing.T) {
	e := testEngine(t)
	rs, err := e.EvaluateAll(fullInputs())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(e.Calculators()) || len(rs) != 6 {
		t.Fatalf("%d results for %d calculators", len(rs), len(e.Calculators()))
	}
	for i, r := range rs {
		info := e.Calculators()[i]
		if r.Calculator != info.ID || r.Status != StatusOK || len(r.Missing) != 0 || len(r.References) == 0 || r.ConfigVersion == "" {
			t.Errorf("%s: status %s missing %v", r.Calculator, r.Status, r.Missing)
		}
		declared := map[string]bool{}
		for _, in := range info.Inputs {
			declared[in.Name] = true
		}
		for _, in := range r.Inputs {
			if !declared[in.Name] {
				t.Errorf("%s read input %s, which it does not declare", r.Calculator, in.Name)
			}
		}
		checkFinite(t, r)
	}
}

func TestCalculatorsMetadata(t *testing.T) {
	e := testEngine(t)
	units := map[string][]string{
		"hemoglobin": {"g/dL", "g/L", "mmol/L"},
		"creatinine": {"mg/dL", "umol/L"},
		"wbc":        {"10*9/L", "10*3/uL", "/uL"},
		"platelets":  {"10*9/L", "10*3/uL", "/uL"},
		"weight":     {"kg", "[lb_av]", "g"},
	}
	ids := []string{}
	for _, c := range e.Calculators() {
		ids = append(ids, c.ID)
		if c.Title == "" || c.Equation.Name == "" || c.Equation.Version == "" || len(c.Inputs) == 0 || len(c.References) == 0 {
			t.Errorf("%s: incomplete metadata %+v", c.ID, c)
		}
		for _, in := range c.Inputs {
			if want, ok := units[in.Name]; ok && !sameStrings(in.Units, want) {
				t.Errorf("%s.%s units %v, want %v", c.ID, in.Name, in.Units, want)
			}
			if in.Type == TypeNumber && (in.Unit == "" || in.Units[0] != in.Unit) {
				t.Errorf("%s.%s canonical unit %q first in %v", c.ID, in.Name, in.Unit, in.Units)
			}
		}
	}
	if !sameStrings(ids, requiredCalculators) {
		t.Errorf("calculators %v", ids)
	}
}

// TestEngineConcurrentUse runs the engine from many goroutines; go test
// -race checks that an Engine is safe to share.
func TestEngineConcurrentUse(t *testing.T) {
	e := testEngine(t)
	want, _ := e.EvaluateAll(fullInputs())
	done := make(chan []*Result)
	for i := 0; i < 8; i++ {
		go func() {
			var last []*Result
			for j := 0; j < 50; j++ {
				last, _ = e.EvaluateAll(fullInputs())
			}
			done <- last
		}()
	}
	for i := 0; i < 8; i++ {
		got := <-done
		for k := range got {
			a, _ := json.Marshal(got[k])
			b, _ := json.Marshal(want[k])
			if string(a) != string(b) {
				t.Fatalf("%s differs under concurrency", got[k].Calculator)
			}
		}
	}
}
