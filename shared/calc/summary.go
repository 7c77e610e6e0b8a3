package calc

import (
	"slices"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Summary is the one bleeding-risk answer of an assessment: the verdict
// that ARC-HBR and PRECISE-HBR give together, the calculators behind it,
// the sentence that says why (and why the two disagree when they do), the
// one bleeding figure to quote, the assumptions it rests on and the values
// the clinician entered, and the plan for the index PCI's presentation.
// Summarize builds it from the results and the inputs they were computed
// from, so that the page, the print and the CDS cards give the same answer.
type Summary struct {
	// HBR is true when the ARC-HBR definition is met or PRECISE-HBR is in
	// an HBR band, false when both could be decided and neither says HBR,
	// and nil only when the record cannot decide.
	HBR *bool `json:"hbr"`
	// Basis are the calculator ids behind the verdict.
	Basis []string `json:"basis"`
	// Reason keys the sentence in the configuration's summary texts; Text
	// is that sentence, completed with the names of NotWeighed.
	Reason string      `json:"reason"`
	Text   message.Msg `json:"text"`
	// NotWeighed are the ARC-HBR criteria met that PRECISE-HBR does not
	// weigh: why the two disagree when ARC-HBR alone says HBR.
	NotWeighed []string `json:"not_weighed,omitempty"`
	// Risk is the one bleeding figure: PRECISE-HBR's calibrated 1-year
	// BARC 3 or 5 bleeding risk in percent, to one decimal; nil when it
	// cannot be computed.
	Risk *SummaryRisk `json:"risk"`
	// Assumptions are what the verdict takes as given until the clinician
	// answers.
	Assumptions []AssumptionResult `json:"assumptions"`
	// Entered names the inputs the clinician entered (what-if), which the
	// verdict includes; EnteredText says so.
	Entered     []string    `json:"entered"`
	EnteredText message.Msg `json:"entered_text,omitzero"`
	// OAC is long-term oral anticoagulation as the scores used it (from
	// the record, or entered): true, false or nil (unknown).
	OAC *bool `json:"oac"`
	// Presentation is the index PCI's presentation, "acs" or "ccs", or
	// nil when the inputs cannot tell: then the plan gives what each
	// presentation would mean, and the clinician is asked.
	Presentation *string `json:"presentation"`
	// PresentationKey keys PresentationText in the configuration's summary
	// texts ("summary."+PresentationKey).
	PresentationKey  string      `json:"presentation_key"`
	PresentationText message.Msg `json:"presentation_text"`
	// PresentationOrigin says where the presentation came from: the
	// record, or the clinician's answer (entered); empty when unknown.
	PresentationOrigin Origin `json:"presentation_origin,omitempty"`
	// PresentationEvidence are the records it was read from: the
	// conditions around the index PCI and the PCI itself.
	PresentationEvidence []Source `json:"presentation_evidence"`
	// PCI is the index PCI as a Procedure in the record shows it: its
	// date, reference and code. Nil when no procedure shows one (the PCI
	// is planned, or not coded). The caller that read the record sets it.
	PCI *Source `json:"pci"`
	// Plan is the antithrombotic strategy the configuration's guidelines
	// give for this verdict, OAC and presentation (Config.Plan).
	Plan []PlanItem `json:"plan"`
	// Regimen is what the patient takes now, as the record lists it; nil
	// when no record was read (the standalone calculator).
	Regimen *Regimen `json:"regimen"`
}

// Regimen is the active antithrombotic drugs of the record, each with its
// source: aspirin, the P2Y12 inhibitor, the oral anticoagulant, and
// rivaroxaban at its vascular-protection dose, which is not
// anticoagulation.
type Regimen struct {
	Aspirin       []RegimenDrug `json:"aspirin"`
	P2Y12         []RegimenDrug `json:"p2y12"`
	Anticoagulant []RegimenDrug `json:"oral_anticoagulant"`
	Vascular      []RegimenDrug `json:"vascular_dose"`
}

// RegimenDrug is one active drug of the regimen: the order or statement it
// was read from, and the ingredient it resolves to ("ticagrelor" for the
// product ticagrelor 90 MG Oral Tablet), empty when the code names no
// single ingredient the configuration knows.
type RegimenDrug struct {
	Source
	Ingredient string `json:"ingredient"`
}

// SummaryRisk is the summary's bleeding figure and where it comes from.
type SummaryRisk struct {
	Calculator string      `json:"calculator"`
	Value      float64     `json:"value"`
	Unit       string      `json:"unit"`
	Label      message.Msg `json:"label"`
}

// Summarize combines results (by calculator id) into the Summary. in are
// the inputs the results were computed from (record values overlaid with
// entered ones), which give the index PCI's presentation; entered names
// the inputs the clinician entered.
func (c *Config) Summarize(results map[string]*Result, in Inputs, entered []string) Summary {
	s := Summary{Basis: []string{}, Assumptions: []AssumptionResult{}, Entered: []string{}, PresentationEvidence: []Source{}}
	says := map[string]*bool{}
	for _, id := range summaryCalculators {
		if r := results[id]; r != nil && r.HBR != nil {
			says[id] = r.HBR.HBR
		}
	}
	var yes, decided []string
	for _, id := range summaryCalculators {
		if v := says[id]; v != nil {
			decided = append(decided, id)
			if *v {
				yes = append(yes, id)
			}
		}
	}
	arc, phbr := says["arc-hbr"], says["precise-hbr"]
	switch {
	case len(yes) == len(summaryCalculators):
		s.HBR, s.Basis, s.Reason = ptr(true), yes, ReasonBoth
	case len(yes) > 0 && len(decided) < len(summaryCalculators):
		s.HBR, s.Basis, s.Reason = ptr(true), yes, ReasonHBRPartial
	case arc != nil && *arc:
		s.HBR, s.Basis, s.Reason = ptr(true), yes, ReasonARCOnly
		s.NotWeighed = c.notWeighed(results["arc-hbr"])
	case phbr != nil && *phbr:
		s.HBR, s.Basis, s.Reason = ptr(true), yes, ReasonPreciseOnly
	case len(decided) == len(summaryCalculators):
		s.HBR, s.Basis, s.Reason = ptr(false), decided, ReasonNotHBR
	default:
		s.Reason = ReasonUndetermined
	}
	s.Text = c.Text("summary." + s.Reason)
	if len(s.NotWeighed) > 0 {
		names := make(message.Series, len(s.NotWeighed))
		for i, id := range s.NotWeighed {
			names[i] = criterionName(results["arc-hbr"], id)
		}
		s.Text = message.New("summary.not-weighed", message.Args{"text": s.Text, "lead": c.Text("summary." + reasonNotWeighed), "criteria": names})
	}
	if r := results[c.Summary.Risk.Calculator]; r != nil && r.Status == StatusOK {
		if v, ok := r.Value(c.Summary.Risk.Value); ok {
			if f, ok := v.Value.(float64); ok {
				s.Risk = &SummaryRisk{Calculator: r.Calculator, Value: RoundRisk(f), Unit: v.Unit, Label: c.Text("summary.risk.label")}
			}
		}
	}
	// An assumption takes a criterion as not met (no surgery is planned):
	// it can only have kept the verdict from HBR. Once the verdict is HBR
	// it changes nothing, and stating it beside "High bleeding risk" would
	// only raise the question why; the result itself still lists it.
	if s.HBR == nil || !*s.HBR {
		for _, id := range summaryCalculators {
			if r := results[id]; r != nil {
				s.Assumptions = append(s.Assumptions, r.Assumptions...)
			}
		}
	}
	if v, ok := echoed(results, "arc-hbr", "oral_anticoagulation").(bool); ok {
		s.OAC = &v
	}
	c.presentation(&s, results, in)
	presentation := ""
	if s.Presentation != nil {
		presentation = *s.Presentation
	}
	s.Plan = c.Plan(s.HBR, s.OAC, presentation)
	if len(entered) > 0 {
		s.Entered = slices.Sorted(slices.Values(entered))
		s.EnteredText = message.New("summary.entered", message.Args{"lead": c.Text("summary." + ReasonEntered), "inputs": c.InputLabels(s.Entered)})
	}
	return s
}

// presentation sets the summary's presentation: the pci_presentation
// input (from the record or entered), else ACS when the trade-off model's
// NSTEMI-or-STEMI input is true. The absence of an NSTEMI or STEMI does
// not make the PCI elective (unstable angina is an ACS too), so it leaves
// the presentation open.
func (c *Config) presentation(s *Summary, results map[string]*Result, in Inputs) {
	if p, ok := in[InputPresentation]; ok {
		if v, ok := p.Value.(string); ok && (v == PresentationACS || v == PresentationCCS) {
			s.Presentation = ptr(v)
			s.PresentationOrigin = originOf(p.Origin)
			s.PresentationEvidence = evidenceOf(p.Source, p.Evidence)
		}
	}
	if s.Presentation == nil {
		if e := echo(results, "arc-hbr-tradeoff", "nstemi_stemi"); e != nil && e.Value == true {
			s.Presentation = ptr(PresentationACS)
			s.PresentationOrigin = originOf(e.Origin)
			s.PresentationEvidence = evidenceOf(e.Source, e.Evidence)
		}
	}
	s.PresentationKey = TextPresentationUnknown
	if s.Presentation != nil {
		s.PresentationKey = pick(*s.Presentation == PresentationACS, TextPresentationACS, TextPresentationCCS)
	}
	s.PresentationText = c.Text("summary." + s.PresentationKey)
}

func originOf(o Origin) Origin {
	if o == "" {
		return OriginEntered
	}
	return o
}

func evidenceOf(src *Source, ev []Source) []Source {
	switch {
	case len(ev) > 0:
		return append([]Source(nil), ev...)
	case src != nil:
		return []Source{*src}
	}
	return []Source{}
}

// verdictOf is what one calculator's result says: true (an HBR category),
// false (decided, another category) or nil (undecided, or no result). The
// engine sets it on the result (Result.HBR), which Summarize combines.
func (c *Config) verdictOf(id string, r *Result) *bool {
	if r == nil || len(r.Values) == 0 || r.Status == StatusOutOfRange || r.Status == StatusNotApplicable {
		return nil
	}
	v := r.Values[0]
	if v.Value == nil || v.Category == "" {
		return nil
	}
	return ptr(slices.Contains(c.Summary.HBRCategories[id], v.Category))
}

// notWeighed returns the ARC-HBR criteria met whose input PRECISE-HBR
// does not weigh (SummaryDef.NotWeighed): intracranial haemorrhage, stroke,
// a brain AVM or planned surgery make ARC-HBR say HBR on their own, but are
// no term of PRECISE-HBR.
func (c *Config) notWeighed(arc *Result) []string {
	arcDef, ok := c.Calculator("arc-hbr")
	if !ok || arc == nil {
		return nil
	}
	var out []string
	for _, cr := range arc.Criteria {
		if cr.Met == nil || !*cr.Met {
			continue
		}
		if def, ok := arcDef.criterion(cr.ID); ok && slices.Contains(c.Summary.NotWeighed, def.Rule.Input) {
			out = append(out, cr.ID)
		}
	}
	return out
}

func criterionName(r *Result, id string) message.Msg {
	if c, ok := r.Criterion(id); ok {
		return c.Name
	}
	return message.Verbatim(id)
}

// echoed is the value a calculator used for an input (nil when it had
// none).
func echoed(results map[string]*Result, calculator, input string) any {
	if e := echo(results, calculator, input); e != nil {
		return e.Value
	}
	return nil
}

// echo is the input as a calculator used it, nil when it had none.
func echo(results map[string]*Result, calculator, input string) *InputEcho {
	r := results[calculator]
	if r == nil {
		return nil
	}
	for i := range r.Inputs {
		if r.Inputs[i].Name == input {
			return &r.Inputs[i]
		}
	}
	return nil
}
