package cds

import (
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/message"
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

// view is an assessment as the cards tell it, in the cards' language.
type view struct {
	a        *assess.Assessment
	p        message.Printer
	cfg      *calc.Config // the scoring configuration the cards are computed with
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
	// The cards are written in the deployment's language, every sentence
	// of the assessment with them.
	s.printer().Localize(a)
	v := &view{a: a, p: s.printer(), cfg: s.Assess.Scoring, ph: a.Results[calcPreciseHBR], arc: a.Results[calcARCHBR], notes: notes, types: types}
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
		v.label, v.band = s.band(v.p, v.category)
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

// verdict is the summary's verdict heading, as the app's page words it.
func (v *view) verdict() string {
	switch v.risk {
	case riskYes:
		return v.text("verdict.hbr", nil)
	case riskNo:
		return v.text("verdict.not-hbr", nil)
	}
	return v.text("verdict.undetermined", nil)
}

// text writes a message of the catalogue in the cards' language.
func (v *view) text(key string, args message.Args) string { return v.p.Text(key, args) }

// band returns the label and the published risk of a PRECISE-HBR category,
// in the cards' language, from the scoring configuration.
func (s *Service) band(p message.Printer, category string) (label, risk string) {
	cfg := s.Assess.Scoring
	for _, c := range cfg.Calculators {
		if c.ID != calcPreciseHBR || c.Points == nil {
			continue
		}
		for _, b := range c.Points.Bands {
			if b.Category != category {
				continue
			}
			label = p.Sprint(cfg.Text("band." + c.ID + "." + b.Category))
			outcome := cfg.Text("bands." + c.ID + ".risk_outcome")
			switch r := b.RiskPercent; {
			case r == nil:
				if b.Note != "" {
					risk = p.Sprint(cfg.Text("band." + c.ID + "." + b.Category + ".note"))
				}
			case r.Min != nil && r.Max != nil:
				risk = p.Text("risk.between", message.Args{"min": *r.Min, "max": *r.Max, "outcome": outcome})
			case r.Max != nil:
				risk = p.Text("risk.below", message.Args{"max": *r.Max, "outcome": outcome})
			case r.Min != nil:
				risk = p.Text("risk.at-least", message.Args{"min": *r.Min, "outcome": outcome})
			}
			return label, risk
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
		ph = v.text("cds.headline.score", message.Args{"label": v.label, "score": v.score})
	case v.ph != nil:
		ph = v.text("cds.headline.incomplete", message.Args{"needs": missingSuffix(s, v)})
	default:
		ph = v.text("cds.headline.none", nil)
	}
	return v.text("cds.headline", message.Args{"verdict": v.verdict(), "precise": ph, "arc": v.arcText()})
}

func (v *view) arcText() string {
	switch {
	case v.arcHBR == nil:
		return v.text("cds.arc.undetermined", nil)
	case *v.arcHBR:
		return v.text("cds.arc.hbr", message.Args{"major": v.majors, "minor": v.minors})
	}
	return v.text("cds.arc.not-met", nil)
}

// nothing reports whether the assessment had no data at all to work on.
func (v *view) nothing() bool {
	return len(v.notes) > 0 && len(v.notes) >= v.types
}

// patientCard is patient-view's one card.
func (s *Service) patientCard(v *view) Card {
	c := s.card(v.p, v.indic)
	switch {
	case v.nothing() && v.score == "":
		c.Indicator = IndicatorInfo
		c.Summary = summary(v.text("cds.not-assessed", message.Args{"reason": v.notes[0].Reason}))
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

// missingSuffix is " (needs Hemoglobin, WBC)" for an incomplete score.
func missingSuffix(s *Service, v *view) string {
	if v.ph == nil || len(v.ph.Missing) == 0 {
		return ""
	}
	return v.text("cds.needs", message.Args{"inputs": s.labels(v.p, v.ph.Missing)})
}

// summary bounds a summary to MaxSummary characters, cutting at a word.
func summary(s string) string {
	r := []rune(s)
	if len(r) <= MaxSummary {
		return s
	}
	cut := string(r[:MaxSummary-1])
	if i := strings.LastIndexAny(cut, " ,;，；、"); i > MaxSummary/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;(，；、（") + "…"
}

func (s *Service) card(p message.Printer, indicator string) Card {
	return Card{
		UUID:      newUUID(),
		Indicator: indicator,
		Source:    Source{Label: s.sourceLabel(p), URL: s.sourceURL()},
		Links: []Link{{
			Label: p.Text("cds.link", nil),
			URL:   s.AppLaunchURL,
			Type:  "smart",
		}},
	}
}

// sourceLabel names SMART Calc with the equations and their versions.
func (s *Service) sourceLabel(p message.Printer) string {
	var parts message.Series
	for _, c := range s.Assess.Scoring.Calculators {
		if c.ID == calcPreciseHBR || c.ID == calcARCHBR {
			parts = append(parts, c.Equation.Name+" ("+c.Equation.Version+")")
		}
	}
	return p.Text("cds.source", message.Args{"equations": parts})
}

// failureCard is patient-view's answer when the assessment itself failed.
func (s *Service) failureCard() Card {
	p := s.printer()
	c := s.card(p, IndicatorInfo)
	c.Summary = p.Text("cds.failure.summary", nil)
	c.Detail = p.Text("cds.failure.detail", nil)
	return c
}

// writeAssessment writes the PRECISE-HBR and ARC-HBR results with their
// inputs and dates, and what is missing.
func (s *Service) writeAssessment(b *strings.Builder, v *view) {
	// The one answer first, as the app's page and print give it.
	if sm := v.a.Summary; !sm.Text.IsZero() {
		fmt.Fprintf(b, "**%s** %s\n\n", md(v.text("cds.verdict", message.Args{"verdict": v.verdict()})), md(sm.Text.String()))
		if sm.Risk != nil {
			line := v.text("verdict.risk", message.Args{"label": sm.Risk.Label, "risk": message.Num{Value: sm.Risk.Value, Decimals: calc.RiskDecimals, Fixed: true}})
			// The one bleeding figure is read off PRECISE-HBR's risk curve.
			if v.ph != nil && slices.Contains(v.ph.Unverified, "risk_curve") {
				line += " " + v.text("cds.parenthesis", message.Args{"text": message.New("calc.unverified.badge", nil)})
			}
			fmt.Fprintf(b, "%s\n\n", md(line))
		}
		for _, a := range sm.Assumptions {
			fmt.Fprintf(b, "_%s_\n\n", md(a.Statement.String()))
		}
		writePresentation(b, v, sm)
		if rg := sm.Regimen; rg != nil {
			var drugs message.Series
			for _, group := range [][]calc.RegimenDrug{rg.Aspirin, rg.P2Y12, rg.Anticoagulant, rg.Vascular} {
				for _, d := range group {
					name := d.Describe()
					if d.Ingredient != "" && !strings.HasPrefix(strings.ToLower(d.Display), strings.ToLower(d.Ingredient)) {
						name = message.New("cds.drug.ingredient", message.Args{"ingredient": d.Ingredient, "what": name})
					}
					drugs = append(drugs, name)
				}
			}
			if len(drugs) > 0 {
				fmt.Fprintf(b, "%s\n\n", md(v.text("cds.drugs", message.Args{"drugs": drugs})))
			}
		}
		writePlan(b, v, sm.Plan)
	}
	if v.ph != nil {
		switch {
		case v.score != "":
			b.WriteString("**" + md(v.text("cds.phbr", message.Args{"score": v.score, "label": v.label})) + "**")
			if v.band != "" {
				fmt.Fprintf(b, " %s", md(v.text("cds.parenthesis", message.Args{"text": v.band})))
			}
			b.WriteString("\n\n")
		default:
			b.WriteString("**" + md(v.text("cds.phbr.none", nil)) + "**\n\n")
		}
		writeUnverified(b, v, v.ph)
		s.writeInputs(b, v, v.ph)
		if len(v.ph.Missing) > 0 {
			fmt.Fprintf(b, "%s\n\n", md(v.text("cds.phbr.missing", message.Args{"inputs": s.labels(v.p, v.ph.Missing)})))
		}
	}
	if v.arc != nil {
		fmt.Fprintf(b, "**%s**\n\n", md(arcSentence(v)))
		writeUnverified(b, v, v.arc)
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
			b.WriteString(md(v.text("cds.criteria-met", nil)) + "\n\n")
			for _, cr := range met {
				fmt.Fprintf(b, "- %s\n", md(v.text("cds.criterion", message.Args{"name": cr.Name, "level": message.New("ev.level."+cr.Level, nil), "evidence": cr.Evidence})))
			}
			b.WriteString("\n")
		}
		if len(asked) > 0 {
			var names message.Series
			for _, cr := range asked[:min(len(asked), maxAsked)] {
				names = append(names, cr.Name)
			}
			if len(asked) > maxAsked {
				fmt.Fprintf(b, "%s\n\n", md(v.text("cds.asked.more", message.Args{"criteria": names, "n": len(asked) - maxAsked})))
			} else {
				fmt.Fprintf(b, "%s\n\n", md(v.text("cds.asked", message.Args{"criteria": names})))
			}
		}
	}
	if len(v.notes) > 0 {
		b.WriteString("**" + md(v.text("cds.not-checked", nil)) + "**\n\n")
		for _, n := range v.notes {
			args := message.Args{"resource": mapping.ResourceMsg(n.Resource), "reason": n.Reason}
			if in := s.relevant(n.Inputs); len(in) > 0 {
				args["inputs"] = s.labels(v.p, in)
				fmt.Fprintf(b, "- %s\n", md(v.text("cds.note.leaves", args)))
				continue
			}
			fmt.Fprintf(b, "- %s\n", md(v.text("cds.note", args)))
		}
		b.WriteString("\n")
	}
}

func arcSentence(v *view) string {
	args := message.Args{"major": v.majors, "minor": v.minors}
	switch {
	case v.arcHBR == nil:
		return v.text("cds.arc.sentence.undetermined", args)
	case *v.arcHBR:
		return v.text("cds.arc.sentence.hbr", args)
	}
	return v.text("cds.arc.sentence.not-hbr", args)
}

// writeInputs lists a result's inputs from the record with their dates:
// every number, and the criteria flags that are set; the flags the record
// answered "no" are named together.
func (s *Service) writeInputs(b *strings.Builder, v *view, r *calc.Result) {
	if len(r.Inputs) == 0 {
		return
	}
	b.WriteString(md(v.text("cds.inputs", nil)) + "\n\n")
	var absent message.List
	for _, in := range r.Inputs {
		if f, ok := in.Value.(bool); ok && !f {
			absent = append(absent, s.Assess.Scoring.InputLabel(in.Name))
			continue
		}
		if in.Value == nil {
			continue // without a value: listed as missing below
		}
		line := v.text("cds.input", message.Args{"input": s.Assess.Scoring.InputLabel(in.Name), "value": s.value(in)})
		src := in.Source
		if src == nil && len(in.Evidence) > 0 {
			src = &in.Evidence[0]
		}
		if src != nil && src.Date != "" && src.Label.IsZero() {
			line += " " + v.text("cds.parenthesis", message.Args{"text": message.Date(src.Date)})
		}
		if !in.Derivation.IsZero() {
			line += " — " + in.Derivation.String()
		}
		if in.Origin == calc.OriginEntered {
			line += " " + v.text("cds.entered", nil)
		}
		fmt.Fprintf(b, "- %s", md(line))
		if in.Stale {
			b.WriteString(" — **" + md(v.text("cds.stale", nil)) + "**")
		}
		b.WriteString("\n")
	}
	if len(absent) > 0 {
		fmt.Fprintf(b, "- %s\n", md(v.text("cds.none-recorded", message.Args{"inputs": absent})))
	}
	b.WriteString("\n")
}

// value writes an input's value as reported, with the canonical value
// beside it when the unit differs ("97 µmol/L (1.1 mg/dL)").
func (s *Service) value(in calc.InputEcho) message.Msg {
	cfg := s.Assess.Scoring
	switch x := in.Value.(type) {
	case bool:
		if x {
			return message.New("value.yes", nil)
		}
		return message.New("value.no", nil)
	case float64:
		canon := cfg.Measured(in.Name, x, "")
		if r := in.Reported; r != nil && r.Unit != in.Unit && r.Value != x {
			return message.New("value.reported", message.Args{"reported": cfg.Measured(in.Name, r.Value, r.Unit), "value": canon})
		}
		return canon
	case string:
		return cfg.EnumLabel(in.Name, x)
	}
	return message.New("value.unknown", nil)
}

// writeGuidance adds the assessment's recommendations with their citation,
// each marked verified or not against its source, as the plan's citations
// are.
func (s *Service) writeGuidance(b *strings.Builder, v *view) {
	recs := v.a.Recommendations
	if len(recs) == 0 {
		return
	}
	b.WriteString("**" + md(v.text("cds.guidance", nil)) + "**\n\n")
	for _, r := range recs {
		fmt.Fprintf(b, "- %s [%s]\n", md(v.text("cds.guidance.item", message.Args{"title": r.Title, "text": r.Text, "source": r.Source})),
			md(v.text(verifiedKey(r.Verified), nil)))
	}
	b.WriteString("\n")
}

// verifiedKey is the catalogue's word for a verified mark.
func verifiedKey(verified bool) string {
	if verified {
		return "cds.verified"
	}
	return "cds.unverified"
}

// writeUnverified says, under a result, how many of its calculator's
// parameters are not verified against their publication (none: nothing).
func writeUnverified(b *strings.Builder, v *view, r *calc.Result) {
	if r == nil || len(r.Unverified) == 0 {
		return
	}
	fmt.Fprintf(b, "_%s_\n\n", md(v.text("cds.params.unverified", message.Args{"title": r.Title, "n": len(r.Unverified), "total": max(r.Parameters, len(r.Unverified))})))
}

func (s *Service) writeFooter(b *strings.Builder, v *view) {
	b.WriteString(md(v.text("cds.footer", message.Args{"version": v.a.ConfigVersion, "time": v.a.AssessedAt.Format("2006-01-02 15:04 UTC"),
		"disclaimer": s.Assess.Scoring.Text("rec.disclaimer")})))
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

// labels names inputs for a person, in the cards' language, each once, in
// alphabetical order.
func (s *Service) labels(p message.Printer, names []string) message.List {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		l := p.Sprint(s.Assess.Scoring.InputLabel(n))
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	list := make(message.List, len(out))
	for i, l := range out {
		list[i] = l
	}
	return list
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

// writePresentation gives the index PCI's presentation, the records behind
// it with their dates, and the PCI's date, as the app's page does.
func writePresentation(b *strings.Builder, v *view, sm calc.Summary) {
	if !sm.PresentationText.IsZero() {
		b.WriteString(md(sm.PresentationText.String()))
		switch {
		case sm.PresentationOrigin == calc.OriginEntered:
			b.WriteString(" " + md(v.text("cds.entered", nil)))
		case len(sm.PresentationEvidence) > 0:
			b.WriteString(" " + md(v.text("cds.parenthesis", message.Args{"text": calc.SourcesMsg(sm.PresentationEvidence)})))
		}
		b.WriteString("\n\n")
	}
	if sm.PCI != nil && sm.PCI.Date != "" {
		fmt.Fprintf(b, "%s\n\n", md(v.text("cds.pci", message.Args{"date": message.Date(sm.PCI.Date), "procedure": sm.PCI.Describe()})))
	}
}

// writePlan gives the guideline plan as the app shows it: each item with
// the conditions it assumes (named as the configuration names them), and
// its citations marked verified or not.
func writePlan(b *strings.Builder, v *view, plan []calc.PlanItem) {
	if len(plan) == 0 {
		return
	}
	b.WriteString("**" + md(v.text("plan.title", nil)) + "**\n\n")
	for _, it := range plan {
		b.WriteString("- ")
		if len(it.If) > 0 {
			var conds message.List
			for _, c := range it.If {
				conds = append(conds, v.cfg.Text("plan.condition."+c))
			}
			fmt.Fprintf(b, "_%s_ ", md(v.text("plan.if", message.Args{"conditions": conds})))
		}
		b.WriteString(md(it.Text.String()))
		for _, c := range it.Citations {
			fmt.Fprintf(b, " [%s]", md(v.text("cds.citation", message.Args{"guideline": guidelineName(v.cfg, c.Guideline), "section": c.Section, "class": c.Class, "level": c.Level,
				"state": message.New(verifiedKey(c.IsVerified()), nil)})))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// guidelineName is how a card names a cited guideline: its short name in
// the catalogue ("2023 ESC ACS guidelines"), else the configuration's
// citation; never its identifier.
func guidelineName(cfg *calc.Config, id string) message.Msg {
	if key := "guideline." + id; message.Default().Has(key) {
		return message.New(key, nil)
	}
	if p, ok := cfg.Sources[id]; ok && p.Citation != "" {
		return message.Verbatim(p.Citation)
	}
	return message.Verbatim(id)
}
