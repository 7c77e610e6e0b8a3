package mapping

import (
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// expectInput checks a mapped input: a value (bool or string), or a gap
// reason when want is a GapReason. refs are the records its evidence must
// cite.
func expectInput(t *testing.T, mp *Mapped, name string, want any, refs ...string) {
	t.Helper()
	if r, ok := want.(GapReason); ok {
		if in, mapped := mp.Inputs[name]; mapped {
			t.Fatalf("%s = %v, want gap %s", name, in.Value, r)
		}
		// The calculators get no value, and the reason as its note.
		if in := mp.CalcInputs()[name]; in.Value != nil || in.Origin != gapOrigin(r) || in.Note.IsZero() {
			t.Fatalf("%s = %v (%s, note %q), want no value and gap %s", name, in.Value, in.Origin, in.Note, r)
		}
		g, ok := mp.Gap(name)
		if !ok || g.Reason != r {
			t.Fatalf("%s gap %+v, want %s", name, g, r)
		}
		for _, ref := range refs {
			if !hasRef(g.Evidence, ref) {
				t.Errorf("%s gap evidence %+v lacks %s", name, g.Evidence, ref)
			}
		}
		return
	}
	in, ok := mp.Inputs[name]
	if !ok {
		g, _ := mp.Gap(name)
		t.Fatalf("%s not mapped (gap %+v), want %v", name, g, want)
	}
	// A "no" concluded from the absence of a finding is its own origin,
	// never "record": no record states it.
	wantOrigin := calc.OriginRecord
	if (want == false || want == "none") && len(refs) == 0 {
		wantOrigin = calc.OriginAbsent
	}
	if in.Value != want || in.Origin != wantOrigin {
		t.Fatalf("%s = %v (%s), want %v (%s)", name, in.Value, in.Origin, want, wantOrigin)
	}
	for _, ref := range refs {
		if !hasRef(in.Evidence, ref) {
			t.Errorf("%s evidence %+v lacks %s", name, in.Evidence, ref)
		}
	}
	if len(refs) > 0 && (in.Source == nil || in.Source.Date == "" && in.Source.Reference == "") {
		t.Errorf("%s source %+v", name, in.Source)
	}
	if wantOrigin == calc.OriginAbsent {
		// Decided from absence: no record cited (never a FHIR query as a
		// source), and a note that says what was searched for.
		if len(in.Evidence) > 0 || in.Source != nil || in.Note.IsZero() {
			t.Errorf("%s = %v with evidence %+v source %+v note %q", name, want, in.Evidence, in.Source, in.Note)
		}
	}
}

func hasRef(list []calc.Source, ref string) bool {
	for _, s := range list {
		if s.Reference == ref {
			return true
		}
	}
	return false
}

func TestMapConditions(t *testing.T) {
	type check struct {
		input string
		want  any
		refs  []string
	}
	tests := []struct {
		name   string
		conds  []fhir.Condition
		checks []check
	}{
		{"nothing recorded", nil, []check{{"bleeding_diathesis", false, nil}, {"active_malignancy", false, nil}, {"cirrhosis_portal_hypertension", false, nil},
			{"intracranial_hemorrhage", false, nil}, {"brain_avm", false, nil}, {"ischemic_stroke", "none", nil}, {"bleeding_history", "none", nil},
			{"prior_bleeding", false, nil}, {"copd", false, nil}, {"diabetes", false, nil}, {"prior_mi", false, nil}, {"nstemi_stemi", false, nil}}},
		{"diathesis by SNOMED", []fhir.Condition{condition("c", sysSNOMED, "128105004", monthsAgo(100, 0))}, []check{{"bleeding_diathesis", true, []string{"Condition/c"}}}},
		{"diathesis by ICD-10-CM prefix", []fhir.Condition{condition("c", sysICD, "D68.0", monthsAgo(100, 0))}, []check{{"bleeding_diathesis", true, []string{"Condition/c"}}}},
		{"ICD-10-CM without its dot", []fhir.Condition{condition("c", sysICD, "D680", monthsAgo(100, 0))}, []check{{"bleeding_diathesis", true, []string{"Condition/c"}}}},
		{"refuted never counts", []fhir.Condition{verification(condition("c", sysICD, "D68.0", monthsAgo(1, 0)), "refuted")}, []check{{"bleeding_diathesis", false, nil}}},
		{"entered in error never counts", []fhir.Condition{verification(condition("c", sysICD, "D68.0", monthsAgo(1, 0)), "entered-in-error")}, []check{{"bleeding_diathesis", false, nil}}},
		{"resolved chronic condition", []fhir.Condition{clinical(condition("c", sysICD, "D68.0", monthsAgo(100, 0)), "resolved")}, []check{{"bleeding_diathesis", false, nil}}},
		{"no clinical status, not abated", []fhir.Condition{func() fhir.Condition { c := condition("c", sysICD, "D68.0", ""); c.ClinicalStatus = nil; return c }()}, []check{{"bleeding_diathesis", true, []string{"Condition/c"}}}},
		{"cirrhosis alone", []fhir.Condition{condition("ci", sysSNOMED, "19943007", monthsAgo(40, 0))}, []check{{"cirrhosis_portal_hypertension", false, nil}, {"liver_cancer_surgery", GapAsk, nil}}},
		{"portal hypertension alone", []fhir.Condition{condition("ph", sysICD, "K76.6", monthsAgo(40, 0))}, []check{{"cirrhosis_portal_hypertension", false, nil}}},
		{"cirrhosis with portal hypertension", []fhir.Condition{condition("ci", sysICD, "K74.60", monthsAgo(40, 0)), condition("ph", sysSNOMED, "34742003", monthsAgo(20, 0))},
			[]check{{"cirrhosis_portal_hypertension", true, []string{"Condition/ci", "Condition/ph"}}, {"liver_cancer_surgery", true, []string{"Condition/ci"}}}},
		{"cirrhosis with refuted portal hypertension", []fhir.Condition{condition("ci", sysICD, "K74.60", monthsAgo(40, 0)), verification(condition("ph", sysICD, "K76.6", monthsAgo(20, 0)), "refuted")}, []check{{"cirrhosis_portal_hypertension", false, nil}}},
		{"malignancy 5 months ago", []fhir.Condition{condition("ca", sysICD, "C18.9", monthsAgo(5, 0))}, []check{{"active_malignancy", true, []string{"Condition/ca"}}}},
		{"malignancy by listed SNOMED descendant", []fhir.Condition{condition("ca", sysSNOMED, "363406005", monthsAgo(4, 0))}, []check{{"active_malignancy", true, []string{"Condition/ca"}}}},
		{"lung cancer is malignancy (not a skin exclusion)", []fhir.Condition{condition("ca", sysSNOMED, "254637007", monthsAgo(2, 0))}, []check{{"active_malignancy", true, []string{"Condition/ca"}}}},
		{"C44 is never active malignancy", []fhir.Condition{condition("bcc", sysICD, "C44.91", monthsAgo(2, 0))}, []check{{"active_malignancy", false, nil}}},
		{"basal cell carcinoma in SNOMED and C44", []fhir.Condition{{ResourceType: "Condition", ID: "bcc", OnsetDateTime: monthsAgo(2, 0),
			Code: fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysSNOMED, Code: "363346000"}, {System: sysICD, Code: "C44.91"}}}}}, []check{{"active_malignancy", false, nil}}},
		{"Z85 history is not active", []fhir.Condition{condition("h", sysICD, "Z85.038", monthsAgo(2, 0))}, []check{{"active_malignancy", false, nil}}},
		{"malignancy 13 months ago, resolved", []fhir.Condition{clinical(condition("ca", sysICD, "C50.9", monthsAgo(13, 0)), "resolved")}, []check{{"active_malignancy", false, nil}}},
		{"malignancy in remission", []fhir.Condition{clinical(condition("ca", sysICD, "C61", monthsAgo(3, 0)), "remission")}, []check{{"active_malignancy", false, nil}}},
		{"active malignancy 13 months ago: under treatment?", []fhir.Condition{condition("ca", sysICD, "C61", monthsAgo(13, 0))}, []check{{"active_malignancy", GapConfirm, []string{"Condition/ca"}}}},
		{"active malignancy just inside 12 months", []fhir.Condition{condition("ca", sysICD, "C61", monthsAgo(12, -1))}, []check{{"active_malignancy", true, []string{"Condition/ca"}}}},
		{"spontaneous ICH years ago, resolved", []fhir.Condition{clinical(condition("ich", sysICD, "I61.9", monthsAgo(40, 0)), "resolved")}, []check{{"intracranial_hemorrhage", true, []string{"Condition/ich"}}}},
		{"traumatic ICH 11 months ago", []fhir.Condition{clinical(condition("t", sysICD, "S06.5X0A", monthsAgo(11, 0)), "resolved")}, []check{{"intracranial_hemorrhage", true, []string{"Condition/t"}}}},
		{"traumatic ICH 13 months ago", []fhir.Condition{clinical(condition("t", sysICD, "S06.5X0A", monthsAgo(13, 0)), "resolved")}, []check{{"intracranial_hemorrhage", false, nil}}},
		{"traumatic ICH month straddles the window", []fhir.Condition{condition("t", sysICD, "S06.5X0A", mapNow.AddDate(-1, 0, 0).Format("2006-01"))}, []check{{"intracranial_hemorrhage", GapConfirm, []string{"Condition/t"}}}},
		// SNOMED CT Intracranial hemorrhage and Cerebral hemorrhage do not
		// say the cause: either counts within 12 months; older or undated,
		// the clinician is asked whether it was spontaneous.
		{"cerebral haemorrhage (SNOMED CT) 6 months ago", []fhir.Condition{clinical(condition("ich", sysSNOMED, "274100004", monthsAgo(6, 0)), "resolved")}, []check{{"intracranial_hemorrhage", true, []string{"Condition/ich"}}}},
		{"intracranial haemorrhage (SNOMED CT) 11 months ago", []fhir.Condition{condition("ich", sysSNOMED, "1386000", monthsAgo(11, 0))}, []check{{"intracranial_hemorrhage", true, []string{"Condition/ich"}}}},
		{"cerebral haemorrhage (SNOMED CT) 3 years ago: spontaneous?", []fhir.Condition{clinical(condition("ich", sysSNOMED, "274100004", monthsAgo(36, 0)), "resolved")}, []check{{"intracranial_hemorrhage", GapConfirm, []string{"Condition/ich"}}}},
		{"intracranial haemorrhage (SNOMED CT) 13 months ago: spontaneous?", []fhir.Condition{condition("ich", sysSNOMED, "1386000", monthsAgo(13, 0))}, []check{{"intracranial_hemorrhage", GapConfirm, []string{"Condition/ich"}}}},
		{"intracranial haemorrhage (SNOMED CT) undated: asked", []fhir.Condition{condition("ich", sysSNOMED, "1386000", "")}, []check{{"intracranial_hemorrhage", GapConfirm, []string{"Condition/ich"}}}},
		{"cerebral haemorrhage 3 years ago coded I61.9 too: spontaneous", []fhir.Condition{{ResourceType: "Condition", ID: "ich", OnsetDateTime: monthsAgo(36, 0),
			Code: fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysSNOMED, Code: "274100004"}, {System: sysICD, Code: "I61.9"}}}}}, []check{{"intracranial_hemorrhage", true, []string{"Condition/ich"}}}},
		{"old cerebral haemorrhage beside a traumatic ICH 2 months ago", []fhir.Condition{condition("old", sysSNOMED, "274100004", monthsAgo(36, 0)), condition("t", sysICD, "S06.6X0A", monthsAgo(2, 0))},
			[]check{{"intracranial_hemorrhage", true, []string{"Condition/t"}}}},
		{"brain AVM", []fhir.Condition{condition("avm", sysICD, "Q28.2", monthsAgo(40, 0))}, []check{{"brain_avm", true, []string{"Condition/avm"}}}},
		{"COPD and diabetes", []fhir.Condition{condition("copd", sysSNOMED, "13645005", monthsAgo(40, 0)), condition("dm", sysICD, "E11.9", monthsAgo(40, 0))},
			[]check{{"copd", true, []string{"Condition/copd"}}, {"diabetes", true, []string{"Condition/dm"}}}},
		{"index NSTEMI", []fhir.Condition{condition("mi", sysSNOMED, "401314000", daysAgo(2))}, []check{{"nstemi_stemi", true, []string{"Condition/mi"}}, {"prior_mi", false, nil}}},
		{"MI two years ago is a prior MI", []fhir.Condition{clinical(condition("mi", sysICD, "I21.4", monthsAgo(24, 0)), "resolved")}, []check{{"nstemi_stemi", false, nil}, {"prior_mi", true, []string{"Condition/mi"}}}},
		{"old MI code", []fhir.Condition{condition("old", sysICD, "I25.2", monthsAgo(24, 0))}, []check{{"prior_mi", true, []string{"Condition/old"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := []any{patient("male", "1950-01-01")}
			for _, c := range tt.conds {
				parts = append(parts, c)
			}
			mp := mapIt(t, newRecord(parts...))
			for _, c := range tt.checks {
				expectInput(t, mp, c.input, c.want, c.refs...)
			}
		})
	}
}

