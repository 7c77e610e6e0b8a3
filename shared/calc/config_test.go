package calc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatalf("embedded configuration is invalid: %v", err)
	}
	if !versionRE().MatchString(cfg.Version) || !bytes.Equal(cfg.Raw(), embeddedConfig) || !strings.Contains(cfg.ETag(), cfg.Version) {
		t.Errorf("version %q etag %q", cfg.Version, cfg.ETag())
	}
	cd, _ := cfg.Calculator("precise-hbr")
	for _, term := range cd.Points.Linear {
		if term.Input == "egfr" && *term.PointsPerUnit != -0.055 {
			t.Errorf("PRECISE-HBR eGFR weight %v, want 0.055 (decision 6)", -*term.PointsPerUnit)
		}
	}
	if cfg.Rounding.Method != "half-up" {
		t.Errorf("rounding %q", cfg.Rounding.Method)
	}
}

// mutate loads the embedded configuration as generic JSON, applies f and
// parses the result.
func mutate(t *testing.T, f func(m map[string]any)) error {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(embeddedConfig, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseConfig(b)
	return err
}

func obj(v any, path ...any) map[string]any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v.(map[string]any)
}

func TestParseConfigRejects(t *testing.T) {
	calcs := func(m map[string]any, i int) map[string]any { return obj(m, "calculators", i) }
	tests := []struct {
		name string
		f    func(m map[string]any)
		path string // the field the error must name
	}{
		{"missing version", func(m map[string]any) { delete(m, "version") }, "version"},
		{"bad version", func(m map[string]any) { m["version"] = "v1" }, "version"},
		{"banker's rounding", func(m map[string]any) { obj(m, "rounding")["method"] = "half-even" }, "rounding.method"},
		{"snap not 1/N", func(m map[string]any) { obj(m, "rounding")["snap"] = 0.3e-9 }, "rounding.snap"},
		{"missing coefficient", func(m map[string]any) { delete(obj(calcs(m, 0), "points", "linear", 2), "points_per_unit") },
			"calculators[precise-hbr].points.linear[2].points_per_unit"},
		{"coefficient of the wrong type", func(m map[string]any) { obj(calcs(m, 0), "points", "linear", 2)["points_per_unit"] = "0.055" }, "(document)"},
		{"missing verified", func(m map[string]any) { delete(obj(calcs(m, 0), "points", "linear", 0, "provenance"), "verified") },
			"calculators[precise-hbr].points.linear[0].provenance.verified"},
		{"missing table", func(m map[string]any) { delete(obj(calcs(m, 0), "points", "flags", 0, "provenance"), "table") },
			"calculators[precise-hbr].points.flags[0].provenance.table"},
		{"unknown source", func(m map[string]any) { obj(calcs(m, 0), "points", "base", "provenance")["source"] = "nobody2020" },
			"calculators[precise-hbr].points.base.provenance.source"},
		{"unknown field", func(m map[string]any) { obj(calcs(m, 0), "points")["egfr_weight"] = 0.05 }, "(document)"},
		{"truncation min above max", func(m map[string]any) { obj(calcs(m, 0), "points", "linear", 0, "truncate")["min"] = 90.0 },
			"calculators[precise-hbr].points.linear[0].truncate"},
		{"bands not ascending", func(m map[string]any) { obj(calcs(m, 0), "points", "bands", 2)["from"] = 20.0 },
			"calculators[precise-hbr].points.bands[2].from"},
		{"first band with a bound", func(m map[string]any) { obj(calcs(m, 0), "points", "bands", 0)["from"] = 0.0 },
			"calculators[precise-hbr].points.bands[0].from"},
		{"unknown criterion", func(m map[string]any) {
			obj(calcs(m, 0), "points", "any_of", 0)["criteria"] = []any{"thrombocytopenia", "nope"}
		}, "calculators[precise-hbr].points.any_of[0].criteria"},
		{"major and minor overlap", func(m map[string]any) { obj(calcs(m, 1), "criteria", "items", 2, "rule")["threshold"] = 45.0 },
			"calculators[arc-hbr].criteria.items"},
		{"two majors in one domain", func(m map[string]any) { obj(calcs(m, 1), "criteria", "items", 3)["level"] = "major" },
			"calculators[arc-hbr].criteria.items[3].level"},
		{"rule on an undeclared input", func(m map[string]any) { obj(calcs(m, 1), "criteria", "items", 1, "rule")["input"] = "diabetes" },
			"calculators[arc-hbr].criteria.items[1].rule.input"},
		{"hazard ratio for an unknown outcome", func(m map[string]any) {
			obj(calcs(m, 3), "hazard", "factors", 0)["hazard_ratios"] = map[string]any{"death_1y": 1.5}
		}, "calculators[arc-hbr-tradeoff].hazard.factors[0].hazard_ratios.death_1y"},
		{"baseline risk of 100%", func(m map[string]any) { obj(calcs(m, 3), "hazard", "outcomes", 0)["baseline_percent"] = 100.0 },
			"calculators[arc-hbr-tradeoff].hazard.outcomes[0].baseline_percent"},
		{"CKD-EPI without kappa for women", func(m map[string]any) { delete(obj(calcs(m, 4), "ckd_epi", "kappa"), "female") },
			"calculators[egfr-ckd-epi-2021].ckd_epi.kappa.female"},
		{"missing calculator", func(m map[string]any) { m["calculators"] = m["calculators"].([]any)[:5] }, "calculators"},
		{"unit with multiply and divide", func(m map[string]any) { obj(m, "quantities", "creatinine", "units", 0)["multiply"] = 0.0113 },
			"quantities.creatinine.units[0]"},
		{"unit without a factor", func(m map[string]any) { delete(obj(m, "quantities", "creatinine", "units", 0), "divide") },
			"quantities.creatinine.units[0]"},
		{"unit listed twice", func(m map[string]any) { obj(m, "quantities", "hemoglobin", "units", 0)["code"] = "g/dL" },
			"quantities.hemoglobin.units[0]"},
		{"input without a domain", func(m map[string]any) { delete(obj(m, "inputs", "age"), "domain") }, "inputs.age.domain"},
		{"plausible outside the domain", func(m map[string]any) { obj(m, "inputs", "age", "plausible")["min"] = 10.0 }, "inputs.age.plausible"},
		{"unknown input type", func(m map[string]any) { obj(m, "inputs", "copd")["type"] = "flag" }, "inputs.copd.type"},
		{"recommendation for an unknown category", func(m map[string]any) {
			obj(m, "recommendations", "items", 0, "applies_to", 0)["categories"] = []any{"extreme"}
		}, "recommendations.items[0].applies_to[0].categories"},
		{"code set with an unknown system", func(m map[string]any) { obj(m, "codes", "conditions", "brain-avm", "include", 0)["system"] = "icd9" },
			"codes.conditions.brain-avm.include[0].system"},
		{"bad code range", func(m map[string]any) {
			obj(m, "codes", "conditions", "active-malignancy", "include", 0)["codes"] = []any{"C96-C00"}
		}, "codes.conditions.active-malignancy.include[0].codes"},
		{"no change log", func(m map[string]any) { delete(m, "changes") }, "changes"},
		{"version moved without a change-log entry", func(m map[string]any) { m["version"] = "2027.1.0" }, "changes[0].version"},
		{"change-log entry without changes", func(m map[string]any) { obj(m, "changes", 0)["changes"] = []any{} }, "changes[0].changes"},
		{"change-log entry with a bad date", func(m map[string]any) { obj(m, "changes", 0)["date"] = "1 Dec 2026" }, "changes[0].date"},
		{"code verified without a quote", func(m map[string]any) {
			delete(obj(obj(m, "codes", "conditions", "bleeding-diathesis", "include", 0)["codes"].([]any)[0], "checked"), "quote")
		}, "codes.conditions.bleeding-diathesis.include[0].codes[0].checked.quote"},
		{"code verified by the project reference", func(m map[string]any) {
			ck := obj(obj(m, "codes", "conditions", "brain-avm", "include", 0)["codes"].([]any)[0], "checked")
			ck["source"], ck["verified"], ck["quote"] = "smartcalc-reference", true, "Q28.2 Arteriovenous malformation of cerebral vessels"
		}, "codes.conditions.brain-avm.include[0].codes[0].checked.source"},
		{"code check without verified", func(m map[string]any) {
			delete(obj(obj(m, "codes", "conditions", "brain-avm", "include", 0)["codes"].([]any)[0], "checked"), "verified")
		}, "codes.conditions.brain-avm.include[0].codes[0].checked.verified"},
		{"code check from an unknown source", func(m map[string]any) {
			obj(obj(m, "codes", "labs", "wbc", "codes", 0), "checked")["source"] = "somewhere"
		}, "codes.labs.wbc.codes[0].checked.source"},
		{"unknown field in a code", func(m map[string]any) {
			obj(m, "codes", "conditions", "brain-avm", "include", 0)["codes"].([]any)[0].(map[string]any)["name"] = "AVM"
		}, "(document)"},
		{"ask on a procedure set", func(m map[string]any) { obj(m, "codes", "procedures", "transfusion")["ask"] = true }, "codes.procedures.transfusion.ask"},
		{"lab without codes", func(m map[string]any) { obj(m, "codes", "labs", "wbc")["codes"] = []any{} }, "codes.labs.wbc.codes"},
		{"free-text band risk", func(m map[string]any) {
			obj(calcs(m, 0), "points", "bands", 1)["risk"] = "4% to <6% 1-year BARC 3/5 bleeding"
		}, "(document)"},
		{"risk ranges with a gap", func(m map[string]any) { obj(calcs(m, 0), "points", "bands", 2, "risk_percent")["min"] = 7.0 },
			"calculators[precise-hbr].points.bands[2].risk_percent.min"},
		{"risk range upside down", func(m map[string]any) {
			obj(calcs(m, 0), "points", "bands", 1)["risk_percent"] = map[string]any{"min": 6.0, "max": 4.0}
		},
			"calculators[precise-hbr].points.bands[1].risk_percent"},
		{"risk range above 100%", func(m map[string]any) { obj(calcs(m, 0), "points", "bands", 2, "risk_percent")["min"] = 600.0 },
			"calculators[precise-hbr].points.bands[2].risk_percent.min"},
		{"middle band open below", func(m map[string]any) { delete(obj(calcs(m, 0), "points", "bands", 1, "risk_percent"), "min") },
			"calculators[precise-hbr].points.bands[1].risk_percent.min"},
		{"one band without a risk range", func(m map[string]any) { delete(obj(calcs(m, 0), "points", "bands", 1), "risk_percent") },
			"calculators[precise-hbr].points.bands"},
		{"risk ranges without their outcome", func(m map[string]any) { delete(obj(calcs(m, 0), "points"), "bands_risk_outcome") },
			"calculators[precise-hbr].points.bands_risk_outcome"},
		{"outcome without risk ranges", func(m map[string]any) { obj(calcs(m, 2), "points")["bands_risk_outcome"] = "bleeding" },
			"calculators[precise-dapt].points.bands_risk_outcome"},
		{"risk range the curve does not reach", func(m map[string]any) {
			obj(calcs(m, 0), "points", "bands", 0, "risk_percent")["max"] = 5.0
			obj(calcs(m, 0), "points", "bands", 1, "risk_percent")["min"] = 5.0
		}, "calculators[precise-hbr].points.bands[1].risk_percent.min"},
		{"placeholder naming no number of its rule", func(m map[string]any) { obj(calcs(m, 1), "criteria", "items", 0)["name"] = "Age ≥{max} years" },
			"calculators[arc-hbr].criteria.items[0].name"},
		{"placeholder in a text without numbers", func(m map[string]any) { obj(m, "inputs", "copd")["label"] = "COPD {threshold}" }, "inputs.copd.label"},
		{"window the code sets disagree on", func(m map[string]any) { obj(m, "codes", "conditions", "nihss-5-or-more")["window_months"] = 3 },
			"calculators[arc-hbr].criteria.items[14].name"},
		{"two texts with one translation key", func(m map[string]any) {
			obj(calcs(m, 0), "points", "bands", 2)["category"] = "hbr.note"
			obj(calcs(m, 0), "points", "bands", 1)["note"] = "a note"
		}, "calculators[precise-hbr].points.bands[2].label"},
		{"trailing data", nil, "(document)"},
		{"summary HBR category unknown", func(m map[string]any) {
			obj(m, "summary", "hbr_categories")["precise-hbr"] = []any{"hbr", "moderate"}
		}, "summary.hbr_categories.precise-hbr"},
		{"summary says PRECISE-HBR does not weigh what it weighs", func(m map[string]any) {
			obj(m, "summary")["precise_hbr_not_weighed"] = []any{"intracranial_hemorrhage", "hemoglobin"}
		}, "summary.precise_hbr_not_weighed[1]"},
		{"summary reason without its text", func(m map[string]any) { delete(obj(m, "summary", "texts"), "not-hbr") }, "summary.texts.not-hbr"},
		{"an assumption that raises the risk", func(m map[string]any) { assumption(m)["met"] = true },
			"calculators[arc-hbr].criteria.items[" + assumedIndex(t) + "].assume.met"},
		{"an assumption without its statement", func(m map[string]any) { assumption(m)["statement"] = "" },
			"calculators[arc-hbr].criteria.items[" + assumedIndex(t) + "].assume.statement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.f == nil {
				_, err = ParseConfig(append(append([]byte{}, embeddedConfig...), []byte(" {}")...))
			} else {
				err = mutate(t, tt.f)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), "calc: config: "+tt.path+":") {
				t.Errorf("error does not name %s:\n%v", tt.path, err)
			}
		})
	}
}

