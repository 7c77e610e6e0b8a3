package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Interaction is the kind of FHIR request, as SMART scopes grant them: "r"
// (read) and "s" (search) in v2 scopes; v1 ".read" grants both.
type Interaction string

// The interactions FetchRecord uses.
const (
	InteractionRead   Interaction = "read"
	InteractionSearch Interaction = "search"
)

// DefaultCount is the _count FetchRecord asks for when Query.Count is 0.
const DefaultCount = 200

// Query says what FetchRecord fetches for one assessment.
type Query struct {
	// Patient is the launch context's patient id.
	Patient string
	// ObservationCodes are the lab and vital codes the mapping uses, all sent
	// in the one Observation search (code=system|code,system|code,…). With
	// none, no Observation search is made.
	ObservationCodes []Coding
	// Since bounds the Observation search (date=ge…): the lab lookback. Zero
	// means no bound. Conditions, medications and procedures are never
	// bounded: prior bleeding counts "at any time if recurrent".
	Since time.Time
	// MedicationStatements adds the MedicationStatement search. The server's
	// CapabilityStatement is not fetched; the caller decides (for example
	// from the granted scope, or a per-EHR setting).
	MedicationStatements bool
	// Encounters adds a search for inpatient Encounters (class IMP, ACUTE,
	// NONAC), which tell the mapping whether a bleed needed hospitalisation
	// (ARC-HBR prior bleeding). Without it, the hospitalisation part of that
	// criterion is left to transfusion Procedures and to the clinician. It is
	// off by default; the assessment turns it on when the granted scope
	// allows Encounter search (the recommended scopes do).
	Encounters bool
	// Count is the _count page size for every search; 0 means DefaultCount.
	Count int
	// Allowed reports whether the granted scope permits an interaction on a
	// resource type. A request it refuses is not sent; the Record holds an
	// ErrScope error for that type instead. nil permits everything.
	Allowed func(resourceType string, i Interaction) bool
}

// Request is one request of a Query's plan.
type Request struct {
	Interaction Interaction
	Type        string
	// ID is the resource id of a read.
	ID string
	// Params are the search parameters of a search.
	Params url.Values
}

// Plan returns the requests FetchRecord sends for q, in a fixed order:
// Patient read, then the Observation, Condition, MedicationRequest,
// MedicationStatement, Procedure and Encounter searches that q calls for. It
// does not consult Allowed.
func (q Query) Plan() []Request {
	count := strconv.Itoa(q.count())
	reqs := []Request{{Interaction: InteractionRead, Type: "Patient", ID: q.Patient}}
	search := func(typ string, kv ...string) {
		p := url.Values{"patient": {q.Patient}}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Set(kv[i], kv[i+1])
		}
		p.Set("_count", count)
		reqs = append(reqs, Request{Interaction: InteractionSearch, Type: typ, Params: p})
	}
	if len(q.ObservationCodes) > 0 {
		tokens := make([]string, len(q.ObservationCodes))
		for i, c := range q.ObservationCodes {
			tokens[i] = SearchToken(c.System, c.Code)
		}
		kv := []string{"code", strings.Join(tokens, ","), "_sort", "-date"}
		if !q.Since.IsZero() {
			kv = append(kv, "date", "ge"+q.Since.UTC().Format("2006-01-02T15:04:05Z"))
		}
		search("Observation", kv...)
	}
	search("Condition")
	search("MedicationRequest", "status", "active,on-hold", "_include", "MedicationRequest:medication")
	if q.MedicationStatements {
		search("MedicationStatement", "status", "active", "_include", "MedicationStatement:medication")
	}
	search("Procedure")
	if q.Encounters {
		search("Encounter", "class", strings.Join([]string{
			SearchToken(SystemActCode, "IMP"), SearchToken(SystemActCode, "ACUTE"), SearchToken(SystemActCode, "NONAC")}, ","))
	}
	return reqs
}

func (q Query) count() int {
	if q.Count > 0 {
		return q.Count
	}
	return DefaultCount
}

