// Package calc is SMART Calc's bleeding-risk engine: PRECISE-HBR, ARC-HBR,
// PRECISE-DAPT, the ARC-HBR trade-off model, eGFR (CKD-EPI 2021) and
// creatinine clearance (Cockcroft-Gault).
//
// Every number the calculators use (coefficients, truncations, bands,
// thresholds, unit conversions) and every code set that a record mapping
// uses lives in one versioned scoring configuration, scoring.json, embedded
// in the binary. LoadConfig validates it at start-up; a broken configuration
// is an error, never a silent fall-back to defaults. Each parameter carries
// its source (publication and table) and whether it has been verified
// against that source; a verified one quotes the passage read and says
// where it was read, and a project decision is never verified. Each result
// names its calculator's unverified parameters, so that every reader of it
// can say so. The sources themselves are described in SOURCES.md beside the
// configuration.
//
// The calculators know nothing of FHIR or HTTP: they score Inputs, however
// they were obtained. The standalone calculator passes what a clinician
// typed; shared/mapping turns a FHIR record into the same Inputs.
//
// The package is pure: no I/O, no clock, no globals that change. An Engine
// is immutable and safe for concurrent use.
//
// Results follow the shape of README Design §5: a status ("ok",
// "incomplete", "out-of-range", "not-applicable"), values, per-input points
// (components) or criteria, the inputs echoed with their provenance, the
// names of missing inputs and warnings. A missing input is never scored as
// zero silently, a truncation the score defines is reported, and no value is
// ever NaN or Inf. Totals round half up (never to even) after snapping away
// binary floating-point error, so a total of x.5 on paper always rounds up.
package calc
