package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// mapNow is the assessment time of the mapping tests.
var mapNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

const (
	sysLOINC  = "http://loinc.org"
	sysSNOMED = "http://snomed.info/sct"
	sysICD    = "http://hl7.org/fhir/sid/icd-10-cm"
	sysRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
	sysPCS    = "http://www.cms.gov/Medicare/Coding/ICD10"
	sysATC    = "http://www.whocc.no/atc"
	sysCPT    = "http://www.ama-assn.org/go/cpt"
)

// daysAgo is a FHIR dateTime d days before mapNow.
func daysAgo(d int) string { return mapNow.AddDate(0, 0, -d).Format(time.RFC3339) }

// monthsAgo is a FHIR dateTime mo months and d days before mapNow.
func monthsAgo(mo, d int) string { return mapNow.AddDate(0, -mo, -d).Format(time.RFC3339) }

func concept(system, code, text string) fhir.CodeableConcept {
	return fhir.CodeableConcept{Coding: []fhir.Coding{{System: system, Code: code, Display: text}}, Text: text}
}

// lab is a final Observation with a valueQuantity in a UCUM unit.
func lab(id, loinc string, v float64, unit, date string) fhir.Observation {
	return fhir.Observation{ResourceType: "Observation", ID: id, Status: "final", Code: concept(sysLOINC, loinc, ""),
		EffectiveDateTime: date, ValueQuantity: &fhir.Quantity{Value: &v, System: systemUCUM, Code: unit, Unit: unit}}
}

func withStatus(o fhir.Observation, s string) fhir.Observation { o.Status = s; return o }

func condition(id, system, code, onset string) fhir.Condition {
	return fhir.Condition{ResourceType: "Condition", ID: id, Code: concept(system, code, code), OnsetDateTime: onset,
		ClinicalStatus:     &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConditionClinical, Code: "active"}}},
		VerificationStatus: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConditionVerification, Code: "confirmed"}}}}
}

func clinical(c fhir.Condition, status string) fhir.Condition {
	c.ClinicalStatus = &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConditionClinical, Code: status}}}
	return c
}

func verification(c fhir.Condition, status string) fhir.Condition {
	c.VerificationStatus = &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConditionVerification, Code: status}}}
	return c
}

func inEncounter(c fhir.Condition, enc string) fhir.Condition {
	c.Encounter = &fhir.Reference{Reference: "Encounter/" + enc}
	return c
}

func procedure(id, system, code, date string) fhir.Procedure {
	return fhir.Procedure{ResourceType: "Procedure", ID: id, Status: "completed", Code: concept(system, code, code), PerformedDateTime: date}
}

func inpatient(id, start, end string) fhir.Encounter {
	e := fhir.Encounter{ResourceType: "Encounter", ID: id, Status: "finished",
		Class: &fhir.Coding{System: fhir.SystemActCode, Code: "IMP"}, Period: &fhir.Period{Start: start, End: end}}
	return e
}

func patient(gender, birth string) *fhir.Patient {
	return &fhir.Patient{ResourceType: "Patient", ID: "p1", Gender: gender, BirthDate: birth}
}

// newRecord builds a record from resources of any of the record's types.
func newRecord(parts ...any) *fhir.Record {
	rec := &fhir.Record{Errors: map[string]error{}, Truncated: map[string]bool{}, Medications: map[string]*fhir.Medication{}}
	for _, p := range parts {
		switch v := p.(type) {
		case *fhir.Patient:
			rec.Patient = v
		case fhir.Observation:
			rec.Observations = append(rec.Observations, v)
		case fhir.Condition:
			rec.Conditions = append(rec.Conditions, v)
		case fhir.MedicationRequest:
			rec.MedicationRequests = append(rec.MedicationRequests, v)
		case fhir.MedicationStatement:
			rec.MedicationStatements = append(rec.MedicationStatements, v)
		case fhir.Procedure:
			rec.Procedures = append(rec.Procedures, v)
		case fhir.Encounter:
			rec.Encounters = append(rec.Encounters, v)
		case *fhir.Medication:
			rec.Medications["Medication/"+v.ID] = v
		default:
			panic(fmt.Sprintf("newRecord: %T", p))
		}
	}
	return rec
}

