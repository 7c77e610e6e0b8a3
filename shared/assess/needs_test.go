package assess

import (
	"slices"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/calc"
)

// TestNeeds holds Needs to the code it reads from: every type the
// assessment reads, the search parameters the record fetch sends, and the
// calculators that lose inputs without a type.
func TestNeeds(t *testing.T) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	needs := Needs(cfg)
	var types []string
	byType := map[string]Need{}
	for _, n := range needs {
		types = append(types, n.Resource)
		byType[n.Resource] = n
		if len(n.Calculators) == 0 || len(n.Inputs) == 0 || n.Without == "" {
			t.Errorf("%s: no inputs, calculators or explanation: %+v", n.Resource, n)
		}
	}
	if !slices.Equal(types, ReadResources) {
		t.Errorf("types %v, want ReadResources %v", types, ReadResources)
	}
	for typ, want := range map[string][]string{
		"Observation":         {"code", "date", "patient"},
		"Condition":           {"patient"},
		"MedicationRequest":   {"patient", "status"},
		"MedicationStatement": {"patient", "status"},
		"Procedure":           {"patient"},
		"Encounter":           {"class", "patient"},
	} {
		if got := byType[typ].SearchParams; !slices.Equal(got, want) {
			t.Errorf("%s search params %v, want %v", typ, got, want)
		}
	}
	if byType["Patient"].Interaction != "read" || len(byType["Patient"].SearchParams) != 0 {
		t.Errorf("Patient: %+v", byType["Patient"])
	}
	// Labs feed every score; medications feed the bleeding scores but not
	// the renal equations.
	for _, c := range []string{"precise-hbr", "arc-hbr", "precise-dapt", "egfr-ckd-epi-2021", "crcl-cockcroft-gault"} {
		if !slices.Contains(byType["Observation"].Calculators, c) {
			t.Errorf("Observation does not list %s: %v", c, byType["Observation"].Calculators)
		}
	}
	med := byType["MedicationRequest"].Calculators
	if !slices.Contains(med, "precise-hbr") || !slices.Contains(med, "arc-hbr") || slices.Contains(med, "egfr-ckd-epi-2021") {
		t.Errorf("MedicationRequest calculators %v", med)
	}
	if !slices.Contains(byType["Condition"].Inputs, "prior_bleeding") {
		t.Errorf("Condition inputs %v", byType["Condition"].Inputs)
	}
}
