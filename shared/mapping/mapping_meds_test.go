package mapping

import (
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

func oralDaily(freq int) fhir.Dosage {
	one := 1.0
	return fhir.Dosage{Route: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysSNOMED, Code: "26643006", Display: "Oral route"}}},
		Timing: &fhir.Timing{Repeat: &fhir.TimingRepeat{Frequency: &freq, Period: &one, PeriodUnit: "d"}}}
}

type medMod func(*fhir.MedicationRequest)

// order is an active order, authored 60 days ago, taken by mouth once a day.
func order(id string, cc fhir.CodeableConcept, mods ...medMod) fhir.MedicationRequest {
	r := fhir.MedicationRequest{ResourceType: "MedicationRequest", ID: id, Status: "active", Intent: "order", MedicationCodeableConcept: &cc,
		AuthoredOn: daysAgo(60), DosageInstruction: []fhir.Dosage{oralDaily(1)}}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func route(system, code, display string) medMod {
	return func(r *fhir.MedicationRequest) {
		r.DosageInstruction[0].Route = &fhir.CodeableConcept{Coding: []fhir.Coding{{System: system, Code: code, Display: display}}}
	}
}

func noRoute(r *fhir.MedicationRequest) { r.DosageInstruction[0].Route = nil }

func authored(date string) medMod { return func(r *fhir.MedicationRequest) { r.AuthoredOn = date } }

func status(s string) medMod { return func(r *fhir.MedicationRequest) { r.Status = s } }

func intent(s string) medMod { return func(r *fhir.MedicationRequest) { r.Intent = s } }

func doseMg(v float64, freq int) medMod {
	return func(r *fhir.MedicationRequest) {
		d := oralDaily(freq)
		d.DoseAndRate = []fhir.DoseAndRate{{DoseQuantity: &fhir.Quantity{Value: &v, Unit: "mg", System: systemUCUM, Code: "mg"}}}
		r.DosageInstruction = []fhir.Dosage{d}
	}
}

func rx(code, display string) fhir.CodeableConcept { return concept(sysRxNorm, code, display) }

func TestMapMedications(t *testing.T) {
	prn := func(r *fhir.MedicationRequest) { yes := true; r.DosageInstruction[0].AsNeeded = &yes }
	weekly := func(r *fhir.MedicationRequest) {
		one, wk := 1, 1.0
		r.DosageInstruction[0].Timing = &fhir.Timing{Repeat: &fhir.TimingRepeat{Frequency: &one, Period: &wk, PeriodUnit: "wk"}}
	}
	fiveDays := func(r *fhir.MedicationRequest) {
		r.DosageInstruction[0].Timing.Repeat.BoundsPeriod = &fhir.Period{Start: daysAgo(1), End: mapNow.AddDate(0, 0, 4).Format("2006-01-02")}
	}
	noSchedule := func(r *fhir.MedicationRequest) { r.DosageInstruction[0].Timing = nil }
	bid := func(r *fhir.MedicationRequest) {
		r.DosageInstruction[0].Timing = &fhir.Timing{Code: &fhir.CodeableConcept{Coding: []fhir.Coding{{Code: "BID"}}}}
	}
	supply90 := func(r *fhir.MedicationRequest) {
		v := 90.0
		r.DispenseRequest = &fhir.DispenseRequest{ExpectedSupplyDuration: &fhir.Quantity{Value: &v, Code: "d", System: systemUCUM}}
	}
	supply7 := func(r *fhir.MedicationRequest) {
		v := 7.0
		r.DispenseRequest = &fhir.DispenseRequest{ExpectedSupplyDuration: &fhir.Quantity{Value: &v, Code: "d", System: systemUCUM}}
	}
	refills := func(r *fhir.MedicationRequest) {
		n := 3
		r.DispenseRequest = &fhir.DispenseRequest{NumberOfRepeatsAllowed: &n}
	}
	today := authored(daysAgo(0))

	apixabanMed := &fhir.Medication{ResourceType: "Medication", ID: "apx", Code: &fhir.CodeableConcept{Text: "Eliquis 5 mg (local code)",
		Coding: []fhir.Coding{{System: "urn:local", Code: "E5"}}},
		Ingredient: []fhir.MedicationIngredient{{ItemCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: sysRxNorm, Code: "1364430", Display: "apixaban"}}}}}}
	byRef := order("r", fhir.CodeableConcept{})
	byRef.MedicationCodeableConcept = nil
	byRef.MedicationReference = &fhir.Reference{Reference: "Medication/apx"}
	statement := fhir.MedicationStatement{ResourceType: "MedicationStatement", ID: "s", Status: "active", MedicationCodeableConcept: new(rx("5640", "ibuprofen")),
		EffectivePeriod: &fhir.Period{Start: daysAgo(300)}, Dosage: []fhir.Dosage{oralDaily(3)}}
	oacStatement := fhir.MedicationStatement{ResourceType: "MedicationStatement", ID: "s", Status: "active", MedicationCodeableConcept: new(rx("1364430", "apixaban"))}
	stoppedStatement := oacStatement
	stoppedStatement.Status = "completed"

	type want struct {
		oac   any // bool or GapReason
		nsaid any
		dapt  *bool
	}
	tests := []struct {
		name  string
		parts []any
		want  want
		refs  []string // evidence of whichever input is true
	}{
		{"nothing", nil, want{false, false, new(false)}, nil},
		{"apixaban ingredient", []any{order("a", rx("1364430", "apixaban"))}, want{true, false, new(false)}, []string{"MedicationRequest/a"}},
		{"apixaban product (SCD) only", []any{order("a", rx("1364445", "apixaban 5 MG Oral Tablet"))}, want{true, false, new(false)}, []string{"MedicationRequest/a"}},
		{"Eliquis product (SBD) only", []any{order("a", rx("1364447", "apixaban 5 MG Oral Tablet [Eliquis]"))}, want{true, false, new(false)}, nil},
		{"warfarin product", []any{order("a", rx("855332", "warfarin sodium 5 MG Oral Tablet"))}, want{true, false, new(false)}, nil},
		{"by ATC", []any{order("a", concept(sysATC, "B01AA03", "warfarin"))}, want{true, false, new(false)}, nil},
		{"by a referenced Medication's ingredient", []any{apixabanMed, byRef}, want{true, false, new(false)}, []string{"MedicationRequest/r"}},
		{"the repositories' wrong rivaroxaban code", []any{order("a", rx("21821", "?"))}, want{false, false, new(false)}, nil},
		{"rivaroxaban 20 mg", []any{order("a", rx("1114195", "rivaroxaban"), doseMg(20, 1))}, want{true, false, new(false)}, nil},
		{"rivaroxaban 2.5 mg twice daily: vascular dose", []any{order("a", rx("1114195", "rivaroxaban"), doseMg(2.5, 2))}, want{false, false, new(false)}, nil},
		{"rivaroxaban 2.5 mg product", []any{order("a", rx("2059015", "rivaroxaban 2.5 MG Oral Tablet"))}, want{false, false, new(false)}, nil},
		{"stopped order", []any{order("a", rx("1364430", "apixaban"), status("stopped"))}, want{false, false, new(false)}, nil},
		{"entered-in-error order", []any{order("a", rx("1364430", "apixaban"), status("entered-in-error"))}, want{false, false, new(false)}, nil},
		{"on hold counts", []any{order("a", rx("1364430", "apixaban"), status("on-hold"))}, want{true, false, new(false)}, nil},
		{"a proposal is no order", []any{order("a", rx("1364430", "apixaban"), intent("proposal"))}, want{false, false, new(false)}, nil},
		{"an original-order is an order", []any{order("a", rx("1364430", "apixaban"), intent("original-order"))}, want{true, false, new(false)}, nil},
		{"active statement", []any{oacStatement}, want{true, false, new(false)}, []string{"MedicationStatement/s"}},
		{"completed statement", []any{stoppedStatement}, want{false, false, new(false)}, nil},
		{"oral ibuprofen daily for 60 days", []any{order("n", rx("5640", "ibuprofen"))}, want{false, true, new(false)}, []string{"MedicationRequest/n"}},
		{"ibuprofen statement for 300 days", []any{statement}, want{false, true, new(false)}, []string{"MedicationStatement/s"}},
		{"NSAID by ATC", []any{order("n", concept(sysATC, "M01AE01", "ibuprofen"))}, want{false, true, new(false)}, nil},
		{"NSAID product", []any{order("n", rx("310965", "ibuprofen 200 MG Oral Tablet"))}, want{false, true, new(false)}, nil},
		{"v3 route PO", []any{order("n", rx("5640", "ibuprofen"), route("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "PO", ""))}, want{false, true, new(false)}, nil},
		{"aspirin is never an NSAID", []any{order("asa", rx("1191", "aspirin"))}, want{false, false, new(false)}, nil},
		{"aspirin by ATC is never an NSAID", []any{order("asa", concept(sysATC, "N02BA01", "aspirin"))}, want{false, false, new(false)}, nil},
		{"aspirin plus clopidogrel: DAPT", []any{order("asa", rx("1191", "aspirin")), order("clo", rx("309362", "clopidogrel 75 MG Oral Tablet"))}, want{false, false, new(true)}, nil},
		{"DAPT by ATC and ingredient", []any{order("asa", concept(sysATC, "B01AC06", "")), order("tic", rx("1116632", "ticagrelor"))}, want{false, false, new(true)}, nil},
		{"prasugrel alone is no DAPT", []any{order("pra", rx("613391", "prasugrel"))}, want{false, false, new(false)}, nil},
		{"oral prednisone, 90-day supply, new", []any{order("p", rx("8640", "prednisone"), today, supply90)}, want{false, true, new(false)}, nil},
		{"prednisone with refills, new", []any{order("p", rx("8640", "prednisone"), today, refills)}, want{false, true, new(false)}, nil},
		{"prednisone twice a day by timing code", []any{order("p", rx("8640", "prednisone"), bid)}, want{false, true, new(false)}, nil},
		{"intravenous steroid is systemic", []any{order("p", rx("6902", "methylprednisolone"), route(sysSNOMED, "47625008", "Intravenous route"))}, want{false, true, new(false)}, nil},
		{"intravenous ketorolac is not oral", []any{order("k", rx("35827", "ketorolac"), route(sysSNOMED, "47625008", "Intravenous route"))}, want{false, false, new(false)}, nil},
		{"ophthalmic prednisolone", []any{order("p", rx("8638", "prednisolone"), route(sysSNOMED, "54485002", "Ophthalmic route"))}, want{false, false, new(false)}, nil},
		{"inhaled steroid", []any{order("p", rx("10759", "triamcinolone"), route(sysSNOMED, "447694001", "Respiratory tract route"))}, want{false, false, new(false)}, nil},
		{"topical steroid", []any{order("p", rx("5492", "hydrocortisone"), route(sysSNOMED, "6064005", "Topical route"))}, want{false, false, new(false)}, nil},
		{"topical steroid, route only in the product name", []any{order("p", rx("5492", "hydrocortisone 10 MG/ML Topical Cream"), noRoute)}, want{false, false, new(false)}, nil},
		{"topical NSAID gel", []any{order("d", rx("3355", "diclofenac sodium 10 MG/ML Topical Gel"), noRoute)}, want{false, false, new(false)}, nil},
		{"route only in the product name: oral tablet", []any{order("p", rx("8640", "prednisone 5 MG Oral Tablet"), noRoute)}, want{false, true, new(false)}, nil},
		{"route unknown: ask", []any{order("n", rx("5640", "ibuprofen"), noRoute)}, want{false, GapConfirm, new(false)}, []string{"MedicationRequest/n"}},
		{"as needed: ask", []any{order("n", rx("5640", "ibuprofen"), prn)}, want{false, GapConfirm, new(false)}, nil},
		{"no schedule: ask", []any{order("n", rx("5640", "ibuprofen"), noSchedule)}, want{false, GapConfirm, new(false)}, nil},
		{"new order, duration unknown: ask", []any{order("n", rx("5640", "ibuprofen"), today)}, want{false, GapConfirm, new(false)}, nil},
		{"a 5-day course", []any{order("n", rx("5640", "ibuprofen"), today, fiveDays)}, want{false, false, new(false)}, nil},
		{"a 7-day supply", []any{order("n", rx("5640", "ibuprofen"), today, supply7)}, want{false, false, new(false)}, nil},
		{"once a week", []any{order("n", rx("5640", "ibuprofen"), weekly)}, want{false, false, new(false)}, nil},
		{"one counting drug is enough", []any{order("n", rx("5640", "ibuprofen"), noRoute), order("p", rx("8640", "prednisone"))}, want{false, true, new(false)}, []string{"MedicationRequest/p"}},
		{"uncoded drug: warned, and the clinician is asked", []any{order("x", fhir.CodeableConcept{Text: "Eliquis 5mg"})}, want{GapConfirm, GapConfirm, new(false)}, []string{"MedicationRequest/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := mapIt(t, newRecord(append([]any{patient("male", "1950-01-01")}, tt.parts...)...))
			var oacRefs, nsaidRefs []string
			if tt.want.oac == true {
				oacRefs = tt.refs
			}
			if tt.want.nsaid == true || tt.want.nsaid == GapConfirm {
				nsaidRefs = tt.refs
			}
			expectInput(t, mp, "oral_anticoagulation", tt.want.oac, oacRefs...)
			expectInput(t, mp, "nsaid_or_steroid", tt.want.nsaid, nsaidRefs...)
			if got := mp.DAPT.Present; (got == nil) != (tt.want.dapt == nil) || (got != nil && *got != *tt.want.dapt) {
				t.Errorf("DAPT %+v, want %v", mp.DAPT, *tt.want.dapt)
			}
			switch p := mp.OralAnticoagulant.Present; {
			case tt.want.oac == GapConfirm:
				if p != nil {
					t.Errorf("OAC finding %+v, want unknown", mp.OralAnticoagulant)
				}
			case p == nil || *p != (tt.want.oac == true):
				t.Errorf("OAC finding %+v", mp.OralAnticoagulant)
			}
		})
	}
}

func TestMapMedicationDetails(t *testing.T) {
	// DAPT names the drugs and the records.
	mp := mapIt(t, newRecord(patient("male", "1950-01-01"), order("asa", rx("1191", "aspirin")), order("clo", rx("32968", "clopidogrel"))))
	if len(mp.DAPT.Aspirin) != 1 || mp.DAPT.Aspirin[0].Reference != "MedicationRequest/asa" || len(mp.DAPT.P2Y12) != 1 || mp.DAPT.P2Y12[0].Reference != "MedicationRequest/clo" || mp.DAPT.P2Y12[0].Code != sysRxNorm+"|32968" {
		t.Errorf("DAPT %+v", mp.DAPT)
	}
	// The vascular dose is reported as excluded, with a warning.
	mp = mapIt(t, newRecord(patient("male", "1950-01-01"), order("r", rx("1114195", "rivaroxaban"), doseMg(2.5, 2))))
	if len(mp.OralAnticoagulant.Excluded) != 1 || mp.OralAnticoagulant.Excluded[0].Reference != "MedicationRequest/r" || !warningHas(mp, "vascular-protection") {
		t.Errorf("OAC %+v warnings %q", mp.OralAnticoagulant, mp.Warnings)
	}
	// An uncoded drug is named.
	mp = mapIt(t, newRecord(patient("male", "1950-01-01"), order("x", fhir.CodeableConcept{Text: "Eliquis 5mg"})))
	if !warningHas(mp, "Eliquis 5mg") || warningHas(mp, "MedicationRequest/") {
		t.Errorf("warnings %q", mp.Warnings)
	}
	// A failed medication search leaves DAPT unknown, unless found.
	rec := newRecord(patient("male", "1950-01-01"), order("asa", rx("1191", "aspirin")))
	rec.Errors["MedicationRequest"] = fhirErr("MedicationRequest", 503, fhir.ErrUnavailable, nil)
	if mp = mapIt(t, rec); mp.DAPT.Present != nil || mp.OralAnticoagulant.Present != nil {
		t.Errorf("DAPT %+v OAC %+v", mp.DAPT, mp.OralAnticoagulant)
	}
	rec = newRecord(patient("male", "1950-01-01"), order("asa", rx("1191", "aspirin")), order("tic", rx("1116632", "ticagrelor")), order("w", rx("11289", "warfarin")))
	rec.Errors["MedicationStatement"] = fhirErr("MedicationStatement", 403, fhir.ErrForbidden, nil)
	if mp = mapIt(t, rec); mp.DAPT.Present == nil || !*mp.DAPT.Present || mp.OralAnticoagulant.Present == nil || !*mp.OralAnticoagulant.Present {
		t.Errorf("found drugs count despite a failed search: DAPT %+v OAC %+v", mp.DAPT, mp.OralAnticoagulant)
	}
}

func TestDrugClasses(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		cc   fhir.CodeableConcept
		want []string
	}{
		{rx("1191", "aspirin"), []string{"aspirin"}},
		{rx("309362", "clopidogrel 75 MG Oral Tablet"), []string{"p2y12-inhibitor"}},
		{rx("1114195", "rivaroxaban"), []string{"oral-anticoagulant", "rivaroxaban"}},
		{rx("2059015", "rivaroxaban 2.5 MG Oral Tablet"), []string{"oral-anticoagulant", "rivaroxaban", "rivaroxaban-vascular-dose"}},
		{concept(sysATC, "M01AE01", "ibuprofen"), []string{"nsaid"}},
		{rx("8640", "prednisone"), []string{"systemic-corticosteroid"}},
		{rx("83367", "atorvastatin"), nil},
	}
	for _, tt := range tests {
		if got := DrugClasses(cfg, []fhir.CodeableConcept{tt.cc}); !sameStrings(got, tt.want) {
			t.Errorf("%v: %v, want %v", tt.cc.Coding[0], got, tt.want)
		}
	}
}
