package calc

import (
	"errors"
	"strings"
	"testing"
)

func bp(b bool) *bool { return &b }

// planLabels names each selected item by the configuration item it came
// from (its text key without "plan." and ".text") and the conditions it is
// given under: "oac-antiplatelet.acs.hbr|oac,hbr".
func planLabels(t *testing.T, cfg *Config, items []PlanItem) []string {
	t.Helper()
	var out []string
	for _, it := range items {
		label := ""
		for _, d := range cfg.PlanDef.Items {
			if planTextKey(d) == it.Key && d.Text == it.Text.String() {
				label = strings.TrimSuffix(strings.TrimPrefix(planTextKey(d), "plan."), ".text")
			}
		}
		if label == "" {
			t.Fatalf("item %+v comes from no configured item", it)
		}
		if len(it.If) > 0 {
			label += "|" + strings.Join(it.If, ",")
		}
		out = append(out, label)
	}
	return out
}

func TestPlanSelection(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	const gi = "gastric-protection.any"
	tests := []struct {
		name         string
		hbr, oac     *bool
		presentation string
		want         []string
	}{
		{"not HBR, no OAC, ACS: 12 months DAPT", bp(false), bp(false), "acs", []string{"dapt-standard.acs", gi}},
		{"not HBR, no OAC, CCS: 6 months DAPT", bp(false), bp(false), "ccs", []string{"dapt-standard.ccs", gi}},
		{"HBR, no OAC, ACS", bp(true), bp(false), "acs", []string{"dapt-abbreviated.acs", gi}},
		{"HBR, no OAC, CCS", bp(true), bp(false), "ccs", []string{"dapt-abbreviated.ccs", gi}},
		{"not HBR, OAC, ACS", bp(false), bp(true), "acs", []string{"oac-antiplatelet.acs", gi}},
		{"HBR, OAC, ACS: the HBR doses too", bp(true), bp(true), "acs", []string{"oac-antiplatelet.acs", "oac-antiplatelet.acs.hbr", gi}},
		{"not HBR, OAC, CCS", bp(false), bp(true), "ccs", []string{"oac-antiplatelet.ccs", gi}},
		{"HBR, OAC, CCS", bp(true), bp(true), "ccs", []string{"oac-antiplatelet.ccs", "oac-antiplatelet.ccs.hbr", gi}},
		{"unknown presentation: both, each labelled", bp(false), bp(false), "",
			[]string{"dapt-standard.acs|acs", "dapt-standard.ccs|ccs", gi}},
		{"unknown presentation on an OAC", bp(false), bp(true), "",
			[]string{"oac-antiplatelet.acs|acs", "oac-antiplatelet.ccs|ccs", gi}},
		{"a presentation the plan does not know is unknown", bp(true), bp(false), "stemi",
			[]string{"dapt-abbreviated.acs|acs", "dapt-abbreviated.ccs|ccs", gi}},
		{"unknown HBR, no OAC: standard and abbreviated, each conditional", nil, bp(false), "acs",
			[]string{"dapt-standard.acs|not-hbr", "dapt-abbreviated.acs|hbr", gi}},
		{"unknown HBR on an OAC: the HBR item conditional", nil, bp(true), "ccs",
			[]string{"oac-antiplatelet.ccs", "oac-antiplatelet.ccs.hbr|hbr", gi}},
		{"unknown OAC, not HBR: what each would mean", bp(false), nil, "acs",
			[]string{"dapt-standard.acs|no-oac", "oac-antiplatelet.acs|oac", gi}},
		{"unknown OAC, HBR", bp(true), nil, "ccs",
			[]string{"dapt-abbreviated.ccs|no-oac", "oac-antiplatelet.ccs|oac", "oac-antiplatelet.ccs.hbr|oac", gi}},
		{"nothing known", nil, nil, "", []string{
			"dapt-standard.acs|no-oac,not-hbr,acs", "dapt-standard.ccs|no-oac,not-hbr,ccs",
			"dapt-abbreviated.acs|no-oac,hbr,acs", "dapt-abbreviated.ccs|no-oac,hbr,ccs",
			"oac-antiplatelet.acs|oac,acs", "oac-antiplatelet.acs.hbr|oac,hbr,acs",
			"oac-antiplatelet.ccs|oac,ccs", "oac-antiplatelet.ccs.hbr|oac,hbr,ccs", gi}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planLabels(t, cfg, cfg.Plan(tt.hbr, tt.oac, tt.presentation))
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Plan = %v\nwant %v", got, tt.want)
			}
		})
	}
}

