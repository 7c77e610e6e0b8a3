package calc

import (
	"fmt"
	"slices"
)

// Summary reasons: the keys of SummaryDef.Texts, one per verdict.
const (
	ReasonBoth         = "hbr-both"         // both calculators say HBR
	ReasonARCOnly      = "hbr-arc"          // ARC-HBR met, PRECISE-HBR below its HBR bands
	ReasonPreciseOnly  = "hbr-precise"      // PRECISE-HBR in an HBR band, ARC-HBR not met
	ReasonHBRPartial   = "hbr-one"          // one says HBR, the other cannot be decided
	ReasonNotHBR       = "not-hbr"          // both decided, neither says HBR
	ReasonUndetermined = "undetermined"     // the record cannot decide
	ReasonEntered      = "entered"          // the result includes entered values
	reasonNotWeighed   = "hbr-arc-criteria" // lead-in to the ARC-HBR criteria PRECISE-HBR does not weigh
)

// Presentation texts: the keys of SummaryDef.Texts that say what the
// summary knows of the index PCI's presentation (Summary.PresentationKey).
const (
	TextPresentationACS     = "presentation-acs"
	TextPresentationCCS     = "presentation-ccs"
	TextPresentationUnknown = "presentation-unknown"
)

// InputPresentation is the input that holds the index PCI's presentation
// ("acs" or "ccs"): no calculator weighs it, the plan follows it.
const InputPresentation = "pci_presentation"

var summaryReasons = []string{ReasonBoth, ReasonARCOnly, ReasonPreciseOnly, ReasonHBRPartial, ReasonNotHBR, ReasonUndetermined, ReasonEntered, reasonNotWeighed,
	TextPresentationACS, TextPresentationCCS, TextPresentationUnknown}

// summaryCalculators are the calculators whose verdicts the summary
// combines, in the order it names them.
var summaryCalculators = []string{"arc-hbr", "precise-hbr"}

func (c *Config) validateSummary(v *validator) {
	s := &c.Summary
	for _, id := range summaryCalculators {
		cats := s.HBRCategories[id]
		if len(cats) == 0 {
			v.fail("summary.hbr_categories."+id, "missing or empty")
			continue
		}
		cd, ok := c.Calculator(id)
		if !ok {
			continue
		}
		for _, cat := range cats {
			if !slices.Contains(cd.categories(), cat) {
				v.fail("summary.hbr_categories."+id, "%q is not a category of %s", cat, id)
			}
		}
	}
	for id := range s.HBRCategories {
		if !slices.Contains(summaryCalculators, id) {
			v.fail("summary.hbr_categories."+id, "the summary combines only %v", summaryCalculators)
		}
	}
	if len(s.NotWeighed) == 0 {
		v.fail("summary.precise_hbr_not_weighed", "missing or empty")
	}
	phbr, _ := c.Calculator("precise-hbr")
	arc, _ := c.Calculator("arc-hbr")
	for i, in := range s.NotWeighed {
		p := fmt.Sprintf("summary.precise_hbr_not_weighed[%d]", i)
		if phbr != nil && phbr.declares(in) {
			v.fail(p, "%q is an input of precise-hbr: it is weighed", in)
		}
		if arc != nil && !arc.declares(in) {
			v.fail(p, "%q is not an input of arc-hbr", in)
		}
	}
	if _, ok := c.Calculator(s.Risk.Calculator); !ok {
		v.fail("summary.risk.calculator", "unknown calculator %q", s.Risk.Calculator)
	}
	v.text("summary.risk.value", s.Risk.Value)
	v.text("summary.risk.label", s.Risk.Label)
	for _, k := range summaryReasons {
		v.text("summary.texts."+k, s.Texts[k])
	}
	for k := range s.Texts {
		if !slices.Contains(summaryReasons, k) {
			v.fail("summary.texts."+k, "not a summary reason (%v)", summaryReasons)
		}
	}
	if in, ok := c.Inputs[InputPresentation]; !ok || in.Type != TypeEnum || !sameSet(in.Values, []string{PresentationACS, PresentationCCS}) {
		v.fail("inputs."+InputPresentation, "missing, or not an enum of %s and %s", PresentationACS, PresentationCCS)
	}
	v.provenance("summary.provenance", s.Provenance)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// hbrFrom is the lowest bound of the calculator's HBR bands: the number
// the summary's texts name as {hbr_from}.
func (c *Config) hbrFrom() map[string]float64 {
	cd, ok := c.Calculator("precise-hbr")
	if !ok {
		return nil
	}
	for _, b := range cd.bandList() {
		if slices.Contains(c.Summary.HBRCategories["precise-hbr"], b.Category) && b.From != nil {
			return map[string]float64{"hbr_from": *b.From}
		}
	}
	return nil
}
