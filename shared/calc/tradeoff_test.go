package calc

import (
	"math"
	"strings"
	"testing"
)

func tradeoffNone() Inputs {
	return Inputs{"age": Number(60, ""), "hemoglobin": Number(14, ""), "egfr": Number(90, ""), "liver_cancer_surgery": Bool(false),
		"copd": Bool(false), "current_smoker": Bool(false), "complex_pci": Bool(false), "oral_anticoagulation": Bool(false),
		"diabetes": Bool(false), "prior_mi": Bool(false), "nstemi_stemi": Bool(false), "bare_metal_stent": Bool(false)}
}

func TestTradeoff(t *testing.T) {
	e := testEngine(t)
	p := func(p0, hr float64) float64 { return math.Round(100*(1-math.Pow(1-p0/100, hr))*100) / 100 }
	tests := []struct {
		name      string
		in        Inputs
		bleedHR   float64
		thromboHR float64
	}{
		{"no factor: baseline", tradeoffNone(), 1, 1},
		{"age 65 (edge)", with(tradeoffNone(), "age", 65), 1.50, 1},
		{"age 64", with(tradeoffNone(), "age", 64), 1, 1},
		{"Hb 11 (band 11-12.9)", with(tradeoffNone(), "hemoglobin", 11), 1.69, 1.27},
		{"Hb 12.9 (band, any sex)", with(tradeoffNone(), "hemoglobin", 12.9), 1.69, 1.27},
		{"Hb 13 (none)", with(tradeoffNone(), "hemoglobin", 13), 1, 1},
		{"Hb 10.9", with(tradeoffNone(), "hemoglobin", 10.9), 3.99, 1.50},
		{"eGFR 30 (bleeding HR 0.99)", with(tradeoffNone(), "egfr", 30), 0.99, 1.30},
		{"eGFR 59.9", with(tradeoffNone(), "egfr", 59.9), 0.99, 1.30},
		{"eGFR 60 (none)", with(tradeoffNone(), "egfr", 60), 1, 1},
		{"eGFR 29", with(tradeoffNone(), "egfr", 29), 1.43, 1.69},
		{"smoker", with(tradeoffNone(), "current_smoker", true), 1.47, 1.48},
		{"several", with(tradeoffNone(), "oral_anticoagulation", true, "complex_pci", true, "diabetes", true, "bare_metal_stent", true),
			2.00 * 1.32, 1.50 * 1.56 * 1.53},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, "arc-hbr-tradeoff", tt.in)
			if r.Status != StatusOK {
				t.Fatalf("status %s missing %v", r.Status, r.Missing)
			}
			if got, want := num(t, r, "bleeding_1y"), p(1.4, tt.bleedHR); math.Abs(got-want) > 0.005 {
				t.Errorf("bleeding %v, want %v", got, want)
			}
			if got, want := num(t, r, "thrombotic_1y"), p(1.4, tt.thromboHR); math.Abs(got-want) > 0.005 {
				t.Errorf("thrombotic %v, want %v", got, want)
			}
			// The model's caveat goes with its result, not among the
			// warnings about the patient's inputs.
			if !strings.Contains(r.Caveat.String(), "unverified parameters") || hasWarning(r, "unverified parameters") {
				t.Errorf("caveat %q, warnings %v", r.Caveat, r.Warnings)
			}
		})
	}
	r := mustEval(t, e, "arc-hbr-tradeoff", with(tradeoffNone(), "copd", nil))
	if r.Status != StatusIncomplete || !sameStrings(r.Missing, []string{"copd"}) || !strings.Contains(r.Caveat.String(), "unverified parameters") {
		t.Errorf("status %s missing %v warnings %v", r.Status, r.Missing, r.Warnings)
	}
	if v := val(t, r, "bleeding_1y"); v.Value != nil {
		t.Errorf("bleeding risk %v with COPD unknown", v.Value)
	}
}

