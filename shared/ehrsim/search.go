package ehrsim

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

type paramKind int

const (
	tokenParam paramKind = iota
	dateParam
	refParam     // any reference
	patientParam // a reference to a Patient
	stringParam
	idParam
)

// paramDef is one search parameter: its kind and the element paths it
// searches (dotted, arrays flattened).
type paramDef struct {
	kind  paramKind
	paths []string
}

var (
	pPatient = paramDef{patientParam, []string{"subject"}}
	pSubject = paramDef{refParam, []string{"subject"}}
	pEnc     = paramDef{refParam, []string{"encounter"}}
)

// searchParams are the search parameters per resource type. Anything else is
// answered 400, so that a typo in the app does not silently widen a search.
var searchParams = map[string]map[string]paramDef{
	"Patient": {
		"identifier": {tokenParam, []string{"identifier"}},
		"name":       {stringParam, []string{"name.text", "name.family", "name.given"}},
		"family":     {stringParam, []string{"name.family"}},
		"given":      {stringParam, []string{"name.given"}},
		"birthdate":  {dateParam, []string{"birthDate"}},
		"gender":     {tokenParam, []string{"gender"}},
	},
	"Observation": {
		"patient": pPatient, "subject": pSubject, "encounter": pEnc,
		"code":     {tokenParam, []string{"code"}},
		"category": {tokenParam, []string{"category"}},
		"status":   {tokenParam, []string{"status"}},
		"date":     {dateParam, []string{"effectiveDateTime", "effectivePeriod", "effectiveInstant"}},
	},
	"Condition": {
		"patient": pPatient, "subject": pSubject, "encounter": pEnc,
		"code":                {tokenParam, []string{"code"}},
		"category":            {tokenParam, []string{"category"}},
		"clinical-status":     {tokenParam, []string{"clinicalStatus"}},
		"verification-status": {tokenParam, []string{"verificationStatus"}},
		"onset-date":          {dateParam, []string{"onsetDateTime", "onsetPeriod"}},
		"recorded-date":       {dateParam, []string{"recordedDate"}},
	},
	"MedicationRequest": {
		"patient": pPatient, "subject": pSubject, "encounter": pEnc,
		"status":     {tokenParam, []string{"status"}},
		"intent":     {tokenParam, []string{"intent"}},
		"category":   {tokenParam, []string{"category"}},
		"code":       {tokenParam, []string{"medicationCodeableConcept"}},
		"medication": {refParam, []string{"medicationReference"}},
		"authoredon": {dateParam, []string{"authoredOn"}},
	},
	"MedicationStatement": {
		"patient": pPatient, "subject": pSubject,
		"status":     {tokenParam, []string{"status"}},
		"category":   {tokenParam, []string{"category"}},
		"code":       {tokenParam, []string{"medicationCodeableConcept"}},
		"medication": {refParam, []string{"medicationReference"}},
		"effective":  {dateParam, []string{"effectiveDateTime", "effectivePeriod"}},
	},
	"Procedure": {
		"patient": pPatient, "subject": pSubject, "encounter": pEnc,
		"code":   {tokenParam, []string{"code"}},
		"status": {tokenParam, []string{"status"}},
		"date":   {dateParam, []string{"performedDateTime", "performedPeriod"}},
	},
	"Encounter": {
		"patient": pPatient, "subject": pSubject,
		"class":  {tokenParam, []string{"class"}},
		"status": {tokenParam, []string{"status"}},
		"type":   {tokenParam, []string{"type"}},
		"date":   {dateParam, []string{"period"}},
	},
	"Medication":   {"code": {tokenParam, []string{"code"}}},
	"Practitioner": {"identifier": {tokenParam, []string{"identifier"}}, "name": {stringParam, []string{"name.text", "name.family", "name.given"}}},
}

// includes are the supported _include values.
var includes = map[string]map[string]string{
	"MedicationRequest":   {"MedicationRequest:medication": "medicationReference"},
	"MedicationStatement": {"MedicationStatement:medication": "medicationReference"},
}

const (
	defaultCount = 50
	maxCount     = 200
)

// criterion is one search parameter occurrence: its values are ORed.
type criterion struct {
	name   string
	def    paramDef
	values []string
}

// query is a parsed search.
type query struct {
	criteria []criterion
	sort     []sortKey
	count    int
	includes []string // element paths to include
	params   url.Values
}

type sortKey struct {
	def  paramDef
	desc bool
}

