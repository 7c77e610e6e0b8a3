package calc

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// hbrBase scores 2 (base) + 0 everywhere: age 30, Hb 15, eGFR 100, WBC 3,
// no flags.
func hbrBase() Inputs {
	return Inputs{"age": Number(30, ""), "hemoglobin": Number(15, ""), "egfr": Number(100, ""), "wbc": Number(3, ""),
		"prior_bleeding": Bool(false), "oral_anticoagulation": Bool(false), "arc_hbr_other": Bool(false)}
}

func TestPreciseHBRTruncationEdges(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name      string
		input     string
		value     float64
		component string
		points    float64
		truncated string // "", "upper" or "lower"
	}{
		{"age 30 lower edge", "age", 30, "age", 0, ""},
		{"age 29 truncated to 30", "age", 29, "age", 0, "lower"},
		{"age 18 truncated to 30", "age", 18, "age", 0, "lower"},
		{"age 80 upper edge", "age", 80, "age", 12.5, ""},
		{"age 81 truncated to 80", "age", 81, "age", 12.5, "upper"},
		{"age 55", "age", 55, "age", 6.25, ""},
		{"Hb 15 upper edge", "hemoglobin", 15, "hemoglobin", 0, ""},
		{"Hb 15.1 truncated", "hemoglobin", 15.1, "hemoglobin", 0, "upper"},
		{"Hb 5 lower edge", "hemoglobin", 5, "hemoglobin", 25, ""},
		{"Hb 4.9 truncated", "hemoglobin", 4.9, "hemoglobin", 25, "lower"},
		{"Hb 12.3", "hemoglobin", 12.3, "hemoglobin", 6.75, ""},
		{"eGFR 100 upper edge", "egfr", 100, "egfr", 0, ""},
		{"eGFR 120 truncated", "egfr", 120, "egfr", 0, "upper"},
		{"eGFR 5 lower edge", "egfr", 5, "egfr", 5.225, ""},
		{"eGFR 4 truncated", "egfr", 4, "egfr", 5.225, "lower"},
		{"eGFR 50 uses weight 0.055", "egfr", 50, "egfr", 2.75, ""},
		{"WBC 15 upper edge", "wbc", 15, "wbc", 9.6, ""},
		{"WBC 16 truncated", "wbc", 16, "wbc", 9.6, "upper"},
		{"WBC 3 lower edge", "wbc", 3, "wbc", 0, ""},
		{"WBC 2 truncated", "wbc", 2, "wbc", 0, "lower"},
		{"WBC 0 truncated", "wbc", 0, "wbc", 0, "lower"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, "precise-hbr", with(hbrBase(), tt.input, tt.value))
			if r.Status != StatusOK {
				t.Fatalf("status %s, missing %v, warnings %v", r.Status, r.Missing, r.Warnings)
			}
			if got := component(t, r, tt.component); math.Abs(got-tt.points) > 1e-9 {
				t.Errorf("%s points = %v, want %v", tt.component, got, tt.points)
			}
			// A truncation the score defines is shown in its component's
			// row, never as a warning.
			var comp Component
			for _, c := range r.Components {
				if c.Name == tt.component {
					comp = c
				}
			}
			if comp.Truncated != tt.truncated || (tt.truncated != "") != (comp.Counted != nil) {
				t.Errorf("component %+v: truncated %q, want %q with the value counted", comp, comp.Truncated, tt.truncated)
			}
			if hasWarning(r, "truncat") {
				t.Errorf("a truncation the score defines is warned of: %v", r.Warnings)
			}
		})
	}
}

// exactHBR scores PRECISE-HBR in integer thousandths of a point, the way
// it is written on paper, so that it has no floating-point error: hb and
// wbc in tenths, age and egfr whole.
func exactHBR(age, hbTenths, egfr, wbcTenths int, prior, oac, other bool) int {
	cl := func(x, lo, hi int) int { return max(lo, min(hi, x)) }
	p := 2000 + 250*(cl(age, 30, 80)-30) + 250*(150-cl(hbTenths, 50, 150)) + 55*(100-cl(egfr, 5, 100)) + 80*(cl(wbcTenths, 30, 150)-30)
	if prior {
		p += 7000
	}
	if oac {
		p += 5000
	}
	if other {
		p += 3000
	}
	return p
}

