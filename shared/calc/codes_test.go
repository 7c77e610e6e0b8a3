package calc

import (
	"slices"
	"strings"
	"testing"
)

func TestCodeSetMatch(t *testing.T) {
	cfg, _ := LoadConfig()
	c := cfg.Codes
	tests := []struct {
		group, set, system, code string
		want                     bool
	}{
		{"conditions", "prior-bleeding-gi", "icd10cm", "K92.2", true},
		{"conditions", "prior-bleeding-gi", "icd10cm", "K92.3", false},
		{"conditions", "prior-bleeding-gi", "icd10cm", "K57.31", true},  // pattern K57.?1
		{"conditions", "prior-bleeding-gi", "icd10cm", "K57.33", true},  // pattern K57.?3
		{"conditions", "prior-bleeding-gi", "icd10cm", "K57.30", false}, // without bleeding
		{"conditions", "prior-bleeding-gi", "icd10cm", "K25.4", true},
		{"conditions", "prior-bleeding-gi", "icd10cm", "K25.5", false},
		{"conditions", "prior-bleeding-gi", "snomed", "74474003", true},
		{"conditions", "prior-bleeding-gi", "icd10cm", "74474003", false}, // wrong system
		{"conditions", "active-malignancy", "icd10cm", "C34.1", true},
		{"conditions", "active-malignancy", "icd10cm", "C96.9", true},
		{"conditions", "active-malignancy", "icd10cm", "C97", false},
		{"conditions", "active-malignancy", "icd10cm", "C44.91", false}, // non-melanoma skin
		{"conditions", "active-malignancy", "icd10cm", "D05.1", false},
		{"conditions", "nihss-5-or-more", "icd10cm", "R29.710", true},
		{"conditions", "nihss-5-or-more", "icd10cm", "R29.704", false},
		{"conditions", "brain-avm", "icd10cm", "Q28.2", true},
		{"conditions", "intracranial-hemorrhage-spontaneous", "icd10cm", "I61.9", true},
		{"medications", "nsaid", "rxnorm", "5640", true},
		{"medications", "nsaid", "rxnorm", "1191", false}, // aspirin never counts
		{"medications", "nsaid", "atc", "M01AE01", true},
		{"medications", "oral-anticoagulant", "atc", "B01AA03", true},
		{"medications", "oral-anticoagulant", "rxnorm", "1364430", true},
		{"medications", "oral-anticoagulant", "rxnorm", "21821", false}, // the repositories' wrong rivaroxaban code
		{"medications", "p2y12-inhibitor", "rxnorm", "613391", true},
		{"medications", "route-systemic", "v3-route", "IV", true},
		{"medications", "route-systemic", "v3-route", "IVINJ", true},
		{"medications", "route-systemic", "v3-route", "IM", true},
		{"medications", "route-systemic", "v3-route", "SQ", true},
		{"medications", "route-systemic", "v3-route", "IVINFUS", false}, // no v3 RouteOfAdministration code (IV is)
		{"medications", "route-systemic", "v3-route", "IMINJ", false},   // no v3 RouteOfAdministration code (IM is)
		{"medications", "route-systemic", "v3-route", "SC", false},      // no v3 RouteOfAdministration code (SQ is)
		{"procedures", "transfusion", "snomed", "116859006", true},
		{"conditions", "cirrhosis", "icd10cm", "", false},
	}
	groups := map[string]map[string]CodeSet{"conditions": c.Conditions, "medications": c.Medications, "procedures": c.Procedures}
	for _, tt := range tests {
		set, ok := groups[tt.group][tt.set]
		if !ok {
			t.Fatalf("no set %s.%s", tt.group, tt.set)
		}
		if got := set.Match(tt.system, tt.code); got != tt.want {
			t.Errorf("%s %s|%s = %v, want %v", tt.set, tt.system, tt.code, got, tt.want)
		}
	}
	if k, ok := c.SystemKey("http://loinc.org"); !ok || k != "loinc" {
		t.Errorf("SystemKey(loinc) = %q %v", k, ok)
	}
	// The labs carry the correct codes (reference §7b, §7g).
	if c.Labs["wbc"].Codes[0].Code != "6690-2" || c.Labs["platelets"].Codes[0].Code != "777-3" || c.Labs["hemoglobin"].Codes[0].Code != "718-7" {
		t.Error("main lab codes changed")
	}
	for _, cd := range c.Labs["wbc"].Codes {
		if cd.Code == "26515-7" {
			t.Error("26515-7 is a platelet code, not WBC")
		}
	}
}

// codeEntry is one code of the configuration with where it sits.
type codeEntry struct {
	where, system, code, display string
	checked                      *CodeCheck
}

func allCodes(cfg *Config) []codeEntry {
	var out []codeEntry
	c := cfg.Codes
	for _, g := range []struct {
		name string
		sets map[string]CodeSet
	}{{"conditions", c.Conditions}, {"medications", c.Medications}, {"procedures", c.Procedures}} {
		for _, k := range sortedKeys(g.sets) {
			s := g.sets[k]
			for _, m := range append(append([]CodeMatch(nil), s.Include...), s.Exclude...) {
				for _, r := range m.Refs {
					out = append(out, codeEntry{g.name + "." + k, m.System, r.Code, r.Display, r.Checked})
				}
			}
		}
	}
	for _, k := range sortedKeys(c.Labs) {
		l := c.Labs[k]
		for _, cd := range append(append([]Coding(nil), l.Codes...), l.Ignore...) {
			out = append(out, codeEntry{"labs." + k, cd.System, cd.Code, cd.Display, cd.Checked})
		}
	}
	for _, k := range sortedKeys(c.Observations) {
		o := c.Observations[k]
		for _, cd := range slices.Concat(o.Codes, o.CurrentValues, o.AskValues) {
			out = append(out, codeEntry{"observations." + k, cd.System, cd.Code, cd.Display, cd.Checked})
		}
	}
	return out
}

// codeProblems lists the codes of cfg that lack a display or provenance.
func codeProblems(cfg *Config) (problems []string, n int) {
	for _, e := range allCodes(cfg) {
		n++
		key := e.where + " " + e.system + " " + e.code
		if e.checked == nil || e.checked.Verified == nil {
			problems = append(problems, key+": no provenance (checked)")
		}
		if strings.TrimSpace(e.display) == "" {
			problems = append(problems, key+": no display")
		}
	}
	return problems, n
}

// Every code in the configuration carries its system's display and its
// provenance; none is exempt.
func TestEveryCodeHasDisplayAndCheck(t *testing.T) {
	problems, n := codeProblems(testConfig(t))
	if n < 300 {
		t.Fatalf("only %d codes found: allCodes misses part of the configuration", n)
	}
	for _, p := range problems {
		t.Error(p)
	}

	// The check sees a blank display wherever it sits.
	cfg := testConfig(t)
	cfg.Codes.Procedures["transfusion"].Include[0].Refs[0].Display = " "
	cfg.Codes.Observations["smoking-status"].AskValues[0].Display = ""
	got, _ := codeProblems(cfg)
	if len(got) != 2 {
		t.Errorf("blanked two displays, codeProblems found %q", got)
	}
}