// TestTradeoffParametersStayUnverified guards the project decision: until
// each trade-off parameter is checked against Urban 2021, it says so.
func TestTradeoffParametersStayUnverified(t *testing.T) {
	cfg, _ := LoadConfig()
	cd, _ := cfg.Calculator("arc-hbr-tradeoff")
	h := cd.Hazard
	for _, f := range h.Factors {
		if f.Provenance.IsVerified() {
			t.Errorf("factor %s is marked verified", f.ID)
		}
	}
	for _, o := range h.Outcomes {
		if o.Provenance.IsVerified() {
			t.Errorf("baseline %s is marked verified", o.Name)
		}
	}
	if h.FormulaProvenance.IsVerified() || h.MortalityRatio.Provenance.IsVerified() {
		t.Error("trade-off formula or mortality ratio marked verified")
	}
}

// TestTradeoffRangeWhileIncomplete: with predictors unknown, each outcome
// has no value but the range the unknowns could span, whose ends are the
// risks with every unknown factor absent and present (for flags, exactly).
func TestTradeoffRangeWhileIncomplete(t *testing.T) {
	e := testEngine(t)
	base := with(tradeoffNone(), "age", 70)
	unknown := with(base, "current_smoker", nil, "complex_pci", nil)
	r := mustEval(t, e, "arc-hbr-tradeoff", unknown)
	absent := mustEval(t, e, "arc-hbr-tradeoff", base)
	present := mustEval(t, e, "arc-hbr-tradeoff", with(base, "current_smoker", true, "complex_pci", true))
	if r.Status != StatusIncomplete {
		t.Fatalf("status %s", r.Status)
	}
	for _, name := range []string{"bleeding_1y", "thrombotic_1y"} {
		v := val(t, r, name)
		if v.Value != nil || v.Range == nil {
			t.Fatalf("%s = %+v, want no value and a range", name, v)
		}
		lo, hi := math.Min(num(t, absent, name), num(t, present, name)), math.Max(num(t, absent, name), num(t, present, name))
		if v.Range.Min != lo || v.Range.Max != hi {
			t.Errorf("%s range %+v, want [%v, %v]", name, *v.Range, lo, hi)
		}
		if v := val(t, absent, name); v.Range != nil {
			t.Errorf("a complete result carries a range: %+v", v)
		}
	}
	// An unknown numeric input spans its levels too: Hb unknown includes
	// the highest bleeding ratio of its bands.
	r = mustEval(t, e, "arc-hbr-tradeoff", with(base, "hemoglobin", nil))
	severe := mustEval(t, e, "arc-hbr-tradeoff", with(base, "hemoglobin", 10))
	if v := val(t, r, "bleeding_1y"); v.Range == nil || v.Range.Max < num(t, severe, "bleeding_1y") || v.Range.Min != num(t, absent, "bleeding_1y") {
		t.Errorf("Hb unknown: bleeding range %+v, want it to reach %v from %v", v.Range, num(t, severe, "bleeding_1y"), num(t, absent, "bleeding_1y"))
	}
}

// TestTradeoffPercentagesLabelled: every trade-off percentage, complete or
// a range, carries the note that it comes from a different model than
// PRECISE-HBR, with unverified parameters.
func TestTradeoffPercentagesLabelled(t *testing.T) {
	e := testEngine(t)
	cd, _ := e.Config().Calculator("arc-hbr-tradeoff")
	note := cd.Hazard.PercentNote
	if note == "" || !strings.Contains(note, "PRECISE-HBR") || !strings.Contains(note, "unverified") {
		t.Fatalf("percent_note %q: want it to say the model is not PRECISE-HBR and unverified", note)
	}
	for _, in := range []Inputs{tradeoffNone(), with(tradeoffNone(), "copd", nil)} {
		r := mustEval(t, e, "arc-hbr-tradeoff", in)
		if len(r.Values) == 0 {
			t.Fatalf("no values: %+v", r)
		}
		for _, v := range r.Values {
			if v.Note.String() != note {
				t.Errorf("%s (%s): note %q, want %q", v.Name, r.Status, v.Note, note)
			}
		}
	}
}
