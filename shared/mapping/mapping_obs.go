package mapping

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// systemUCUM is the code system of UCUM units in Quantity.system.
const systemUCUM = "http://unitsofmeasure.org"

// futureSlack is how far after the assessment time an Observation may be
// dated (clock skew, time zones) and still be used.
const futureSlack = 24 * time.Hour

// obsCand is an Observation of one input, usable by status and date.
type obsCand struct {
	o      *fhir.Observation
	t      time.Time
	date   string // the date as the record gives it
	coding fhir.Coding
}

func (c obsCand) ref() string { return "Observation/" + c.o.ID }

func (c obsCand) source() calc.Source {
	return calc.Source{Reference: c.ref(), Code: token(c.coding), Date: c.date, Display: display(c.coding, c.o.Code)}
}

// effectiveDate returns the date string EffectiveTime used.
func effectiveDate(o *fhir.Observation) string {
	for _, s := range []string{o.EffectiveDateTime, o.EffectiveInstant} {
		if _, _, ok := span(s); ok {
			return s
		}
	}
	if p := o.EffectivePeriod; p != nil {
		if _, _, ok := span(p.Start); ok {
			return p.Start
		}
		if _, _, ok := span(p.End); ok {
			return p.End
		}
	}
	return o.Issued
}

// obsCandidates returns the Observations coded with one of codes, with an
// accepted status and a date in the lookback window, newest first; and the
// newest one older than the window. what names them in warnings (a lab's
// short name).
func (m *mapper) obsCandidates(input string, what message.Msg, codes []calc.Coding) (valid []obsCand, tooOld *obsCand) {
	cutoff := m.now.Add(-m.opts.labLookback())
	for i := range m.rec.Observations {
		o := &m.rec.Observations[i]
		cd, ok := m.obsCoding(o, codes)
		if !ok || !slices.Contains(m.cfg.FHIR.ObservationStatus, o.Status) {
			continue
		}
		t, ok := o.EffectiveTime()
		if !ok {
			m.warn(WarnRecord, input, "warn.obs-undated", message.Args{"what": what})
			continue
		}
		c := obsCand{o: o, t: t, date: effectiveDate(o), coding: cd}
		switch {
		case t.After(m.now.Add(futureSlack)):
			m.warn(WarnRecord, input, "warn.obs-future", message.Args{"what": what, "date": message.Date(c.date)})
		case t.Before(cutoff):
			if tooOld == nil || t.After(tooOld.t) {
				cc := c
				tooOld = &cc
			}
		default:
			valid = append(valid, c)
		}
	}
	sort.SliceStable(valid, func(i, j int) bool {
		if !valid[i].t.Equal(valid[j].t) {
			return valid[i].t.After(valid[j].t)
		}
		if valid[i].o.Issued != valid[j].o.Issued {
			return valid[i].o.Issued > valid[j].o.Issued
		}
		return valid[i].o.ID < valid[j].o.ID
	})
	return valid, tooOld
}

// obsCoding returns the Observation's coding that is one of codes.
func (m *mapper) obsCoding(o *fhir.Observation, codes []calc.Coding) (fhir.Coding, bool) {
	for _, cd := range o.Code.Coding {
		k := m.key(cd.System)
		for _, want := range codes {
			if k == want.System && strings.TrimSpace(cd.Code) == want.Code {
				return cd, true
			}
		}
	}
	return fhir.Coding{}, false
}

// labRead is the newest result of a lab input.
type labRead struct {
	input   string
	cand    *obsCand    // the result that decides (usable or not)
	value   float64     // as given
	unit    string      // UCUM code (or unit text) as given
	problem message.Msg // why cand is not usable; zero when it is
	tooOld  *obsCand
}

func (r labRead) usable() bool { return r.cand != nil && r.problem.IsZero() }

// short is a lab's short name ("Hb").
func short(input string) message.Msg { return message.New("short."+input, nil) }

