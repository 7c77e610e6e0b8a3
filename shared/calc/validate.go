package calc

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
)

// validator collects configuration errors with their paths.
type validator struct {
	c    *Config
	errs []error
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, &ConfigError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (v *validator) text(path, s string) {
	if strings.TrimSpace(s) == "" {
		v.fail(path, "missing or empty")
	}
}

// textAt is text for a path that is only written out when s fails: the
// code sets check thousands of texts, nearly all of them present.
func (v *validator) textAt(path func() string, s string) {
	if strings.TrimSpace(s) == "" {
		v.fail(path(), "missing or empty")
	}
}

func (v *validator) num(path string, p *float64) bool {
	switch {
	case p == nil:
		v.fail(path, "missing")
		return false
	case math.IsNaN(*p) || math.IsInf(*p, 0):
		v.fail(path, "must be a finite number")
		return false
	}
	return true
}

func (v *validator) positive(path string, p *float64) {
	if v.num(path, p) && *p <= 0 {
		v.fail(path, "must be greater than 0, got %v", *p)
	}
}

func (v *validator) decimals(path string, p *int) {
	if p == nil {
		v.fail(path, "missing")
	} else if *p < 0 || *p > 6 {
		v.fail(path, "must be between 0 and 6, got %d", *p)
	}
}

func (v *validator) provenance(path string, p Provenance) {
	if p.Source == "" {
		v.fail(path+".source", "missing")
	} else if _, ok := v.c.Sources[p.Source]; !ok {
		v.fail(path+".source", "unknown source %q (not in sources)", p.Source)
	}
	v.text(path+".table", p.Table)
	v.verification(path, p.Verified, p.Quote, p.Where, p.Note, false)
	if p.IsVerified() && contains(projectSources, p.Source) {
		v.fail(path+".source", "%s records a project decision, not a source that was read: it cannot verify a parameter", p.Source)
	}
}

// projectSources are the sources that record this project's own decisions
// and choices (SOURCES.md and the input ranges): a parameter they back is
// a decision, never verified against a publication.
var projectSources = []string{"smartcalc-reference", "smartcalc-plausibility"}

// verification checks a verified mark and what backs it, for a parameter's
// provenance and a plan citation alike: the mark is required; a verified
// one quotes the passage it was checked against and says where it was
// read; an unverified one gives the reason when needNote is set.
func (v *validator) verification(path string, verified *bool, quote, where, note string, needNote bool) {
	switch {
	case verified == nil:
		v.fail(path+".verified", "missing (true or false)")
	case *verified:
		if strings.TrimSpace(quote) == "" {
			v.fail(path+".quote", "a verified source is quoted: give the passage it was checked against")
		}
		if strings.TrimSpace(where) == "" {
			v.fail(path+".where", "a verified source says where the passage was read")
		}
	case needNote && strings.TrimSpace(note) == "":
		v.fail(path+".note", "an unverified source gives the reason it could not be checked")
	}
}

func (v *validator) sexMap(path string, m map[string]float64, positive bool) {
	for _, s := range []string{Female, Male} {
		x, ok := m[s]
		if !ok {
			v.fail(path+"."+s, "missing")
			continue
		}
		if math.IsNaN(x) || math.IsInf(x, 0) || (positive && x <= 0) {
			v.fail(path+"."+s, "invalid value %v", x)
		}
	}
	for k := range m {
		if k != Female && k != Male {
			v.fail(path+"."+k, "unknown sex (want female or male)")
		}
	}
}

// versionRE is compiled on first use, by the calculate function alone.
var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{4}\.[0-9]+\.[0-9]+$`) })

// requiredCalculators are the ids the API contract (README Design §5) names.
var requiredCalculators = []string{"precise-hbr", "arc-hbr", "precise-dapt", "arc-hbr-tradeoff", "egfr-ckd-epi-2021", "crcl-cockcroft-gault"}

// validate checks the whole configuration; refs are its texts
// (textRefs), which fillTexts then fills.
func (c *Config) validate(refs []textRef) error {
	v := &validator{c: c}
	if c.Format != 1 {
		v.fail("format", "unsupported format %d (want 1)", c.Format)
	}
	if !versionRE().MatchString(c.Version) {
		v.fail("version", "must look like YYYY.MINOR.PATCH, got %q", c.Version)
	}
	v.text("title", c.Title)
	if len(c.Sources) == 0 {
		v.fail("sources", "missing or empty")
	}
	for _, k := range sortedKeys(c.Sources) {
		v.text("sources."+k+".citation", c.Sources[k].Citation)
	}
	if c.Rounding.Method != "half-up" {
		v.fail("rounding.method", "must be \"half-up\" (never banker's rounding), got %q", c.Rounding.Method)
	}
	if v.num("rounding.snap", c.Rounding.Snap) {
		s := *c.Rounding.Snap
		if per := 1 / s; s < 1e-12 || s > 1e-3 || math.Abs(per-math.Round(per)) > 1e-3 {
			v.fail("rounding.snap", "must be 1/N for an integer N, between 1e-12 and 0.001, got %v", s)
		}
	}
	v.provenance("rounding.provenance", c.Rounding.Provenance)
	c.validateQuantities(v)
	c.validateInputs(v)
	v.provenance("input_provenance", c.InputProvenance)
	c.validateCalculators(v)
	c.validateRecommendations(v)
	c.validateSummary(v)
	c.validateFHIR(v)
	c.validateCodes(v)
	c.validateChanges(v)
	c.validatePlan(v)
	c.validateTexts(v, refs)
	return errors.Join(v.errs...)
}

func (c *Config) validateQuantities(v *validator) {
	if len(c.Quantities) == 0 {
		v.fail("quantities", "missing or empty")
	}
	for _, name := range sortedKeys(c.Quantities) {
		q := c.Quantities[name]
		p := "quantities." + name
		v.text(p+".label", q.Label)
		v.text(p+".unit", q.Unit)
		v.decimals(p+".decimals", q.Decimals)
		seen := map[string]bool{q.Unit: true}
		for _, a := range q.Aliases {
			if seen[a] {
				v.fail(p+".aliases", "unit %q listed twice", a)
			}
			seen[a] = true
		}
		for i, u := range q.Units {
			up := fmt.Sprintf("%s.units[%d]", p, i)
			v.text(up+".code", u.Code)
			if u.Decimals != nil {
				v.decimals(up+".decimals", u.Decimals)
			}
			for _, code := range append([]string{u.Code}, u.Aliases...) {
				if seen[code] {
					v.fail(up, "unit %q listed twice", code)
				}
				seen[code] = true
			}
			switch {
			case u.Multiply != nil && u.Divide != nil:
				v.fail(up, "give multiply or divide, not both")
			case u.Multiply != nil:
				v.positive(up+".multiply", u.Multiply)
			case u.Divide != nil:
				v.positive(up+".divide", u.Divide)
			default:
				v.fail(up, "missing multiply or divide")
			}
			v.provenance(up+".provenance", u.Provenance)
		}
	}
}

func (c *Config) validateInputs(v *validator) {
	if len(c.Inputs) == 0 {
		v.fail("inputs", "missing or empty")
	}
	for _, name := range sortedKeys(c.Inputs) {
		in := c.Inputs[name]
		p := "inputs." + name
		v.text(p+".label", in.Label)
		v.text(p+".description", in.Description)
		switch in.Type {
		case TypeNumber:
			if _, ok := c.Quantities[in.Quantity]; !ok {
				v.fail(p+".quantity", "unknown quantity %q", in.Quantity)
			}
			if in.Domain == nil {
				v.fail(p+".domain", "missing")
			} else {
				v.rangeOK(p+".domain", *in.Domain)
			}
			if in.Plausible == nil {
				v.fail(p+".plausible", "missing")
			} else if v.rangeOK(p+".plausible", *in.Plausible) && in.Domain != nil && in.Domain.Min != nil && in.Domain.Max != nil &&
				(*in.Plausible.Min < *in.Domain.Min || *in.Plausible.Max > *in.Domain.Max) {
				v.fail(p+".plausible", "must lie inside the domain")
			}
		case TypeBoolean:
		case TypeEnum:
			if len(in.Values) == 0 {
				v.fail(p+".values", "missing or empty")
			}
		case TypeSex:
			if len(in.Values) != 2 || !contains(in.Values, Female) || !contains(in.Values, Male) {
				v.fail(p+".values", "must be [\"female\", \"male\"]")
			}
		default:
			v.fail(p+".type", "unknown type %q (want number, boolean, enum or sex)", in.Type)
		}
	}
	// The engine derives eGFR and creatinine clearance from these by name.
	for _, name := range []string{"age", "creatinine", "egfr", "crcl", "weight"} {
		if in, ok := c.Inputs[name]; !ok || in.Type != TypeNumber {
			v.fail("inputs."+name, "missing or not of type number")
		}
	}
	if in, ok := c.Inputs["sex"]; !ok || in.Type != TypeSex {
		v.fail("inputs.sex", "missing or not of type sex")
	}
}

func (v *validator) rangeOK(path string, r Range) bool {
	a, b := v.num(path+".min", r.Min), v.num(path+".max", r.Max)
	if a && b && *r.Min > *r.Max {
		v.fail(path, "min %v is above max %v", *r.Min, *r.Max)
		return false
	}
	return a && b
}

func (c *Config) validateCalculators(v *validator) {
	ids := map[string]bool{}
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		p := fmt.Sprintf("calculators[%d]", i)
		if cd.ID == "" {
			v.fail(p+".id", "missing")
		} else {
			p = "calculators[" + cd.ID + "]"
			if ids[cd.ID] {
				v.fail(p+".id", "duplicate id")
			}
			ids[cd.ID] = true
		}
		v.text(p+".title", cd.Title)
		v.text(p+".equation.name", cd.Equation.Name)
		v.text(p+".equation.version", cd.Equation.Version)
		v.text(p+".description", cd.Description)
		if len(cd.References) == 0 {
			v.fail(p+".references", "missing or empty")
		}
		for j, r := range cd.References {
			if _, ok := c.Sources[r]; !ok {
				v.fail(fmt.Sprintf("%s.references[%d]", p, j), "unknown source %q", r)
			}
		}
		declared := map[string]bool{}
		if len(cd.Inputs) == 0 {
			v.fail(p+".inputs", "missing or empty")
		}
		for j, in := range cd.Inputs {
			ip := fmt.Sprintf("%s.inputs[%d]", p, j)
			if _, ok := c.Inputs[in.Name]; !ok {
				v.fail(ip+".name", "unknown input %q", in.Name)
			}
			if declared[in.Name] {
				v.fail(ip+".name", "input %q listed twice", in.Name)
			}
			declared[in.Name] = true
			if in.Role != "required" && in.Role != "alternative" {
				v.fail(ip+".role", "must be required or alternative, got %q", in.Role)
			}
		}
		for j, in := range cd.Inputs {
			for _, a := range in.Alternative {
				if !declared[a] {
					v.fail(fmt.Sprintf("%s.inputs[%d].alternative", p, j), "input %q is not declared by the calculator", a)
				}
			}
		}
		uses := func(path, name string) {
			if !declared[name] {
				v.fail(path, "input %q is not declared in %s.inputs", name, p)
			}
		}
		sections := 0
		for _, present := range []bool{cd.Points != nil, cd.Criteria != nil, cd.Hazard != nil, cd.CKDEPI != nil, cd.CockcroftGault != nil} {
			if present {
				sections++
			}
		}
		if sections > 1 {
			v.fail(p, "more than one model section")
		}
		switch cd.Kind {
		case KindPoints:
			if cd.Points == nil {
				v.fail(p+".points", "missing for kind points")
			} else {
				c.validatePoints(v, p+".points", cd.Points, uses)
			}
		case KindCriteria:
			if cd.Criteria == nil {
				v.fail(p+".criteria", "missing for kind criteria")
			} else {
				c.validateCriteria(v, p+".criteria", cd.Criteria, uses)
			}
		case KindHazard:
			if cd.Hazard == nil {
				v.fail(p+".hazard", "missing for kind hazard")
			} else {
				c.validateHazard(v, p+".hazard", cd.Hazard, uses)
			}
		case KindCKDEPI2021:
			if cd.CKDEPI == nil {
				v.fail(p+".ckd_epi", "missing for kind ckd-epi-2021")
			} else {
				m := cd.CKDEPI
				v.positive(p+".ckd_epi.multiplier", m.Multiplier)
				v.sexMap(p+".ckd_epi.kappa", m.Kappa, true)
				v.sexMap(p+".ckd_epi.alpha", m.Alpha, false)
				v.num(p+".ckd_epi.exponent_above", m.ExponentAbove)
				v.positive(p+".ckd_epi.age_base", m.AgeBase)
				v.sexMap(p+".ckd_epi.sex_factor", m.SexFactor, true)
				v.decimals(p+".ckd_epi.decimals", m.Decimals)
				v.provenance(p+".ckd_epi.provenance", m.Provenance)
			}
			for _, in := range []string{"age", "sex", "creatinine"} {
				uses(p+".inputs", in)
			}
			v.bands(p, cd.Bands, cd.BandsRiskOutcome)
			if cd.BandsProvenance == nil {
				v.fail(p+".bands_provenance", "missing")
			} else {
				v.provenance(p+".bands_provenance", *cd.BandsProvenance)
			}
		case KindCockcroftGault:
			if cd.CockcroftGault == nil {
				v.fail(p+".cockcroft_gault", "missing for kind cockcroft-gault")
			} else {
				m := cd.CockcroftGault
				v.positive(p+".cockcroft_gault.age_from", m.AgeFrom)
				v.positive(p+".cockcroft_gault.divisor", m.Divisor)
				v.sexMap(p+".cockcroft_gault.sex_factor", m.SexFactor, true)
				v.decimals(p+".cockcroft_gault.decimals", m.Decimals)
				v.provenance(p+".cockcroft_gault.provenance", m.Provenance)
				if age, ok := c.Inputs["age"]; ok && age.Domain != nil && age.Domain.Max != nil && m.AgeFrom != nil && *m.AgeFrom <= *age.Domain.Max {
					v.fail(p+".cockcroft_gault.age_from", "must exceed the age domain maximum %v, or clearance could be negative", *age.Domain.Max)
				}
			}
			for _, in := range []string{"age", "sex", "weight", "creatinine"} {
				uses(p+".inputs", in)
			}
		default:
			v.fail(p+".kind", "unknown kind %q", cd.Kind)
		}
	}
	for _, id := range requiredCalculators {
		if !ids[id] {
			v.fail("calculators", "missing calculator %q", id)
		}
	}
	// Cross-references need every calculator parsed first.
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		if cd.Points == nil {
			continue
		}
		for j, t := range cd.Points.AnyOf {
			p := fmt.Sprintf("calculators[%s].points.any_of[%d]", cd.ID, j)
			src, ok := c.Calculator(t.CriteriaFrom)
			if !ok || src.Criteria == nil {
				v.fail(p+".criteria_from", "no criteria calculator %q", t.CriteriaFrom)
				continue
			}
			for _, id := range t.Criteria {
				cr, ok := src.criterion(id)
				if !ok {
					v.fail(p+".criteria", "unknown criterion %q in %s", id, t.CriteriaFrom)
				} else if !cd.declares(cr.Rule.Input) {
					v.fail(p+".criteria", "criterion %q reads input %q, which %s does not declare", id, cr.Rule.Input, cd.ID)
				}
			}
		}
	}
	for _, pair := range []struct{ calc, needs string }{{"egfr", "egfr-ckd-epi-2021"}, {"crcl", "crcl-cockcroft-gault"}} {
		if _, ok := c.Calculator(pair.needs); !ok {
			v.fail("calculators", "%s derivation needs calculator %q", pair.calc, pair.needs)
		}
	}
}

// declares reports whether the calculator takes the input.
func (cd *CalculatorDef) declares(input string) bool {
	for _, in := range cd.Inputs {
		if in.Name == input {
			return true
		}
	}
	return false
}

func (cd *CalculatorDef) criterion(id string) (*Criterion, bool) {
	if cd.Criteria == nil {
		return nil, false
	}
	for i := range cd.Criteria.Items {
		if cd.Criteria.Items[i].ID == id {
			return &cd.Criteria.Items[i], true
		}
	}
	return nil, false
}

// validateChanges requires a change log whose newest entry is this version
// and whose versions are all distinct.
func (c *Config) validateChanges(v *validator) {
	if len(c.Changes) == 0 {
		v.fail("changes", "missing or empty")
		return
	}
	if c.Changes[0].Version != c.Version {
		v.fail("changes[0].version", "the newest entry is %q, want the configuration's version %q", c.Changes[0].Version, c.Version)
	}
	seen := map[string]bool{}
	for i, ch := range c.Changes {
		p := fmt.Sprintf("changes[%d]", i)
		v.text(p+".version", ch.Version)
		if seen[ch.Version] {
			v.fail(p+".version", "version %q listed twice", ch.Version)
		}
		seen[ch.Version] = true
		if !dateRE().MatchString(ch.Date) {
			v.fail(p+".date", "want YYYY-MM-DD, got %q", ch.Date)
		}
		if len(ch.Changes) == 0 {
			v.fail(p+".changes", "missing or empty")
		}
		for j, t := range ch.Changes {
			v.text(fmt.Sprintf("%s.changes[%d]", p, j), t)
		}
	}
}

var dateRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`) })