func testConfig(t testing.TB) *calc.Config {
	t.Helper()
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mapIt(t testing.TB, rec *fhir.Record) *Mapped {
	t.Helper()
	return MapRecord(testConfig(t), rec, mapNow, MapOptions{})
}

// canonical returns a mapped numeric input in its canonical unit.
func canonical(t testing.TB, cfg *calc.Config, mp *Mapped, name string) (float64, calc.Input) {
	t.Helper()
	in, ok := mp.Inputs[name]
	if !ok {
		t.Fatalf("input %s not mapped; gaps %+v", name, mp.Gaps)
	}
	f, ok := in.Value.(float64)
	if !ok {
		t.Fatalf("input %s is %T", name, in.Value)
	}
	v, err := cfg.Convert(cfg.Inputs[name].Quantity, f, in.Unit)
	if err != nil {
		t.Fatalf("input %s: %v", name, err)
	}
	return v, in
}

// warningHas reports whether a warning's kind, input or English text
// contains substr.
func warningHas(mp *Mapped, substr string) bool {
	for _, w := range mp.Warnings {
		if strings.Contains(w.Kind+" "+w.Input+" "+w.Text.String(), substr) {
			return true
		}
	}
	return false
}

func TestMapLabs(t *testing.T) {
	cfg := testConfig(t)
	noValue := lab("nv", "718-7", 0, "g/dL", daysAgo(1))
	noValue.ValueQuantity = nil
	noValue.DataAbsentReason = &fhir.CodeableConcept{Text: "haemolysed"}
	unitText := lab("ut", "718-7", 120, "", daysAgo(2))
	unitText.ValueQuantity.Unit = "g/L"
	unitText.ValueQuantity.System = ""
	cmp := lab("cmp", "718-7", 7, "g/dL", daysAgo(1))
	cmp.ValueQuantity.Comparator = "<"
	noDate := lab("nd", "718-7", 9, "g/dL", "")
	period := lab("per", "777-3", 230, "10*3/uL", "")
	period.EffectivePeriod = &fhir.Period{Start: daysAgo(3), End: daysAgo(3)}
	tests := []struct {
		name   string
		obs    []fhir.Observation
		opts   MapOptions
		input  string
		want   float64 // canonical unit; NaN: not mapped
		stale  bool
		ref    string    // the Observation used
		gap    GapReason // when not mapped
		warned string
	}{
		{"newest of two", []fhir.Observation{lab("a", "718-7", 12, "g/dL", daysAgo(30)), lab("b", "718-7", 13.5, "g/dL", daysAgo(2))}, MapOptions{}, "hemoglobin", 13.5, false, "Observation/b", "", ""},
		{"newer entered-in-error ignored", []fhir.Observation{lab("a", "718-7", 14.2, "g/dL", daysAgo(10)), withStatus(lab("b", "718-7", 8.1, "g/dL", daysAgo(1)), "entered-in-error")}, MapOptions{}, "hemoglobin", 14.2, false, "Observation/a", "", ""},
		{"newer preliminary ignored", []fhir.Observation{lab("a", "6690-2", 7, "10*3/uL", daysAgo(10)), withStatus(lab("b", "6690-2", 19, "10*3/uL", daysAgo(1)), "preliminary")}, MapOptions{}, "wbc", 7, false, "Observation/a", "", ""},
		{"amended used", []fhir.Observation{withStatus(lab("a", "2160-0", 0.95, "mg/dL", daysAgo(3)), "amended")}, MapOptions{}, "creatinine", 0.95, false, "Observation/a", "", ""},
		{"corrected used", []fhir.Observation{withStatus(lab("a", "2160-0", 1.1, "mg/dL", daysAgo(3)), "corrected")}, MapOptions{}, "creatinine", 1.1, false, "Observation/a", "", ""},
		{"registered never used", []fhir.Observation{withStatus(lab("a", "2160-0", 1.1, "mg/dL", daysAgo(3)), "registered")}, MapOptions{}, "creatinine", math.NaN(), false, "", GapNotRecorded, ""},
		{"Hb alternate 20509-6", []fhir.Observation{lab("a", "20509-6", 12.5, "g/dL", daysAgo(1))}, MapOptions{}, "hemoglobin", 12.5, false, "Observation/a", "", ""},
		{"Hb g/L", []fhir.Observation{lab("a", "718-7", 118, "g/L", daysAgo(1))}, MapOptions{}, "hemoglobin", 11.8, false, "Observation/a", "", ""},
		{"Hb mmol/L (59260-0)", []fhir.Observation{lab("a", "59260-0", 7, "mmol/L", daysAgo(1))}, MapOptions{}, "hemoglobin", 11.277, false, "Observation/a", "", ""},
		{"Hb unit from unit text", []fhir.Observation{unitText}, MapOptions{}, "hemoglobin", 12, false, "Observation/ut", "", ""},
		{"Hb mg/dL is not converted", []fhir.Observation{lab("a", "718-7", 11800, "mg/dL", daysAgo(1))}, MapOptions{}, "hemoglobin", math.NaN(), false, "", GapConfirm, ""},
		{"Hb without a unit", []fhir.Observation{lab("a", "718-7", 11.8, "", daysAgo(1))}, MapOptions{}, "hemoglobin", math.NaN(), false, "", GapConfirm, ""},
		{"Hb with a comparator", []fhir.Observation{cmp}, MapOptions{}, "hemoglobin", math.NaN(), false, "", GapConfirm, ""},
		{"result without a value skipped", []fhir.Observation{lab("old", "718-7", 13, "g/dL", daysAgo(5)), noValue}, MapOptions{}, "hemoglobin", 13, false, "Observation/old", "", ""},
		{"undated result not used", []fhir.Observation{noDate}, MapOptions{}, "hemoglobin", math.NaN(), false, "", GapNotRecorded, "without a date"},
		{"future result not used", []fhir.Observation{lab("f", "718-7", 9, "g/dL", mapNow.AddDate(0, 0, 3).Format(time.RFC3339)), lab("a", "718-7", 13, "g/dL", daysAgo(1))}, MapOptions{}, "hemoglobin", 13, false, "Observation/a", "", "after the assessment"},
		{"WBC alternate 804-5", []fhir.Observation{lab("a", "804-5", 6, "10*3/uL", daysAgo(1))}, MapOptions{}, "wbc", 6, false, "Observation/a", "", ""},
		{"WBC /uL", []fhir.Observation{lab("a", "6690-2", 7400, "/uL", daysAgo(1))}, MapOptions{}, "wbc", 7.4, false, "Observation/a", "", ""},
		{"WBC K/uL", []fhir.Observation{lab("a", "6690-2", 7.4, "K/uL", daysAgo(1))}, MapOptions{}, "wbc", 7.4, false, "Observation/a", "", ""},
		{"26515-7 is platelets, not WBC", []fhir.Observation{lab("a", "26515-7", 210, "10*3/uL", daysAgo(1))}, MapOptions{}, "wbc", math.NaN(), false, "", GapNotRecorded, ""},
		{"platelets 26515-7", []fhir.Observation{lab("a", "26515-7", 210, "10*3/uL", daysAgo(1))}, MapOptions{}, "platelets", 210, false, "Observation/a", "", ""},
		{"platelets 10*9/L from effectivePeriod", []fhir.Observation{period}, MapOptions{}, "platelets", 230, false, "Observation/per", "", ""},
		{"creatinine umol/L", []fhir.Observation{lab("a", "14682-9", 97, "umol/L", daysAgo(1))}, MapOptions{}, "creatinine", 97 / 88.4, false, "Observation/a", "", ""},
		{"creatinine µmol/L alias", []fhir.Observation{lab("a", "59826-8", 88.4, "µmol/L", daysAgo(1))}, MapOptions{}, "creatinine", 1, false, "Observation/a", "", ""},
		{"creatinine in blood 38483-4", []fhir.Observation{lab("a", "38483-4", 1.3, "mg/dL", daysAgo(1))}, MapOptions{}, "creatinine", 1.3, false, "Observation/a", "", ""},
		{"weight [lb_av]", []fhir.Observation{lab("a", "29463-7", 180, "[lb_av]", daysAgo(1))}, MapOptions{}, "weight", 180 * 0.45359237, false, "Observation/a", "", ""},
		{"weight g (3141-9)", []fhir.Observation{lab("a", "3141-9", 80500, "g", daysAgo(1))}, MapOptions{}, "weight", 80.5, false, "Observation/a", "", ""},
		{"89 days: not stale", []fhir.Observation{lab("a", "718-7", 13, "g/dL", daysAgo(89))}, MapOptions{}, "hemoglobin", 13, false, "Observation/a", "", ""},
		{"120 days: stale and named", []fhir.Observation{lab("s", "718-7", 13, "g/dL", daysAgo(120))}, MapOptions{}, "hemoglobin", 13, true, "Observation/s", "", "stale hemoglobin Hb 13.0 g/dL"},
		{"400 days: beyond the lookback", []fhir.Observation{lab("o", "718-7", 13, "g/dL", daysAgo(400))}, MapOptions{}, "hemoglobin", math.NaN(), false, "", GapNotRecorded, ""},
		{"400 days with a longer lookback", []fhir.Observation{lab("o", "718-7", 13, "g/dL", daysAgo(400))}, MapOptions{LabLookback: 500 * 24 * time.Hour}, "hemoglobin", 13, true, "Observation/o", "", "stale hemoglobin Hb 13.0 g/dL"},
		{"a shorter lookback excludes", []fhir.Observation{lab("o", "718-7", 13, "g/dL", daysAgo(40))}, MapOptions{LabLookback: 30 * 24 * time.Hour}, "hemoglobin", math.NaN(), false, "", GapNotRecorded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := []any{patient("male", "1960-01-01")}
			for _, o := range tt.obs {
				parts = append(parts, o)
			}
			mp := MapRecord(cfg, newRecord(parts...), mapNow, tt.opts)
			if tt.warned != "" && !warningHas(mp, tt.warned) {
				t.Errorf("no warning names %s: %q", tt.warned, mp.Warnings)
			}
			if math.IsNaN(tt.want) {
				if in, ok := mp.Inputs[tt.input]; ok {
					t.Fatalf("%s mapped to %+v, want a gap", tt.input, in)
				}
				g, ok := mp.Gap(tt.input)
				if !ok || g.Reason != tt.gap {
					t.Fatalf("gap %+v (%v), want reason %s", g, ok, tt.gap)
				}
				if got := slices.Contains(mp.NeedsConfirmation, tt.input); got != (tt.gap == GapConfirm) {
					t.Errorf("NeedsConfirmation %v", mp.NeedsConfirmation)
				}
				return
			}
			v, in := canonical(t, cfg, mp, tt.input)
			if math.Abs(v-tt.want) > 1e-9 {
				t.Errorf("%s = %v, want %v", tt.input, v, tt.want)
			}
			if in.Origin != calc.OriginRecord || in.Source == nil || in.Source.Reference != tt.ref || in.Source.Date == "" || !strings.HasPrefix(in.Source.Code, sysLOINC+"|") {
				t.Errorf("provenance %+v %+v", in, in.Source)
			}
			if in.Stale != tt.stale {
				t.Errorf("stale %v, want %v", in.Stale, tt.stale)
			}
			if _, gapped := mp.Gap(tt.input); gapped {
				t.Errorf("mapped input also has a gap")
			}
		})
	}
}