func TestMapBleeding(t *testing.T) {
	gi := func(id, onset string) fhir.Condition {
		return clinical(condition(id, sysICD, "K92.2", onset), "resolved")
	}
	transfusion := func(id, date string) fhir.Procedure { return procedure(id, sysSNOMED, "116859006", date) }
	stay := func(id, start string) fhir.Encounter { return inpatient(id, start, "") }
	tests := []struct {
		name    string
		parts   []any
		history any // "none" | "minor" | "major" | GapReason
		prior   any // bool | GapReason
		refs    []string
	}{
		{"no bleeding", nil, "none", false, nil},
		{"5 months ago with a transfusion", []any{gi("b", monthsAgo(5, 0)), transfusion("tx", monthsAgo(5, -1))}, "major", true, []string{"Condition/b", "Procedure/tx"}},
		{"exactly 6 months ago with a transfusion", []any{gi("b", monthsAgo(6, 0)), transfusion("tx", monthsAgo(6, -1))}, "major", true, []string{"Procedure/tx"}},
		{"7 months ago with an inpatient stay", []any{inEncounter(gi("b", monthsAgo(7, 0)), "e1"), stay("e1", monthsAgo(7, 0))}, "minor", true, []string{"Condition/b", "Encounter/e1"}},
		{"6 months and a day ago", []any{gi("b", monthsAgo(6, 1)), transfusion("tx", monthsAgo(6, 0))}, "minor", true, []string{"Procedure/tx"}},
		{"13 months ago, supported, single", []any{gi("b", monthsAgo(13, 0)), transfusion("tx", monthsAgo(13, 0))}, "none", true, nil},
		{"12 months and a day ago", []any{gi("b", monthsAgo(12, 1)), transfusion("tx", monthsAgo(12, 1))}, "none", true, nil},
		{"5 months ago without support", []any{gi("b", monthsAgo(5, 0))}, GapConfirm, GapConfirm, []string{"Condition/b"}},
		{"transfusion long after the bleed does not support it", []any{gi("b", monthsAgo(5, 0)), transfusion("tx", monthsAgo(3, 0))}, GapConfirm, GapConfirm, []string{"Condition/b"}},
		{"outpatient stay does not support", []any{inEncounter(gi("b", monthsAgo(5, 0)), "e1"), func() fhir.Encounter {
			e := stay("e1", monthsAgo(5, 0))
			e.Class = &fhir.Coding{System: fhir.SystemActCode, Code: "AMB"}
			return e
		}()}, GapConfirm, GapConfirm, nil},
		{"linked by the encounter's diagnosis", []any{gi("b", monthsAgo(9, 0)), func() fhir.Encounter {
			e := inpatient("e1", monthsAgo(20, 0), monthsAgo(20, -3)) // dates do not overlap: only the link counts
			e.Diagnosis = []fhir.EncounterDiagnosis{{Condition: fhir.Reference{Reference: "Condition/b"}}}
			return e
		}()}, "minor", true, []string{"Encounter/e1"}},
		{"transfusion linked by reason code", []any{gi("b", monthsAgo(4, 0)), func() fhir.Procedure {
			p := transfusion("tx", monthsAgo(2, 0))
			p.ReasonCode = []fhir.CodeableConcept{concept(sysICD, "K92.2", "")}
			return p
		}()}, "major", true, []string{"Procedure/tx"}},
		{"two supported episodes years ago: recurrent", []any{gi("b1", monthsAgo(24, 0)), transfusion("t1", monthsAgo(24, 0)), gi("b2", monthsAgo(36, 0)), transfusion("t2", monthsAgo(36, 0))}, "major", true, []string{"Condition/b1", "Condition/b2"}},
		{"one bleed coded twice is one episode", []any{gi("b1", monthsAgo(8, 0)), clinical(condition("b2", sysSNOMED, "74474003", monthsAgo(8, 10)), "resolved"), transfusion("tx", monthsAgo(8, 0))}, "minor", true, []string{"Condition/b1", "Condition/b2"}},
		{"supported recently plus unsupported old", []any{gi("b1", monthsAgo(8, 0)), transfusion("t1", monthsAgo(8, 0)), gi("b2", monthsAgo(40, 0))}, GapConfirm, true, []string{"Condition/b2"}},
		{"single unsupported bleed long ago", []any{gi("b", monthsAgo(40, 0))}, "none", GapConfirm, nil},
		{"undated bleed", []any{func() fhir.Condition { c := gi("b", ""); return c }()}, GapConfirm, GapConfirm, []string{"Condition/b"}},
		{"supported condition in recurrence", []any{clinical(condition("b", sysICD, "K92.2", monthsAgo(10, 0)), "recurrence"), transfusion("tx", monthsAgo(10, 0))}, "major", true, nil},
		{"refuted bleed", []any{verification(gi("b", monthsAgo(2, 0)), "refuted"), transfusion("tx", monthsAgo(2, 0))}, "none", false, nil},
		{"bleeding by SNOMED (other sites)", []any{condition("b", sysSNOMED, "131148009", monthsAgo(3, 0)), transfusion("tx", monthsAgo(3, 0))}, "major", true, []string{"Condition/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := mapIt(t, newRecord(append([]any{patient("male", "1950-01-01")}, tt.parts...)...))
			refs := tt.refs
			if tt.history == "none" {
				refs = nil
			}
			expectInput(t, mp, "bleeding_history", tt.history, refs...)
			expectInput(t, mp, "prior_bleeding", tt.prior)
			if tt.prior == true && len(mp.Inputs["prior_bleeding"].Evidence) < 2 {
				t.Errorf("prior_bleeding cites %+v: want the bleed and what supports it", mp.Inputs["prior_bleeding"].Evidence)
			}
		})
	}
}