// TestPlanNeverMixes holds the rules for every combination of answers: no
// dapt-* item on an OAC, no oac-antiplatelet without one, only the known
// presentation's items, both presentations when it is unknown, and a
// condition on every item that depends on something undecided.
func TestPlanNeverMixes(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	answers := []*bool{nil, bp(false), bp(true)}
	for _, hbr := range answers {
		for _, oac := range answers {
			for _, pres := range []string{"acs", "ccs", ""} {
				items := cfg.Plan(hbr, oac, pres)
				seen := map[string]bool{}
				for _, it := range items {
					seen[it.Pathway+"/"+it.Presentation] = true
					isDAPT := strings.HasPrefix(it.Pathway, "dapt-")
					isOAC := it.Pathway == PathwayOACAntiplatelet
					if oac != nil && *oac && isDAPT {
						t.Errorf("on an OAC (hbr %v, %q): %s item", show(hbr), pres, it.Pathway)
					}
					if oac != nil && !*oac && isOAC {
						t.Errorf("no OAC (hbr %v, %q): oac-antiplatelet item", show(hbr), pres)
					}
					if oac == nil && (isDAPT || isOAC) && !contains(it.If, pick(isOAC, IfOAC, IfNoOAC)) {
						t.Errorf("OAC unknown: %s item not conditional on the OAC: %v", it.Pathway, it.If)
					}
					if hbr != nil && *hbr && it.Pathway == PathwayDAPTStandard || hbr != nil && !*hbr && it.Pathway == PathwayDAPTAbbreviated {
						t.Errorf("hbr %v: %s item", *hbr, it.Pathway)
					}
					if hbr == nil && isDAPT && !contains(it.If, pick(it.Pathway == PathwayDAPTAbbreviated, IfHBR, IfNotHBR)) {
						t.Errorf("HBR unknown: %s item not conditional on HBR: %v", it.Pathway, it.If)
					}
					if pres != "" && it.Presentation != pres && it.Presentation != PresentationAny {
						t.Errorf("presentation %s: a %s item", pres, it.Presentation)
					}
					if pres == "" && it.Presentation != PresentationAny && !contains(it.If, it.Presentation) {
						t.Errorf("presentation unknown: %s item for %s not labelled: %v", it.Pathway, it.Presentation, it.If)
					}
					if pres != "" && hbr != nil && oac != nil && it.Conditional() {
						t.Errorf("everything known, yet %s is conditional on %v", it.Pathway, it.If)
					}
					if it.Text.String() == "" || len(it.Citations) == 0 {
						t.Errorf("%s item without text or citations", it.Pathway)
					}
				}
				if pres == "" && oac != nil {
					pw := PathwayOACAntiplatelet
					if !*oac {
						pw = pick(hbr != nil && *hbr, PathwayDAPTAbbreviated, PathwayDAPTStandard)
					}
					if !seen[pw+"/acs"] || !seen[pw+"/ccs"] {
						t.Errorf("presentation unknown (hbr %v, oac %v): %s is not given for both presentations: %v", show(hbr), *oac, pw, seen)
					}
				}
				if oac != nil && !*oac && hbr == nil && (!seen[PathwayDAPTStandard+"/"+or(pres, "acs")] || !seen[PathwayDAPTAbbreviated+"/"+or(pres, "acs")]) {
					t.Errorf("HBR unknown, no OAC (%q): want both dapt-standard and dapt-abbreviated, got %v", pres, seen)
				}
			}
		}
	}
}

