package calc

import (
	_ "embed"
	"fmt"
	"math"
	"sort"
)

func (c *Config) validatePoints(v *validator, p string, m *PointsModel, uses func(string, string)) {
	names := map[string]bool{}
	name := func(path, n string) {
		v.text(path+".name", n)
		if names[n] {
			v.fail(path+".name", "component %q listed twice", n)
		}
		names[n] = true
	}
	numeric := func(path, in string) {
		uses(path+".input", in)
		if d, ok := c.Inputs[in]; ok && d.Type != TypeNumber {
			v.fail(path+".input", "input %q is not a number", in)
		}
	}
	boolean := func(path, in string) {
		uses(path+".input", in)
		if d, ok := c.Inputs[in]; ok && d.Type != TypeBoolean {
			v.fail(path+".input", "input %q is not a boolean", in)
		}
	}
	if m.Base != nil {
		v.num(p+".base.points", m.Base.Points)
		v.provenance(p+".base.provenance", m.Base.Provenance)
	}
	for i, t := range m.Linear {
		tp := fmt.Sprintf("%s.linear[%d]", p, i)
		name(tp, t.Name)
		numeric(tp, t.Input)
		v.rangeOK(tp+".truncate", t.Truncate)
		v.num(tp+".pivot", t.Pivot)
		v.num(tp+".points_per_unit", t.PointsPerUnit)
		if t.Truncate.Min != nil && t.Truncate.Max != nil && t.Pivot != nil && t.PointsPerUnit != nil {
			// Points must be ≥ 0 over the truncated range: the score's
			// lower bound with missing inputs relies on it.
			lo := *t.PointsPerUnit * (*t.Truncate.Min - *t.Pivot)
			hi := *t.PointsPerUnit * (*t.Truncate.Max - *t.Pivot)
			if lo < -1e-12 || hi < -1e-12 {
				v.fail(tp, "points must not be negative over the truncated range")
			}
		}
		v.provenance(tp+".provenance", t.Provenance)
	}
	for i, t := range m.Axes {
		tp := fmt.Sprintf("%s.axes[%d]", p, i)
		name(tp, t.Name)
		numeric(tp, t.Input)
		a, b := v.num(tp+".zero_at", t.ZeroAt), v.num(tp+".max_at", t.MaxAt)
		if a && b && *t.ZeroAt == *t.MaxAt {
			v.fail(tp, "zero_at and max_at must differ")
		}
		v.positive(tp+".max_points", t.MaxPoints)
		v.provenance(tp+".provenance", t.Provenance)
	}
	for i, t := range m.Flags {
		tp := fmt.Sprintf("%s.flags[%d]", p, i)
		name(tp, t.Name)
		boolean(tp, t.Input)
		v.positive(tp+".points", t.Points)
		v.provenance(tp+".provenance", t.Provenance)
	}
	for i, t := range m.AnyOf {
		tp := fmt.Sprintf("%s.any_of[%d]", p, i)
		name(tp, t.Name)
		boolean(tp, t.Input)
		v.positive(tp+".points", t.Points)
		if len(t.Criteria) == 0 {
			v.fail(tp+".criteria", "missing or empty")
		}
		v.provenance(tp+".provenance", t.Provenance)
	}
	if len(names) == 0 {
		v.fail(p, "no terms")
	}
	bandsOK := v.bands(p, m.Bands, m.BandsRiskOutcome)
	v.provenance(p+".bands_provenance", m.BandsProvenance)
	if rc := m.RiskCurve; rc != nil {
		rp := p + ".risk_curve"
		v.text(rp+".name", rc.Name)
		v.text(rp+".label", rc.Label)
		if rc.Form != "cloglog" {
			v.fail(rp+".form", "must be \"cloglog\", got %q", rc.Form)
		}
		a, b := v.num(rp+".intercept", rc.Intercept), v.num(rp+".slope", rc.Slope)
		cal := v.rangeOK(rp+".calibrated", rc.Calibrated)
		v.decimals(rp+".decimals", rc.Decimals)
		v.provenance(rp+".provenance", rc.Provenance)
		if bandsOK && a && b && cal && rc.Decimals != nil {
			v.curveMatchesBands(p, m.Bands, rc)
		}
	}
}

