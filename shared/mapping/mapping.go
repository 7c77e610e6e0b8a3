package mapping

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// DefaultLabLookback is how old an Observation may be and still be used
// when MapOptions.LabLookback is zero: one year. Values older than the
// configuration's fhir.lookback_days (90 days) are used but marked stale.
const DefaultLabLookback = 365 * 24 * time.Hour

// MapOptions tune MapRecord. The zero value is the default behaviour.
type MapOptions struct {
	// LabLookback is the maximum age of an Observation that is used at all
	// (labs, weight, smoking status, NIHSS); 0 means DefaultLabLookback.
	// RecordQuery bounds the Observation search with the same window.
	LabLookback time.Duration
	// AskRecentSurgery makes "recent major surgery or trauma" a question for
	// the clinician even when the record shows no procedure and no injury
	// in the last 30 days. By default such a record answers false, like
	// every other criterion decided from the absence of a Condition (see
	// MapRecord).
	AskRecentSurgery bool
}

func (o MapOptions) labLookback() time.Duration {
	if o.LabLookback > 0 {
		return o.LabLookback
	}
	return DefaultLabLookback
}

// RecordQuery returns the FHIR query MapRecord needs for one assessment:
// the patient, every Observation code the mapping reads (labs with their
// alternates, smoking status, NIHSS) and the lab lookback as the
// Observation search's lower date bound. The caller sets the fields that
// depend on the EHR and the granted scope: MedicationStatements,
// Encounters, Count and Allowed.
func RecordQuery(cfg *calc.Config, patient string, now time.Time, opts MapOptions) fhir.Query {
	q := fhir.Query{Patient: patient, Since: now.Add(-opts.labLookback())}
	seen := map[string]bool{}
	add := func(list []calc.Coding) {
		for _, c := range list {
			uri := cfg.Codes.Systems[c.System]
			if k := uri + "|" + c.Code; uri != "" && !seen[k] {
				seen[k] = true
				q.ObservationCodes = append(q.ObservationCodes, fhir.Coding{System: uri, Code: c.Code})
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Codes.Labs)) {
		add(cfg.Codes.Labs[k].Codes)
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Codes.Observations)) {
		add(cfg.Codes.Observations[k].Codes)
	}
	return q
}

// GapReason says why the record gave no value for an input.
type GapReason string

// Gap reasons. Refused is a permission refusal, never missing data.
const (
	// GapNotRecorded: the record, read in full, holds no usable value (no
	// hemoglobin in the lookback window, no sex).
	GapNotRecorded GapReason = "not-recorded"
	// GapConfirm: the record holds something the clinician must confirm
	// before it counts: a value without a known unit, a bleed without
	// evidence of hospitalisation or transfusion, a drug whose route or
	// duration is unknown, an undated event near a time window's edge.
	GapConfirm GapReason = "needs-confirmation"
	// GapAsk: the record cannot tell by design (non-deferrable surgery,
	// complex PCI, a procedure that may be major surgery): ask.
	GapAsk GapReason = "ask"
	// GapRefused: the EHR refused access to the records the input comes
	// from, or the granted scope does not cover them.
	GapRefused GapReason = "refused"
	// GapUnavailable: the search failed (5xx, timeout, unusable answer) or
	// returned more pages than are read, so absence cannot be concluded.
	GapUnavailable GapReason = "unavailable"
)

// Gap is an input the mapping left unset, and why. Evidence lists the
// records the clinician should look at. MapRecord also gives the input
// no value but Message as its note in CalcInputs, so that the calculators
// say why they cannot decide.
type Gap struct {
	Input        string        `json:"input"`
	Reason       GapReason     `json:"reason"`
	Message      message.Msg   `json:"message"`
	ResourceType string        `json:"resource_type,omitempty"` // the failed search, for refused and unavailable
	Evidence     []calc.Source `json:"evidence,omitempty"`
}

// DataErrorKind classifies a failed FHIR search.
type DataErrorKind string

// Data error kinds.
const (
	DataRefused      DataErrorKind = "refused"      // 403: the EHR refused access (fhir.ErrForbidden)
	DataScope        DataErrorKind = "scope"        // the granted scope does not allow it (fhir.ErrScope)
	DataUnauthorized DataErrorKind = "unauthorized" // the token was refused (fhir.ErrUnauthorized): relaunch
	DataUnavailable  DataErrorKind = "unavailable"  // 5xx, 429, timeout, network (fhir.ErrUnavailable)
	DataUnusable     DataErrorKind = "unusable"     // anything else: a malformed answer, a 4xx
)

