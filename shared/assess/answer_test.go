package assess_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// Record fixtures: FHIR records as an EHR returns them, assessed as the API
// assesses them (assess.Service.Evaluate), for the clinical answer.

const (
	sysSCT   = "http://snomed.info/sct"
	sysICD   = "http://hl7.org/fhir/sid/icd-10-cm"
	sysLOINC = "http://loinc.org"
	sysRx    = "http://www.nlm.nih.gov/research/umls/rxnorm"
)

func ago(days int) string { return now.AddDate(0, 0, -days).Format(time.RFC3339) }

func coded(system, code, text string) fhir.CodeableConcept {
	return fhir.CodeableConcept{Coding: []fhir.Coding{{System: system, Code: code, Display: text}}, Text: text}
}

func obs(id, loinc string, v float64, unit string) fhir.Observation {
	return fhir.Observation{ResourceType: "Observation", ID: id, Status: "final", Code: coded(sysLOINC, loinc, ""), EffectiveDateTime: ago(2),
		ValueQuantity: &fhir.Quantity{Value: &v, System: "http://unitsofmeasure.org", Code: unit, Unit: unit}}
}

func cond(id, system, code string, days int) fhir.Condition {
	return fhir.Condition{ResourceType: "Condition", ID: id, Code: coded(system, code, code), OnsetDateTime: ago(days),
		ClinicalStatus:     &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConditionClinical, Code: "active"}}},
		VerificationStatus: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConditionVerification, Code: "confirmed"}}}}
}

// drug is an active order taken by mouth every day since 60 days ago, of
// dose mg per dose, per times a day.
func drug(id, rxnorm, text string, dose float64, per int) fhir.MedicationRequest {
	one := 1.0
	cc := coded(sysRx, rxnorm, text)
	return fhir.MedicationRequest{ResourceType: "MedicationRequest", ID: id, Status: "active", Intent: "order", MedicationCodeableConcept: &cc,
		AuthoredOn: ago(60), DosageInstruction: []fhir.Dosage{{Route: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysSCT, Code: "26643006"}}},
			Timing:      &fhir.Timing{Repeat: &fhir.TimingRepeat{Frequency: &per, Period: &one, PeriodUnit: "d"}},
			DoseAndRate: []fhir.DoseAndRate{{DoseQuantity: &fhir.Quantity{Value: &dose, Unit: "mg", System: "http://unitsofmeasure.org", Code: "mg"}}}}}}
}

// record is the record of a 60-year-old man with complete, normal labs
// (PRECISE-HBR 11: not HBR), no ARC-HBR criterion, on aspirin plus
// clopidogrel after a PCI two days ago for an NSTEMI three days ago.
type record struct {
	rec *fhir.Record
}

func newRecord() *record {
	rec := &fhir.Record{Errors: map[string]error{}, Truncated: map[string]bool{}, Medications: map[string]*fhir.Medication{},
		Patient: &fhir.Patient{ResourceType: "Patient", ID: "p1", Gender: "male", BirthDate: now.AddDate(-60, 0, -10).Format("2006-01-02")}}
	rec.Observations = []fhir.Observation{
		obs("hb", "718-7", 14.5, "g/dL"), obs("cr", "2160-0", 0.9, "mg/dL"), obs("egfr", "98979-8", 95, "mL/min/{1.73_m2}"),
		obs("wbc", "6690-2", 6.5, "10*3/uL"), obs("plt", "777-3", 250, "10*3/uL"), obs("wt", "29463-7", 80, "kg"),
	}
	rec.Conditions = []fhir.Condition{cond("mi", sysICD, "I21.4", 3)}
	pci := fhir.Procedure{ResourceType: "Procedure", ID: "pci", Status: "completed", Code: coded(sysSCT, "415070008", "PCI"), PerformedDateTime: ago(2),
		ReasonReference: []fhir.Reference{{Reference: "Condition/mi"}}}
	rec.Procedures = []fhir.Procedure{pci}
	rec.MedicationRequests = []fhir.MedicationRequest{drug("asa", "1191", "aspirin 81 mg", 81, 1), drug("clop", "309362", "clopidogrel 75 MG Oral Tablet", 75, 1)}
	return &record{rec: rec}
}