// readLab finds the newest result with a value. Results without a value
// (dataAbsentReason) are skipped; the newest with a value decides.
func (m *mapper) readLab(lc calc.LabCodes) labRead {
	r := labRead{input: lc.Input}
	valid, tooOld := m.obsCandidates(lc.Input, short(lc.Input), lc.Codes)
	r.tooOld = tooOld
	q := m.cfg.Inputs[lc.Input].Quantity
	for i := range valid {
		c := valid[i]
		vq := c.o.ValueQuantity
		if vq == nil || vq.Value == nil {
			continue
		}
		r.cand, r.value = &c, *vq.Value
		r.unit = strings.TrimSpace(vq.Code)
		if r.unit == "" || (vq.System != "" && vq.System != systemUCUM) {
			r.unit = strings.TrimSpace(vq.Unit)
		}
		value := message.Num{Value: r.value, Decimals: 3}
		switch {
		case vq.Comparator != "":
			r.problem = message.New("problem.comparator", message.Args{"value": vq.Comparator + message.FormatNumber(r.value, 3)})
		case r.unit == "":
			r.problem = message.New("problem.no-unit", message.Args{"value": value})
		default:
			if v, err := m.cfg.Convert(q, r.value, r.unit); err != nil {
				units := message.List{}
				for _, u := range m.cfg.AcceptedUnits(q) {
					units = append(units, m.cfg.UnitLabel(q, u))
				}
				r.problem = message.New("problem.unit", message.Args{"value": value, "unit": r.unit, "units": units})
			} else if math.IsInf(v, 0) || math.IsNaN(v) {
				r.problem = message.New("problem.not-a-number", message.Args{"value": value, "unit": r.unit})
			}
		}
		break
	}
	return r
}

// labInput returns the usable result as an input, marking it stale (with
// one warning, whichever calculators use it) when older than
// fhir.lookback_days.
func (m *mapper) labInput(r labRead) calc.Input {
	src := r.cand.source()
	in := calc.Input{Value: r.value, Unit: r.unit, Origin: calc.OriginRecord, Source: &src}
	if age := m.now.Sub(r.cand.t); age > time.Duration(*m.cfg.FHIR.LookbackDays)*24*time.Hour {
		in.Stale = true
		m.warn(WarnStale, r.input, "warn.stale", message.Args{"what": short(r.input), "value": m.cfg.Measured(r.input, r.value, r.unit),
			"date": message.Date(r.cand.date), "days": days(age), "limit": *m.cfg.FHIR.LookbackDays})
	}
	return in
}

// observations maps the labs, eGFR, smoking status and (for the stroke
// criterion) nothing else: NIHSS is read with the stroke.
func (m *mapper) observations() {
	reads := map[string]labRead{}
	for _, k := range slices.Sorted(maps.Keys(m.cfg.Codes.Labs)) {
		lc := m.cfg.Codes.Labs[k]
		reads[lc.Input] = m.readLab(lc)
	}
	for _, name := range slices.Sorted(maps.Keys(reads)) {
		if name == "egfr" {
			continue
		}
		r := reads[name]
		switch {
		case r.usable():
			m.set(name, m.labInput(r))
		case r.cand != nil:
			m.gap(name, GapConfirm, message.New("gap.lab-unusable", message.Args{"input": m.label(name), "date": message.Date(r.cand.date),
				"problem": r.problem, "unit": m.cfg.UnitLabel(m.cfg.Inputs[name].Quantity, "")}), r.cand.source())
		default:
			m.labMissing(name, r)
		}
	}
	if lc, ok := m.cfg.Codes.Labs["egfr"]; ok {
		m.egfr(reads["egfr"], reads["creatinine"], lc)
	}
	if m.rec.Errors["Observation"] != nil {
		for _, name := range slices.Sorted(maps.Keys(reads)) {
			if _, ok := m.inputs[name]; ok {
				m.warn(WarnRecord, name, "warn.obs-partial", message.Args{"what": short(name)})
			}
		}
	}
	m.smoking()
}

