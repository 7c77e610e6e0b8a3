// Package mapping turns a patient's FHIR R4 record into the inputs of
// SMART Calc's calculators.
//
// It exists so that the calculators (shared/calc) stay pure: they score
// numbers and answers, and only this package knows which LOINC, SNOMED CT,
// ICD-10-CM and RxNorm codes, units, dates and statuses stand for them.
// The code sets, windows and units it applies are the scoring
// configuration's (calc.Config), never constants of its own.
//
// MapRecord maps a record, as shared/fhir's FetchRecord read it, into the
// inputs of every calculator at once, each with its provenance (origin,
// source record, staleness, evidence), plus what it could not map and why
// (gaps, warnings, data errors per resource type) and the DAPT and
// oral-anticoagulant findings that the CDS Hooks services need.
// RecordQuery builds the matching FHIR query. Like calc, the package does
// no I/O: the caller fetches and passes the clock's time.
package mapping