func (f *record) without(typ, id string) *record {
	switch typ {
	case "Observation":
		f.rec.Observations = slices.DeleteFunc(f.rec.Observations, func(o fhir.Observation) bool { return o.ID == id })
	case "Condition":
		f.rec.Conditions = slices.DeleteFunc(f.rec.Conditions, func(c fhir.Condition) bool { return c.ID == id })
	case "Procedure":
		f.rec.Procedures = slices.DeleteFunc(f.rec.Procedures, func(p fhir.Procedure) bool { return p.ID == id })
	default:
		panic(typ)
	}
	return f
}

func (f *record) with(parts ...any) *record {
	for _, p := range parts {
		switch v := p.(type) {
		case fhir.Observation:
			f.rec.Observations = slices.DeleteFunc(f.rec.Observations, func(o fhir.Observation) bool { return o.ID == v.ID })
			f.rec.Observations = append(f.rec.Observations, v)
		case fhir.Condition:
			f.rec.Conditions = append(f.rec.Conditions, v)
		case fhir.MedicationRequest:
			f.rec.MedicationRequests = append(f.rec.MedicationRequests, v)
		default:
			panic(fmt.Sprintf("with %T", p))
		}
	}
	return f
}

// TestClinicalAnswerFromRecords: the verdict, presentation, OAC, regimen
// and plan the API gives for records covering every pathway, both
// presentations and the unknown one, an OAC, vascular-dose rivaroxaban,
// ICH beside a not-HBR PRECISE-HBR, and a not-HBR patient with complete
// and with missing data.
func TestClinicalAnswerFromRecords(t *testing.T) {
	svc := &assess.Service{Now: func() time.Time { return now }}
	engine, err := calc.NewEngine(mustConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	svc.Engine, svc.Scoring = engine, engine.Config()
	type want struct {
		hbr          any // true, false or nil
		reason       string
		arcOK        bool // the ARC-HBR result's status is ok
		presentation any  // "acs", "ccs" or nil
		oac          any
		pathways     []string // besides gastric protection, which every plan carries
		notWeighed   []string
	}
	tests := []struct {
		name string
		rec  *record
		want want
	}{
		{"not HBR, complete data, ACS: standard DAPT", newRecord(),
			want{false, calc.ReasonNotHBR, true, "acs", false, []string{"dapt-standard"}, nil}},
		{"not HBR by every number, hemoglobin missing: undetermined, both DAPT pathways conditional", newRecord().without("Observation", "hb"),
			want{nil, calc.ReasonUndetermined, false, "acs", false, []string{"dapt-standard", "dapt-abbreviated"}, nil}},
		{"elective PCI for stable angina: CCS", newRecord().without("Condition", "mi").with(cond("sa", sysSCT, "233819005", 700)),
			want{false, calc.ReasonNotHBR, true, "ccs", false, []string{"dapt-standard"}, nil}},
		{"no PCI, no ACS, chronic coronary disease: presentation unknown, both given", newRecord().without("Condition", "mi").without("Procedure", "pci").with(cond("cad", sysICD, "I25.10", 700)),
			want{false, calc.ReasonNotHBR, true, nil, false, []string{"dapt-standard"}, nil}},
		{"unstable angina (I20.0), Hb 10.5: HBR both ways, abbreviated DAPT", newRecord().without("Condition", "mi").with(cond("ua", sysICD, "I20.0", 3), obs("hb", "718-7", 10.5, "g/dL")),
			want{true, calc.ReasonBoth, true, "acs", false, []string{"dapt-abbreviated"}, nil}},
		{"ICH years ago, PRECISE-HBR not HBR: HBR by ARC-HBR alone, explained", newRecord().with(cond("ich", sysICD, "I61.9", 1500)),
			want{true, calc.ReasonARCOnly, true, "acs", false, []string{"dapt-abbreviated"}, []string{"intracranial-hemorrhage"}}},
		{"apixaban plus aspirin and clopidogrel (triple therapy): OAC pathway only", newRecord().with(drug("apx", "1364445", "apixaban 5 MG Oral Tablet", 5, 2)),
			want{true, calc.ReasonARCOnly, true, "acs", true, []string{"oac-antiplatelet"}, nil}},
		{"rivaroxaban 2.5 mg twice daily: vascular protection, not an OAC", newRecord().with(drug("riv", "1114195", "rivaroxaban", 2.5, 2)),
			want{false, calc.ReasonNotHBR, true, "acs", false, []string{"dapt-standard"}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := svc.Evaluate(context.Background(), tt.rec.rec, nil, now)
			if err != nil {
				t.Fatal(err)
			}
			sm, w := a.Summary, tt.want
			got := func(b *bool) any {
				if b == nil {
					return nil
				}
				return *b
			}
			var pres any
			if sm.Presentation != nil {
				pres = *sm.Presentation
			}
			if got(sm.HBR) != w.hbr || sm.Reason != w.reason || pres != w.presentation || got(sm.OAC) != w.oac {
				t.Fatalf("hbr %v (%s), presentation %v, OAC %v; want %v (%s), %v, %v\n%s", got(sm.HBR), sm.Reason, pres, got(sm.OAC), w.hbr, w.reason, w.presentation, w.oac, sm.Text)
			}
			if arc := a.Results["arc-hbr"]; (arc.Status == calc.StatusOK) != w.arcOK {
				t.Errorf("ARC-HBR status %s (missing %v), want ok: %v", arc.Status, arc.Missing, w.arcOK)
			}
			// A not-HBR verdict rests on an ARC-HBR result that says so
			// itself: status ok and hbr false.
			if arc := a.Results["arc-hbr"]; w.hbr == false && (arc.HBR == nil || got(arc.HBR.HBR) != false) {
				t.Errorf("not HBR: ARC-HBR result's hbr %+v, want false", arc.HBR)
			}
			if w.hbr == false && (len(sm.Basis) != 2 || len(sm.Assumptions) != 1) {
				t.Errorf("not HBR: basis %v, assumptions %+v; want both calculators and the surgery assumption", sm.Basis, sm.Assumptions)
			}
			if !slices.Equal(sm.NotWeighed, w.notWeighed) {
				t.Errorf("not weighed %v, want %v", sm.NotWeighed, w.notWeighed)
			}
			if len(w.notWeighed) > 0 && !strings.Contains(sm.Text.String(), "does not weigh") {
				t.Errorf("text %q: want why the two disagree", sm.Text)
			}
			var pathways []string
			presentations := map[string]bool{}
			gastric := false
			for _, it := range sm.Plan {
				if it.Pathway == calc.PathwayGastricProtection {
					gastric = true
					continue
				}
				if !slices.Contains(pathways, it.Pathway) {
					pathways = append(pathways, it.Pathway)
				}
				presentations[it.Presentation] = true
				if w.hbr == nil && !slices.ContainsFunc(it.If, func(c string) bool { return c == calc.IfHBR || c == calc.IfNotHBR }) && it.Pathway != calc.PathwayOACAntiplatelet {
					t.Errorf("HBR undetermined, yet %s/%s is not conditional on it (if %v)", it.Pathway, it.Presentation, it.If)
				}
			}
			slices.Sort(pathways)
			wantPathways := slices.Sorted(slices.Values(w.pathways))
			if !slices.Equal(pathways, wantPathways) || !gastric {
				t.Errorf("pathways %v (gastric protection %v), want %v and gastric protection", pathways, gastric, wantPathways)
			}
			switch w.presentation {
			case nil:
				if !presentations["acs"] || !presentations["ccs"] {
					t.Errorf("presentation unknown, plan presentations %v: want both", presentations)
				}
			default:
				if len(presentations) != 1 || !presentations[w.presentation.(string)] {
					t.Errorf("plan presentations %v, want %v only", presentations, w.presentation)
				}
			}
			if w.presentation != nil && (sm.PCI == nil) != (tt.rec.pci() == nil) {
				t.Errorf("summary.pci %+v", sm.PCI)
			}
			if rg := sm.Regimen; rg == nil || len(rg.Aspirin) != 1 || len(rg.P2Y12) != 1 || rg.P2Y12[0].Ingredient != "clopidogrel" {
				t.Errorf("regimen %+v: want aspirin and clopidogrel", sm.Regimen)
			} else if w.oac == true && (len(rg.Anticoagulant) != 1 || rg.Anticoagulant[0].Ingredient != "apixaban") {
				t.Errorf("regimen anticoagulant %+v, want apixaban", rg.Anticoagulant)
			} else if strings.Contains(tt.name, "rivaroxaban") && (len(rg.Anticoagulant) != 0 || len(rg.Vascular) != 1 || rg.Vascular[0].Ingredient != "rivaroxaban") {
				t.Errorf("regimen %+v: want rivaroxaban at the vascular dose, no anticoagulant", rg)
			}
		})
	}
}

func (f *record) pci() *fhir.Procedure {
	for i := range f.rec.Procedures {
		return &f.rec.Procedures[i]
	}
	return nil
}

func mustConfig(t *testing.T) *calc.Config {
	t.Helper()
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
