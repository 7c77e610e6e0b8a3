package cds

import (
	"fmt"
	"slices"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Medication classes of the scoring configuration (codes.medications).
const (
	classAspirin  = "aspirin"
	classP2Y12    = "p2y12-inhibitor"
	classOAC      = "oral-anticoagulant"
	classVascular = "rivaroxaban-vascular-dose"
)

// daptChange is what the draft orders do to DAPT.
type daptChange int

const (
	daptNone     daptChange = iota
	daptStart               // aspirin and a P2Y12 inhibitor, not both active before
	daptContinue            // DAPT was active; the drafts renew a part of it
	daptPossible            // a part of DAPT is drafted; the active medications could not be read
)

// findings are the draft orders that matter to bleeding risk.
type findings struct {
	dapt    daptChange
	aspirin []calc.Source // drafts and active orders
	p2y12   []calc.Source
	oac     []calc.Source // drafts in focus only
}

// draftFindings classifies the draft MedicationRequests with the
// configuration's code sets (mapping.DrugClasses: the mapping's matching), and
// combines them with the active medications the mapping found. For
// order-select only the selected drafts can trigger a card; the other
// drafts still count towards DAPT.
func (s *Service) draftFindings(k *call, a *assess.Assessment) findings {
	var f findings
	res, err := fhir.ParseBundle(k.ctx.DraftOrders)
	if err != nil {
		return f
	}
	rec := &fhir.Record{Medications: map[string]*fhir.Medication{}}
	meds, _ := fhir.Decode[fhir.Medication](res.Entries, "Medication")
	for i := range meds {
		m := &meds[i]
		if m.ID != "" {
			rec.Medications["Medication/"+m.ID] = m
		}
	}
	for _, e := range res.Entries {
		if e.ResourceType == "Medication" && e.FullURL != "" {
			for i := range meds {
				if meds[i].ID == e.ID {
					rec.Medications[e.FullURL] = &meds[i]
				}
			}
		}
	}
	drafts, _ := fhir.Decode[fhir.MedicationRequest](res.Entries, "MedicationRequest")
	focus := func(id string) bool {
		return k.req.Hook != HookOrderSelect || slices.Contains(k.ctx.Selections, "MedicationRequest/"+id) || slices.Contains(k.ctx.Selections, id)
	}
	var draftAsp, draftP2 []calc.Source
	focusAntiplatelet := false
	for i := range drafts {
		m := &drafts[i]
		if m.Subject != nil {
			if typ, id, ok := m.Subject.Target(); ok && (typ != "Patient" || id != k.ctx.PatientID) {
				continue // another patient's order: never ours to judge
			}
		}
		if m.Status != "" && m.Status != "draft" && m.Status != "active" {
			continue
		}
		concepts, ok := rec.RequestMedication(m)
		if !ok {
			continue
		}
		classes := mapping.DrugClasses(s.Assess.Scoring, concepts)
		src := draftSource(m, concepts)
		inFocus := focus(m.ID)
		if slices.Contains(classes, classAspirin) {
			draftAsp = append(draftAsp, src)
			focusAntiplatelet = focusAntiplatelet || inFocus
		}
		if slices.Contains(classes, classP2Y12) {
			draftP2 = append(draftP2, src)
			focusAntiplatelet = focusAntiplatelet || inFocus
		}
		if inFocus && slices.Contains(classes, classOAC) && !slices.Contains(classes, classVascular) {
			f.oac = append(f.oac, src)
		}
	}
	f.aspirin = append(draftAsp, a.DAPT.Aspirin...)
	f.p2y12 = append(draftP2, a.DAPT.P2Y12...)
	switch {
	case !focusAntiplatelet:
	case len(f.aspirin) > 0 && len(f.p2y12) > 0:
		f.dapt = daptStart
		if a.DAPT.Present != nil && *a.DAPT.Present {
			f.dapt = daptContinue
		}
	case a.DAPT.Present == nil:
		f.dapt = daptPossible
	}
	return f
}

// draftSource describes a draft order for the card: its name as the order
// gives it, marked as a draft.
func draftSource(m *fhir.MedicationRequest, concepts []fhir.CodeableConcept) calc.Source {
	src := calc.Source{Reference: "MedicationRequest/" + m.ID, Date: m.AuthoredOn}
	for _, cc := range concepts {
		name := cc.Text
		if name == "" {
			for _, cd := range cc.Coding {
				if cd.Display != "" {
					name = cd.Display
					break
				}
			}
		}
		if name != "" {
			src.Display = name
			break
		}
	}
	if src.Display == "" && m.MedicationReference != nil {
		src.Display = m.MedicationReference.Display
	}
	if src.Display == "" {
		src.Label = message.New("cds.draft.unnamed", nil)
	} else {
		src.Label = message.New("cds.draft", message.Args{"what": src.Display})
	}
	return src
}

// orderCard is the order hooks' card: only when the drafts start or
// continue DAPT or an oral anticoagulant, for a patient at high bleeding
// risk, or whose risk is undetermined (the summary's verdict).
func (s *Service) orderCard(v *view, f findings) (Card, bool) {
	if f.dapt == daptNone && len(f.oac) == 0 || v.risk == riskNo {
		return Card{}, false
	}
	what := f.what(v)
	c := s.card(v.p, v.indic)
	if v.risk == riskYes {
		why := v.text("cds.why.arc", message.Args{"arc": v.arcText()})
		if v.category == categoryHBR || v.category == categoryVeryHBR {
			why = v.text("cds.why.precise", message.Args{"score": v.score, "label": v.label})
		}
		c.Summary = summary(v.text("cds.order.summary", message.Args{"name": v.verdict(), "why": why, "what": what}))
	} else {
		c.Summary = summary(v.text("cds.order.summary.unknown", message.Args{"verdict": v.verdict(), "what": what, "needs": missingSuffix(s, v)}))
	}
	var b strings.Builder
	b.WriteString(md(v.text("cds.order.why", message.Args{"what": what})) + "\n\n")
	if f.dapt != daptNone {
		writeSources(&b, v, "regimen.aspirin", f.aspirin)
		writeSources(&b, v, "regimen.p2y12", f.p2y12)
		if f.dapt == daptPossible {
			b.WriteString(md(v.text("cds.order.meds-unread", nil)) + "\n\n")
		}
	}
	writeSources(&b, v, "regimen.oac", f.oac)
	if v.risk == riskYes {
		b.WriteString(md(v.text("cds.order.hbr", nil)) + "\n\n")
	} else {
		b.WriteString(md(v.text("cds.order.unknown", nil)) + "\n\n")
	}
	s.writeAssessment(&b, v)
	s.writeGuidance(&b, v)
	s.writeFooter(&b, v)
	c.Detail = b.String()
	return c, true
}

// what says what the drafts do: "start DAPT (aspirin + clopidogrel)".
func (f findings) what(v *view) string {
	var parts message.List
	drugs := drugNames(f.aspirin, f.p2y12)
	switch f.dapt {
	case daptStart:
		parts = append(parts, message.New("cds.what.start", message.Args{"drugs": drugs}))
	case daptContinue:
		parts = append(parts, message.New("cds.what.continue", message.Args{"drugs": drugs}))
	case daptPossible:
		parts = append(parts, message.New("cds.what.possible", message.Args{"drugs": drugs}))
	}
	if len(f.oac) > 0 {
		parts = append(parts, message.New("cds.what.oac", message.Args{"drugs": drugNames(f.oac)}))
	}
	return v.p.Arg(parts)
}

// writeSources lists drugs under a heading (a catalogue key): each as the
// order names it, with its date.
func writeSources(b *strings.Builder, v *view, heading string, srcs []calc.Source) {
	if len(srcs) == 0 {
		return
	}
	fmt.Fprintf(b, "%s\n\n", md(v.text("cds.heading", message.Args{"text": message.New(heading, nil)})))
	for _, src := range srcs {
		fmt.Fprintf(b, "- %s\n", md(v.p.Sprint(calc.SourceMsg(src))))
	}
	b.WriteString("\n")
}

// drugNames is "aspirin + clopidogrel": the first word of each group's
// first drug, the drug's name in RxNorm displays.
func drugNames(groups ...[]calc.Source) string {
	var names []string
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSpace(g[0].Display), " ")
		if name == "" {
			name = "?"
		}
		names = append(names, strings.ToLower(name))
	}
	return strings.Join(names, " + ")
}
