package calc

import (
	"slices"
	"strings"
	"testing"
)

// arcNone meets no ARC-HBR criterion and decides every one.
func arcNone() Inputs {
	return Inputs{"age": Number(60, ""), "sex": Text("male"), "hemoglobin": Number(14, ""), "egfr": Number(90, ""),
		"platelets": Number(250, ""), "oral_anticoagulation": Bool(false), "bleeding_history": Text("none"),
		"intracranial_hemorrhage": Bool(false), "brain_avm": Bool(false), "ischemic_stroke": Text("none"),
		"bleeding_diathesis": Bool(false), "cirrhosis_portal_hypertension": Bool(false), "active_malignancy": Bool(false),
		"recent_major_surgery_trauma": Bool(false), "nondeferrable_major_surgery": Bool(false), "nsaid_or_steroid": Bool(false)}
}

// met returns the criteria met, as "id" strings, and the undecided ones.
func metCriteria(r *Result) (met, undecided []string) {
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

func TestARCHBRBoundaries(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name string
		in   Inputs
		met  []string
	}{
		{"no criterion", arcNone(), nil},
		{"Hb 10.9 male: major", with(arcNone(), "hemoglobin", 10.9), []string{"anemia-severe"}},
		{"Hb exactly 11 male: minor", with(arcNone(), "hemoglobin", 11), []string{"anemia-mild"}},
		{"Hb exactly 11 female: minor", with(arcNone(), "hemoglobin", 11, "sex", "female"), []string{"anemia-mild"}},
		{"Hb exactly 12 male: minor", with(arcNone(), "hemoglobin", 12), []string{"anemia-mild"}},
		{"Hb exactly 12 female: none", with(arcNone(), "hemoglobin", 12, "sex", "female"), nil},
		{"Hb 11.9 female: minor", with(arcNone(), "hemoglobin", 11.9, "sex", "female"), []string{"anemia-mild"}},
		{"Hb 12.9 male: minor", with(arcNone(), "hemoglobin", 12.9), []string{"anemia-mild"}},
		{"Hb 12.9 female: none", with(arcNone(), "hemoglobin", 12.9, "sex", "female"), nil},
		{"Hb exactly 13 male: none", with(arcNone(), "hemoglobin", 13), nil},
		{"Hb exactly 13 female: none", with(arcNone(), "hemoglobin", 13, "sex", "female"), nil},
		{"Hb 110 g/L male: minor", with(arcNone(), "hemoglobin", Number(110, "g/L")), []string{"anemia-mild"}},
		{"eGFR 29.9: major", with(arcNone(), "egfr", 29.9), []string{"ckd-severe"}},
		{"eGFR exactly 30: minor", with(arcNone(), "egfr", 30), []string{"ckd-moderate"}},
		{"eGFR 59.9: minor", with(arcNone(), "egfr", 59.9), []string{"ckd-moderate"}},
		{"eGFR exactly 60: none", with(arcNone(), "egfr", 60), nil},
		{"platelets 99.9: major", with(arcNone(), "platelets", 99.9), []string{"thrombocytopenia"}},
		{"platelets exactly 100: none", with(arcNone(), "platelets", 100), nil},
		{"age 74: none", with(arcNone(), "age", 74), nil},
		{"age exactly 75: minor", with(arcNone(), "age", 75), []string{"age"}},
		{"bleeding major only", with(arcNone(), "bleeding_history", "major"), []string{"bleeding-major"}},
		{"bleeding minor only", with(arcNone(), "bleeding_history", "minor"), []string{"bleeding-minor"}},
		{"stroke major only", with(arcNone(), "ischemic_stroke", "major"), []string{"stroke-major"}},
		{"stroke minor only", with(arcNone(), "ischemic_stroke", "minor"), []string{"stroke-minor"}},
		{"OAC", with(arcNone(), "oral_anticoagulation", true), []string{"oral-anticoagulation"}},
		{"ICH", with(arcNone(), "intracranial_hemorrhage", true), []string{"intracranial-hemorrhage"}},
		{"brain AVM", with(arcNone(), "brain_avm", true), []string{"brain-avm"}},
		{"NSAID or steroid", with(arcNone(), "nsaid_or_steroid", true), []string{"nsaid-steroid"}},
		{"non-deferrable surgery", with(arcNone(), "nondeferrable_major_surgery", true), []string{"nondeferrable-surgery"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, "arc-hbr", tt.in)
			if r.Status != StatusOK {
				t.Fatalf("status %s missing %v", r.Status, r.Missing)
			}
			met, _ := metCriteria(r)
			if !sameStrings(met, tt.met) {
				t.Errorf("met %v, want %v", met, tt.met)
			}
			// Each domain is met at one level at most.
			seen := map[string]bool{}
			for _, c := range r.Criteria {
				if c.Met != nil && *c.Met {
					if seen[c.Domain] {
						t.Errorf("domain %s met twice", c.Domain)
					}
					seen[c.Domain] = true
				}
			}
		})
	}
}

