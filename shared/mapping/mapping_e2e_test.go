package mapping

import (
	"encoding/json"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"slices"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// fullRecord is a man of 78 after PCI for NSTEMI: apixaban (coded by
// product through an included Medication) plus aspirin and clopidogrel, a
// GI bleed 8 months ago that needed an inpatient stay, and a complete set
// of labs from yesterday.
func fullRecord() *fhir.Record {
	two := 2
	one := 1.0
	apixaban := &fhir.Medication{ResourceType: "Medication", ID: "apx", Code: &fhir.CodeableConcept{Text: "apixaban 5 mg tablet",
		Coding: []fhir.Coding{{System: sysRxNorm, Code: "1364445", Display: "apixaban 5 MG Oral Tablet"}}}}
	oac := order("oac", fhir.CodeableConcept{})
	oac.MedicationCodeableConcept = nil
	oac.MedicationReference = &fhir.Reference{Reference: "Medication/apx"}
	oac.DosageInstruction[0].Timing.Repeat = &fhir.TimingRepeat{Frequency: &two, Period: &one, PeriodUnit: "d"}
	return newRecord(
		patient("male", "1947-09-04"),
		lab("hb", "718-7", 11.8, "g/dL", daysAgo(1)),
		lab("hb-old", "718-7", 12.6, "g/dL", daysAgo(80)),
		lab("cr", "2160-0", 1.42, "mg/dL", daysAgo(1)),
		lab("gfr", "98979-8", 51, "mL/min/{1.73_m2}", daysAgo(1)),
		lab("wbc", "6690-2", 8.2, "10*3/uL", daysAgo(1)),
		lab("plt", "777-3", 210, "10*3/uL", daysAgo(1)),
		lab("wt", "29463-7", 82, "kg", daysAgo(1)),
		condition("nstemi", sysSNOMED, "401314000", daysAgo(3)),
		condition("af", sysICD, "I48.91", monthsAgo(70, 0)),
		inEncounter(clinical(condition("bleed", sysICD, "K92.2", monthsAgo(8, 0)), "resolved"), "stay"),
		inpatient("stay", monthsAgo(8, 0), monthsAgo(8, -4)),
		procedure("pci", sysSNOMED, "415070008", daysAgo(2)),
		apixaban, oac,
		order("asa", rx("1191", "aspirin")),
		order("clo", rx("309362", "clopidogrel 75 MG Oral Tablet")),
	)
}

func criterionByID(r *calc.Result, id string) calc.CriterionResult {
	c, _ := r.Criterion(id)
	return c
}

func resultByID(t *testing.T, res []*calc.Result, id string) *calc.Result {
	t.Helper()
	for _, r := range res {
		if r.Calculator == id {
			checkFinite(t, r)
			return r
		}
	}
	t.Fatalf("no result %s", id)
	return nil
}

func TestMapRecordEndToEnd(t *testing.T) {
	e := testEngine(t)
	mp := MapRecord(e.Config(), fullRecord(), mapNow, MapOptions{})
	res, err := e.EvaluateAll(mp.Inputs)
	if err != nil {
		t.Fatal(err)
	}

	// PRECISE-HBR: 2 + (78−30)×0.25 + (15−11.8)×2.5 + (100−51)×0.055 +
	// (8.2−3)×0.8 + 7 (bleed) + 5 (OAC) + 0 (no other criterion) = 40.855.
	hbr := resultByID(t, res, "precise-hbr")
	if hbr.Status != calc.StatusOK || num(t, hbr, "score") != 41 || val(t, hbr, "score").Category != "very-hbr" {
		t.Fatalf("PRECISE-HBR %s %+v missing %v", hbr.Status, hbr.Values, hbr.Missing)
	}
	for name, pts := range map[string]float64{"age": 12, "hemoglobin": 8, "egfr": 2.695, "wbc": 4.16, "prior_bleeding": 7, "oral_anticoagulation": 5, "arc_hbr_other": 0} {
		if got := component(t, hbr, name); got != pts {
			t.Errorf("component %s = %v, want %v", name, got, pts)
		}
	}
	for _, in := range hbr.Inputs {
		// A value a record states cites it; a "no" from the absence of a
		// finding cites none and says what was searched for.
		if (in.Origin != calc.OriginRecord || in.Source == nil) && (in.Origin != calc.OriginAbsent || in.Source != nil || in.Note.IsZero()) {
			t.Errorf("input %s: origin %s source %+v note %q", in.Name, in.Origin, in.Source, in.Note)
		}
		if in.Name == "hemoglobin" && (in.Source.Reference != "Observation/hb" || in.Stale) {
			t.Errorf("hemoglobin from %+v", in.Source)
		}
		if in.Name == "prior_bleeding" && (!hasRef(in.Evidence, "Condition/bleed") || !hasRef(in.Evidence, "Encounter/stay")) {
			t.Errorf("prior_bleeding echo evidence %+v", in.Evidence)
		}
	}

	// ARC-HBR: major OAC; minor age, eGFR 30-59, Hb 11-12.9 (man), a first
	// bleed 6-12 months ago. Non-deferrable surgery is no record's: it is
	// assumed absent, and the result says so.
	arc := resultByID(t, res, "arc-hbr")
	met, undecided := metCriteria(arc)
	if !sameStrings(met, []string{"oral-anticoagulation", "age", "ckd-moderate", "anemia-mild", "bleeding-minor"}) || len(undecided) != 0 {
		t.Errorf("met %v undecided %v", met, undecided)
	}
	if v := val(t, arc, "hbr"); v.Value != true || arc.Status != calc.StatusOK || len(arc.Missing) != 0 {
		t.Errorf("ARC-HBR %s %+v missing %v", arc.Status, v, arc.Missing)
	}
	if len(arc.Assumptions) != 1 || arc.Assumptions[0].Input != "nondeferrable_major_surgery" || !criterionByID(arc, "nondeferrable-surgery").Assumed {
		t.Errorf("assumptions %+v", arc.Assumptions)
	}
	// Each criterion met names the records that met it in its sources,
	// and says in clinical language what they show, without a reference.
	for id, tt := range map[string]struct {
		refs     []string
		evidence string
	}{
		"oral-anticoagulation": {[]string{"MedicationRequest/oac"}, "apixaban 5 mg tablet (14 Jan 2026), major criterion"},
		"bleeding-minor":       {[]string{"Condition/bleed", "Encounter/stay"}, "K92.2 (15 Jul 2025); inpatient stay (15 Jul 2025), minor criterion"},
		"anemia-mild":          {[]string{"Observation/hb"}, "Hb 11.8 g/dL on 14 Mar 2026: 11–12.9 g/dL in a man, minor criterion"},
		"ckd-moderate":         {[]string{"Observation/gfr"}, "eGFR 51 mL/min/1.73 m² on 14 Mar 2026: 30–59 mL/min/1.73 m², minor criterion"},
		"age":                  {[]string{"Patient/p1"}, "Age 78 years: 75 years or more, minor criterion"},
	} {
		c := criterionByID(arc, id)
		for _, ref := range tt.refs {
			if !hasRef(c.Sources, ref) {
				t.Errorf("criterion %s: sources %+v lack %s", id, c.Sources, ref)
			}
		}
		if got := c.Evidence.String(); got != tt.evidence {
			t.Errorf("criterion %s evidence\n got %q\nwant %q", id, got, tt.evidence)
		}
	}
	if got := criterionByID(arc, "intracranial-hemorrhage").Evidence.String(); got != "No intracranial haemorrhage in the problem list" {
		t.Errorf("unmet criterion's evidence %q: want what was searched for", got)
	}
	if c := criterionByID(arc, "thrombocytopenia"); c.Met == nil || *c.Met || len(c.Sources) != 0 {
		t.Errorf("unmet criterion %+v", c)
	}

	// PRECISE-DAPT with Cockcroft-Gault from the record's creatinine and
	// weight: CrCl (140−78)×82/(72×1.42) = 49.7; 1.5 + 3.2 + 13.3 + 12.575
	// + 26 = 56.575.
	dapt := resultByID(t, res, "precise-dapt")
	if dapt.Status != calc.StatusOK || num(t, dapt, "score") != 57 {
		t.Errorf("PRECISE-DAPT %s %+v", dapt.Status, dapt.Values)
	}
	for _, in := range dapt.Inputs {
		if in.Name == "crcl" && (in.Origin != calc.OriginDerived || in.Value != 49.7) {
			t.Errorf("crcl %+v", in)
		}
	}

	// The clinician answers the open question: the answer replaces the
	// assumption.
	what := mp.Inputs.Overlay(calc.Inputs{"nondeferrable_major_surgery": calc.Bool(false)})
	arc = mustEval(t, e, "arc-hbr", what)
	if arc.Status != calc.StatusOK || val(t, arc, "hbr").Value != true || len(arc.Assumptions) != 0 || criterionByID(arc, "nondeferrable-surgery").Assumed {
		t.Errorf("after the answer: %s %v %+v", arc.Status, arc.Missing, arc.Assumptions)
	}
	// An entered value carries no record evidence.
	arc = mustEval(t, e, "arc-hbr", what.Overlay(calc.Inputs{"bleeding_history": calc.Text("major")}))
	if c := criterionByID(arc, "bleeding-major"); c.Met == nil || !*c.Met || len(c.Sources) != 0 {
		t.Errorf("entered bleeding_history: %+v", c)
	}

	if mp.DAPT.Present == nil || !*mp.DAPT.Present || mp.OralAnticoagulant.Present == nil || !*mp.OralAnticoagulant.Present {
		t.Errorf("DAPT %+v OAC %+v", mp.DAPT, mp.OralAnticoagulant)
	}
	if len(mp.DataErrors) != 0 || len(mp.NeedsConfirmation) != 0 {
		t.Errorf("data errors %+v needs confirmation %v", mp.DataErrors, mp.NeedsConfirmation)
	}
	// Only what the record cannot tell is left open.
	var open []string
	for _, g := range mp.Gaps {
		open = append(open, g.Input)
	}
	if !sameStrings(open, []string{"bare_metal_stent", "complex_pci", "current_smoker", "liver_cancer_surgery", "nondeferrable_major_surgery"}) {
		t.Errorf("gaps %+v", mp.Gaps)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(mp)
	if err != nil || !strings.Contains(string(b), `"needs_confirmation":[]`) || !strings.Contains(string(b), `"data_errors":[]`) {
		t.Errorf("Mapped JSON %s %v", b, err)
	}
}

func TestMapRecordDegradedEndToEnd(t *testing.T) {
	// A record whose Condition search timed out and whose medication search
	// was refused still gives an answer that says so.
	e := testEngine(t)
	rec := fullRecord()
	rec.Conditions = nil
	rec.Errors["Condition"] = fhirErr("Condition", 0, fhir.ErrUnavailable, nil)
	rec.MedicationRequests = nil
	rec.Errors["MedicationRequest"] = fhirErr("MedicationRequest", 403, fhir.ErrForbidden, nil)
	mp := MapRecord(e.Config(), rec, mapNow, MapOptions{})
	res, err := e.EvaluateAll(mp.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	hbr := resultByID(t, res, "precise-hbr")
	if hbr.Status != calc.StatusIncomplete || !slices.Contains(hbr.Missing, "prior_bleeding") || !slices.Contains(hbr.Missing, "oral_anticoagulation") {
		t.Errorf("PRECISE-HBR %s missing %v", hbr.Status, hbr.Missing)
	}
	if g, _ := mp.Gap("oral_anticoagulation"); g.Reason != GapRefused {
		t.Errorf("OAC gap %+v", g)
	}
	if g, _ := mp.Gap("prior_bleeding"); g.Reason != GapUnavailable {
		t.Errorf("bleeding gap %+v", g)
	}
	kinds := map[string]DataErrorKind{}
	for _, d := range mp.DataErrors {
		kinds[d.ResourceType] = d.Kind
	}
	if kinds["Condition"] != DataUnavailable || kinds["MedicationRequest"] != DataRefused || len(kinds) != 2 {
		t.Errorf("data errors %+v", mp.DataErrors)
	}
}

// FuzzMapRecord checks that whatever a FHIR server sends, the mapping
// gives inputs the engine accepts: EvaluateAll never fails on them and no
// result holds NaN or Inf.
func FuzzMapRecord(f *testing.F) {
	seed, _ := json.Marshal(fullRecord())
	f.Add(seed)
	f.Add([]byte(`{"Patient":{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1950"},
		"Observations":[{"resourceType":"Observation","id":"o","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"59260-0"}]},
		"effectiveDateTime":"2026-03-01","valueQuantity":{"value":1e308,"code":"mmol/L","system":"http://unitsofmeasure.org"}}]}`))
	f.Add([]byte(`{"Patient":{"resourceType":"Patient","id":"p1","gender":"male","birthDate":"2030-01-01"},
		"Conditions":[{"resourceType":"Condition","id":"c","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"k922"}]},"onsetDateTime":"2025"}],
		"MedicationRequests":[{"resourceType":"MedicationRequest","id":"m","status":"active","intent":"order","medicationReference":{"reference":"#x"}}]}`))
	e := testEngine(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec fhir.Record
		if json.Unmarshal(b, &rec) != nil {
			return
		}
		mp := MapRecord(e.Config(), &rec, mapNow, MapOptions{})
		res, err := e.EvaluateAll(mp.Inputs)
		if err != nil {
			t.Fatalf("EvaluateAll on mapped inputs: %v", err)
		}
		for _, r := range res {
			checkFinite(t, r)
		}
		if _, err := json.Marshal(mp); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkMapRecord(b *testing.B) {
	cfg := testConfig(b)
	rec := fullRecord()
	b.ReportAllocs()
	for b.Loop() {
		MapRecord(cfg, rec, mapNow, MapOptions{})
	}
}