func TestMapLabConfirmationMessages(t *testing.T) {
	mp := mapIt(t, newRecord(patient("male", "1960-01-01"), lab("x", "718-7", 11.8, "g%", daysAgo(1))))
	g, _ := mp.Gap("hemoglobin")
	for _, want := range []string{"11.8 g%", "g/dL, g/L and mmol/L"} {
		if !strings.Contains(g.Message.String(), want) {
			t.Errorf("message %q lacks %q", g.Message.String(), want)
		}
	}
	if len(g.Evidence) != 1 || g.Evidence[0].Reference != "Observation/x" {
		t.Errorf("evidence %+v", g.Evidence)
	}
	// A lab beyond the lookback is named in its gap.
	mp = mapIt(t, newRecord(patient("male", "1960-01-01"), lab("old", "6690-2", 7, "10*3/uL", daysAgo(500))))
	if g, _ := mp.Gap("wbc"); !strings.Contains(g.Message.String(), "is older and was not used") || !strings.Contains(g.Message.String(), "365 days") || !hasRef(g.Evidence, "Observation/old") {
		t.Errorf("gap %+v", g)
	}
}

func TestMapEGFR(t *testing.T) {
	e := testEngine(t)
	cfg := e.Config()
	gt := lab("gt", "98979-8", 90, "mL/min/{1.73_m2}", daysAgo(1))
	gt.ValueQuantity.Comparator = ">"
	tests := []struct {
		name    string
		obs     []any
		egfr    float64 // NaN: not mapped
		ref     string
		derived bool // the engine computes it from creatinine
		gap     GapReason
		warned  string
	}{
		{"reported CKD-EPI 2021", []any{lab("g", "98979-8", 51, "mL/min/{1.73_m2}", daysAgo(1)), lab("c", "2160-0", 1.42, "mg/dL", daysAgo(1))}, 51, "Observation/g", false, "", ""},
		{"reported CKD-EPI 62238-1", []any{lab("g", "62238-1", 56, "mL/min/1.73m2", daysAgo(1))}, 56, "Observation/g", false, "", ""},
		{"newer of two reported", []any{lab("g1", "98979-8", 31, "mL/min/{1.73_m2}", daysAgo(100)), lab("g2", "98979-8", 25, "mL/min/{1.73_m2}", daysAgo(1))}, 25, "Observation/g2", false, "", ""},
		{"MDRD never a reported eGFR", []any{lab("m", "33914-3", 68, "mL/min/{1.73_m2}", daysAgo(1)), lab("c", "2160-0", 1.1, "mg/dL", daysAgo(1))}, math.NaN(), "", true, "", "only CKD-EPI results count"},
		{"MDRD without creatinine", []any{lab("m", "33914-3", 68, "mL/min/{1.73_m2}", daysAgo(1))}, math.NaN(), "", false, GapNotRecorded, "only CKD-EPI results count"},
		{"creatinine only: derived", []any{lab("c", "2160-0", 1.1, "mg/dL", daysAgo(1))}, math.NaN(), "", true, "", ""},
		{"creatinine newer than the reported eGFR", []any{lab("g", "98979-8", 40, "mL/min/{1.73_m2}", daysAgo(30)), lab("c", "2160-0", 1.1, "mg/dL", daysAgo(1))}, math.NaN(), "", true, "", "older than the creatinine"},
		{">90 with creatinine: derived", []any{gt, lab("c", "2160-0", 1.1, "mg/dL", daysAgo(1))}, math.NaN(), "", true, "", ">90"},
		{">90 without creatinine: used with a warning", []any{gt}, 90, "Observation/gt", false, "", ">90"},
		{"plain mL/min with creatinine: derived", []any{lab("g", "98979-8", 70, "mL/min", daysAgo(1)), lab("c", "2160-0", 1.1, "mg/dL", daysAgo(1))}, math.NaN(), "", true, "", "mL/min"},
		{"plain mL/min alone: confirm", []any{lab("g", "98979-8", 70, "mL/min", daysAgo(1))}, math.NaN(), "", false, GapConfirm, ""},
		{"nothing", nil, math.NaN(), "", false, GapNotRecorded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := mapIt(t, newRecord(append([]any{patient("male", "1953-09-04")}, tt.obs...)...))
			if tt.warned != "" && !warningHas(mp, tt.warned) {
				t.Errorf("no warning mentions %q: %q", tt.warned, mp.Warnings)
			}
			if math.IsNaN(tt.egfr) {
				if in, ok := mp.Inputs["egfr"]; ok {
					t.Fatalf("egfr mapped %+v", in)
				}
				if tt.gap != "" {
					if g, ok := mp.Gap("egfr"); !ok || g.Reason != tt.gap {
						t.Errorf("gap %+v, want %s", g, tt.gap)
					}
				}
			} else {
				v, in := canonical(t, cfg, mp, "egfr")
				if v != tt.egfr || in.Source.Reference != tt.ref || in.Origin != calc.OriginRecord {
					t.Errorf("egfr %v from %+v, want %v from %s", v, in.Source, tt.egfr, tt.ref)
				}
			}
			r, err := e.Evaluate("egfr-ckd-epi-2021", mp.Inputs)
			if err != nil {
				t.Fatal(err)
			}
			h, err := e.Evaluate("precise-hbr", mp.Inputs)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, echo := range h.Inputs {
				if echo.Name != "egfr" {
					continue
				}
				found = true
				wantOrigin := calc.OriginRecord
				if tt.derived {
					wantOrigin = calc.OriginDerived
					if v, ok := r.Value("egfr"); !ok || echo.Value != v.Value || !strings.Contains(echo.Derivation.String(), "CKD-EPI 2021") {
						t.Errorf("derived eGFR %v (%s), want %v", echo.Value, echo.Derivation.String(), v.Value)
					}
				}
				if echo.Origin != wantOrigin {
					t.Errorf("echo origin %s, want %s", echo.Origin, wantOrigin)
				}
			}
			if found != (tt.derived || !math.IsNaN(tt.egfr)) {
				t.Errorf("PRECISE-HBR echoes eGFR: %v", found)
			}
		})
	}
}

