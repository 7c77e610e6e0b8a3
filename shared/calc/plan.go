package calc

import (
	"fmt"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// PlanDef is the guideline antithrombotic plan after PCI: the strategies
// (pathways) by presentation, each with the guideline recommendations it
// rests on. Config.Plan selects the items that fit a patient.
type PlanDef struct {
	Disclaimer string `json:"disclaimer"`
	// Conditions name what a conditional item takes as given (PlanItem.If:
	// "acs", "hbr", "no-oac", …) for a person, in the page and the cards.
	Conditions map[string]string `json:"conditions"`
	Items      []PlanItemDef     `json:"items"`
}

// planConditions are every value PlanItem.If can take.
var planConditions = []string{IfHBR, IfNotHBR, IfOAC, IfNoOAC, IfACS, IfCCS}

// PlanItemDef is one pathway's text for one presentation ("acs", "ccs", or
// "any" for both). HBR, when set, narrows an item of a pathway that does not
// fix the bleeding risk itself (oac-antiplatelet) to patients with (true)
// or without (false) high bleeding risk.
type PlanItemDef struct {
	Pathway      string         `json:"pathway"`
	Presentation string         `json:"presentation"`
	HBR          *bool          `json:"hbr,omitempty"`
	Text         string         `json:"text"`
	Citations    []PlanCitation `json:"citations"`
}

// PlanCitation is one guideline recommendation behind a plan item: the
// guideline (a key of Config.Sources), the section or recommendation table,
// the class of recommendation and level of evidence as the guideline prints
// them, and whether they were checked against the guideline's own text.
// Quote is the recommendation's wording and Where the document, section
// and page it was read in; a verified citation needs both. Note gives the
// reason an unverified one could not be checked.
type PlanCitation struct {
	Guideline string `json:"guideline"`
	Section   string `json:"section"`
	Class     string `json:"class"`
	Level     string `json:"level"`
	Verified  *bool  `json:"verified"`
	Quote     string `json:"quote"`
	Where     string `json:"where"`
	Note      string `json:"note,omitempty"`
}

// IsVerified reports whether the citation was checked against the guideline.
func (pc PlanCitation) IsVerified() bool { return pc.Verified != nil && *pc.Verified }

// Plan pathways.
const (
	// PathwayDAPTStandard: not HBR, no OAC; the default DAPT duration.
	PathwayDAPTStandard = "dapt-standard"
	// PathwayDAPTAbbreviated: HBR, no OAC; short DAPT, then single
	// antiplatelet therapy, and the de-escalation options.
	PathwayDAPTAbbreviated = "dapt-abbreviated"
	// PathwayOACAntiplatelet: on an OAC; short triple therapy, then the
	// OAC with clopidogrel, then the OAC alone.
	PathwayOACAntiplatelet = "oac-antiplatelet"
	// PathwayGastricProtection: a proton pump inhibitor with any
	// antithrombotic combination when the gastrointestinal bleeding risk
	// is high; it applies whatever the OAC and bleeding risk.
	PathwayGastricProtection = "gastric-protection"
)

// Presentations of the index PCI.
const (
	PresentationACS = "acs"
	PresentationCCS = "ccs"
	PresentationAny = "any"
)

// What a conditional plan item takes as given (PlanItem.If).
const (
	IfHBR    = "hbr"
	IfNotHBR = "not-hbr"
	IfOAC    = "oac"
	IfNoOAC  = "no-oac"
	IfACS    = PresentationACS
	IfCCS    = PresentationCCS
)

// pathwayRule is what a pathway requires of the patient: on an OAC or not,
// HBR or not; nil for either.
type pathwayRule struct{ oac, hbr *bool }

func boolp(b bool) *bool { return &b }

var pathwayRules = map[string]pathwayRule{
	PathwayDAPTStandard:      {oac: boolp(false), hbr: boolp(false)},
	PathwayDAPTAbbreviated:   {oac: boolp(false), hbr: boolp(true)},
	PathwayOACAntiplatelet:   {oac: boolp(true)},
	PathwayGastricProtection: {},
}

// requiredPathways must each cover both presentations.
var requiredPathways = []string{PathwayDAPTStandard, PathwayDAPTAbbreviated, PathwayOACAntiplatelet}

// Recommendation classes and levels of evidence as the ESC (I, IIa, IIb,
// III; A, B, C) and the ACC/AHA (1, 2a, 2b, 3; A, B-R, B-NR, C-LD, C-EO)
// print them.
var (
	planClasses = []string{"I", "IIa", "IIb", "III", "1", "2a", "2b", "3: No Benefit", "3: Harm"}
	planLevels  = []string{"A", "B", "C", "B-R", "B-NR", "C-LD", "C-EO"}
)

// PlanItem is one strategy for the patient: the pathway, the presentation
// it is for ("acs", "ccs" or "any"), its text and its citations. If lists
// what the record did not decide and the item takes as given ("hbr",
// "not-hbr", "oac", "no-oac", "acs", "ccs"); an item with a non-empty If is
// conditional and must be shown with its condition.
type PlanItem struct {
	Pathway      string      `json:"pathway"`
	Presentation string      `json:"presentation"`
	If           []string    `json:"if"`
	Text         message.Msg `json:"text"`
	// Key names Text in the translations (config_text).
	Key       string         `json:"key"`
	Citations []PlanCitation `json:"citations"`
}

// Conditional reports whether the item depends on something the record did
// not decide.
func (p PlanItem) Conditional() bool { return len(p.If) > 0 }

// Plan returns the plan items for a patient, in configuration order. hbr
// and oac are the verdicts (nil: undecided); presentation is "acs", "ccs"
// or "" when unknown (any other value is taken as unknown).
//
// A patient on an OAC never gets a dapt-* item and a patient with no OAC
// never gets oac-antiplatelet. What is undecided is never chosen silently:
// with no presentation, the items of both presentations are returned, each
// labelled with its own; with hbr nil, the items for HBR and for not HBR
// (dapt-abbreviated and dapt-standard) are both returned, each conditional
// on its bleeding risk; with oac nil, the items with and without an OAC are
// both returned, each conditional on it.
func (c *Config) Plan(hbr *bool, oac *bool, presentation string) []PlanItem {
	if presentation != PresentationACS && presentation != PresentationCCS {
		presentation = ""
	}
	out := []PlanItem{}
	for _, it := range c.PlanDef.Items {
		rule := pathwayRules[it.Pathway]
		need := rule.hbr
		if need == nil {
			need = it.HBR
		}
		var cond []string
		if rule.oac != nil {
			if oac == nil {
				cond = append(cond, pick(*rule.oac, IfOAC, IfNoOAC))
			} else if *oac != *rule.oac {
				continue
			}
		}
		if need != nil {
			if hbr == nil {
				cond = append(cond, pick(*need, IfHBR, IfNotHBR))
			} else if *hbr != *need {
				continue
			}
		}
		if it.Presentation != PresentationAny {
			if presentation == "" {
				cond = append(cond, it.Presentation)
			} else if presentation != it.Presentation {
				continue
			}
		}
		if cond == nil {
			cond = []string{}
		}
		out = append(out, PlanItem{
			Pathway:      it.Pathway,
			Presentation: it.Presentation,
			If:           cond,
			Text:         c.Text(planTextKey(it)),
			Key:          planTextKey(it),
			Citations:    append([]PlanCitation(nil), it.Citations...),
		})
	}
	return out
}

func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// planTextKey is the translation key of an item's text:
// plan.<pathway>.<presentation>[.hbr|.not-hbr].text.
func planTextKey(it PlanItemDef) string {
	k := "plan." + it.Pathway + "." + it.Presentation
	if it.HBR != nil {
		k += "." + pick(*it.HBR, IfHBR, IfNotHBR)
	}
	return k + ".text"
}

// planTextRefs lists the plan's texts in document order. They name no
// configuration number: the durations and doses they give are the
// guidelines' own.
func (c *Config) planTextRefs() []textRef {
	var out []textRef
	add := func(key, path string, s *string) {
		if *s == "" {
			return
		}
		out = append(out, textRef{ConfigText{Key: key, Template: *s, Params: map[string]float64{}}, path, func(x string) { *s = x }})
	}
	add("plan.disclaimer", "plan.disclaimer", &c.PlanDef.Disclaimer)
	for _, id := range planConditions {
		if s := c.PlanDef.Conditions[id]; s != "" {
			out = append(out, textRef{ConfigText{Key: "plan.condition." + id, Template: s, Params: map[string]float64{}}, "plan.conditions." + id,
				func(x string) { c.PlanDef.Conditions[id] = x }})
		}
	}
	for i := range c.PlanDef.Items {
		it := &c.PlanDef.Items[i]
		add(planTextKey(*it), fmt.Sprintf("plan.items[%d].text", i), &it.Text)
	}
	return out
}

// validatePlan checks the plan: known pathways and presentations, every
// required pathway for both presentations and each bleeding risk it
// allows, citations of known guidelines
// with section, class and level, and the quoted passage and place of
// reading of every verified citation.
func (c *Config) validatePlan(v *validator) {
	v.text("plan.disclaimer", c.PlanDef.Disclaimer)
	for _, id := range planConditions {
		v.text("plan.conditions."+id, c.PlanDef.Conditions[id])
	}
	for id := range c.PlanDef.Conditions {
		if !contains(planConditions, id) {
			v.fail("plan.conditions."+id, "not a plan condition (%s)", strings.Join(planConditions, ", "))
		}
	}
	if len(c.PlanDef.Items) == 0 {
		v.fail("plan.items", "missing or empty")
	}
	covered := map[string]bool{}
	for i, it := range c.PlanDef.Items {
		p := fmt.Sprintf("plan.items[%d]", i)
		rule, ok := pathwayRules[it.Pathway]
		if !ok {
			v.fail(p+".pathway", "unknown pathway %q (want %s)", it.Pathway, strings.Join(sortedKeys(pathwayRules), ", "))
		}
		var pres []string
		switch it.Presentation {
		case PresentationACS, PresentationCCS:
			pres = []string{it.Presentation}
		case PresentationAny:
			pres = []string{PresentationACS, PresentationCCS}
		default:
			v.fail(p+".presentation", "must be acs, ccs or any, got %q", it.Presentation)
		}
		need := rule.hbr
		if need == nil {
			need = it.HBR
		}
		for _, pr := range pres {
			for _, h := range []bool{false, true} {
				if need == nil || *need == h {
					covered[it.Pathway+"/"+pr+"/"+pick(h, IfHBR, IfNotHBR)] = true
				}
			}
		}
		if ok && rule.hbr != nil && it.HBR != nil && *it.HBR != *rule.hbr {
			v.fail(p+".hbr", "contradicts pathway %s, which is for %s", it.Pathway, pick(*rule.hbr, "HBR", "not HBR"))
		}
		v.text(p+".text", it.Text)
		if len(it.Citations) == 0 {
			v.fail(p+".citations", "missing or empty")
		}
		for j, ct := range it.Citations {
			cp := fmt.Sprintf("%s.citations[%d]", p, j)
			if ct.Guideline == "" {
				v.fail(cp+".guideline", "missing")
			} else if _, ok := c.Sources[ct.Guideline]; !ok {
				v.fail(cp+".guideline", "unknown source %q (not in sources)", ct.Guideline)
			}
			v.text(cp+".section", ct.Section)
			if !contains(planClasses, ct.Class) {
				v.fail(cp+".class", "must be one of %s, got %q", strings.Join(planClasses, ", "), ct.Class)
			}
			if !contains(planLevels, ct.Level) {
				v.fail(cp+".level", "must be one of %s, got %q", strings.Join(planLevels, ", "), ct.Level)
			}
			v.verification(cp, ct.Verified, ct.Quote, ct.Where, ct.Note, true)
		}
	}
	// Every required pathway speaks to both presentations and to every
	// bleeding risk it allows.
	for _, pw := range requiredPathways {
		for _, pr := range []string{PresentationACS, PresentationCCS} {
			for _, h := range []bool{false, true} {
				if r := pathwayRules[pw]; (r.hbr == nil || *r.hbr == h) && !covered[pw+"/"+pr+"/"+pick(h, IfHBR, IfNotHBR)] {
					v.fail("plan.items", "no %s item for %s patients %s", pw, strings.ToUpper(pr), pick(h, "with HBR", "without HBR"))
				}
			}
		}
	}
}