// DataError is one resource type the record could not be read for.
type DataError struct {
	ResourceType string        `json:"resource_type"`
	Kind         DataErrorKind `json:"kind"`
	// BreakTheGlass is a refusal the EHR lifts with break-the-glass
	// access; TooLarge, an answer larger than SMART Calc reads.
	BreakTheGlass bool `json:"break_the_glass,omitempty"`
	TooLarge      bool `json:"too_large,omitempty"`
	// Message says it for a person: "Not available: the EHR refused
	// access to the problem list."
	Message message.Msg `json:"message"`
	// EHRSaid is the EHR's own OperationOutcome text, verbatim, for
	// support; it is not part of Message.
	EHRSaid string `json:"ehr_said,omitempty"`
	// Inputs are the inputs left unset because of it.
	Inputs []string `json:"inputs,omitempty"`
	Err    error    `json:"-"`
}

// Refused reports whether the error is a permission refusal (403 or
// scope), which the UI reports as such and never as missing data.
func (d DataError) Refused() bool { return d.Kind == DataRefused || d.Kind == DataScope }

// MedicationFinding is whether a kind of drug is in the active medication
// list. Present is nil when the medication searches failed and nothing was
// found in what was read.
type MedicationFinding struct {
	Present *bool         `json:"present"`
	Sources []calc.Source `json:"sources,omitempty"`
	// Excluded are matching drugs that do not count, with the reason in
	// Display (rivaroxaban 2.5 mg, a vascular-protection dose).
	Excluded []calc.Source `json:"excluded,omitempty"`
}

// DAPT is dual antiplatelet therapy in the active medication list: aspirin
// plus a P2Y12 inhibitor (clopidogrel, prasugrel or ticagrelor).
type DAPT struct {
	Present *bool         `json:"present"`
	Aspirin []calc.Source `json:"aspirin,omitempty"`
	P2Y12   []calc.Source `json:"p2y12,omitempty"`
}

// Mapped is a patient's FHIR record mapped to the inputs of every
// calculator at once.
type Mapped struct {
	// Inputs are the values found, each with its origin (record) and
	// source; booleans drawn from several records list them in Evidence.
	// eGFR and creatinine clearance are left to the engine to derive from
	// creatinine when no usable CKD-EPI eGFR is reported.
	Inputs calc.Inputs `json:"-"`
	// Gaps are the inputs left unset that the record or the clinician can
	// resolve, by input name. Inputs the engine derives (egfr, crcl,
	// arc_hbr_other) only appear when something blocks the derivation.
	Gaps []Gap `json:"gaps"`
	// NeedsConfirmation names the inputs whose gap is GapConfirm.
	NeedsConfirmation []string `json:"needs_confirmation"`
	// Warnings are for a person, one per problem and input: stale values,
	// values not used, the EHR's OperationOutcome warnings, searches cut
	// short. Reads that failed are DataErrors (the assessment warns of
	// them, grouped).
	Warnings []calc.Warning `json:"warnings"`
	// DataErrors are the resource types that could not be read, in type
	// order.
	DataErrors []DataError `json:"data_errors"`
	// OralAnticoagulant is long-term oral anticoagulation (the
	// oral_anticoagulation input's finding).
	OralAnticoagulant MedicationFinding `json:"oral_anticoagulant"`
	// DAPT is aspirin plus a P2Y12 inhibitor, for the CDS Hooks services.
	DAPT DAPT `json:"dapt"`
	// Regimen is the active antithrombotic drugs, each with its source and
	// the ingredient it resolves to (the summary's regimen).
	Regimen calc.Regimen `json:"regimen"`
	// IndexPCI is the index PCI as a Procedure shows it (the newest PCI
	// within procedures.pci.window_months), nil when none does.
	IndexPCI *calc.Source `json:"index_pci"`
}

// CalcInputs returns the calculators' inputs: the values found, and for
// each gap an input without a value that says why (origin unavailable,
// absent or asked, the gap's message as its note), so that a criterion
// the record cannot decide says what could not be read or what is asked.
func (m *Mapped) CalcInputs() calc.Inputs {
	out := make(calc.Inputs, len(m.Inputs)+len(m.Gaps))
	for _, g := range m.Gaps {
		out[g.Input] = calc.Input{Origin: gapOrigin(g.Reason), Note: g.Message, Evidence: g.Evidence}
	}
	for k, v := range m.Inputs {
		out[k] = v
	}
	return out
}