func TestMapEGFRHintFromCKD(t *testing.T) {
	mp := mapIt(t, newRecord(patient("male", "1950-01-01"), condition("ckd", sysICD, "N18.4", monthsAgo(30, 0))))
	g, ok := mp.Gap("egfr")
	if !ok || g.Reason != GapNotRecorded || !strings.Contains(g.Message.String(), "CKD stage 4–5") || len(g.Evidence) != 1 || g.Evidence[0].Reference != "Condition/ckd" {
		t.Fatalf("gap %+v", g)
	}
	if _, ok := mp.Inputs["egfr"]; ok {
		t.Error("a CKD code must never become an eGFR value")
	}
	mp = mapIt(t, newRecord(patient("male", "1950-01-01"), condition("tp", sysICD, "D69.6", monthsAgo(2, 0))))
	if g, _ := mp.Gap("platelets"); !strings.Contains(g.Message.String(), "hrombocytopenia") || len(g.Evidence) != 1 {
		t.Errorf("platelets gap %+v", g)
	}
}

func TestMapDemographics(t *testing.T) {
	birthsex := func(p *fhir.Patient, code string) *fhir.Patient {
		p.Extension = append(p.Extension, fhir.Extension{URL: fhir.ExtBirthSex, ValueCode: code})
		return p
	}
	tests := []struct {
		name    string
		p       *fhir.Patient
		age     float64 // 0: gap
		sex     string  // "": gap
		sexCode string
		warned  string
		gapMsg  string // the age gap's message contains it
	}{
		{"female", patient("female", "1960-03-15"), 66, calc.Female, systemGender + "|female", "", ""},
		{"day before the birthday", patient("male", "1950-03-16"), 75, calc.Male, systemGender + "|male", "", ""},
		{"on the birthday", patient("male", "1950-03-15"), 76, calc.Male, systemGender + "|male", "", ""},
		{"birth sex when gender is unknown", birthsex(patient("unknown", "1960-01-01"), "M"), 66, calc.Male, fhir.ExtBirthSex + "|M", "", ""},
		{"birth sex when gender is absent", birthsex(patient("", "1960-01-01"), "F"), 66, calc.Female, fhir.ExtBirthSex + "|F", "", ""},
		{"gender wins, disagreement warned", birthsex(patient("male", "1960-01-01"), "F"), 66, calc.Male, systemGender + "|male", "birth sex is F", ""},
		{"other without birth sex", patient("other", "1960-01-01"), 66, "", "", "", ""},
		{"birth sex UNK", birthsex(patient("unknown", "1960-01-01"), "UNK"), 66, "", "", "", ""},
		{"year only: the oldest age, warned", patient("male", "1950"), 76, calc.Male, systemGender + "|male", "partial", ""},
		{"year and month, unambiguous", patient("male", "1950-01"), 76, calc.Male, systemGender + "|male", "", ""},
		{"birth month straddles", patient("male", "1950-03"), 76, calc.Male, systemGender + "|male", "may be 75", ""},
		{"no birth date", patient("male", ""), 0, calc.Male, systemGender + "|male", "", ""},
		{"birth date in the future", patient("male", "2027-01-01"), 0, calc.Male, systemGender + "|male", "", "after the assessment date, so it cannot be right"},
		{"birth date in 2100", patient("male", "2100-01-01"), 0, calc.Male, systemGender + "|male", "", "2100-01-01 is after the assessment date"},
		{"exactly 130 years", patient("male", "1896-03-15"), 130, calc.Male, systemGender + "|male", "", ""},
		{"more than 130 years ago", patient("male", "1896-03-14"), 0, calc.Male, systemGender + "|male", "", "1896-03-14 is more than 130 years ago"},
		{"year only, more than 130 years ago", patient("male", "1890"), 0, calc.Male, systemGender + "|male", "", "more than 130 years ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := mapIt(t, newRecord(tt.p))
			if tt.warned != "" && !warningHas(mp, tt.warned) {
				t.Errorf("no warning %q: %q", tt.warned, mp.Warnings)
			}
			if tt.age == 0 {
				g, ok := mp.Gap("age")
				if !ok {
					t.Error("want an age gap")
				}
				if tt.gapMsg != "" && (!strings.Contains(g.Message.String(), tt.gapMsg) || g.Reason != GapConfirm) {
					t.Errorf("age gap %+v, want %s with %q", g, GapConfirm, tt.gapMsg)
				}
			} else if in := mp.Inputs["age"]; in.Value != tt.age || in.Source == nil || in.Source.Reference != "Patient/p1" || in.Source.Date != tt.p.BirthDate {
				t.Errorf("age %+v", in)
			}
			if tt.sex == "" {
				if g, ok := mp.Gap("sex"); !ok || g.Reason != GapAsk {
					t.Errorf("sex gap %+v", g)
				}
				return
			}
			if in := mp.Inputs["sex"]; in.Value != tt.sex || in.Source == nil || in.Source.Code != tt.sexCode {
				t.Errorf("sex %+v %+v", in, in.Source)
			}
		})
	}
}

