package assess

import (
	"slices"
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

func TestScopeSyntax(t *testing.T) {
	v1, v2, bad := ScopeSyntax("launch openid fhirUser launch/patient patient/Patient.read user/*.read patient/Observation.rs patient/Condition.rs?category=x|y system/*.cruds patient/Observation.sr patient/Observation.rs.read patient/observation.rs online_access __custom https://x.example/scope")
	if !slices.Equal(v1, []string{"patient/Patient.read", "user/*.read"}) ||
		!slices.Equal(v2, []string{"patient/Observation.rs", "patient/Condition.rs?category=x|y", "system/*.cruds"}) ||
		!slices.Equal(bad, []string{"patient/Observation.sr", "patient/Observation.rs.read", "patient/observation.rs"}) {
		t.Errorf("v1 %v, v2 %v, malformed %v", v1, v2, bad)
	}
	if got := ConvertScope("launch openid patient/Patient.rs patient/Observation.r online_access", true); got != "launch openid patient/Patient.read patient/Observation.read online_access" {
		t.Errorf("to v1: %q", got)
	}
	if got := ConvertScope("launch/patient patient/Patient.read user/Observation.read", false); got != "launch/patient patient/Patient.rs user/Observation.rs" {
		t.Errorf("to v2: %q", got)
	}
}
