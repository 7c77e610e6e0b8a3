package assess

import (
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// Allows reports whether a granted SMART scope string permits interaction i
// on resourceType for a patient-context app. It understands v2 scopes
// (patient/Observation.rs, patient/*.rs, with or without a ?query
// restriction, which the server enforces), v1 scopes (patient/Observation.read,
// patient/*.read, patient/*.*), and their user/ forms.
func Allows(scope, resourceType string, i fhir.Interaction) bool {
	for _, s := range strings.Fields(scope) {
		ctx, rest, ok := strings.Cut(s, "/")
		if !ok || (ctx != "patient" && ctx != "user") {
			continue
		}
		typ, perm, ok := strings.Cut(rest, ".")
		if !ok || (typ != "*" && typ != resourceType) {
			continue
		}
		perm, _, _ = strings.Cut(perm, "?")
		switch perm {
		case "read", "*":
			return true
		}
		want := "r"
		if i == fhir.InteractionSearch {
			want = "s"
		}
		if isV2(perm) && strings.Contains(perm, want) {
			return true
		}
	}
	return false
}

// isV2 reports whether perm is a v2 permission string: letters of cruds in
// that order.
func isV2(perm string) bool {
	if perm == "" {
		return false
	}
	last := -1
	for _, c := range perm {
		i := strings.IndexRune("cruds", c)
		if i <= last {
			return false
		}
		last = i
	}
	return true
}

// ScopeSyntax sorts the resource scopes of a scope string by SMART
// version: v1 (patient/Observation.read, .write, .*), v2
// (patient/Observation.rs, letters of cruds in that order, with an
// optional ?query), and malformed (a context/Type.permission shape that is
// neither, such as .sr or .rs.read). Other scopes (launch, openid …) are
// in none of the three.
func ScopeSyntax(scope string) (v1, v2, malformed []string) {
	for _, s := range strings.Fields(scope) {
		ctx, rest, ok := strings.Cut(s, "/")
		if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
			continue
		}
		typ, perm, ok := strings.Cut(rest, ".")
		if !ok || typ == "" || !(typ == "*" || isResourceTypeName(typ)) {
			malformed = append(malformed, s)
			continue
		}
		switch perm {
		case "read", "write", "*":
			v1 = append(v1, s)
			continue
		}
		letters, _, _ := strings.Cut(perm, "?")
		if isV2(letters) {
			v2 = append(v2, s)
		} else {
			malformed = append(malformed, s)
		}
	}
	return v1, v2, malformed
}

// ConvertScope rewrites scope's resource scopes into the other SMART
// version: .rs (and any v2 letters with r or s) to .read for v1, .read to
// .rs for v2. Other scopes are kept.
func ConvertScope(scope string, toV1 bool) string {
	var out []string
	for _, s := range strings.Fields(scope) {
		head, perm, ok := strings.Cut(s, ".")
		if !ok || !strings.Contains(head, "/") || strings.HasPrefix(s, "launch/") {
			out = append(out, s)
			continue
		}
		switch {
		case toV1 && perm != "read" && perm != "write" && perm != "*":
			out = append(out, head+".read")
		case !toV1 && perm == "read":
			out = append(out, head+".rs")
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// isResourceTypeName reports whether s has the shape of a FHIR resource
// type name: an upper-case letter, then letters.
func isResourceTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// ScopeFor names the v2 scope that would grant interaction i on
// resourceType: what a calculator reports as missing.
func ScopeFor(resourceType string, i fhir.Interaction) string {
	if i == fhir.InteractionRead {
		return "patient/" + resourceType + ".r"
	}
	return "patient/" + resourceType + ".rs"
}

// ReadResources are the FHIR resource types an assessment reads, in the
// order a registration lists them. MedicationStatement feeds the NSAID and
// steroid rule (patient-reported drugs); Medication resolves drugs named
// through medicationReference.
var ReadResources = []string{
	"Patient", "Observation", "Condition", "MedicationRequest",
	"MedicationStatement", "Medication", "Procedure", "Encounter",
}

// RecommendedScope is the one scope list to register with an EHR and to
// request at an EHR launch: launch context, OpenID Connect with fhirUser,
// read and search on every resource in ReadResources, and online_access for
// a refresh token while the user is online. v1 gives the SMART v1 form
// (.read) for tenants that support only v1; otherwise v2 (.rs).
func RecommendedScope(v1 bool) string {
	perm := ".rs"
	if v1 {
		perm = ".read"
	}
	parts := []string{"launch", "openid", "fhirUser"}
	for _, r := range ReadResources {
		parts = append(parts, "patient/"+r+perm)
	}
	return strings.Join(append(parts, "online_access"), " ")
}