// curveMatchesBands checks the published risk ranges of score bands against
// the calibrated risk curve: where a band with a lower risk bound starts,
// the curve (rounded as shown) must reach that bound, and one point lower
// it must not. Scores outside the calibrated range are not checked.
func (v *validator) curveMatchesBands(p string, bands []Band, rc *RiskCurve) {
	scale := math.Pow(10, float64(*rc.Decimals))
	risk := func(score float64) float64 {
		r := 100 * (1 - math.Exp(-math.Exp(*rc.Intercept+*rc.Slope*score)))
		return math.Floor(r*scale+0.5) / scale
	}
	for i, b := range bands {
		if b.From == nil || b.RiskPercent == nil || b.RiskPercent.Min == nil {
			continue
		}
		from, lo := *b.From, *b.RiskPercent.Min
		if from-1 < *rc.Calibrated.Min || from > *rc.Calibrated.Max {
			continue
		}
		if at, below := risk(from), risk(from-1); at < lo || below >= lo {
			v.fail(fmt.Sprintf("%s.bands[%d].risk_percent.min", p, i),
				"%v%% does not match the risk curve, which gives %v%% at score %v (where the band starts) and %v%% at %v", lo, at, from, below, from-1)
		}
	}
}

// bands checks the bands of the calculator section at p and their risk
// ranges, and reports whether they are valid.
func (v *validator) bands(p string, bands []Band, outcome string) bool {
	n := len(v.errs)
	v.bandList(p+".bands", bands)
	v.bandRisks(p, bands, outcome)
	return len(v.errs) == n
}

// bandRisks checks the bands' risk_percent ranges: every band has one or
// none does; they ascend with the bands, each starting where the previous
// one ends; only the lowest may leave its lower end open and only the
// highest its upper end.
func (v *validator) bandRisks(p string, bands []Band, outcome string) {
	with := 0
	for _, b := range bands {
		if b.RiskPercent != nil {
			with++
		}
	}
	switch {
	case with == 0:
		if outcome != "" {
			v.fail(p+".bands_risk_outcome", "given, but no band has a risk_percent")
		}
		return
	case with < len(bands):
		v.fail(p+".bands", "%d of %d bands have a risk_percent: give it for every band or for none", with, len(bands))
		return
	}
	v.text(p+".bands_risk_outcome", outcome)
	for i, b := range bands {
		rp := fmt.Sprintf("%s.bands[%d].risk_percent", p, i)
		r := b.RiskPercent
		ok := true
		for _, e := range []struct {
			name string
			x    *float64
		}{{"min", r.Min}, {"max", r.Max}} {
			if e.x != nil && (math.IsNaN(*e.x) || math.IsInf(*e.x, 0) || *e.x < 0 || *e.x > 100) {
				v.fail(rp+"."+e.name, "must be a percentage from 0 to 100, got %v", *e.x)
				ok = false
			}
		}
		switch {
		case r.Min == nil && r.Max == nil:
			v.fail(rp, "empty: give min, max or both")
			continue
		case i > 0 && r.Min == nil:
			v.fail(rp+".min", "missing: only the lowest band may leave its lower end open")
		case i < len(bands)-1 && r.Max == nil:
			v.fail(rp+".max", "missing: only the highest band may leave its upper end open")
		}
		if !ok {
			continue
		}
		if r.Min != nil && r.Max != nil && *r.Min >= *r.Max {
			v.fail(rp, "min %v must be below max %v", *r.Min, *r.Max)
		}
		if i > 0 {
			if prev := bands[i-1].RiskPercent; prev.Max != nil && r.Min != nil && *r.Min != *prev.Max {
				v.fail(rp+".min", "%v must equal the previous band's max %v: the ranges ascend with the bands, without gap or overlap", *r.Min, *prev.Max)
			}
		}
	}
}

