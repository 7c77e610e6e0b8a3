package main

// The language of the API's sentences: every sample patient's assessment
// and banner asked for in English and in Traditional Chinese, with and
// without reads refused, held to the language asked for.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

var (
	// englishPhrase is three English words or more in a row.
	englishPhrase = regexp.MustCompile(`\b[A-Za-z][A-Za-z'’-]*[A-Za-z](?:,? [A-Za-z][A-Za-z'’-]*[A-Za-z]){2,}\b`)
	// leftovers are what a person must never read: a snake_case
	// identifier, a catalogue key, an unfilled placeholder, a Go value, a
	// sandbox tag.
	leftovers = regexp.MustCompile(`\b[a-z]+_[a-z_]+\b|\b(?:warn|gap|ev|cond|value|result|read|access|source|absent|signin|api|cds|problem|why|short|unit|date|list|window|hint|input-error|derivation|summary|origin|criterion|band|calc|plan|rec|quantity|input)\.[a-z][a-z0-9_.-]*\b|\{\w+\}|map\[|\[\]|<nil>|%!|&\{|\(fault |fault fhir|simulated`)
)

// sentenceFields are the API's fields that hold a sentence or phrase
// SMART Calc writes, by key; under other keys strings are identifiers,
// codes, dates or the record's own words.
var sentenceFields = map[string]bool{
	"text": true, "message": true, "evidence": true, "statement": true, "derivation": true, "note": true,
	"entered_text": true, "presentation_text": true, "birth_date_problem": true, "unavailable": true, "title": true,
}

// sentences walks an API answer and returns its sentences by path: the
// fields above, a criterion's name, a value's display and a source's
// label. Citations (the guideline's own words), references, equations and
// the record's displays are left out.
func sentences(v any, path string, out map[string][]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			switch k {
			case "citations", "references", "equation", "ehr_said", "reference", "code", "quote", "where":
				continue
			}
			sentences(y, path+"."+k, out)
		}
	case []any:
		for _, y := range x {
			sentences(y, path+"[]", out)
		}
	case string:
		key := path[strings.LastIndex(path, ".")+1:]
		switch {
		case sentenceFields[key],
			key == "name" && strings.HasSuffix(path, "criteria[].name"),
			key == "display" && strings.HasSuffix(path, "values[].display"),
			key == "label" && !strings.HasSuffix(path, ".equation.label"):
			if x != "" {
				out[path] = append(out[path], x)
			}
		}
	}
}

// recordWords are the words the sample records hold (displays and texts of
// codes, names of drugs and procedures): the record's own, shown as
// written in either language.
func recordWords(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "shared", "ehrsim", "patients", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("sample records: %v", err)
	}
	seen := map[string]bool{}
	var walk func(any, string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				walk(y, k)
			}
		case []any:
			for _, y := range x {
				walk(y, key)
			}
		case string:
			if (key == "display" || key == "text" || key == "diagnostics") && len(x) > 2 {
				seen[x] = true
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(v, "")
	}
	out := make([]string, 0, len(seen))
	for w := range seen {
		out = append(out, w)
	}
	// Longest first, so that a display is removed before one it contains.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// get asks the API for path in lang.