func TestPreciseHBRHalfUpOnExactHalves(t *testing.T) {
	e := testEngine(t)
	cfg := e.Config()
	cd, _ := cfg.Calculator("precise-hbr")
	terms := cd.Points.Linear
	tests := []struct {
		age, hbTenths, egfr, wbcTenths int
		prior, oac, other              bool
		want                           float64
		category                       string
	}{
		{30, 108, 100, 30, false, false, false, 13, "not-hbr"}, // 12.5 on paper
		{30, 123, 50, 30, false, false, false, 12, "not-hbr"},  // 11.5
		{30, 98, 40, 45, false, false, false, 20, "not-hbr"},   // 19.5
		{30, 128, 100, 80, false, false, false, 12, "not-hbr"}, // 11.5
		{30, 124, 100, 80, true, false, true, 23, "hbr"},       // 22.5: half-even would say 22, not HBR
		{30, 108, 100, 30, true, false, true, 23, "hbr"},       // 22.5
		{30, 98, 40, 45, true, false, false, 27, "very-hbr"},   // 26.5
	}
	naiveLow := 0
	for _, tt := range tests {
		p := exactHBR(tt.age, tt.hbTenths, tt.egfr, tt.wbcTenths, tt.prior, tt.oac, tt.other)
		if p%1000 != 500 {
			t.Fatalf("case %+v is %d/1000 on paper, not an exact half", tt, p)
		}
		in := with(hbrBase(), "age", tt.age, "hemoglobin", float64(tt.hbTenths)/10, "egfr", tt.egfr, "wbc", float64(tt.wbcTenths)/10,
			"prior_bleeding", tt.prior, "oral_anticoagulation", tt.oac, "arc_hbr_other", tt.other)
		r := mustEval(t, e, "precise-hbr", in)
		score := num(t, r, "score")
		if score != tt.want || val(t, r, "score").Category != tt.category {
			t.Errorf("%+v: score %v (%s), want %v (%s)", tt, score, val(t, r, "score").Category, tt.want, tt.category)
		}
		// The same sum in plain float64, rounded without snapping.
		xs := []float64{float64(tt.age), float64(tt.hbTenths) / 10, float64(tt.egfr), float64(tt.wbcTenths) / 10}
		sum := 2.0
		for i, term := range terms {
			sum += *term.PointsPerUnit * (xs[i] - *term.Pivot)
		}
		if tt.prior {
			sum += 7
		}
		if tt.other {
			sum += 3
		}
		if math.Floor(sum+0.5) < tt.want {
			naiveLow++
		}
		if math.RoundToEven(float64(p)/1000) == tt.want && p/1000%2 == 0 {
			t.Errorf("%+v: banker's rounding would agree; the case does not test half up", tt)
		}
	}
	if naiveLow == 0 {
		t.Error("no case rounds down in naive float64 arithmetic; the table does not exercise the snap")
	}
}

// TestPreciseHBRMatchesExactArithmetic compares the engine with integer
// arithmetic over many random patients, including every truncation.
func TestPreciseHBRMatchesExactArithmetic(t *testing.T) {
	e := testEngine(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		age, hb, egfr, wbc := 18+rng.IntN(90), 30+rng.IntN(160), rng.IntN(130), rng.IntN(250)
		prior, oac, other := rng.IntN(2) == 1, rng.IntN(2) == 1, rng.IntN(2) == 1
		want := float64((exactHBR(age, hb, egfr, wbc, prior, oac, other) + 500) / 1000)
		r := mustEval(t, e, "precise-hbr", Inputs{"age": Number(float64(age), ""), "hemoglobin": Number(float64(hb)/10, ""),
			"egfr": Number(float64(egfr), ""), "wbc": Number(float64(wbc)/10, ""), "prior_bleeding": Bool(prior),
			"oral_anticoagulation": Bool(oac), "arc_hbr_other": Bool(other)})
		if got := num(t, r, "score"); got != want {
			t.Fatalf("age %d Hb %.1f eGFR %d WBC %.1f prior %v oac %v other %v: score %v, want %v", age, float64(hb)/10, egfr, float64(wbc)/10, prior, oac, other, got, want)
		}
	}
}

