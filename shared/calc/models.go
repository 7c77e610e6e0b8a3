package calc

import (
	"math"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// points evaluates an additive points score (PRECISE-HBR, PRECISE-DAPT).
func (c *evalCtx) points(m *PointsModel) {
	total, complete := 0.0, true
	add := func(comp Component, pts float64) {
		total += pts
		comp.Points = ptr(c.e.roundTo(pts, 3))
		c.res.Components = append(c.res.Components, comp)
	}
	if m.Base != nil {
		add(Component{Name: "base"}, *m.Base.Points)
	}
	for _, t := range m.Linear {
		x, ok := c.num(t.Input)
		if !ok {
			complete = false
			continue
		}
		comp := Component{Name: t.Name, Input: t.Input}
		xc := clamp(x, *t.Truncate.Min, *t.Truncate.Max)
		if xc != x {
			// The score's own rule: shown in the component's row.
			comp.Counted, comp.Truncated = ptr(xc), "upper"
			if xc == *t.Truncate.Min {
				comp.Truncated = "lower"
			}
		}
		add(comp, *t.PointsPerUnit*(xc-*t.Pivot))
	}
	for _, t := range m.Axes {
		x, ok := c.num(t.Input)
		if !ok {
			complete = false
			continue
		}
		frac := clamp((x-*t.ZeroAt)/(*t.MaxAt-*t.ZeroAt), 0, 1)
		add(Component{Name: t.Name, Input: t.Input}, *t.MaxPoints*frac)
	}
	for _, t := range m.Flags {
		b, ok := c.flag(t.Input)
		if !ok {
			complete = false
			continue
		}
		pts := 0.0
		if b {
			pts = *t.Points
		}
		add(Component{Name: t.Name, Input: t.Input}, pts)
	}
	for _, t := range m.AnyOf {
		met := c.anyOf(t)
		if met == nil {
			complete = false
			continue
		}
		pts := 0.0
		if *met {
			pts = *t.Points
		}
		add(Component{Name: t.Name, Input: t.Input}, pts)
	}
	if !complete {
		// The lower bound and what it means are the result's message
		// (incompleteMessage), not a warning.
		lb := c.e.roundHalfUp(total)
		c.res.Values = append(c.res.Values,
			Value{Name: "score", Value: nil, Unit: "{score}", Display: message.New("value.incomplete", nil)},
			Value{Name: "score_lower_bound", Value: lb, Unit: "{score}", Display: message.New("value.lower-bound", message.Args{"score": lb}), Category: band(m.Bands, lb).Category})
		return
	}
	score := c.e.roundHalfUp(total)
	b := band(m.Bands, score)
	c.res.Values = append(c.res.Values, Value{Name: "score", Value: score, Unit: "{score}", Category: b.Category,
		Display: message.New("value.score", message.Args{"score": score, "band": c.cfg.Text("band." + c.def.ID + "." + b.Category)})})
	if rc := m.RiskCurve; rc != nil {
		risk := 100 * (1 - math.Exp(-math.Exp(*rc.Intercept+*rc.Slope*score)))
		risk = c.e.roundTo(risk, *rc.Decimals)
		c.res.Values = append(c.res.Values, Value{Name: rc.Name, Value: risk, Unit: "%",
			Display: message.New("value.percent", message.Args{"value": riskNum(risk)})})
		if score < *rc.Calibrated.Min || score > *rc.Calibrated.Max {
			c.warn(WarnExtrapolate, "", "warn.extrapolated", message.Args{"title": c.res.Title, "score": score,
				"min": *rc.Calibrated.Min, "max": *rc.Calibrated.Max})
		}
	}
}

// anyOf decides an "at least one of" item: its summary input when given,
// otherwise the criteria it summarises. Nil means undecided.
func (c *evalCtx) anyOf(t AnyOfTerm) *bool {
	src, _ := c.cfg.Calculator(t.CriteriaFrom)
	var summary *bool
	if g, ok := c.lookup(t.Input); ok {
		summary = ptr(g.b)
		if g.b {
			return summary
		}
	}
	var undecided bool
	var asks []string
	for _, id := range t.Criteria {
		cr, _ := src.criterion(id)
		var met *bool
		var ev message.Msg
		ask := c.probe(func() { met, ev = c.rule(cr.Rule) })
		if summary != nil {
			if met != nil && *met {
				c.warn(WarnConflict, t.Input, "warn.summary-contradicted", message.Args{"input": c.cfg.InputLabel(t.Input),
					"criterion": c.cfg.Text("criterion." + cr.ID), "evidence": ev})
				return ptr(true)
			}
			continue
		}
		switch {
		case met == nil:
			undecided = true
			asks = append(asks, ask...)
		case *met:
			return ptr(true)
		}
	}
	if summary != nil {
		return summary
	}
	if undecided {
		for _, a := range asks {
			c.miss(a)
		}
		return nil
	}
	return ptr(false)
}

// rule decides one rule: met, not met, or nil when the inputs cannot tell
// (the missing inputs are recorded). The evidence says it in clinical
// language: "Hb 11.8 g/dL on 30 Nov 2026: 11–12.9 g/dL in a man", the
// records that show a finding, the search that found none, or why the
// rule cannot be decided.
func (c *evalCtx) rule(r Rule) (*bool, message.Msg) {
	switch r.Type {
	case "flag":
		b, ok := c.flag(r.Input)
		if !ok {
			return nil, c.unknownEvidence(r.Input)
		}
		return ptr(b), c.answerEvidence(r.Input, b)
	case "equals":
		s, ok := c.enum(r.Input)
		if !ok {
			return nil, c.unknownEvidence(r.Input)
		}
		return ptr(s == r.Value), c.answerEvidence(r.Input, s == r.Value)
	}
	x, ok := c.num(r.Input)
	if !ok {
		return nil, c.unknownEvidence(r.Input)
	}
	cond := func(key string, args message.Args) message.Msg { return message.New(key, args) }
	amount := func(v float64) message.Msg { return c.cfg.Amount(r.Input, v, "") }
	num := func(v float64) message.Num { return c.cfg.number(r.Input, v) }
	var met bool
	var why message.Msg
	switch r.Type {
	case "at_least":
		met = x >= *r.Threshold
		if met {
			why = cond("cond.at-least", message.Args{"value": amount(*r.Threshold)})
		} else {
			why = cond("cond.below", message.Args{"value": amount(*r.Threshold)})
		}
	case "below":
		met = x < *r.Threshold
		if met {
			why = cond("cond.below", message.Args{"value": amount(*r.Threshold)})
		} else {
			why = cond("cond.at-least", message.Args{"value": amount(*r.Threshold)})
		}
	case "range":
		step := c.cfg.step(r.Input)
		if x < *r.Min {
			why = cond("cond.below", message.Args{"value": amount(*r.Min)})
			break
		}
		if r.Max != nil {
			met = x < *r.Max
			if met {
				why = cond("cond.range", message.Args{"min": num(*r.Min), "max": amount(*r.Max - step)})
			} else {
				why = cond("cond.at-least", message.Args{"value": amount(*r.Max)})
			}
			break
		}
		// With the sex known, the evidence gives that sex's range (never
		// "either sex" for a man); without it, a value below both limits
		// or above both decides, and one between them is asked.
		lo, hi := math.Min(r.MaxBySex[Female], r.MaxBySex[Male]), math.Max(r.MaxBySex[Female], r.MaxBySex[Male])
		sexOf := func() (string, bool) {
			if g, ok := c.lookup("sex"); ok && (g.s == Female || g.s == Male) {
				return g.s, true
			}
			return "", false
		}
		if sex, ok := sexOf(); ok {
			max := r.MaxBySex[sex]
			in := message.New("cond.sex."+sex, nil)
			met = x < max
			if met {
				why = cond("cond.range.sex", message.Args{"min": num(*r.Min), "max": amount(max - step), "sex": in})
			} else {
				why = cond("cond.at-least.sex", message.Args{"value": amount(max), "sex": in})
			}
			break
		}
		switch {
		case x < lo:
			met, why = true, cond("cond.range.either-sex", message.Args{"min": num(*r.Min), "max": amount(lo - step)})
		case x >= hi:
			why = cond("cond.at-least", message.Args{"value": amount(hi)})
		default:
			c.sex() // records sex as missing, or warns of a sex other than female or male
			return nil, c.measured(r.Input, x, cond("cond.sex-unknown", nil))
		}
	default:
		return nil, message.Verbatim("unknown rule " + r.Type) // unreachable: validated
	}
	return ptr(met), c.measured(r.Input, x, why)
}

// measured is a number's evidence: the value as reported with its date (or
// how it was computed), and the range it falls in.
func (c *evalCtx) measured(name string, x float64, cond message.Msg) message.Msg {
	args := message.Args{"lab": c.cfg.shortName(name), "condition": cond}
	if g, ok := c.vals[name]; ok {
		args["value"] = c.reported(g)
		// A result's date; not a birth date, which is no measurement.
		if s := g.in.Source; s != nil && s.Date != "" && s.Label.IsZero() && g.in.Origin != OriginEntered {
			args["date"] = message.Date(s.Date)
			return message.New("ev.measured.dated", args)
		}
		if g.in.Origin == OriginEntered {
			return message.New("ev.measured.entered", args)
		}
		return message.New("ev.measured", args)
	}
	args["value"] = c.cfg.Measured(name, x, "")
	for _, e := range c.res.Inputs {
		if e.Name == name && e.Origin == OriginDerived && e.Source != nil && e.Source.Date != "" {
			args["date"] = message.Date(e.Source.Date)
			return message.New("ev.measured.derived", args)
		}
	}
	return message.New("ev.measured.computed", args)
}

// answerEvidence says what decided a yes/no or enum input: the records
// that state it (those alone when they meet the rule), the search that
// found nothing, or the clinician's answer.
func (c *evalCtx) answerEvidence(name string, met bool) message.Msg {
	g := c.vals[name]
	v := c.cfg.valueMsg(name, g.in.Value)
	switch {
	case g.in.Origin == OriginEntered:
		return message.New("ev.entered", message.Args{"value": v})
	case !g.in.Note.IsZero():
		return g.in.Note
	}
	if srcs := c.sources(name); len(srcs) > 0 {
		if met {
			return message.New("ev.records", message.Args{"records": SourcesMsg(srcs)})
		}
		return message.New("ev.value-records", message.Args{"value": v, "records": SourcesMsg(srcs)})
	}
	return v
}

// unknownEvidence says why an input is not known: what could not be read,
// what the clinician is asked, or that nothing was given.
func (c *evalCtx) unknownEvidence(name string) message.Msg {
	if n := c.note(name); !n.IsZero() {
		return n
	}
	if _, derived := c.derived[name]; derived && name != "creatinine" {
		if n := c.note("creatinine"); !n.IsZero() {
			return n
		}
	}
	return message.New("ev.unknown", nil)
}

// Category values of the ARC-HBR result.
const (
	categoryHBR    = "hbr"
	categoryNotHBR = "not-hbr"
)

// criteria evaluates a major/minor criteria definition (ARC-HBR). Each
// criterion counts once: a domain with a major and a minor level is met at
// one level at most.
func (c *evalCtx) criteria(m *CriteriaModel) {
	majors, minors := 0, 0
	unknownMajor := false
	unknownMinorDomains := map[string]bool{}
	metDomain := map[string]bool{}
	for _, cr := range m.Items {
		var met *bool
		var ev message.Msg
		assumed := false
		if _, given := c.vals[cr.Rule.Input]; !given && cr.Assume != nil {
			statement := c.cfg.Text("criterion." + cr.ID + ".assume")
			met, ev, assumed = ptr(cr.Assume.Met), statement, true
			c.looked[cr.Rule.Input] = true
			c.res.Assumptions = append(c.res.Assumptions, AssumptionResult{Criterion: cr.ID, Input: cr.Rule.Input, Statement: statement})
		} else {
			met, ev = c.rule(cr.Rule)
		}
		var srcs []Source
		if met != nil && *met {
			srcs = c.sources(cr.Rule.Input)
			if !assumed {
				ev = message.New("ev.met", message.Args{"evidence": ev, "level": message.New("ev.level."+cr.Level, nil)})
			}
		}
		c.res.Criteria = append(c.res.Criteria, CriterionResult{ID: cr.ID, Name: c.cfg.Text("criterion." + cr.ID), Domain: cr.Domain,
			Level: cr.Level, Met: met, Evidence: ev, Sources: srcs, Assumed: assumed})
		switch {
		case met == nil && cr.Level == Major:
			unknownMajor = true
		case met == nil:
			unknownMinorDomains[cr.Domain] = true
		case *met && !metDomain[cr.Domain]:
			metDomain[cr.Domain] = true
			if cr.Level == Major {
				majors++
			} else {
				minors++
			}
		}
	}
	// A minor whose domain is already met at the major level can add nothing.
	possibleMinors := 0
	for d := range unknownMinorDomains {
		if !metDomain[d] {
			possibleMinors++
		}
	}
	var hbr *bool
	switch {
	case majors >= *m.MinMajor || minors >= *m.MinMinor:
		hbr = ptr(true)
	case !unknownMajor && minors+possibleMinors < *m.MinMinor:
		hbr = ptr(false)
	}
	counts := message.Args{"major": majors, "minor": minors}
	v := Value{Name: "hbr", Unit: "", Display: message.New("value.undetermined", nil)}
	if hbr != nil {
		v.Value = *hbr
		if *hbr {
			v.Display, v.Category = message.New("value.arc.hbr", counts), categoryHBR
		} else {
			v.Display, v.Category = message.New("value.arc.not-hbr", counts), categoryNotHBR
		}
	}
	c.res.Values = append(c.res.Values, v,
		Value{Name: "major_count", Value: float64(majors), Display: message.New("value.number", message.Args{"value": majors})},
		Value{Name: "minor_count", Value: float64(minors), Display: message.New("value.number", message.Args{"value": minors})})
}

// sources returns the records behind an input: its Evidence, else its
// Source. A value the engine derived (eGFR, creatinine clearance) cites the
// creatinine it was computed from.
func (c *evalCtx) sources(name string) []Source {
	g, ok := c.vals[name]
	if !ok {
		if d, derived := c.derived[name]; derived && d.ok {
			return c.sources("creatinine")
		}
		return nil
	}
	if len(g.in.Evidence) > 0 {
		return append([]Source(nil), g.in.Evidence...)
	}
	if s := g.in.Source; s != nil && (s.Reference != "" || s.Code != "" || s.Date != "" || s.Display != "" || !s.Label.IsZero()) {
		return []Source{*g.in.Source}
	}
	return nil
}

// hazard evaluates a proportional-hazards model (the trade-off model). Its
// caveat is the model's, shown with it (Config), not a warning about the
// patient's inputs.
func (c *evalCtx) hazard(m *HazardModel) {
	if m.Caveat != "" {
		c.res.Caveat = c.cfg.Text("calc." + c.def.ID + ".caveat")
	}
	hr := map[string]float64{}
	for _, o := range m.Outcomes {
		hr[o.Name] = 1
	}
	complete := true
	// lo and hi bound each outcome's hazard ratio over the unknown factors:
	// each unknown factor contributes its ratio or 1. Factors that exclude
	// one another (two levels of one input) are bounded as if independent,
	// so the range may be wider than any one patient can reach, never
	// narrower.
	lo, hi := map[string]float64{}, map[string]float64{}
	for _, o := range m.Outcomes {
		lo[o.Name], hi[o.Name] = 1, 1
	}
	for _, f := range m.Factors {
		met, _ := c.rule(f.Rule)
		if met == nil {
			complete = false
			for o, h := range f.HazardRatios {
				lo[o] *= math.Min(1, h)
				hi[o] *= math.Max(1, h)
			}
			continue
		}
		comp := Component{Name: f.ID, Input: f.Rule.Input, HazardRatios: map[string]float64{}}
		for o, h := range f.HazardRatios {
			if *met {
				hr[o] *= h
				comp.HazardRatios[o] = h
			} else {
				comp.HazardRatios[o] = 1
			}
		}
		c.res.Components = append(c.res.Components, comp)
	}
	risk := func(o HazardOutcome, hr float64) float64 {
		p0 := *o.BaselinePercent / 100
		return c.e.roundTo(math.Min(100*(1-math.Pow(1-p0, hr)), 100), *m.Decimals)
	}
	pct := riskNum
	var note message.Msg
	if m.PercentNote != "" {
		note = c.cfg.Text("calc." + c.def.ID + ".percent-note")
	}
	for _, o := range m.Outcomes {
		label := c.cfg.Text("outcome." + c.def.ID + "." + o.Name)
		if !complete {
			v := Value{Name: o.Name, Value: nil, Unit: "%", Display: message.New("value.incomplete", nil), Note: note}
			if len(c.res.OutOfRange) == 0 {
				v.Range = &ValueRange{Min: risk(o, hr[o.Name]*lo[o.Name]), Max: risk(o, hr[o.Name]*hi[o.Name])}
				v.Display = message.New("value.risk-range", message.Args{"min": pct(v.Range.Min), "max": pct(v.Range.Max), "outcome": label})
			}
			c.res.Values = append(c.res.Values, v)
			continue
		}
		p := risk(o, hr[o.Name])
		c.res.Values = append(c.res.Values, Value{Name: o.Name, Value: p, Unit: "%", Display: message.New("value.risk", message.Args{"value": pct(p), "outcome": label}), Note: note})
	}
}

// deriveEGFR computes eGFR with CKD-EPI 2021 from creatinine, age and sex.
func (c *evalCtx) deriveEGFR() (float64, bool, message.Msg, bool, []string) {
	v, ok := c.ckdEPI()
	return v, ok, c.derivation("derivation.egfr", "creatinine", "age", "sex"), c.anyStale("creatinine", "age"), []string{"creatinine"}
}

// deriveCrCl computes creatinine clearance with Cockcroft-Gault.
func (c *evalCtx) deriveCrCl() (float64, bool, message.Msg, bool, []string) {
	v, ok := c.cockcroftGault()
	return v, ok, c.derivation("derivation.crcl", "creatinine", "weight", "age", "sex"), c.anyStale("creatinine", "age", "weight"), []string{"creatinine", "weight"}
}

// derivation says how a value was computed and from what, each measured
// input with its date: "CKD-EPI 2021 from creatinine (30 Nov 2026), age
// and sex".
func (c *evalCtx) derivation(key string, from ...string) message.Msg {
	items := make(message.List, 0, len(from))
	for _, name := range from {
		label := message.New("derivation.input."+name, nil)
		if g, ok := c.vals[name]; ok && g.in.Source != nil && g.in.Source.Date != "" && name != "age" && name != "sex" {
			items = append(items, message.New("derivation.dated", message.Args{"input": label, "date": message.Date(g.in.Source.Date)}))
			continue
		}
		items = append(items, label)
	}
	return message.New(key, message.Args{"inputs": items})
}

func (c *evalCtx) ckdEPI() (float64, bool) {
	cd, _ := c.cfg.Calculator("egfr-ckd-epi-2021")
	m := cd.CKDEPI
	age, okA := c.num("age")
	scr, okC := c.num("creatinine")
	sex, okS := c.sex()
	if !okA || !okC || !okS {
		return 0, false
	}
	r := scr / m.Kappa[sex]
	egfr := *m.Multiplier * math.Pow(math.Min(r, 1), m.Alpha[sex]) * math.Pow(math.Max(r, 1), *m.ExponentAbove) *
		math.Pow(*m.AgeBase, age) * m.SexFactor[sex]
	return c.e.roundTo(egfr, *m.Decimals), true
}

func (c *evalCtx) cockcroftGault() (float64, bool) {
	cd, _ := c.cfg.Calculator("crcl-cockcroft-gault")
	m := cd.CockcroftGault
	age, okA := c.num("age")
	wt, okW := c.num("weight")
	scr, okC := c.num("creatinine")
	sex, okS := c.sex()
	if !okA || !okW || !okC || !okS {
		return 0, false
	}
	crcl := (*m.AgeFrom - age) * wt / (*m.Divisor * scr) * m.SexFactor[sex]
	return c.e.roundTo(crcl, *m.Decimals), true
}

func (c *evalCtx) egfrCalculator() {
	v, ok := c.ckdEPI()
	if !ok {
		return
	}
	b := band(c.def.Bands, v)
	c.res.Values = append(c.res.Values, Value{Name: "egfr", Value: v, Unit: c.cfg.Quantities[c.cfg.Inputs["egfr"].Quantity].Unit, Category: b.Category,
		Display: message.New("value.amount-band", message.Args{"value": c.cfg.Measured("egfr", v, ""), "band": c.cfg.Text("band." + c.def.ID + "." + b.Category)})})
}

func (c *evalCtx) crclCalculator() {
	v, ok := c.cockcroftGault()
	if !ok {
		return
	}
	c.res.Values = append(c.res.Values, Value{Name: "crcl", Value: v, Unit: c.cfg.Quantities[c.cfg.Inputs["crcl"].Quantity].Unit, Display: c.cfg.Measured("crcl", v, "")})
}