func (v *validator) bandList(p string, bands []Band) {
	if len(bands) == 0 {
		v.fail(p, "missing or empty")
		return
	}
	seen := map[string]bool{}
	for i, b := range bands {
		bp := fmt.Sprintf("%s[%d]", p, i)
		v.text(bp+".category", b.Category)
		v.text(bp+".label", b.Label)
		if seen[b.Category] {
			v.fail(bp+".category", "category %q listed twice", b.Category)
		}
		seen[b.Category] = true
		if i == 0 {
			if b.From != nil {
				v.fail(bp+".from", "the first band has no lower bound")
			}
			continue
		}
		if v.num(bp+".from", b.From) && i > 1 && bands[i-1].From != nil && *b.From <= *bands[i-1].From {
			v.fail(bp+".from", "bands must ascend")
		}
	}
}

func (c *Config) validateRule(v *validator, p string, r Rule, uses func(string, string)) {
	uses(p+".input", r.Input)
	in, ok := c.Inputs[r.Input]
	if !ok {
		return
	}
	switch r.Type {
	case "flag":
		if in.Type != TypeBoolean {
			v.fail(p+".input", "flag needs a boolean input, %q is %s", r.Input, in.Type)
		}
	case "equals":
		if in.Type != TypeEnum || !contains(in.Values, r.Value) {
			v.fail(p+".value", "%q is not a value of enum input %q", r.Value, r.Input)
		}
	case "at_least", "below":
		if in.Type != TypeNumber {
			v.fail(p+".input", "%s needs a number input, %q is %s", r.Type, r.Input, in.Type)
		}
		v.num(p+".threshold", r.Threshold)
	case "range":
		if in.Type != TypeNumber {
			v.fail(p+".input", "range needs a number input, %q is %s", r.Input, in.Type)
		}
		v.num(p+".min", r.Min)
		switch {
		case r.Max != nil && r.MaxBySex != nil:
			v.fail(p, "give max or max_by_sex, not both")
		case r.Max != nil:
			if v.num(p+".max", r.Max) && r.Min != nil && *r.Max <= *r.Min {
				v.fail(p+".max", "must exceed min")
			}
		case r.MaxBySex != nil:
			v.sexMap(p+".max_by_sex", r.MaxBySex, false)
			for s, m := range r.MaxBySex {
				if r.Min != nil && m <= *r.Min {
					v.fail(p+".max_by_sex."+s, "must exceed min")
				}
			}
			uses(p+".input", "sex")
		default:
			v.fail(p+".max", "missing (max or max_by_sex)")
		}
	default:
		v.fail(p+".type", "unknown rule type %q", r.Type)
	}
}

