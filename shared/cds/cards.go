package cds

import (
	"crypto/rand"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
)

// Card is a CDS Hooks card. SMART Calc's cards carry no suggestions: it
// never proposes an order.
type Card struct {
	UUID      string `json:"uuid"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail,omitempty"`
	Indicator string `json:"indicator"`
	Source    Source `json:"source"`
	Links     []Link `json:"links,omitempty"`
}

// Source is a card's source.
type Source struct {
	Label string `json:"label"`
	URL   string `json:"url,omitempty"`
}

// Link is a card's link; Type is "absolute" or "smart".
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
	Type  string `json:"type"`
}

// Card indicators.
const (
	IndicatorInfo     = "info"
	IndicatorWarning  = "warning"
	IndicatorCritical = "critical"
)

// MaxSummary is the longest summary: CDS Hooks asks for fewer than 140
// characters.
const MaxSummary = 139

// Calculator ids and categories the cards read.
const (
	calcPreciseHBR  = "precise-hbr"
	calcARCHBR      = "arc-hbr"
	categoryHBR     = "hbr"
	categoryVeryHBR = "very-hbr"
	categoryNotHBR  = "not-hbr"
)

// risk is the assessment's one verdict (calc.Summary.HBR), the one the
// app's page and print give.
type risk int

const (
	riskUnknown risk = iota // summary.hbr null: the record cannot decide
	riskNo                  // summary.hbr false: neither ARC-HBR nor PRECISE-HBR says HBR, both decided
	riskYes                 // summary.hbr true: ARC-HBR met or PRECISE-HBR in an HBR band
)

// Verdict headings, as the app's page words them.
const (
	verdictHBR          = "High bleeding risk"
	verdictNotHBR       = "Not high bleeding risk"
	verdictUndetermined = "Bleeding risk undetermined"
)

// view is an assessment as the cards tell it.
type view struct {
	a        *assess.Assessment
	ph, arc  *calc.Result
	score    string // "31", or "≥ 25" when only a lower bound is known
	category string // a PRECISE-HBR category, or ""
	label    string // the category's label ("Very HBR")
	band     string // the band's published risk text
	arcHBR   *bool
	majors   int
	minors   int
	risk     risk
	notes    []note
	types    int // the record's resource types; all in notes means no data at all
	indic    string
}

func (s *Service) view(a *assess.Assessment, notes []note, types int) *view {
	v := &view{a: a, ph: a.Results[calcPreciseHBR], arc: a.Results[calcARCHBR], notes: notes, types: types}
	if v.ph != nil {
		if sc, ok := v.ph.Value("score"); ok && sc.Value != nil {
			if f, ok := sc.Value.(float64); ok {
				v.score, v.category = strconv.FormatFloat(f, 'f', 0, 64), sc.Category
			}
		} else if lb, ok := v.ph.Value("score_lower_bound"); ok && (lb.Category == categoryHBR || lb.Category == categoryVeryHBR) {
			// Every PRECISE-HBR term is ≥0, so a lower bound in an HBR
			// band already places the patient there.
			if f, ok := lb.Value.(float64); ok {
				v.score, v.category = "≥ "+strconv.FormatFloat(f, 'f', 0, 64), lb.Category
			}
		}
		v.label, v.band = s.band(v.category)
	}
	if v.arc != nil {
		if h, ok := v.arc.Value("hbr"); ok {
			if b, ok := h.Value.(bool); ok {
				v.arcHBR = &b
			}
		}
		if n, ok := v.arc.Value("major_count"); ok {
			f, _ := n.Value.(float64)
			v.majors = int(f)
		}
		if n, ok := v.arc.Value("minor_count"); ok {
			f, _ := n.Value.(float64)
			v.minors = int(f)
		}
	}
	// The verdict and the indicator are the summary's, never the cards' own
	// reading of the scores: warning for high bleeding risk, info
	// otherwise (not HBR, or undetermined, which the card says).
	if h := a.Summary.HBR; h != nil {
		v.risk = riskNo
		if *h {
			v.risk = riskYes
		}
	}
	v.indic = IndicatorInfo
	if v.risk == riskYes {
		v.indic = IndicatorWarning
	}
	return v
}

// verdict is the summary's verdict heading.
func (v *view) verdict() string {
	switch v.risk {
	case riskYes:
		return verdictHBR
	case riskNo:
		return verdictNotHBR
	}
	return verdictUndetermined
}

// band returns the label and risk text of a PRECISE-HBR category from the
// scoring configuration.
func (s *Service) band(category string) (label, risk string) {
	for _, c := range s.Assess.Scoring.Calculators {
		if c.ID != calcPreciseHBR || c.Points == nil {
			continue
		}
		for _, b := range c.Points.Bands {
			if b.Category == category {
				return b.Label, b.Risk
			}
		}
	}
	return "", ""
}

// headline is the summary's verdict, then the scores behind it: "High
// bleeding risk: PRECISE-HBR 31 (Very HBR); ARC-HBR HBR (2 major, 1
// minor)", or "Bleeding risk undetermined: PRECISE-HBR incomplete (needs
// Hemoglobin); ARC-HBR undetermined".
func (s *Service) headline(v *view) string {
	var ph string
	switch {
	case v.score != "":
		ph = fmt.Sprintf("PRECISE-HBR %s (%s)", v.score, v.label)
	case v.ph != nil:
		ph = "PRECISE-HBR incomplete" + missingSuffix(s, v)
	default:
		ph = "PRECISE-HBR not computed"
	}
	return v.verdict() + ": " + ph + "; ARC-HBR " + v.arcText()
}

func (v *view) arcText() string {
	switch {
	case v.arcHBR == nil:
		return "undetermined"
	case *v.arcHBR:
		return fmt.Sprintf("HBR (%d major, %d minor)", v.majors, v.minors)
	}
	return "not met"
}

// nothing reports whether the assessment had no data at all to work on.
func (v *view) nothing() bool {
	return len(v.notes) > 0 && len(v.notes) >= v.types
}

// patientCard is patient-view's one card.
func (s *Service) patientCard(v *view) Card {
	c := s.card(v.indic)
	switch {
	case v.nothing() && v.score == "":
		c.Indicator = IndicatorInfo
		c.Summary = summary("Bleeding risk not assessed: " + v.notes[0].Reason)
	default:
		c.Summary = summary(s.headline(v))
	}
	var b strings.Builder
	s.writeAssessment(&b, v)
	s.writeGuidance(&b, v)
	s.writeFooter(&b, v)
	c.Detail = b.String()
	return c
}

// missingSuffix is ": needs hemoglobin, WBC" for an incomplete score.
func missingSuffix(s *Service, v *view) string {
	if v.ph == nil || len(v.ph.Missing) == 0 {
		return ""
	}
	return " (needs " + strings.Join(s.labels(v.ph.Missing), ", ") + ")"
}

