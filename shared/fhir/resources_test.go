package fhir

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseDateSpan(t *testing.T) {
	utc := func(y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
	}
	tests := []struct {
		in         string
		start, end time.Time
		wantErr    bool
	}{
		{in: "2024", start: utc(2024, 1, 1, 0, 0, 0), end: utc(2025, 1, 1, 0, 0, 0)},
		{in: "2024-02", start: utc(2024, 2, 1, 0, 0, 0), end: utc(2024, 3, 1, 0, 0, 0)},
		{in: "2024-12", start: utc(2024, 12, 1, 0, 0, 0), end: utc(2025, 1, 1, 0, 0, 0)},
		{in: "2024-02-29", start: utc(2024, 2, 29, 0, 0, 0), end: utc(2024, 3, 1, 0, 0, 0)},
		{in: "2024-03-05T10:20:30Z", start: utc(2024, 3, 5, 10, 20, 30), end: utc(2024, 3, 5, 10, 20, 30)},
		{in: "2024-03-05T10:20:30+08:00", start: utc(2024, 3, 5, 2, 20, 30), end: utc(2024, 3, 5, 2, 20, 30)},
		{in: "2024-03-05T10:20:30-05:00", start: utc(2024, 3, 5, 15, 20, 30), end: utc(2024, 3, 5, 15, 20, 30)},
		{in: "2024-03-05T10:20:30.123Z", start: utc(2024, 3, 5, 10, 20, 30).Add(123 * time.Millisecond), end: utc(2024, 3, 5, 10, 20, 30).Add(123 * time.Millisecond)},
		// No zone: FHIR forbids it, some servers send it; read as UTC.
		{in: "2024-03-05T10:20:30", start: utc(2024, 3, 5, 10, 20, 30), end: utc(2024, 3, 5, 10, 20, 30)},
		{in: "", wantErr: true},
		{in: "24", wantErr: true},
		{in: "0000", wantErr: true},
		{in: "2024-13", wantErr: true},
		{in: "2024-2", wantErr: true},
		{in: "2023-02-29", wantErr: true},
		{in: "2024-02-30", wantErr: true},
		{in: "2024-03-05T10:20", wantErr: true},
		{in: "2024-03-05T25:00:00Z", wantErr: true},
		{in: "2024-03-05 10:20:30Z", wantErr: true},
		{in: "abcd", wantErr: true},
		{in: "2024-03-05T10:20:30+0800", wantErr: true},
	}
	for _, tt := range tests {
		start, end, err := ParseDateSpan(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseDateSpan(%q) = %v, want an error", tt.in, start)
			} else if !strings.HasPrefix(err.Error(), "fhir: ") {
				t.Errorf("ParseDateSpan(%q) error %q lacks the package prefix", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDateSpan(%q): %v", tt.in, err)
			continue
		}
		if !start.Equal(tt.start) || !end.Equal(tt.end) {
			t.Errorf("ParseDateSpan(%q) = [%v, %v), want [%v, %v)", tt.in, start, end, tt.start, tt.end)
		}
		if got, _ := ParseDate(tt.in); !got.Equal(tt.start) {
			t.Errorf("ParseDate(%q) = %v, want %v", tt.in, got, tt.start)
		}
	}
}

func TestObservationEffectiveTime(t *testing.T) {
	tests := []struct {
		name string
		json string
		want string // "" means not known
	}{
		{"dateTime wins", `{"effectiveDateTime":"2024-05-01T08:00:00Z","effectivePeriod":{"start":"2024-01-01"},"issued":"2024-06-01T00:00:00Z"}`, "2024-05-01T08:00:00Z"},
		{"partial dateTime", `{"effectiveDateTime":"2024-05"}`, "2024-05-01T00:00:00Z"},
		{"instant", `{"effectiveInstant":"2024-05-02T01:02:03+02:00"}`, "2024-05-01T23:02:03Z"},
		{"period start", `{"effectivePeriod":{"start":"2024-04-01","end":"2024-04-03"},"issued":"2024-06-01T00:00:00Z"}`, "2024-04-01T00:00:00Z"},
		{"period end only", `{"effectivePeriod":{"end":"2024-04-03"},"issued":"2024-06-01T00:00:00Z"}`, "2024-04-03T00:00:00Z"},
		{"issued last", `{"issued":"2024-06-01T00:00:00Z"}`, "2024-06-01T00:00:00Z"},
		{"unparseable falls through", `{"effectiveDateTime":"yesterday","issued":"2024-06-01T00:00:00Z"}`, "2024-06-01T00:00:00Z"},
		{"none", `{}`, ""},
	}
	for _, tt := range tests {
		var o Observation
		if err := json.Unmarshal([]byte(tt.json), &o); err != nil {
			t.Fatal(err)
		}
		got, ok := o.EffectiveTime()
		if tt.want == "" {
			if ok {
				t.Errorf("%s: EffectiveTime() = %v, want not known", tt.name, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339, tt.want)
		if !ok || !got.Equal(want) {
			t.Errorf("%s: EffectiveTime() = %v, %v; want %v", tt.name, got, ok, want)
		}
	}
}

func TestObservationDecodesValue(t *testing.T) {
	var o Observation
	in := `{"resourceType":"Observation","id":"hb1","status":"amended","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},
	  "valueQuantity":{"value":12.5,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}}`
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	if !o.Final() || !o.Code.Has("http://loinc.org", "718-7") || o.Code.Has("http://loinc.org", "20509-6") || o.Code.Has("", "718-7") {
		t.Errorf("status/code helpers wrong: %+v", o)
	}
	q := o.ValueQuantity
	if q == nil || q.Value == nil || *q.Value != 12.5 || q.Code != "g/dL" || q.System != "http://unitsofmeasure.org" {
		t.Errorf("valueQuantity = %+v", q)
	}
	for _, s := range []string{"preliminary", "registered", "entered-in-error", "cancelled", ""} {
		if (&Observation{Status: s}).Final() {
			t.Errorf("status %q counted as final", s)
		}
	}
	// A comparator is kept, so "eGFR >60" is not read as exactly 60.
	var g Observation
	json.Unmarshal([]byte(`{"valueQuantity":{"value":60,"comparator":">","code":"mL/min/{1.73_m2}"}}`), &g)
	if g.ValueQuantity.Comparator != ">" {
		t.Errorf("comparator lost: %+v", g.ValueQuantity)
	}
}

func TestPatientHelpers(t *testing.T) {
	const mr = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]}`
	tests := []struct {
		name      string
		json      string
		display   string
		mrn       string
		birthSex  string
		birthDate string
	}{
		{
			name:    "official name parts, MR identifier",
			json:    `{"name":[{"use":"usual","given":["Bob"],"family":"Smith"},{"use":"official","given":["Robert","James"],"family":"Smith"}],"identifier":[{"system":"urn:ssn","value":"999"},{"type":` + mr + `,"value":"MRN-1"}],"birthDate":"1950-06-15"},`,
			display: "Robert James Smith", mrn: "MRN-1", birthDate: "1950-06-15",
		},
		{
			name:    "Chinese name in text wins over parts",
			json:    `{"name":[{"use":"official","text":"陳大文","family":"陳","given":["大文"]}],"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"F"}]}`,
			display: "陳大文", birthSex: "F",
		},
		{
			name:    "old names and old MRNs skipped",
			json:    `{"name":[{"use":"old","text":"Jane Doe"},{"use":"maiden","family":"Roe"},{"given":["Jane"],"family":"Smith"}],"identifier":[{"use":"old","type":` + mr + `,"value":"OLD"},{"type":` + mr + `,"value":"NEW"}],"birthDate":"1950"}`,
			display: "Jane Smith", mrn: "NEW", birthDate: "1950-01-01",
		},
		{
			name:    "usual when no official",
			json:    `{"name":[{"use":"nickname","text":"JJ"},{"use":"usual","text":"John Jones"}]}`,
			display: "John Jones",
		},
		{
			name: "nothing",
			json: `{"identifier":[{"system":"http://www.moi.gov.tw/","value":"A123456789"}]}`,
		},
	}
	for _, tt := range tests {
		var p Patient
		if err := json.Unmarshal([]byte(strings.TrimSuffix(tt.json, ",")), &p); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := p.DisplayName(); got != tt.display {
			t.Errorf("%s: DisplayName() = %q, want %q", tt.name, got, tt.display)
		}
		if got := p.MRN(); got != tt.mrn {
			t.Errorf("%s: MRN() = %q, want %q", tt.name, got, tt.mrn)
		}
		if got := p.BirthSex(); got != tt.birthSex {
			t.Errorf("%s: BirthSex() = %q, want %q", tt.name, got, tt.birthSex)
		}
		b, ok := p.Birth()
		if tt.birthDate == "" {
			if ok {
				t.Errorf("%s: Birth() = %v, want none", tt.name, b)
			}
		} else if got := b.Format(time.DateOnly); !ok || got != tt.birthDate {
			t.Errorf("%s: Birth() = %s, want %s", tt.name, got, tt.birthDate)
		}
	}
}