func (c *Config) validateCriteria(v *validator, p string, m *CriteriaModel, uses func(string, string)) {
	if m.MinMajor == nil || *m.MinMajor < 1 {
		v.fail(p+".min_major", "missing or below 1")
	}
	if m.MinMinor == nil || *m.MinMinor < 1 {
		v.fail(p+".min_minor", "missing or below 1")
	}
	v.provenance(p+".provenance", m.Provenance)
	if len(m.Items) == 0 {
		v.fail(p+".items", "missing or empty")
	}
	ids := map[string]bool{}
	levels := map[string]map[string]*Criterion{}
	for i := range m.Items {
		cr := &m.Items[i]
		ip := fmt.Sprintf("%s.items[%d]", p, i)
		if cr.ID == "" {
			v.fail(ip+".id", "missing")
		} else if ids[cr.ID] {
			v.fail(ip+".id", "duplicate id %q", cr.ID)
		}
		ids[cr.ID] = true
		v.text(ip+".domain", cr.Domain)
		v.text(ip+".name", cr.Name)
		if cr.Level != Major && cr.Level != Minor {
			v.fail(ip+".level", "must be major or minor, got %q", cr.Level)
		}
		if levels[cr.Domain] == nil {
			levels[cr.Domain] = map[string]*Criterion{}
		}
		if levels[cr.Domain][cr.Level] != nil {
			v.fail(ip+".level", "domain %q already has a %s criterion", cr.Domain, cr.Level)
		}
		levels[cr.Domain][cr.Level] = cr
		c.validateRule(v, ip+".rule", cr.Rule, uses)
		if a := cr.Assume; a != nil {
			v.text(ip+".assume.statement", a.Statement)
			v.provenance(ip+".assume.provenance", a.Provenance)
			if cr.Rule.Type != "flag" {
				v.fail(ip+".assume", "only a flag criterion can be assumed, not a %q rule", cr.Rule.Type)
			}
			if a.Met {
				v.fail(ip+".assume.met", "an assumption may only take a criterion as not met: assuming a risk is present would raise the verdict without evidence")
			}
		}
	}
	// A domain with both levels must have mutually exclusive rules, so that
	// a criterion is major or minor, never both.
	for _, d := range sortedKeys(levels) {
		maj, mnr := levels[d][Major], levels[d][Minor]
		if maj == nil || mnr == nil {
			continue
		}
		if maj.Rule.Input != mnr.Rule.Input {
			v.fail(p+".items", "domain %q: major and minor read different inputs", d)
			continue
		}
		switch {
		case maj.Rule.Type == "equals" && mnr.Rule.Type == "equals":
			if maj.Rule.Value == mnr.Rule.Value {
				v.fail(p+".items", "domain %q: major and minor match the same value", d)
			}
		case maj.Rule.Type == "below" && mnr.Rule.Type == "range":
			if maj.Rule.Threshold != nil && mnr.Rule.Min != nil && *maj.Rule.Threshold > *mnr.Rule.Min {
				v.fail(p+".items", "domain %q: major and minor ranges overlap", d)
			}
		default:
			v.fail(p+".items", "domain %q: cannot prove the major and minor rules exclusive", d)
		}
	}
}

func (c *Config) validateHazard(v *validator, p string, m *HazardModel, uses func(string, string)) {
	v.text(p+".caveat", m.Caveat)
	v.text(p+".percent_note", m.PercentNote)
	v.decimals(p+".decimals", m.Decimals)
	outcomes := map[string]bool{}
	if len(m.Outcomes) == 0 {
		v.fail(p+".outcomes", "missing or empty")
	}
	for i, o := range m.Outcomes {
		op := fmt.Sprintf("%s.outcomes[%d]", p, i)
		v.text(op+".name", o.Name)
		v.text(op+".label", o.Label)
		if outcomes[o.Name] {
			v.fail(op+".name", "duplicate outcome %q", o.Name)
		}
		outcomes[o.Name] = true
		if v.num(op+".baseline_percent", o.BaselinePercent) && (*o.BaselinePercent <= 0 || *o.BaselinePercent >= 100) {
			v.fail(op+".baseline_percent", "must be in (0, 100), got %v", *o.BaselinePercent)
		}
		v.provenance(op+".provenance", o.Provenance)
	}
	if m.MortalityRatio != nil {
		v.positive(p+".mortality_ratio.value", m.MortalityRatio.Value)
		v.provenance(p+".mortality_ratio.provenance", m.MortalityRatio.Provenance)
	}
	if z := m.Zones; z != nil {
		v.positive(p+".zones.equivalent_min_ratio", z.EquivalentMinRatio)
		v.positive(p+".zones.equivalent_max_ratio", z.EquivalentMaxRatio)
		if z.EquivalentMinRatio != nil && z.EquivalentMaxRatio != nil && *z.EquivalentMinRatio >= *z.EquivalentMaxRatio {
			v.fail(p+".zones", "equivalent_min_ratio must be below equivalent_max_ratio")
		}
		v.provenance(p+".zones.provenance", z.Provenance)
	}
	ids := map[string]bool{}
	for i, f := range m.Factors {
		fp := fmt.Sprintf("%s.factors[%d]", p, i)
		if f.ID == "" || ids[f.ID] {
			v.fail(fp+".id", "missing or duplicate")
		}
		ids[f.ID] = true
		v.text(fp+".label", f.Label)
		c.validateRule(v, fp+".rule", f.Rule, uses)
		if len(f.HazardRatios) == 0 {
			v.fail(fp+".hazard_ratios", "missing or empty")
		}
		for _, o := range sortedKeys(f.HazardRatios) {
			hr := f.HazardRatios[o]
			if !outcomes[o] {
				v.fail(fp+".hazard_ratios."+o, "unknown outcome")
			}
			if math.IsNaN(hr) || math.IsInf(hr, 0) || hr <= 0 || hr > 100 {
				v.fail(fp+".hazard_ratios."+o, "must be in (0, 100], got %v", hr)
			}
		}
		v.provenance(fp+".provenance", f.Provenance)
	}
	v.provenance(p+".formula_provenance", m.FormulaProvenance)
}