// Gap returns the gap of an input.
func (m *Mapped) Gap(input string) (Gap, bool) {
	for _, g := range m.Gaps {
		if g.Input == input {
			return g, true
		}
	}
	return Gap{}, false
}

// MapRecord maps a patient's record, as fhir.Client.FetchRecord read it, to
// the inputs of every calculator, as of now (the assessment time; ages,
// staleness and time windows are computed from it). It never fails: what
// it cannot map is a Gap, a warning or a DataError. It does no I/O.
//
// Rules (shared/calc/SOURCES.md §2, §6, §7):
//
//   - Observations: final, amended or corrected only (fhir.observation_status),
//     matched on the LOINC code and its alternates (codes.labs). The newest
//     result with a value decides; results older than the lab lookback are
//     not used, and results older than fhir.lookback_days are used but
//     marked stale with a warning. The unit is the UCUM code (else the unit
//     text) converted by the configuration; a value without a unit, with a
//     unit the configuration does not convert, or with a comparator ("<5")
//     is not used: the input needs confirmation.
//   - eGFR: a reported CKD-EPI eGFR (codes.labs.egfr.codes; never MDRD or
//     method-less codes) is used unless a newer creatinine exists; otherwise
//     eGFR is left for the engine to compute with CKD-EPI 2021 from the
//     newest creatinine (origin "derived"). A reported ">90" is used as 90,
//     with a warning, only when there is no creatinine to compute from.
//   - Conditions: matched on SNOMED CT and ICD-10-CM codes (ICD-10-CM
//     descendants by prefix; SNOMED descendants only as listed in the
//     configuration: there is no terminology server). Refuted and
//     entered-in-error conditions never count. Chronic criteria need a
//     current condition (clinical status active, recurrence or relapse, or
//     none recorded and not abated); events (bleeding, haemorrhage, stroke,
//     MI) count whatever their clinical status. The date is the onset, else
//     the recorded date; a partial date that straddles a window's edge, or
//     no date where a window applies, needs confirmation.
//   - Absence: a criterion is false from the absence of matching records
//     only when every search it depends on succeeded and was not truncated.
//     Otherwise it is a Gap naming the failure: GapRefused for a permission
//     refusal (403 or scope), GapUnavailable for anything else. Records
//     found in a partial result still count.
//   - Prior bleeding (ARC-HBR bleeding_history; PRECISE prior_bleeding): a
//     bleeding condition counts only when a transfusion Procedure or an
//     inpatient Encounter supports it (same encounter, a reason code, or
//     overlapping dates). Without support the clinician is asked (met:
//     null). Major: a supported bleed within 6 months, two supported
//     episodes (recurrent) or a supported condition in recurrence or
//     relapse; minor: one supported episode 6 to 12 months ago.
//   - Active malignancy: a current malignancy (not C44 or its SNOMED
//     equivalents, not Z85) with onset within 12 months. A current
//     malignancy diagnosed earlier may still be under treatment: asked.
//   - Ischaemic stroke: major within 6 months with NIHSS ≥5 (an NIHSS
//     Observation's valueQuantity, or R29.705-R29.742, from 2 days before to
//     30 days after the onset); asked when recent and no NIHSS is recorded;
//     minor otherwise.
//   - Recent major surgery or trauma (hard to automate, reference §7c): a
//     procedure in the configured major-surgery set within 30 days is met;
//     any other procedure (not PCI or angiography, not a non-surgical
//     category) or an injury (S, T) within 30 days makes it a question;
//     none gives false (or a question with MapOptions.AskRecentSurgery).
//     Non-deferrable major surgery is a plan no searched record shows:
//     always asked.
//   - Medications: active MedicationRequests (status active or on-hold,
//     intent order or plan or an order sub-type) and active
//     MedicationStatements, identified by their coding or their referenced
//     Medication's code and ingredients (RxNorm ingredient or product, ATC).
//     Aspirin is never an NSAID. NSAIDs count on the oral route, steroids on
//     a systemic route; inhaled, nasal, topical, ophthalmic and similar
//     routes never count; an unknown route, or a schedule or duration that
//     does not show planned use on ≥4 days a week for ≥30 days, is asked.
//     Rivaroxaban 2.5 mg (the vascular-protection dose) is not long-term
//     OAC. A drug without a readable code is named in a warning and not
//     counted.
//   - Presentation of the index PCI (pci_presentation; no calculator weighs
//     it, the guideline plan follows it). The index PCI is the newest
//     Procedure in procedures.pci (PCI, coronary stent: SNOMED CT, CPT,
//     ICD-10-PCS) performed within its window (12 months); its date is the
//     PCI date (Mapped.IndexPCI). "acs" when a condition in
//     conditions.acs-presentation (ICD-10-CM I21, I22, I24 but not
//     Dressler's syndrome I24.1, I20.0, I25.110, I25.7x0; SNOMED CT acute
//     MI, STEMI, NSTEMI, acute coronary syndrome, unstable angina), in any
//     clinical status, is linked to the PCI (its reasonReference or
//     encounter, or a reasonCode in the set), or is dated from the set's
//     window_days (30) before the PCI to 7 days after it, or within
//     window_days before the assessment (the PCI may not be coded yet).
//     "ccs" only with an index PCI, no such acute coronary syndrome and
//     the Condition search read in full: a condition in
//     conditions.ccs-presentation (stable angina I20.8x, native coronary
//     atherosclerosis I25.1x but not I25.110; SNOMED CT stable angina,
//     coronary arteriosclerosis) current at the PCI, or named as its
//     reason. Angina pectoris, unspecified (I20.9) decides neither: in a
//     hospital stay it may be unstable angina. Otherwise the clinician is
//     asked (an undated acute coronary syndrome: confirm), and the answer
//     replaces the record's.
//   - Demographics: sex from Patient.gender (female or male), else the US
//     Core birth sex (F or M); age in whole years at now. A partial birth
//     date gives the oldest possible age, with a warning.
func MapRecord(cfg *calc.Config, rec *fhir.Record, now time.Time, opts MapOptions) *Mapped {
	return MapRecordContext(context.Background(), cfg, rec, now, opts)
}

