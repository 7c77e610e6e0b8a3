package calc

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/strictjson"
)

// Codes are the code sets the FHIR mapping reads: labs by LOINC (with
// alternates), condition, medication and procedure sets, and coded
// observations. System keys (loinc, snomed, icd10cm, …) resolve to URIs in
// Systems.
type Codes struct {
	Systems      map[string]string   `json:"systems"`
	Labs         map[string]LabCodes `json:"labs"`
	Observations map[string]ObsCodes `json:"observations"`
	Conditions   map[string]CodeSet  `json:"conditions"`
	Medications  map[string]CodeSet  `json:"medications"`
	Procedures   map[string]CodeSet  `json:"procedures"`
}

// Coding is one code in a system (a key of Codes.Systems), with its
// display and where that display was checked.
type Coding struct {
	System  string     `json:"system"`
	Code    string     `json:"code"`
	Display string     `json:"display"`
	Checked *CodeCheck `json:"checked,omitempty"`
}

// CodeCheck is one code's provenance: Source (a key of Config.Sources) is
// where its display was looked up; Verified is true only when the display
// was read there, in the terminology's own browser or release or an HL7,
// IHE or national implementation guide that uses the code, and Quote then
// gives what was read.
type CodeCheck struct {
	Source   string `json:"source"`
	Verified *bool  `json:"verified"`
	Quote    string `json:"quote,omitempty"`
}

// CodeRef is one code of a CodeMatch: the code (a prefix, pattern or range
// for those matches), the system's display name for it, and its check.
type CodeRef struct {
	Code    string     `json:"code"`
	Display string     `json:"display,omitempty"`
	Checked *CodeCheck `json:"checked,omitempty"`
}

// LabCodes are the codes of one laboratory input, the main code first. Ignore
// lists codes for the same analyte that must not be read as this input (for
// eGFR: results not computed with CKD-EPI).
type LabCodes struct {
	Input      string     `json:"input"`
	Codes      []Coding   `json:"codes"`
	Ignore     []Coding   `json:"ignore,omitempty"`
	Provenance Provenance `json:"provenance"`
}

// ObsCodes are coded observations: the observation codes, the answer
// values that mean "present" (for example current smoker) and the answer
// values that leave it open (a smoker whose current status is unknown), on
// which the mapping asks the clinician. Any other answer means absent.
type ObsCodes struct {
	Input         string     `json:"input"`
	Codes         []Coding   `json:"codes"`
	CurrentValues []Coding   `json:"current_values,omitempty"`
	AskValues     []Coding   `json:"ask_values,omitempty"`
	MajorAtLeast  *float64   `json:"major_at_least,omitempty"`
	Provenance    Provenance `json:"provenance"`
}

// CodeSet is a set of condition, medication or procedure codes. A condition
// set with Ask never decides its input: a match makes the mapping ask the
// clinician (codes such as D68.9 that may or may not mean the criterion).
type CodeSet struct {
	Input        string      `json:"input,omitempty"`
	Label        string      `json:"label"`
	Include      []CodeMatch `json:"include"`
	Exclude      []CodeMatch `json:"exclude,omitempty"`
	Requires     string      `json:"requires,omitempty"`
	Ask          bool        `json:"ask,omitempty"`
	Route        string      `json:"route,omitempty"`
	WindowMonths int         `json:"window_months,omitempty"`
	WindowDays   int         `json:"window_days,omitempty"`
	ExcludeNote  string      `json:"exclude_note,omitempty"`
	Provenance   Provenance  `json:"provenance"`
}

// CodeMatch matches codes of one system.
//
//   - exact: the code itself.
//   - prefix: codes starting with one of Codes (ICD-10 categories).
//   - pattern: same length, '?' matches any one character ("K57.?1").
//   - range: "C00-C96" matches codes whose first len("C00") characters lie
//     in the range.
//   - descendants: the code and, with a terminology server, its SNOMED
//     descendants (<<). Match checks the code only.
//   - ingredient: an RxNorm ingredient; the mapping resolves SCD/SBD to IN
//     before matching. Match checks the code only.
//
// In the document each code is a string or a CodeRef object; Codes holds
// the codes and Refs the objects (a bare string gives a CodeRef without a
// display).
type CodeMatch struct {
	System string
	Match  string
	Codes  []string
	Refs   []CodeRef
}

// codeMatchJSON is a CodeMatch as the document writes it.
type codeMatchJSON struct {
	System string    `json:"system"`
	Match  string    `json:"match"`
	Codes  []CodeRef `json:"codes"`
}

// codeRefObject is a CodeRef as an object.
type codeRefObject CodeRef

// UnmarshalStrictJSON decodes a CodeRef from the document: a string (the
// code alone) or an object.
func (r *CodeRef) UnmarshalStrictJSON(d *strictjson.Decoder) error {
	if d.PeekString() {
		return d.Decode(&r.Code)
	}
	return d.Decode((*codeRefObject)(r))
}

// UnmarshalStrictJSON decodes a CodeMatch whose codes are strings or
// CodeRefs, in the configuration's one pass.
func (m *CodeMatch) UnmarshalStrictJSON(d *strictjson.Decoder) error {
	var j codeMatchJSON
	if err := d.Decode(&j); err != nil {
		return err
	}
	*m = CodeMatch{System: j.System, Match: j.Match}
	if len(j.Codes) > 0 {
		m.Refs = j.Codes
		m.Codes = make([]string, len(j.Codes))
		for i, r := range j.Codes {
			m.Codes[i] = r.Code
		}
	}
	return nil
}

// UnmarshalJSON decodes a CodeMatch whose codes are strings or CodeRefs.
func (m *CodeMatch) UnmarshalJSON(b []byte) error { return strictjson.Unmarshal(b, m) }

// MarshalJSON encodes a CodeMatch with its codes as CodeRefs.
func (m CodeMatch) MarshalJSON() ([]byte, error) {
	refs := m.Refs
	if len(refs) != len(m.Codes) {
		refs = make([]CodeRef, len(m.Codes))
		for i, c := range m.Codes {
			refs[i] = CodeRef{Code: c}
		}
	}
	return json.Marshal(struct {
		System string    `json:"system"`
		Match  string    `json:"match"`
		Codes  []CodeRef `json:"codes"`
	}{m.System, m.Match, refs})
}

var matchKinds = []string{"exact", "prefix", "pattern", "range", "descendants", "ingredient"}

// Match reports whether code (in the system with key system) is in the set:
// included and not excluded. Descendants and ingredients need a terminology
// service; Match compares the literal code for those.
func (s CodeSet) Match(system, code string) bool {
	return s.Includes(system, code) && !s.Excludes(system, code)
}

// Includes reports whether code (in the system with key system) matches one
// of the set's include rules, whatever its exclude rules say.
func (s CodeSet) Includes(system, code string) bool { return matchAny(s.Include, system, code) }

// Excludes reports whether code (in the system with key system) matches one
// of the set's exclude rules. The mapping checks it across every coding of
// a concept: an excluded translation excludes the concept.
func (s CodeSet) Excludes(system, code string) bool { return matchAny(s.Exclude, system, code) }

// SystemKey returns the key of Codes.Systems whose URI is uri.
func (c Codes) SystemKey(uri string) (string, bool) {
	for k, v := range c.Systems {
		if v == uri {
			return k, true
		}
	}
	return "", false
}

func matchAny(ms []CodeMatch, system, code string) bool {
	for _, m := range ms {
		if m.System == system && m.matches(code) {
			return true
		}
	}
	return false
}

func (m CodeMatch) matches(code string) bool {
	code = strings.TrimSpace(code)
	if code == "" {
		return false
	}
	for _, c := range m.Codes {
		switch m.Match {
		case "exact", "descendants", "ingredient":
			if code == c {
				return true
			}
		case "prefix":
			if strings.HasPrefix(code, c) {
				return true
			}
		case "pattern":
			if len(code) == len(c) && patternMatch(c, code) {
				return true
			}
		case "range":
			lo, hi, ok := strings.Cut(c, "-")
			if ok && len(code) >= len(lo) {
				p := code[:len(lo)]
				if p >= lo && p <= hi {
					return true
				}
			}
		}
	}
	return false
}

func patternMatch(pattern, code string) bool {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '?' && pattern[i] != code[i] {
			return false
		}
	}
	return true
}

