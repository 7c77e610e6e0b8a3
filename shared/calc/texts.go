package calc

import (
	_ "embed"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// ConfigText is one of the configuration's human-readable texts: a label or
// sentence that the engine reports and the UI shows and translates. Numbers
// that the configuration holds as parameters are not written into a text
// but named as {placeholders}, filled from the parameters, so that a text
// cannot state an old number after the parameter changes.
type ConfigText struct {
	// Key names the text in the translations (config_text in the message
	// catalogue, shared/message): "criterion.age", "band.precise-hbr.hbr",
	// "rec.short-dapt-precise-dapt.text", …
	Key string
	// Template is the English as the document writes it, placeholders
	// unfilled. The parsed Config holds it filled.
	Template string
	// Params are the numbers the text may name, by placeholder: a rule's
	// threshold, min, max, max_minus_one and max_<sex>; the window_months,
	// window_days and major_at_least of the code sets feeding the rule's
	// input; the mapping's windows (fhir.windows: bleeding_major_months,
	// bleeding_minor_months, long_term_min_days_per_week,
	// long_term_min_days, rivaroxaban_vascular_mg, recent_days) in every
	// input's and rule's texts; a band's from, next_from and
	// next_from_minus_one; the lowest band a recommendation applies to
	// (from); a criteria calculator's min_major and min_minor.
	Params map[string]float64
}

// Texts lists the configuration's texts with their keys and parameters, in
// document order. static/scoring.js derives the same parameters for the
// UI, which fills them into both languages.
func (c *Config) Texts() []ConfigText {
	out := make([]ConfigText, len(c.texts))
	for i, t := range c.texts {
		p := make(map[string]float64, len(t.Params))
		for k, x := range t.Params {
			p[k] = x
		}
		out[i] = ConfigText{Key: t.Key, Template: t.Template, Params: p}
	}
	return out
}

// textRef is a ConfigText with its document path and a way to write it back.
type textRef struct {
	ConfigText
	path string
	set  func(string)
}

// textRefs lists the texts in document order.
func (c *Config) textRefs() []textRef {
	var out []textRef
	add := func(key, path, s string, params map[string]float64, set func(string)) {
		if s == "" {
			return
		}
		if params == nil {
			params = map[string]float64{}
		}
		out = append(out, textRef{ConfigText{Key: key, Template: s, Params: params}, path, set})
	}
	field := func(key, path string, s *string, params map[string]float64) {
		add(key, path, *s, params, func(x string) { *s = x })
	}
	for _, name := range sortedKeys(c.Quantities) {
		add("quantity."+name, "quantities."+name+".label", c.Quantities[name].Label, nil, func(x string) {
			q := c.Quantities[name]
			q.Label = x
			c.Quantities[name] = q
		})
	}
	for _, name := range sortedKeys(c.Inputs) {
		add("input."+name, "inputs."+name+".label", c.Inputs[name].Label, nil, func(x string) {
			d := c.Inputs[name]
			d.Label = x
			c.Inputs[name] = d
		})
		add("input."+name+".description", "inputs."+name+".description", c.Inputs[name].Description, c.inputParams(name), func(x string) {
			d := c.Inputs[name]
			d.Description = x
			c.Inputs[name] = d
		})
	}
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		p := fmt.Sprintf("calculators[%s]", cd.ID)
		var calcParams map[string]float64
		if m := cd.Criteria; m != nil {
			calcParams = map[string]float64{}
			if m.MinMajor != nil {
				calcParams["min_major"] = float64(*m.MinMajor)
			}
			if m.MinMinor != nil {
				calcParams["min_minor"] = float64(*m.MinMinor)
			}
		}
		field("calc."+cd.ID+".title", p+".title", &cd.Title, nil)
		field("calc."+cd.ID+".description", p+".description", &cd.Description, calcParams)
		if h := cd.Hazard; h != nil {
			field("calc."+cd.ID+".caveat", p+".hazard.caveat", &h.Caveat, nil)
			field("calc."+cd.ID+".percent-note", p+".hazard.percent_note", &h.PercentNote, nil)
		}
		bp, bands, outcome := p, cd.Bands, &cd.BandsRiskOutcome
		if cd.Points != nil {
			bp, bands, outcome = p+".points", cd.Points.Bands, &cd.Points.BandsRiskOutcome
		}
		for j := range bands {
			b := &bands[j]
			params := bandParams(bands, j)
			key := "band." + cd.ID + "." + b.Category
			field(key, fmt.Sprintf("%s.bands[%d].label", bp, j), &b.Label, params)
			field(key+".note", fmt.Sprintf("%s.bands[%d].note", bp, j), &b.Note, params)
		}
		field("bands."+cd.ID+".risk_outcome", bp+".bands_risk_outcome", outcome, nil)
		if m := cd.Criteria; m != nil {
			for j := range m.Items {
				cr := &m.Items[j]
				field("criterion."+cr.ID, fmt.Sprintf("%s.criteria.items[%d].name", p, j), &cr.Name, c.ruleParams(cr.Rule))
				if cr.Assume != nil {
					field("criterion."+cr.ID+".assume", fmt.Sprintf("%s.criteria.items[%d].assume.statement", p, j), &cr.Assume.Statement, nil)
				}
			}
		}
		if h := cd.Hazard; h != nil {
			for j := range h.Outcomes {
				o := &h.Outcomes[j]
				field("outcome."+cd.ID+"."+o.Name, fmt.Sprintf("%s.hazard.outcomes[%d].label", p, j), &o.Label, nil)
			}
			for j := range h.Factors {
				f := &h.Factors[j]
				field("factor."+f.ID, fmt.Sprintf("%s.hazard.factors[%d].label", p, j), &f.Label, c.ruleParams(f.Rule))
			}
		}
	}
	for i := range c.Recommendations.Items {
		r := &c.Recommendations.Items[i]
		p := fmt.Sprintf("recommendations.items[%d]", i)
		params := c.recParams(*r)
		field("rec."+r.ID+".title", p+".title", &r.Title, params)
		field("rec."+r.ID+".text", p+".text", &r.Text, params)
	}
	field("rec.disclaimer", "recommendations.disclaimer", &c.Recommendations.Disclaimer, nil)
	field("summary.risk.label", "summary.risk.label", &c.Summary.Risk.Label, nil)
	for _, k := range summaryReasons {
		if _, ok := c.Summary.Texts[k]; !ok {
			continue
		}
		add("summary."+k, "summary.texts."+k, c.Summary.Texts[k], c.hbrFrom(), func(x string) { c.Summary.Texts[k] = x })
	}
	return append(out, c.planTextRefs()...)
}

