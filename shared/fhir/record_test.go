package fhir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var labCodes = []Coding{
	{System: "http://loinc.org", Code: "718-7"},
	{System: "http://loinc.org", Code: "2160-0"},
}

var since = time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))

func fullQuery() Query {
	return Query{Patient: "p-1", ObservationCodes: labCodes, Since: since, MedicationStatements: true, Encounters: true}
}

// wantQueries are the exact requests fullQuery must produce, by path.
var wantQueries = map[string]string{
	"/fhir/Patient/p-1":         "",
	"/fhir/Observation":         "_count=200&_sort=-date&code=http%3A%2F%2Floinc.org%7C718-7%2Chttp%3A%2F%2Floinc.org%7C2160-0&date=ge2024-12-31T16%3A00%3A00Z&patient=p-1",
	"/fhir/Condition":           "_count=200&patient=p-1",
	"/fhir/MedicationRequest":   "_count=200&_include=MedicationRequest%3Amedication&patient=p-1&status=active%2Con-hold",
	"/fhir/MedicationStatement": "_count=200&_include=MedicationStatement%3Amedication&patient=p-1&status=active",
	"/fhir/Procedure":           "_count=200&patient=p-1",
	"/fhir/Encounter":           "_count=200&class=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fv3-ActCode%7CIMP%2Chttp%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fv3-ActCode%7CACUTE%2Chttp%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fv3-ActCode%7CNONAC&patient=p-1",
}

const (
	testPatient   = `{"resourceType":"Patient","id":"p-1","gender":"male","birthDate":"1950-03-04","name":[{"use":"official","given":["Li"],"family":"Wei"}]}`
	subjectP1     = `"subject":{"reference":"Patient/p-1"}`
	testCondition = `{"resourceType":"Condition","id":"c1",` + subjectP1 + `,"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"K92.2"}]},"onsetDateTime":"2024-10"}`
	testProcedure = `{"resourceType":"Procedure","id":"pr1",` + subjectP1 + `,"status":"completed","code":{"coding":[{"system":"http://snomed.info/sct","code":"116859006"}]},"performedDateTime":"2024-10-02"}`
	testEncounter = `{"resourceType":"Encounter","id":"e1",` + subjectP1 + `,"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"diagnosis":[{"condition":{"reference":"Condition/c1"}}]}`
	testStatement = `{"resourceType":"MedicationStatement","id":"ms1",` + subjectP1 + `,"status":"active","medicationReference":{"reference":"Medication/apixaban"}}`
)

func labObs(id, code string, value float64, date string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final",%s,"code":{"coding":[{"system":"http://loinc.org","code":%q}]},"effectiveDateTime":%q,"valueQuantity":{"value":%g,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}}`,
		id, subjectP1, code, date, value)
}

// medBundle is a MedicationRequest search with one included Medication, one
// contained, one coded inline and one unresolvable reference.
var medBundle = `{"resourceType":"Bundle","type":"searchset","entry":[` +
	`{"fullUrl":"https://ehr.example/fhir/MedicationRequest/mr1","resource":{"resourceType":"MedicationRequest","id":"mr1",` + subjectP1 + `,"status":"active","intent":"order","medicationReference":{"reference":"Medication/warfarin"},"dosageInstruction":[{"route":{"coding":[{"system":"http://snomed.info/sct","code":"26643006"}]}}]},"search":{"mode":"match"}},` +
	`{"resource":{"resourceType":"MedicationRequest","id":"mr2",` + subjectP1 + `,"status":"active","intent":"order","contained":[{"resourceType":"Substance","id":"s","ingredient":"odd"},{"resourceType":"Medication","id":"m","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"5640"}]}}],"medicationReference":{"reference":"#m"}},"search":{"mode":"match"}},` +
	`{"resource":{"resourceType":"MedicationRequest","id":"mr3",` + subjectP1 + `,"status":"on-hold","intent":"plan","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"1191"}]}},"search":{"mode":"match"}},` +
	`{"resource":{"resourceType":"MedicationRequest","id":"mr4",` + subjectP1 + `,"status":"active","intent":"order","medicationReference":{"reference":"Medication/not-included"}},"search":{"mode":"match"}},` +
	`{"fullUrl":"https://ehr.example/fhir/Medication/warfarin","resource":{"resourceType":"Medication","id":"warfarin","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"855332"}]},"ingredient":[{"itemCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"11289"}]}}]},"search":{"mode":"include"}}` +
	`]}`

