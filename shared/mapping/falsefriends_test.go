package mapping

import (
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// falseFriend is a code that means something other than a code set's
// concept: it must never match the sets named, and the record holding it
// must map to want (a value, or a gap reason).
type falseFriend struct {
	system, code string
	what         string   // what the code really is
	never        []string // condition set, procedure set or observation keys it must not match
	parts        func(cond fhir.Condition) []any
	input        string
	want         any
}

// inStay puts a condition 3 months ago inside an inpatient stay, the support
// that would make a bleed major.
func inStay(c fhir.Condition) []any {
	c.OnsetDateTime = monthsAgo(3, 0)
	c = inEncounter(c, "stay")
	return []any{c, inpatient("stay", monthsAgo(3, 1), monthsAgo(3, -4))}
}

func alone(c fhir.Condition) []any { return []any{c} }

func withCirrhosis(c fhir.Condition) []any {
	return []any{c, condition("ci", sysICD, "K74.60", monthsAgo(20, 0))}
}

func smokingAnswer(system, code string) func(fhir.Condition) []any {
	return func(fhir.Condition) []any {
		v := concept(system, code, code)
		return []any{fhir.Observation{ResourceType: "Observation", ID: "smk", Status: "final", Code: concept(sysLOINC, "72166-2", ""),
			EffectiveDateTime: daysAgo(3), ValueCodeableConcept: &v}}
	}
}

// asProcedure records the code as a Procedure 3 days ago instead of a
// Condition.
func asProcedure(system string) func(fhir.Condition) []any {
	return func(c fhir.Condition) []any {
		return []any{procedure("ff", system, c.Code.Coding[0].Code, daysAgo(3))}
	}
}

// bleedWithProcedure is a GI bleed 3 months ago with the code as a
// Procedure the same day: only a real transfusion would make it major.
func bleedWithProcedure(c fhir.Condition) []any {
	return []any{condition("gib", sysICD, "K92.2", monthsAgo(3, 0)), procedure("ff", sysSNOMED, c.Code.Coding[0].Code, monthsAgo(3, 0))}
}

func strokeWith(loinc string) func(fhir.Condition) []any {
	return func(fhir.Condition) []any {
		return []any{condition("s", sysICD, "I63.9", monthsAgo(3, 0)), lab("n", loinc, 8, "{score}", monthsAgo(3, -1))}
	}
}

var priorBleeding = []string{"prior-bleeding-gi", "prior-bleeding-other", "intracranial-hemorrhage-spontaneous", "intracranial-hemorrhage-traumatic", "intracranial-hemorrhage-unspecified"}

// threeYearsAgo records the condition 3 years ago, resolved.
func threeYearsAgo(c fhir.Condition) []any {
	c.OnsetDateTime = monthsAgo(36, 0)
	return []any{clinical(c, "resolved")}
}

var diathesis = []string{"bleeding-diathesis", "bleeding-diathesis-ask"}

// The false friends of issue 11, each checked against the configuration and
// end to end through the mapping.
var falseFriends = []falseFriend{
	{"snomed", "59282003", "Pulmonary embolism", priorBleeding, inStay, "bleeding_history", "none"},
	{"snomed", "59282003", "Pulmonary embolism", priorBleeding, inStay, "prior_bleeding", false},
	{"snomed", "233703007", "Interstitial lung disease", priorBleeding, inStay, "bleeding_history", "none"},
	{"snomed", "17338001", "Ventricular premature beats", priorBleeding, inStay, "bleeding_history", "none"},
	{"snomed", "50960005", "Hemorrhage (morphologic abnormality)", priorBleeding, inStay, "bleeding_history", "none"},
	{"snomed", "95545007", "Bloody diarrhoea", priorBleeding, inStay, "bleeding_history", "none"},
	{"icd10cm", "D68.51", "Activated protein C resistance (factor V Leiden)", diathesis, alone, "bleeding_diathesis", false},
	{"icd10cm", "D68.52", "Prothrombin gene mutation", diathesis, alone, "bleeding_diathesis", false},
	{"icd10cm", "D68.59", "Other primary thrombophilia", diathesis, alone, "bleeding_diathesis", false},
	{"icd10cm", "D68.61", "Antiphospholipid syndrome", diathesis, alone, "bleeding_diathesis", false},
	{"icd10cm", "D68.62", "Lupus anticoagulant syndrome", diathesis, alone, "bleeding_diathesis", false},
	{"icd10cm", "D68.69", "Other thrombophilia", diathesis, alone, "bleeding_diathesis", false},
	{"icd10cm", "D6851", "Factor V Leiden without the dot", diathesis, alone, "bleeding_diathesis", false},
	{"snomed", "64779008", "Blood coagulation disorder (broader than a bleeding diathesis)", diathesis, alone, "bleeding_diathesis", false},
	{"icd10cm", "K76.82", "Hepatic encephalopathy", []string{"portal-hypertension"}, withCirrhosis, "cirrhosis_portal_hypertension", false},
	{"icd10cm", "R18.0", "Malignant ascites", []string{"portal-hypertension"}, withCirrhosis, "cirrhosis_portal_hypertension", false},
	{"loinc", "LA18978-9", "Never smoker", []string{"smoking-status"}, smokingAnswer(sysLOINC, "LA18978-9"), "current_smoker", false},
	{"loinc", "70182-1", "NIH Stroke Scale panel (not the total)", []string{"nihss"}, strokeWith("70182-1"), "ischemic_stroke", GapConfirm},
	// The IPS map makes 77176002 the equivalent of LA18979-7 "Smoker, current
	// status unknown": it asks, it never means a current smoker.
	{"snomed", "77176002", "Smoker (current status unknown)", []string{"smoking-status"}, smokingAnswer(sysSNOMED, "77176002"), "current_smoker", GapConfirm},
	{"loinc", "LA18979-7", "Smoker, current status unknown", []string{"smoking-status"}, smokingAnswer(sysLOINC, "LA18979-7"), "current_smoker", GapConfirm},
	// Codes copied from the repositories that no terminology source knows
	// as the concept of the set.
	{"snomed", "397682003", "Not complex PCI (no terminology code means complex PCI)", []string{"complex-pci"}, asProcedure(sysSNOMED), "complex_pci", GapAsk},
	{"snomed", "427183000", "Not a bare-metal stent in any source read", []string{"bare-metal-stent"}, asProcedure(sysSNOMED), "bare_metal_stent", GapAsk},
	// An intracranial haemorrhage whose code does not say the cause is not
	// a spontaneous one: 3 years ago it is asked, never concluded.
	{"snomed", "1386000", "Intracranial hemorrhage of any cause (traumatic among its descendants)", []string{"intracranial-hemorrhage-spontaneous"}, threeYearsAgo, "intracranial_hemorrhage", GapConfirm},
	{"snomed", "274100004", "Cerebral hemorrhage of unstated cause", []string{"intracranial-hemorrhage-spontaneous"}, threeYearsAgo, "intracranial_hemorrhage", GapConfirm},
	{"snomed", "180208006", "In no terminology source read (180208003 is the platelet transfusion)", []string{"transfusion"}, bleedWithProcedure, "bleeding_history", GapConfirm},
}

// inSet reports whether the configuration's set or observation key holds
// the code.
func inSet(t *testing.T, cfg *calc.Config, key, system, code string) bool {
	t.Helper()
	if s, ok := cfg.Codes.Conditions[key]; ok {
		return s.Match(system, normCode(system, code))
	}
	if s, ok := cfg.Codes.Procedures[key]; ok {
		return s.Match(system, code)
	}
	if key == "complex-pci" {
		return false // no code set: no code can match
	}
	o, ok := cfg.Codes.Observations[key]
	if !ok {
		t.Fatalf("no condition set, procedure set or observation %q", key)
	}
	for _, cd := range append(append([]calc.Coding(nil), o.Codes...), o.CurrentValues...) {
		if cd.System == system && cd.Code == code {
			return true
		}
	}
	return false
}

func TestFalseFriends(t *testing.T) {
	cfg := testConfig(t)
	uri := map[string]string{"snomed": sysSNOMED, "icd10cm": sysICD, "loinc": sysLOINC}
	for _, ff := range falseFriends {
		t.Run(ff.code+" "+ff.input, func(t *testing.T) {
			for _, key := range ff.never {
				if inSet(t, cfg, key, ff.system, ff.code) {
					t.Errorf("%s %s (%s) is in %s", ff.system, ff.code, ff.what, key)
				}
			}
			c := condition("ff", uri[ff.system], ff.code, monthsAgo(3, 0))
			mp := mapIt(t, newRecord(append([]any{patient("male", "1966-01-01")}, ff.parts(c)...)...))
			if _, gap := ff.want.(GapReason); !gap && ff.input == "current_smoker" {
				// Decided from the answer itself, which the evidence cites.
				in, ok := mp.Inputs[ff.input]
				if !ok || in.Value != ff.want || in.Origin != calc.OriginRecord || !hasRef(in.Evidence, "Observation/smk") {
					t.Fatalf("%s = %+v, want %v from Observation/smk", ff.input, in, ff.want)
				}
				return
			}
			expectInput(t, mp, ff.input, ff.want)
		})
	}
}

// TestCorrectedCodes checks the codes issue 11 adds or keeps: each decides
// its input through the mapping as the criterion says.
func TestCorrectedCodes(t *testing.T) {
	tests := []struct {
		system, code string
		what         string
		parts        func(fhir.Condition) []any
		input        string
		want         any
	}{
		{sysICD, "D68.0", "Von Willebrand disease", alone, "bleeding_diathesis", true},
		{sysICD, "D68.01", "Von Willebrand disease, type 1 (a subcode of D68.0)", alone, "bleeding_diathesis", true},
		{sysICD, "D68.1", "Hereditary factor XI deficiency", alone, "bleeding_diathesis", true},
		{sysICD, "D68.2", "Hereditary deficiency of other clotting factors", alone, "bleeding_diathesis", true},
		{sysICD, "D68.311", "Acquired hemophilia", alone, "bleeding_diathesis", true},
		{sysICD, "D68.312", "Antiphospholipid antibody with hemorrhagic disorder", alone, "bleeding_diathesis", true},
		{sysICD, "D68.318", "Other hemorrhagic disorder due to intrinsic circulating anticoagulants", alone, "bleeding_diathesis", true},
		{sysICD, "D68.4", "Acquired coagulation factor deficiency", alone, "bleeding_diathesis", true},
		{sysICD, "D68.8", "Other specified coagulation defects", alone, "bleeding_diathesis", true},
		{sysICD, "D66", "Hereditary factor VIII deficiency", alone, "bleeding_diathesis", true},
		{sysICD, "D67", "Hereditary factor IX deficiency", alone, "bleeding_diathesis", true},
		{sysSNOMED, "28293008", "Hereditary factor VIII deficiency disease (haemophilia A)", alone, "bleeding_diathesis", true},
		{sysSNOMED, "41788008", "Hereditary factor IX deficiency disease (haemophilia B)", alone, "bleeding_diathesis", true},
		{sysICD, "D68.9", "Coagulation defect, unspecified: ask", alone, "bleeding_diathesis", GapConfirm},
		{sysICD, "D68.32", "Hemorrhagic disorder due to extrinsic circulating anticoagulants: ask", alone, "bleeding_diathesis", GapConfirm},
		{sysICD, "D65", "Disseminated intravascular coagulation: ask", alone, "bleeding_diathesis", GapConfirm},
		{sysICD, "S06.370A", "Traumatic haemorrhage of cerebellum", alone, "intracranial_hemorrhage", true},
		{sysICD, "S06.380A", "Traumatic haemorrhage of brainstem", alone, "intracranial_hemorrhage", true},
		{sysICD, "R18.8", "Other ascites", withCirrhosis, "cirrhosis_portal_hypertension", true},
		{sysICD, "K76.6", "Portal hypertension", withCirrhosis, "cirrhosis_portal_hypertension", true},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			c := condition("c", tt.system, tt.code, monthsAgo(3, 0))
			mp := mapIt(t, newRecord(append([]any{patient("male", "1966-01-01")}, tt.parts(c)...)...))
			if tt.want == true {
				expectInput(t, mp, tt.input, true, "Condition/c")
				return
			}
			expectInput(t, mp, tt.input, tt.want, "Condition/c")
		})
	}
}