// inputParams are the numbers that decide an input: the window_months and
// window_days of its condition, medication and procedure sets, the
// major_at_least of its coded observations, and the mapping's windows
// (windowParams). A number the sets disagree on is left out: a text cannot
// name it. The map is the caller's. They are looked up in inputParamIdx,
// which parseConfig builds before anything asks.
func (c *Config) inputParams(input string) map[string]float64 {
	if p, ok := c.inputParamIdx[input]; ok {
		return maps.Clone(p)
	}
	return c.windowParams()
}

// indexInputParams computes inputParams for every input that a code set
// or coded observation feeds, in one pass over the code sets (the texts of
// every input and rule need them, and so does EnumLabel, per request).
func (c *Config) indexInputParams() map[string]map[string]float64 {
	windows := c.windowParams()
	params := map[string]map[string]float64{}
	ambiguous := map[string]map[string]bool{}
	put := func(input, k string, x float64) {
		p := params[input]
		if p == nil {
			p = maps.Clone(windows)
			params[input] = p
		}
		if old, ok := p[k]; ok && old != x {
			if ambiguous[input] == nil {
				ambiguous[input] = map[string]bool{}
			}
			ambiguous[input][k] = true
		}
		p[k] = x
	}
	for _, sets := range []map[string]CodeSet{c.Codes.Conditions, c.Codes.Medications, c.Codes.Procedures} {
		for _, s := range sets {
			if s.WindowMonths > 0 {
				put(s.Input, "window_months", float64(s.WindowMonths))
			}
			if s.WindowDays > 0 {
				put(s.Input, "window_days", float64(s.WindowDays))
			}
		}
	}
	for _, o := range c.Codes.Observations {
		if o.MajorAtLeast != nil {
			put(o.Input, "major_at_least", *o.MajorAtLeast)
		}
	}
	for input, keys := range ambiguous {
		for k := range keys {
			delete(params[input], k)
		}
	}
	return params
}

// windowParams are the mapping's time and dose rules (fhir.windows) by
// their JSON names. They decide inputs without belonging to one code set,
// so the texts of every input and rule may name them.
func (c *Config) windowParams() map[string]float64 {
	p := map[string]float64{}
	w := c.FHIR.Windows
	for k, x := range map[string]*int{
		"bleeding_major_months":       w.BleedingMajorMonths,
		"bleeding_minor_months":       w.BleedingMinorMonths,
		"long_term_min_days_per_week": w.LongTermMinDaysPerWeek,
		"long_term_min_days":          w.LongTermMinDays,
		"recent_days":                 w.RecentDays,
	} {
		if x != nil {
			p[k] = float64(*x)
		}
	}
	if w.RivaroxabanVascularMg != nil {
		p["rivaroxaban_vascular_mg"] = *w.RivaroxabanVascularMg
	}
	return p
}

