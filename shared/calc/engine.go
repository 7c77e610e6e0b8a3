package calc

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Engine evaluates the configured calculators. It is immutable and safe for
// concurrent use.
type Engine struct {
	cfg   *Config
	per   float64 // 1/snap: rounding works on integers of this many units per 1
	infos []CalculatorInfo
	byID  map[string]int
	defs  map[string]*InputDef // the configuration's inputs, by name
	cites map[string][]string  // each calculator's references, formatted
	// unverified and params are each calculator's unverified parameters
	// and how many carry a provenance (CalculatorDef.Unverified).
	unverified map[string][]string
	params     map[string]int
}

// CalculatorInfo describes a calculator for clients: what it computes, from
// which inputs (with their units), and its references.
type CalculatorInfo struct {
	ID          string        `json:"id"`
	Title       string        `json:"title"`
	Equation    Equation      `json:"equation"`
	Description string        `json:"description"`
	Inputs      []InputInfo   `json:"inputs"`
	References  []Publication `json:"references"`
}

// InputInfo describes one input of a calculator. Unit is the canonical UCUM
// unit; Units lists every unit accepted, canonical first.
type InputInfo struct {
	Name        string   `json:"name"`
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Role        string   `json:"role"`
	Alternative []string `json:"alternative,omitempty"`
	Unit        string   `json:"unit,omitempty"`
	Units       []string `json:"units,omitempty"`
	Values      []string `json:"values,omitempty"`
	Domain      *Range   `json:"domain,omitempty"`
	Plausible   *Range   `json:"plausible,omitempty"`
}

// NewEngine returns an engine for a validated configuration.
func NewEngine(cfg *Config) (*Engine, error) {
	if cfg == nil || cfg.raw == nil {
		return nil, errors.New("calc: NewEngine needs a configuration from LoadConfig or ParseConfig")
	}
	e := &Engine{cfg: cfg, per: math.Round(1 / *cfg.Rounding.Snap), byID: map[string]int{},
		defs: map[string]*InputDef{}, cites: map[string][]string{}, unverified: map[string][]string{}, params: map[string]int{}}
	for name, def := range cfg.Inputs {
		e.defs[name] = &def
	}
	for i := range cfg.Calculators {
		cd := &cfg.Calculators[i]
		info := CalculatorInfo{ID: cd.ID, Title: cd.Title, Equation: cd.Equation, Description: cd.Description}
		for _, in := range cd.Inputs {
			def := cfg.Inputs[in.Name]
			ii := InputInfo{Name: in.Name, Label: def.Label, Type: def.Type, Role: in.Role, Alternative: in.Alternative, Values: def.Values, Domain: def.Domain, Plausible: def.Plausible}
			if def.Type == TypeNumber {
				ii.Unit = cfg.Quantities[def.Quantity].Unit
				ii.Units = cfg.AcceptedUnits(def.Quantity)
			}
			info.Inputs = append(info.Inputs, ii)
		}
		for _, r := range cd.References {
			s := cfg.Sources[r]
			info.References = append(info.References, s)
			cite := s.Citation
			if s.DOI != "" {
				cite += " doi:" + s.DOI
			} else if s.URL != "" {
				cite += " " + s.URL
			}
			e.cites[cd.ID] = append(e.cites[cd.ID], cite)
		}
		e.unverified[cd.ID] = cd.Unverified()
		e.params[cd.ID] = len(cd.Parameters())
		e.byID[cd.ID] = i
		e.infos = append(e.infos, info)
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() *Config { return e.cfg }

// Calculators describes every calculator, in configuration order.
func (e *Engine) Calculators() []CalculatorInfo { return append([]CalculatorInfo(nil), e.infos...) }

// Evaluate runs calculator id on the inputs. Inputs the calculator does not
// read are ignored. The error is ErrUnknownCalculator or an *InputError (a
// mistake in the request); clinical states such as missing or out-of-range
// inputs are results, never errors.
func (e *Engine) Evaluate(id string, in Inputs) (*Result, error) {
	i, ok := e.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCalculator, id)
	}
	vals, why, err := e.normalizeAll(in)
	if err != nil {
		return nil, err
	}
	return e.evaluate(&e.cfg.Calculators[i], vals, why), nil
}

