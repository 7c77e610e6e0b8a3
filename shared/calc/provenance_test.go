package calc

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestProvenanceVerification holds every verified provenance to what backs
// it: a quoted passage and where it was read, from a source that was read
// (not the project's own decisions).
func TestProvenanceVerification(t *testing.T) {
	cockcroft := func(m map[string]any) map[string]any {
		for _, c := range m["calculators"].([]any) {
			if c.(map[string]any)["id"] == "crcl-cockcroft-gault" {
				return obj(c, "cockcroft_gault", "provenance")
			}
		}
		t.Fatal("no crcl-cockcroft-gault")
		return nil
	}
	const cg = "calculators[crcl-cockcroft-gault].cockcroft_gault.provenance"
	tests := []struct {
		name string
		f    func(m map[string]any)
		path string
	}{
		{"verified without a quote", func(m map[string]any) { delete(cockcroft(m), "quote") }, cg + ".quote"},
		{"verified with a blank quote", func(m map[string]any) { cockcroft(m)["quote"] = "  " }, cg + ".quote"},
		{"verified without where it was read", func(m map[string]any) { delete(cockcroft(m), "where") }, cg + ".where"},
		{"verified by the project reference", func(m map[string]any) {
			p := obj(m, "rounding", "provenance")
			p["verified"], p["quote"], p["where"] = true, "Round half up.", "SOURCES.md §1"
		}, "rounding.provenance.source"},
		{"verified by the project's input ranges", func(m map[string]any) {
			p := obj(m, "input_provenance")
			p["verified"], p["quote"], p["where"] = true, "Outside domain: out-of-range.", "SOURCES.md"
		}, "input_provenance.source"},
		{"a unit conversion verified without a quote", func(m map[string]any) {
			delete(obj(m, "quantities", "weight", "units", 0, "provenance"), "quote")
		}, "quantities.weight.units[0].provenance.quote"},
		{"a plan citation verified without a quote", func(m map[string]any) {
			delete(obj(m, "plan", "items", 0, "citations", 0), "quote")
		}, "plan.items[0].citations[0].quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mutate(t, tt.f)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), "calc: config: "+tt.path+":") {
				t.Errorf("error does not name %s:\n%v", tt.path, err)
			}
		})
	}
	// An unverified provenance needs no quote.
	if err := mutate(t, func(m map[string]any) {
		p := cockcroft(m)
		p["verified"] = false
		delete(p, "quote")
		delete(p, "where")
	}); err != nil {
		t.Errorf("an unverified provenance without a quote was rejected: %v", err)
	}
}

// TestVerifiedProvenancesQuoted lists every verified provenance of the
// embedded configuration and checks the passage it quotes and the place it
// was read: no verified parameter without them.
func TestVerifiedProvenancesQuoted(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	walkProvenances(t, cfg.raw, func(path string, p Provenance) {
		if !p.IsVerified() {
			return
		}
		n++
		if strings.TrimSpace(p.Quote) == "" || strings.TrimSpace(p.Where) == "" {
			t.Errorf("%s: verified without quote and where: %+v", path, p)
		}
		if contains(projectSources, p.Source) {
			t.Errorf("%s: verified by %s, a project decision", path, p.Source)
		}
	})
	if n == 0 {
		t.Fatal("no verified provenance found: the walk found nothing")
	}
}

// walkProvenances calls f for every provenance object of a configuration
// document (an object with source, table and verified).
func walkProvenances(t *testing.T, doc []byte, f func(path string, p Provenance)) {
	t.Helper()
	var m any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			_, s := x["source"]
			_, tb := x["table"]
			_, vf := x["verified"]
			if s && tb && vf {
				b, _ := json.Marshal(x)
				var p Provenance
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				f(path, p)
			}
			for k, c := range x {
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range x {
				walk(path+"["+itoa(i)+"]", c)
			}
		}
	}
	walk("", m)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// originalRepos matches the names of the original app's repositories and
// of their files, which are never a clinical source: kunjulin/PRECISE-HBR,
// Lusnaker0730/PRECISEHBR_test, PRECISEHBR_CGU and MEDCALCEHR, a fork
// (Justine11289), and their configuration and model files. "PRECISEHBR"
// is matched as the repositories spell it, so that the official calculator
// (www.precisehbr.com) and source keys (precisehbr-calculator) pass.
var originalRepos = regexp.MustCompile(`(?i:kunjulin|lusnaker0730|medcalcehr|justine11289|arc-hbr-model\.json|cdss_config|precisehbr_)|PRECISEHBR`)

