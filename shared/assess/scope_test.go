package assess

import (
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

func TestAllows(t *testing.T) {
	tests := []struct {
		scope, typ string
		i          fhir.Interaction
		want       bool
	}{
		{"patient/Observation.rs", "Observation", fhir.InteractionSearch, true},
		{"patient/Observation.rs", "Observation", fhir.InteractionRead, true},
		{"patient/Observation.r", "Observation", fhir.InteractionSearch, false},
		{"patient/Observation.s", "Observation", fhir.InteractionRead, false},
		{"patient/Observation.rs?category=laboratory", "Observation", fhir.InteractionSearch, true},
		{"patient/*.rs", "Condition", fhir.InteractionSearch, true},
		{"patient/Observation.read", "Observation", fhir.InteractionSearch, true},
		{"patient/*.read", "Procedure", fhir.InteractionSearch, true},
		{"patient/*.*", "Procedure", fhir.InteractionSearch, true},
		{"user/Condition.rs", "Condition", fhir.InteractionSearch, true},
		{"system/Condition.rs", "Condition", fhir.InteractionSearch, false},
		{"patient/Observation.rs", "Condition", fhir.InteractionSearch, false},
		{"openid fhirUser launch online_access", "Patient", fhir.InteractionRead, false},
		{"patient/Observation.sr", "Observation", fhir.InteractionSearch, false}, // out of cruds order
		{"patient/Observation.cruds", "Observation", fhir.InteractionSearch, true},
		{"launch/patient patient/Patient.rs", "Patient", fhir.InteractionRead, true},
		{"", "Patient", fhir.InteractionRead, false},
	}
	for _, tt := range tests {
		if got := Allows(tt.scope, tt.typ, tt.i); got != tt.want {
			t.Errorf("Allows(%q, %s, %s) = %v, want %v", tt.scope, tt.typ, tt.i, got, tt.want)
		}
	}
}