// tokenEscaper escapes FHIR search's reserved characters inside one token
// part (the search spec's "\," "\|" "\$" "\\").
var tokenEscaper = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `|`, `\|`, `$`, `\$`)

// SearchToken formats a token search value: "system|code", or the bare code when
// system is empty. Reserved characters inside either part are escaped.
func SearchToken(system, code string) string {
	if system == "" {
		return tokenEscaper.Replace(code)
	}
	return tokenEscaper.Replace(system) + "|" + tokenEscaper.Replace(code)
}

// Record is everything FetchRecord read for one assessment.
//
// Errors says, per resource type, why that type is unusable. When a type has
// an error its slice may still hold the resources that were read (a partial
// result, or records shown despite a break-the-glass warning): the mapping may
// use what is there but must not conclude that anything is absent, and marks
// the inputs drawn from that type as missing, or as refused when the error
// matches ErrForbidden.
type Record struct {
	Patient              *Patient
	Observations         []Observation
	Conditions           []Condition
	MedicationRequests   []MedicationRequest
	MedicationStatements []MedicationStatement
	Procedures           []Procedure
	Encounters           []Encounter
	// Medications are the Medication resources the medication searches
	// included (_include), keyed by "Medication/<id>" and by full URL.
	// Resolve references with RequestMedication and StatementMedication.
	Medications map[string]*Medication
	// Errors holds one error per resource type that failed, was refused, or
	// was not permitted by the scope (ErrScope, not fetched). Types that were
	// not requested have no entry.
	Errors map[string]error
	// Truncated marks the types whose search had more pages than the client
	// reads: the oldest records are missing.
	Truncated map[string]bool
	// Outcomes are the OperationOutcome warnings the searches returned.
	Outcomes map[string][]OperationOutcome
}

// Err returns the error for a resource type, or nil.
func (r *Record) Err(typ string) error { return r.Errors[typ] }

// FetchRecord sends every request of q.Plan() at once, and waits for all of
// them: one round trip to the EHR for the whole assessment. Each request's
// failure stays in Record.Errors under its resource type and leaves the other
// types usable. Resources whose subject is another patient are dropped and
// reported as ErrBadResponse. FetchRecord never returns nil.
func (c *Client) FetchRecord(ctx context.Context, q Query) *Record {
	rec := &Record{Errors: map[string]error{}, Truncated: map[string]bool{}, Outcomes: map[string][]OperationOutcome{}}
	ctx = context.WithValue(ctx, budgetKey{}, &budget{total: c.maxRecordBytes()})
	plan := q.Plan()
	if !validID(q.Patient) {
		for _, r := range plan {
			rec.Errors[r.Type] = &Error{Op: string(r.Interaction), Type: r.Type, Err: errors.New("invalid patient id")}
		}
		return rec
	}

	type result struct {
		patient *Patient
		search  *SearchResult
		sink    *recordSink
		err     error
	}
	results := make([]result, len(plan))
	var wg sync.WaitGroup
	for i, r := range plan {
		if q.Allowed != nil && !q.Allowed(r.Type, r.Interaction) {
			results[i].err = &Error{Op: string(r.Interaction), Type: r.Type, Kind: ErrScope}
			continue
		}
		wg.Go(func() {
			if r.Interaction == InteractionRead {
				p := new(Patient)
				if err := c.Read(ctx, r.Type, r.ID, p); err != nil {
					results[i].err = err
					return
				}
				results[i].patient = p
				return
			}
			sink := &recordSink{typ: r.Type, patient: q.Patient, rec: new(Record)}
			results[i].sink = sink
			results[i].search, results[i].err = c.search(ctx, r.Type, r.Params, sink)
		})
	}
	wg.Wait()

	for i, r := range plan {
		res := results[i]
		if res.err != nil {
			rec.Errors[r.Type] = res.err
		}
		if res.patient != nil {
			rec.Patient = res.patient
		}
		if res.search == nil {
			continue
		}
		if res.search.Truncated {
			rec.Truncated[r.Type] = true
		}
		if len(res.search.Outcomes) > 0 {
			rec.Outcomes[r.Type] = res.search.Outcomes
		}
		rec.merge(res.sink.rec)
		if err := res.sink.tally.err(r.Type); err != nil && rec.Errors[r.Type] == nil {
			rec.Errors[r.Type] = err
		}
	}
	return rec
}

