package fhir

import (
	"encoding/json"
	"strings"
	"time"
)

// Code systems this package itself interprets.
const (
	// SystemV20203 is HL7 v2 table 0203 (identifier type); code "MR" marks a
	// medical record number.
	SystemV20203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
	// SystemConditionClinical is Condition.clinicalStatus's code system.
	SystemConditionClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	// SystemConditionVerification is Condition.verificationStatus's code system.
	SystemConditionVerification = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	// SystemActCode is HL7 v3 ActCode, the code system of Encounter.class
	// (IMP inpatient, ACUTE inpatient acute, NONAC inpatient non-acute, AMB …).
	SystemActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	// ExtBirthSex is the US Core birth sex extension on Patient (valueCode F, M
	// or UNK).
	ExtBirthSex = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
)

// Coding is a code from a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Version string `json:"version,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a concept given by codings and/or text.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Has reports whether one of the concept's codings has exactly this system
// and code. It matches literally: subsumption (descendant codes) is the
// mapping's business.
func (c CodeableConcept) Has(system, code string) bool {
	for _, cd := range c.Coding {
		if cd.Code == code && cd.System == system {
			return true
		}
	}
	return false
}

// Code returns the code of the first coding in system.
func (c CodeableConcept) Code(system string) (string, bool) {
	for _, cd := range c.Coding {
		if cd.System == system && cd.Code != "" {
			return cd.Code, true
		}
	}
	return "", false
}

// Quantity is a measured amount. Value is nil when the element is absent;
// Code (with System, normally UCUM) is the computable unit, Unit the display.
// Comparator ("<", "<=", ">=", ">") matters for results such as eGFR ">60".
type Quantity struct {
	Value      *float64 `json:"value,omitempty"`
	Comparator string   `json:"comparator,omitempty"`
	Unit       string   `json:"unit,omitempty"`
	System     string   `json:"system,omitempty"`
	Code       string   `json:"code,omitempty"`
}

// Reference points at another resource: relative ("Medication/123"),
// absolute, or contained ("#med1").
type Reference struct {
	Reference string `json:"reference,omitempty"`
	Type      string `json:"type,omitempty"`
	Display   string `json:"display,omitempty"`
}

// Target returns the resource type and id a literal reference names, for
// relative and absolute references alike (a trailing /_history/n is
// ignored). ok is false for contained ("#…"), logical or malformed references.
func (r Reference) Target() (typ, id string, ok bool) {
	ref := r.Reference
	if ref == "" || strings.HasPrefix(ref, "#") {
		return "", "", false
	}
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 || !validType(parts[n-2]) || !validID(parts[n-1]) {
		return "", "", false
	}
	return parts[n-2], parts[n-1], true
}

// Period is a time range; either end may be missing. Values are FHIR
// dateTime strings (see ParseDate).
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Identifier is a business identifier such as an MRN.
type Identifier struct {
	Use    string           `json:"use,omitempty"`
	Type   *CodeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	Value  string           `json:"value,omitempty"`
	Period *Period          `json:"period,omitempty"`
}

// HumanName is a person's name. Text holds the whole name as displayed; TW
// Core records Chinese names there.
type HumanName struct {
	Use    string   `json:"use,omitempty"`
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Suffix []string `json:"suffix,omitempty"`
	Period *Period  `json:"period,omitempty"`
}

// String returns Text, or else the given names followed by the family name.
func (n HumanName) String() string {
	if t := strings.TrimSpace(n.Text); t != "" {
		return t
	}
	parts := make([]string, 0, len(n.Given)+1)
	for _, g := range n.Given {
		if g = strings.TrimSpace(g); g != "" {
			parts = append(parts, g)
		}
	}
	if f := strings.TrimSpace(n.Family); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}

// Extension is a FHIR extension, with the value types SMART Calc reads.
type Extension struct {
	URL                  string           `json:"url"`
	ValueCode            string           `json:"valueCode,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueCoding          *Coding          `json:"valueCoding,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	Extension            []Extension      `json:"extension,omitempty"`
}

// Timing is the part of a dosage schedule that says how often.
type Timing struct {
	Repeat *TimingRepeat    `json:"repeat,omitempty"`
	Code   *CodeableConcept `json:"code,omitempty"`
}

