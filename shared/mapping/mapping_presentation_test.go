package mapping

import (
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// pciOn is a completed PCI (SNOMED CT 415070008) performed on date.
func pciOn(id, date string) fhir.Procedure { return procedure(id, sysSNOMED, "415070008", date) }

func because(p fhir.Procedure, conditions ...string) fhir.Procedure {
	for _, c := range conditions {
		p.ReasonReference = append(p.ReasonReference, fhir.Reference{Reference: "Condition/" + c})
	}
	return p
}

func recorded(c fhir.Condition, date string) fhir.Condition {
	c.OnsetDateTime, c.RecordedDate = "", date
	return c
}

// TestMapPresentation: the presentation of the index PCI from the
// conditions around it, the PCI date, and the question when the record
// cannot tell.
func TestMapPresentation(t *testing.T) {
	tests := []struct {
		name  string
		parts []any
		errs  map[string]error
		want  any // "acs", "ccs" or the gap reason
		refs  []string
		pci   string // the index PCI's reference, "" for none
	}{
		{"NSTEMI named as the PCI's reason", []any{condition("mi", sysSNOMED, "401314000", daysAgo(4)), because(pciOn("pci", daysAgo(3)), "mi")},
			nil, calc.PresentationACS, []string{"Condition/mi", "Procedure/pci"}, "Procedure/pci"},
		{"STEMI the day of the PCI (ICD-10-CM I21.09)", []any{condition("mi", sysICD, "I21.09", daysAgo(10)), pciOn("pci", daysAgo(10))},
			nil, calc.PresentationACS, []string{"Condition/mi"}, "Procedure/pci"},
		{"unstable angina (I20.0), resolved, 20 days before the PCI", []any{clinical(condition("ua", sysICD, "I20.0", daysAgo(80)), "resolved"), pciOn("pci", daysAgo(60))},
			nil, calc.PresentationACS, []string{"Condition/ua"}, "Procedure/pci"},
		{"unstable angina in SNOMED CT (4557003), recorded during the stay after the PCI", []any{recorded(condition("ua", sysSNOMED, "4557003", ""), daysAgo(40)), pciOn("pci", daysAgo(43))},
			nil, calc.PresentationACS, []string{"Condition/ua"}, "Procedure/pci"},
		{"I24.9 acute ischaemic heart disease in the PCI's encounter", []any{inEncounter(condition("aihd", sysICD, "I24.9", ""), "e1"), func() fhir.Procedure {
			p := pciOn("pci", daysAgo(100))
			p.Encounter = &fhir.Reference{Reference: "Encounter/e1"}
			return p
		}()}, nil, calc.PresentationACS, []string{"Condition/aihd"}, "Procedure/pci"},
		{"the PCI's reason code is an NSTEMI", []any{func() fhir.Procedure {
			p := pciOn("pci", daysAgo(5))
			p.ReasonCode = []fhir.CodeableConcept{concept(sysICD, "I21.4", "NSTEMI")}
			return p
		}()}, nil, calc.PresentationACS, []string{"Procedure/pci"}, "Procedure/pci"},
		{"no PCI yet, NSTEMI 2 days ago", []any{condition("mi", sysICD, "I21.4", daysAgo(2))}, nil, calc.PresentationACS, []string{"Condition/mi"}, ""},
		{"elective PCI for stable angina", []any{condition("sa", sysSNOMED, "233819005", monthsAgo(30, 0)), pciOn("pci", daysAgo(14))},
			nil, calc.PresentationCCS, []string{"Condition/sa", "Procedure/pci"}, "Procedure/pci"},
		{"elective PCI for native coronary atherosclerosis (I25.10)", []any{condition("cad", sysICD, "I25.10", monthsAgo(24, 0)), pciOn("pci", daysAgo(30))},
			nil, calc.PresentationCCS, []string{"Condition/cad"}, "Procedure/pci"},
		{"an MI two years before the elective PCI is a prior MI, not the presentation", []any{clinical(condition("old", sysICD, "I21.4", monthsAgo(24, 0)), "resolved"),
			condition("sa", sysICD, "I20.89", monthsAgo(20, 0)), pciOn("pci", daysAgo(14))}, nil, calc.PresentationCCS, []string{"Condition/sa"}, "Procedure/pci"},
		{"I25.110 (with unstable angina) is an ACS, not a CCS", []any{condition("cad", sysICD, "I25.110", daysAgo(6)), pciOn("pci", daysAgo(5))},
			nil, calc.PresentationACS, []string{"Condition/cad"}, "Procedure/pci"},
		{"Dressler's syndrome (I24.1) is no ACS", []any{condition("dr", sysICD, "I24.1", daysAgo(6)), condition("cad", sysICD, "I25.10", monthsAgo(12, 0)), pciOn("pci", daysAgo(5))},
			nil, calc.PresentationCCS, []string{"Condition/cad"}, "Procedure/pci"},
		{"stable angina resolved before the PCI does not decide", []any{clinical(condition("sa", sysSNOMED, "233819005", monthsAgo(30, 0)), "resolved"), pciOn("pci", daysAgo(14))},
			nil, GapAsk, []string{"Procedure/pci"}, "Procedure/pci"},
		{"angina pectoris, unspecified (I20.9) decides neither", []any{condition("ap", sysICD, "I20.9", daysAgo(20)), pciOn("pci", daysAgo(14))},
			nil, GapAsk, []string{"Procedure/pci"}, "Procedure/pci"},
		{"a PCI and no coronary condition: asked", []any{pciOn("pci", daysAgo(14))}, nil, GapAsk, []string{"Procedure/pci"}, "Procedure/pci"},
		{"no PCI and chronic coronary disease: asked (the PCI may be for an ACS not coded yet)", []any{condition("cad", sysICD, "I25.10", monthsAgo(24, 0))},
			nil, GapAsk, nil, ""},
		{"a PCI older than 12 months is not the index PCI", []any{condition("cad", sysICD, "I25.10", monthsAgo(30, 0)), pciOn("old", monthsAgo(14, 0))},
			nil, GapAsk, nil, ""},
		{"the newest PCI is the index PCI", []any{condition("mi", sysICD, "I21.4", monthsAgo(8, 1)), because(pciOn("first", monthsAgo(8, 0)), "mi"),
			condition("sa", sysSNOMED, "233819005", monthsAgo(30, 0)), pciOn("second", daysAgo(10))}, nil, calc.PresentationCCS, []string{"Procedure/second"}, "Procedure/second"},
		{"an undated ACS: confirm", []any{condition("ua", sysICD, "I20.0", ""), pciOn("pci", daysAgo(14))}, nil, GapConfirm, []string{"Condition/ua", "Procedure/pci"}, "Procedure/pci"},
		{"Condition search failed: no CCS concluded", []any{condition("cad", sysICD, "I25.10", monthsAgo(24, 0)), pciOn("pci", daysAgo(14))},
			map[string]error{"Condition": fhirErr("Condition", 503, fhir.ErrUnavailable, nil)}, GapUnavailable, nil, "Procedure/pci"},
		{"Condition search refused, the PCI's reason code still says ACS", []any{func() fhir.Procedure {
			p := pciOn("pci", daysAgo(5))
			p.ReasonCode = []fhir.CodeableConcept{concept(sysSNOMED, "401303003", "STEMI")}
			return p
		}()}, map[string]error{"Condition": fhirErr("Condition", 403, fhir.ErrForbidden, nil)}, calc.PresentationACS, []string{"Procedure/pci"}, "Procedure/pci"},
		{"a PCI in CPT (92928) dates the index PCI", []any{condition("sa", sysSNOMED, "233819005", monthsAgo(30, 0)), procedure("stent", sysCPT, "92928", daysAgo(9))},
			nil, calc.PresentationCCS, []string{"Procedure/stent"}, "Procedure/stent"},
		{"coronary angiography alone is no PCI", []any{condition("sa", sysSNOMED, "233819005", monthsAgo(30, 0)), procedure("cath", sysCPT, "93458", daysAgo(9))},
			nil, GapAsk, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord(append([]any{patient("male", "1950-01-01")}, tt.parts...)...)
			for k, v := range tt.errs {
				rec.Errors[k] = v
			}
			mp := mapIt(t, rec)
			expectInput(t, mp, calc.InputPresentation, tt.want, tt.refs...)
			got := ""
			if mp.IndexPCI != nil {
				got = mp.IndexPCI.Reference
				if mp.IndexPCI.Date == "" {
					t.Errorf("index PCI %+v without its date", mp.IndexPCI)
				}
			}
			if got != tt.pci {
				t.Errorf("index PCI %q, want %q", got, tt.pci)
			}
			if g, ok := mp.Gap(calc.InputPresentation); ok && (g.Reason == GapAsk || g.Reason == GapConfirm) && !strings.Contains(g.Message.String(), "coronary syndrome") {
				t.Errorf("question %q does not ask ACS or CCS", g.Message)
			}
		})
	}
}