// add decodes one search's entries into the Record, as FetchRecord does
// while they stream in.
func (rec *Record) add(typ, patient string, entries []Entry) error {
	s := &recordSink{typ: typ, patient: patient, rec: rec}
	for _, e := range entries {
		s.stage(e)
	}
	s.commit()
	return s.tally.err(typ)
}

// recordSink decodes one search's entries into typed resources as they
// are decoded from the stream, so the record never holds them as JSON. A
// page's resources are staged in a Record of their own and merged when the
// page is kept.
type recordSink struct {
	typ, patient     string
	rec, page        *Record
	tally, pageTally entryTally
}

func (s *recordSink) stage(e Entry) {
	if s.page == nil {
		s.page = new(Record)
	}
	s.page.addEntry(s.typ, s.patient, e, &s.pageTally)
}

func (s *recordSink) commit() {
	s.rec.merge(s.page)
	s.tally.add(s.pageTally)
	s.drop()
}

func (s *recordSink) drop() { s.page, s.pageTally = nil, entryTally{} }

// entryTally counts what one search's entries could not give.
type entryTally struct {
	foreign  int   // about another patient, or naming none: dropped
	bad      int   // entries of the searched type that did not decode
	firstBad error // the first of them
	medErr   error // the first included Medication that did not decode
}

func (t *entryTally) add(o entryTally) {
	t.foreign += o.foreign
	t.bad += o.bad
	if t.firstBad == nil {
		t.firstBad = o.firstBad
	}
	if t.medErr == nil {
		t.medErr = o.medErr
	}
}

// err is the search's error for what its entries could not give: entries
// that did not decode, else resources dropped as another patient's, else an
// included Medication that did not decode.
func (t entryTally) err(typ string) error {
	e := &Error{Op: string(InteractionSearch), Type: typ, Status: http.StatusOK, Kind: ErrBadResponse}
	switch {
	case t.firstBad != nil:
		e.Err = t.firstBad
		if t.bad > 1 {
			e.Err = fmt.Errorf("%w (and %d more)", t.firstBad, t.bad-1)
		}
	case t.foreign > 0:
		e.Err = fmt.Errorf("%d resources about another patient, or naming no patient, were dropped", t.foreign)
	case t.medErr != nil:
		e.Err = t.medErr
	default:
		return nil
	}
	return e
}

// addEntry decodes one entry of a search for typ: a resource of that type
// about the patient is kept, one about another patient (or none) is
// dropped and counted, and an included Medication (which may come with
// either medication search) is kept by reference. Other types are ignored.
func (rec *Record) addEntry(typ, patient string, e Entry, t *entryTally) {
	if e.ResourceType == "Medication" {
		m := new(Medication)
		if err := json.Unmarshal(e.Resource, m); err != nil {
			if t.medErr == nil {
				t.medErr = fmt.Errorf("Medication/%s: %w", e.ID, jsonError(err))
			}
			return
		}
		if rec.Medications == nil {
			rec.Medications = map[string]*Medication{}
		}
		if m.ID != "" {
			rec.Medications["Medication/"+m.ID] = m
		}
		if e.FullURL != "" {
			rec.Medications[e.FullURL] = m
		}
		return
	}
	if e.ResourceType != typ {
		return
	}
	var foreign bool
	var err error
	switch typ {
	case "Observation":
		foreign, err = keepOne(&rec.Observations, e.Resource, patient, func(o *Observation) *Reference { return o.Subject })
	case "Condition":
		foreign, err = keepOne(&rec.Conditions, e.Resource, patient, func(o *Condition) *Reference { return o.Subject })
	case "MedicationRequest":
		foreign, err = keepOne(&rec.MedicationRequests, e.Resource, patient, func(o *MedicationRequest) *Reference { return o.Subject })
	case "MedicationStatement":
		foreign, err = keepOne(&rec.MedicationStatements, e.Resource, patient, func(o *MedicationStatement) *Reference { return o.Subject })
	case "Procedure":
		foreign, err = keepOne(&rec.Procedures, e.Resource, patient, func(o *Procedure) *Reference { return o.Subject })
	case "Encounter":
		foreign, err = keepOne(&rec.Encounters, e.Resource, patient, func(o *Encounter) *Reference { return o.Subject })
	}
	if err != nil {
		t.bad++
		if t.firstBad == nil {
			t.firstBad = fmt.Errorf("%s/%s: %w", typ, e.ID, jsonError(err))
		}
	}
	if foreign {
		t.foreign++
	}
}