// labMissing records why a lab has no value.
func (m *mapper) labMissing(name string, r labRead) {
	if !m.conclusive("Observation") && m.rec.Errors["Observation"] != nil {
		m.unknown(name, "Observation")
		return
	}
	args := message.Args{"input": m.label(name), "days": days(m.opts.labLookback())}
	msg := message.New("gap.lab-none", args)
	var ev []calc.Source
	if r.tooOld != nil {
		args["date"] = message.Date(r.tooOld.date)
		msg = message.New("gap.lab-too-old", args)
		ev = append(ev, r.tooOld.source())
	}
	// A coded diagnosis hints at the missing value without replacing it.
	for _, hint := range []struct{ input, set string }{
		{"platelets", "thrombocytopenia"},
		{"egfr", "ckd-severe"},
		{"egfr", "ckd-moderate"},
	} {
		if hint.input != name {
			continue
		}
		if cms := m.conditionMatches(hint.set, true); len(cms) > 0 {
			msg = message.New("gap.with-hint", message.Args{"gap": msg, "hint": message.New("hint."+hint.set, nil)})
			for _, cm := range cms {
				ev = append(ev, cm.source())
			}
		}
	}
	m.gap(name, GapNotRecorded, msg, ev...)
}

// creatinineSlack is how much newer than a reported eGFR a creatinine must
// be to be preferred: results of one blood draw share a time.
const creatinineSlack = 24 * time.Hour

// egfr decides between a reported CKD-EPI eGFR and the CKD-EPI 2021
// computation from creatinine, which the engine does when egfr is unset.
func (m *mapper) egfr(r, creat labRead, lc calc.LabCodes) {
	for _, c := range m.ignoredEGFR(lc) {
		m.warn(WarnRecord, "egfr", "warn.egfr-method", message.Args{"date": message.Date(c.date), "what": message.Verbatim(display(c.coding, c.o.Code))})
	}
	haveCreat := creat.usable()
	switch {
	case r.usable() && haveCreat && creat.cand.t.After(r.cand.t.Add(creatinineSlack)):
		m.warn(WarnRecord, "egfr", "warn.egfr-older", message.Args{"date": message.Date(r.cand.date), "creatinine_date": message.Date(creat.cand.date)})
	case r.usable():
		m.set("egfr", m.labInput(r))
	case r.cand != nil && haveCreat:
		m.warn(WarnRecord, "egfr", "warn.egfr-unusable", message.Args{"date": message.Date(r.cand.date), "problem": r.problem})
	case r.cand != nil && r.cand.o.ValueQuantity.Comparator != "":
		vq := r.cand.o.ValueQuantity
		reported := vq.Comparator + message.FormatNumber(r.value, 3)
		if _, err := m.cfg.Convert(m.cfg.Inputs["egfr"].Quantity, r.value, r.unit); err != nil || r.unit == "" {
			m.gap("egfr", GapConfirm, message.New("gap.egfr-comparator", message.Args{"date": message.Date(r.cand.date), "value": reported}), r.cand.source())
			return
		}
		m.set("egfr", m.labInput(r))
		m.warn(WarnRecord, "egfr", "warn.egfr-comparator", message.Args{"value": reported, "date": message.Date(r.cand.date), "used": m.cfg.Amount("egfr", r.value, r.unit)})
	case r.cand != nil:
		m.gap("egfr", GapConfirm, message.New("gap.egfr-unusable", message.Args{"date": message.Date(r.cand.date), "problem": r.problem,
			"unit": m.cfg.UnitLabel(m.cfg.Inputs["egfr"].Quantity, "")}), r.cand.source())
	case haveCreat:
		// The engine computes CKD-EPI 2021 from creatinine: origin derived.
	case creat.cand != nil:
		m.gap("egfr", GapConfirm, message.New("gap.egfr-creatinine", nil), creat.cand.source())
	default:
		m.labMissing("egfr", r)
	}
}

