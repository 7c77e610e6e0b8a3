package main

// How numbers read: a risk to one decimal wherever a person reads it, for
// every sample patient, in the API's displays and the CDS card.

import (
	"context"
	"math"
	"regexp"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
)

// percentRun finds a percentage as written for a person ("11.7%", "6.8% to
// 20.1%"; 「11.7%」).
var percentRun = regexp.MustCompile(`\d+(?:\.\d+)?\s?%`)

// TestRisksToOneDecimal: every risk a person reads (the results' displays,
// the summary's figure, the patient-view card) has exactly one decimal,
// whatever precision the model computes it to; the values for machines
// keep theirs.
func TestRisksToOneDecimal(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	oneDecimal := regexp.MustCompile(`^\d+\.\d\s?%$`)
	seen := 0
	finer := false // a computed value with more than one decimal: the check has something to round
	for _, p := range e.Sandbox.Patients() {
		h := e.launch(t, p.ID)
		for _, lang := range []string{"en", "zh-TW"} {
			v, _ := e.get(t, "assessment", h, lang)
			results, _ := v["results"].(map[string]any)
			for id, r := range results {
				vals, _ := r.(map[string]any)["values"].([]any)
				for _, x := range vals {
					val := x.(map[string]any)
					if val["unit"] != "%" {
						continue
					}
					if f, ok := val["value"].(float64); ok && math.Abs(f*10-math.Round(f*10)) > 1e-9 {
						finer = true
					}
					d, _ := val["display"].(string)
					for _, m := range percentRun.FindAllString(d, -1) {
						seen++
						if !oneDecimal.MatchString(m) {
							t.Errorf("%s %s %s %s display %q: %q is not to one decimal", p.ID, lang, id, val["name"], d, m)
						}
					}
				}
			}
			if sm, _ := v["summary"].(map[string]any); sm != nil {
				if r, _ := sm["risk"].(map[string]any); r != nil {
					if f := r["value"].(float64); math.Abs(f*10-math.Round(f*10)) > 1e-9 {
						t.Errorf("%s summary risk %v: want one decimal", p.ID, f)
					}
				}
			}
		}
		res, err := e.Hooks.Call(context.Background(), ehrsim.CDSCall{Hook: "patient-view", Patient: p.ID})
		if err != nil || len(res.Cards) != 1 {
			t.Fatalf("%s patient-view: %v", p.ID, err)
		}
		for _, m := range percentRun.FindAllString(res.Cards[0].Detail, -1) {
			seen++
			if !oneDecimal.MatchString(m) && !isBand(m) {
				t.Errorf("%s card: %q is not to one decimal", p.ID, m)
			}
		}
	}
	if seen < 50 || !finer {
		t.Errorf("%d percentages checked, a finer computed value seen: %v: the walk is broken", seen, finer)
	}
}

// isBand reports whether a whole percentage is a band's published bound
// ("≥6% 1-year BARC 3/5 bleeding"), which is the paper's, not a risk SMART
// Calc computed.
func isBand(m string) bool { return regexp.MustCompile(`^\d+\s?%$`).MatchString(m) }
