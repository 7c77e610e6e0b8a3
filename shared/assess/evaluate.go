package assess

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// query is the one fetch of the record an assessment needs, limited to what
// the granted scope allows: a type the scope does not cover is not
// requested, and the calculators that need it say which scope is missing.
func (s *Service) query(st *store.Session, now time.Time) fhir.Query {
	q := mapping.RecordQuery(s.Scoring, st.Patient, now, s.mapOptions())
	q.Allowed = func(typ string, i fhir.Interaction) bool { return Allows(st.Scope, typ, i) }
	// Optional searches are made only when granted: asking for them
	// otherwise would only record a scope error the clinician cannot act on.
	q.MedicationStatements = Allows(st.Scope, "MedicationStatement", fhir.InteractionSearch)
	q.Encounters = Allows(st.Scope, "Encounter", fhir.InteractionSearch)
	return q
}

func (s *Service) mapOptions() mapping.MapOptions {
	return mapping.MapOptions{LabLookback: s.LabLookback}
}

// Evaluate maps a fetched record (from the EHR, or a CDS Hooks prefetch),
// overlays the clinician's values and runs every calculator. It does no I/O.
// ctx bounds the mapping (mapping.MapRecordContext): the parts of the record
// not examined by its deadline are reported as not checked, and their
// inputs are asked for.
func (s *Service) Evaluate(ctx context.Context, rec *fhir.Record, overrides calc.Inputs, now time.Time) (*Assessment, error) {
	m := mapping.MapRecordContext(ctx, s.Scoring, rec, now, s.mapOptions())
	inputs := m.CalcInputs().Overlay(overrides)
	results, err := s.Engine.EvaluateAll(inputs)
	if err != nil {
		return nil, fmt.Errorf("assess: evaluate: %w", err)
	}
	a := &Assessment{
		AssessedAt:        now.UTC(),
		Results:           make(map[string]*calc.Result, len(results)),
		Warnings:          []calc.Warning{},
		DataErrors:        []DataError{},
		Recommendations:   []Recommendation{},
		ConfigVersion:     s.Scoring.Version,
		NeedsConfirmation: append([]string{}, m.NeedsConfirmation...),
		Gaps:              m.Gaps,
		DAPT:              m.DAPT,
		OAC:               m.OralAnticoagulant,
	}
	if rec.Patient != nil {
		a.Patient = banner(rec.Patient, now)
	}
	for _, de := range m.DataErrors {
		a.DataErrors = append(a.DataErrors, fromCalc(de))
	}
	seen := map[string]bool{}
	for _, r := range results {
		a.Results[r.Calculator] = r
		for _, id := range r.Recommendations {
			if seen[id] {
				continue
			}
			seen[id] = true
			if rec := s.recommendation(id); rec != nil {
				a.Recommendations = append(a.Recommendations, *rec)
			}
		}
	}
	a.Warnings = gatherWarnings(a.DataErrors, m.Warnings, results)
	a.Summary = s.Scoring.Summarize(a.Results, inputs, slices.Sorted(maps.Keys(overrides)))
	// What only the record shows: the drugs taken now and the index PCI.
	rg := m.Regimen
	a.Summary.Regimen = &calc.Regimen{Aspirin: nonNil(rg.Aspirin), P2Y12: nonNil(rg.P2Y12), Anticoagulant: nonNil(rg.Anticoagulant), Vascular: nonNil(rg.Vascular)}
	a.Summary.PCI = m.IndexPCI
	return a, nil
}

func (s *Service) recommendation(id string) *Recommendation {
	for _, it := range s.Scoring.Recommendations.Items {
		if it.ID != id {
			continue
		}
		src := it.Provenance.Source
		if p, ok := s.Scoring.Sources[src]; ok {
			src = p.Citation
		}
		if it.Provenance.Table != "" {
			src += " (" + it.Provenance.Table + ")"
		}
		return &Recommendation{ID: it.ID, Title: s.Scoring.Text("rec." + it.ID + ".title"), Text: s.Scoring.Text("rec." + it.ID + ".text"), Source: src,
			Verified: it.Provenance.IsVerified()}
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