func (e *env) get(t *testing.T, path, handle, lang string) (map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest("GET", e.URL+"/calculate/api/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+handle)
	req.Header.Set("Accept-Language", lang)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s (%s): %d %s", path, lang, resp.StatusCode, body)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v, resp.Header.Get("Content-Language")
}

// TestAPILanguages asks for every sample patient's assessment and banner
// in English and in Traditional Chinese, and for one patient with reads
// refused (scope-downgrade, fhir-403): no English sentence in zh-TW but the
// record's own words, Chinese punctuation in zh-TW; in either language no
// snake_case identifier, catalogue key, placeholder, Go value or sandbox
// tag, and no warning said twice.
func TestAPILanguages(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	words := recordWords(t)
	type launchCase struct{ patient, fault string }
	var cases []launchCase
	for _, p := range e.Sandbox.Patients() {
		cases = append(cases, launchCase{p.ID, ""})
	}
	if len(cases) < 23 {
		t.Fatalf("%d sample patients, want every shipped one", len(cases))
	}
	cases = append(cases, launchCase{"hbr-anticoag", "scope-downgrade"}, launchCase{"hbr-anticoag", "fhir-403"}, launchCase{"stale-labs", "fhir-5xx:Condition"})
	checked := map[string]int{}
	englishSeen := 0 // English sentences the check finds in the English answers: the check works
	for _, c := range cases {
		name := c.patient
		if c.fault != "" {
			name += " " + c.fault
		}
		t.Run(name, func(t *testing.T) {
			var h string
			if c.fault != "" {
				h = e.launch(t, c.patient, c.fault)
			} else {
				h = e.launch(t, c.patient)
			}
			for _, lang := range []string{"en", "zh-TW"} {
				texts := map[string][]string{}
				for _, api := range []string{"assessment", "context"} {
					v, cl := e.get(t, api, h, lang)
					if cl != lang {
						t.Errorf("%s %s: Content-Language %q", api, lang, cl)
					}
					sentences(v, api, texts)
					if api == "assessment" {
						checkWarnings(t, lang, v)
					}
				}
				n := 0
				for path, list := range texts {
					for _, s := range list {
						n++
						if m := leftovers.FindString(s); m != "" {
							t.Errorf("%s %s: %q shows %q", lang, path, s, m)
						}
						own := s
						for _, w := range words {
							own = strings.ReplaceAll(own, w, "…")
						}
						if lang != "zh-TW" {
							if englishPhrase.MatchString(own) {
								englishSeen++
							}
							continue
						}
						if m := englishPhrase.FindString(own); m != "" {
							t.Errorf("zh-TW %s: %q is English (%q)", path, s, m)
						}
						if p := message.ASCIIPunctuation(own); p != "" {
							t.Errorf("zh-TW %s: %q: %s", path, s, p)
						}
					}
				}
				checked[lang] += n
			}
		})
	}
	for _, lang := range []string{"en", "zh-TW"} {
		if checked[lang] < 2000 {
			t.Errorf("%s: only %d sentences checked: the walk is broken", lang, checked[lang])
		}
	}
	if englishSeen < checked["en"]/2 {
		t.Errorf("the English check finds English in only %d of %d English sentences: it is broken", englishSeen, checked["en"])
	}
	t.Logf("sentences checked: en %d (%d found English by the check), zh-TW %d, over %d launches", checked["en"], englishSeen, checked["zh-TW"], len(cases))
}

// checkWarnings holds an assessment's warnings to one per problem and
// input: no text twice, no kind and input twice (a stale value is warned
// once, whichever calculators use it), and the results' own lists empty.
func checkWarnings(t *testing.T, lang string, a map[string]any) {
	t.Helper()
	ws, _ := a["warnings"].([]any)
	texts := map[string]bool{}
	perInput := map[string]int{}
	for _, w := range ws {
		m, _ := w.(map[string]any)
		text, _ := m["text"].(string)
		if texts[text] {
			t.Errorf("%s: warning said twice: %q", lang, text)
		}
		texts[text] = true
		if in, _ := m["input"].(string); in != "" {
			perInput[fmt.Sprint(m["kind"], "/", in)]++
		}
	}
	for k, n := range perInput {
		if n > 1 {
			t.Errorf("%s: %d warnings of %s", lang, n, k)
		}
	}
	results, _ := a["results"].(map[string]any)
	for id, r := range results {
		if rw, _ := r.(map[string]any)["warnings"].([]any); len(rw) > 0 {
			t.Errorf("%s: %s keeps its own warnings %v: the assessment's list holds them", lang, id, rw)
		}
	}
	kinds := []string{}
	for _, w := range ws {
		kinds = append(kinds, fmt.Sprint(w.(map[string]any)["kind"]))
	}
	// Grouped: the kinds come in runs, never interleaved.
	for i := 1; i < len(kinds); i++ {
		if kinds[i] != kinds[i-1] && slices.Contains(kinds[:i-1], kinds[i]) {
			t.Errorf("%s: warnings not grouped by kind: %v", lang, kinds)
			break
		}
	}
}

// recordCodings are the codings the sample records hold that carry a
// display: code and display.
func recordCodings(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "shared", "ehrsim", "patients", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("sample records: %v", err)
	}
	out := map[string]string{}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			code, _ := x["code"].(string)
			disp, _ := x["display"].(string)
			if _, sys := x["system"]; sys && code != "" && disp != "" {
				out[code] = disp
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(v)
	}
	return out
}

// TestNamesBeforeCodes: a clinician reads a record by its name and date;
// its code is for a secondary place (the source's code field, a title). No
// string of any sample patient's assessment, in either language, leads
// with a record's code ("415070008 Percutaneous coronary intervention"),
// and no source's display holds its code.
func TestNamesBeforeCodes(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	codings := recordCodings(t)
	if len(codings) < 50 {
		t.Fatalf("only %d codings with a display in the sample records", len(codings))
	}
	for _, p := range e.Sandbox.Patients() {
		h := e.launch(t, p.ID)
		for _, lang := range []string{"en", "zh-TW"} {
			v, _ := e.get(t, "assessment", h, lang)
			var walk func(any, string)
			walk = func(v any, path string) {
				switch x := v.(type) {
				case map[string]any:
					if code, _ := x["code"].(string); code != "" {
						_, c, _ := strings.Cut(code, "|")
						if d, _ := x["display"].(string); c != "" && strings.HasPrefix(d, c+" ") {
							t.Errorf("%s %s: %s.display %q leads with its code", p.ID, lang, path, d)
						}
					}
					for k, y := range x {
						walk(y, path+"."+k)
					}
				case []any:
					for _, y := range x {
						walk(y, path+"[]")
					}
				case string:
					for c, d := range codings {
						if strings.Contains(x, c+" "+d) {
							t.Errorf("%s %s: %s %q leads with the code %s", p.ID, lang, path, x, c)
						}
					}
				}
			}
			walk(v, "assessment")
		}
	}
}