// merge appends another Record's resources (one search's) to rec.
func (rec *Record) merge(o *Record) {
	if o == nil {
		return
	}
	rec.Observations = append(rec.Observations, o.Observations...)
	rec.Conditions = append(rec.Conditions, o.Conditions...)
	rec.MedicationRequests = append(rec.MedicationRequests, o.MedicationRequests...)
	rec.MedicationStatements = append(rec.MedicationStatements, o.MedicationStatements...)
	rec.Procedures = append(rec.Procedures, o.Procedures...)
	rec.Encounters = append(rec.Encounters, o.Encounters...)
	for k, m := range o.Medications {
		if rec.Medications == nil {
			rec.Medications = map[string]*Medication{}
		}
		rec.Medications[k] = m
	}
}

// keepOne decodes one resource and appends it to dst when its subject is
// Patient/<patient>. A resource of these patient-compartment types with no
// subject, or one that cannot be parsed (contained, logical, urn:), is not
// provably the session patient's, so it is dropped like one about another
// patient (foreign).
func keepOne[T any](dst *[]T, raw json.RawMessage, patient string, subject func(*T) *Reference) (foreign bool, err error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, err
	}
	s := subject(&v)
	if s == nil {
		return true, nil
	}
	if typ, id, ok := s.Target(); !ok || typ != "Patient" || id != patient {
		return true, nil
	}
	*dst = append(*dst, v)
	return false, nil
}

// RequestMedication returns the concepts that name m's drug: its
// medicationCodeableConcept, or else the code of the Medication that its
// medicationReference resolves to (contained, or included in the search)
// followed by that Medication's ingredient concepts, which let the mapping
// match a product on its ingredients. ok is false when the drug cannot be
// identified: the reference does not resolve, or names nothing coded.
func (r *Record) RequestMedication(m *MedicationRequest) (concepts []CodeableConcept, ok bool) {
	return r.medication(m.MedicationCodeableConcept, m.MedicationReference, m.Contained)
}

// StatementMedication is RequestMedication for a MedicationStatement.
func (r *Record) StatementMedication(m *MedicationStatement) (concepts []CodeableConcept, ok bool) {
	return r.medication(m.MedicationCodeableConcept, m.MedicationReference, m.Contained)
}

func (r *Record) medication(cc *CodeableConcept, ref *Reference, contained []json.RawMessage) ([]CodeableConcept, bool) {
	if cc != nil && (len(cc.Coding) > 0 || cc.Text != "") {
		return []CodeableConcept{*cc}, true
	}
	if ref == nil || ref.Reference == "" {
		return nil, false
	}
	var med *Medication
	if id, ok := strings.CutPrefix(ref.Reference, "#"); ok {
		for _, raw := range contained {
			var m Medication
			if json.Unmarshal(raw, &m) == nil && m.ResourceType == "Medication" && m.ID == id {
				med = &m
				break
			}
		}
	} else if m := r.Medications[ref.Reference]; m != nil {
		med = m
	} else if typ, id, ok := ref.Target(); ok && typ == "Medication" {
		med = r.Medications["Medication/"+id]
	}
	if med == nil {
		return nil, false
	}
	var out []CodeableConcept
	if med.Code != nil {
		out = append(out, *med.Code)
	}
	for _, in := range med.Ingredient {
		if in.ItemCodeableConcept != nil {
			out = append(out, *in.ItemCodeableConcept)
		}
	}
	return out, len(out) > 0
}
