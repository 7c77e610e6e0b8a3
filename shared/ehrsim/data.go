package ehrsim

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

//go:embed patients/*.json
var shippedFS embed.FS

// Tag that makes a Bundle's dates relative: every date in it is shifted by
// the whole days between Bundle.timestamp and the load time.
const (
	relativeDatesSystem = "https://smartcalc.app/fhir/ehrsim"
	relativeDatesCode   = "relative-dates"
	// descriptionURL is the Patient extension that holds a sample's
	// description for the EHR page.
	descriptionURL = "https://smartcalc.app/fhir/StructureDefinition/ehrsim-sample-description"
)

// resource is one stored FHIR resource.
type resource struct {
	typ, id string
	patient string         // the patient compartment it belongs to, or ""
	doc     map[string]any // decoded with json.Number
	raw     json.RawMessage
	source  string
}

// dataset holds every loaded resource. It is read-only once loaded.
type dataset struct {
	byKey    map[string]*resource   // "Type/id"
	byType   map[string][]*resource // load order
	patients []*resource
}

func (d *dataset) get(typ, id string) *resource { return d.byKey[typ+"/"+id] }

var (
	idRE      = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	typeRE    = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	dateRE    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$`)
	bundleOKs = map[string]bool{"collection": true, "transaction": true, "batch": true, "searchset": true}
)

func isResourceType(s string) bool { return typeRE.MatchString(s) }

// loadData loads the shipped bundles, then every *.json Bundle in dir (when
// dir is not empty), in name order. A resource loaded again with the same
// type and id replaces the earlier one, as a transaction's PUT would.
func loadData(dir string, now time.Time, fhirBase string) (*dataset, error) {
	l := &loader{now: now, fhirBase: fhirBase, byKey: map[string]*resource{}}
	names, err := fs.Glob(shippedFS, "patients/*.json")
	if err != nil {
		return nil, fmt.Errorf("ehrsim: shipped patients: %w", err)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := shippedFS.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("ehrsim: %s: %w", n, err)
		}
		if err := l.loadBundle(n, "shipped", b); err != nil {
			return nil, err
		}
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("ehrsim: sandbox data folder: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(strings.ToLower(e.Name()), ".json") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("ehrsim: %s: %w", path, err)
			}
			if err := l.loadBundle(path, e.Name(), b); err != nil {
				return nil, err
			}
		}
	}
	return l.finish()
}

type loader struct {
	now      time.Time
	fhirBase string
	order    []*resource
	byKey    map[string]*resource
}

func (l *loader) loadBundle(path, source string, b []byte) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("ehrsim: %s: %s", path, fmt.Sprintf(format, a...))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var bundle map[string]any
	if err := dec.Decode(&bundle); err != nil {
		return fail("not valid JSON: %v", err)
	}
	if rt, _ := bundle["resourceType"].(string); rt != "Bundle" {
		return fail("not a FHIR Bundle (resourceType %q)", rt)
	}
	if bt, _ := bundle["type"].(string); !bundleOKs[bt] {
		return fail("Bundle.type %q is not supported (want collection, transaction, batch or searchset)", bt)
	}
	if isRelativeDates(bundle) {
		ts, _ := bundle["timestamp"].(string)
		anchor, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return fail("the relative-dates tag needs Bundle.timestamp as an instant: %q", ts)
		}
		// Whole calendar days (UTC), so that "yesterday" in the file is
		// yesterday whatever the time of day.
		day := func(t time.Time) time.Time {
			y, m, d := t.UTC().Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		}
		days := int(math.Round(day(l.now).Sub(day(anchor)).Hours() / 24))
		shiftDates(bundle, days)
	}
	entries, ok := bundle["entry"].([]any)
	if !ok && bundle["entry"] != nil {
		return fail("Bundle.entry is not an array")
	}
	fullURLs := map[string]string{} // fullUrl -> Type/id
	var loaded []*resource
	for i, e := range entries {
		entry, _ := e.(map[string]any)
		res, _ := entry["resource"].(map[string]any)
		if res == nil {
			return fail("entry %d has no resource", i)
		}
		typ, _ := res["resourceType"].(string)
		if !isResourceType(typ) {
			return fail("entry %d: resourceType %q is not a resource type", i, typ)
		}
		if typ == "Bundle" {
			return fail("entry %d: nested Bundles are not supported", i)
		}
		fullURL, _ := entry["fullUrl"].(string)
		req, _ := entry["request"].(map[string]any)
		method, _ := req["method"].(string)
		reqURL, _ := req["url"].(string)
		if method == "DELETE" || method == "PATCH" {
			return fail("entry %d: request method %s is not supported", i, method)
		}
		id, _ := res["id"].(string)
		if id == "" && method == "PUT" {
			if t, rid, ok := strings.Cut(reqURL, "/"); ok && t == typ && !strings.Contains(rid, "?") {
				id = rid
			}
		}
		if id == "" {
			if u, ok := strings.CutPrefix(fullURL, "urn:uuid:"); ok {
				id = u
			}
		}
		if id == "" {
			h := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", source, i)))
			id = hex.EncodeToString(h[:12])
		}
		if !idRE.MatchString(id) {
			return fail("entry %d: %s id %q is not a valid FHIR id", i, typ, id)
		}
		res["id"] = id
		if fullURL != "" {
			fullURLs[fullURL] = typ + "/" + id
		}
		loaded = append(loaded, &resource{typ: typ, id: id, doc: res, source: source})
	}
	for _, r := range loaded {
		rewriteRefs(r.doc, func(ref string) string {
			if to, ok := fullURLs[ref]; ok {
				return to
			}
			if rest, ok := strings.CutPrefix(ref, l.fhirBase+"/"); ok {
				return rest
			}
			return ref
		})
		key := r.typ + "/" + r.id
		if old, ok := l.byKey[key]; ok {
			*old = *r
			continue
		}
		l.byKey[key] = r
		l.order = append(l.order, r)
	}
	return nil
}

// finish resolves conditional references (Type?identifier=system|value, as
// Synthea writes to Organization and Practitioner), computes compartments
// and encodes every resource.
func (l *loader) finish() (*dataset, error) {
	ident := map[string]string{} // "Type?identifier=system|value" -> Type/id
	for _, r := range l.order {
		ids, _ := r.doc["identifier"].([]any)
		for _, x := range ids {
			m, _ := x.(map[string]any)
			sys, _ := m["system"].(string)
			val, _ := m["value"].(string)
			if val != "" {
				ident[r.typ+"?identifier="+sys+"|"+val] = r.typ + "/" + r.id
			}
		}
	}
	d := &dataset{byKey: l.byKey, byType: map[string][]*resource{}}
	for _, r := range l.order {
		rewriteRefs(r.doc, func(ref string) string {
			if to, ok := ident[ref]; ok {
				return to
			}
			return ref
		})
		r.patient = compartmentOf(r)
		raw, err := json.Marshal(r.doc)
		if err != nil {
			return nil, fmt.Errorf("ehrsim: %s: %s/%s: %w", r.source, r.typ, r.id, err)
		}
		r.raw = raw
		d.byType[r.typ] = append(d.byType[r.typ], r)
		if r.typ == "Patient" {
			d.patients = append(d.patients, r)
		}
	}
	if len(d.patients) == 0 {
		return nil, errors.New("ehrsim: no patients loaded")
	}
	return d, nil
}

func isRelativeDates(bundle map[string]any) bool {
	meta, _ := bundle["meta"].(map[string]any)
	tags, _ := meta["tag"].([]any)
	for _, t := range tags {
		m, _ := t.(map[string]any)
		if m["system"] == relativeDatesSystem && m["code"] == relativeDatesCode {
			return true
		}
	}
	return false
}

// dateSkipKeys hold strings that are never dates to shift.
var dateSkipKeys = map[string]bool{"id": true, "reference": true, "url": true, "system": true, "code": true,
	"display": true, "text": true, "div": true, "value": true, "version": true, "fullUrl": true, "timestamp": true}

// shiftDates moves every FHIR date, dateTime and instant with at least day
// precision by days, keeping its time of day and offset.
func shiftDates(v any, days int) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok {
				if !dateSkipKeys[k] && dateRE.MatchString(s) {
					x[k] = shiftDate(s, days)
				}
				continue
			}
			shiftDates(val, days)
		}
	case []any:
		for _, val := range x {
			shiftDates(val, days)
		}
	}
}

func shiftDate(s string, days int) string {
	d, err := time.Parse("2006-01-02", s[:10])
	if err != nil {
		return s
	}
	return d.AddDate(0, 0, days).Format("2006-01-02") + s[10:]
}

// rewriteRefs replaces every Reference.reference string through f.
func rewriteRefs(v any, f func(string) string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && k == "reference" {
				x[k] = f(s)
				continue
			}
			rewriteRefs(val, f)
		}
	case []any:
		for _, val := range x {
			rewriteRefs(val, f)
		}
	}
}

// compartmentOf returns the patient a resource belongs to: itself for a
// Patient, else the Patient its subject, patient or beneficiary refers to.
func compartmentOf(r *resource) string {
	if r.typ == "Patient" {
		return r.id
	}
	for _, k := range []string{"subject", "patient", "beneficiary"} {
		m, _ := r.doc[k].(map[string]any)
		ref, _ := m["reference"].(string)
		if id, ok := strings.CutPrefix(ref, "Patient/"); ok {
			return id
		}
	}
	return ""
}

func summarize(p *resource) PatientSummary {
	s := PatientSummary{ID: p.id, Source: p.source}
	s.BirthDate, _ = p.doc["birthDate"].(string)
	s.Gender, _ = p.doc["gender"].(string)
	s.Name = patientName(p.doc)
	ids, _ := p.doc["identifier"].([]any)
	for _, x := range ids {
		m, _ := x.(map[string]any)
		for _, c := range tokensOf(m["type"]) {
			if c.code == "MR" && s.MRN == "" {
				s.MRN, _ = m["value"].(string)
			}
		}
	}
	exts, _ := p.doc["extension"].([]any)
	for _, x := range exts {
		m, _ := x.(map[string]any)
		if m["url"] == descriptionURL {
			s.Description, _ = m["valueString"].(string)
		}
	}
	return s
}

// patientName prefers the official name: its text, else given + family.
func patientName(doc map[string]any) string {
	names, _ := doc["name"].([]any)
	best := ""
	for _, x := range names {
		m, _ := x.(map[string]any)
		n, _ := m["text"].(string)
		if n == "" {
			var parts []string
			for _, g := range asSlice(m["given"]) {
				if gs, ok := g.(string); ok {
					parts = append(parts, gs)
				}
			}
			if f, ok := m["family"].(string); ok {
				parts = append(parts, f)
			}
			n = strings.Join(parts, " ")
		}
		if m["use"] == "official" && n != "" {
			return n
		}
		if best == "" {
			best = n
		}
	}
	if best == "" {
		return "(no name)"
	}
	return best
}

func asSlice(v any) []any {
	if s, ok := v.([]any); ok {
		return s
	}
	if v == nil {
		return nil
	}
	return []any{v}
}