func (c *Config) validateRecommendations(v *validator) {
	v.text("recommendations.disclaimer", c.Recommendations.Disclaimer)
	for i, r := range c.Recommendations.Items {
		p := fmt.Sprintf("recommendations.items[%d]", i)
		v.text(p+".id", r.ID)
		v.text(p+".title", r.Title)
		v.text(p+".text", r.Text)
		if len(r.AppliesTo) == 0 {
			v.fail(p+".applies_to", "missing or empty")
		}
		for j, a := range r.AppliesTo {
			ap := fmt.Sprintf("%s.applies_to[%d]", p, j)
			cd, ok := c.Calculator(a.Calculator)
			if !ok {
				v.fail(ap+".calculator", "unknown calculator %q", a.Calculator)
				continue
			}
			cats := cd.categories()
			for _, cat := range a.Categories {
				if !contains(cats, cat) {
					v.fail(ap+".categories", "%q is not a category of %s", cat, a.Calculator)
				}
			}
		}
		v.provenance(p+".provenance", r.Provenance)
	}
}

// categories lists the result categories a calculator can produce.
func (cd *CalculatorDef) categories() []string {
	var out []string
	for _, b := range cd.bandList() {
		out = append(out, b.Category)
	}
	if cd.Criteria != nil {
		out = append(out, categoryHBR, categoryNotHBR)
	}
	return out
}

func (c *Config) validateFHIR(v *validator) {
	f := c.FHIR
	for name, list := range map[string][]string{
		"fhir.observation_status":             f.ObservationStatus,
		"fhir.condition_exclude_verification": f.ConditionExcludeVerification,
		"fhir.condition_active_status":        f.ConditionActiveStatus,
		"fhir.medication_request_status":      f.MedicationRequestStatus,
		"fhir.medication_request_intent":      f.MedicationRequestIntent,
		"fhir.medication_statement_status":    f.MedicationStatementStatus,
	} {
		if len(list) == 0 {
			v.fail(name, "missing or empty")
		}
	}
	w := f.Windows
	for _, x := range []struct {
		name string
		v    *int
	}{
		{"bleeding_major_months", w.BleedingMajorMonths}, {"bleeding_minor_months", w.BleedingMinorMonths},
		{"long_term_min_days_per_week", w.LongTermMinDaysPerWeek}, {"long_term_min_days", w.LongTermMinDays},
		{"recent_days", w.RecentDays},
	} {
		if x.v == nil || *x.v <= 0 {
			v.fail("fhir.windows."+x.name, "missing or not positive")
		}
	}
	if w.BleedingMajorMonths != nil && w.BleedingMinorMonths != nil && *w.BleedingMinorMonths <= *w.BleedingMajorMonths {
		v.fail("fhir.windows.bleeding_minor_months", "must be above bleeding_major_months")
	}
	if w.LongTermMinDaysPerWeek != nil && *w.LongTermMinDaysPerWeek > 7 {
		v.fail("fhir.windows.long_term_min_days_per_week", "at most 7")
	}
	v.positive("fhir.windows.rivaroxaban_vascular_mg", w.RivaroxabanVascularMg)
	v.provenance("fhir.windows.provenance", w.Provenance)
	if f.LookbackDays == nil || *f.LookbackDays <= 0 {
		v.fail("fhir.lookback_days", "missing or not positive")
	}
	v.provenance("fhir.provenance", f.Provenance)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
