package calc

import (
	"math"
	"testing"
)

// daptZero scores 0: Hb 12, WBC 5, age 50, CrCl 100, no bleeding.
func daptZero() Inputs {
	return Inputs{"hemoglobin": Number(12, ""), "wbc": Number(5, ""), "age": Number(50, ""), "crcl": Number(100, ""), "prior_bleeding": Bool(false)}
}

func TestPreciseDAPTAxisEnds(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		input     string
		value     any
		component string
		points    float64
	}{
		{"hemoglobin", 12.0, "hemoglobin", 0},
		{"hemoglobin", 13.5, "hemoglobin", 0},
		{"hemoglobin", 11.0, "hemoglobin", 7.5},
		{"hemoglobin", 10.0, "hemoglobin", 15},
		{"hemoglobin", 8.0, "hemoglobin", 15},
		{"wbc", 5.0, "wbc", 0},
		{"wbc", 3.0, "wbc", 0},
		{"wbc", 12.5, "wbc", 7.5},
		{"wbc", 20.0, "wbc", 15},
		{"wbc", 30.0, "wbc", 15},
		{"age", 50.0, "age", 0},
		{"age", 40.0, "age", 0},
		{"age", 70.0, "age", 9.5},
		{"age", 90.0, "age", 19},
		{"age", 95.0, "age", 19},
		{"crcl", 100.0, "crcl", 0},
		{"crcl", 130.0, "crcl", 0},
		{"crcl", 50.0, "crcl", 12.5},
		{"crcl", 0.0, "crcl", 25},
		{"prior_bleeding", true, "prior_bleeding", 26},
		{"prior_bleeding", false, "prior_bleeding", 0},
	}
	for _, tt := range tests {
		r := mustEval(t, e, "precise-dapt", with(daptZero(), tt.input, tt.value))
		if r.Status != StatusOK {
			t.Fatalf("%s %v: status %s", tt.input, tt.value, r.Status)
		}
		if got := component(t, r, tt.component); math.Abs(got-tt.points) > 1e-9 {
			t.Errorf("%s %v: points %v, want %v", tt.input, tt.value, got, tt.points)
		}
		if got := num(t, r, "score"); got != math.Floor(tt.points+0.5) {
			t.Errorf("%s %v: score %v, want %v", tt.input, tt.value, got, math.Floor(tt.points+0.5))
		}
		if hasWarning(r, "truncated") {
			t.Errorf("nomogram axis ends are not truncation warnings: %v", r.Warnings)
		}
	}
	// Every axis at its maximum plus bleeding: 100.
	r := mustEval(t, e, "precise-dapt", Inputs{"hemoglobin": Number(9, ""), "wbc": Number(25, ""), "age": Number(95, ""), "crcl": Number(0, ""), "prior_bleeding": Bool(true)})
	if got := num(t, r, "score"); got != 100 {
		t.Errorf("maximum score %v, want 100", got)
	}
}

func TestPreciseDAPTBandsAndHalves(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		in       Inputs
		score    float64
		category string
	}{
		{with(daptZero(), "hemoglobin", 10.667), 10, "very-low"}, // 9.999
		{with(daptZero(), "crcl", 56), 11, "low"},                // exactly 11
		{with(daptZero(), "crcl", 58), 11, "low"},                // 10.5 rounds up
		{with(daptZero(), "crcl", 32), 17, "low"},                // exactly 17
		{with(daptZero(), "crcl", 30), 18, "moderate"},           // 17.5 rounds up
		{with(daptZero(), "crcl", 4), 24, "moderate"},            // exactly 24
		{with(daptZero(), "crcl", 2), 25, "high"},                // 24.5 rounds up
		{with(daptZero(), "prior_bleeding", true), 26, "high"},
	}
	for _, tt := range tests {
		r := mustEval(t, e, "precise-dapt", tt.in)
		s := val(t, r, "score")
		if s.Value != tt.score || s.Category != tt.category {
			t.Errorf("%v: score %v %s, want %v %s", tt.in["crcl"].Value, s.Value, s.Category, tt.score, tt.category)
		}
		if _, ok := r.Value("bleeding_1y"); ok {
			t.Error("PRECISE-DAPT shows no risk percentage")
		}
		if (tt.category == "high") != (len(r.Recommendations) == 1 && r.Recommendations[0] == "short-dapt-precise-dapt") {
			t.Errorf("recommendations %v for %s", r.Recommendations, tt.category)
		}
	}
}

func TestPreciseDAPTCrClFromCreatinine(t *testing.T) {
	e := testEngine(t)
	base := with(daptZero(), "crcl", nil, "creatinine", 1.09, "age", 55, "sex", "male", "weight", 90)
	r := mustEval(t, e, "precise-dapt", base)
	if r.Status != StatusOK {
		t.Fatalf("status %s missing %v", r.Status, r.Missing)
	}
	crcl := (140 - 55.0) * 90 / (72 * 1.09)
	want := 25 * (100 - math.Round(crcl*10)/10) / 100
	if crcl >= 100 {
		want = 0
	}
	if got := component(t, r, "crcl"); math.Abs(got-want) > 0.001 {
		t.Errorf("crcl points %v, want %v (CrCl %.1f)", got, want, crcl)
	}
	// Weight in pounds converts exactly.
	r2 := mustEval(t, e, "precise-dapt", with(base, "weight", Number(90/0.45359237, "[lb_av]")))
	if component(t, r2, "crcl") != component(t, r, "crcl") {
		t.Errorf("weight in [lb_av] scores %v, kg %v", component(t, r2, "crcl"), component(t, r, "crcl"))
	}
	// Missing weight asks for weight; PRECISE-DAPT never uses eGFR.
	r3 := mustEval(t, e, "precise-dapt", with(base, "weight", nil, "egfr", 40))
	if r3.Status != StatusIncomplete || !sameStrings(r3.Missing, []string{"weight"}) {
		t.Errorf("status %s missing %v", r3.Status, r3.Missing)
	}
	r4 := mustEval(t, e, "precise-dapt", with(daptZero(), "crcl", nil))
	if !sameStrings(r4.Missing, []string{"crcl"}) {
		t.Errorf("missing %v, want [crcl]", r4.Missing)
	}
}