// TimingRepeat is Timing.repeat: Frequency times per Period PeriodUnit
// (s|min|h|d|wk|mo|a).
type TimingRepeat struct {
	BoundsPeriod *Period  `json:"boundsPeriod,omitempty"`
	Frequency    *int     `json:"frequency,omitempty"`
	Period       *float64 `json:"period,omitempty"`
	PeriodUnit   string   `json:"periodUnit,omitempty"`
	DayOfWeek    []string `json:"dayOfWeek,omitempty"`
}

// DoseAndRate is one Dosage.doseAndRate entry (only the dose quantity).
type DoseAndRate struct {
	DoseQuantity *Quantity `json:"doseQuantity,omitempty"`
}

// Dosage is how a medication is (to be) taken. Route tells oral NSAIDs and
// systemic steroids from topical or inhaled ones.
type Dosage struct {
	Text        string           `json:"text,omitempty"`
	Timing      *Timing          `json:"timing,omitempty"`
	AsNeeded    *bool            `json:"asNeededBoolean,omitempty"`
	Route       *CodeableConcept `json:"route,omitempty"`
	DoseAndRate []DoseAndRate    `json:"doseAndRate,omitempty"`
}

// Patient is the subject of the assessment.
type Patient struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id,omitempty"`
	Identifier   []Identifier `json:"identifier,omitempty"`
	Name         []HumanName  `json:"name,omitempty"`
	Gender       string       `json:"gender,omitempty"` // male | female | other | unknown
	BirthDate    string       `json:"birthDate,omitempty"`
	Extension    []Extension  `json:"extension,omitempty"`
}

// MRN returns the value of the first identifier typed v2-0203 "MR" (medical
// record number), skipping identifiers whose use is "old".
func (p *Patient) MRN() string {
	for _, id := range p.Identifier {
		if id.Use == "old" || id.Type == nil || id.Value == "" {
			continue
		}
		if id.Type.Has(SystemV20203, "MR") {
			return id.Value
		}
	}
	return ""
}

// DisplayName returns the name to show in the banner: the first official
// name, else the first usual one, else the first name not marked old,
// nickname, anonymous or maiden. A name's Text wins over its parts, so
// Chinese names recorded in name.text display as recorded.
func (p *Patient) DisplayName() string {
	for _, want := range []string{"official", "usual"} {
		for _, n := range p.Name {
			if n.Use == want {
				if s := n.String(); s != "" {
					return s
				}
			}
		}
	}
	for _, n := range p.Name {
		switch n.Use {
		case "old", "nickname", "anonymous", "maiden":
			continue
		}
		if s := n.String(); s != "" {
			return s
		}
	}
	return ""
}

// Birth returns the birth date (a partial date gives its first day).
func (p *Patient) Birth() (time.Time, bool) { return parseOK(p.BirthDate) }

// BirthSex returns the US Core birth sex extension's code (F, M, UNK), or "".
func (p *Patient) BirthSex() string {
	for _, e := range p.Extension {
		if e.URL == ExtBirthSex {
			return e.ValueCode
		}
	}
	return ""
}

// Observation is a lab result, vital sign or social-history fact.
type Observation struct {
	ResourceType         string            `json:"resourceType"`
	ID                   string            `json:"id,omitempty"`
	Status               string            `json:"status,omitempty"`
	Category             []CodeableConcept `json:"category,omitempty"`
	Code                 CodeableConcept   `json:"code"`
	Subject              *Reference        `json:"subject,omitempty"`
	EffectiveDateTime    string            `json:"effectiveDateTime,omitempty"`
	EffectivePeriod      *Period           `json:"effectivePeriod,omitempty"`
	EffectiveInstant     string            `json:"effectiveInstant,omitempty"`
	Issued               string            `json:"issued,omitempty"`
	ValueQuantity        *Quantity         `json:"valueQuantity,omitempty"`
	ValueCodeableConcept *CodeableConcept  `json:"valueCodeableConcept,omitempty"`
	ValueString          string            `json:"valueString,omitempty"`
	ValueInteger         *int64            `json:"valueInteger,omitempty"`
	DataAbsentReason     *CodeableConcept  `json:"dataAbsentReason,omitempty"`
}