func TestNewEngineNeedsValidatedConfig(t *testing.T) {
	if _, err := NewEngine(nil); err == nil {
		t.Error("NewEngine(nil) accepted")
	}
	if _, err := NewEngine(&Config{}); err == nil {
		t.Error("NewEngine with an unvalidated configuration accepted")
	}
}

func TestRoundHalfUp(t *testing.T) {
	e := testEngine(t)
	tests := []struct{ x, want float64 }{
		{22.5, 23}, {22.499999999999996, 23}, {22.500000000000004, 23}, {22.4999, 22}, {22.49999999, 22},
		{0.5, 1}, {1.5, 2}, {2.5, 3}, {3.5, 4}, {0, 0}, {0.4999999999999, 1}, {12.499999999999998, 13},
		{-0.5, 0}, {-1.5, -1}, {-2.500001, -3}, {1e12 + 0.5, 1e12 + 1},
	}
	for _, tt := range tests {
		if got := e.roundHalfUp(tt.x); got != tt.want {
			t.Errorf("roundHalfUp(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	if got := e.roundTo(4.165, 2); got != 4.17 {
		t.Errorf("roundTo(4.165, 2) = %v, want 4.17", got)
	}
	if got := e.roundTo(2.675, 2); got != 2.68 {
		t.Errorf("roundTo(2.675, 2) = %v, want 2.68", got)
	}
}

// parseMutated is mutate returning the configuration.
func parseMutated(t *testing.T, f func(m map[string]any)) *Config {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(embeddedConfig, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestConfigTextsFilled checks that texts name configuration numbers
// through placeholders: the parsed configuration holds them filled, and a
// changed parameter changes the text with it.
func TestConfigTextsFilled(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	arc, _ := cfg.Calculator("arc-hbr")
	phbr, _ := cfg.Calculator("precise-hbr")
	pdapt, _ := cfg.Calculator("precise-dapt")
	egfr, _ := cfg.Calculator("egfr-ckd-epi-2021")
	tradeoff, _ := cfg.Calculator("arc-hbr-tradeoff")
	name := func(cd *CalculatorDef, id string) string {
		cr, _ := cd.criterion(id)
		return cr.Name
	}
	for _, tt := range []struct{ got, want string }{
		{name(arc, "age"), "Age ≥75 years"},
		{name(arc, "ckd-moderate"), "Moderate CKD (eGFR 30-59)"},
		{name(arc, "anemia-mild"), "Hemoglobin 11 to <13 g/dL (men) or 11 to <12 g/dL (women)"},
		{name(arc, "stroke-major"), "Moderate or severe ischaemic stroke (NIHSS ≥5) within 6 months"},
		{name(arc, "intracranial-hemorrhage"), "Spontaneous ICH at any time, or traumatic ICH within 12 months"},
		{name(arc, "recent-surgery-trauma"), "Major surgery or major trauma within 30 days before PCI"},
		{arc.Description, "High bleeding risk (1-year BARC 3/5 bleeding ≥4% or intracranial haemorrhage ≥1%) when at least 1 major or 2 minor criteria are met."},
		{tradeoff.Hazard.Factors[4].Label, "Hemoglobin 11 to <13 g/dL"},
		{egfr.Bands[0].Label, "G5 kidney failure (<15)"},
		{egfr.Bands[1].Label, "G4 severely decreased (15-29)"},
		{egfr.Bands[5].Label, "G1 normal or high (≥90)"},
		{phbr.Points.Bands[0].Risk, "<4% 1-year BARC 3/5 bleeding"},
		{phbr.Points.Bands[1].Risk, "4% to <6% 1-year BARC 3/5 bleeding"},
		{phbr.Points.Bands[2].Risk, "≥6% 1-year BARC 3/5 bleeding"},
		{pdapt.Points.Bands[0].Risk, "derivation quartile 1"},
		{cfg.Recommendations.Items[0].Text, "A PRECISE-DAPT score ≥25 favours short DAPT (3-6 months): in the trials, 12-24 months of DAPT increased bleeding without ischaemic benefit at these scores."},
		{cfg.Inputs["ischemic_stroke"].Description, "major: moderate or severe (NIHSS ≥5) within 6 months; minor: any other ischaemic stroke at any time; none otherwise."},
		{name(arc, "bleeding-minor"), "First spontaneous bleeding needing hospitalisation or transfusion 6-12 months ago"},
		{cfg.Inputs["nsaid_or_steroid"].Description, "Long-term oral NSAIDs (never aspirin) or systemic steroids planned on at least 4 days a week."},
		{cfg.Inputs["oral_anticoagulation"].Description, "Long-term oral anticoagulation expected after PCI (at discharge). Vascular-protection doses (rivaroxaban 2.5 mg twice daily) do not count."},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if !bytes.Contains(cfg.Raw(), []byte(`"Age ≥{threshold} years"`)) {
		t.Error("Raw is not the document as written")
	}
	var age ConfigText
	for _, x := range cfg.Texts() {
		if x.Key == "criterion.age" {
			age = x
		}
	}
	if age.Template != "Age ≥{threshold} years" || age.Params["threshold"] != 75 {
		t.Errorf("Texts criterion.age = %+v", age)
	}
	age.Params["threshold"] = 1 // a copy: the configuration stays read-only
	for _, x := range cfg.Texts() {
		if x.Key == "criterion.age" && x.Params["threshold"] != 75 {
			t.Error("Texts shares its parameters with the caller")
		}
	}

	changed := parseMutated(t, func(m map[string]any) {
		obj(m, "calculators", 1, "criteria", "items", 0, "rule")["threshold"] = 80.0
		obj(m, "codes", "observations", "nihss")["major_at_least"] = 6.0
		obj(m, "codes", "conditions", "ischemic-stroke")["window_months"] = 3
		obj(m, "calculators", 2, "points", "bands", 3)["from"] = 26.0
		obj(m, "calculators", 0, "points", "bands", 1, "risk_percent")["max"] = 6.5
		obj(m, "calculators", 0, "points", "bands", 2, "risk_percent")["min"] = 6.5
		obj(m, "calculators", 0, "points", "bands", 2)["from"] = 28.0
		obj(m, "fhir", "windows")["bleeding_major_months"] = 3
		obj(m, "fhir", "windows")["long_term_min_days_per_week"] = 5
	})
	arc, _ = changed.Calculator("arc-hbr")
	phbr, _ = changed.Calculator("precise-hbr")
	for _, tt := range []struct{ got, want string }{
		{name(arc, "age"), "Age ≥80 years"},
		{name(arc, "stroke-major"), "Moderate or severe ischaemic stroke (NIHSS ≥6) within 3 months"},
		{strings.SplitN(changed.Recommendations.Items[0].Text, " favours", 2)[0], "A PRECISE-DAPT score ≥26"},
		{phbr.Points.Bands[1].Risk, "4% to <6.5% 1-year BARC 3/5 bleeding"},
		{name(arc, "bleeding-major"), "Spontaneous bleeding needing hospitalisation or transfusion within 3 months, or recurrent"},
		{name(arc, "bleeding-minor"), "First spontaneous bleeding needing hospitalisation or transfusion 3-12 months ago"},
		{strings.SplitN(changed.Inputs["nsaid_or_steroid"].Description, " planned ", 2)[1], "on at least 5 days a week."},
	} {
		if tt.got != tt.want {
			t.Errorf("after the change: got %q, want %q", tt.got, tt.want)
		}
	}
}

// assumption returns the first criterion assumption in the generic
// configuration.
func assumption(m map[string]any) map[string]any {
	for _, c := range m["calculators"].([]any) {
		crit, _ := c.(map[string]any)["criteria"].(map[string]any)
		if crit == nil {
			continue
		}
		for _, it := range crit["items"].([]any) {
			if a, ok := it.(map[string]any)["assume"].(map[string]any); ok {
				return a
			}
		}
	}
	panic("the configuration has no criterion assumption")
}

// assumedIndex is the index of the first assumed criterion of arc-hbr.
func assumedIndex(t *testing.T) string {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cd, _ := cfg.Calculator("arc-hbr")
	for i, cr := range cd.Criteria.Items {
		if cr.Assume != nil {
			return strconv.Itoa(i)
		}
	}
	t.Fatal("arc-hbr has no assumed criterion")
	return ""
}