// TestRegimenIngredients: products coded as RxNorm clinical or branded
// drugs (SCD, SBD) resolve to their ingredient, which the regimen names.
func TestRegimenIngredients(t *testing.T) {
	tests := []struct {
		name  string
		parts []any
		group func(calc.Regimen) []calc.RegimenDrug
		want  string
	}{
		{"ticagrelor 90 MG Oral Tablet (SCD 1116635)", []any{order("t", rx("1116635", "ticagrelor 90 MG Oral Tablet"))},
			func(r calc.Regimen) []calc.RegimenDrug { return r.P2Y12 }, "ticagrelor"},
		{"Brilinta (SBD 1116639), named by its brand only", []any{order("t", rx("1116639", "Brilinta 90 mg"))},
			func(r calc.Regimen) []calc.RegimenDrug { return r.P2Y12 }, "ticagrelor"},
		{"ticagrelor 60 MG Oral Tablet (SCD 1666332)", []any{order("t", rx("1666332", ""))},
			func(r calc.Regimen) []calc.RegimenDrug { return r.P2Y12 }, "ticagrelor"},
		{"clopidogrel [Plavix] (SBD 213169)", []any{order("c", rx("213169", "Plavix"))},
			func(r calc.Regimen) []calc.RegimenDrug { return r.P2Y12 }, "clopidogrel"},
		{"prasugrel ingredient (IN 613391)", []any{order("p", rx("613391", "Effient"))},
			func(r calc.Regimen) []calc.RegimenDrug { return r.P2Y12 }, "prasugrel"},
		{"apixaban 5 MG Oral Tablet [Eliquis] (SBD 1364447)", []any{order("a", rx("1364447", "Eliquis 5 mg"))},
			func(r calc.Regimen) []calc.RegimenDrug { return r.Anticoagulant }, "apixaban"},
		{"an unlisted product through its Medication's ingredient", []any{&fhir.Medication{ResourceType: "Medication", ID: "m1",
			Code:       &fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysRxNorm, Code: "999999", Display: "ticagrelor 45 MG Oral Tablet"}}},
			Ingredient: []fhir.MedicationIngredient{{ItemCodeableConcept: ptrTo(rx("1116632", "ticagrelor"))}}},
			func() fhir.MedicationRequest {
				r := order("m", fhir.CodeableConcept{})
				r.MedicationCodeableConcept, r.MedicationReference = nil, &fhir.Reference{Reference: "Medication/m1"}
				return r
			}()}, func(r calc.Regimen) []calc.RegimenDrug { return r.P2Y12 }, "ticagrelor"},
		{"rivaroxaban 2.5 mg: vascular dose, still rivaroxaban", []any{order("r", rx("1114195", "rivaroxaban"), doseMg(2.5, 2))},
			func(r calc.Regimen) []calc.RegimenDrug { return r.Vascular }, "rivaroxaban"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := mapIt(t, newRecord(append([]any{patient("male", "1950-01-01")}, tt.parts...)...))
			g := tt.group(mp.Regimen)
			if len(g) != 1 || g[0].Ingredient != tt.want || g[0].Reference == "" {
				t.Fatalf("regimen %+v, want one drug resolving to %s", mp.Regimen, tt.want)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }
