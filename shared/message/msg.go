package message

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Msg is a sentence or phrase for a person, not yet in a language: a
// catalogue key and its arguments. A Msg made by Config is one of the
// scoring configuration's texts instead: its key is the text's key,
// Fallback its English and Args its numbers. A Msg with no key says
// Fallback verbatim (the record's own words).
//
// Printer.Localize writes a Msg's text in a language; a Msg encodes to
// JSON as that text (in English if it was never localized) and decodes
// from it.
type Msg struct {
	Key      string
	Args     Args
	Fallback string
	config   bool
	text     string
}

// Args are a message's arguments by placeholder name. A value is a string
// (shown verbatim: the record's words, a code), an int or a float64 (a
// number, at most two decimals), a Num, a Date, a Msg (rendered in the same
// language), a List or a Series.
type Args map[string]any

// New returns the message key with args.
func New(key string, args Args) Msg { return Msg{Key: key, Args: args} }

// Verbatim returns a message that says s as it is, in every language: the
// record's or the EHR's own words.
func Verbatim(s string) Msg { return Msg{Fallback: s} }

// Config returns one of the scoring configuration's texts: key names it in
// the catalogue's config_text, english is its English with its numbers
// filled in, and params are those numbers, for a translation's
// placeholders.
func Config(key, english string, params map[string]float64) Msg {
	args := make(Args, len(params))
	for k, v := range params {
		args[k] = v
	}
	return Msg{Key: key, Args: args, Fallback: english, config: true}
}

// IsZero reports whether m says nothing.
func (m Msg) IsZero() bool { return m.Key == "" && m.Fallback == "" && m.text == "" }

// String is the text Localize wrote, else the English.
func (m Msg) String() string {
	if m.text != "" || m.IsZero() {
		return m.text
	}
	return Default().Printer(English).Sprint(m)
}

// MarshalJSON encodes the message as its text.
func (m Msg) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON decodes a text: a client reading the API gets the sentence
// as written, in the language it asked for.
func (m *Msg) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*m = Msg{Fallback: s, text: s}
	return nil
}

// Num is a number written with at most Decimals decimals, trailing zeros
// dropped; with Fixed, with exactly Decimals decimals, as a measured value
// reads at the precision it is measured to (1.10 mg/dL, 82.0 kg).
type Num struct {
	Value    float64
	Decimals int
	Fixed    bool
}

// Date is a FHIR date or dateTime ("2026-11-30", "2026-11-30T08:30:00Z",
// "2026-05", "2026"), written as a calendar date in the reader's language.
// The date is the one the record wrote, whatever the time zone.
type Date string

// List is a list of items joined as the language joins a list ("Hb, WBC
// and eGFR"; 「血紅素、白血球及 eGFR」).
type List []any

// Series is a list of longer items, each perhaps with commas of its own,
// joined with semicolons.
type Series []any

// Printer writes messages in one language.
type Printer struct {
	c    *Catalog
	lang Lang
}

// Printer returns a printer for l (English when l is not a language of
// the catalogue).
func (c *Catalog) Printer(l Lang) Printer {
	if _, ok := c.strings[l]; !ok {
		l = English
	}
	return Printer{c: c, lang: l}
}

// Lang returns the printer's language.
func (p Printer) Lang() Lang { return p.lang }

// Sprint writes m in the printer's language. A key the catalogue lacks is
// written as the key itself, and a placeholder without an argument stays
// as it is, so that tests catch both.
func (p Printer) Sprint(m Msg) string {
	var tmpl string
	switch {
	case m.Key == "":
		return m.Fallback
	case m.config:
		tmpl = p.c.config[p.lang][m.Key]
		if tmpl == "" {
			return m.Fallback
		}
	default:
		tmpl = p.c.strings[p.lang][m.Key]
		if tmpl == "" {
			tmpl = p.c.strings[English][m.Key]
		}
		if tmpl == "" {
			return m.Key
		}
	}
	return Fill(tmpl, func(name string) (string, bool) {
		v, ok := m.Args[name]
		if !ok {
			return "", false
		}
		return p.Arg(v), true
	})
}

// Text writes the catalogue's message key with args.
func (p Printer) Text(key string, args Args) string { return p.Sprint(New(key, args)) }

// SprintAll writes each of msgs in the printer's language.
func (p Printer) SprintAll(msgs []Msg) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = p.Sprint(m)
	}
	return out
}

// Arg writes v as a placeholder shows it (see Args): a List joined as the
// printer's language joins a list, a Date as its calendar date, a Msg in
// the printer's language.
func (p Printer) Arg(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Msg:
		return p.Sprint(x)
	case *Msg:
		return p.Sprint(*x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return FormatNumber(x, 2)
	case Num:
		if x.Fixed {
			return FormatFixed(x.Value, x.Decimals)
		}
		return FormatNumber(x.Value, x.Decimals)
	case Date:
		return p.date(string(x))
	case List:
		return p.join(x, p.Text("list.separator", nil), p.Text("list.last", nil))
	case Series:
		sep := p.Text("list.series", nil)
		return p.join(x, sep, sep)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func (p Printer) join(items []any, sep, last string) string {
	parts := make([]string, 0, len(items))
	for _, it := range items {
		if s := p.Arg(it); s != "" {
			parts = append(parts, s)
		}
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], sep) + last + parts[len(parts)-1]
}

// date writes a FHIR date in the printer's language: "30 Nov 2026",
// "Nov 2026" or "2026"; 「2026年11月30日」.
func (p Printer) date(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 10 {
		s = s[:10]
	}
	parts := strings.Split(s, "-")
	y, err := strconv.Atoi(parts[0])
	if err != nil || len(parts[0]) != 4 {
		return s
	}
	args := Args{"year": y}
	key := "date.year"
	if len(parts) > 1 {
		mo, err := strconv.Atoi(parts[1])
		if err != nil || mo < 1 || mo > 12 {
			return s
		}
		args["month"] = mo
		args["month_name"] = p.Text(fmt.Sprintf("date.month.%d", mo), nil)
		key = "date.month"
		if len(parts) > 2 {
			d, err := strconv.Atoi(parts[2])
			if err != nil || d < 1 || d > 31 {
				return s
			}
			args["day"] = d
			key = "date.day"
		}
	}
	return p.Text(key, args)
}

// FormatFixed writes x with exactly d decimals, never as "-0.0".
func FormatFixed(x float64, d int) string {
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-")
	}
	return s
}

// FormatNumber writes x with at most d decimals, without trailing zeros
// and never as "-0".
func FormatNumber(x float64, d int) string {
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
