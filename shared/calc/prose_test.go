package calc

import (
	"regexp"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// recorded is a number as the record states it.
func recorded(v float64, unit, ref, date string) Input {
	return Input{Value: v, Unit: unit, Origin: OriginRecord, Source: &Source{Reference: ref, Date: date}}
}

// TestEvidenceInClinicalLanguage holds the criteria's evidence to what a
// clinician writes: short lab names, the value as reported with its date,
// the range in clinical notation and the sex it applies to; a criterion
// not met by the absence of a finding says what was searched; one the
// record cannot decide says why. The same evidence reads in zh-TW with
// Chinese punctuation.
func TestEvidenceInClinicalLanguage(t *testing.T) {
	e := testEngine(t)
	en := message.Default().Printer(message.English)
	zh := message.Default().Printer(message.TraditionalChinese)
	in := with(arcNone(),
		"hemoglobin", recorded(12, "g/dL", "Observation/hb", "2026-11-30T08:30:00Z"),
		"platelets", recorded(78000, "/uL", "Observation/plt", "2026-11-29"),
		"intracranial_hemorrhage", Input{Value: false, Origin: OriginAbsent, Note: message.Verbatim("No intracranial haemorrhage in the problem list")},
		"brain_avm", nil,
		"oral_anticoagulation", Input{Value: true, Origin: OriginRecord, Source: &Source{Reference: "MedicationRequest/1", Display: "apixaban 5 MG Oral Tablet", Date: "2026-10-12"}},
		"cirrhosis_portal_hypertension", Input{Origin: OriginUnavailable, Note: message.Verbatim("Not available: the EHR refused access to the problem list")},
	)
	r := mustEval(t, e, "arc-hbr", in)
	for _, tt := range []struct{ criterion, en, zh string }{
		// A measured value keeps the decimals it is measured to (12.0 g/dL);
		// thresholds and ranges are written as the criteria write them.
		{"anemia-mild", "Hb 12.0 g/dL on 30 Nov 2026: 11–12.9 g/dL in a man, minor criterion", "血紅素 12.0 g/dL（2026年11月30日）：男性 11–12.9 g/dL，次要條件"},
		{"anemia-severe", "Hb 12.0 g/dL on 30 Nov 2026: 11 g/dL or more", "血紅素 12.0 g/dL（2026年11月30日）：≥ 11 g/dL"},
		{"thrombocytopenia", "Platelets 78000 /µL (78 ×10⁹/L) on 29 Nov 2026: below 100 ×10⁹/L, major criterion", "血小板 78000 /µL（78 ×10⁹/L）（2026年11月29日）：< 100 ×10⁹/L，主要條件"},
		{"intracranial-hemorrhage", "No intracranial haemorrhage in the problem list", "No intracranial haemorrhage in the problem list"},
		{"oral-anticoagulation", "apixaban 5 MG Oral Tablet (12 Oct 2026), major criterion", "apixaban 5 MG Oral Tablet（2026年10月12日），主要條件"},
		{"liver-cirrhosis", "Not available: the EHR refused access to the problem list", "Not available: the EHR refused access to the problem list"},
		{"brain-avm", "Not known: please answer.", "未知：請回答。"},
	} {
		c := criterionOf(t, r, tt.criterion)
		if got := en.Sprint(c.Evidence); got != tt.en {
			t.Errorf("%s evidence\n got %q\nwant %q", tt.criterion, got, tt.en)
		}
		if got := zh.Sprint(c.Evidence); got != tt.zh {
			t.Errorf("%s zh-TW evidence\n got %q\nwant %q", tt.criterion, got, tt.zh)
		}
	}
	// An input without a value that says why is echoed with its reason
	// and counted missing.
	var echo *InputEcho
	for i := range r.Inputs {
		if r.Inputs[i].Name == "cirrhosis_portal_hypertension" {
			echo = &r.Inputs[i]
		}
	}
	if echo == nil || echo.Value != nil || echo.Origin != OriginUnavailable || echo.Note.IsZero() {
		t.Errorf("echo %+v, want the input without a value, origin unavailable, with its note", echo)
	}
	if !strings.Contains(strings.Join(r.Missing, ","), "cirrhosis_portal_hypertension") {
		t.Errorf("missing %v", r.Missing)
	}
	// Every number keeps the value as reported beside the canonical one.
	for _, e := range r.Inputs {
		if e.Name == "platelets" && (e.Reported == nil || e.Reported.Value != 78000 || e.Reported.Unit != "/uL" || e.Value != 78.0) {
			t.Errorf("platelets echo %+v (reported %+v)", e, e.Reported)
		}
		if e.Name == "hemoglobin" && (e.Reported == nil || e.Reported.Value != 12 || e.Reported.Unit != "g/dL") {
			t.Errorf("hemoglobin echo %+v (reported %+v)", e, e.Reported)
		}
	}
	// A woman's Hb 12.5 is not anaemia; the evidence names the sex.
	r = mustEval(t, e, "arc-hbr", with(arcNone(), "sex", "female", "hemoglobin", recorded(12.5, "", "Observation/hb", "2026-11-30")))
	if got := en.Sprint(criterionOf(t, r, "anemia-mild").Evidence); got != "Hb 12.5 g/dL on 30 Nov 2026: 12 g/dL or more in a woman" {
		t.Errorf("woman Hb 12.5: %q", got)
	}
}

// TestDerivedValueCarriesItsDate: eGFR computed from creatinine is dated
// by the creatinine, cites it, and says how it was computed.
func TestDerivedValueCarriesItsDate(t *testing.T) {
	e := testEngine(t)
	en := message.Default().Printer(message.English)
	in := with(arcNone(), "egfr", nil, "creatinine", recorded(97, "umol/L", "Observation/cr", "2026-11-28T07:00:00Z"), "age", 70)
	r := mustEval(t, e, "arc-hbr", in)
	var eg *InputEcho
	for i := range r.Inputs {
		if r.Inputs[i].Name == "egfr" {
			eg = &r.Inputs[i]
		}
	}
	if eg == nil || eg.Origin != OriginDerived || eg.Source == nil || eg.Source.Date != "2026-11-28T07:00:00Z" || len(eg.Evidence) != 1 || eg.Evidence[0].Reference != "Observation/cr" {
		t.Fatalf("derived eGFR %+v", eg)
	}
	if got := en.Sprint(eg.Derivation); got != "CKD-EPI 2021 from creatinine of 28 Nov 2026, age and sex" {
		t.Errorf("derivation %q", got)
	}
	ev := en.Sprint(criterionOf(t, r, "ckd-moderate").Evidence)
	if !strings.HasPrefix(ev, "eGFR ") || !strings.Contains(ev, "computed from results of 28 Nov 2026") {
		t.Errorf("eGFR evidence %q", ev)
	}
}

// TestResultsSayNoEnglishInChinese renders every sentence of every result
// of a full set of inputs, and of an incomplete one, in zh-TW: none is left
// in English and none shows a key or a placeholder.
func TestResultsSayNoEnglishInChinese(t *testing.T) {
	e := testEngine(t)
	zh := message.Default().Printer(message.TraditionalChinese)
	englishSeen := 0
	full := with(arcNone(), "wbc", 16, "prior_bleeding", false, "arc_hbr_other", false, "weight", 70, "creatinine", 1.1,
		"hemoglobin", 15.1, "current_smoker", false, "diabetes", false, "copd", false, "nstemi_stemi", false, "prior_mi", false,
		"liver_cancer_surgery", false, "complex_pci", false, "bare_metal_stent", false)
	for _, in := range []Inputs{full, with(full, "hemoglobin", nil, "sex", nil, "platelets", nil), with(full, "age", 15)} {
		rs, err := e.EvaluateAll(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			zh.Localize(r)
			var texts []string
			texts = append(texts, r.Title.String(), r.Message.String())
			for _, w := range r.Warnings {
				texts = append(texts, w.Text.String())
			}
			for _, c := range r.Criteria {
				texts = append(texts, c.Name.String(), c.Evidence.String())
			}
			for _, v := range r.Values {
				texts = append(texts, v.Display.String())
			}
			for _, i := range r.Inputs {
				texts = append(texts, i.Derivation.String())
			}
			for _, s := range texts {
				if english.MatchString(s) || leftover.MatchString(s) {
					t.Errorf("%s: %q", r.Calculator, s)
				}
			}
			// The check finds the English it is for.
			message.Default().Printer(message.English).Localize(r)
			for _, c := range r.Criteria {
				if english.MatchString(c.Evidence.String() + " " + c.Name.String()) {
					englishSeen++
				}
			}
		}
	}
	if englishSeen == 0 {
		t.Error("the English check finds nothing in English: it is broken")
	}
}

// english finds an English phrase of three words or more; leftover, a
// catalogue key, a snake_case identifier or an unfilled placeholder.
var (
	english  = regexp.MustCompile(`\b[A-Za-z][A-Za-z'’]+(?: [A-Za-z][A-Za-z'’]+){2,}\b`)
	leftover = regexp.MustCompile(`\{\w+\}|\b[a-z]+_[a-z_]+\b|\b[a-z][a-z-]+\.[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*\b`)
)

// TestMeasuredValuesKeepTheirPrecision: a measured value reads at the
// precision its quantity is measured to, trailing zeros kept, in its
// canonical unit and as reported: creatinine to 2 decimals, weight,
// hemoglobin and the white cell count to 1, platelets and eGFR whole.
func TestMeasuredValuesKeepTheirPrecision(t *testing.T) {
	cfg := testEngine(t).Config()
	en := message.Default().Printer(message.English)
	for _, tt := range []struct {
		name, unit string
		x          float64
		want       string
	}{
		{"creatinine", "", 1.1, "1.10 mg/dL"},
		{"creatinine", "", 97 / 88.4, "1.10 mg/dL"},
		{"creatinine", "umol/L", 97, "97 µmol/L"},
		{"weight", "", 82, "82.0 kg"},
		{"weight", "", 81.6466, "81.6 kg"},
		{"hemoglobin", "", 13, "13.0 g/dL"},
		{"wbc", "", 7, "7.0 ×10⁹/L"},
		{"platelets", "", 210, "210 ×10⁹/L"},
		{"egfr", "", 51, "51 mL/min/1.73 m²"},
	} {
		if got := en.Sprint(cfg.Measured(tt.name, tt.x, tt.unit)); got != tt.want {
			t.Errorf("%s %v %s: %q, want %q", tt.name, tt.x, tt.unit, got, tt.want)
		}
	}
	// Thresholds are no measurement: 100 ×10⁹/L, 11 g/dL.
	if got := en.Sprint(cfg.Amount("hemoglobin", 11, "")); got != "11 g/dL" {
		t.Errorf("threshold %q", got)
	}
}