var statementBundle = `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + testStatement + `,"search":{"mode":"match"}},` +
	`{"fullUrl":"https://ehr.example/fhir/Medication/apixaban","resource":{"resourceType":"Medication","id":"apixaban","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"1364430"}]}},"search":{"mode":"include"}}]}`

// ehrHandler serves fullQuery's requests; override replaces chosen paths.
func ehrHandler(override map[string]http.HandlerFunc) http.HandlerFunc {
	bodies := map[string]string{
		"/fhir/Patient/p-1":         testPatient,
		"/fhir/Observation":         bundle("", labObs("hb1", "718-7", 12.1, "2025-03-01T08:00:00Z"), labObs("cr1", "2160-0", 1.1, "2025-02-01")),
		"/fhir/Condition":           bundle("", testCondition),
		"/fhir/MedicationRequest":   medBundle,
		"/fhir/MedicationStatement": statementBundle,
		"/fhir/Procedure":           bundle("", testProcedure),
		"/fhir/Encounter":           bundle("", testEncounter),
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if h := override[r.URL.Path]; h != nil {
			h(w, r)
			return
		}
		body, ok := bodies[r.URL.Path]
		if !ok {
			writeJSON(w, 404, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
			return
		}
		writeJSON(w, 200, body)
	}
}

func paths(reqs []recorded) []string {
	var p []string
	for _, r := range reqs {
		p = append(p, r.Path)
	}
	sort.Strings(p)
	return p
}

func TestFetchRecordSendsExactlyThePlan(t *testing.T) {
	srv, rc := newServer(t, ehrHandler(nil))
	rec := newClient(srv).FetchRecord(context.Background(), fullQuery())
	if len(rec.Errors) != 0 {
		t.Fatalf("errors: %v", rec.Errors)
	}
	reqs := rc.requests()
	if len(reqs) != len(wantQueries) || len(fullQuery().Plan()) != len(wantQueries) {
		t.Errorf("sent %d requests (plan %d), want %d", len(reqs), len(fullQuery().Plan()), len(wantQueries))
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		want, ok := wantQueries[r.Path]
		if !ok || seen[r.Path] {
			t.Errorf("unexpected or repeated request %s", r.Path)
		}
		seen[r.Path] = true
		if r.RawQuery != want {
			t.Errorf("%s query\n got %s\nwant %s", r.Path, r.RawQuery, want)
		}
		if r.Method != "GET" || r.Accept != "application/fhir+json" || r.Authorization != "Bearer "+testToken {
			t.Errorf("%s headers = %+v", r.Path, r)
		}
	}

	if rec.Patient == nil || rec.Patient.DisplayName() != "Li Wei" {
		t.Errorf("patient = %+v", rec.Patient)
	}
	if len(rec.Observations) != 2 || rec.Observations[0].ID != "hb1" || *rec.Observations[0].ValueQuantity.Value != 12.1 {
		t.Errorf("observations = %+v", rec.Observations)
	}
	if len(rec.Conditions) != 1 || len(rec.Procedures) != 1 || len(rec.Encounters) != 1 || len(rec.MedicationStatements) != 1 || len(rec.MedicationRequests) != 4 {
		t.Errorf("counts: cond %d proc %d enc %d ms %d mr %d", len(rec.Conditions), len(rec.Procedures), len(rec.Encounters), len(rec.MedicationStatements), len(rec.MedicationRequests))
	}
	if len(rec.Truncated) != 0 || len(rec.Outcomes) != 0 {
		t.Errorf("truncated %v outcomes %v", rec.Truncated, rec.Outcomes)
	}
}

func TestFetchRecordPlanFollowsQuery(t *testing.T) {
	tests := []struct {
		name  string
		q     Query
		paths []string
	}{
		{"minimal: no labs, no statements, no encounters", Query{Patient: "p-1"},
			[]string{"/fhir/Condition", "/fhir/MedicationRequest", "/fhir/Patient/p-1", "/fhir/Procedure"}},
		{"labs", Query{Patient: "p-1", ObservationCodes: labCodes},
			[]string{"/fhir/Condition", "/fhir/MedicationRequest", "/fhir/Observation", "/fhir/Patient/p-1", "/fhir/Procedure"}},
		{"statements", Query{Patient: "p-1", MedicationStatements: true},
			[]string{"/fhir/Condition", "/fhir/MedicationRequest", "/fhir/MedicationStatement", "/fhir/Patient/p-1", "/fhir/Procedure"}},
	}
	for _, tt := range tests {
		srv, rc := newServer(t, ehrHandler(nil))
		rec := newClient(srv).FetchRecord(context.Background(), tt.q)
		if len(rec.Errors) != 0 {
			t.Errorf("%s: errors %v", tt.name, rec.Errors)
		}
		if got := paths(rc.requests()); fmt.Sprint(got) != fmt.Sprint(tt.paths) {
			t.Errorf("%s: requests %v, want %v", tt.name, got, tt.paths)
		}
	}
	// Without Since, no date bound; Count sets the page size.
	q := Query{Patient: "p-1", ObservationCodes: labCodes[:1], Count: 50}
	if got := q.Plan()[1].Params.Encode(); got != "_count=50&_sort=-date&code=http%3A%2F%2Floinc.org%7C718-7&patient=p-1" {
		t.Errorf("observation params = %s", got)
	}
}

func TestFetchRecordIsConcurrent(t *testing.T) {
	n := len(fullQuery().Plan())
	var arrived atomic.Int32
	all := make(chan struct{})
	inner := ehrHandler(nil)
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if int(arrived.Add(1)) == n {
			close(all)
		}
		// Hold every request until all n are in flight. A client that waits
		// for one answer before sending the next never gets there.
		select {
		case <-all:
			inner(w, r)
		case <-time.After(3 * time.Second):
			writeJSON(w, 504, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"timeout","diagnostics":"requests were not concurrent"}]}`)
		}
	})
	c := newClient(srv)
	c.MaxRetries = -1
	rec := c.FetchRecord(context.Background(), fullQuery())
	if len(rec.Errors) != 0 {
		t.Fatalf("errors: %v", rec.Errors)
	}
	if got := len(rc.requests()); got != n {
		t.Errorf("requests = %d, want exactly %d", got, n)
	}
}

func TestFetchRecordOneFailureLeavesTheRest(t *testing.T) {
	srv, _ := newServer(t, ehrHandler(map[string]http.HandlerFunc{
		"/fhir/Condition": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 403, btgOutcome) },
		"/fhir/Procedure": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 500, "") },
		"/fhir/Encounter": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, "{oops") },
	}))
	rec := newClient(srv).FetchRecord(context.Background(), fullQuery())
	wantErr := map[string]error{"Condition": ErrForbidden, "Procedure": ErrUnavailable, "Encounter": ErrBadResponse}
	if len(rec.Errors) != len(wantErr) {
		t.Errorf("errors = %v", rec.Errors)
	}
	for typ, want := range wantErr {
		if !errors.Is(rec.Err(typ), want) {
			t.Errorf("%s error = %v, want %v", typ, rec.Err(typ), want)
		}
	}
	var e *Error
	if errors.As(rec.Err("Condition"), &e); e == nil || !e.BreakTheGlass || !strings.Contains(e.Error(), "Break-the-glass access is required") {
		t.Errorf("condition error = %v", rec.Err("Condition"))
	}
	if rec.Patient == nil || len(rec.Observations) != 2 || len(rec.MedicationRequests) != 4 || len(rec.MedicationStatements) != 1 {
		t.Errorf("the other types were lost: patient %v obs %d mr %d", rec.Patient != nil, len(rec.Observations), len(rec.MedicationRequests))
	}
	if rec.Conditions != nil || rec.Procedures != nil || rec.Encounters != nil {
		t.Errorf("failed types have data: %v %v %v", rec.Conditions, rec.Procedures, rec.Encounters)
	}
}

func TestFetchRecordPatientFailure(t *testing.T) {
	srv, _ := newServer(t, ehrHandler(map[string]http.HandlerFunc{
		"/fhir/Patient/p-1": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 404, "") },
	}))
	rec := newClient(srv).FetchRecord(context.Background(), fullQuery())
	if rec.Patient != nil || !errors.Is(rec.Err("Patient"), ErrNotFound) || len(rec.Errors) != 1 || len(rec.Observations) != 2 {
		t.Errorf("patient %v errors %v obs %d", rec.Patient, rec.Errors, len(rec.Observations))
	}
}

func TestFetchRecordSkipsWhatTheScopeForbids(t *testing.T) {
	srv, rc := newServer(t, ehrHandler(nil))
	q := fullQuery()
	var asked []string
	q.Allowed = func(typ string, i Interaction) bool {
		asked = append(asked, typ+"."+string(i))
		switch typ {
		case "Patient":
			return i == InteractionRead
		case "Observation", "Condition", "MedicationRequest":
			return i == InteractionSearch
		}
		return false
	}
	rec := newClient(srv).FetchRecord(context.Background(), q)
	want := []string{"/fhir/Condition", "/fhir/MedicationRequest", "/fhir/Observation", "/fhir/Patient/p-1"}
	if got := paths(rc.requests()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if fmt.Sprint(asked) != "[Patient.read Observation.search Condition.search MedicationRequest.search MedicationStatement.search Procedure.search Encounter.search]" {
		t.Errorf("Allowed asked %v", asked)
	}
	for _, typ := range []string{"MedicationStatement", "Procedure", "Encounter"} {
		err := rec.Err(typ)
		if !errors.Is(err, ErrScope) || !errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s error = %v, want ErrScope", typ, err)
		}
		if err != nil && !strings.Contains(err.Error(), "not permitted by the granted scope") {
			t.Errorf("%s message = %q", typ, err)
		}
	}
	if len(rec.Errors) != 3 || rec.Patient == nil || len(rec.Conditions) != 1 {
		t.Errorf("errors %v", rec.Errors)
	}
}

func TestFetchRecordDropsOtherPatients(t *testing.T) {
	other := strings.Replace(labObs("x", "718-7", 7, "2025-03-02"), "Patient/p-1", "https://ehr.example/fhir/Patient/p-2", 1)
	group := strings.Replace(labObs("g", "718-7", 7, "2025-03-02"), "Patient/p-1", "Group/p-1", 1)
	contained := strings.Replace(labObs("k", "718-7", 9, "2025-03-02"), "Patient/p-1", "#p", 1)
	logical := strings.Replace(labObs("l", "718-7", 9, "2025-03-02"), `"reference":"Patient/p-1"`, `"identifier":{"value":"p-1"}`, 1)
	absolute := strings.Replace(labObs("a", "718-7", 11, "2025-03-02"), "Patient/p-1", "https://ehr.example/fhir/Patient/p-1", 1)
	none := strings.Replace(labObs("n", "718-7", 6, "2025-03-02"), subjectP1+",", "", 1)
	if strings.Contains(none, "subject") {
		t.Fatalf("the subject-less observation has a subject: %s", none)
	}
	srv, _ := newServer(t, ehrHandler(map[string]http.HandlerFunc{
		"/fhir/Observation": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, bundle("", labObs("hb1", "718-7", 12, "2025-03-01"), other, group, contained, logical, absolute, none))
		},
	}))
	rec := newClient(srv).FetchRecord(context.Background(), fullQuery())
	if len(rec.Observations) != 2 || rec.Observations[0].ID != "hb1" || rec.Observations[1].ID != "a" {
		t.Errorf("observations = %+v", rec.Observations)
	}
	err := rec.Err("Observation")
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "5 resources about another patient, or naming no patient") {
		t.Errorf("err = %v", err)
	}
}

func TestFetchRecordPatientMismatchAndBadID(t *testing.T) {
	srv, rc := newServer(t, ehrHandler(map[string]http.HandlerFunc{
		"/fhir/Patient/p-1": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"Patient","id":"p-2"}`)
		},
	}))
	rec := newClient(srv).FetchRecord(context.Background(), fullQuery())
	if rec.Patient != nil || !errors.Is(rec.Err("Patient"), ErrBadResponse) {
		t.Errorf("patient %+v err %v", rec.Patient, rec.Err("Patient"))
	}
	before := len(rc.requests())
	q := fullQuery()
	q.Patient = "p-1&_has=x"
	rec = newClient(srv).FetchRecord(context.Background(), q)
	if len(rc.requests()) != before {
		t.Errorf("requests were sent for an invalid patient id")
	}
	if len(rec.Errors) != len(q.Plan()) {
		t.Errorf("errors = %v", rec.Errors)
	}
}