func TestMapBleedingQuestionNamesTheFailure(t *testing.T) {
	rec := newRecord(patient("male", "1950-01-01"), clinical(condition("b", sysICD, "K92.2", monthsAgo(3, 0)), "resolved"))
	rec.Errors["Procedure"] = fhirErr("Procedure", 403, fhir.ErrForbidden, nil)
	mp := mapIt(t, rec)
	g, _ := mp.Gap("bleeding_history")
	if g.Reason != GapConfirm || !strings.Contains(g.Message.String(), "the procedures could not be read") || !strings.Contains(g.Message.String(), "K92.2") {
		t.Errorf("gap %+v", g)
	}
}

func TestMapStroke(t *testing.T) {
	stroke := func(onset string) fhir.Condition { return condition("s", sysICD, "I63.9", onset) }
	nihss := func(v float64, date string) fhir.Observation { return lab("n", "72089-6", v, "{score}", date) }
	panel := func(v float64, date string) fhir.Observation { return lab("n", "70182-1", v, "{score}", date) }
	tests := []struct {
		name  string
		parts []any
		want  any
	}{
		{"recent, NIHSS 8", []any{stroke(monthsAgo(4, 0)), nihss(8, monthsAgo(4, -1))}, "major"},
		{"recent, NIHSS exactly 5", []any{stroke(monthsAgo(4, 0)), nihss(5, monthsAgo(4, -1))}, "major"},
		{"recent, NIHSS 3", []any{stroke(monthsAgo(4, 0)), nihss(3, monthsAgo(4, -1))}, "minor"},
		{"recent, NIHSS coded R29.710", []any{stroke(monthsAgo(2, 0)), condition("r", sysICD, "R29.710", monthsAgo(2, 0))}, "major"},
		{"recent, no NIHSS: ask", []any{stroke(monthsAgo(4, 0))}, GapConfirm},
		{"NIHSS of another time does not grade it", []any{stroke(monthsAgo(5, 0)), nihss(12, monthsAgo(1, 0))}, GapConfirm},
		{"a value under the NIHSS panel code 70182-1 is not the total", []any{stroke(monthsAgo(4, 0)), panel(8, monthsAgo(4, -1))}, GapConfirm},
		{"7 months ago, NIHSS 12", []any{stroke(monthsAgo(7, 0)), nihss(12, monthsAgo(7, -1))}, "minor"},
		{"years ago", []any{clinical(stroke(monthsAgo(40, 0)), "resolved")}, "minor"},
		{"by SNOMED", []any{condition("s", sysSNOMED, "422504002", monthsAgo(30, 0))}, "minor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := mapIt(t, newRecord(append([]any{patient("female", "1948-09-03")}, tt.parts...)...))
			expectInput(t, mp, "ischemic_stroke", tt.want, "Condition/s")
		})
	}
}