func TestPreciseHBRBandsAndRisk(t *testing.T) {
	e := testEngine(t)
	// Official calculator values (reference §3): 22 → 3.79%, 23 → 4.17%,
	// 26 → 5.54%, 27 → 6.09%; 45 → about 30%.
	tests := []struct {
		hbTenths int // age 30, eGFR 100, WBC 3: score = 2 + (15-Hb)*2.5
		prior    bool
		score    float64
		category string
		risk     float64
		tol      float64
	}{
		{70, false, 22, "not-hbr", 3.79, 0.03},
		{66, false, 23, "hbr", 4.17, 0.03},
		{54, false, 26, "hbr", 5.54, 0.03},
		{50, false, 27, "very-hbr", 6.09, 0.03},
		{50, true, 34, "very-hbr", math.NaN(), 0},
		{20, true, 34, "very-hbr", math.NaN(), 0}, // Hb 2 is below the plausible range but inside the domain: truncated to 5
	}
	for _, tt := range tests {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "hemoglobin", float64(tt.hbTenths)/10, "prior_bleeding", tt.prior))
		s := val(t, r, "score")
		if s.Value != tt.score || s.Category != tt.category {
			t.Errorf("Hb %.1f: score %v %s, want %v %s", float64(tt.hbTenths)/10, s.Value, s.Category, tt.score, tt.category)
		}
		if !math.IsNaN(tt.risk) {
			if got := num(t, r, "bleeding_1y"); math.Abs(got-tt.risk) > tt.tol {
				t.Errorf("score %v: risk %v%%, want %v%% ± %v", tt.score, got, tt.risk, tt.tol)
			}
		}
	}
	// Score 45: about 30% (reference §3), and no extrapolation warning up to 54.
	r := mustEval(t, e, "precise-hbr", with(hbrBase(), "age", 80, "hemoglobin", 7.2, "wbc", 8, "prior_bleeding", true))
	if got := num(t, r, "score"); got != 45 {
		t.Fatalf("score %v, want 45", got)
	}
	if got := num(t, r, "bleeding_1y"); math.Abs(got-30) > 0.5 {
		t.Errorf("risk at 45 = %v%%, want about 30%%", got)
	}
	if hasWarning(r, "extrapolation") {
		t.Errorf("unexpected extrapolation warning at 45: %v", r.Warnings)
	}
	// Above 54 the curve is an extrapolation, and says so.
	r = mustEval(t, e, "precise-hbr", with(hbrBase(), "age", 80, "hemoglobin", 6, "wbc", 15, "prior_bleeding", true, "oral_anticoagulation", true))
	if got := num(t, r, "score"); got <= 54 {
		t.Fatalf("score %v, want > 54", got)
	}
	if !hasWarning(r, "extrapolation") {
		t.Errorf("no extrapolation warning above 54: %v", r.Warnings)
	}
	if r.Status != StatusOK || len(r.Recommendations) != 0 {
		t.Errorf("status %s, recommendations %v: the HBR guidance is the summary's plan", r.Status, r.Recommendations)
	}
	// That plan, for an HBR patient without an OAC, is abbreviated DAPT.
	plan := e.Config().Plan(ptr(true), ptr(false), "")
	if len(plan) == 0 || !slices.ContainsFunc(plan, func(it PlanItem) bool { return it.Pathway == "dapt-abbreviated" }) {
		t.Errorf("HBR, no OAC: plan %+v lacks dapt-abbreviated", plan)
	}
}

