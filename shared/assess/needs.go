package assess

import (
	"slices"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
)

// Need is what an assessment needs of one FHIR resource type, and what is
// lost without it. The readiness check compares it with an EHR's
// CapabilityStatement.
type Need struct {
	Resource string `json:"resource"`
	// Interaction is read (Patient, by id) or search.
	Interaction fhir.Interaction `json:"interaction"`
	// SearchParams are the search parameters the assessment sends.
	SearchParams []string `json:"search_params,omitempty"`
	// Inputs are the calculator inputs read from this type, and
	// Calculators the calculators that take them.
	Inputs      []string `json:"inputs"`
	Calculators []string `json:"calculators"`
	// Without says, for a person, what is lost without it.
	Without string `json:"without"`
}

// Needs lists the assessment's needs, one per ReadResources type, from the
// code itself: the search parameters of fhir.Query.Plan, the inputs that
// mapping.MapRecord leaves unset when only that type cannot be read, and
// the calculators of cfg that take them. Three types lose nothing
// MapRecord attributes to them, so their inputs are stated here: Patient
// (age and sex, and the patient's identity: no assessment at all),
// Medication (drugs named through medicationReference cannot be
// identified) and Encounter (whether a bleed needed a hospital stay).
func Needs(cfg *calc.Config) []Need {
	plan := fhir.Query{Patient: "p", ObservationCodes: []fhir.Coding{{System: "http://loinc.org", Code: "718-7"}},
		Since: time.Unix(0, 0), MedicationStatements: true, Encounters: true}.Plan()
	params := map[string][]string{}
	for _, r := range plan {
		for k := range r.Params {
			if !strings.HasPrefix(k, "_") {
				params[r.Type] = append(params[r.Type], k)
			}
		}
		slices.Sort(params[r.Type])
	}
	var out []Need
	for _, typ := range ReadResources {
		n := Need{Resource: typ, Interaction: fhir.InteractionSearch, SearchParams: params[typ]}
		switch typ {
		case "Patient":
			n.Interaction = fhir.InteractionRead
			n.Inputs = []string{"age", "sex"}
			n.Without = "the patient's identity, age and sex: no assessment at all"
		case "Medication":
			n.Interaction = fhir.InteractionRead
			n.Inputs = []string{"oral_anticoagulation", "nsaid_or_steroid"}
			n.Without = "drugs named through medicationReference (read with _include) cannot be identified, so the clinician is asked"
		case "Encounter":
			n.Inputs = []string{"prior_bleeding", "bleeding_history"}
			n.Without = "whether a bleed needed a hospital stay is left to transfusion records and the clinician"
		default:
			rec := &fhir.Record{Patient: &fhir.Patient{}, Errors: map[string]error{typ: fhir.ErrScope}}
			for _, d := range mapping.MapRecord(cfg, rec, time.Now(), mapping.MapOptions{}).DataErrors {
				if d.ResourceType == typ {
					n.Inputs = append(n.Inputs, d.Inputs...)
				}
			}
			n.Without = "these inputs are asked instead of read: " + strings.Join(n.Inputs, ", ")
		}
		for _, c := range cfg.Calculators {
			for _, in := range c.Inputs {
				if slices.Contains(n.Inputs, in.Name) {
					n.Calculators = append(n.Calculators, c.ID)
					break
				}
			}
		}
		out = append(out, n)
	}
	return out
}