// badRequest is a search the server refuses with 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// parseQuery validates the search parameters for typ.
func parseQuery(typ string, params url.Values) (*query, error) {
	defs, ok := searchParams[typ]
	if !ok {
		return nil, badf("search is not supported for %s", typ)
	}
	q := &query{count: defaultCount, params: params}
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, full := range names {
		vals := params[full]
		name, mod, hasMod := strings.Cut(full, ":")
		switch name {
		case "_format":
			for _, v := range vals {
				if v != "json" && v != "application/json" && v != "application/fhir+json" {
					return nil, badf("_format %q is not supported: this server answers JSON only", v)
				}
			}
			continue
		case "_count":
			if len(vals) != 1 {
				return nil, badf("_count must be given once")
			}
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 0 {
				return nil, badf("_count must be a non-negative integer")
			}
			q.count = min(n, maxCount)
			continue
		case "_sort":
			for _, v := range vals {
				for _, k := range strings.Split(v, ",") {
					desc := strings.HasPrefix(k, "-")
					k = strings.TrimPrefix(k, "-")
					def, ok := defs[k]
					if !ok || def.kind != dateParam {
						return nil, badf("_sort by %q is not supported for %s", k, typ)
					}
					q.sort = append(q.sort, sortKey{def, desc})
				}
			}
			continue
		case "_include":
			for _, v := range vals {
				path, ok := includes[typ][v]
				if !ok {
					return nil, badf("_include %q is not supported", v)
				}
				q.includes = append(q.includes, path)
			}
			continue
		case "_id":
			if hasMod {
				return nil, badf("modifier :%s is not supported on _id", mod)
			}
			for _, v := range vals {
				q.criteria = append(q.criteria, criterion{name, paramDef{kind: idParam}, strings.Split(v, ",")})
			}
			continue
		}
		def, ok := defs[name]
		if !ok {
			return nil, badf("search parameter %q is not supported for %s", name, typ)
		}
		if hasMod {
			return nil, badf("modifier :%s is not supported on %s", mod, name)
		}
		for _, v := range vals {
			c := criterion{name, def, strings.Split(v, ",")}
			for _, x := range c.values {
				if x == "" {
					return nil, badf("%s has an empty value", name)
				}
				if def.kind == dateParam {
					if _, _, err := parseDateParam(x); err != nil {
						return nil, badf("%s: %v", name, err)
					}
				}
			}
			q.criteria = append(q.criteria, c)
		}
	}
	return q, nil
}

// matches reports whether r satisfies every criterion.
func (q *query) matches(r *resource, fhirBase string) bool {
	for _, c := range q.criteria {
		if !c.matches(r, fhirBase) {
			return false
		}
	}
	return true
}

func (c criterion) matches(r *resource, fhirBase string) bool {
	for _, v := range c.values {
		if matchValue(c.def, v, r, fhirBase) {
			return true
		}
	}
	return false
}

func matchValue(def paramDef, v string, r *resource, fhirBase string) bool {
	if def.kind == idParam {
		return r.id == v
	}
	var elems []any
	for _, p := range def.paths {
		elems = append(elems, pathValues(r.doc, p)...)
	}
	switch def.kind {
	case tokenParam:
		sys, code, hasSys := strings.Cut(v, "|")
		if !hasSys {
			code, sys = sys, ""
		}
		for _, e := range elems {
			for _, t := range tokensOf(e) {
				switch {
				case !hasSys && t.code == code:
					return true
				case hasSys && code == "" && t.system == sys:
					return true
				case hasSys && code != "" && t.system == sys && t.code == code:
					return true
				}
			}
		}
	case dateParam:
		prefix, p, _ := parseDateParam(v)
		for _, e := range elems {
			if rr, ok := rangeOf(e); ok && compareRange(prefix, rr, p) {
				return true
			}
		}
	case refParam, patientParam:
		want := strings.TrimPrefix(v, fhirBase+"/")
		for _, e := range elems {
			m, _ := e.(map[string]any)
			ref, _ := m["reference"].(string)
			ref = strings.TrimPrefix(ref, fhirBase+"/")
			if def.kind == patientParam && !strings.HasPrefix(ref, "Patient/") {
				continue
			}
			if ref == want || (!strings.Contains(want, "/") && strings.HasSuffix(ref, "/"+want)) {
				return true
			}
		}
	case stringParam:
		want := strings.ToLower(v)
		for _, e := range elems {
			if s, ok := e.(string); ok && strings.HasPrefix(strings.ToLower(s), want) {
				return true
			}
		}
	}
	return false
}

// patientRefs returns the patient ids a search's patient/subject criteria
// name (for the compartment check).
func (q *query) patientRefs(fhirBase string) []string {
	var out []string
	for _, c := range q.criteria {
		if c.def.kind != patientParam && !(c.def.kind == refParam && c.name == "subject") {
			continue
		}
		for _, v := range c.values {
			v = strings.TrimPrefix(v, fhirBase+"/")
			if c.def.kind == refParam && strings.Contains(v, "/") && !strings.HasPrefix(v, "Patient/") {
				continue
			}
			out = append(out, strings.TrimPrefix(v, "Patient/"))
		}
	}
	return out
}