func TestPreciseHBRMissingAndOutOfRange(t *testing.T) {
	e := testEngine(t)
	t.Run("missing WBC is never scored as zero", func(t *testing.T) {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "wbc", nil, "prior_bleeding", true))
		if r.Status != StatusIncomplete || !sameStrings(r.Missing, []string{"wbc"}) {
			t.Fatalf("status %s missing %v", r.Status, r.Missing)
		}
		if v := val(t, r, "score"); v.Value != nil {
			t.Errorf("score %v given although WBC is missing", v.Value)
		}
		if lb := num(t, r, "score_lower_bound"); lb != 9 {
			t.Errorf("lower bound %v, want 9", lb)
		}
		if _, ok := r.Value("bleeding_1y"); ok {
			t.Error("risk given although the score is incomplete")
		}
		if msg := r.Message.String(); !strings.Contains(msg, "counted as 0 points") || !strings.Contains(msg, "White blood cell count") || len(r.Warnings) != 0 {
			t.Errorf("the message %q must say what is missing and what it does to the score, without a warning: %v", msg, r.Warnings)
		}
	})
	t.Run("no eGFR and no creatinine asks for eGFR", func(t *testing.T) {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "egfr", nil))
		if r.Status != StatusIncomplete || !sameStrings(r.Missing, []string{"egfr"}) {
			t.Fatalf("status %s missing %v", r.Status, r.Missing)
		}
	})
	t.Run("creatinine without sex asks for sex", func(t *testing.T) {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "egfr", nil, "creatinine", 1.0))
		if r.Status != StatusIncomplete || !sameStrings(r.Missing, []string{"sex"}) {
			t.Fatalf("status %s missing %v", r.Status, r.Missing)
		}
	})
	t.Run("sex other than female or male is never defaulted", func(t *testing.T) {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "egfr", nil, "creatinine", 1.0, "sex", "other"))
		if r.Status != StatusIncomplete || !sameStrings(r.Missing, []string{"sex"}) || !hasWarning(r, "neither female nor male") {
			t.Fatalf("status %s missing %v warnings %v", r.Status, r.Missing, r.Warnings)
		}
	})
	t.Run("eGFR derived from creatinine says so", func(t *testing.T) {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "egfr", nil, "creatinine", 1.09, "sex", "male", "age", 55))
		var echo *InputEcho
		for i := range r.Inputs {
			if r.Inputs[i].Name == "egfr" {
				echo = &r.Inputs[i]
			}
		}
		if echo == nil || echo.Origin != OriginDerived || echo.Value != 80.0 || echo.Derivation.IsZero() {
			t.Fatalf("egfr echo %+v, want derived 80 with its derivation", echo)
		}
		if got := component(t, r, "egfr"); math.Abs(got-1.1) > 1e-9 {
			t.Errorf("egfr points %v, want 1.1", got)
		}
	})
	t.Run("reported eGFR wins over creatinine", func(t *testing.T) {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "egfr", 40, "creatinine", 1.0, "sex", "male"))
		if got := component(t, r, "egfr"); math.Abs(got-3.3) > 1e-9 {
			t.Errorf("egfr points %v, want 3.3", got)
		}
		for _, in := range r.Inputs {
			if in.Name == "creatinine" {
				t.Error("creatinine echoed although eGFR was reported")
			}
		}
	})
	for _, tt := range []struct {
		input string
		value float64
	}{{"age", 17}, {"age", 121}, {"wbc", -1}, {"hemoglobin", 0}, {"egfr", -5}} {
		t.Run("out of range "+tt.input, func(t *testing.T) {
			r := mustEval(t, e, "precise-hbr", with(hbrBase(), tt.input, tt.value))
			if r.Status != StatusOutOfRange || !sameStrings(r.OutOfRange, []string{tt.input}) || !hasWarning(r, tt.input) {
				t.Fatalf("status %s out_of_range %v warnings %v", r.Status, r.OutOfRange, r.Warnings)
			}
			if len(r.Values) != 0 || r.Message.IsZero() {
				t.Errorf("values %v message %q", r.Values, r.Message)
			}
		})
	}
}