// fhirErr builds the error fhir.Client would return.
func fhirErr(typ string, status int, kind error, cause error) error {
	return &fhir.Error{Op: "search", Type: typ, Status: status, Kind: kind, Err: cause}
}

func TestMapSearchFailures(t *testing.T) {
	e := testEngine(t)
	base := func() *fhir.Record {
		return newRecord(patient("male", "1950-01-01"), lab("h", "718-7", 13, "g/dL", daysAgo(1)),
			condition("vwd", sysSNOMED, "128105004", monthsAgo(60, 0)))
	}
	tests := []struct {
		name    string
		typ     string
		err     error
		trunc   bool
		input   string
		reason  GapReason
		kind    DataErrorKind
		refused bool
	}{
		{"Condition 503", "Condition", fhirErr("Condition", 503, fhir.ErrUnavailable, nil), false, "active_malignancy", GapUnavailable, DataUnavailable, false},
		{"Condition timeout", "Condition", fhirErr("Condition", 0, fhir.ErrUnavailable, context.DeadlineExceeded), false, "brain_avm", GapUnavailable, DataUnavailable, false},
		{"Condition 403", "Condition", fhirErr("Condition", 403, fhir.ErrForbidden, nil), false, "cirrhosis_portal_hypertension", GapRefused, DataRefused, true},
		{"Condition not in scope", "Condition", &fhir.Error{Op: "search", Type: "Condition", Kind: fhir.ErrScope}, false, "bleeding_history", GapRefused, DataScope, true},
		{"Condition insufficient_scope", "Condition", &fhir.Error{Op: "search", Type: "Condition", Status: 403, Code: "insufficient_scope", Kind: fhir.ErrForbidden}, false, "prior_bleeding", GapRefused, DataRefused, true},
		{"Condition truncated", "Condition", nil, true, "active_malignancy", GapUnavailable, "", false},
		{"Observation 500", "Observation", fhirErr("Observation", 500, fhir.ErrUnavailable, nil), false, "wbc", GapUnavailable, DataUnavailable, false},
		{"Observation 403", "Observation", fhirErr("Observation", 403, fhir.ErrForbidden, nil), false, "platelets", GapRefused, DataRefused, true},
		{"MedicationRequest 403", "MedicationRequest", fhirErr("MedicationRequest", 403, fhir.ErrForbidden, nil), false, "oral_anticoagulation", GapRefused, DataRefused, true},
		{"MedicationStatement 503", "MedicationStatement", fhirErr("MedicationStatement", 503, fhir.ErrUnavailable, nil), false, "nsaid_or_steroid", GapUnavailable, DataUnavailable, false},
		{"Procedure 503", "Procedure", fhirErr("Procedure", 503, fhir.ErrUnavailable, nil), false, "recent_major_surgery_trauma", GapUnavailable, DataUnavailable, false},
		{"Patient 401", "Patient", &fhir.Error{Op: "read", Type: "Patient", Status: 401, Kind: fhir.ErrUnauthorized}, false, "age", GapUnavailable, DataUnauthorized, false},
		{"bad answer", "Condition", &fhir.Error{Op: "search", Type: "Condition", Status: 200, Kind: fhir.ErrBadResponse}, false, "copd", GapUnavailable, DataUnusable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := base()
			if tt.err != nil {
				rec.Errors[tt.typ] = tt.err
			}
			rec.Truncated[tt.typ] = tt.trunc
			if tt.typ == "Patient" {
				rec.Patient = nil
			}
			mp := mapIt(t, rec)
			if in, ok := mp.Inputs[tt.input]; ok {
				t.Fatalf("%s mapped to %+v although its search failed", tt.input, in)
			}
			g, ok := mp.Gap(tt.input)
			if !ok || g.Reason != tt.reason || g.ResourceType != tt.typ || !strings.Contains(g.Message.String(), "Not available") {
				t.Fatalf("gap %+v, want %s from %s", g, tt.reason, tt.typ)
			}
			if tt.refused != (g.Reason == GapRefused) || (tt.refused && !strings.Contains(g.Message.String(), "refused") && !strings.Contains(g.Message.String(), "not granted")) {
				t.Errorf("a permission refusal must read as one: %+v", g)
			}
			if tt.err == nil {
				if len(mp.DataErrors) != 0 || !warningHas(mp, "access") || !warningHas(mp, "than SMART Calc reads") {
					t.Errorf("truncation: data errors %+v warnings %q", mp.DataErrors, mp.Warnings)
				}
			} else {
				if len(mp.DataErrors) != 1 {
					t.Fatalf("data errors %+v", mp.DataErrors)
				}
				d := mp.DataErrors[0]
				if d.ResourceType != tt.typ || d.Kind != tt.kind || d.Refused() != tt.refused || d.Message.IsZero() || !slices.Contains(d.Inputs, tt.input) || !errors.Is(d.Err, tt.err) {
					t.Errorf("data error %+v", d)
				}
				// The assessment warns of failed reads, grouped; the
				// mapping leaves them to it.
				if warningHas(mp, "access") {
					t.Errorf("a failed read is warned by the mapping: %q", mp.Warnings)
				}
			}
			// The assessment still answers.
			res, err := e.EvaluateAll(mp.Inputs)
			if err != nil || len(res) == 0 {
				t.Fatalf("EvaluateAll: %v", err)
			}
			// The other types still map.
			if tt.typ != "Observation" {
				if _, ok := mp.Inputs["hemoglobin"]; !ok {
					t.Error("hemoglobin lost")
				}
			}
			if b, err := json.Marshal(mp); err != nil || strings.Contains(string(b), `"Err"`) {
				t.Errorf("JSON %s %v", b, err)
			}
		})
	}
}

