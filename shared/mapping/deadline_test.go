package mapping

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// endsAfter is a context whose deadline passes after it has been asked
// n times: the deadline falls between two parts of the mapping, exactly
// where the test puts it, with no clock involved.
type endsAfter struct {
	context.Context
	left atomic.Int32
}

func newEndsAfter(n int) *endsAfter {
	c := &endsAfter{Context: context.Background()}
	c.left.Store(int32(n))
	return c
}

func (c *endsAfter) Err() error {
	if c.left.Add(-1) < 0 {
		return context.DeadlineExceeded
	}
	return nil
}

// TestMappingStopsAtDeadline: once the context ends, the parts of the
// record not yet examined are reported as not checked: their inputs are
// gaps (never concluded absent), DataErrors name their types with
// ErrNotChecked, and what was mapped before the deadline is kept.
func TestMappingStopsAtDeadline(t *testing.T) {
	e := testEngine(t)
	full := MapRecord(e.Config(), fullRecord(), mapNow, MapOptions{})
	for _, tt := range []struct {
		name       string
		checks     int
		unchecked  []string // DataErrors matching ErrNotChecked
		keep, gaps []string // inputs mapped, inputs left as gaps
	}{
		{"before everything", 0, []string{"Condition", "Encounter", "MedicationRequest", "Observation", "Procedure"},
			[]string{"age", "sex"}, []string{"hemoglobin", "oral_anticoagulation", "prior_bleeding", "active_malignancy"}},
		{"after the observations", 1, []string{"Condition", "Encounter", "MedicationRequest", "Procedure"},
			[]string{"age", "hemoglobin", "wbc"}, []string{"oral_anticoagulation", "prior_bleeding", "cirrhosis_portal_hypertension"}},
		{"after the medications", 3, []string{"Procedure"},
			[]string{"hemoglobin", "oral_anticoagulation", "prior_bleeding"}, []string{"recent_major_surgery_trauma"}},
		{"never", 100, nil, []string{"hemoglobin", "oral_anticoagulation", "prior_bleeding", "recent_major_surgery_trauma"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := MapRecordContext(newEndsAfter(tt.checks), e.Config(), fullRecord(), mapNow, MapOptions{})
			var unchecked []string
			for _, de := range m.DataErrors {
				if errors.Is(de.Err, ErrNotChecked) {
					unchecked = append(unchecked, de.ResourceType)
					if de.Kind != DataUnavailable || de.Message.Key != "read.not-checked" || !strings.Contains(de.Message.String(), "ran out before it checked the ") {
						t.Errorf("%s: %s %q", de.ResourceType, de.Kind, de.Message)
					}
				}
			}
			if !slices.Equal(unchecked, tt.unchecked) {
				t.Errorf("not checked %v, want %v", unchecked, tt.unchecked)
			}
			for _, in := range tt.keep {
				got, ok := m.Inputs[in]
				if !ok || got.Value != full.Inputs[in].Value {
					t.Errorf("%s = %v (%v), want %v as without a deadline", in, got.Value, ok, full.Inputs[in].Value)
				}
			}
			for _, in := range tt.gaps {
				if v, ok := m.Inputs[in]; ok {
					t.Errorf("%s = %v: concluded from records that were not checked", in, v.Value)
				}
				if g, ok := m.Gap(in); !ok || g.Reason != GapUnavailable {
					t.Errorf("%s: gap %+v, want %s", in, g, GapUnavailable)
				}
			}
		})
	}
}