// EffectiveTime returns when the observation applies: effectiveDateTime, else
// effectiveInstant, else effectivePeriod.start (or its end when only the end
// is known), else issued. A partial date gives its first instant.
func (o *Observation) EffectiveTime() (time.Time, bool) {
	if t, ok := parseOK(o.EffectiveDateTime); ok {
		return t, true
	}
	if t, ok := parseOK(o.EffectiveInstant); ok {
		return t, true
	}
	if p := o.EffectivePeriod; p != nil {
		if t, ok := parseOK(p.Start); ok {
			return t, true
		}
		if t, ok := parseOK(p.End); ok {
			return t, true
		}
	}
	return parseOK(o.Issued)
}

// Final reports whether the status is final, amended or corrected: the
// results the mapping may use.
func (o *Observation) Final() bool {
	switch o.Status {
	case "final", "amended", "corrected":
		return true
	}
	return false
}

// Condition is a problem-list entry or diagnosis.
type Condition struct {
	ResourceType       string            `json:"resourceType"`
	ID                 string            `json:"id,omitempty"`
	ClinicalStatus     *CodeableConcept  `json:"clinicalStatus,omitempty"`
	VerificationStatus *CodeableConcept  `json:"verificationStatus,omitempty"`
	Category           []CodeableConcept `json:"category,omitempty"`
	Code               CodeableConcept   `json:"code"`
	Subject            *Reference        `json:"subject,omitempty"`
	Encounter          *Reference        `json:"encounter,omitempty"`
	OnsetDateTime      string            `json:"onsetDateTime,omitempty"`
	OnsetPeriod        *Period           `json:"onsetPeriod,omitempty"`
	OnsetAge           *Quantity         `json:"onsetAge,omitempty"`
	OnsetString        string            `json:"onsetString,omitempty"`
	AbatementDateTime  string            `json:"abatementDateTime,omitempty"`
	AbatementPeriod    *Period           `json:"abatementPeriod,omitempty"`
	AbatementAge       *Quantity         `json:"abatementAge,omitempty"`
	AbatementString    string            `json:"abatementString,omitempty"`
	RecordedDate       string            `json:"recordedDate,omitempty"`
}

// ClinicalStatusCode returns the condition-clinical code (active,
// recurrence, relapse, inactive, remission, resolved), or "".
func (c *Condition) ClinicalStatusCode() string {
	if c.ClinicalStatus == nil {
		return ""
	}
	s, _ := c.ClinicalStatus.Code(SystemConditionClinical)
	return s
}

// VerificationStatusCode returns the condition-ver-status code
// (unconfirmed, provisional, differential, confirmed, refuted,
// entered-in-error), or "".
func (c *Condition) VerificationStatusCode() string {
	if c.VerificationStatus == nil {
		return ""
	}
	s, _ := c.VerificationStatus.Code(SystemConditionVerification)
	return s
}

// Onset returns onsetDateTime, else onsetPeriod.start. Onset given as an age
// or a string is left to the caller (OnsetAge, OnsetString).
func (c *Condition) Onset() (time.Time, bool) {
	if t, ok := parseOK(c.OnsetDateTime); ok {
		return t, true
	}
	if c.OnsetPeriod != nil {
		return parseOK(c.OnsetPeriod.Start)
	}
	return time.Time{}, false
}

// Abatement returns abatementDateTime, else abatementPeriod.end, else
// abatementPeriod.start.
func (c *Condition) Abatement() (time.Time, bool) {
	if t, ok := parseOK(c.AbatementDateTime); ok {
		return t, true
	}
	if p := c.AbatementPeriod; p != nil {
		if t, ok := parseOK(p.End); ok {
			return t, true
		}
		return parseOK(p.Start)
	}
	return time.Time{}, false
}

// Abated reports whether any abatement[x] is present.
func (c *Condition) Abated() bool {
	return c.AbatementDateTime != "" || c.AbatementPeriod != nil || c.AbatementAge != nil || c.AbatementString != ""
}

// Recorded returns recordedDate.
func (c *Condition) Recorded() (time.Time, bool) { return parseOK(c.RecordedDate) }

// DispenseRequest is MedicationRequest.dispenseRequest: the supply span that
// shows planned long-term use.
type DispenseRequest struct {
	ValidityPeriod         *Period   `json:"validityPeriod,omitempty"`
	NumberOfRepeatsAllowed *int      `json:"numberOfRepeatsAllowed,omitempty"`
	Quantity               *Quantity `json:"quantity,omitempty"`
	ExpectedSupplyDuration *Quantity `json:"expectedSupplyDuration,omitempty"`
}