func TestARCHBRDecision(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name         string
		in           Inputs
		hbr          any
		major, minor float64
	}{
		{"nothing", arcNone(), false, 0, 0},
		{"one minor is not HBR", with(arcNone(), "age", 80), false, 0, 1},
		{"two minors is HBR", with(arcNone(), "age", 80, "egfr", 45), true, 0, 2},
		{"one major is HBR", with(arcNone(), "platelets", 50), true, 1, 0},
		{"minor Hb and minor age", with(arcNone(), "age", 75, "hemoglobin", 12.5), true, 0, 2},
		{"female Hb 12.5 and age 75 is one minor", with(arcNone(), "age", 75, "hemoglobin", 12.5, "sex", "female"), false, 0, 1},
		{"major and minor bleeding never both", with(arcNone(), "bleeding_history", "major", "age", 80), true, 1, 1},
		{"eGFR 20 counts once (major), not also minor", with(arcNone(), "egfr", 20), true, 1, 0},
		{"eGFR from creatinine", with(arcNone(), "egfr", nil, "creatinine", Number(300, "umol/L"), "age", 70), true, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, "arc-hbr", tt.in)
			if r.Status != StatusOK {
				t.Fatalf("status %s missing %v", r.Status, r.Missing)
			}
			if v := val(t, r, "hbr"); v.Value != tt.hbr {
				t.Errorf("hbr %v, want %v", v.Value, tt.hbr)
			}
			if got := resultVerdict(t, r); got != tt.hbr {
				t.Errorf("result's hbr verdict %v, want %v", got, tt.hbr)
			}
			if got := num(t, r, "major_count"); got != tt.major {
				t.Errorf("major %v, want %v", got, tt.major)
			}
			if got := num(t, r, "minor_count"); got != tt.minor {
				t.Errorf("minor %v, want %v", got, tt.minor)
			}
			wantCat := map[any]string{true: "hbr", false: "not-hbr"}[tt.hbr]
			if val(t, r, "hbr").Category != wantCat {
				t.Errorf("category %q, want %q", val(t, r, "hbr").Category, wantCat)
			}
			// The strategy for an HBR patient is the summary's cited plan
			// (Config.Plan), not a recommendation attached to the score.
			if len(r.Recommendations) != 0 {
				t.Errorf("recommendations %v for hbr %v: the plan carries the guidance", r.Recommendations, tt.hbr)
			}
		})
	}
}