// EvaluateAll runs every calculator on one set of inputs (one fetch of the
// record), in configuration order.
func (e *Engine) EvaluateAll(in Inputs) ([]*Result, error) {
	vals, why, err := e.normalizeAll(in)
	if err != nil {
		return nil, err
	}
	out := make([]*Result, len(e.cfg.Calculators))
	for i := range e.cfg.Calculators {
		out[i] = e.evaluate(&e.cfg.Calculators[i], vals, why)
	}
	return out, nil
}

// roundHalfUp rounds x to the nearest integer, halves up, after snapping x
// to a multiple of the configured snap in integer arithmetic, so that
// 22.499999999999996 (22.5 on paper) rounds to 23. Never to even.
func (e *Engine) roundHalfUp(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	if math.Abs(x) > 1e9 { // no fractional precision left to snap
		return math.Floor(x + 0.5)
	}
	per := int64(e.per)
	n := int64(math.Round(x * e.per))
	q := floorDiv(n+per/2, per)
	return float64(q)
}

// roundTo rounds x half up to d decimals.
func (e *Engine) roundTo(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return e.roundHalfUp(x*p) / p
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// evalCtx is the state of one calculator evaluation.
type evalCtx struct {
	e        *Engine
	cfg      *Config
	def      *CalculatorDef
	declared map[string]bool
	vals     map[string]given
	why      map[string]Input // inputs without a value that say why
	res      *Result
	echoed   map[string]bool
	missing  *[]string
	outRange map[string]bool
	warned   map[string]bool
	derived  map[string]derivation
	looked   map[string]bool // every input read, for tests
}

type derivation struct {
	v       float64
	ok      bool
	missing []string
}

func (e *Engine) newCtx(def *CalculatorDef, vals map[string]given, why map[string]Input) *evalCtx {
	n := len(def.Inputs)
	c := &evalCtx{e: e, cfg: e.cfg, def: def, vals: vals, why: why, declared: make(map[string]bool, n), echoed: make(map[string]bool, n),
		outRange: map[string]bool{}, warned: map[string]bool{}, derived: map[string]derivation{}, looked: make(map[string]bool, n)}
	for _, in := range def.Inputs {
		c.declared[in.Name] = true
	}
	var miss []string
	c.missing = &miss
	c.res = &Result{Calculator: def.ID, Title: e.cfg.Text("calc." + def.ID + ".title"), Equation: def.Equation, ConfigVersion: e.cfg.Version,
		Values: []Value{}, Inputs: make([]InputEcho, 0, len(def.Inputs)), Missing: []string{}, Warnings: []Warning{},
		References: append([]string(nil), e.cites[def.ID]...), Unverified: append([]string{}, e.unverified[def.ID]...), Parameters: e.params[def.ID]}
	return c
}

// warn records a problem once per kind, input and message.
func (c *evalCtx) warn(kind, input, key string, args message.Args) {
	w := Warning{Kind: kind, Input: input, Text: message.New(key, args)}
	if !c.warned[w.WarningKey()] {
		c.warned[w.WarningKey()] = true
		c.res.Warnings = append(c.res.Warnings, w)
	}
}

func (c *evalCtx) miss(name string) {
	for _, m := range *c.missing {
		if m == name {
			return
		}
	}
	*c.missing = append(*c.missing, name)
}

// probe runs f collecting the names it finds missing instead of recording
// them, so that an undecided alternative only asks for what it needs.
func (c *evalCtx) probe(f func()) []string {
	saved := c.missing
	var tmp []string
	c.missing = &tmp
	f()
	c.missing = saved
	return tmp
}

// echo lists an input as the calculator used it. A number keeps the value
// and unit as reported beside the value in the canonical unit. Staleness
// is marked, not warned: the mapping warns of a stale result once, for
// every calculator.
func (c *evalCtx) echo(g given) {
	if c.echoed[g.name] {
		return
	}
	c.echoed[g.name] = true
	e := InputEcho{Name: g.name, Origin: g.in.Origin, Source: g.in.Source, Evidence: g.in.Evidence, Stale: g.in.Stale, Note: g.in.Note}
	switch g.def.Type {
	case TypeNumber:
		q := c.cfg.Quantities[g.def.Quantity]
		e.Value, e.Unit = g.num, q.Unit
		if f, ok := toFloat(g.in.Value); ok {
			unit := strings.TrimSpace(g.in.Unit)
			if unit == "" {
				unit = q.Unit
			}
			e.Reported = &Measured{Value: f, Unit: unit}
		}
	case TypeBoolean:
		e.Value = g.b
	default:
		e.Value = g.s
	}
	c.res.Inputs = append(c.res.Inputs, e)
}

// lookup returns a given input, echoing it. It records nothing as missing.
// An input without a value that says why is echoed with its reason.
func (c *evalCtx) lookup(name string) (given, bool) {
	c.looked[name] = true
	g, ok := c.vals[name]
	if ok {
		c.echo(g)
	} else if in, why := c.why[name]; why && !c.echoed[name] {
		c.echoed[name] = true
		c.res.Inputs = append(c.res.Inputs, InputEcho{Name: name, Origin: in.Origin, Source: in.Source, Evidence: in.Evidence, Note: in.Note})
	}
	return g, ok
}

// note is what an input without a value says of itself, or zero.
func (c *evalCtx) note(name string) message.Msg { return c.why[name].Note }

// num returns a numeric input in its canonical unit, deriving eGFR and
// creatinine clearance from creatinine when they are not given. It records
// a missing input, or an input outside its validated domain.
func (c *evalCtx) num(name string) (float64, bool) {
	g, ok := c.lookup(name)
	if !ok {
		switch {
		case name == "egfr" && c.declared["creatinine"]:
			return c.derive("egfr", c.deriveEGFR)
		case name == "crcl" && c.declared["creatinine"]:
			return c.derive("crcl", c.deriveCrCl)
		}
		c.miss(name)
		return 0, false
	}
	d := g.def.Domain
	if g.num < *d.Min || g.num > *d.Max {
		if !c.outRange[name] {
			c.outRange[name] = true
			c.res.OutOfRange = append(c.res.OutOfRange, name)
			c.warn(WarnRange, name, "warn.out-of-range", message.Args{"input": c.cfg.InputLabel(name), "value": c.reported(g),
				"title": c.res.Title, "range": c.rangeMsg(name, *d.Min, *d.Max)})
		}
		return 0, false
	}
	if p := g.def.Plausible; g.num < *p.Min || g.num > *p.Max {
		c.warn(WarnPlausible, name, "warn.implausible", message.Args{"input": c.cfg.InputLabel(name), "value": c.reported(g),
			"range": c.rangeMsg(name, *p.Min, *p.Max)})
	}
	return g.num, true
}

func (c *evalCtx) derive(name string, f func() (v float64, ok bool, how message.Msg, stale bool, from []string)) (float64, bool) {
	d, done := c.derived[name]
	if !done {
		var v float64
		var ok, stale bool
		var how message.Msg
		var from []string
		d.missing = c.probe(func() { v, ok, how, stale, from = f() })
		d.v, d.ok = v, ok
		c.derived[name] = d
		if ok {
			def := c.cfg.Inputs[name]
			c.echoed[name] = true
			e := InputEcho{Name: name, Value: v, Unit: c.cfg.Quantities[def.Quantity].Unit, Origin: OriginDerived, Stale: stale, Derivation: how}
			// A derived value is as old as the oldest result it is
			// computed from, and cites them.
			for _, in := range from {
				for _, s := range c.sources(in) {
					e.Evidence = append(e.Evidence, s)
					if s.Date != "" && (e.Source == nil || dateOnly(s.Date) < dateOnly(e.Source.Date)) {
						e.Source = &Source{Date: s.Date}
					}
				}
			}
			c.res.Inputs = append(c.res.Inputs, e)
		}
	}
	if !d.ok {
		if _, given := c.vals["creatinine"]; !given {
			// Neither the value nor what it is computed from: ask for the value.
			c.miss(name)
		} else {
			for _, m := range d.missing {
				c.miss(m)
			}
		}
	}
	return d.v, d.ok
}

// sex returns "female" or "male". Absent, or any other value, is recorded
// as missing: no default is ever assumed.
func (c *evalCtx) sex() (string, bool) {
	g, ok := c.lookup("sex")
	if !ok {
		c.miss("sex")
		return "", false
	}
	if g.s != Female && g.s != Male {
		c.warn(WarnValue, "sex", "warn.sex-other", message.Args{"sex": g.s})
		c.miss("sex")
		return "", false
	}
	return g.s, true
}

func (c *evalCtx) flag(name string) (bool, bool) {
	g, ok := c.lookup(name)
	if !ok {
		c.miss(name)
		return false, false
	}
	return g.b, true
}

func (c *evalCtx) enum(name string) (string, bool) {
	g, ok := c.lookup(name)
	if !ok {
		c.miss(name)
		return "", false
	}
	return g.s, true
}

func (c *evalCtx) anyStale(names ...string) bool {
	for _, n := range names {
		if g, ok := c.vals[n]; ok && g.in.Stale {
			return true
		}
	}
	return false
}

// band returns the band containing x.
func band(bands []Band, x float64) Band {
	b := bands[0]
	for _, cand := range bands[1:] {
		if x >= *cand.From {
			b = cand
		}
	}
	return b
}

func (e *Engine) evaluate(def *CalculatorDef, vals map[string]given, why map[string]Input) *Result {
	c := e.newCtx(def, vals, why)
	switch def.Kind {
	case KindPoints:
		c.points(def.Points)
	case KindCriteria:
		c.criteria(def.Criteria)
	case KindHazard:
		c.hazard(def.Hazard)
	case KindCKDEPI2021:
		c.egfrCalculator()
	case KindCockcroftGault:
		c.crclCalculator()
	}
	c.finish()
	if _, ok := e.cfg.Summary.HBRCategories[def.ID]; ok {
		c.res.HBR = &Verdict{HBR: e.cfg.verdictOf(def.ID, c.res)}
	}
	return c.res
}

// finish sets the status and the sentence that explains it, and makes sure
// no number is NaN or Inf.
func (c *evalCtx) finish() {
	r := c.res
	r.Missing = append(r.Missing, *c.missing...)
	switch {
	case len(r.OutOfRange) > 0:
		r.Status = StatusOutOfRange
		r.Message = message.New("result.out-of-range", message.Args{"title": r.Title, "inputs": c.cfg.InputLabels(r.OutOfRange)})
		r.Values, r.Components, r.Criteria, r.Recommendations = []Value{}, nil, nil, nil
	case len(r.Missing) > 0:
		r.Status = StatusIncomplete
		r.Message = c.incompleteMessage()
	default:
		r.Status = StatusOK
	}
	for i := range r.Values {
		if f, ok := r.Values[i].Value.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			r.Values[i].Value, r.Values[i].Display = nil, message.New("value.not-computable", nil)
			r.Status = StatusNotApplicable
			r.Message = message.New("result.not-finite", nil)
		}
	}
	for i := range r.Components {
		if p := r.Components[i].Points; p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
			r.Components[i].Points = nil
		}
	}
	if r.Status == StatusOK || r.Status == StatusIncomplete {
		c.recommend()
	}
}

func (c *evalCtx) recommend() {
	var cat string
	if len(c.res.Values) > 0 {
		cat = c.res.Values[0].Category
	}
	if cat == "" || c.res.Values[0].Value == nil {
		return
	}
	for _, rec := range c.e.cfg.Recommendations.Items {
		for _, a := range rec.AppliesTo {
			if a.Calculator == c.def.ID && contains(a.Categories, cat) {
				c.res.Recommendations = append(c.res.Recommendations, rec.ID)
			}
		}
	}
}