func TestMapRecentSurgery(t *testing.T) {
	pci := procedure("pci", sysSNOMED, "415070008", daysAgo(1))
	diag := procedure("echo", sysSNOMED, "40701008", daysAgo(3))
	diag.Category = &fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysSNOMED, Code: "103693007"}}}
	tests := []struct {
		name  string
		parts []any
		opts  MapOptions
		want  any
		refs  []string
	}{
		{"nothing", nil, MapOptions{}, false, nil},
		{"the index PCI is not surgery", []any{pci, procedure("cath", sysCPT, "93458", daysAgo(2))}, MapOptions{}, false, nil},
		{"hip replacement 20 days ago", []any{pci, procedure("hip", sysSNOMED, "52734007", daysAgo(20))}, MapOptions{}, true, []string{"Procedure/hip"}},
		{"hip replacement 40 days ago", []any{procedure("hip", sysSNOMED, "52734007", daysAgo(40))}, MapOptions{}, false, nil},
		{"another procedure 10 days ago: ask", []any{procedure("x", sysSNOMED, "80146002", daysAgo(10))}, MapOptions{}, GapAsk, []string{"Procedure/x"}},
		{"a diagnostic procedure is not asked about", []any{diag}, MapOptions{}, false, nil},
		{"a procedure not done", []any{func() fhir.Procedure {
			p := procedure("x", sysSNOMED, "80146002", daysAgo(10))
			p.Status = "not-done"
			return p
		}()}, MapOptions{}, false, nil},
		{"an injury 10 days ago: ask", []any{condition("inj", sysICD, "S72.001A", daysAgo(10))}, MapOptions{}, GapAsk, []string{"Condition/inj"}},
		{"an injury 40 days ago", []any{condition("inj", sysICD, "S72.001A", daysAgo(40))}, MapOptions{}, false, nil},
		{"ask even without evidence", nil, MapOptions{AskRecentSurgery: true}, GapAsk, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := MapRecord(testConfig(t), newRecord(append([]any{patient("male", "1950-01-01")}, tt.parts...)...), mapNow, tt.opts)
			expectInput(t, mp, "recent_major_surgery_trauma", tt.want, tt.refs...)
			// Non-deferrable major surgery is always the clinician's answer.
			expectInput(t, mp, "nondeferrable_major_surgery", GapAsk)
		})
	}
}

