package cds

import (
	"fmt"
	"slices"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
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

// draftSource describes a draft order for the card.
func draftSource(m *fhir.MedicationRequest, concepts []fhir.CodeableConcept) calc.Source {
	src := calc.Source{Reference: "MedicationRequest/" + m.ID, Date: m.AuthoredOn, Display: "draft order"}
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
			src.Display = name + " (draft order)"
			break
		}
	}
	if m.MedicationReference != nil && m.MedicationReference.Display != "" && src.Display == "draft order" {
		src.Display = m.MedicationReference.Display + " (draft order)"
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
	what := f.what()
	c := s.card(v.indic)
	if v.risk == riskYes {
		why := "ARC-HBR " + v.arcText()
		if v.category == categoryHBR || v.category == categoryVeryHBR {
			why = "PRECISE-HBR " + v.score + ", " + v.label
		}
		c.Summary = summary(fmt.Sprintf("%s (%s): the draft orders %s", verdictHBR, why, what))
	} else {
		c.Summary = summary(verdictUndetermined + ", and the draft orders " + what + missingSuffix(s, v))
	}
	var b strings.Builder
	b.WriteString("**Why this card:** the draft orders " + md(what) + ".\n\n")
	if f.dapt != daptNone {
		writeSources(&b, "Aspirin", f.aspirin)
		writeSources(&b, "P2Y12 inhibitor", f.p2y12)
		if f.dapt == daptPossible {
			b.WriteString("The active medications could not be read, so SMART Calc cannot tell whether the other part of DAPT is already given.\n\n")
		}
	}
	writeSources(&b, "Oral anticoagulant", f.oac)
	if v.risk == riskYes {
		b.WriteString("The patient is at high bleeding risk:\n\n")
	} else {
		b.WriteString("SMART Calc could not decide whether the patient is at high bleeding risk:\n\n")
	}
	s.writeAssessment(&b, v)
	s.writeGuidance(&b, v)
	s.writeFooter(&b, v)
	c.Detail = b.String()
	return c, true
}

// what says what the drafts do: "start DAPT (aspirin + clopidogrel)".
func (f findings) what() string {
	var parts []string
	drugs := drugNames(f.aspirin, f.p2y12)
	switch f.dapt {
	case daptStart:
		parts = append(parts, "start DAPT ("+drugs+")")
	case daptContinue:
		parts = append(parts, "continue DAPT ("+drugs+")")
	case daptPossible:
		parts = append(parts, "may start DAPT ("+drugs+")")
	}
	if len(f.oac) > 0 {
		parts = append(parts, "add an oral anticoagulant ("+drugNames(f.oac)+")")
	}
	return strings.Join(parts, " and ")
}

func writeSources(b *strings.Builder, what string, srcs []calc.Source) {
	if len(srcs) == 0 {
		return
	}
	fmt.Fprintf(b, "%s:\n\n", what)
	for _, src := range srcs {
		line := src.Display
		if line == "" {
			line = src.Reference
		} else if src.Reference != "" {
			line += ", " + src.Reference
		}
		if src.Date != "" {
			line += ", " + dateOnly(src.Date)
		}
		fmt.Fprintf(b, "- %s\n", md(line))
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
		if name == "" || name == "draft" {
			name = "?"
		}
		names = append(names, strings.ToLower(name))
	}
	return strings.Join(names, " + ")
}
