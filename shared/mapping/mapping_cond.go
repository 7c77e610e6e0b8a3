package mapping

import (
	"slices"
	"sort"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// The project's choices for linking records in time (documented on
// MapRecord). The criteria's own time rules live in the configuration
// (fhir.windows).
const (
	// bleedEpisodeGap: bleeding conditions less than this apart are one
	// episode (the same bleed coded twice), not a recurrence.
	bleedEpisodeGap = 30 * 24 * time.Hour
	// A transfusion supports a bleed performed from 7 days before its onset
	// to 30 days after it.
	transfusionBefore = 7 * 24 * time.Hour
	transfusionAfter  = 30 * 24 * time.Hour
	// An inpatient stay supports a bleed whose onset lies within it, one day
	// either side.
	staySlack = 24 * time.Hour
	// NIHSS results from 2 days before to 30 days after a stroke's onset
	// grade it.
	nihssBefore = 2 * 24 * time.Hour
	nihssAfter  = 30 * 24 * time.Hour
)

// condMatch is a Condition that matched a code set.
type condMatch struct {
	c          *fhir.Condition
	coding     fhir.Coding
	start, end time.Time
	dated      bool
	date       string
}

func (cm condMatch) source() calc.Source {
	return calc.Source{Reference: "Condition/" + cm.c.ID, Code: token(cm.coding), Date: cm.date, Display: display(cm.coding, cm.c.Code)}
}

// usableConditions drops refuted and entered-in-error conditions.
func (m *mapper) usableConditions() []*fhir.Condition {
	var out []*fhir.Condition
	for i := range m.rec.Conditions {
		c := &m.rec.Conditions[i]
		if slices.Contains(m.cfg.FHIR.ConditionExcludeVerification, c.VerificationStatusCode()) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// conditionDate is the onset (onsetDateTime, onsetPeriod.start), else the
// recorded date, as the span a partial date covers.
func conditionDate(c *fhir.Condition) (start, end time.Time, date string, ok bool) {
	cands := []string{c.OnsetDateTime}
	if c.OnsetPeriod != nil {
		cands = append(cands, c.OnsetPeriod.Start)
	}
	cands = append(cands, c.RecordedDate)
	for _, s := range cands {
		if st, en, ok := span(s); ok {
			return st, en, s, true
		}
	}
	return time.Time{}, time.Time{}, "", false
}

// current reports whether a condition is current: clinical status active,
// recurrence or relapse, or no status and no abatement.
func (m *mapper) current(c *fhir.Condition) bool {
	s := c.ClinicalStatusCode()
	if s == "" {
		return !c.Abated()
	}
	return slices.Contains(m.cfg.FHIR.ConditionActiveStatus, s)
}

// conditionMatches returns the conditions in code set key, newest first
// (undated last); currentOnly keeps current ones.
func (m *mapper) conditionMatches(key string, currentOnly bool) []condMatch {
	set, ok := m.cfg.Codes.Conditions[key]
	if !ok {
		return nil
	}
	var out []condMatch
	for _, c := range m.conds {
		if currentOnly && !m.current(c) {
			continue
		}
		cd, ok := m.match(set, c.Code)
		if !ok {
			continue
		}
		cm := condMatch{c: c, coding: cd}
		cm.start, cm.end, cm.date, cm.dated = conditionDate(c)
		out = append(out, cm)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].dated != out[j].dated {
			return out[i].dated
		}
		return out[i].start.After(out[j].start)
	})
	return out
}

// window applies a code set's time window to a date span.
func (m *mapper) window(set calc.CodeSet, start, end time.Time, dated bool) tri {
	switch {
	case set.WindowMonths > 0:
		return within(start, end, dated, m.now.AddDate(0, -set.WindowMonths, 0))
	case set.WindowDays > 0:
		return within(start, end, dated, m.now.AddDate(0, 0, -set.WindowDays))
	}
	return triYes
}

// windowText names a code set's time window: "12 months".
func windowText(set calc.CodeSet) message.Msg {
	switch {
	case set.WindowMonths > 0:
		return message.New("window.months", message.Args{"n": set.WindowMonths})
	case set.WindowDays > 0:
		return message.New("window.days", message.Args{"n": set.WindowDays})
	}
	return message.Msg{}
}

// recordedAs names a record for a gap's question: what it says and its date
// ("undated" when it has none).
func recordedAs(s calc.Source) message.Msg {
	if s.Date == "" {
		return message.New("source.undated", message.Args{"what": s.Describe()})
	}
	return calc.SourceMsg(s)
}

// condSpec names a code set behind a boolean input; anyStatus counts past
// events (a haemorrhage at any time) whatever their clinical status.
type condSpec struct {
	set       string
	anyStatus bool
}

// conditionFlag decides a boolean input from condition code sets: true when
// a matching condition lies in the set's window (and its required partner
// set matches too), a question when a date straddles the window, false
// when nothing matches and the Condition search was read in full.
func (m *mapper) conditionFlag(input string, specs ...condSpec) {
	var yes, maybe, ask []calc.Source
	for _, sp := range specs {
		set := m.cfg.Codes.Conditions[sp.set]
		var partner []condMatch
		if set.Requires != "" {
			if partner = m.conditionMatches(set.Requires, !sp.anyStatus); len(partner) == 0 {
				continue
			}
		}
		for _, cm := range m.conditionMatches(sp.set, !sp.anyStatus) {
			w := m.window(set, cm.start, cm.end, cm.dated)
			if set.Ask && w != triNo {
				ask = append(ask, cm.source())
				continue
			}
			switch w {
			case triYes:
				yes = append(yes, cm.source())
				for _, p := range partner {
					yes = append(yes, p.source())
				}
			case triMaybe:
				maybe = append(maybe, cm.source())
			}
		}
	}
	switch {
	case len(yes) > 0:
		m.setFlag(input, true, sortSources(yes))
	case len(ask) > 0:
		ask = sortSources(ask)
		m.gap(input, GapConfirm, message.New("gap.condition-ask", message.Args{"input": m.label(input), "what": recordedAs(ask[0])}), ask...)
	case len(maybe) > 0:
		m.gap(input, GapConfirm, message.New("gap.condition-undated", message.Args{"input": m.label(input), "what": recordedAs(maybe[0])}), sortSources(maybe)...)
	case m.conclusive("Condition"):
		m.absent(input, false, absentNote(input, nil))
	default:
		m.unknown(input, "Condition")
	}
}

// conditions maps the condition-based inputs.
func (m *mapper) conditions() {
	m.intracranialHaemorrhage()
	m.conditionFlag("brain_avm", condSpec{"brain-avm", false})
	m.conditionFlag("bleeding_diathesis", condSpec{"bleeding-diathesis", false}, condSpec{"bleeding-diathesis-ask", false})
	m.conditionFlag("cirrhosis_portal_hypertension", condSpec{"cirrhosis", false})
	m.conditionFlag("copd", condSpec{"copd", false})
	m.conditionFlag("diabetes", condSpec{"diabetes", false})
	m.malignancy()
	m.stroke()
	m.myocardialInfarction()
	m.bleeding()
}

// intracranialHaemorrhage maps intracranial_hemorrhage. ARC-HBR counts a
// spontaneous haemorrhage at any time and a traumatic one within the
// traumatic set's window (12 months), whatever their clinical status. A
// code that does not say the cause (the unspecified set: SNOMED CT
// Intracranial hemorrhage, Cerebral hemorrhage) meets the criterion within
// that window, where either cause counts; older, undated or straddling the
// window, only a spontaneous bleed would count, so the clinician is asked
// whether it was spontaneous instead of the criterion being concluded.
func (m *mapper) intracranialHaemorrhage() {
	const input = "intracranial_hemorrhage"
	var yes, maybe, older, undated []calc.Source
	for _, cm := range m.conditionMatches("intracranial-hemorrhage-spontaneous", false) {
		yes = append(yes, cm.source())
	}
	traumatic := m.cfg.Codes.Conditions["intracranial-hemorrhage-traumatic"]
	for _, cm := range m.conditionMatches("intracranial-hemorrhage-traumatic", false) {
		switch m.window(traumatic, cm.start, cm.end, cm.dated) {
		case triYes:
			yes = append(yes, cm.source())
		case triMaybe:
			maybe = append(maybe, cm.source())
		}
	}
	unspecified := m.cfg.Codes.Conditions["intracranial-hemorrhage-unspecified"]
	for _, cm := range m.conditionMatches("intracranial-hemorrhage-unspecified", false) {
		switch m.window(unspecified, cm.start, cm.end, cm.dated) {
		case triYes:
			yes = append(yes, cm.source())
		case triNo:
			older = append(older, cm.source())
		default:
			undated = append(undated, cm.source())
		}
	}
	switch {
	case len(yes) > 0:
		m.setFlag(input, true, sortSources(yes))
	case len(older) > 0 || len(undated) > 0:
		key, ev := "gap.ich-cause", sortSources(append(older, undated...))
		if len(older) == 0 {
			key = "gap.ich-cause-undated"
		}
		m.gap(input, GapConfirm, message.New(key, message.Args{"what": recordedAs(ev[0]), "window": windowText(unspecified)}), ev...)
	case len(maybe) > 0:
		m.gap(input, GapConfirm, message.New("gap.condition-undated", message.Args{"input": m.label(input), "what": recordedAs(maybe[0])}), sortSources(maybe)...)
	case m.conclusive("Condition"):
		m.absent(input, false, absentNote(input, nil))
	default:
		m.unknown(input, "Condition")
	}
}

// malignancy: a current malignancy with onset within the window (12
// months) is active. A current one diagnosed earlier, or undated, may be
// under treatment: the clinician is asked.
func (m *mapper) malignancy() {
	const input = "active_malignancy"
	set := m.cfg.Codes.Conditions["active-malignancy"]
	var yes, ask []calc.Source
	for _, cm := range m.conditionMatches("active-malignancy", true) {
		if m.window(set, cm.start, cm.end, cm.dated) == triYes {
			yes = append(yes, cm.source())
		} else {
			ask = append(ask, cm.source())
		}
	}
	switch {
	case len(yes) > 0:
		m.setFlag(input, true, sortSources(yes))
	case len(ask) > 0:
		m.gap(input, GapConfirm, message.New("gap.malignancy", message.Args{"what": recordedAs(ask[0]), "window": windowText(set)}), sortSources(ask)...)
	case m.conclusive("Condition"):
		m.absent(input, false, absentNote(input, nil))
	default:
		m.unknown(input, "Condition")
	}
}

// stroke maps ischemic_stroke: major within the window (6 months) with
// NIHSS ≥ the configured threshold, minor otherwise; a recent stroke
// without an NIHSS is asked.
func (m *mapper) stroke() {
	const input = "ischemic_stroke"
	set := m.cfg.Codes.Conditions["ischemic-stroke"]
	strokes := m.conditionMatches("ischemic-stroke", false)
	if len(strokes) == 0 {
		if m.conclusive("Condition") {
			m.absent(input, "none", absentNote(input, nil))
		} else {
			m.unknown(input, "Condition")
		}
		return
	}
	threshold := 5.0
	if oc, ok := m.cfg.Codes.Observations["nihss"]; ok && oc.MajorAtLeast != nil {
		threshold = *oc.MajorAtLeast
	}
	var major, pending, all []calc.Source
	for _, s := range strokes {
		all = append(all, s.source())
		w := m.window(set, s.start, s.end, s.dated)
		if w == triNo {
			continue
		}
		severe, ev := m.strokeSeverity(s, threshold)
		all = append(all, ev...)
		switch {
		case w == triYes && severe == triYes:
			major = append(major, s.source())
			major = append(major, ev...)
		case severe != triNo:
			pending = append(pending, s.source())
			pending = append(pending, ev...)
		}
	}
	switch {
	case len(major) > 0:
		m.set(input, calc.Input{Value: "major", Origin: calc.OriginRecord, Source: &major[0], Evidence: sortSources(major)})
	case len(pending) > 0:
		m.gap(input, GapConfirm, message.New("gap.stroke", message.Args{"what": recordedAs(pending[0]), "window": windowText(set),
			"threshold": message.Num{Value: threshold}}), sortSources(pending)...)
	default:
		all = sortSources(all)
		m.set(input, calc.Input{Value: "minor", Origin: calc.OriginRecord, Source: &all[0], Evidence: all})
	}
}

// strokeSeverity looks for an NIHSS near the stroke: an NIHSS Observation,
// or an ICD-10-CM NIHSS code (R29.7xx) as a Condition. yes: ≥ threshold;
// no: a score below it and none above; maybe: no score.
func (m *mapper) strokeSeverity(s condMatch, threshold float64) (tri, []calc.Source) {
	if !s.dated {
		return triMaybe, nil
	}
	from, to := s.start.Add(-nihssBefore), s.end.Add(nihssAfter)
	res, found := triMaybe, false
	var ev []calc.Source
	for _, c := range m.nihss(from, to) {
		src := c.source()
		src.Label = message.New("source.nihss", message.Args{"score": message.Num{Value: *c.o.ValueQuantity.Value}})
		ev = append(ev, src)
		if *c.o.ValueQuantity.Value >= threshold {
			res = triYes
		} else if !found {
			res = triNo
		}
		found = true
	}
	for _, cm := range m.conditionMatches("nihss-5-or-more", false) {
		if cm.dated && !cm.start.Before(from) && cm.start.Before(to) {
			ev = append(ev, cm.source())
			res = triYes
		}
	}
	return res, ev
}

// myocardialInfarction maps nstemi_stemi (an acute MI within 30 days: the
// index presentation) and prior_mi (an old MI, or an acute MI coded more
// than 30 days ago).
func (m *mapper) myocardialInfarction() {
	acuteSet := m.cfg.Codes.Conditions["acute-mi"]
	var index, indexMaybe, prior, priorMaybe []calc.Source
	for _, cm := range m.conditionMatches("acute-mi", false) {
		switch m.window(acuteSet, cm.start, cm.end, cm.dated) {
		case triYes:
			index = append(index, cm.source())
		case triNo:
			prior = append(prior, cm.source())
		default:
			indexMaybe = append(indexMaybe, cm.source())
			priorMaybe = append(priorMaybe, cm.source())
		}
	}
	for _, cm := range m.conditionMatches("prior-mi", false) {
		prior = append(prior, cm.source())
	}
	window := message.Args{"window": windowText(acuteSet)}
	decide := func(input string, yes, maybe []calc.Source) {
		switch {
		case len(yes) > 0:
			m.setFlag(input, true, sortSources(yes))
		case len(maybe) > 0:
			m.gap(input, GapConfirm, message.New("gap.mi-undated."+input, message.Args{"what": recordedAs(maybe[0]), "window": windowText(acuteSet)}), maybe...)
		case m.conclusive("Condition"):
			m.absent(input, false, absentNote(input, window))
		default:
			m.unknown(input, "Condition")
		}
	}
	decide("nstemi_stemi", index, indexMaybe)
	decide("prior_mi", prior, priorMaybe)
}

// usableProcedure drops procedures that did not happen.
func usableProcedure(p *fhir.Procedure) bool {
	switch p.Status {
	case "entered-in-error", "not-done", "preparation":
		return false
	}
	return true
}

// procedureDate is performed[x] as a date span.
func procedureDate(p *fhir.Procedure) (start, end time.Time, date string, ok bool) {
	cands := []string{p.PerformedDateTime}
	if pp := p.PerformedPeriod; pp != nil {
		cands = append(cands, pp.Start, pp.End)
	}
	for _, s := range cands {
		if st, en, ok := span(s); ok {
			return st, en, s, true
		}
	}
	return time.Time{}, time.Time{}, "", false
}

func procedureSource(p *fhir.Procedure, cd fhir.Coding, date string) calc.Source {
	return calc.Source{Reference: "Procedure/" + p.ID, Code: token(cd), Date: date, Display: display(cd, p.Code)}
}

// procMatch is a usable Procedure that matched a code set, as condMatch is
// for a Condition.
type procMatch struct {
	p          *fhir.Procedure
	coding     fhir.Coding
	start, end time.Time
	dated      bool
	date       string
}

func (pm procMatch) source() calc.Source { return procedureSource(pm.p, pm.coding, pm.date) }

// procedureMatches returns the usable procedures in set, in record order,
// each with the date span it was performed in.
func (m *mapper) procedureMatches(set calc.CodeSet) []procMatch {
	var out []procMatch
	for i := range m.rec.Procedures {
		p := &m.rec.Procedures[i]
		if !usableProcedure(p) {
			continue
		}
		cd, ok := m.match(set, p.Code)
		if !ok {
			continue
		}
		pm := procMatch{p: p, coding: cd}
		pm.start, pm.end, pm.date, pm.dated = procedureDate(p)
		out = append(out, pm)
	}
	return out
}

// refersTo reports whether a reference names typ/id.
func refersTo(r *fhir.Reference, typ, id string) bool {
	if r == nil || id == "" {
		return false
	}
	t, i, ok := r.Target()
	return ok && t == typ && i == id
}

// sameTarget reports whether two references name the same resource.
func sameTarget(a, b *fhir.Reference) bool {
	if a == nil || b == nil {
		return false
	}
	ta, ia, oka := a.Target()
	tb, ib, okb := b.Target()
	return oka && okb && ta == tb && ia == ib
}

// bleedSupport returns the transfusions and inpatient stays that show a
// bleed needed hospitalisation or transfusion.
func (m *mapper) bleedSupport(cm condMatch) []calc.Source {
	var out []calc.Source
	bleedingSets := []calc.CodeSet{m.cfg.Codes.Conditions["prior-bleeding-gi"], m.cfg.Codes.Conditions["prior-bleeding-other"]}
	isBleeding := func(ccs []fhir.CodeableConcept) bool {
		for _, set := range bleedingSets {
			if _, ok := m.matchAnyConcept(set, ccs); ok {
				return true
			}
		}
		return false
	}
	if tset, ok := m.cfg.Codes.Procedures["transfusion"]; ok {
		for _, pm := range m.procedureMatches(tset) {
			link := sameTarget(pm.p.Encounter, cm.c.Encounter) || isBleeding(pm.p.ReasonCode) ||
				(pm.dated && cm.dated && !pm.start.Before(cm.start.Add(-transfusionBefore)) && !pm.start.After(cm.end.Add(transfusionAfter)))
			if link {
				src := pm.source()
				src.Label = message.New("source.transfusion", message.Args{"what": src.Describe()})
				out = append(out, src)
			}
		}
	}
	for i := range m.rec.Encounters {
		e := &m.rec.Encounters[i]
		if !e.Inpatient() || e.Status == "cancelled" || e.Status == "entered-in-error" || e.Status == "planned" {
			continue
		}
		var es, ee time.Time
		var edated bool
		date := ""
		if e.Period != nil {
			es, _, edated = span(e.Period.Start)
			date = e.Period.Start
			if t, _, ok := span(e.Period.End); ok {
				ee = t
			} else {
				ee = m.now
			}
		}
		overlap := edated && cm.dated && !cm.start.Before(es.Add(-staySlack)) && !cm.start.After(ee.Add(staySlack))
		link := refersTo(cm.c.Encounter, "Encounter", e.ID) || overlap || (isBleeding(e.ReasonCode) && (overlap || !cm.dated))
		for _, d := range e.Diagnosis {
			if refersTo(&d.Condition, "Condition", cm.c.ID) {
				link = true
			}
		}
		if link {
			out = append(out, calc.Source{Reference: "Encounter/" + e.ID, Code: token(fhir.Coding{System: e.Class.System, Code: e.Class.Code}), Date: date,
				Display: e.Class.Display, Label: message.New("source.inpatient-stay", nil)})
		}
	}
	return out
}

// bleedEpisode is one or more bleeding conditions close in time.
type bleedEpisode struct {
	conds      []condMatch // newest first
	start      time.Time   // the oldest bleed's onset, for merging
	dated      bool
	support    []calc.Source
	recurrence bool
}

func (ep bleedEpisode) sources() []calc.Source {
	var out []calc.Source
	for _, c := range ep.conds {
		out = append(out, c.source())
	}
	return append(out, ep.support...)
}

// bleeding maps bleeding_history (ARC-HBR) and prior_bleeding (PRECISE).
func (m *mapper) bleeding() {
	seen := map[*fhir.Condition]bool{}
	var bleeds []condMatch
	for _, key := range []string{"prior-bleeding-gi", "prior-bleeding-other"} {
		for _, cm := range m.conditionMatches(key, false) {
			if !seen[cm.c] {
				seen[cm.c] = true
				bleeds = append(bleeds, cm)
			}
		}
	}
	sort.SliceStable(bleeds, func(i, j int) bool {
		if bleeds[i].dated != bleeds[j].dated {
			return bleeds[i].dated
		}
		return bleeds[i].start.After(bleeds[j].start)
	})
	// Episodes: dated bleeds less than bleedEpisodeGap apart are one.
	var eps []bleedEpisode
	for _, b := range bleeds {
		n := len(eps)
		if b.dated && n > 0 && eps[n-1].dated && eps[n-1].start.Sub(b.start) < bleedEpisodeGap {
			eps[n-1].conds = append(eps[n-1].conds, b)
			eps[n-1].start = b.start
			continue
		}
		eps = append(eps, bleedEpisode{conds: []condMatch{b}, start: b.start, dated: b.dated})
	}
	for i := range eps {
		ep := &eps[i]
		for _, c := range ep.conds {
			ep.support = append(ep.support, m.bleedSupport(c)...)
			if s := c.c.ClinicalStatusCode(); s == "recurrence" || s == "relapse" {
				ep.recurrence = true
			}
		}
		ep.support = sortSources(ep.support)
	}
	var sup, unsup []bleedEpisode
	for _, ep := range eps {
		if len(ep.support) > 0 {
			sup = append(sup, ep)
		} else {
			unsup = append(unsup, ep)
		}
	}
	cut6, cut12 := m.now.AddDate(0, -*m.cfg.FHIR.Windows.BleedingMajorMonths, 0), m.now.AddDate(0, -*m.cfg.FHIR.Windows.BleedingMinorMonths, 0)
	// Windows apply to the episode's newest bleed.
	w := func(ep bleedEpisode, cut time.Time) tri {
		n := ep.conds[0]
		return within(n.start, n.end, n.dated, cut)
	}

	evidence := func(list []bleedEpisode) []calc.Source {
		var out []calc.Source
		for _, ep := range list {
			out = append(out, ep.sources()...)
		}
		return sortSources(out)
	}
	setHistory := func(v string, ev []calc.Source) {
		in := calc.Input{Value: v, Origin: calc.OriginRecord}
		if len(ev) > 0 {
			in.Source, in.Evidence = &ev[0], ev
		}
		m.set("bleeding_history", in)
	}

	// prior_bleeding: any supported bleed, at any time.
	switch {
	case len(sup) > 0:
		m.setFlag("prior_bleeding", true, evidence(sup))
	case len(unsup) > 0:
		m.gap("prior_bleeding", GapConfirm, m.askBleed(unsup[0]), evidence(unsup)...)
	case m.conclusive("Condition"):
		m.absent("prior_bleeding", false, absentNote("prior_bleeding", nil))
	default:
		m.unknown("prior_bleeding", "Condition")
	}

	// bleeding_history: major, minor or none (ARC-HBR §2).
	major := len(sup) >= 2
	for _, ep := range sup {
		if w(ep, cut6) == triYes || ep.recurrence {
			major = true
		}
	}
	if major {
		setHistory("major", evidence(sup))
		return
	}
	pending := len(unsup) > 0 && len(sup)+len(unsup) >= 2 // could be recurrent
	for _, ep := range unsup {
		if w(ep, cut12) != triNo {
			pending = true // could be major or minor once confirmed
		}
	}
	for _, ep := range sup {
		if w(ep, cut6) == triMaybe || w(ep, cut12) == triMaybe {
			pending = true
		}
	}
	switch {
	case pending:
		ask := unsup
		if len(ask) == 0 {
			ask = sup
		}
		m.gap("bleeding_history", GapConfirm, m.askBleed(ask[0]), evidence(append(append([]bleedEpisode(nil), unsup...), sup...))...)
	case len(sup) == 1 && w(sup[0], cut12) == triYes:
		setHistory("minor", evidence(sup))
	case len(eps) > 0 && m.conclusive("Condition"):
		m.absent("bleeding_history", "none", message.New("absent.bleeding_history.old", message.Args{"months": *m.cfg.FHIR.Windows.BleedingMinorMonths}))
	case len(eps) == 0 && m.conclusive("Condition"):
		m.absent("bleeding_history", "none", absentNote("bleeding_history", nil))
	default:
		m.unknown("bleeding_history", "Condition")
	}
}

// askBleed is the question about an unsupported (or undated) bleed.
func (m *mapper) askBleed(ep bleedEpisode) message.Msg {
	what := recordedAs(ep.conds[0].source())
	if len(ep.support) == 0 {
		var unread message.List
		for _, t := range []string{"Procedure", "Encounter"} {
			if m.rec.Errors[t] != nil {
				unread = append(unread, ResourceMsg(t))
			}
		}
		if len(unread) > 0 {
			return message.New("gap.bleed-unsupported.unread", message.Args{"what": what, "unread": unread})
		}
		return message.New("gap.bleed-unsupported", message.Args{"what": what})
	}
	return message.New("gap.bleed-date", message.Args{"what": what, "major": *m.cfg.FHIR.Windows.BleedingMajorMonths, "minor": *m.cfg.FHIR.Windows.BleedingMinorMonths})
}

// procedures maps recent major surgery or trauma, complex PCI and
// bare-metal stent. Complex PCI has no code set (no terminology code means
// it), so the clinician is always asked; a configuration without a set for
// an input asks the same way.
func (m *mapper) procedures() {
	m.recentSurgery()
	for _, p := range []struct{ input, set string }{
		{"complex_pci", "complex-pci"},
		{"bare_metal_stent", "bare-metal-stent"},
	} {
		set, hasSet := m.cfg.Codes.Procedures[p.set]
		var ev []calc.Source
		if hasSet {
			ev = m.recentProcedures(set)
		}
		switch {
		case len(ev) > 0:
			m.setFlag(p.input, true, sortSources(ev))
		case hasSet && m.rec.Errors["Procedure"] != nil:
			m.unknown(p.input, "Procedure")
		default:
			m.gap(p.input, GapAsk, message.New("gap."+p.set, nil))
		}
	}
}

// recentProcedures returns the usable procedures of set performed within
// the recent-days window.
func (m *mapper) recentProcedures(set calc.CodeSet) []calc.Source {
	var ev []calc.Source
	cut := m.now.AddDate(0, 0, -*m.cfg.FHIR.Windows.RecentDays)
	for _, pm := range m.procedureMatches(set) {
		if within(pm.start, pm.end, pm.dated, cut) == triYes {
			ev = append(ev, pm.source())
		}
	}
	return ev
}

// recentSurgery: met by a procedure in the major-surgery set within 30
// days; asked about any other procedure (not PCI, angiography, transfusion
// or a non-surgical category) or injury within 30 days; false when there is
// none and the searches were read in full.
func (m *mapper) recentSurgery() {
	const input = "recent_major_surgery_trauma"
	nDays := *m.cfg.FHIR.Windows.RecentDays
	if inj, ok := m.cfg.Codes.Conditions["injury"]; ok && inj.WindowDays > 0 {
		nDays = inj.WindowDays
	}
	cut := m.now.AddDate(0, 0, -nDays)
	procs := m.cfg.Codes.Procedures
	var major, ask []calc.Source
	for i := range m.rec.Procedures {
		p := &m.rec.Procedures[i]
		if !usableProcedure(p) {
			continue
		}
		ps, pe, date, dated := procedureDate(p)
		if !dated || within(ps, pe, dated, cut) == triNo || ps.After(m.now.Add(futureSlack)) {
			continue // undated procedures cannot be placed in the window
		}
		if cd, ok := m.match(procs["major-surgery"], p.Code); ok && within(ps, pe, dated, cut) == triYes {
			src := procedureSource(p, cd, date)
			major = append(major, src)
			continue
		}
		skip := false
		for _, k := range []string{"not-surgery", "transfusion", "bare-metal-stent"} {
			if _, ok := m.match(procs[k], p.Code); ok {
				skip = true
			}
		}
		if p.Category != nil {
			if _, ok := m.match(procs["non-surgical-category"], *p.Category); ok {
				skip = true
			}
		}
		if !skip {
			var cd fhir.Coding
			if len(p.Code.Coding) > 0 {
				cd = p.Code.Coding[0]
			}
			ask = append(ask, procedureSource(p, cd, date))
		}
	}
	if inj, ok := m.cfg.Codes.Conditions["injury"]; ok {
		for _, cm := range m.conditionMatches("injury", false) {
			if m.window(inj, cm.start, cm.end, cm.dated) == triYes {
				ask = append(ask, cm.source())
			}
		}
		for i := range m.rec.Encounters {
			e := &m.rec.Encounters[i]
			if e.Status == "cancelled" || e.Status == "entered-in-error" {
				continue
			}
			for _, rc := range e.ReasonCode {
				cd, ok := m.match(inj, rc)
				if !ok || e.Period == nil {
					continue
				}
				if es, ee, ok := span(e.Period.Start); ok && within(es, ee, true, cut) == triYes {
					ask = append(ask, calc.Source{Reference: "Encounter/" + e.ID, Code: token(cd), Date: e.Period.Start, Display: display(cd, rc)})
				}
			}
		}
	}
	switch {
	case len(major) > 0:
		m.setFlag(input, true, sortSources(major))
	case len(ask) > 0:
		ask = sortSources(ask)
		m.gap(input, GapAsk, message.New("gap.surgery-ask", message.Args{"what": recordedAs(ask[0]), "days": nDays}), ask...)
	case m.opts.AskRecentSurgery:
		m.gap(input, GapAsk, message.New("gap.surgery-confirm", message.Args{"days": nDays}))
	case m.conclusive("Procedure", "Condition"):
		m.absent(input, false, absentNote(input, message.Args{"days": nDays}))
	default:
		m.unknown(input, "Procedure", "Condition")
	}
}

// tradeoff maps what is left: the trade-off model's "liver disease, cancer
// or surgery" (true when the record shows one of them; otherwise asked, as
// the reference notes it is never auto-detected) and non-deferrable major
// surgery, a plan no searched record shows (always asked).
func (m *mapper) tradeoff() {
	var ev []calc.Source
	for _, name := range []string{"cirrhosis_portal_hypertension", "active_malignancy", "recent_major_surgery_trauma"} {
		if in, ok := m.inputs[name]; ok {
			if b, _ := in.Value.(bool); b {
				ev = append(ev, in.Evidence...)
			}
		}
	}
	if len(ev) > 0 {
		m.setFlag("liver_cancer_surgery", true, sortSources(ev))
	} else {
		m.gap("liver_cancer_surgery", GapAsk, message.New("gap.liver-cancer-surgery", nil))
	}
	m.gap("nondeferrable_major_surgery", GapAsk, message.New("gap.nondeferrable", nil))
}