// ErrNotChecked is the DataError.Err of a resource type whose records were
// read but not examined: the mapping's context ended first.
var ErrNotChecked = errors.New("mapping: the assessment's time ran out before these records were checked")

// MapRecordContext is MapRecord bounded by ctx, for callers with a deadline
// to answer by (a CDS Hooks budget). ctx is checked before each part of
// the record is examined (observations, conditions, medications,
// procedures); once it has ended, the parts not yet examined are treated as
// records that could not be read: their inputs are left unset with a
// GapUnavailable gap, never concluded absent, and DataErrors lists their
// types with an error matching ErrNotChecked. Demographics, the
// presentation of the index PCI and the derivations from inputs already
// mapped always run: they read only what is left, a pass at most.
func MapRecordContext(ctx context.Context, cfg *calc.Config, rec *fhir.Record, now time.Time, opts MapOptions) *Mapped {
	if rec == nil {
		rec = &fhir.Record{}
	}
	m := &mapper{cfg: cfg, rec: rec, now: now, opts: opts, inputs: calc.Inputs{}, gaps: map[string]Gap{},
		warned: map[string]bool{}, sysKey: map[string]string{}}
	for k, uri := range cfg.Codes.Systems {
		m.sysKey[uri] = k
	}
	m.conds = m.usableConditions()
	m.outcomes()
	m.demographics()
	steps := []struct {
		run   func()
		types []string // the record types the step examines first
	}{
		{m.observations, []string{"Observation"}},
		{m.conditions, []string{"Condition", "Encounter"}},
		{m.medications, []string{"MedicationRequest", "MedicationStatement"}},
		{m.procedures, []string{"Procedure"}},
	}
	stopped := false
	for i, st := range steps {
		if !stopped && ctx.Err() != nil {
			stopped = true
			var rest []string
			for _, later := range steps[i:] {
				rest = append(rest, later.types...)
			}
			m.notChecked(rest)
		}
		st.run()
	}
	m.presentation() // conditions and procedures: examined by now, or emptied as not checked
	m.tradeoff()
	return m.finish()
}