func TestMapPartialResultsStillCount(t *testing.T) {
	// Records read before a search failed still count: a positive finding
	// is kept, only absence is never concluded.
	rec := newRecord(patient("male", "1950-01-01"), condition("vwd", sysSNOMED, "128105004", monthsAgo(60, 0)),
		lab("h", "718-7", 13, "g/dL", daysAgo(1)))
	rec.Errors["Condition"] = fhirErr("Condition", 503, fhir.ErrUnavailable, nil)
	rec.Errors["Observation"] = fhirErr("Observation", 503, fhir.ErrUnavailable, nil)
	mp := mapIt(t, rec)
	if in := mp.Inputs["bleeding_diathesis"]; in.Value != true {
		t.Errorf("bleeding_diathesis %+v", in)
	}
	if g, _ := mp.Gap("brain_avm"); g.Reason != GapUnavailable {
		t.Errorf("brain_avm gap %+v", g)
	}
	if in := mp.Inputs["hemoglobin"]; in.Value != 13.0 || !warningHas(mp, "may not be the newest") {
		t.Errorf("hemoglobin %+v, warnings %q", in, mp.Warnings)
	}
}

func TestMapOutcomeWarnings(t *testing.T) {
	rec := newRecord(patient("male", "1950-01-01"))
	rec.Outcomes = map[string][]fhir.OperationOutcome{"Condition": {{Issue: []fhir.OperationOutcomeIssue{{Severity: "warning", Code: "suppressed", Diagnostics: "Some results were withheld"}}}}}
	mp := mapIt(t, rec)
	if !warningHas(mp, "Some results were withheld") {
		t.Errorf("warnings %q", mp.Warnings)
	}
}