func TestMapProceduresForTradeoff(t *testing.T) {
	// ICD-10-PCS dilation with an intraluminal device (not drug-eluting) is
	// a bare-metal stent; a drug-eluting one leaves the question open.
	mp := mapIt(t, newRecord(patient("male", "1950-01-01"), procedure("bms", sysPCS, "02713EZ", daysAgo(1))))
	expectInput(t, mp, "bare_metal_stent", true, "Procedure/bms")
	expectInput(t, mp, "complex_pci", GapAsk) // no code means complex PCI
	mp = mapIt(t, newRecord(patient("male", "1950-01-01"), procedure("des", sysPCS, "027034Z", daysAgo(1))))
	expectInput(t, mp, "bare_metal_stent", GapAsk)
}

// TestICHOfUnstatedCauseAsks: the question for an intracranial haemorrhage
// whose code does not say the cause names the record and its date, says
// why it matters in clinical words (spontaneous counts at any time,
// traumatic only within 12 months), in both languages.
func TestICHOfUnstatedCauseAsks(t *testing.T) {
	for _, tt := range []struct {
		name, onset string
		want        []string
	}{
		{"3 years ago", monthsAgo(36, 0), []string{"Cerebral hemorrhage (", "more than 12 months ago", "spontaneous or traumatic", "Was it spontaneous?"}},
		{"undated", "", []string{"Cerebral hemorrhage (undated)", "within the last 12 months", "Was it spontaneous, or within the last 12 months?"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := condition("ich", sysSNOMED, "274100004", tt.onset)
			c.Code.Coding[0].Display, c.Code.Text = "Cerebral hemorrhage", "Cerebral hemorrhage"
			mp := mapIt(t, newRecord(patient("male", "1950-01-01"), c))
			g, ok := mp.Gap("intracranial_hemorrhage")
			if !ok || g.Reason != GapConfirm {
				t.Fatalf("gap %+v, want a question", g)
			}
			en := g.Message.String()
			for _, w := range tt.want {
				if !strings.Contains(en, w) {
					t.Errorf("question %q lacks %q", en, w)
				}
			}
			zh := message.Default().Printer(message.TraditionalChinese).Sprint(g.Message)
			if !strings.Contains(zh, "自發性") || !strings.Contains(zh, "外傷性") || !strings.Contains(zh, "12 個月") {
				t.Errorf("zh-TW question %q", zh)
			}
		})
	}
}