func show(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return pick(*b, "true", "false")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestPlanItemsAreCopies(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	items := cfg.Plan(bp(false), bp(false), "acs")
	want := items[0].Citations[0].Section
	items[0].Citations[0].Section = "changed"
	if got := cfg.Plan(bp(false), bp(false), "acs")[0].Citations[0].Section; got != want {
		t.Errorf("changing a returned citation changed the configuration: %q", got)
	}
}

// TestPlanCitationsComplete checks the configuration's plan: every citation
// names a guideline, section, class and level; a verified one quotes the
// recommendation and says where it was read; an unverified one says why.
// The ACC/AHA 2025 recommendations, read only in a machine extraction, stay
// unverified.
func TestPlanCitationsComplete(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	verified := 0
	for _, it := range cfg.PlanDef.Items {
		for _, c := range it.Citations {
			if c.Guideline == "" || c.Section == "" || c.Class == "" || c.Level == "" || c.Verified == nil {
				t.Errorf("%s/%s: incomplete citation %+v", it.Pathway, it.Presentation, c)
			}
			if _, ok := cfg.Sources[c.Guideline]; !ok {
				t.Errorf("%s/%s: guideline %q is not a source", it.Pathway, it.Presentation, c.Guideline)
			}
			if c.IsVerified() {
				verified++
				if strings.TrimSpace(c.Quote) == "" || strings.TrimSpace(c.Where) == "" {
					t.Errorf("%s/%s: verified citation without its quote or place: %+v", it.Pathway, it.Presentation, c)
				}
			} else if strings.TrimSpace(c.Note) == "" {
				t.Errorf("%s/%s: unverified citation without the reason: %+v", it.Pathway, it.Presentation, c)
			}
			if c.Guideline == "acc-aha-acs-2025" && c.IsVerified() {
				t.Errorf("%s/%s: an ACC/AHA 2025 citation is marked verified", it.Pathway, it.Presentation)
			}
		}
	}
	if verified == 0 {
		t.Error("no verified citation")
	}
	for _, key := range []string{"esc-acs-2023", "esc-ccs-2024", "esc-af-2024", "acc-aha-acs-2025"} {
		if _, ok := cfg.Sources[key]; !ok {
			t.Errorf("source %s missing", key)
		}
	}
	texts := map[string]bool{}
	for _, x := range cfg.Texts() {
		texts[x.Key] = true
	}
	for _, it := range cfg.PlanDef.Items {
		if !texts[planTextKey(it)] {
			t.Errorf("%s is not among the configuration's texts", planTextKey(it))
		}
	}
	if !texts["plan.disclaimer"] {
		t.Error("plan.disclaimer is not among the configuration's texts")
	}
}

func TestParseConfigRejectsPlan(t *testing.T) {
	item := func(m map[string]any, pathway, presentation string) map[string]any {
		for _, x := range obj(m, "plan")["items"].([]any) {
			it := x.(map[string]any)
			if it["pathway"] == pathway && it["presentation"] == presentation && it["hbr"] == nil {
				return it
			}
		}
		t.Fatalf("no %s/%s item", pathway, presentation)
		return nil
	}
	// drop removes the item of a pathway and presentation that is not
	// narrowed to a bleeding risk.
	drop := func(m map[string]any, pathway, presentation string) {
		var keep []any
		for _, x := range obj(m, "plan")["items"].([]any) {
			if it := x.(map[string]any); it["pathway"] != pathway || it["presentation"] != presentation || it["hbr"] != nil {
				keep = append(keep, x)
			}
		}
		obj(m, "plan")["items"] = keep
	}
	cit := func(m map[string]any, pathway, presentation string) map[string]any {
		return item(m, pathway, presentation)["citations"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name string
		f    func(m map[string]any)
		path string
	}{
		{"citation of an unknown source", func(m map[string]any) { cit(m, "dapt-standard", "acs")["guideline"] = "esc-acs-2019" },
			"plan.items[0].citations[0].guideline"},
		{"verified citation without a quote", func(m map[string]any) { cit(m, "dapt-standard", "ccs")["quote"] = "" },
			"plan.items[1].citations[0].quote"},
		{"verified citation without its place", func(m map[string]any) { delete(cit(m, "dapt-standard", "ccs"), "where") },
			"plan.items[1].citations[0].where"},
		{"unverified citation without the reason", func(m map[string]any) {
			c := cit(m, "dapt-abbreviated", "acs")
			c["verified"] = false
			delete(c, "note")
		}, "plan.items[2].citations[0].note"},
		{"citation without verified", func(m map[string]any) { delete(cit(m, "dapt-standard", "acs"), "verified") },
			"plan.items[0].citations[0].verified"},
		{"citation without a section", func(m map[string]any) { cit(m, "dapt-standard", "acs")["section"] = "" },
			"plan.items[0].citations[0].section"},
		{"unknown class", func(m map[string]any) { cit(m, "dapt-standard", "acs")["class"] = "IIc" },
			"plan.items[0].citations[0].class"},
		{"missing level", func(m map[string]any) { delete(cit(m, "dapt-standard", "acs"), "level") },
			"plan.items[0].citations[0].level"},
		{"item without citations", func(m map[string]any) { item(m, "dapt-standard", "acs")["citations"] = []any{} },
			"plan.items[0].citations"},
		{"unknown pathway", func(m map[string]any) { item(m, "dapt-standard", "acs")["pathway"] = "dapt-forever" },
			"plan.items[0].pathway"},
		{"unknown presentation", func(m map[string]any) { item(m, "dapt-standard", "acs")["presentation"] = "stemi" },
			"plan.items[0].presentation"},
		{"HBR item of the not-HBR pathway", func(m map[string]any) { item(m, "dapt-standard", "acs")["hbr"] = true },
			"plan.items[0].hbr"},
		{"a pathway missing for one presentation", func(m map[string]any) { drop(m, "dapt-abbreviated", "ccs") }, "plan.items"},
		{"OAC plan only for HBR in CCS", func(m map[string]any) { drop(m, "oac-antiplatelet", "ccs") }, "plan.items"},
		{"no disclaimer", func(m map[string]any) { obj(m, "plan")["disclaimer"] = "" }, "plan.disclaimer"},
		{"unknown field", func(m map[string]any) { item(m, "dapt-standard", "acs")["duration"] = 12 }, "(document)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mutate(t, tt.f)
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), "calc: config: "+tt.path+":") {
				t.Errorf("error does not name %s:\n%v", tt.path, err)
			}
		})
	}
}
