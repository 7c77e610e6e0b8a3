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
	// off by default because the recommended scope set grants no Encounter
	// access.
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
	ctx = context.WithValue(ctx, budgetKey{}, &budget{left: c.maxRecordBytes()})
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
			results[i].search, results[i].err = c.Search(ctx, r.Type, r.Params)
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
		if err := rec.add(r.Type, q.Patient, res.search.Entries); err != nil && rec.Errors[r.Type] == nil {
			rec.Errors[r.Type] = err
		}
	}
	return rec
}

// add decodes one search's entries into the Record.
func (rec *Record) add(typ, patient string, entries []Entry) error {
	var err, derr error
	var foreign int
	switch typ {
	case "Observation":
		var v []Observation
		v, derr = Decode[Observation](entries, typ)
		rec.Observations, foreign = keep(v, patient, func(o *Observation) *Reference { return o.Subject })
	case "Condition":
		var v []Condition
		v, derr = Decode[Condition](entries, typ)
		rec.Conditions, foreign = keep(v, patient, func(o *Condition) *Reference { return o.Subject })
	case "MedicationRequest":
		var v []MedicationRequest
		v, derr = Decode[MedicationRequest](entries, typ)
		rec.MedicationRequests, foreign = keep(v, patient, func(o *MedicationRequest) *Reference { return o.Subject })
	case "MedicationStatement":
		var v []MedicationStatement
		v, derr = Decode[MedicationStatement](entries, typ)
		rec.MedicationStatements, foreign = keep(v, patient, func(o *MedicationStatement) *Reference { return o.Subject })
	case "Procedure":
		var v []Procedure
		v, derr = Decode[Procedure](entries, typ)
		rec.Procedures, foreign = keep(v, patient, func(o *Procedure) *Reference { return o.Subject })
	case "Encounter":
		var v []Encounter
		v, derr = Decode[Encounter](entries, typ)
		rec.Encounters, foreign = keep(v, patient, func(o *Encounter) *Reference { return o.Subject })
	}
	if derr != nil {
		var e *Error
		if errors.As(derr, &e) {
			e.Op, e.Status = string(InteractionSearch), http.StatusOK
		}
		err = derr
	}
	if foreign > 0 && err == nil {
		err = &Error{Op: string(InteractionSearch), Type: typ, Status: http.StatusOK, Kind: ErrBadResponse,
			Err: fmt.Errorf("%d resources about another patient, or naming no patient, were dropped", foreign)}
	}
	// Included Medications may come with either medication search.
	for _, e := range entries {
		if e.ResourceType != "Medication" {
			continue
		}
		m := new(Medication)
		if jerr := json.Unmarshal(e.Resource, m); jerr != nil {
			if err == nil {
				err = &Error{Op: string(InteractionSearch), Type: typ, Status: http.StatusOK, Kind: ErrBadResponse,
					Err: fmt.Errorf("Medication/%s: %w", e.ID, jsonError(jerr))}
			}
			continue
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
	}
	return err
}

// keep keeps the resources whose subject is Patient/<patient>. A resource
// of these patient-compartment types with no subject, or one that cannot be
// parsed (contained, logical, urn:), is not provably the session patient's,
// so it is dropped like one about another patient.
func keep[T any](v []T, patient string, subject func(*T) *Reference) ([]T, int) {
	out := v[:0]
	dropped := 0
	for i := range v {
		s := subject(&v[i])
		if s == nil {
			dropped++
			continue
		}
		if typ, id, ok := s.Target(); !ok || typ != "Patient" || id != patient {
			dropped++
			continue
		}
		out = append(out, v[i])
	}
	if len(out) == 0 {
		return nil, dropped
	}
	return out, dropped
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