func TestPreciseHBROtherCriterion(t *testing.T) {
	e := testEngine(t)
	subs := Inputs{"platelets": Number(150, ""), "bleeding_diathesis": Bool(false), "active_malignancy": Bool(false),
		"cirrhosis_portal_hypertension": Bool(false), "recent_major_surgery_trauma": Bool(false), "nsaid_or_steroid": Bool(false)}
	base := with(hbrBase(), "arc_hbr_other", nil).Overlay(subs)
	tests := []struct {
		name    string
		in      Inputs
		points  float64 // -1: undecided
		missing []string
		warning string
	}{
		{"platelets 99 counts", with(base, "platelets", 99), 3, nil, ""},
		{"platelets exactly 100 does not", with(base, "platelets", 100), 0, nil, ""},
		{"platelets in 10*3/uL", with(base, "platelets", Number(99, "10*3/uL")), 3, nil, ""},
		{"platelets in /uL", with(base, "platelets", Number(99000, "/uL")), 3, nil, ""},
		{"recent surgery counts", with(base, "recent_major_surgery_trauma", true), 3, nil, ""},
		{"NSAID or steroid counts", with(base, "nsaid_or_steroid", true), 3, nil, ""},
		{"none met", base, 0, nil, ""},
		{"one met decides despite unknowns", with(base, "active_malignancy", true, "platelets", nil, "bleeding_diathesis", nil), 3, nil, ""},
		{"unknowns ask for what is missing", with(base, "platelets", nil, "nsaid_or_steroid", nil), -1, []string{"platelets", "nsaid_or_steroid"}, ""},
		{"summary true", with(hbrBase(), "arc_hbr_other", true), 3, nil, ""},
		{"summary false but a criterion met", with(base, "arc_hbr_other", false, "platelets", 50), 3, nil, "was answered no"},
		{"summary false alone", with(hbrBase(), "arc_hbr_other", false), 0, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, "precise-hbr", tt.in)
			if tt.points < 0 {
				if r.Status != StatusIncomplete || !sameStrings(r.Missing, tt.missing) {
					t.Fatalf("status %s missing %v, want incomplete %v", r.Status, r.Missing, tt.missing)
				}
				return
			}
			if r.Status != StatusOK {
				t.Fatalf("status %s missing %v", r.Status, r.Missing)
			}
			if got := component(t, r, "arc_hbr_other"); got != tt.points {
				t.Errorf("points %v, want %v", got, tt.points)
			}
			if tt.warning != "" && !hasWarning(r, tt.warning) {
				t.Errorf("no warning %q: %v", tt.warning, r.Warnings)
			}
		})
	}
}

func TestPreciseHBRHemoglobinUnits(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		in     Input
		points float64
	}{
		{Number(12.3, "g/dL"), 6.75},
		{Number(12.3, ""), 6.75},
		{Number(123, "g/L"), 6.75},
		{Number(7.5, "mmol/L"), (15 - 7.5*1.611) * 2.5},
	}
	for _, tt := range tests {
		r := mustEval(t, e, "precise-hbr", with(hbrBase(), "hemoglobin", tt.in))
		if got := component(t, r, "hemoglobin"); math.Abs(got-tt.points) > 0.001 {
			t.Errorf("%v %s: points %v, want %v", tt.in.Value, tt.in.Unit, got, tt.points)
		}
	}
	_, err := e.Evaluate("precise-hbr", with(hbrBase(), "hemoglobin", Number(12, "mg")))
	var ie *InputError
	if !errors.As(err, &ie) || !errors.Is(err, ErrUnknownUnit) || ie.Input != "hemoglobin" {
		t.Errorf("unknown unit: err %v", err)
	}
}
