package mapping

import (
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Long-term use (planned on fhir.windows.long_term_min_days_per_week days a
// week, for at least long_term_min_days) and the vascular-protection
// rivaroxaban dose come from the configuration (fhir.windows).

// medItem is one active MedicationRequest or MedicationStatement.
type medItem struct {
	ref      string
	concepts []fhir.CodeableConcept
	ok       bool // the drug could be identified by a code
	dosages  []fhir.Dosage
	disp     *fhir.DispenseRequest
	start    time.Time
	started  bool
	date     string
	form     *fhir.CodeableConcept
	text     string
}

func (it medItem) source(cd fhir.Coding) calc.Source {
	d := it.text
	if d == "" {
		d = display(cd, fhir.CodeableConcept{})
	}
	return calc.Source{Reference: it.ref, Code: token(cd), Date: it.date, Display: d}
}

// medText names a medication for a person.
func medText(ccs []fhir.CodeableConcept, ref *fhir.Reference) string {
	for _, cc := range ccs {
		if cc.Text != "" {
			return cc.Text
		}
		for _, cd := range cc.Coding {
			if cd.Display != "" {
				return cd.Display
			}
		}
	}
	if ref != nil && ref.Display != "" {
		return ref.Display
	}
	return ""
}

// coded reports whether any concept has a coding in a configured system.
func (m *mapper) coded(ccs []fhir.CodeableConcept) bool {
	for _, cc := range ccs {
		for _, cd := range cc.Coding {
			if m.key(cd.System) != "" && cd.Code != "" {
				return true
			}
		}
	}
	return false
}

// activeMedications returns the active orders and statements.
func (m *mapper) activeMedications() []medItem {
	var out []medItem
	form := func(ref *fhir.Reference) *fhir.CodeableConcept {
		if ref == nil {
			return nil
		}
		med := m.rec.Medications[ref.Reference]
		if med == nil {
			if t, id, ok := ref.Target(); ok && t == "Medication" {
				med = m.rec.Medications["Medication/"+id]
			}
		}
		if med == nil {
			return nil
		}
		return med.Form
	}
	for i := range m.rec.MedicationRequests {
		r := &m.rec.MedicationRequests[i]
		if !slices.Contains(m.cfg.FHIR.MedicationRequestStatus, r.Status) || !slices.Contains(m.cfg.FHIR.MedicationRequestIntent, r.Intent) {
			continue
		}
		ccs, ok := m.rec.RequestMedication(r)
		it := medItem{ref: "MedicationRequest/" + r.ID, concepts: ccs, ok: ok && m.coded(ccs), dosages: r.DosageInstruction,
			disp: r.DispenseRequest, date: r.AuthoredOn, form: form(r.MedicationReference), text: medText(ccs, r.MedicationReference)}
		it.start, it.started = r.Authored()
		out = append(out, it)
	}
	for i := range m.rec.MedicationStatements {
		s := &m.rec.MedicationStatements[i]
		if !slices.Contains(m.cfg.FHIR.MedicationStatementStatus, s.Status) {
			continue
		}
		ccs, ok := m.rec.StatementMedication(s)
		it := medItem{ref: "MedicationStatement/" + s.ID, concepts: ccs, ok: ok && m.coded(ccs), dosages: s.Dosage,
			form: form(s.MedicationReference), text: medText(ccs, s.MedicationReference)}
		it.date = s.EffectiveDateTime
		if s.EffectivePeriod != nil && s.EffectivePeriod.Start != "" {
			it.date = s.EffectivePeriod.Start
		}
		if st, _, ok := span(it.date); ok {
			it.start, it.started = st, true
		}
		if it.date == "" {
			it.date = s.DateAsserted
		}
		out = append(out, it)
	}
	return out
}

// medMatch reports whether a medication is in code set key of
// codes.medications.
func (m *mapper) medMatch(it medItem, key string) (fhir.Coding, bool) {
	set, ok := m.cfg.Codes.Medications[key]
	if !ok || !it.ok {
		return fhir.Coding{}, false
	}
	return m.matchAnyConcept(set, it.concepts)
}

// medications maps oral_anticoagulation and nsaid_or_steroid, and detects
// DAPT.
func (m *mapper) medications() {
	items := m.activeMedications()
	for _, it := range items {
		if !it.ok {
			m.warn(WarnRecord, "", "warn.drug-uncoded", message.Args{"drug": drugName(it)})
		}
	}
	medTypes := []string{"MedicationRequest", "MedicationStatement"}
	m.oralAnticoagulant(items, medTypes)
	m.nsaidSteroid(items, medTypes)
	m.daptDetect(items, medTypes)
}

// drugName names a medication for a person: the record's text, or "a
// drug without a name".
func drugName(it medItem) message.Msg {
	if it.text == "" {
		return message.New("drug.unnamed", nil)
	}
	return message.Verbatim(it.text)
}

// unidentified lists the active medications with no readable code.
func unidentified(items []medItem) []calc.Source {
	var out []calc.Source
	for _, it := range items {
		if !it.ok {
			src := calc.Source{Reference: it.ref, Date: it.date, Display: it.text}
			if it.text == "" {
				src.Label = drugName(it)
			}
			out = append(out, src)
		}
	}
	return out
}

func (m *mapper) oralAnticoagulant(items []medItem, medTypes []string) {
	const input = "oral_anticoagulation"
	var present, excluded []calc.Source
	ing := map[string]string{}
	for _, it := range items {
		cd, ok := m.medMatch(it, "oral-anticoagulant")
		if !ok {
			continue
		}
		src := it.source(cd)
		ing[src.Reference+"\x00"+src.Code] = m.ingredient("oral-anticoagulant", cd)
		if m.vascularDose(it) {
			src.Label = message.New("source.vascular-dose", message.Args{"what": src.Describe(), "mg": *m.cfg.FHIR.Windows.RivaroxabanVascularMg})
			excluded = append(excluded, src)
			m.warn(WarnRecord, input, "warn.rivaroxaban-vascular", message.Args{"drug": message.Verbatim(src.Display), "mg": *m.cfg.FHIR.Windows.RivaroxabanVascularMg})
			continue
		}
		present = append(present, src)
	}
	m.oac = MedicationFinding{Sources: sortSources(present), Excluded: excluded}
	m.reg.Anticoagulant, m.reg.Vascular = regimenDrugs(m.oac.Sources, ing), regimenDrugs(excluded, ing)
	switch {
	case len(present) > 0:
		m.oac.Present = new(true)
		m.setFlag(input, true, m.oac.Sources)
	case len(unidentified(items)) > 0:
		// A drug SMART Calc cannot identify may be an anticoagulant: the
		// record cannot say "none", so the clinician is asked.
		u := unidentified(items)
		m.gap(input, GapConfirm, message.New("gap.oac-unidentified", message.Args{"drug": u[0].Describe()}), u...)
	case m.conclusive(medTypes...):
		m.oac.Present = new(false)
		m.absent(input, false, absentNote(input, nil))
	default:
		m.unknown(input, medTypes...)
	}
}

// vascularDose reports rivaroxaban 2.5 mg: a 2.5 mg product, or a 2.5 mg
// dose of rivaroxaban.
func (m *mapper) vascularDose(it medItem) bool {
	if _, ok := m.medMatch(it, "rivaroxaban-vascular-dose"); ok {
		return true
	}
	if _, ok := m.medMatch(it, "rivaroxaban"); !ok {
		return false
	}
	for _, d := range it.dosages {
		for _, dr := range d.DoseAndRate {
			q := dr.DoseQuantity
			if q == nil || q.Value == nil {
				continue
			}
			unit := strings.ToLower(strings.TrimSpace(q.Code))
			if unit == "" {
				unit = strings.ToLower(strings.TrimSpace(q.Unit))
			}
			if unit == "mg" && math.Abs(*q.Value-*m.cfg.FHIR.Windows.RivaroxabanVascularMg) < 1e-9 {
				return true
			}
		}
	}
	return false
}

func (m *mapper) nsaidSteroid(items []medItem, medTypes []string) {
	const input = "nsaid_or_steroid"
	var yes, ask []calc.Source
	var why message.Msg
	for _, it := range items {
		for _, key := range []string{"nsaid", "systemic-corticosteroid"} {
			cd, ok := m.medMatch(it, key)
			if !ok {
				continue
			}
			want := m.cfg.Codes.Medications[key].Route
			route := m.route(it, want)
			long, reason := m.longTerm(it)
			src := it.source(cd)
			switch {
			case route == triNo || long == triNo:
				// Not oral/systemic, or not long-term: does not count.
			case route == triYes && long == triYes:
				yes = append(yes, src)
			default:
				ask = append(ask, src)
				if why.IsZero() {
					if route == triMaybe {
						why = message.New("why.route", message.Args{"route": message.New("route."+want, nil)})
					} else {
						why = reason
					}
				}
			}
		}
	}
	switch {
	case len(yes) > 0:
		m.setFlag(input, true, sortSources(yes))
	case len(ask) > 0:
		m.gap(input, GapConfirm, message.New("gap.nsaid-ask", message.Args{"drug": ask[0].Describe(), "why": why,
			"days": *m.cfg.FHIR.Windows.LongTermMinDaysPerWeek}), sortSources(ask)...)
	case len(unidentified(items)) > 0:
		u := unidentified(items)
		m.gap(input, GapConfirm, message.New("gap.nsaid-unidentified", message.Args{"drug": u[0].Describe()}), u...)
	case m.conclusive(medTypes...):
		m.absent(input, false, absentNote(input, nil))
	default:
		m.unknown(input, medTypes...)
	}
}

func (m *mapper) daptDetect(items []medItem, medTypes []string) {
	var asa, p2 []calc.Source
	ing := map[string]string{}
	for _, it := range items {
		for _, k := range []string{"aspirin", "p2y12-inhibitor"} {
			cd, ok := m.medMatch(it, k)
			if !ok {
				continue
			}
			src := it.source(cd)
			ing[src.Reference+"\x00"+src.Code] = m.ingredient(k, cd)
			if k == "aspirin" {
				asa = append(asa, src)
			} else {
				p2 = append(p2, src)
			}
		}
	}
	m.dapt = DAPT{Aspirin: sortSources(asa), P2Y12: sortSources(p2)}
	m.reg.Aspirin, m.reg.P2Y12 = regimenDrugs(m.dapt.Aspirin, ing), regimenDrugs(m.dapt.P2Y12, ing)
	switch {
	case len(asa) > 0 && len(p2) > 0:
		m.dapt.Present = new(true)
	case m.conclusive(medTypes...):
		m.dapt.Present = new(false)
	}
}

// Words that tell a route from free text (a route's text or display, a
// product's name or dose form), used when no route code decides.
var (
	notSystemicWords = []string{"inhal", "nebul", "nasal", "topical", "cutaneous", "dermal", "cream", "ointment", " gel",
		"lotion", "ophthalm", "eye", "otic", " ear ", "rectal", "suppositor", "enema", "vaginal", "patch", "foam", "mouthwash",
		"oromucosal", "spray", "shampoo", "respiratory"}
	oralWords       = []string{"oral", "by mouth", " po ", "tablet", "capsule", "chewable"}
	parenteralWords = []string{"inject", "intraven", "intramusc", "subcut", "infusion", " iv ", " im "}
)

// routeWords reads a route from text: no for inhaled, topical and the
// like, yes for the wanted route, maybe when the text does not tell.
func routeWords(text, want string) tri {
	t := " " + strings.ToLower(strings.NewReplacer(",", " ", "(", " ", ")", " ", ".", " ").Replace(text)) + " "
	has := func(words []string) bool {
		for _, w := range words {
			if strings.Contains(t, w) {
				return true
			}
		}
		return false
	}
	switch {
	case strings.TrimSpace(t) == "":
		return triMaybe
	case has(notSystemicWords):
		return triNo
	case has(oralWords):
		return triYes
	case has(parenteralWords) && want == "systemic":
		return triYes
	case has(parenteralWords):
		return triNo
	}
	return triMaybe
}

// route decides whether a medication is taken by the wanted route
// ("oral", "systemic"; "" accepts any): the coded dosage route first
// (codes.medications route-* sets), then its text, then the product's name
// and dose form.
func (m *mapper) route(it medItem, want string) tri {
	if want == "" {
		return triYes
	}
	meds := m.cfg.Codes.Medications
	req, ok := meds["route-"+want]
	if !ok {
		return triMaybe
	}
	res := triMaybe
	for _, d := range it.dosages {
		if d.Route == nil {
			continue
		}
		if _, ok := m.match(req, *d.Route); ok {
			return triYes
		}
		decided := false
		for _, k := range slices.Sorted(maps.Keys(meds)) {
			if strings.HasPrefix(k, "route-") && k != "route-"+want {
				if _, ok := m.match(meds[k], *d.Route); ok {
					res, decided = triNo, true
				}
			}
		}
		if !decided {
			texts := []string{d.Route.Text}
			for _, cd := range d.Route.Coding {
				texts = append(texts, cd.Display)
			}
			switch routeWords(strings.Join(texts, " "), want) {
			case triYes:
				return triYes
			case triNo:
				res = triNo
			}
		}
	}
	if res != triMaybe {
		return res
	}
	var texts []string
	for _, cc := range it.concepts {
		texts = append(texts, cc.Text)
		for _, cd := range cc.Coding {
			texts = append(texts, cd.Display)
		}
	}
	if it.form != nil {
		texts = append(texts, it.form.Text)
		for _, cd := range it.form.Coding {
			texts = append(texts, cd.Display)
		}
	}
	return routeWords(strings.Join(texts, " "), want)
}

// longTerm decides whether use is planned on ≥4 days a week for ≥30 days,
// from the schedule (timing) and the duration (bounds, supply and repeats,
// or how long the order or statement has been active), and says why when
// it cannot tell.
func (m *mapper) longTerm(it medItem) (tri, message.Msg) {
	prn := len(it.dosages) > 0
	for _, d := range it.dosages {
		if d.AsNeeded == nil || !*d.AsNeeded {
			prn = false
		}
	}
	if prn {
		return triMaybe, message.New("why.as-needed", nil)
	}
	perWeek, known := daysPerWeek(it.dosages)
	if known && perWeek < float64(*m.cfg.FHIR.Windows.LongTermMinDaysPerWeek) {
		return triNo, message.Msg{}
	}
	dur := m.duration(it)
	switch {
	case dur == triNo:
		return triNo, message.Msg{}
	case known && dur == triYes:
		return triYes, message.Msg{}
	case !known:
		return triMaybe, message.New("why.no-schedule", nil)
	}
	return triMaybe, message.New("why.duration", message.Args{"days": *m.cfg.FHIR.Windows.LongTermMinDays})
}

// duration: yes when the record shows use over ≥30 days, no when it shows
// a shorter course, maybe otherwise.
func (m *mapper) duration(it medItem) tri {
	long := time.Duration(*m.cfg.FHIR.Windows.LongTermMinDays) * 24 * time.Hour
	res := triMaybe
	for _, d := range it.dosages {
		if d.Timing == nil || d.Timing.Repeat == nil || d.Timing.Repeat.BoundsPeriod == nil {
			continue
		}
		bp := d.Timing.Repeat.BoundsPeriod
		s, _, okS := span(bp.Start)
		e, _, okE := span(bp.End)
		switch {
		case okS && okE && e.Sub(s) >= long:
			return triYes
		case okS && okE:
			res = triNo
		case okS && m.now.Sub(s) >= long:
			return triYes
		}
	}
	if dr := it.disp; dr != nil {
		repeats := 0
		if dr.NumberOfRepeatsAllowed != nil {
			repeats = *dr.NumberOfRepeatsAllowed
		}
		if q := dr.ExpectedSupplyDuration; q != nil && q.Value != nil {
			if per, ok := durationDays(q); ok {
				if per*float64(1+repeats) >= float64(*m.cfg.FHIR.Windows.LongTermMinDays) {
					return triYes
				}
				res = triNo
			}
		} else if repeats > 0 {
			return triYes
		}
	}
	if it.started && m.now.Sub(it.start) >= long {
		return triYes // still active after 30 days
	}
	return res
}

// durationDays converts a supply duration to days.
func durationDays(q *fhir.Quantity) (float64, bool) {
	unit := q.Code
	if unit == "" {
		unit = q.Unit
	}
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "d", "day", "days":
		return *q.Value, true
	case "wk", "week", "weeks":
		return *q.Value * 7, true
	case "mo", "month", "months":
		return *q.Value * 30, true
	case "a", "year", "years":
		return *q.Value * 365, true
	}
	return 0, false
}

// daysPerWeek is the most days a week any dosage schedules.
func daysPerWeek(ds []fhir.Dosage) (float64, bool) {
	best, known := 0.0, false
	for _, d := range ds {
		if v, ok := scheduleDays(d.Timing); ok {
			best, known = math.Max(best, v), true
		}
	}
	return best, known
}

// timingCodeDays are the v3 GTSAbbreviation timing codes SMART Calc reads,
// as days a week.
var timingCodeDays = map[string]float64{"QD": 7, "BID": 7, "TID": 7, "QID": 7, "AM": 7, "PM": 7, "QHS": 7,
	"Q4H": 7, "Q6H": 7, "Q8H": 7, "Q12H": 7, "QOD": 3.5, "WK": 1, "MO": 7.0 / 30}

func scheduleDays(t *fhir.Timing) (float64, bool) {
	if t == nil {
		return 0, false
	}
	if r := t.Repeat; r != nil {
		if len(r.DayOfWeek) > 0 {
			seen := map[string]bool{}
			for _, d := range r.DayOfWeek {
				seen[d] = true
			}
			return float64(len(seen)), true
		}
		if r.PeriodUnit != "" {
			f := 1.0
			if r.Frequency != nil && *r.Frequency > 0 {
				f = float64(*r.Frequency)
			}
			p := 1.0
			if r.Period != nil && *r.Period > 0 {
				p = *r.Period
			}
			switch r.PeriodUnit {
			case "s", "min", "h":
				return 7, true
			case "d":
				if p <= 1 {
					return 7, true
				}
				return 7 * math.Min(f, p) / p, true
			case "wk":
				return math.Min(7, f/p), true
			case "mo":
				return math.Min(7, 7*f/(p*30)), true
			case "a":
				return math.Min(7, 7*f/(p*365)), true
			}
		}
	}
	if t.Code != nil {
		for _, cd := range t.Code.Coding {
			if v, ok := timingCodeDays[strings.ToUpper(cd.Code)]; ok {
				return v, true
			}
		}
	}
	return 0, false
}

// DrugClasses returns the keys of the configuration's medication code sets
// (codes.medications, route sets excepted) that a drug belongs to, given
// the concepts that name it: for example a CDS Hooks draft order's
// medicationCodeableConcept, or fhir.Record.RequestMedication's result.
// Keys include "oral-anticoagulant", "aspirin", "p2y12-inhibitor", "nsaid"
// and "systemic-corticosteroid". It reads codes only: no route or dose.
func DrugClasses(cfg *calc.Config, concepts []fhir.CodeableConcept) []string {
	m := &mapper{cfg: cfg, sysKey: map[string]string{}}
	for k, uri := range cfg.Codes.Systems {
		m.sysKey[uri] = k
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(cfg.Codes.Medications)) {
		if strings.HasPrefix(k, "route-") {
			continue
		}
		if _, ok := m.matchAnyConcept(cfg.Codes.Medications[k], concepts); ok {
			out = append(out, k)
		}
	}
	return out
}