func TestFetchRecordTruncatedAndOutcomes(t *testing.T) {
	srv, _ := newServer(t, ehrHandler(map[string]http.HandlerFunc{
		"/fhir/Observation": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"resourceType":"Bundle","link":[{"relation":"next","url":"/fhir/Observation?page=2"}],"entry":[{"resource":`+
				labObs("hb1", "718-7", 12, "2025-03-01")+`},{"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"informational","diagnostics":"partial"}]},"search":{"mode":"outcome"}}]}`)
		},
	}))
	c := newClient(srv)
	c.MaxPages = 1
	rec := c.FetchRecord(context.Background(), fullQuery())
	if !rec.Truncated["Observation"] || len(rec.Truncated) != 1 || len(rec.Errors) != 0 {
		t.Errorf("truncated %v errors %v", rec.Truncated, rec.Errors)
	}
	if o := rec.Outcomes["Observation"]; len(o) != 1 || o[0].Text() != "partial" {
		t.Errorf("outcomes %v", rec.Outcomes)
	}
}

func TestRecordMedications(t *testing.T) {
	srv, _ := newServer(t, ehrHandler(nil))
	rec := newClient(srv).FetchRecord(context.Background(), fullQuery())
	const rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
	want := map[string][]string{
		"mr1": {"855332", "11289"}, // included Medication: product, then ingredient
		"mr2": {"5640"},            // contained
		"mr3": {"1191"},            // inline concept
		"mr4": nil,                 // not included: unknown
	}
	for i := range rec.MedicationRequests {
		m := &rec.MedicationRequests[i]
		concepts, ok := rec.RequestMedication(m)
		var codes []string
		for _, c := range concepts {
			code, _ := c.Code(rx)
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != fmt.Sprint(want[m.ID]) || ok != (want[m.ID] != nil) {
			t.Errorf("%s: codes %v ok %v, want %v", m.ID, codes, ok, want[m.ID])
		}
	}
	if len(rec.MedicationRequests) != 4 {
		t.Fatalf("medication requests = %d", len(rec.MedicationRequests))
	}
	if r := rec.MedicationRequests[0].DosageInstruction[0].Route; r == nil || !r.Has("http://snomed.info/sct", "26643006") {
		t.Errorf("route = %+v", r)
	}
	concepts, ok := rec.StatementMedication(&rec.MedicationStatements[0])
	if !ok || !concepts[0].Has(rx, "1364430") {
		t.Errorf("statement medication = %v %v", concepts, ok)
	}
	for _, key := range []string{"Medication/warfarin", "https://ehr.example/fhir/Medication/warfarin", "Medication/apixaban"} {
		if rec.Medications[key] == nil {
			t.Errorf("Medications[%q] missing", key)
		}
	}
	// An absolute reference resolves through the Type/id tail.
	abs := &MedicationRequest{MedicationReference: &Reference{Reference: "https://ehr.example/fhir/Medication/apixaban/_history/2"}}
	if c, ok := rec.RequestMedication(abs); !ok || !c[0].Has(rx, "1364430") {
		t.Errorf("absolute reference: %v %v", c, ok)
	}
}

// BenchmarkFetchRecord measures one whole assessment fetch against a local
// server holding a busy record: 120 labs, 40 conditions, 15 medication
// requests with 15 included Medications, 30 procedures, 10 encounters.
func BenchmarkFetchRecord(b *testing.B) {
	var labs, conds, procs, encs []string
	for i := range 120 {
		labs = append(labs, labObs(fmt.Sprint("o", i), labCodes[i%2].Code, 10+float64(i%50)/10, "2025-03-01T08:00:00Z"))
	}
	for i := range 40 {
		conds = append(conds, strings.Replace(testCondition, `"c1"`, fmt.Sprintf(`"c%d"`, i), 1))
	}
	var medEntries []string
	for i := range 15 {
		medEntries = append(medEntries,
			fmt.Sprintf(`{"resource":{"resourceType":"MedicationRequest","id":"mr%d",%s,"status":"active","intent":"order","medicationReference":{"reference":"Medication/m%d"},"dosageInstruction":[{"text":"1 tab daily","route":{"coding":[{"system":"http://snomed.info/sct","code":"26643006"}]},"timing":{"repeat":{"frequency":1,"period":1,"periodUnit":"d"}}}]},"search":{"mode":"match"}}`, i, subjectP1, i),
			fmt.Sprintf(`{"fullUrl":"https://ehr.example/fhir/Medication/m%d","resource":{"resourceType":"Medication","id":"m%d","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"855332"}]}},"search":{"mode":"include"}}`, i, i))
	}
	for i := range 30 {
		procs = append(procs, strings.Replace(testProcedure, `"pr1"`, fmt.Sprintf(`"pr%d"`, i), 1))
	}
	for i := range 10 {
		encs = append(encs, strings.Replace(testEncounter, `"e1"`, fmt.Sprintf(`"e%d"`, i), 1))
	}
	bodies := map[string][]byte{
		"/fhir/Patient/p-1":         []byte(testPatient),
		"/fhir/Observation":         []byte(bundle("", labs...)),
		"/fhir/Condition":           []byte(bundle("", conds...)),
		"/fhir/MedicationRequest":   []byte(`{"resourceType":"Bundle","type":"searchset","entry":[` + strings.Join(medEntries, ",") + `]}`),
		"/fhir/MedicationStatement": []byte(statementBundle),
		"/fhir/Procedure":           []byte(bundle("", procs...)),
		"/fhir/Encounter":           []byte(bundle("", encs...)),
	}
	total := 0
	for _, v := range bodies {
		total += len(v)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write(bodies[r.URL.Path])
	}))
	defer srv.Close()
	c := newClient(srv)
	q := fullQuery()
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		rec := c.FetchRecord(context.Background(), q)
		if len(rec.Errors) != 0 || len(rec.Observations) != 120 {
			b.Fatalf("errors %v, %d observations", rec.Errors, len(rec.Observations))
		}
	}
}