// MedicationRequest is an order (or plan) for a medication. The drug is in
// MedicationCodeableConcept or in the Medication that MedicationReference
// names (see Record.RequestMedication).
type MedicationRequest struct {
	ResourceType              string            `json:"resourceType"`
	ID                        string            `json:"id,omitempty"`
	Contained                 []json.RawMessage `json:"contained,omitempty"`
	Status                    string            `json:"status,omitempty"`
	Intent                    string            `json:"intent,omitempty"`
	Category                  []CodeableConcept `json:"category,omitempty"`
	MedicationCodeableConcept *CodeableConcept  `json:"medicationCodeableConcept,omitempty"`
	MedicationReference       *Reference        `json:"medicationReference,omitempty"`
	Subject                   *Reference        `json:"subject,omitempty"`
	AuthoredOn                string            `json:"authoredOn,omitempty"`
	DosageInstruction         []Dosage          `json:"dosageInstruction,omitempty"`
	DispenseRequest           *DispenseRequest  `json:"dispenseRequest,omitempty"`
}

// Authored returns authoredOn.
func (m *MedicationRequest) Authored() (time.Time, bool) { return parseOK(m.AuthoredOn) }

// MedicationStatement is a record that the patient takes (or took) a
// medication.
type MedicationStatement struct {
	ResourceType              string            `json:"resourceType"`
	ID                        string            `json:"id,omitempty"`
	Contained                 []json.RawMessage `json:"contained,omitempty"`
	Status                    string            `json:"status,omitempty"`
	Category                  *CodeableConcept  `json:"category,omitempty"`
	MedicationCodeableConcept *CodeableConcept  `json:"medicationCodeableConcept,omitempty"`
	MedicationReference       *Reference        `json:"medicationReference,omitempty"`
	Subject                   *Reference        `json:"subject,omitempty"`
	EffectiveDateTime         string            `json:"effectiveDateTime,omitempty"`
	EffectivePeriod           *Period           `json:"effectivePeriod,omitempty"`
	DateAsserted              string            `json:"dateAsserted,omitempty"`
	Dosage                    []Dosage          `json:"dosage,omitempty"`
}

// Medication is a drug definition referenced by a MedicationRequest or
// MedicationStatement.
type Medication struct {
	ResourceType string                 `json:"resourceType"`
	ID           string                 `json:"id,omitempty"`
	Code         *CodeableConcept       `json:"code,omitempty"`
	Form         *CodeableConcept       `json:"form,omitempty"`
	Ingredient   []MedicationIngredient `json:"ingredient,omitempty"`
}

// MedicationIngredient is one Medication.ingredient given as a concept.
type MedicationIngredient struct {
	ItemCodeableConcept *CodeableConcept `json:"itemCodeableConcept,omitempty"`
	IsActive            *bool            `json:"isActive,omitempty"`
}

// Procedure is a performed procedure (transfusion, surgery, PCI).
type Procedure struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id,omitempty"`
	Status            string            `json:"status,omitempty"`
	Category          *CodeableConcept  `json:"category,omitempty"`
	Code              CodeableConcept   `json:"code"`
	Subject           *Reference        `json:"subject,omitempty"`
	Encounter         *Reference        `json:"encounter,omitempty"`
	PerformedDateTime string            `json:"performedDateTime,omitempty"`
	PerformedPeriod   *Period           `json:"performedPeriod,omitempty"`
	ReasonCode        []CodeableConcept `json:"reasonCode,omitempty"`
	ReasonReference   []Reference       `json:"reasonReference,omitempty"`
}

// Performed returns performedDateTime, else performedPeriod.start, else
// performedPeriod.end.
func (p *Procedure) Performed() (time.Time, bool) {
	if t, ok := parseOK(p.PerformedDateTime); ok {
		return t, true
	}
	if pp := p.PerformedPeriod; pp != nil {
		if t, ok := parseOK(pp.Start); ok {
			return t, true
		}
		return parseOK(pp.End)
	}
	return time.Time{}, false
}

// EncounterDiagnosis links an Encounter to a Condition.
type EncounterDiagnosis struct {
	Condition Reference        `json:"condition"`
	Use       *CodeableConcept `json:"use,omitempty"`
	Rank      *int             `json:"rank,omitempty"`
}

