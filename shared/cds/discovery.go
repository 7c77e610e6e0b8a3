package cds

import (
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
)

// The hooks SMART Calc answers.
const (
	HookPatientView = "patient-view"
	HookOrderSelect = "order-select"
	HookOrderSign   = "order-sign"
)

// The service ids: the {id} of /cds-services/{id}.
const (
	ServicePatientView = "bleeding-risk"
	ServiceOrderSelect = "bleeding-risk-order-select"
	ServiceOrderSign   = "bleeding-risk-order-sign"
)

// Discovery is the discovery response (CDS Hooks 2.0 §Discovery).
type Discovery struct {
	Services []ServiceInfo `json:"services"`
}

// ServiceInfo describes one service.
type ServiceInfo struct {
	Hook              string            `json:"hook"`
	Title             string            `json:"title,omitempty"`
	Description       string            `json:"description"`
	ID                string            `json:"id"`
	Prefetch          map[string]string `json:"prefetch,omitempty"`
	UsageRequirements string            `json:"usageRequirements,omitempty"`
}

// PatientToken is the prefetch token for the context's patient.
const PatientToken = "{{context.patientId}}"

// Prefetch keys, one per request of the record's fetch plan.
var prefetchKeys = map[string]string{
	"Patient":             "patient",
	"Observation":         "observations",
	"Condition":           "conditions",
	"MedicationRequest":   "medicationRequests",
	"MedicationStatement": "medicationStatements",
	"Procedure":           "procedures",
	"Encounter":           "encounters",
}

const usage = "Needs the prefetch, or fhirServer with a fhirAuthorization token scoped to the patient " +
	"(patient/Patient.rs Observation.rs Condition.rs MedicationRequest.rs Medication.rs MedicationStatement.rs Procedure.rs Encounter.rs). " +
	"Calls must carry the CDS client's signed JWT (ES384 or RS384) from a registered issuer."

// Discovery returns the discovery document.
func (s *Service) Discovery() Discovery {
	pf := s.PrefetchTemplates()
	return Discovery{Services: []ServiceInfo{
		{
			Hook:  HookPatientView,
			Title: "SMART Calc bleeding risk (PRECISE-HBR, ARC-HBR)",
			Description: "When a patient's chart opens: the PRECISE-HBR category and score, the ARC-HBR criteria met, " +
				"and what could not be assessed, with a link that opens the full assessment in SMART Calc.",
			ID: ServicePatientView, Prefetch: pf, UsageRequirements: usage,
		},
		{
			Hook:  HookOrderSelect,
			Title: "SMART Calc: DAPT or oral anticoagulant for a high-bleeding-risk patient",
			Description: "When the selected draft orders start or continue DAPT (aspirin plus a P2Y12 inhibitor) or an oral " +
				"anticoagulant for a patient at high bleeding risk (PRECISE-HBR ≥23 or ARC-HBR), a card says why, with the inputs and their dates. Otherwise no card.",
			ID: ServiceOrderSelect, Prefetch: pf, UsageRequirements: usage,
		},
		{
			Hook:  HookOrderSign,
			Title: "SMART Calc: DAPT or oral anticoagulant for a high-bleeding-risk patient",
			Description: "Before the draft orders are signed: a card when they start or continue DAPT (aspirin plus a P2Y12 " +
				"inhibitor) or an oral anticoagulant for a patient at high bleeding risk (PRECISE-HBR ≥23 or ARC-HBR), with the inputs and their dates. Otherwise no card.",
			ID: ServiceOrderSign, Prefetch: pf, UsageRequirements: usage,
		},
	}}
}

// services maps a service id to its hook.
var services = map[string]string{
	ServicePatientView: HookPatientView,
	ServiceOrderSelect: HookOrderSelect,
	ServiceOrderSign:   HookOrderSign,
}

// query is the record fetch for patient: the app's query
// (mapping.RecordQuery), with the optional MedicationStatement and Encounter
// searches on, as the app makes them when its scope allows.
func (s *Service) query(patient string, now time.Time) fhir.Query {
	q := mapping.RecordQuery(s.Assess.Scoring, patient, now, mapping.MapOptions{LabLookback: s.Assess.LabLookback})
	q.MedicationStatements = true
	q.Encounters = true
	return q
}

// PrefetchTemplates returns the prefetch templates: one per request of the
// app's fetch plan, with every code system-qualified and percent-encoded
// (fhir.Query.Plan formats them; smart-launcher-v2's proxy collapses an
// unencoded "//"). The Observation search has no date bound: CDS Hooks 2.0
// prefetch tokens cannot express one.
func (s *Service) PrefetchTemplates() map[string]string {
	q := s.query("x", time.Time{})
	q.Since = time.Time{}
	out := map[string]string{}
	for _, r := range q.Plan() {
		out[prefetchKeys[r.Type]] = template(r)
	}
	return out
}

// template renders one plan request as a prefetch template: the patient
// parameter becomes the context token, the others are encoded as the FHIR
// client encodes them.
func template(r fhir.Request) string {
	if r.Interaction == fhir.InteractionRead {
		return r.Type + "/" + PatientToken
	}
	keys := make([]string, 0, len(r.Params))
	for k := range r.Params {
		if k != "patient" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(r.Type + "?patient=" + PatientToken)
	for _, k := range keys {
		for _, v := range r.Params[k] {
			b.WriteString("&" + url.QueryEscape(k) + "=" + url.QueryEscape(v))
		}
	}
	return b.String()
}