func (c *Config) validateCodes(v *validator) {
	cs := c.Codes
	if len(cs.Systems) == 0 {
		v.fail("codes.systems", "missing or empty")
	}
	for _, k := range sortedKeys(cs.Systems) {
		if !strings.HasPrefix(cs.Systems[k], "http") {
			v.fail("codes.systems."+k, "must be a URI, got %q", cs.Systems[k])
		}
	}
	input := func(p, name string, required bool) {
		if name == "" {
			if required {
				v.fail(p+".input", "missing")
			}
			return
		}
		if _, ok := c.Inputs[name]; !ok {
			v.fail(p+".input", "unknown input %q", name)
		}
	}
	codings := func(p string, list []Coding, required bool) {
		if required && len(list) == 0 {
			v.fail(p, "missing or empty")
		}
		for i, cd := range list {
			// Written out only for an error.
			cp := func() string { return fmt.Sprintf("%s[%d]", p, i) }
			if _, ok := cs.Systems[cd.System]; !ok {
				v.fail(cp()+".system", "unknown system %q", cd.System)
			}
			v.textAt(func() string { return cp() + ".code" }, cd.Code)
			v.textAt(func() string { return cp() + ".display" }, cd.Display)
			v.codeCheck(func() string { return cp() + ".checked" }, cd.Checked)
		}
	}
	if len(cs.Labs) == 0 {
		v.fail("codes.labs", "missing or empty")
	}
	for _, k := range sortedKeys(cs.Labs) {
		l := cs.Labs[k]
		p := "codes.labs." + k
		input(p, l.Input, true)
		if in, ok := c.Inputs[l.Input]; ok && in.Type != TypeNumber {
			v.fail(p+".input", "lab input %q is not a number", l.Input)
		}
		codings(p+".codes", l.Codes, true)
		codings(p+".ignore", l.Ignore, false)
		v.provenance(p+".provenance", l.Provenance)
	}
	for _, k := range sortedKeys(cs.Observations) {
		o := cs.Observations[k]
		p := "codes.observations." + k
		input(p, o.Input, true)
		codings(p+".codes", o.Codes, true)
		codings(p+".current_values", o.CurrentValues, false)
		codings(p+".ask_values", o.AskValues, false)
		for _, a := range o.AskValues {
			for _, c := range o.CurrentValues {
				if a.System == c.System && a.Code == c.Code {
					v.fail(p+".ask_values", "%s|%s is also a current value", a.System, a.Code)
				}
			}
		}
		v.provenance(p+".provenance", o.Provenance)
	}
	sets := func(group string, m map[string]CodeSet, inputRequired bool) {
		if len(m) == 0 {
			v.fail("codes."+group, "missing or empty")
		}
		for _, k := range sortedKeys(m) {
			s := m[k]
			p := "codes." + group + "." + k
			input(p, s.Input, inputRequired)
			v.text(p+".label", s.Label)
			if len(s.Include) == 0 {
				v.fail(p+".include", "missing or empty")
			}
			for name, list := range map[string][]CodeMatch{"include": s.Include, "exclude": s.Exclude} {
				for i, cm := range list {
					// Written out only for an error.
					cp := func() string { return fmt.Sprintf("%s.%s[%d]", p, name, i) }
					if _, ok := cs.Systems[cm.System]; !ok {
						v.fail(cp()+".system", "unknown system %q", cm.System)
					}
					if !contains(matchKinds, cm.Match) {
						v.fail(cp()+".match", "unknown match %q", cm.Match)
					}
					if len(cm.Codes) == 0 {
						v.fail(cp()+".codes", "missing or empty")
					}
					for j, r := range cm.Refs {
						v.codeCheck(func() string { return fmt.Sprintf("%s.codes[%d].checked", cp(), j) }, r.Checked)
					}
					for _, code := range cm.Codes {
						if strings.TrimSpace(code) == "" {
							v.fail(cp()+".codes", "empty code")
						}
						if cm.Match == "range" {
							lo, hi, ok := strings.Cut(code, "-")
							if !ok || len(lo) != len(hi) || lo > hi {
								v.fail(cp()+".codes", "bad range %q (want LOW-HIGH of equal length)", code)
							}
						}
					}
				}
			}
			if s.Ask && group != "conditions" {
				v.fail(p+".ask", "only condition sets can ask")
			}
			if s.Requires != "" {
				if _, ok := m[s.Requires]; !ok {
					v.fail(p+".requires", "unknown set %q", s.Requires)
				}
			}
			v.provenance(p+".provenance", s.Provenance)
		}
	}
	sets("conditions", cs.Conditions, true)
	sets("medications", cs.Medications, false)
	sets("procedures", cs.Procedures, true)
}

// codeCheck validates a code's provenance: a known source, verified given,
// and a quote of what was read when verified. The project's own reference
// document is where codes come from, not a terminology source: it cannot
// verify a display. The check's path is written out only for an error.
func (v *validator) codeCheck(path func() string, c *CodeCheck) {
	if c == nil {
		return
	}
	if _, ok := v.c.Sources[c.Source]; !ok {
		v.fail(path()+".source", "unknown source %q (not in sources)", c.Source)
	}
	if c.Verified == nil {
		v.fail(path()+".verified", "missing (true or false)")
		return
	}
	if *c.Verified {
		v.textAt(func() string { return path() + ".quote" }, c.Quote)
		if c.Source == "smartcalc-reference" {
			v.fail(path()+".source", "the project reference cannot verify a display: name the terminology source read")
		}
	}
}