// ignoredEGFR returns eGFR results of methods that are never used (MDRD,
// method not stated) newer than any accepted one.
func (m *mapper) ignoredEGFR(lc calc.LabCodes) []obsCand {
	if len(lc.Ignore) == 0 {
		return nil
	}
	valid, _ := m.obsCandidates("egfr", short("egfr"), lc.Ignore)
	if len(valid) > 0 {
		return valid[:1]
	}
	return nil
}

// smoking maps current_smoker from the newest smoking-status Observation.
func (m *mapper) smoking() {
	oc, ok := m.cfg.Codes.Observations["smoking-status"]
	if !ok {
		return
	}
	what := message.New("short.smoking", nil)
	valid, tooOld := m.obsCandidates(oc.Input, what, oc.Codes)
	for _, c := range valid {
		v := c.o.ValueCodeableConcept
		if v == nil || (len(v.Coding) == 0 && v.Text == "") {
			continue
		}
		src := c.source()
		if len(v.Coding) == 0 {
			m.gap(oc.Input, GapConfirm, message.New("gap.smoking-text", message.Args{"date": message.Date(c.date), "text": v.Text}), src)
			return
		}
		cd, current := m.codingIn(v.Coding, oc.CurrentValues)
		if current {
			src.Display = display(cd, *v)
		} else {
			src.Display = display(v.Coding[0], *v)
			if cd, ok := m.codingIn(v.Coding, oc.AskValues); ok {
				src.Display = display(cd, *v)
				m.gap(oc.Input, GapConfirm, message.New("gap.smoking-ask", message.Args{"date": message.Date(c.date), "text": src.Display}), src)
				return
			}
		}
		in := calc.Input{Value: current, Origin: calc.OriginRecord, Source: &src, Evidence: []calc.Source{src}}
		if age := m.now.Sub(c.t); age > time.Duration(*m.cfg.FHIR.LookbackDays)*24*time.Hour {
			in.Stale = true
			m.warn(WarnStale, oc.Input, "warn.stale", message.Args{"what": what, "value": src.Describe(), "date": message.Date(c.date),
				"days": days(age), "limit": *m.cfg.FHIR.LookbackDays})
		}
		m.set(oc.Input, in)
		return
	}
	switch {
	case m.rec.Errors["Observation"] != nil:
		m.unknown(oc.Input, "Observation")
	case tooOld != nil:
		m.gap(oc.Input, GapNotRecorded, message.New("gap.smoking-old", message.Args{"days": days(m.opts.labLookback()), "date": message.Date(tooOld.date)}), tooOld.source())
	default:
		m.gap(oc.Input, GapNotRecorded, message.New("gap.smoking-none", nil))
	}
}

// codingIn returns the first of codings that is one of list.
func (m *mapper) codingIn(codings []fhir.Coding, list []calc.Coding) (fhir.Coding, bool) {
	for _, cd := range codings {
		k := m.key(cd.System)
		for _, want := range list {
			if k == want.System && cd.Code == want.Code {
				return cd, true
			}
		}
	}
	return fhir.Coding{}, false
}

// nihss returns the NIHSS results dated within [from, to).
func (m *mapper) nihss(from, to time.Time) []obsCand {
	oc, ok := m.cfg.Codes.Observations["nihss"]
	if !ok {
		return nil
	}
	valid, _ := m.obsCandidates("ischemic_stroke", message.New("short.nihss", nil), oc.Codes)
	var out []obsCand
	for _, c := range valid {
		if (c.o.ValueQuantity == nil || c.o.ValueQuantity.Value == nil) && c.o.ValueInteger != nil {
			// NIHSS is a score: EHRs send it as valueInteger as often as
			// valueQuantity. Read it as a unitless quantity.
			o := *c.o
			v := float64(*o.ValueInteger)
			o.ValueQuantity = &fhir.Quantity{Value: &v}
			c.o = &o
		}
		if c.o.ValueQuantity == nil || c.o.ValueQuantity.Value == nil {
			continue
		}
		if !c.t.Before(from) && c.t.Before(to) {
			out = append(out, c)
		}
	}
	return out
}