// ruleParams are a rule's numbers and those deciding its input
// (inputParams).
func (c *Config) ruleParams(r Rule) map[string]float64 {
	p := c.inputParams(r.Input)
	if r.Threshold != nil {
		p["threshold"] = *r.Threshold
	}
	if r.Min != nil {
		p["min"] = *r.Min
	}
	if r.Max != nil {
		p["max"] = *r.Max
		p["max_minus_one"] = *r.Max - 1
	}
	for s, x := range r.MaxBySex {
		p["max_"+s] = x
	}
	return p
}

// bandParams are a band's bounds: from, and the next band's from (the
// band's exclusive upper bound) and that minus one (its last integer).
func bandParams(bands []Band, i int) map[string]float64 {
	p := map[string]float64{}
	if f := bands[i].From; f != nil {
		p["from"] = *f
	}
	if i+1 < len(bands) && bands[i+1].From != nil {
		p["next_from"] = *bands[i+1].From
		p["next_from_minus_one"] = *bands[i+1].From - 1
	}
	return p
}

// recParams gives a recommendation the lowest bound (from) of the bands it
// applies to, when it applies to the bands of exactly one calculator and
// not to its lowest band.
func (c *Config) recParams(r Recommendation) map[string]float64 {
	p := map[string]float64{}
	banded, lo, open := 0, math.Inf(1), false
	for _, a := range r.AppliesTo {
		cd, ok := c.Calculator(a.Calculator)
		if !ok || len(cd.bandList()) == 0 {
			continue
		}
		banded++
		for _, b := range cd.bandList() {
			if !contains(a.Categories, b.Category) {
				continue
			}
			if b.From == nil {
				open = true
			} else {
				lo = math.Min(lo, *b.From)
			}
		}
	}
	if banded == 1 && !open && !math.IsInf(lo, 1) {
		p["from"] = lo
	}
	return p
}

// bandList returns a calculator's bands, wherever its kind keeps them.
func (cd *CalculatorDef) bandList() []Band {
	if cd.Points != nil {
		return cd.Points.Bands
	}
	return cd.Bands
}

// validateTexts checks that text keys are unique and that every placeholder
// names a parameter of its text.
func (c *Config) validateTexts(v *validator, refs []textRef) {
	seen := map[string]string{}
	for _, t := range refs {
		if prev, dup := seen[t.Key]; dup {
			v.fail(t.path, "its translation key %q is also that of %s: ids must differ", t.Key, prev)
		}
		seen[t.Key] = t.path
		for _, name := range message.Placeholders(t.Template) {
			if _, ok := t.Params[name]; !ok {
				names := sortedKeys(t.Params)
				if len(names) == 0 {
					names = []string{"none"}
				}
				v.fail(t.path, "{%s} names no number of this item (it may name: %s)", name, strings.Join(names, ", "))
			}
		}
	}
}

// fillText replaces the placeholders of s with their numbers.
func fillText(s string, params map[string]float64) string {
	return message.Fill(s, func(name string) (string, bool) {
		x, ok := params[name]
		if !ok {
			return "", false
		}
		return formatNumber(x), true
	})
}

// formatNumber writes x as the UI's String(x) does: shortest form, no
// exponent for the magnitudes texts hold.
func formatNumber(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// fillTexts keeps the texts' templates and parameters, fills the texts in
// place and writes each band's Risk. It runs on a validated Config, with
// the refs validate checked.
func (c *Config) fillTexts(refs []textRef) {
	c.texts = make([]ConfigText, len(refs))
	c.textIdx = make(map[string]int, len(refs))
	for i, r := range refs {
		c.texts[i] = r.ConfigText
		c.textIdx[r.Key] = i
		r.set(fillText(r.Template, r.Params))
	}
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		bands, outcome := cd.Bands, cd.BandsRiskOutcome
		if cd.Points != nil {
			bands, outcome = cd.Points.Bands, cd.Points.BandsRiskOutcome
		}
		for j := range bands {
			b := &bands[j]
			b.Risk = b.Note
			if b.RiskPercent != nil {
				b.Risk = riskText(*b.RiskPercent, outcome)
			}
		}
	}
}

// riskText writes a risk range out in English, as the UI's English strings
// risk.below, risk.between and risk.at-least do.
func riskText(r PercentRange, outcome string) string {
	switch {
	case r.Min != nil && r.Max != nil:
		return formatNumber(*r.Min) + "% to <" + formatNumber(*r.Max) + "% " + outcome
	case r.Max != nil:
		return "<" + formatNumber(*r.Max) + "% " + outcome
	case r.Min != nil:
		return "≥" + formatNumber(*r.Min) + "% " + outcome
	}
	return ""
}