func TestConditionHelpers(t *testing.T) {
	var c Condition
	in := `{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},
	 "verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},
	 "code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"K92.2"}]},
	 "onsetPeriod":{"start":"2023-11"},"abatementPeriod":{"start":"2023-12-01","end":"2023-12-10"},"recordedDate":"2023-11-20"}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.ClinicalStatusCode() != "resolved" || c.VerificationStatusCode() != "confirmed" {
		t.Errorf("statuses = %q %q", c.ClinicalStatusCode(), c.VerificationStatusCode())
	}
	check := func(name string, got time.Time, ok bool, want string) {
		t.Helper()
		if g := got.Format(time.DateOnly); !ok || g != want {
			t.Errorf("%s = %s %v, want %s", name, g, ok, want)
		}
	}
	on, ok := c.Onset()
	check("Onset", on, ok, "2023-11-01")
	ab, ok := c.Abatement()
	check("Abatement", ab, ok, "2023-12-10")
	rd, ok := c.Recorded()
	check("Recorded", rd, ok, "2023-11-20")
	if !c.Abated() {
		t.Error("Abated() = false with an abatementPeriod")
	}
	var empty Condition
	if _, ok := empty.Onset(); ok {
		t.Error("Onset known on an empty condition")
	}
	if empty.Abated() || empty.ClinicalStatusCode() != "" {
		t.Error("empty condition has abatement or status")
	}
	if !(&Condition{AbatementString: "in childhood"}).Abated() {
		t.Error("abatementString not counted as abated")
	}
}

func TestProcedureAndEncounterHelpers(t *testing.T) {
	tests := []struct {
		proc string
		want string
	}{
		{`{"performedDateTime":"2024-01-02T03:04:05Z","performedPeriod":{"start":"2023-01-01"}}`, "2024-01-02"},
		{`{"performedPeriod":{"start":"2023-01-01","end":"2023-01-03"}}`, "2023-01-01"},
		{`{"performedPeriod":{"end":"2023-01-03"}}`, "2023-01-03"},
		{`{}`, ""},
	}
	for _, tt := range tests {
		var p Procedure
		json.Unmarshal([]byte(tt.proc), &p)
		got, ok := p.Performed()
		if tt.want == "" {
			if ok {
				t.Errorf("%s: Performed() = %v, want none", tt.proc, got)
			}
		} else if g := got.Format(time.DateOnly); !ok || g != tt.want {
			t.Errorf("%s: Performed() = %s, want %s", tt.proc, g, tt.want)
		}
	}
	for _, tt := range []struct {
		class string
		want  bool
	}{
		{`{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"}`, true},
		{`{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"ACUTE"}`, true},
		{`{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"}`, false},
		{`{"system":"http://example.org/local","code":"IMP"}`, false},
	} {
		var e Encounter
		json.Unmarshal([]byte(`{"class":`+tt.class+`}`), &e)
		if e.Inpatient() != tt.want {
			t.Errorf("class %s: Inpatient() = %v", tt.class, !tt.want)
		}
	}
	if (&Encounter{}).Inpatient() {
		t.Error("encounter without class is inpatient")
	}
}

