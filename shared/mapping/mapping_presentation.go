package mapping

import (
	"slices"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// presentationAfter is how long after the index PCI an acute coronary
// syndrome may be coded (onset, else recorded date) and still be its
// presentation: diagnoses are often recorded during the stay, after the
// procedure. A project choice, documented on MapRecord.
const presentationAfter = 7 * 24 * time.Hour

// indexPCI is the newest usable PCI Procedure dated within the pci set's
// window (procedures.pci.window_months) and not in the future, or nil.
func (m *mapper) indexPCI() (*fhir.Procedure, calc.Source, time.Time) {
	set, ok := m.cfg.Codes.Procedures["pci"]
	if !ok {
		return nil, calc.Source{}, time.Time{}
	}
	cut := m.now.AddDate(0, -set.WindowMonths, 0)
	var best *procMatch
	for _, pm := range m.procedureMatches(set) {
		if !pm.dated || pm.start.Before(cut) || pm.start.After(m.now.Add(futureSlack)) {
			continue
		}
		if best == nil || pm.start.After(best.start) {
			best = &pm
		}
	}
	if best == nil {
		return nil, calc.Source{}, time.Time{}
	}
	return best.p, best.source(), best.start
}

// linkedToPCI reports whether the PCI names the condition as its reason,
// or shares its encounter.
func linkedToPCI(pci *fhir.Procedure, c *fhir.Condition) bool {
	if pci == nil {
		return false
	}
	for i := range pci.ReasonReference {
		if refersTo(&pci.ReasonReference[i], "Condition", c.ID) {
			return true
		}
	}
	return sameTarget(pci.Encounter, c.Encounter)
}

// pciReason is the record of a PCI reason code in set: the index PCI
// (pciSrc) with that code, named as the PCI's reason; ok is false when
// none of its reason codes is in the set.
func (m *mapper) pciReason(pci *fhir.Procedure, pciSrc calc.Source, set calc.CodeSet) (src calc.Source, ok bool) {
	if pci == nil {
		return calc.Source{}, false
	}
	cd, ok := m.matchAnyConcept(set, pci.ReasonCode)
	if !ok {
		return calc.Source{}, false
	}
	src = pciSrc
	src.Code, src.Display = token(cd), display(cd, fhir.CodeableConcept{})
	src.Label = message.New("source.pci-reason", message.Args{"what": src.Display})
	return src, true
}

// presentation maps pci_presentation, the presentation of the index PCI,
// and records the index PCI (Mapped.IndexPCI). See MapRecord for the rule.
func (m *mapper) presentation() {
	const input = calc.InputPresentation
	pci, pciSrc, pciAt := m.indexPCI()
	if pci != nil {
		m.pci = &pciSrc
	}
	ref := m.now
	if pci != nil {
		ref = pciAt
	}
	acsSet, ccsSet := m.cfg.Codes.Conditions["acs-presentation"], m.cfg.Codes.Conditions["ccs-presentation"]
	days := time.Duration(acsSet.WindowDays) * 24 * time.Hour
	withPCI := func(ev []calc.Source) []calc.Source {
		if pci != nil {
			ev = append(ev, pciSrc)
		}
		return ev
	}

	// ACS: linked to the PCI, dated around it, or recent.
	var acs, acsMaybe []calc.Source
	if src, ok := m.pciReason(pci, pciSrc, acsSet); ok {
		acs = append(acs, src)
	}
	for _, cm := range m.conditionMatches("acs-presentation", false) {
		switch {
		case linkedToPCI(pci, cm.c):
			acs = append(acs, cm.source())
		case !cm.dated:
			acsMaybe = append(acsMaybe, cm.source())
		case near(cm.start, ref.Add(-days), ref.Add(presentationAfter)) || near(cm.start, m.now.Add(-days), m.now.Add(futureSlack)):
			acs = append(acs, cm.source())
		}
	}
	switch {
	case len(acs) > 0:
		m.setPresentation(calc.PresentationACS, withPCI(sortSources(acs)))
		return
	case len(acsMaybe) > 0:
		m.gap(input, GapConfirm, message.New("gap.presentation-undated", message.Args{"what": recordedAs(acsMaybe[0])}), withPCI(acsMaybe)...)
		return
	case !m.conclusive("Condition"):
		m.unknown(input, "Condition")
		return
	}

	// CCS: an index PCI with a current chronic coronary condition (or a
	// CCS reason), and no acute coronary syndrome around it.
	var ccs []calc.Source
	if pci != nil {
		if src, ok := m.pciReason(pci, pciSrc, ccsSet); ok {
			ccs = append(ccs, src)
		}
		for _, cm := range m.conditionMatches("ccs-presentation", false) {
			if linkedToPCI(pci, cm.c) || (m.current(cm.c) && (!cm.dated || cm.start.Before(pciAt.Add(presentationAfter)))) {
				ccs = append(ccs, cm.source())
			}
		}
	}
	if len(ccs) > 0 {
		m.setPresentation(calc.PresentationCCS, withPCI(sortSources(ccs)))
		return
	}
	var msg message.Msg
	switch {
	case pci != nil:
		msg = message.New("gap.presentation-pci", message.Args{"what": recordedAs(pciSrc)})
	case m.rec.Errors["Procedure"] != nil:
		m.unknown(input, "Procedure")
		return
	default:
		msg = message.New("gap.presentation-none", message.Args{"months": m.cfg.Codes.Procedures["pci"].WindowMonths})
	}
	m.gap(input, GapAsk, msg, withPCI(nil)...)
}

// near reports whether t lies in [from, to].
func near(t, from, to time.Time) bool { return !t.Before(from) && !t.After(to) }

func (m *mapper) setPresentation(v string, ev []calc.Source) {
	ev = slices.Clip(ev)
	m.set(calc.InputPresentation, calc.Input{Value: v, Origin: calc.OriginRecord, Source: &ev[0], Evidence: ev})
}