// summary bounds a summary to MaxSummary characters, cutting at a word.
func summary(s string) string {
	r := []rune(s)
	if len(r) <= MaxSummary {
		return s
	}
	cut := string(r[:MaxSummary-1])
	if i := strings.LastIndexAny(cut, " ,;"); i > MaxSummary/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;(") + "…"
}

func (s *Service) card(indicator string) Card {
	return Card{
		UUID:      newUUID(),
		Indicator: indicator,
		Source:    Source{Label: s.sourceLabel(), URL: s.sourceURL()},
		Links: []Link{{
			Label: "Open the full bleeding-risk assessment in SMART Calc",
			URL:   s.AppLaunchURL,
			Type:  "smart",
		}},
	}
}

// sourceLabel names SMART Calc with the equations and their versions.
func (s *Service) sourceLabel() string {
	parts := []string{}
	for _, c := range s.Assess.Scoring.Calculators {
		if c.ID == calcPreciseHBR || c.ID == calcARCHBR {
			parts = append(parts, c.Equation.Name+" ("+c.Equation.Version+")")
		}
	}
	return "SMART Calc: " + strings.Join(parts, "; ")
}

// failureCard is patient-view's answer when the assessment itself failed.
func (s *Service) failureCard() Card {
	c := s.card(IndicatorInfo)
	c.Summary = "SMART Calc could not assess bleeding risk here: open the app for the full assessment"
	c.Detail = "SMART Calc could not compute the bleeding-risk scores for this call. The full assessment is in the app."
	return c
}

// writeAssessment writes the PRECISE-HBR and ARC-HBR results with their
// inputs and dates, and what is missing.
func (s *Service) writeAssessment(b *strings.Builder, v *view) {
	// The one answer first, as the app's page and print give it.
	if sm := v.a.Summary; sm.Text != "" {
		fmt.Fprintf(b, "**%s.** %s\n\n", v.verdict(), md(sm.Text))
		if sm.Risk != nil {
			fmt.Fprintf(b, "%s: %s%%\n\n", md(sm.Risk.Label), strconv.FormatFloat(sm.Risk.Value, 'f', 1, 64))
		}
		for _, a := range sm.Assumptions {
			fmt.Fprintf(b, "_%s_\n\n", md(a.Statement))
		}
		writePresentation(b, sm)
		if rg := sm.Regimen; rg != nil {
			var drugs []string
			for _, group := range [][]calc.RegimenDrug{rg.Aspirin, rg.P2Y12, rg.Anticoagulant, rg.Vascular} {
				for _, d := range group {
					name := d.Display
					if d.Ingredient != "" && !strings.HasPrefix(strings.ToLower(name), strings.ToLower(d.Ingredient)) {
						name = d.Ingredient + " (" + name + ")"
					}
					drugs = append(drugs, name)
				}
			}
			if len(drugs) > 0 {
				fmt.Fprintf(b, "Antithrombotic drugs in the record: %s.\n\n", md(strings.Join(drugs, "; ")))
			}
		}
		s.writePlan(b, sm.Plan)
	}
	if v.ph != nil {
		switch {
		case v.score != "":
			fmt.Fprintf(b, "**PRECISE-HBR %s: %s**", md(v.score), md(v.label))
			if v.band != "" {
				fmt.Fprintf(b, " (%s)", md(v.band))
			}
			b.WriteString("\n\n")
		default:
			b.WriteString("**PRECISE-HBR could not be computed.**\n\n")
		}
		s.writeInputs(b, v.ph)
		if len(v.ph.Missing) > 0 {
			fmt.Fprintf(b, "Missing for PRECISE-HBR: %s.\n\n", md(strings.Join(s.labels(v.ph.Missing), ", ")))
		}
	}
	if v.arc != nil {
		fmt.Fprintf(b, "**ARC-HBR: %s**\n\n", md(arcSentence(v)))
		var met, asked []calc.CriterionResult
		for _, cr := range v.arc.Criteria {
			switch {
			case cr.Met == nil:
				asked = append(asked, cr)
			case *cr.Met:
				met = append(met, cr)
			}
		}
		if len(met) > 0 {
			b.WriteString("Criteria met:\n\n")
			for _, cr := range met {
				fmt.Fprintf(b, "- %s (%s): %s\n", md(cr.Name), cr.Level, md(cr.Evidence))
			}
			b.WriteString("\n")
		}
		if len(asked) > 0 {
			names := make([]string, 0, maxAsked)
			for _, cr := range asked[:min(len(asked), maxAsked)] {
				names = append(names, cr.Name)
			}
			more := ""
			if len(asked) > maxAsked {
				more = fmt.Sprintf("; and %d more (answer them in SMART Calc)", len(asked)-maxAsked)
			}
			fmt.Fprintf(b, "The record cannot tell (ask or check): %s%s.\n\n", md(strings.Join(names, "; ")), more)
		}
	}
	if len(v.notes) > 0 {
		b.WriteString("**Not checked:**\n\n")
		for _, n := range v.notes {
			fmt.Fprintf(b, "- %s: %s", n.Resource, md(n.Reason))
			if in := s.relevant(n.Inputs); len(in) > 0 {
				fmt.Fprintf(b, " (leaves %s unknown)", md(strings.Join(s.labels(in), ", ")))
			}
			b.WriteString(".\n")
		}
		b.WriteString("\n")
	}
}

func arcSentence(v *view) string {
	switch {
	case v.arcHBR == nil:
		return fmt.Sprintf("undetermined (%d major, %d minor met so far)", v.majors, v.minors)
	case *v.arcHBR:
		return fmt.Sprintf("high bleeding risk (%d major, %d minor)", v.majors, v.minors)
	}
	return fmt.Sprintf("not high bleeding risk (%d major, %d minor)", v.majors, v.minors)
}

// writeInputs lists a result's inputs from the record with their dates:
// every number, and the criteria flags that are set; the flags the record
// answered "no" are named together.
func (s *Service) writeInputs(b *strings.Builder, r *calc.Result) {
	if len(r.Inputs) == 0 {
		return
	}
	b.WriteString("Inputs:\n\n")
	var absent []string
	for _, in := range r.Inputs {
		if f, ok := in.Value.(bool); ok && !f {
			absent = append(absent, s.label(in.Name))
			continue
		}
		fmt.Fprintf(b, "- %s: %s", md(s.label(in.Name)), md(s.value(in)))
		src := in.Source
		if src == nil && len(in.Evidence) > 0 {
			src = &in.Evidence[0]
		}
		if src != nil {
			var where []string
			if src.Date != "" {
				where = append(where, dateOnly(src.Date))
			}
			if src.Reference != "" && !strings.Contains(src.Reference, "?") {
				where = append(where, src.Reference)
			}
			if len(where) > 0 {
				fmt.Fprintf(b, " (%s)", md(strings.Join(where, ", ")))
			}
		}
		if in.Derivation != "" {
			fmt.Fprintf(b, " — %s", md(in.Derivation))
		}
		if in.Origin == calc.OriginEntered {
			b.WriteString(" [entered]")
		}
		if in.Stale {
			b.WriteString(" — **older than the lookback window**")
		}
		b.WriteString("\n")
	}
	if len(absent) > 0 {
		fmt.Fprintf(b, "- No record of: %s\n", md(strings.Join(absent, ", ")))
	}
	b.WriteString("\n")
}

// value formats an input's value with its unit's label from the scoring
// configuration ("78 years", "51 mL/min/1.73 m²").
func (s *Service) value(in calc.InputEcho) string {
	switch x := in.Value.(type) {
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case float64:
		v := strconv.FormatFloat(x, 'f', 2, 64)
		v = strings.TrimRight(strings.TrimRight(v, "0"), ".")
		unit := in.Unit
		if def, ok := s.Assess.Scoring.Inputs[in.Name]; ok {
			if q, ok := s.Assess.Scoring.Quantities[def.Quantity]; ok && (unit == "" || unit == q.Unit) && q.Label != "" {
				unit = q.Label
			}
		}
		if unit != "" && unit != "1" && !strings.HasPrefix(unit, "{") {
			v += " " + unit
		}
		return v
	case string:
		return x
	case nil:
		return "unknown"
	}
	return fmt.Sprint(in.Value)
}

func dateOnly(d string) string {
	if len(d) >= 10 {
		return d[:10]
	}
	return d
}

// writeGuidance adds the recommendations whose source the scoring
// configuration marks as verified, with their citation. Unverified text
// stays in the app, where it is labelled as such.
func (s *Service) writeGuidance(b *strings.Builder, v *view) {
	var recs []assess.Recommendation
	for _, r := range v.a.Recommendations {
		for _, it := range s.Assess.Scoring.Recommendations.Items {
			if it.ID == r.ID && it.Provenance.IsVerified() {
				recs = append(recs, r)
			}
		}
	}
	if len(recs) == 0 {
		return
	}
	b.WriteString("**Guidance:**\n\n")
	for _, r := range recs {
		fmt.Fprintf(b, "- %s: %s Source: %s\n", md(r.Title), md(r.Text), md(r.Source))
	}
	b.WriteString("\n")
}

func (s *Service) writeFooter(b *strings.Builder, v *view) {
	fmt.Fprintf(b, "Computed by SMART Calc (scoring configuration %s) from the EHR record as of %s. %s",
		md(v.a.ConfigVersion), v.a.AssessedAt.Format("2006-01-02 15:04 UTC"), md(s.Assess.Scoring.Recommendations.Disclaimer))
}

// maxAsked bounds the undecided ARC-HBR criteria a card names.
const maxAsked = 5

// relevant keeps the inputs of PRECISE-HBR and ARC-HBR, the calculators
// the cards report.
func (s *Service) relevant(names []string) []string {
	want := map[string]bool{}
	for _, c := range s.Assess.Scoring.Calculators {
		if c.ID != calcPreciseHBR && c.ID != calcARCHBR {
			continue
		}
		for _, in := range c.Inputs {
			want[in.Name] = true
			for _, a := range in.Alternative {
				want[a] = true
			}
		}
	}
	var out []string
	for _, n := range names {
		if want[n] {
			out = append(out, n)
		}
	}
	return out
}

// labels names inputs for a person.
func (s *Service) labels(names []string) []string {
	out := make([]string, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		l := s.label(n)
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Service) label(name string) string {
	if d, ok := s.Assess.Scoring.Inputs[name]; ok && d.Label != "" {
		return d.Label
	}
	return name
}

// mdEscaper escapes the Markdown that record text could carry, so a drug
// name or an EHR message cannot turn into a link or markup.
var mdEscaper = strings.NewReplacer(`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`,
	`<`, `\<`, `>`, `\>`, `|`, `\|`, `~`, `\~`, "\n", " ", "\r", " ")

func md(s string) string { return mdEscaper.Replace(s) }

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// writePresentation gives the index PCI's presentation, its date and the
// records behind it, as the app's page does.
func writePresentation(b *strings.Builder, sm calc.Summary) {
	if sm.PresentationText != "" {
		b.WriteString(md(sm.PresentationText))
		var from []string
		for _, src := range sm.PresentationEvidence {
			if src.Reference != "" && !strings.Contains(src.Reference, "?") {
				from = append(from, src.Reference)
			}
		}
		switch {
		case sm.PresentationOrigin == calc.OriginEntered:
			b.WriteString(" [entered]")
		case len(from) > 0:
			fmt.Fprintf(b, " (%s)", md(strings.Join(from, ", ")))
		}
		b.WriteString("\n\n")
	}
	if sm.PCI != nil && sm.PCI.Date != "" {
		fmt.Fprintf(b, "Index PCI: %s (%s, %s).\n\n", md(dateOnly(sm.PCI.Date)), md(sm.PCI.Display), md(sm.PCI.Reference))
	}
}

// writePlan gives the guideline plan as the app shows it: each item with
// the conditions it assumes (named as the configuration names them), and
// its citations marked verified or not.
func (s *Service) writePlan(b *strings.Builder, plan []calc.PlanItem) {
	if len(plan) == 0 {
		return
	}
	b.WriteString("**Antithrombotic plan from the guidelines:**\n\n")
	for _, it := range plan {
		b.WriteString("- ")
		if len(it.If) > 0 {
			names := make([]string, len(it.If))
			for i, c := range it.If {
				names[i] = s.Assess.Scoring.PlanDef.ConditionName(c)
			}
			fmt.Fprintf(b, "_If %s:_ ", md(strings.Join(names, ", ")))
		}
		b.WriteString(md(it.Text))
		for _, c := range it.Citations {
			state := "not verified"
			if c.IsVerified() {
				state = "verified"
			}
			fmt.Fprintf(b, " [%s %s, class %s, level %s, %s]", md(c.Guideline), md(c.Section), md(c.Class), md(c.Level), state)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}