func TestReferenceTarget(t *testing.T) {
	tests := []struct {
		ref     string
		typ, id string
		ok      bool
	}{
		{"Patient/123", "Patient", "123", true},
		{"https://ehr.example/fhir/Patient/abc-1.2", "Patient", "abc-1.2", true},
		{"Patient/123/_history/4", "Patient", "123", true},
		{"Medication/m1?x=1", "Medication", "m1", true},
		{"#med1", "", "", false},
		{"urn:uuid:1234", "", "", false},
		{"Patient/", "", "", false},
		{"patient/123", "", "", false},
		{"Patient/../x", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		typ, id, ok := Reference{Reference: tt.ref}.Target()
		if typ != tt.typ || id != tt.id || ok != tt.ok {
			t.Errorf("Target(%q) = %q, %q, %v; want %q, %q, %v", tt.ref, typ, id, ok, tt.typ, tt.id, tt.ok)
		}
	}
}

func TestOperationOutcome(t *testing.T) {
	tests := []struct {
		name string
		json string
		text string
		btg  bool
	}{
		{"BTG coding", `{"issue":[{"severity":"error","code":"suppressed","details":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"BTG","display":"Break the glass"}],"text":"Restricted record: break-the-glass access required"}}]}`,
			"Restricted record: break-the-glass access required", true},
		{"old ActReason ETREAT", `{"issue":[{"severity":"information","code":"suppressed","details":{"coding":[{"system":"http://hl7.org/fhir/v3/ActReason","code":"ETREAT"}]}}]}`, "", true},
		{"text only", `{"issue":[{"severity":"error","code":"forbidden","diagnostics":"Use Break The Glass to view this chart"}]}`, "Use Break The Glass to view this chart", true},
		{"plain forbidden", `{"issue":[{"severity":"error","code":"forbidden","diagnostics":"Forbidden."},{"severity":"warning","code":"informational","details":{"coding":[{"display":"second"}]}}]}`, "Forbidden.; second", false},
		{"empty", `{}`, "", false},
	}
	for _, tt := range tests {
		var o OperationOutcome
		if err := json.Unmarshal([]byte(tt.json), &o); err != nil {
			t.Fatal(err)
		}
		if got := o.Text(); got != tt.text {
			t.Errorf("%s: Text() = %q, want %q", tt.name, got, tt.text)
		}
		if got := o.BreakTheGlass(); got != tt.btg {
			t.Errorf("%s: BreakTheGlass() = %v", tt.name, got)
		}
	}
	long := OperationOutcome{Issue: []OperationOutcomeIssue{{Diagnostics: strings.Repeat("é", 400)}}}
	if txt := long.Text(); len(txt) > maxOutcomeText+len("…") || !strings.HasSuffix(txt, "…") || !json.Valid([]byte(`"`+txt+`"`)) {
		t.Errorf("long outcome text not bounded to valid UTF-8: %d bytes", len(txt))
	}
	var nilOutcome *OperationOutcome
	if nilOutcome.Text() != "" || nilOutcome.BreakTheGlass() {
		t.Error("nil outcome not empty")
	}
}

func TestSearchToken(t *testing.T) {
	tests := []struct{ system, code, want string }{
		{"http://loinc.org", "718-7", "http://loinc.org|718-7"},
		{"", "718-7", "718-7"},
		{"urn:x", "a,b|c$d\\e", `urn:x|a\,b\|c\$d\\e`},
	}
	for _, tt := range tests {
		if got := SearchToken(tt.system, tt.code); got != tt.want {
			t.Errorf("SearchToken(%q, %q) = %q, want %q", tt.system, tt.code, got, tt.want)
		}
	}
}