func TestRecordQuery(t *testing.T) {
	cfg := testConfig(t)
	q := RecordQuery(cfg, "p1", mapNow, MapOptions{})
	if q.Patient != "p1" || !q.Since.Equal(mapNow.Add(-DefaultLabLookback)) {
		t.Errorf("query %+v", q)
	}
	have := map[string]bool{}
	for _, c := range q.ObservationCodes {
		have[c.System+"|"+c.Code] = true
	}
	for _, want := range []string{"718-7", "59260-0", "6690-2", "777-3", "2160-0", "14682-9", "98979-8", "62238-1", "29463-7", "72166-2", "72089-6"} {
		if !have[sysLOINC+"|"+want] {
			t.Errorf("query lacks %s", want)
		}
	}
	for _, never := range []string{"33914-3", "26515-7x"} {
		if have[sysLOINC+"|"+never] {
			t.Errorf("query asks for %s", never)
		}
	}
	if len(have) != len(q.ObservationCodes) {
		t.Error("duplicate codes")
	}
	if q2 := RecordQuery(cfg, "p1", mapNow, MapOptions{LabLookback: 48 * time.Hour}); !q2.Since.Equal(mapNow.Add(-48 * time.Hour)) {
		t.Errorf("since %v", q2.Since)
	}
}