// A coded thrombophilia next to a real bleeding diathesis does not hide it,
// and an "ask" code does not override a definite one.
func TestDiathesisMixed(t *testing.T) {
	mp := mapIt(t, newRecord(patient("male", "1966-01-01"), condition("fvl", sysICD, "D68.51", monthsAgo(30, 0)), condition("vwd", sysICD, "D68.0", monthsAgo(30, 0))))
	expectInput(t, mp, "bleeding_diathesis", true, "Condition/vwd")
	mp = mapIt(t, newRecord(patient("male", "1966-01-01"), condition("u", sysICD, "D68.9", monthsAgo(30, 0)), condition("h", sysICD, "D66", monthsAgo(30, 0))))
	expectInput(t, mp, "bleeding_diathesis", true, "Condition/h")
}

// Every transfusion code of the configuration supports a bleed: a GI bleed
// 3 months ago with the transfusion the same day is a major prior bleed.
func TestTransfusionCodesSupportABleed(t *testing.T) {
	for _, tt := range []struct{ system, code string }{
		{sysSNOMED, "116859006"}, {sysSNOMED, "71493000"}, {sysSNOMED, "12719002"}, {sysSNOMED, "13569004"},
		{sysSNOMED, "33389009"}, {sysSNOMED, "180208003"}, {sysPCS, "30233N1"}, {sysPCS, "30243N1"}, {sysCPT, "36430"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			mp := mapIt(t, newRecord(patient("male", "1966-01-01"), condition("gib", sysICD, "K92.2", monthsAgo(3, 0)),
				procedure("tx", tt.system, tt.code, monthsAgo(3, 0))))
			expectInput(t, mp, "bleeding_history", "major", "Condition/gib", "Procedure/tx")
		})
	}
}