// TestFetchRecordBounds: one byte budget across every search and page, a
// per-response cap and an entries-per-search cap; what was not read is
// marked (Truncated, or an error whose message says so), and the rest of
// the record is kept.
func TestFetchRecordBounds(t *testing.T) {
	obsPage := func(n, page int, next bool) string {
		rs := make([]string, n)
		for i := range rs {
			rs[i] = labObs(fmt.Sprintf("o%d-%d", page, i), "718-7", 12, "2025-03-01")
		}
		nx := ""
		if next {
			nx = fmt.Sprintf("/fhir/Observation?page=%d", page+1)
		}
		return bundle(nx, rs...)
	}
	pageBytes := int64(len(obsPage(50, 1, true)))
	paged := func(w http.ResponseWriter, r *http.Request) {
		page := 1
		fmt.Sscan(r.URL.Query().Get("page"), &page)
		writeJSON(w, 200, obsPage(50, page, page < 10))
	}
	for _, tt := range []struct {
		name          string
		edit          func(c *Client)
		wantObs       int
		wantTruncated bool
		wantErr       string // in the Observation error's Message
		wantPages     int
	}{
		{"no caps reached", func(c *Client) {}, 500, false, "", 10},
		{"entries per search", func(c *Client) { c.MaxEntries = 120 }, 120, true, "", 3},
		{"entries per search, reached at a page's end", func(c *Client) { c.MaxEntries = 100 }, 100, true, "", 2},
		{"record budget spent after two pages", func(c *Client) { c.MaxRecordBytes = 2*pageBytes + pageBytes/2 + 8<<10 }, 100, true, "", 3},
		{"first page over the per-response cap", func(c *Client) { c.MaxResponseBytes = pageBytes - 1 }, 0, false, "larger than SMART Calc reads", 1},
		{"budget too small for the first page", func(c *Client) { c.MaxRecordBytes = 8 << 10 }, 0, false, "larger than SMART Calc reads", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, rc := newServer(t, ehrHandler(map[string]http.HandlerFunc{"/fhir/Observation": paged}))
			c := newClient(srv)
			tt.edit(c)
			rec := c.FetchRecord(context.Background(), fullQuery())
			if len(rec.Observations) != tt.wantObs || rec.Truncated["Observation"] != tt.wantTruncated {
				t.Errorf("observations %d truncated %v, want %d %v", len(rec.Observations), rec.Truncated["Observation"], tt.wantObs, tt.wantTruncated)
			}
			var e *Error
			err := rec.Err("Observation")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Observation error %v", err)
			case tt.wantErr != "" && (!errors.As(err, &e) || !e.TooLarge || !errors.Is(err, ErrBadResponse) || !strings.Contains(e.Message(), tt.wantErr)):
				t.Errorf("Observation error %v, want TooLarge saying %q", err, tt.wantErr)
			}
			pages := 0
			for _, r := range rc.requests() {
				if r.Path == "/fhir/Observation" {
					pages++
				}
			}
			if pages != tt.wantPages {
				t.Errorf("Observation pages fetched = %d, want %d", pages, tt.wantPages)
			}
			if rec.Patient == nil || len(rec.Conditions) != 1 {
				t.Errorf("the rest of the record was lost: patient %v conditions %d errors %v", rec.Patient, len(rec.Conditions), rec.Errors)
			}
		})
	}
}

