package calc

import (
	"encoding/json"
	"fmt"
)

// Verdict is one calculator's own bleeding-risk verdict, carried on its
// Result as "hbr": true (high bleeding risk), false (decided, not high
// bleeding risk) or null (the inputs cannot decide it). Only the
// calculators whose categories the configuration maps to a verdict
// (SummaryDef.HBRCategories: ARC-HBR and PRECISE-HBR) carry one; a nil
// *Verdict leaves the field out, so that creatinine clearance, say, says
// nothing about bleeding risk rather than "null".
type Verdict struct {
	// HBR is the verdict; nil when undecided.
	HBR *bool
}

// MarshalJSON writes the verdict as true, false or null.
func (v Verdict) MarshalJSON() ([]byte, error) { return json.Marshal(v.HBR) }

// UnmarshalJSON reads true, false or null.
func (v *Verdict) UnmarshalJSON(b []byte) error {
	var h *bool
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("calc: hbr verdict: %w", err)
	}
	v.HBR = h
	return nil
}
