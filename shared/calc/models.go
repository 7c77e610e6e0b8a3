package calc

import (
	"fmt"
	"math"
	"strings"
)

// points evaluates an additive points score (PRECISE-HBR, PRECISE-DAPT).
func (c *evalCtx) points(m *PointsModel) {
	total, complete := 0.0, true
	add := func(name, input string, pts float64) {
		total += pts
		c.res.Components = append(c.res.Components, Component{Name: name, Input: input, Points: ptr(c.e.roundTo(pts, 3))})
	}
	if m.Base != nil {
		add("base", "", *m.Base.Points)
	}
	for _, t := range m.Linear {
		x, ok := c.num(t.Input)
		if !ok {
			complete = false
			continue
		}
		xc := clamp(x, *t.Truncate.Min, *t.Truncate.Max)
		if xc != x {
			limit := "upper"
			if xc == *t.Truncate.Min {
				limit = "lower"
			}
			c.warn("%s %s was truncated to %s, the %s limit %s defines.", t.Input, c.withUnit(t.Input, x), c.withUnit(t.Input, xc), limit, c.def.Title)
		}
		add(t.Name, t.Input, *t.PointsPerUnit*(xc-*t.Pivot))
	}
	for _, t := range m.Axes {
		x, ok := c.num(t.Input)
		if !ok {
			complete = false
			continue
		}
		frac := clamp((x-*t.ZeroAt)/(*t.MaxAt-*t.ZeroAt), 0, 1)
		add(t.Name, t.Input, *t.MaxPoints*frac)
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
		add(t.Name, t.Input, pts)
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
		add(t.Name, t.Input, pts)
	}
	if !complete {
		lb := c.e.roundHalfUp(total)
		c.res.Values = append(c.res.Values,
			Value{Name: "score", Value: nil, Unit: "{score}", Display: "incomplete"},
			Value{Name: "score_lower_bound", Value: lb, Unit: "{score}", Display: fmt.Sprintf("≥ %s (missing inputs counted as 0 points)", FormatNumber(lb, 0)), Category: band(m.Bands, lb).Category})
		c.warn("The score cannot be computed until every input is known; it is at least %s, the total with each missing input counted as 0 points.", FormatNumber(lb, 0))
		return
	}
	score := c.e.roundHalfUp(total)
	b := band(m.Bands, score)
	c.res.Values = append(c.res.Values, Value{Name: "score", Value: score, Unit: "{score}", Display: fmt.Sprintf("%s (%s)", FormatNumber(score, 0), b.Label), Category: b.Category})
	if rc := m.RiskCurve; rc != nil {
		risk := 100 * (1 - math.Exp(-math.Exp(*rc.Intercept+*rc.Slope*score)))
		risk = c.e.roundTo(risk, *rc.Decimals)
		c.res.Values = append(c.res.Values, Value{Name: rc.Name, Value: risk, Unit: "%", Display: FormatNumber(risk, *rc.Decimals) + "%"})
		if score < *rc.Calibrated.Min || score > *rc.Calibrated.Max {
			c.warn("The %s for a score of %s is an extrapolation: the curve was calibrated for scores %s–%s only.", rc.Label, FormatNumber(score, 0), FormatNumber(*rc.Calibrated.Min, 0), FormatNumber(*rc.Calibrated.Max, 0))
		}
	}
}