// sortResults orders rs by the query's sort keys; resources without a value
// go last. The sort is stable, so ties keep load order.
func (q *query) sortResults(rs []*resource) {
	if len(q.sort) == 0 {
		return
	}
	sort.SliceStable(rs, func(i, j int) bool {
		for _, k := range q.sort {
			a, aok := sortValue(rs[i], k.def)
			b, bok := sortValue(rs[j], k.def)
			switch {
			case aok && !bok:
				return true
			case !aok:
				if bok {
					return false
				}
				continue
			case a.Equal(b):
				continue
			case k.desc:
				return a.After(b)
			default:
				return a.Before(b)
			}
		}
		return false
	})
}

func sortValue(r *resource, def paramDef) (time.Time, bool) {
	for _, p := range def.paths {
		for _, e := range pathValues(r.doc, p) {
			if rr, ok := rangeOf(e); ok {
				if rr.start.Equal(minTime) {
					return rr.end, true
				}
				return rr.start, true
			}
		}
	}
	return time.Time{}, false
}

// pathValues walks a dotted path, flattening arrays.
func pathValues(doc map[string]any, path string) []any {
	cur := []any{doc}
	for _, step := range strings.Split(path, ".") {
		var next []any
		for _, c := range cur {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			next = append(next, asSlice(m[step])...)
		}
		cur = next
	}
	return cur
}

type token struct{ system, code string }

// tokensOf reads the codes of a code, Coding, CodeableConcept or Identifier.
func tokensOf(e any) []token {
	switch x := e.(type) {
	case string:
		return []token{{"", x}}
	case bool:
		return []token{{"", strconv.FormatBool(x)}}
	case map[string]any:
		if codings, ok := x["coding"].([]any); ok {
			var out []token
			for _, c := range codings {
				out = append(out, tokensOf(c)...)
			}
			return out
		}
		sys, _ := x["system"].(string)
		if code, ok := x["code"].(string); ok {
			return []token{{sys, code}}
		}
		if val, ok := x["value"].(string); ok {
			return []token{{sys, val}}
		}
	}
	return nil
}

// dateRange is a half-open interval [start, end).
type dateRange struct{ start, end time.Time }

var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// parseFHIRDate parses a FHIR date, dateTime or instant into the range its
// precision covers. Values without an offset are taken as UTC.
func parseFHIRDate(s string) (dateRange, bool) {
	layouts := []struct {
		layout string
		add    func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05Z07:00", func(t time.Time) time.Time { return t.Add(time.Second) }},
		{"2006-01-02T15:04:05.999999999Z07:00", func(t time.Time) time.Time { return t.Add(time.Millisecond) }},
	}
	for _, l := range layouts {
		if len(s) < 4 {
			break
		}
		if t, err := time.Parse(l.layout, s); err == nil {
			return dateRange{t, l.add(t)}, true
		}
	}
	return dateRange{}, false
}

// rangeOf reads a date-like element: a date string or a Period.
func rangeOf(e any) (dateRange, bool) {
	switch x := e.(type) {
	case string:
		return parseFHIRDate(x)
	case map[string]any:
		st, _ := x["start"].(string)
		en, _ := x["end"].(string)
		if st == "" && en == "" {
			return dateRange{}, false
		}
		r := dateRange{minTime, maxTime}
		if st != "" {
			s, ok := parseFHIRDate(st)
			if !ok {
				return dateRange{}, false
			}
			r.start = s.start
		}
		if en != "" {
			e, ok := parseFHIRDate(en)
			if !ok {
				return dateRange{}, false
			}
			r.end = e.end
		}
		return r, true
	}
	return dateRange{}, false
}

var datePrefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"}

func parseDateParam(v string) (string, dateRange, error) {
	prefix := "eq"
	for _, p := range datePrefixes {
		if strings.HasPrefix(v, p) {
			prefix, v = p, v[2:]
			break
		}
	}
	if strings.HasPrefix(v, "ap") {
		return "", dateRange{}, fmt.Errorf("the ap prefix is not supported")
	}
	r, ok := parseFHIRDate(v)
	if !ok {
		return "", dateRange{}, fmt.Errorf("%q is not a FHIR date", v)
	}
	return prefix, r, nil
}

// compareRange applies a FHIR date search prefix to a resource range r and a
// parameter range p (FHIR R4 3.1.1.5.6 / 3.1.1.4.2).
func compareRange(prefix string, r, p dateRange) bool {
	contained := !r.start.Before(p.start) && !r.end.After(p.end)
	switch prefix {
	case "eq":
		return contained
	case "ne":
		return !contained
	case "gt":
		return r.end.After(p.end)
	case "lt":
		return r.start.Before(p.start)
	case "ge":
		return r.end.After(p.end) || contained
	case "le":
		return r.start.Before(p.start) || contained
	case "sa":
		return !r.start.Before(p.end)
	case "eb":
		return !r.end.After(p.start)
	}
	return false
}