func TestOriginalReposMatcher(t *testing.T) {
	for s, want := range map[string]bool{
		"as coded in kunjulin/PRECISE-HBR arc-hbr-model.json": true,
		"Lusnaker0730/PRECISEHBR_CGU docs/references":         true,
		"config/cdss_config.json tradeoff_analysis":           true,
		"the PRECISEHBR repositories":                         true,
		"precisehbr_test services":                            true,
		"MedCalcEHR SMART_FLOW.md":                            true,
		"https://www.precisehbr.com":                          false,
		"precisehbr-calculator":                               false,
		"Gragnano 2025 PRECISE-HBR Supplement Table S6":       false,
	} {
		if got := originalRepos.MatchString(s); got != want {
			t.Errorf("originalRepos.MatchString(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestNoOriginalRepoCited fails if any text of the scoring configuration
// (a source, table, note, quote, where, or any other string, the change log
// included) or of SOURCES.md, the page that explains it, names a repository
// of the original app: they are never a clinical source.
func TestNoOriginalRepoCited(t *testing.T) {
	var m any
	if err := json.Unmarshal(embeddedConfig, &m); err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case string:
			n++
			if loc := originalRepos.FindStringIndex(x); loc != nil {
				t.Errorf("scoring.json %s names a repository of the original app (%q): %.200s", path, x[loc[0]:loc[1]], x)
			}
		case map[string]any:
			for k, c := range x {
				if originalRepos.MatchString(k) {
					t.Errorf("scoring.json %s: key %q names a repository of the original app", path, k)
				}
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range x {
				walk(path+"["+itoa(i)+"]", c)
			}
		}
	}
	walk("", m)
	if n < 1000 {
		t.Fatalf("only %d strings walked: the walk missed the document", n)
	}
	doc, err := os.ReadFile("SOURCES.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(doc), "\n") {
		if loc := originalRepos.FindStringIndex(line); loc != nil {
			t.Errorf("SOURCES.md:%d names a repository of the original app (%q): %.200s", i+1, line[loc[0]:loc[1]], line)
		}
	}
}

// TestUnverifiedParameters checks that every provenance of a calculator's
// definition (its assumptions aside) is one of its parameters, that a
// parameter leaves the unverified list when it is verified and joins it
// when it is not, and that each result carries its calculator's list.
func TestUnverifiedParameters(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(cfg.raw, &doc); err != nil {
		t.Fatal(err)
	}
	for i, c := range doc["calculators"].([]any) {
		cd := &cfg.Calculators[i]
		b, _ := json.Marshal(c)
		n := 0
		walkProvenances(t, b, func(path string, _ Provenance) {
			if !strings.Contains(path, ".assume.") {
				n++
			}
		})
		if got := len(cd.Parameters()); got != n {
			t.Errorf("%s: Parameters lists %d provenances, the definition has %d", cd.ID, got, n)
		}
	}

	// Verifying PRECISE-HBR's base takes it off the list; un-verifying
	// ARC-HBR's criteria puts them on.
	changed := parseMutated(t, func(m map[string]any) {
		p := obj(m, "calculators", 0, "points", "base", "provenance")
		p["verified"], p["quote"], p["where"] = true, "a passage", "a page"
		obj(m, "calculators", 1, "criteria", "provenance")["verified"] = false
	})
	for _, tt := range []struct {
		id          string
		in, notIn   string
		before, now *CalculatorDef
	}{
		{"precise-hbr", "", "base", mustCalc(t, cfg, "precise-hbr"), mustCalc(t, changed, "precise-hbr")},
		{"arc-hbr", "criteria", "", mustCalc(t, cfg, "arc-hbr"), mustCalc(t, changed, "arc-hbr")},
	} {
		now := tt.now.Unverified()
		if tt.in != "" && !contains(now, tt.in) {
			t.Errorf("%s: %q unverified but not listed: %v", tt.id, tt.in, now)
		}
		if tt.notIn != "" && contains(now, tt.notIn) {
			t.Errorf("%s: %q verified but still listed: %v", tt.id, tt.notIn, now)
		}
		if d := len(now) - len(tt.before.Unverified()); d != 1 && d != -1 {
			t.Errorf("%s: one mark changed, the list went from %v to %v", tt.id, tt.before.Unverified(), now)
		}
	}

	// Each result carries its calculator's list and count.
	e := testEngine(t)
	for _, cd := range cfg.Calculators {
		r, err := e.Evaluate(cd.ID, Inputs{})
		if err != nil {
			t.Fatalf("%s: %v", cd.ID, err)
		}
		if strings.Join(r.Unverified, ",") != strings.Join(cd.Unverified(), ",") || r.Parameters != len(cd.Parameters()) {
			t.Errorf("%s: result says %v of %d unverified, the definition %v of %d", cd.ID, r.Unverified, r.Parameters, cd.Unverified(), len(cd.Parameters()))
		}
		if r.Unverified == nil {
			t.Errorf("%s: unverified is null, want a list", cd.ID)
		}
	}
}

func mustCalc(t *testing.T, cfg *Config, id string) *CalculatorDef {
	t.Helper()
	cd, ok := cfg.Calculator(id)
	if !ok {
		t.Fatalf("no calculator %s", id)
	}
	return cd
}