// anyOf decides an "at least one of" item: its summary input when given,
// otherwise the criteria it summarises. Nil means undecided.
func (c *evalCtx) anyOf(t AnyOfTerm) *bool {
	src, _ := c.e.cfg.Calculator(t.CriteriaFrom)
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
		var ev string
		ask := c.probe(func() { met, ev = c.rule(cr.Rule) })
		if summary != nil {
			if met != nil && *met {
				c.warn("%s was given as false, but %s is met (%s): it counts.", t.Input, cr.Name, ev)
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
// (the missing inputs are recorded).
func (c *evalCtx) rule(r Rule) (*bool, string) {
	switch r.Type {
	case "flag":
		b, ok := c.flag(r.Input)
		if !ok {
			return nil, r.Input + " unknown"
		}
		return ptr(b), fmt.Sprintf("%s: %t", r.Input, b)
	case "equals":
		s, ok := c.enum(r.Input)
		if !ok {
			return nil, r.Input + " unknown"
		}
		return ptr(s == r.Value), fmt.Sprintf("%s: %s", r.Input, s)
	}
	x, ok := c.num(r.Input)
	if !ok {
		return nil, r.Input + " unknown"
	}
	shown := c.withUnit(r.Input, x)
	switch r.Type {
	case "at_least":
		if x >= *r.Threshold {
			return ptr(true), fmt.Sprintf("%s %s ≥ %s", r.Input, shown, FormatNumber(*r.Threshold, 2))
		}
		return ptr(false), fmt.Sprintf("%s %s < %s", r.Input, shown, FormatNumber(*r.Threshold, 2))
	case "below":
		if x < *r.Threshold {
			return ptr(true), fmt.Sprintf("%s %s < %s", r.Input, shown, FormatNumber(*r.Threshold, 2))
		}
		return ptr(false), fmt.Sprintf("%s %s ≥ %s", r.Input, shown, FormatNumber(*r.Threshold, 2))
	case "range":
		if x < *r.Min {
			return ptr(false), fmt.Sprintf("%s %s < %s", r.Input, shown, FormatNumber(*r.Min, 2))
		}
		max := 0.0
		if r.Max != nil {
			max = *r.Max
		} else {
			lo, hi := math.Min(r.MaxBySex[Female], r.MaxBySex[Male]), math.Max(r.MaxBySex[Female], r.MaxBySex[Male])
			switch {
			case x < lo:
				return ptr(true), fmt.Sprintf("%s %s in [%s, %s) for either sex", r.Input, shown, FormatNumber(*r.Min, 2), FormatNumber(lo, 2))
			case x >= hi:
				return ptr(false), fmt.Sprintf("%s %s ≥ %s", r.Input, shown, FormatNumber(hi, 2))
			}
			sex, ok := c.sex()
			if !ok {
				return nil, fmt.Sprintf("%s %s: the threshold depends on sex, which is unknown", r.Input, shown)
			}
			max = r.MaxBySex[sex]
			if x < max {
				return ptr(true), fmt.Sprintf("%s %s in [%s, %s) (%s)", r.Input, shown, FormatNumber(*r.Min, 2), FormatNumber(max, 2), sex)
			}
			return ptr(false), fmt.Sprintf("%s %s ≥ %s (%s)", r.Input, shown, FormatNumber(max, 2), sex)
		}
		if x < max {
			return ptr(true), fmt.Sprintf("%s %s in [%s, %s)", r.Input, shown, FormatNumber(*r.Min, 2), FormatNumber(max, 2))
		}
		return ptr(false), fmt.Sprintf("%s %s ≥ %s", r.Input, shown, FormatNumber(max, 2))
	}
	return nil, "unknown rule " + r.Type // unreachable: validated
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
		var ev string
		assumed := false
		if _, given := c.vals[cr.Rule.Input]; !given && cr.Assume != nil {
			met, ev, assumed = ptr(cr.Assume.Met), cr.Assume.Statement, true
			c.looked[cr.Rule.Input] = true
			c.res.Assumptions = append(c.res.Assumptions, AssumptionResult{Criterion: cr.ID, Input: cr.Rule.Input, Statement: cr.Assume.Statement})
		} else {
			met, ev = c.rule(cr.Rule)
		}
		var srcs []Source
		if met != nil && *met {
			srcs = c.sources(cr.Rule.Input)
			ev += citeSources(srcs)
		}
		c.res.Criteria = append(c.res.Criteria, CriterionResult{ID: cr.ID, Name: cr.Name, Domain: cr.Domain, Level: cr.Level, Met: met, Evidence: ev, Sources: srcs, Assumed: assumed})
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
	v := Value{Name: "hbr", Unit: "", Display: "undetermined"}
	if hbr != nil {
		v.Value = *hbr
		if *hbr {
			v.Display, v.Category = fmt.Sprintf("High bleeding risk (%d major, %d minor)", majors, minors), categoryHBR
		} else {
			v.Display, v.Category = fmt.Sprintf("Not high bleeding risk (%d major, %d minor)", majors, minors), categoryNotHBR
		}
	}
	c.res.Values = append(c.res.Values, v,
		Value{Name: "major_count", Value: float64(majors), Display: fmt.Sprint(majors)},
		Value{Name: "minor_count", Value: float64(minors), Display: fmt.Sprint(minors)})
	if hbr != nil && *hbr && len(*c.missing) > 0 {
		c.warn("High bleeding risk is established by the criteria met; the undetermined criteria cannot change that.")
	}
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
	if g.in.Source != nil && *g.in.Source != (Source{}) {
		return []Source{*g.in.Source}
	}
	return nil
}

// citeSources formats records for the evidence text: " (Observation/1,
// 2025-01-02; …)".
func citeSources(srcs []Source) string {
	var parts []string
	for _, s := range srcs {
		p := strings.Trim(s.Reference+", "+s.Date, ", ")
		if s.Display != "" {
			p = strings.TrimPrefix(p+": "+s.Display, ": ")
		}
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// hazard evaluates a proportional-hazards model (the trade-off model).
func (c *evalCtx) hazard(m *HazardModel) {
	c.warn("%s", m.Caveat)
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
	for _, o := range m.Outcomes {
		if !complete {
			v := Value{Name: o.Name, Value: nil, Unit: "%", Display: "incomplete", Note: m.PercentNote}
			if len(c.res.OutOfRange) == 0 {
				v.Range = &ValueRange{Min: risk(o, hr[o.Name]*lo[o.Name]), Max: risk(o, hr[o.Name]*hi[o.Name])}
				v.Display = "incomplete: " + FormatNumber(v.Range.Min, *m.Decimals) + "% to " + FormatNumber(v.Range.Max, *m.Decimals) + "% (" + o.Label + "), depending on the unknown inputs"
			}
			c.res.Values = append(c.res.Values, v)
			continue
		}
		p := risk(o, hr[o.Name])
		c.res.Values = append(c.res.Values, Value{Name: o.Name, Value: p, Unit: "%", Display: FormatNumber(p, *m.Decimals) + "% (" + o.Label + ")", Note: m.PercentNote})
	}
}

// deriveEGFR computes eGFR with CKD-EPI 2021 from creatinine, age and sex.
func (c *evalCtx) deriveEGFR() (float64, bool, string, bool) {
	v, ok := c.ckdEPI()
	return v, ok, "CKD-EPI 2021 from creatinine, age and sex (no reported CKD-EPI eGFR)", c.anyStale("creatinine", "age")
}

// deriveCrCl computes creatinine clearance with Cockcroft-Gault.
func (c *evalCtx) deriveCrCl() (float64, bool, string, bool) {
	v, ok := c.cockcroftGault()
	return v, ok, "Cockcroft-Gault from creatinine, age, sex and weight", c.anyStale("creatinine", "age", "weight")
}

func (c *evalCtx) ckdEPI() (float64, bool) {
	cd, _ := c.e.cfg.Calculator("egfr-ckd-epi-2021")
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
	cd, _ := c.e.cfg.Calculator("crcl-cockcroft-gault")
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
	d := *c.def.CKDEPI.Decimals
	b := band(c.def.Bands, v)
	q := c.e.cfg.Quantities[c.e.cfg.Inputs["egfr"].Quantity]
	c.res.Values = append(c.res.Values, Value{Name: "egfr", Value: v, Unit: q.Unit,
		Display: FormatNumber(v, d) + " " + q.Label + " (" + b.Label + ")", Category: b.Category})
}

func (c *evalCtx) crclCalculator() {
	v, ok := c.cockcroftGault()
	if !ok {
		return
	}
	d := *c.def.CockcroftGault.Decimals
	q := c.e.cfg.Quantities[c.e.cfg.Inputs["crcl"].Quantity]
	c.res.Values = append(c.res.Values, Value{Name: "crcl", Value: v, Unit: q.Unit, Display: FormatNumber(v, d) + " " + q.Label})
}
