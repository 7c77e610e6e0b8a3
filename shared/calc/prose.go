package calc

import (
	"math"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// This file builds the calculators' sentences as messages of the catalogue
// (shared/message): the calculators never format text for a language, so
// that the edge that answers a person writes them in the reader's.

// Text returns the configuration's text key (a criterion's name, a band's
// label, a plan item) as a message: its English with its numbers filled
// in, and those numbers for a translation. A key the configuration lacks
// says itself, so that the tests catch it.
func (c *Config) Text(key string) message.Msg {
	i, ok := c.textIdx[key]
	if !ok {
		return message.Verbatim(key)
	}
	t := c.texts[i]
	return message.Config(key, fillText(t.Template, t.Params), t.Params)
}

// InputLabel names an input for a person ("Hemoglobin").
func (c *Config) InputLabel(name string) message.Msg { return c.Text("input." + name) }

// InputLabels names inputs for a person, as a list.
func (c *Config) InputLabels(names []string) message.List {
	out := make(message.List, len(names))
	for i, n := range names {
		out[i] = c.InputLabel(n)
	}
	return out
}

// shortName is a lab's short name ("Hb", "eGFR"), from the catalogue; an
// input that is not a number has its label.
func (c *Config) shortName(name string) message.Msg {
	if c.Inputs[name].Type == TypeNumber {
		return message.New("short."+name, nil)
	}
	return c.InputLabel(name)
}

// UnitLabel is how a unit of quantity q is written: the configuration's
// label for the canonical unit ("years", "g/dL"), the catalogue's for
// another ("µmol/L"), else the UCUM code.
func (c *Config) UnitLabel(q, unit string) message.Msg {
	qd := c.Quantities[q]
	if unit == "" || unit == qd.Unit || contains(qd.Aliases, unit) {
		return c.Text("quantity." + q)
	}
	for _, u := range qd.Units {
		if unit == u.Code || contains(u.Aliases, unit) {
			unit = u.Code
		}
	}
	if message.Default().Has("unit." + unit) {
		return message.New("unit."+unit, nil)
	}
	return message.Verbatim(unit)
}

// Amount writes x of input name in unit (empty: canonical) with the
// unit's precision: "1.1 mg/dL", "97 µmol/L", "78 years".
func (c *Config) Amount(name string, x float64, unit string) message.Msg {
	q := c.Inputs[name].Quantity
	return message.New("value.unit", message.Args{"value": message.Num{Value: x, Decimals: c.Decimals(q, unit)}, "unit": c.UnitLabel(q, unit)})
}

// Measured writes a measured value x of input name in unit (empty:
// canonical) with exactly the unit's decimals, trailing zeros kept: a lab
// value reads at the precision it is measured to ("1.10 mg/dL", "82.0
// kg"). Thresholds and ranges, which are not measurements, use Amount.
func (c *Config) Measured(name string, x float64, unit string) message.Msg {
	q := c.Inputs[name].Quantity
	return message.New("value.unit", message.Args{"value": message.Num{Value: x, Decimals: c.Decimals(q, unit), Fixed: true}, "unit": c.UnitLabel(q, unit)})
}

// number writes x of input name in the canonical unit's precision.
func (c *Config) number(name string, x float64) message.Num {
	return message.Num{Value: x, Decimals: c.Decimals(c.Inputs[name].Quantity, "")}
}

// step is the smallest difference the canonical unit's precision shows:
// the last value below an exclusive bound is bound − step (12.9 below 13).
func (c *Config) step(name string) float64 {
	return math.Pow(10, -float64(c.Decimals(c.Inputs[name].Quantity, "")))
}

// EnumLabel names an enum or sex value: the input's own name for it when
// the catalogue has one ("Major: within 6 months, or recurrent"), else the
// generic one ("Major").
func (c *Config) EnumLabel(input, value string) message.Msg {
	key := "enum." + input + "." + value
	if message.Default().Has(key) {
		args := message.Args{}
		for k, v := range c.inputParams(input) {
			args[k] = v
		}
		return message.New(key, args)
	}
	if message.Default().Has("enum." + value) {
		return message.New("enum."+value, nil)
	}
	return message.Verbatim(value)
}

// valueMsg writes an input's value for a person: yes or no, an enum's
// name, or the amount in the canonical unit.
func (c *Config) valueMsg(name string, v any) message.Msg {
	switch x := v.(type) {
	case bool:
		if x {
			return message.New("value.yes", nil)
		}
		return message.New("value.no", nil)
	case string:
		return c.EnumLabel(name, x)
	case float64:
		return c.Measured(name, x, "")
	}
	return message.New("value.unknown", nil)
}

// SourcesMsg lists records for a person: what each says, with its date
// (SourceMsg of each).
func SourcesMsg(srcs []Source) message.Series {
	out := make(message.Series, 0, len(srcs))
	for _, s := range srcs {
		out = append(out, SourceMsg(s))
	}
	return out
}

// SourceMsg is one record for a person: what it says and its date.
func SourceMsg(s Source) message.Msg {
	if s.Date == "" {
		return s.Describe()
	}
	return message.New("source.dated", message.Args{"what": s.Describe(), "date": message.Date(s.Date)})
}

// reported writes a given number as reported, with the canonical value
// beside it when the unit differs: "97 µmol/L (1.1 mg/dL)".
func (c *evalCtx) reported(g given) message.Msg {
	canon := c.cfg.Measured(g.name, g.num, "")
	f, ok := toFloat(g.in.Value)
	q := c.cfg.Quantities[g.def.Quantity]
	unit := strings.TrimSpace(g.in.Unit)
	if !ok || unit == "" || unit == q.Unit || contains(q.Aliases, unit) {
		return canon
	}
	if f == g.num {
		// A unit that only renames the canonical one (10*3/uL): as reported.
		return c.cfg.Measured(g.name, f, unit)
	}
	return message.New("value.reported", message.Args{"reported": c.cfg.Measured(g.name, f, unit), "value": canon})
}

// rangeMsg writes a range of input name in its canonical unit: "3–20 g/dL".
func (c *evalCtx) rangeMsg(name string, lo, hi float64) message.Msg {
	return message.New("range.unit", message.Args{"min": c.cfg.number(name, lo), "max": c.cfg.Amount(name, hi, "")})
}

// incompleteMessage says what the missing inputs do to the result, for its
// kind: a points score is a lower bound, a criteria verdict may already be
// decided, a hazard model gives a range.
func (c *evalCtx) incompleteMessage() message.Msg {
	missing := c.cfg.InputLabels(c.res.Missing)
	switch c.def.Kind {
	case KindPoints:
		if v, ok := c.res.Value("score_lower_bound"); ok {
			if f, ok := v.Value.(float64); ok {
				return message.New("result.incomplete.points", message.Args{"missing": missing, "score": f})
			}
		}
	case KindCriteria:
		if v, ok := c.res.Value("hbr"); ok {
			switch v.Value {
			case true:
				return message.New("result.incomplete.criteria.hbr", nil)
			case false:
				return message.New("result.incomplete.criteria.not-hbr", nil)
			}
		}
		return message.New("result.incomplete.criteria", message.Args{"missing": missing})
	case KindHazard:
		return message.New("result.incomplete.hazard", message.Args{"missing": missing})
	}
	return message.New("result.incomplete", message.Args{"missing": missing})
}

// dateOnly is the date part of a FHIR date or dateTime, for comparing.
func dateOnly(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// RiskDecimals is how many decimals a risk is written with for a person:
// one ("11.7%"), whatever precision the model computes it to, which the
// API's values keep for machines. A risk is an estimate, and a second
// decimal would claim a precision no risk model has.
const RiskDecimals = 1

// RoundRisk rounds a risk in percent to RiskDecimals.
func RoundRisk(x float64) float64 {
	p := math.Pow(10, RiskDecimals)
	return math.Round(x*p) / p
}

// riskNum writes a risk in percent for a person: one decimal, kept
// ("4.0%").
func riskNum(x float64) message.Num {
	return message.Num{Value: x, Decimals: RiskDecimals, Fixed: true}
}