func TestMapSmoking(t *testing.T) {
	smoke := func(id, date string, v *fhir.CodeableConcept) fhir.Observation {
		return fhir.Observation{ResourceType: "Observation", ID: id, Status: "final", Code: concept(sysLOINC, "72166-2", ""), EffectiveDateTime: date, ValueCodeableConcept: v}
	}
	cc := func(system, code string) *fhir.CodeableConcept { c := concept(system, code, code); return &c }
	tests := []struct {
		name  string
		obs   []fhir.Observation
		want  any // bool, or a GapReason
		stale bool
	}{
		{"daily smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysSNOMED, "449868002"))}, true, false},
		{"LOINC answer current every day", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA18976-3"))}, true, false},
		{"LOINC answer current some day", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA18977-1"))}, true, false},
		{"LOINC answer heavy tobacco smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA18981-3"))}, true, false},
		{"LOINC answer light tobacco smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA18982-1"))}, true, false},
		{"LOINC answer never smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA18978-9"))}, false, false},
		{"LOINC answer former smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA15920-4"))}, false, false},
		{"former smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysSNOMED, "8517006"))}, false, false},
		{"newest decides", []fhir.Observation{smoke("a", daysAgo(300), cc(sysSNOMED, "449868002")), smoke("b", daysAgo(3), cc(sysSNOMED, "8517006"))}, false, false},
		{"stale", []fhir.Observation{smoke("a", daysAgo(200), cc(sysSNOMED, "449868002"))}, true, true},
		{"SNOMED some-day smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysSNOMED, "428041000124106"))}, true, false},
		{"SNOMED heavy tobacco smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysSNOMED, "428071000124103"))}, true, false},
		{"SNOMED light tobacco smoker", []fhir.Observation{smoke("a", daysAgo(3), cc(sysSNOMED, "428061000124105"))}, true, false},
		{"smoker, current status unknown: ask", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA18979-7"))}, GapConfirm, false},
		{"unknown if ever smoked: ask", []fhir.Observation{smoke("a", daysAgo(3), cc(sysLOINC, "LA18980-5"))}, GapConfirm, false},
		{"SNOMED smoker (status unknown): ask", []fhir.Observation{smoke("a", daysAgo(3), cc(sysSNOMED, "77176002"))}, GapConfirm, false},
		{"SNOMED smoking consumption unknown: ask", []fhir.Observation{smoke("a", daysAgo(3), cc(sysSNOMED, "266927001"))}, GapConfirm, false},
		{"a current value beside an unknown one decides", []fhir.Observation{smoke("a", daysAgo(3), &fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysSNOMED, Code: "77176002"}, {System: sysLOINC, Code: "LA18976-3"}}})}, true, false},
		{"text only", []fhir.Observation{smoke("a", daysAgo(3), &fhir.CodeableConcept{Text: "smokes"})}, GapConfirm, false},
		{"none", nil, GapNotRecorded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := []any{patient("male", "1950-01-01")}
			for _, o := range tt.obs {
				parts = append(parts, o)
			}
			mp := mapIt(t, newRecord(parts...))
			if r, ok := tt.want.(GapReason); ok {
				if g, _ := mp.Gap("current_smoker"); g.Reason != r || r == GapConfirm && len(tt.obs) > 0 && !hasRef(g.Evidence, "Observation/a") {
					t.Errorf("gap %+v, want %s citing Observation/a", g, r)
				}
				if in, mapped := mp.Inputs["current_smoker"]; mapped {
					t.Errorf("current_smoker = %v, want the gap %s", in.Value, r)
				}
				return
			}
			in := mp.Inputs["current_smoker"]
			if in.Value != tt.want || in.Stale != tt.stale || in.Source == nil {
				t.Errorf("current_smoker %+v", in)
			}
		})
	}
}