// signalBody calls onRead before each Read (with the bytes read so far) and
// onClose once it is closed.
type signalBody struct {
	io.ReadCloser
	n       int64
	onRead  func(n int64)
	onClose func()
}

func (b *signalBody) Read(p []byte) (int, error) {
	b.onRead(b.n)
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *signalBody) Close() error {
	b.onClose()
	return b.ReadCloser.Close()
}

// TestFetchRecordBudgetHeldByADroppedPage: a page that cannot fit the
// record budget is dropped, and while it is being read it must not make
// the record's other searches fail. The order is forced: the Condition
// search is answered only once the client has read more of the Observation
// page than the whole budget, and the Observation page ends only once the
// Condition response has been read.
func TestFetchRecordBudgetHeldByADroppedPage(t *testing.T) {
	const budget = 8 << 10
	page := bundle("", func() []string {
		rs := make([]string, 60)
		for i := range rs {
			rs[i] = labObs(fmt.Sprintf("o%d", i), "718-7", 12, "2025-03-01")
		}
		return rs
	}()...)
	if len(page) < 2*budget {
		t.Fatalf("the Observation page (%d bytes) must be well over the budget", len(page))
	}
	// The Observation page's first part leaves less of the budget than
	// the Condition response needs, whatever the other responses took;
	// the record without the Observation page fits the budget.
	others := len(testPatient) + len(medBundle) + len(statementBundle) + len(bundle("", testProcedure)) + len(bundle("", testEncounter))
	first := budget - others - 100
	if cond := len(bundle("", testCondition)); cond <= 100 || others+cond > budget || first <= 0 {
		t.Fatalf("sizes: others %d, condition %d, budget %d: the forced order proves nothing", others, cond, budget)
	}
	obsOverBudget, condDone := make(chan struct{}), make(chan struct{})
	var overOnce, condOnce sync.Once
	wait := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Errorf("the forced order broke: %s never happened", what)
		}
	}
	srv, _ := newServer(t, ehrHandler(map[string]http.HandlerFunc{
		"/fhir/Observation": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(200)
			fmt.Fprint(w, page[:first])
			w.(http.Flusher).Flush()
			wait(condDone, "the Condition response was read")
			fmt.Fprint(w, page[first:])
		},
		"/fhir/Condition": func(w http.ResponseWriter, r *http.Request) {
			wait(obsOverBudget, "the client read the first part of the Observation page")
			writeJSON(w, 200, bundle("", testCondition))
		},
	}))
	c := newClient(srv)
	c.MaxRecordBytes = budget
	base := srv.Client().Transport
	c.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if err != nil {
			return resp, err
		}
		switch r.URL.Path {
		case "/fhir/Observation":
			resp.Body = &signalBody{ReadCloser: resp.Body, onClose: func() {},
				onRead: func(n int64) {
					if n >= int64(first) {
						overOnce.Do(func() { close(obsOverBudget) })
					}
				}}
		case "/fhir/Condition":
			resp.Body = &signalBody{ReadCloser: resp.Body, onRead: func(int64) {},
				onClose: func() { condOnce.Do(func() { close(condDone) }) }}
		}
		return resp, nil
	})}
	rec := c.FetchRecord(context.Background(), fullQuery())
	var e *Error
	if err := rec.Err("Observation"); !errors.As(err, &e) || !e.TooLarge {
		t.Errorf("Observation error %v, want TooLarge", err)
	}
	if len(rec.Observations) != 0 {
		t.Errorf("%d observations kept from the dropped page", len(rec.Observations))
	}
	if err := rec.Err("Condition"); err != nil || len(rec.Conditions) != 1 {
		t.Errorf("the Condition search, read while the dropped page was being read: %d conditions, error %v", len(rec.Conditions), err)
	}
	if rec.Patient == nil {
		t.Errorf("the patient was lost: %v", rec.Errors)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