func TestARCHBRUndecided(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name      string
		in        Inputs
		hbr       any // nil: undetermined
		missing   []string
		undecided []string
	}{
		// One undecided minor cannot make two: not HBR, though incomplete.
		{"Hb 12.5 without sex", with(arcNone(), "sex", nil, "hemoglobin", 12.5), false, []string{"sex"}, []string{"anemia-mild"}},
		{"Hb 12.5 without sex, age 80", with(arcNone(), "sex", nil, "hemoglobin", 12.5, "age", 80), nil, []string{"sex"}, []string{"anemia-mild"}},
		{"Hb 12.5 with sex other, age 80", with(arcNone(), "sex", "unknown", "hemoglobin", 12.5, "age", 80), nil, []string{"sex"}, []string{"anemia-mild"}},
		{"Hb 11.5 is minor for either sex", with(arcNone(), "sex", nil, "hemoglobin", 11.5), false, nil, nil},
		{"Hb 10 is major for either sex", with(arcNone(), "sex", nil, "hemoglobin", 10), true, nil, nil},
		{"Hb 14 is none for either sex", with(arcNone(), "sex", nil), false, nil, nil},
		{"platelets unknown", with(arcNone(), "platelets", nil), nil, []string{"platelets"}, []string{"thrombocytopenia"}},
		{"bleeding history unknown", with(arcNone(), "bleeding_history", nil), nil, []string{"bleeding_history"}, []string{"bleeding-major", "bleeding-minor"}},
		{"HBR already established", with(arcNone(), "oral_anticoagulation", true, "brain_avm", nil, "ischemic_stroke", nil), true,
			[]string{"brain_avm", "ischemic_stroke"}, []string{"brain-avm", "stroke-major", "stroke-minor"}},
		{"no eGFR or creatinine", with(arcNone(), "egfr", nil), nil, []string{"egfr"}, []string{"ckd-severe", "ckd-moderate"}},
		{"creatinine but no sex", with(arcNone(), "egfr", nil, "sex", nil, "creatinine", 1.0), nil, []string{"sex"}, []string{"ckd-severe", "ckd-moderate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, "arc-hbr", tt.in)
			wantStatus := StatusOK
			if len(tt.missing) > 0 {
				wantStatus = StatusIncomplete
			}
			if r.Status != wantStatus || !sameStrings(r.Missing, tt.missing) {
				t.Fatalf("status %s missing %v, want %s %v", r.Status, r.Missing, wantStatus, tt.missing)
			}
			_, undecided := metCriteria(r)
			if !sameStrings(undecided, tt.undecided) {
				t.Errorf("undecided %v, want %v", undecided, tt.undecided)
			}
			if v := val(t, r, "hbr"); v.Value != tt.hbr {
				t.Errorf("hbr %v, want %v", v.Value, tt.hbr)
			}
			// Undecided, the message names what to ask; decided despite
			// the unknowns, it says they cannot change the verdict (and
			// never that the risk may be underestimated).
			switch msg := r.Message.String(); {
			case len(tt.missing) > 0 && tt.hbr == nil && !strings.Contains(msg, e.Config().InputLabel(tt.missing[0]).String()):
				t.Errorf("the result does not name what to ask: %q", msg)
			case len(tt.missing) > 0 && tt.hbr != nil && (!strings.Contains(msg, "cannot change") && !strings.Contains(msg, "whatever")):
				t.Errorf("decided with unknowns, the message %q does not say they cannot change it", msg)
			case strings.Contains(msg, "underestimated"):
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestARCHBRAgeUnder18(t *testing.T) {
	e := testEngine(t)
	r := mustEval(t, e, "arc-hbr", with(arcNone(), "age", 17))
	if r.Status != StatusOutOfRange || !sameStrings(r.OutOfRange, []string{"age"}) || len(r.Criteria) != 0 {
		t.Fatalf("status %s out_of_range %v criteria %d", r.Status, r.OutOfRange, len(r.Criteria))
	}
}

// TestARCHBRAssumption: a planned operation is never in a record, so while
// nondeferrable_major_surgery is not given, ARC-HBR is decided from the
// rest with the assumption stated; what is only missing still leaves the
// verdict undetermined where it could change it, and an answer replaces
// the assumption.
func TestARCHBRAssumption(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name        string
		in          Inputs
		hbr         any
		status      Status
		assumptions int
	}{
		{"complete record, not HBR", with(arcNone(), "nondeferrable_major_surgery", nil), false, StatusOK, 1},
		{"complete record, one major", with(arcNone(), "nondeferrable_major_surgery", nil, "oral_anticoagulation", true), true, StatusOK, 1},
		{"Hb missing could change it", with(arcNone(), "nondeferrable_major_surgery", nil, "hemoglobin", nil), nil, StatusIncomplete, 1},
		{"answered no", arcNone(), false, StatusOK, 0},
		{"answered yes", with(arcNone(), "nondeferrable_major_surgery", true), true, StatusOK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, "arc-hbr", tt.in)
			if r.Status != tt.status || val(t, r, "hbr").Value != tt.hbr {
				t.Fatalf("status %s hbr %v missing %v, want %s %v", r.Status, val(t, r, "hbr").Value, r.Missing, tt.status, tt.hbr)
			}
			if got := resultVerdict(t, r); got != tt.hbr {
				t.Errorf("result's hbr verdict %v, want %v", got, tt.hbr)
			}
			if len(r.Assumptions) != tt.assumptions {
				t.Fatalf("assumptions %+v, want %d", r.Assumptions, tt.assumptions)
			}
			c := criterionOf(t, r, "nondeferrable-surgery")
			if tt.assumptions > 0 {
				a := r.Assumptions[0]
				if a.Input != "nondeferrable_major_surgery" || a.Criterion != "nondeferrable-surgery" || !strings.Contains(a.Statement.String(), "non-deferrable major surgery") {
					t.Errorf("assumption %+v", a)
				}
				if !c.Assumed || c.Met == nil || *c.Met || c.Evidence.String() != a.Statement.String() {
					t.Errorf("criterion %+v", c)
				}
				if slices.Contains(r.Missing, "nondeferrable_major_surgery") {
					t.Errorf("an assumed input is listed as missing: %v", r.Missing)
				}
			} else if c.Assumed {
				t.Errorf("answered criterion marked assumed: %+v", c)
			}
		})
	}
}

func criterionOf(t *testing.T, r *Result, id string) CriterionResult {
	t.Helper()
	c, ok := r.Criterion(id)
	if !ok {
		t.Fatalf("no criterion %s", id)
	}
	return c
}