// Encounter is a visit or stay. In R4 Class is a single Coding (v3 ActCode:
// IMP for inpatient).
type Encounter struct {
	ResourceType string               `json:"resourceType"`
	ID           string               `json:"id,omitempty"`
	Status       string               `json:"status,omitempty"`
	Class        *Coding              `json:"class,omitempty"`
	Type         []CodeableConcept    `json:"type,omitempty"`
	Subject      *Reference           `json:"subject,omitempty"`
	Period       *Period              `json:"period,omitempty"`
	ReasonCode   []CodeableConcept    `json:"reasonCode,omitempty"`
	Diagnosis    []EncounterDiagnosis `json:"diagnosis,omitempty"`
}

// Inpatient reports whether Class is v3 ActCode IMP, ACUTE or NONAC.
func (e *Encounter) Inpatient() bool {
	if e.Class == nil || e.Class.System != SystemActCode {
		return false
	}
	switch e.Class.Code {
	case "IMP", "ACUTE", "NONAC":
		return true
	}
	return false
}

// Bundle is a search result page.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type,omitempty"`
	Total        *int          `json:"total,omitempty"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// BundleLink is a Bundle.link (relation self, next, …).
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry is one Bundle.entry; Resource is left raw until its type is
// known.
type BundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *struct {
		Mode string `json:"mode,omitempty"` // match | include | outcome
	} `json:"search,omitempty"`
}

// Next returns the URL of the "next" link, or "".
func (b *Bundle) Next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

// OperationOutcome carries a server's errors and warnings.
type OperationOutcome struct {
	ResourceType string                  `json:"resourceType"`
	Issue        []OperationOutcomeIssue `json:"issue,omitempty"`
}

// OperationOutcomeIssue is one issue: severity fatal|error|warning|information
// and an issue-type code (forbidden, suppressed, security, not-found, …).
type OperationOutcomeIssue struct {
	Severity    string           `json:"severity,omitempty"`
	Code        string           `json:"code,omitempty"`
	Details     *CodeableConcept `json:"details,omitempty"`
	Diagnostics string           `json:"diagnostics,omitempty"`
}

// maxOutcomeText bounds the outcome text carried into error messages.
const maxOutcomeText = 500

// Text joins the issues' details.text (else a coding's display, else
// diagnostics) with "; ", bounded to a few hundred characters.
func (o *OperationOutcome) Text() string {
	if o == nil {
		return ""
	}
	var parts []string
	for _, is := range o.Issue {
		var s string
		if is.Details != nil {
			s = is.Details.Text
			for i := 0; s == "" && i < len(is.Details.Coding); i++ {
				s = is.Details.Coding[i].Display
			}
		}
		if s == "" {
			s = is.Diagnostics
		}
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	t := strings.Join(parts, "; ")
	if len(t) > maxOutcomeText {
		// Cut at a rune boundary.
		t = strings.ToValidUTF8(t[:maxOutcomeText], "") + "…"
	}
	return t
}

// BreakTheGlass reports whether the outcome says that more data would be
// available through the break-the-glass protocol: an issue coded v3
// ActReason BTG (or ETREAT, as older FHIR examples use), or text that says
// "break the glass".
func (o *OperationOutcome) BreakTheGlass() bool {
	if o == nil {
		return false
	}
	for _, is := range o.Issue {
		if is.Details != nil {
			for _, c := range is.Details.Coding {
				if (c.Code == "BTG" || c.Code == "ETREAT") && strings.Contains(strings.ToLower(c.System), "actreason") {
					return true
				}
			}
			if mentionsBTG(is.Details.Text) {
				return true
			}
		}
		if mentionsBTG(is.Diagnostics) {
			return true
		}
	}
	return false
}

func mentionsBTG(s string) bool {
	s = strings.ToLower(s)
	s = strings.NewReplacer("-", " ", "_", " ").Replace(s)
	return strings.Contains(s, "break the glass") || strings.Contains(s, "breaking the glass")
}

// resourceHeader is the part of any resource needed to dispatch on it.
type resourceHeader struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
}

// validType reports whether s looks like a FHIR resource type name.
func validType(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// validID reports whether s matches FHIR's id type: [A-Za-z0-9\-\.]{1,64}.
// Checking it keeps ids from the launch context from reshaping the URL path.
func validID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