// notChecked makes the rest of the mapping see the records of these types
// as records that could not be read (ErrNotChecked, unless the search had
// already failed): emptied, with an error, so every input drawn from them
// becomes a gap instead of a conclusion. A type with no records is left as
// it is: its absence costs nothing to examine.
func (m *mapper) notChecked(types []string) {
	r := *m.rec
	r.Errors = maps.Clone(m.rec.Errors)
	if r.Errors == nil {
		r.Errors = map[string]error{}
	}
	for _, t := range types {
		var n int
		switch t {
		case "Observation":
			n, r.Observations = len(r.Observations), nil
		case "Condition":
			n, r.Conditions = len(r.Conditions), nil
			m.conds = nil
		case "Encounter":
			n, r.Encounters = len(r.Encounters), nil
		case "MedicationRequest":
			n, r.MedicationRequests = len(r.MedicationRequests), nil
		case "MedicationStatement":
			n, r.MedicationStatements = len(r.MedicationStatements), nil
		case "Procedure":
			n, r.Procedures = len(r.Procedures), nil
		}
		if n > 0 && r.Errors[t] == nil {
			r.Errors[t] = ErrNotChecked
		}
	}
	m.rec = &r
}

// mapper is the state of one MapRecord call.
type mapper struct {
	cfg    *calc.Config
	rec    *fhir.Record
	now    time.Time
	opts   MapOptions
	inputs calc.Inputs
	gaps   map[string]Gap
	warns  []calc.Warning
	warned map[string]bool
	sysKey map[string]string // system URI → key of codes.systems
	conds  []*fhir.Condition // not refuted or entered in error
	oac    MedicationFinding
	dapt   DAPT
	reg    calc.Regimen
	pci    *calc.Source // the index PCI
}

// Warning kinds of the mapping (beside calc's).
const (
	WarnStale  = "stale"  // a result older than fhir.lookback_days, used
	WarnAccess = "access" // part of the record not read (see DataErrors)
	WarnRecord = "record" // something in the record not used as it stands
)

// warn records one problem with one input ("" for the record as a whole),
// once.
func (m *mapper) warn(kind, input, key string, args message.Args) {
	w := calc.Warning{Kind: kind, Input: input, Text: message.New(key, args)}
	if !m.warned[w.WarningKey()] {
		m.warned[w.WarningKey()] = true
		m.warns = append(m.warns, w)
	}
}

func (m *mapper) label(input string) message.Msg { return m.cfg.InputLabel(input) }

// ResourceMsg names what a FHIR resource type holds for a person: "the
// problem list" for Condition.
func ResourceMsg(typ string) message.Msg { return message.New("resource."+typ, nil) }

// set records an input read from the record.
func (m *mapper) set(name string, in calc.Input) {
	if in.Origin == "" {
		in.Origin = calc.OriginRecord
	}
	m.inputs[name] = in
	delete(m.gaps, name)
}

// setFlag records a boolean with the records behind it.
func (m *mapper) setFlag(name string, v bool, evidence []calc.Source) {
	in := calc.Input{Value: v, Origin: calc.OriginRecord}
	if len(evidence) > 0 {
		in.Source = &evidence[0]
		in.Evidence = evidence
	}
	m.set(name, in)
}

// absent records a value decided from the absence of matching records in
// searches read in full: origin absent ("None recorded"), no source (no
// record states it), and a note saying what was searched for.
func (m *mapper) absent(name string, v any, note message.Msg) {
	m.set(name, calc.Input{Value: v, Origin: calc.OriginAbsent, Note: note})
}

// absentNote is the catalogue's "absent.<input>" sentence.
func absentNote(input string, args message.Args) message.Msg {
	return message.New("absent."+input, args)
}

func (m *mapper) gap(name string, reason GapReason, msg message.Msg, evidence ...calc.Source) {
	if _, ok := m.inputs[name]; ok {
		return
	}
	m.gaps[name] = Gap{Input: name, Reason: reason, Message: msg, Evidence: evidence}
}

// conclusive reports whether the absence of matching records of these
// types means absence: every one was read in full.
func (m *mapper) conclusive(types ...string) bool {
	for _, t := range types {
		if m.rec.Errors[t] != nil || m.rec.Truncated[t] {
			return false
		}
	}
	return true
}

// unknown records the gap of an input that could not be concluded from
// these types: a permission refusal wins over other failures.
func (m *mapper) unknown(name string, types ...string) {
	var pick string
	for _, t := range types {
		err := m.rec.Errors[t]
		if err != nil && errors.Is(err, fhir.ErrForbidden) {
			pick = t
			break
		}
		if pick == "" && (err != nil || m.rec.Truncated[t]) {
			pick = t
		}
	}
	if pick == "" {
		return
	}
	err := m.rec.Errors[pick]
	g := Gap{Input: name, ResourceType: pick, Message: ReadMessage(pick, err)}
	switch {
	case err == nil:
		g.Reason = GapUnavailable
	case errors.Is(err, fhir.ErrForbidden):
		g.Reason = GapRefused
	default:
		g.Reason = GapUnavailable
	}
	if _, ok := m.inputs[name]; !ok {
		m.gaps[name] = g
	}
}

func errorKind(err error) DataErrorKind {
	switch {
	case errors.Is(err, fhir.ErrScope):
		return DataScope
	case errors.Is(err, fhir.ErrForbidden):
		return DataRefused
	case errors.Is(err, fhir.ErrUnauthorized):
		return DataUnauthorized
	case errors.Is(err, fhir.ErrUnavailable), errors.Is(err, ErrNotChecked):
		return DataUnavailable
	}
	return DataUnusable
}

// outcomes turns search warnings and partial results into warnings.
func (m *mapper) outcomes() {
	for _, t := range slices.Sorted(maps.Keys(m.rec.Outcomes)) {
		for _, o := range m.rec.Outcomes[t] {
			if s := o.Text(); s != "" {
				m.warn(WarnRecord, "", "warn.ehr-said", message.Args{"resource": ResourceMsg(t), "text": s})
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(m.rec.Truncated)) {
		if m.rec.Truncated[t] {
			m.warn(WarnAccess, "", "warn.search-truncated", message.Args{"resource": ResourceMsg(t)})
		}
	}
}

// ReadMessage says, for a person, why the records of a type could not be
// read ("Not available: …"); err nil means the search was cut short.
func ReadMessage(typ string, err error) message.Msg {
	args := message.Args{"resource": ResourceMsg(typ)}
	var fe *fhir.Error
	errors.As(err, &fe)
	switch {
	case err == nil:
		return message.New("read.truncated", args)
	case errors.Is(err, ErrNotChecked):
		return message.New("read.not-checked", args)
	case errors.Is(err, fhir.ErrScope):
		return message.New("read.scope", args)
	case fe != nil && fe.BreakTheGlass:
		return message.New("read.break-the-glass", args)
	case errors.Is(err, fhir.ErrForbidden):
		return message.New("read.forbidden", args)
	case errors.Is(err, fhir.ErrUnauthorized):
		return message.New("read.unauthorized", args)
	case errors.Is(err, fhir.ErrUnavailable):
		return message.New("read.unavailable", args)
	case fe != nil && fe.TooLarge:
		return message.New("read.too-large", args)
	}
	return message.New("read.unusable", args)
}

// gapOrigin is how an input without a value says why: not available (a
// read refused or failed), none recorded, or asked.
func gapOrigin(r GapReason) calc.Origin {
	switch r {
	case GapRefused, GapUnavailable:
		return calc.OriginUnavailable
	case GapNotRecorded:
		return calc.OriginAbsent
	}
	return calc.OriginAsked
}

// finish sorts the gaps and warnings, gives each unset input its reason
// and builds the data errors.
func (m *mapper) finish() *Mapped {
	out := &Mapped{Inputs: m.inputs, Gaps: []Gap{}, NeedsConfirmation: []string{}, Warnings: []calc.Warning{}, DataErrors: []DataError{},
		OralAnticoagulant: m.oac, DAPT: m.dapt, Regimen: m.reg, IndexPCI: m.pci}
	for _, name := range slices.Sorted(maps.Keys(m.gaps)) {
		g := m.gaps[name]
		out.Gaps = append(out.Gaps, g)
		if g.Reason == GapConfirm {
			out.NeedsConfirmation = append(out.NeedsConfirmation, name)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(m.rec.Errors)) {
		err := m.rec.Errors[t]
		if err == nil {
			continue
		}
		d := DataError{ResourceType: t, Kind: errorKind(err), Err: err, Message: ReadMessage(t, err)}
		var fe *fhir.Error
		if errors.As(err, &fe) {
			d.BreakTheGlass, d.TooLarge, d.EHRSaid = fe.BreakTheGlass, fe.TooLarge, fe.Outcome.Text()
		}
		for _, g := range out.Gaps {
			if g.ResourceType == t {
				d.Inputs = append(d.Inputs, g.Input)
			}
		}
		out.DataErrors = append(out.DataErrors, d)
	}
	out.Warnings = append(out.Warnings, m.warns...)
	return out
}

// key returns the configuration's key for a code system URI.
func (m *mapper) key(uri string) string { return m.sysKey[strings.TrimSpace(uri)] }

// normCode normalises a code for matching: ICD-10-CM gets its dot back
// ("K922" → "K92.2") and upper case.
func normCode(system, code string) string {
	code = strings.TrimSpace(code)
	if system == "icd10cm" {
		code = strings.ToUpper(code)
		if !strings.Contains(code, ".") && len(code) > 3 {
			code = code[:3] + "." + code[3:]
		}
	}
	return code
}

// match reports whether a concept is in a code set: one of its codings is
// included and none is excluded (the codings of one concept translate one
// meaning, so an excluded translation excludes it). It returns the
// included coding.
func (m *mapper) match(set calc.CodeSet, cc fhir.CodeableConcept) (fhir.Coding, bool) {
	var hit fhir.Coding
	found := false
	for _, cd := range cc.Coding {
		k := m.key(cd.System)
		if k == "" {
			continue
		}
		code := normCode(k, cd.Code)
		if set.Excludes(k, code) {
			return fhir.Coding{}, false
		}
		if !found && set.Includes(k, code) {
			hit, found = cd, true
		}
	}
	return hit, found
}

// matchAnyConcept is match over several concepts (a product and its
// ingredients).
func (m *mapper) matchAnyConcept(set calc.CodeSet, ccs []fhir.CodeableConcept) (fhir.Coding, bool) {
	for _, cc := range ccs {
		if cd, ok := m.match(set, cc); ok {
			return cd, true
		}
	}
	return fhir.Coding{}, false
}

// token formats a coding as system|code.
func token(cd fhir.Coding) string {
	if cd.System == "" {
		return cd.Code
	}
	return cd.System + "|" + cd.Code
}

// display is what a concept says: the matched coding's display, else the
// concept text. These are the record's own words, the name a clinician
// reads; the code stays in Source.Code, for a secondary place (a title, or
// "SNOMED CT 415070008" after the name), never ahead of the name.
func display(cd fhir.Coding, cc fhir.CodeableConcept) string {
	switch {
	case cd.Display != "":
		return cd.Display
	case cc.Text != "":
		return cc.Text
	}
	return cd.Code
}

// tri is a three-valued answer.
type tri int8

const (
	triNo tri = iota
	triMaybe
	triYes
)

// within says whether a date span [start, end) lies at or after cutoff:
// yes when all of it does, no when none of it does, maybe otherwise.
func within(start, end time.Time, dated bool, cutoff time.Time) tri {
	switch {
	case !dated:
		return triMaybe
	case !start.Before(cutoff):
		return triYes
	case !end.After(cutoff):
		return triNo
	}
	return triMaybe
}

// span parses a FHIR date into the span it covers. A full dateTime is an
// instant.
func span(s string) (start, end time.Time, ok bool) {
	if s == "" {
		return time.Time{}, time.Time{}, false
	}
	start, end, err := fhir.ParseDateSpan(s)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	if end.Equal(start) {
		end = start.Add(time.Nanosecond)
	}
	return start, end, true
}

// days formats a duration in whole days.
func days(d time.Duration) int { return int(d.Hours() / 24) }

// sortSources orders sources newest first (by date text, ISO 8601 sorts),
// then by reference, and drops duplicates.
func sortSources(in []calc.Source) []calc.Source {
	seen := map[string]bool{}
	out := make([]calc.Source, 0, len(in))
	for _, s := range in {
		k := s.Reference + "\x00" + s.Code
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Date != out[j].Date {
			return out[i].Date > out[j].Date
		}
		return out[i].Reference < out[j].Reference
	})
	return out
}

// demographics maps age and sex from the Patient.
func (m *mapper) demographics() {
	p := m.rec.Patient
	if p == nil {
		if m.rec.Errors["Patient"] != nil {
			m.unknown("age", "Patient")
			m.unknown("sex", "Patient")
		} else {
			m.gap("age", GapNotRecorded, message.New("gap.patient-not-read", message.Args{"input": m.label("age")}))
			m.gap("sex", GapNotRecorded, message.New("gap.patient-not-read", message.Args{"input": m.label("sex")}))
		}
		return
	}
	ref := "Patient/" + p.ID
	m.age(p, ref)
	m.sex(p, ref)
}

func (m *mapper) age(p *fhir.Patient, ref string) {
	start, end, ok := span(p.BirthDate)
	if !ok {
		msg := message.New("gap.no-birth-date", nil)
		if p.BirthDate != "" {
			msg = message.New("gap.bad-birth-date", message.Args{"date": p.BirthDate})
		}
		m.gap("age", GapNotRecorded, msg)
		return
	}
	if msg := BirthDateProblem(p.BirthDate, start, end, m.now); !msg.IsZero() {
		m.gap("age", GapConfirm, message.New("gap.age-problem", message.Args{"problem": msg}))
		return
	}
	oldest := WholeYears(start, m.now)
	youngest := WholeYears(end.Add(-time.Nanosecond), m.now)
	if oldest != youngest {
		m.warn(WarnRecord, "age", "warn.birth-partial", message.Args{"date": message.Date(p.BirthDate), "oldest": oldest, "youngest": youngest})
	}
	m.set("age", calc.Input{Value: float64(oldest), Source: &calc.Source{Reference: ref, Date: p.BirthDate, Label: message.New("source.birth-date", nil)}})
}

// MaxAge is the oldest age SMART Calc accepts from a birth date: an older
// one is a data-entry error, never a patient.
const MaxAge = 130

// Birth date problems, as BirthDateIssue names them for the UI.
const (
	BirthDateFuture = "future"  // after the assessment date
	BirthDateTooOld = "too-old" // more than MaxAge years before it
)

// BirthDateIssue names what makes a birth date impossible at now
// (BirthDateFuture or BirthDateTooOld), or returns "". start and end bound
// the instants a (possibly partial) date covers.
func BirthDateIssue(start, end, now time.Time) string {
	switch {
	case start.After(now):
		return BirthDateFuture
	case end.Add(-time.Nanosecond).UTC().Before(dateOf(now).AddDate(-MaxAge, 0, 0)):
		return BirthDateTooOld
	}
	return ""
}

// BirthDateProblem says why a birth date cannot be right at now, or returns
// a zero message: it is after now, or more than MaxAge years before it
// (BirthDateIssue). The scores use it for the age they are not given.
func BirthDateProblem(raw string, start, end, now time.Time) message.Msg {
	switch BirthDateIssue(start, end, now) {
	case BirthDateFuture:
		return message.New("birth.future", message.Args{"date": raw})
	case BirthDateTooOld:
		return message.New("birth.too-old", message.Args{"date": raw, "years": MaxAge})
	}
	return message.Msg{}
}

// dateOf is the start of now's calendar day in UTC.
func dateOf(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// BirthSpan returns the first and the last-plus-one instants a FHIR date
// (YYYY, YYYY-MM or YYYY-MM-DD) covers.
func BirthSpan(raw string) (start, end time.Time, ok bool) { return span(raw) }

// WholeYears is the age in completed years at now of someone born at b,
// comparing calendar dates in UTC: the one age rule of the assessment and
// the patient banner.
func WholeYears(b, now time.Time) int {
	b, now = b.UTC(), now.UTC()
	y := now.Year() - b.Year()
	if now.Month() < b.Month() || (now.Month() == b.Month() && now.Day() < b.Day()) {
		y--
	}
	return y
}

const systemGender = "http://hl7.org/fhir/administrative-gender"

func (m *mapper) sex(p *fhir.Patient, ref string) {
	g := strings.ToLower(strings.TrimSpace(p.Gender))
	birth := strings.ToUpper(strings.TrimSpace(p.BirthSex()))
	fromBirth := map[string]string{"F": calc.Female, "M": calc.Male}[birth]
	if g == calc.Female || g == calc.Male {
		if fromBirth != "" && fromBirth != g {
			m.warn(WarnRecord, "sex", "warn.sex-mismatch", message.Args{"gender": m.cfg.EnumLabel("sex", g), "birth": m.cfg.EnumLabel("sex", fromBirth)})
		}
		m.set("sex", calc.Input{Value: g, Source: &calc.Source{Reference: ref, Code: systemGender + "|" + g, Label: message.New("source.gender", nil)}})
		return
	}
	if fromBirth != "" {
		m.set("sex", calc.Input{Value: fromBirth, Source: &calc.Source{Reference: ref, Code: fhir.ExtBirthSex + "|" + birth, Label: message.New("source.birth-sex", nil)}})
		return
	}
	if g != "" {
		m.gap("sex", GapAsk, message.New("gap.sex.other", message.Args{"gender": g}))
		return
	}
	m.gap("sex", GapAsk, message.New("gap.sex", nil))
}
