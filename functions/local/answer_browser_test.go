package main

// Browser tests of the clinical answer: the same plan on the page, in the
// print view and in the CDS card for every sample patient; the question
// about the index PCI's presentation; the trade-off percentages labelled.

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
)

// pagePlanItem is a plan item as the page shows it.
type pagePlanItem struct {
	Pathway, Presentation, Text string
	Citations                   int
	Visible                     bool
	// Marks is what the item says of its sources' verification without
	// anything opened, and MarksShown whether that is rendered.
	Marks      string
	MarksShown bool
}

// pagePlan reads the plan the page shows: each item's pathway,
// presentation, text and citation count, and whether it is rendered (not
// display: none) under the current media.
const pagePlanJS = `JSON.stringify([...document.querySelectorAll('[data-testid="plan-item"]')].map((li) => ({
  Pathway: li.dataset.pathway, Presentation: li.dataset.presentation,
  Text: li.querySelector('.plan-text').textContent,
  Citations: li.querySelectorAll('[data-testid="plan-citation"][data-verified]').length,
  Visible: li.checkVisibility() && [...li.querySelectorAll('[data-testid="plan-citation"]')].every((c) => c.checkVisibility()),
  Marks: (li.querySelector('[data-testid="plan-sources-summary"]') || {}).textContent || '',
  MarksShown: !!li.querySelector('[data-testid="plan-sources-summary"]') && li.querySelector('[data-testid="plan-sources-summary"]').checkVisibility(),
})))`

func (b *tab) plan() []pagePlanItem {
	b.t.Helper()
	var out []pagePlanItem
	if err := json.Unmarshal([]byte(eval[string](b, pagePlanJS)), &out); err != nil {
		b.t.Fatalf("plan JSON: %v", err)
	}
	return out
}

// media switches the tab's CSS media ("print", or "" for the screen).
func (b *tab) media(m string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: m}); err != nil {
		b.t.Fatalf("emulate media %q: %v", m, err)
	}
}

// shown reports whether the first element matching sel is rendered.
func (b *tab) shown(sel string) bool {
	b.t.Helper()
	return eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.getClientRects().length > 0; })()`, sel))
}

// TestBrowserSamePlanEverywhere launches into every sample patient and
// holds the page, the print view and the CDS patient-view card to the
// plan the API gives: the same items, in order, with their citations
// (each marked verified or not); in print, the verdict, the presentation
// and every item with its sources stay, and the trade-off percentages go.
func TestBrowserSamePlanEverywhere(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	patients := e.Sandbox.Patients()
	if len(patients) < 23 {
		t.Fatalf("%d sample patients, want every shipped one", len(patients))
	}
	seen := map[string]bool{}
	// A browser per group keeps each under the browser tests' deadline.
	const group = 6
	for start := 0; start < len(patients); start += group {
		batch := patients[start:min(start+group, len(patients))]
		t.Run(fmt.Sprintf("patients %d-%d", start+1, start+len(batch)), func(t *testing.T) {
			b := newBrowser(t, nil)
			for _, p := range batch {
				t.Run(p.ID, func(t *testing.T) {
					parent := b.t
					b.t = t
					defer func() { b.t = parent }()
					b.launchInto(e, p.ID)
					a := e.assessment(t, b.handle())
					seen[p.ID] = true
					samePlan(t, "page", b.plan(), a.Summary.Plan, false)
					sameVerifiedMarks(t, b, "page", a)
					if got := b.attr(`[data-testid="presentation"]`, "data-presentation"); got != presentationOf(a.Summary) {
						t.Errorf("page presentation %q, the API's %q", got, presentationOf(a.Summary))
					}

					b.media("print")
					samePlan(t, "print", b.plan(), a.Summary.Plan, true)
					sameVerifiedMarks(t, b, "print", a)
					for _, sel := range []string{`[data-testid="verdict-head"]`, `[data-testid="verdict-why"]`, `[data-testid="verdict-presentation"]`} {
						if !b.shown(sel) {
							t.Errorf("print view does not show %s", sel)
						}
					}
					for _, sel := range []string{"#card-tradeoff", `[data-testid="presentation-question"]`, "#result-summary-list"} {
						if b.shown(sel) {
							t.Errorf("print view shows %s", sel)
						}
					}
					b.media("")

					res, err := e.Hooks.Call(context.Background(), ehrsim.CDSCall{Hook: "patient-view", Patient: p.ID})
					if err != nil || res.Status != 200 || len(res.Cards) != 1 {
						t.Fatalf("patient-view: %v, status %d, %d cards", err, res.Status, len(res.Cards))
					}
					card := res.Cards[0]
					from := 0
					for _, it := range a.Summary.Plan {
						i := strings.Index(card.Detail[from:], mdText(it.Text.String()))
						if i < 0 {
							t.Errorf("the card lacks (or misorders) the plan item %s/%s", it.Pathway, it.Presentation)
							continue
						}
						from += i
					}
					verified, unverified := citationMarks(a.Summary.Plan)
					if got := strings.Count(card.Detail, ", verified]"); got != verified {
						t.Errorf("the card marks %d citations verified, the plan has %d", got, verified)
					}
					if got := strings.Count(card.Detail, ", not verified]"); got != unverified {
						t.Errorf("the card marks %d citations not verified, the plan has %d", got, unverified)
					}
					// The card says which results rest on unverified
					// parameters, and marks each recommendation.
					for _, r := range []*calc.Result{a.Results["precise-hbr"], a.Results["arc-hbr"]} {
						if r == nil {
							continue
						}
						says := strings.Contains(card.Detail, fmt.Sprintf("%s: %d of its %d parameters are not verified", mdText(r.Title.String()), len(r.Unverified), r.Parameters))
						if says != (len(r.Unverified) > 0) {
							t.Errorf("card on %s's %d of %d unverified parameters: says so %v", r.Calculator, len(r.Unverified), r.Parameters, says)
						}
					}
					for _, r := range a.Recommendations {
						mark := " [not verified]"
						if r.Verified {
							mark = " [verified]"
						}
						if !strings.Contains(card.Detail, mdText(r.Text.String())) || strings.Count(card.Detail, mark) == 0 {
							t.Errorf("the card lacks the recommendation %s marked%s", r.ID, mark)
						}
					}
					wantHBR := "Bleeding risk undetermined"
					if h := a.Summary.HBR; h != nil && *h {
						wantHBR = "High bleeding risk"
					} else if h != nil {
						wantHBR = "Not high bleeding risk"
					}
					if !strings.HasPrefix(card.Summary, wantHBR+":") || !strings.Contains(b.text(`[data-testid="verdict-head"]`), wantHBR) {
						t.Errorf("card %q, page %q: want the verdict %q in both", card.Summary, b.text(`[data-testid="verdict-head"]`), wantHBR)
					}
				})
			}
		})
	}
	for _, p := range patients {
		if !seen[p.ID] {
			t.Errorf("%s was not checked", p.ID)
		}
	}
}

// sameVerifiedMarks holds the page (or its print view) to the API's
// verified marks: each calculator card whose result rests on unverified
// parameters says how many, the others say nothing; the bleeding figure is
// marked when the risk curve is unverified; each recommendation says
// whether it was verified against its source.
func sameVerifiedMarks(t *testing.T, b *tab, where string, a *assess.Assessment) {
	t.Helper()
	for id, prefix := range map[string]string{"precise-hbr": "phbr", "arc-hbr": "arc", "precise-dapt": "pdapt"} {
		r := a.Results[id]
		if r == nil {
			continue
		}
		sel := `[data-testid="` + prefix + `-unverified"]`
		if shown := b.shown(sel); shown != (len(r.Unverified) > 0) {
			t.Errorf("%s: %s has %d of %d parameters unverified, the note is shown: %v", where, id, len(r.Unverified), r.Parameters, shown)
			continue
		}
		if len(r.Unverified) > 0 {
			if got, want := b.attr(sel, "data-unverified")+"/"+b.attr(sel, "data-parameters"), fmt.Sprintf("%d/%d", len(r.Unverified), r.Parameters); got != want {
				t.Errorf("%s: %s note counts %s, the API %s", where, id, got, want)
			}
			if txt := b.text(sel); !strings.HasPrefix(txt, "Not verified:") {
				t.Errorf("%s: %s note %q", where, id, txt)
			}
		}
	}
	if ph := a.Results["precise-hbr"]; a.Summary.Risk != nil && ph != nil {
		want := slices.Contains(ph.Unverified, "risk_curve")
		if got := b.shown(`[data-testid="verdict-risk"] [data-testid="unverified-badge"]`); got != want {
			t.Errorf("%s: the bleeding figure marked unverified: %v, want %v", where, got, want)
		}
	}
	for _, r := range a.Recommendations {
		sel := `[data-testid="recommendation"][data-id="` + r.ID + `"]`
		want := "Not verified against its source"
		if r.Verified {
			want = "Verified against its source"
		}
		if got := b.text(sel + ` [data-testid="recommendation-verified"]`); got != want || !b.shown(sel+` [data-testid="recommendation-verified"]`) {
			t.Errorf("%s: recommendation %s marked %q (shown: %v), want %q", where, r.ID, got, b.shown(sel+` [data-testid="recommendation-verified"]`), want)
		}
	}
}

func presentationOf(s calc.Summary) string {
	if s.Presentation == nil {
		return "unknown"
	}
	return *s.Presentation
}

// samePlan compares the page's plan with the API's, item by item.
func samePlan(t *testing.T, where string, got []pagePlanItem, want []calc.PlanItem, visible bool) {
	t.Helper()
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("%s shows %d plan items, the API gives %d", where, len(got), len(want))
		return
	}
	for i, it := range want {
		g := got[i]
		if g.Pathway != it.Pathway || g.Presentation != it.Presentation || !strings.HasSuffix(g.Text, it.Text.String()) || g.Citations != len(it.Citations) {
			t.Errorf("%s item %d: %+v, the API's %s/%s with %d citations: %q", where, i, g, it.Pathway, it.Presentation, len(it.Citations), it.Text)
		}
		if visible && !g.Visible {
			t.Errorf("%s hides plan item %d (%s/%s) or its sources", where, i, it.Pathway, it.Presentation)
		}
		if !visible {
			// On screen the sources are folded, but whether they were
			// verified shows: in the summary line, counted.
			v, u := citationMarks([]calc.PlanItem{it})
			want := fmt.Sprintf("Sources (%d): %d verified against the guideline, %d not verified", v+u, v, u)
			switch {
			case u == 0:
				want = fmt.Sprintf("Sources (%d): all verified against the guideline", v)
			case v == 0:
				want = fmt.Sprintf("Sources (%d): not verified", u)
			}
			if g.Marks != want || !g.MarksShown {
				t.Errorf("%s item %d (%s/%s) says %q (shown: %v), want %q", where, i, it.Pathway, it.Presentation, g.Marks, g.MarksShown, want)
			}
		}
	}
}

// mdText is text as the card writes it: Markdown escaped.
func mdText(s string) string {
	return strings.NewReplacer(`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`,
		`<`, `\<`, `>`, `\>`, `|`, `\|`, `~`, `\~`, "\n", " ", "\r", " ").Replace(s)
}

func citationMarks(plan []calc.PlanItem) (verified, unverified int) {
	for _, it := range plan {
		for _, c := range it.Citations {
			if c.IsVerified() {
				verified++
			} else {
				unverified++
			}
		}
	}
	return verified, unverified
}

// TestBrowserPresentationQuestion: a record that cannot tell the index
// PCI's presentation (stale-labs: coronary disease, no PCI, no acute
// coronary syndrome) shows the plan for both presentations and asks; one
// click answers it, the summary then gives the plan for that presentation
// and says it includes the entered value; "unknown" withdraws the answer.
// A record that tells (stable-angina-pci) shows the presentation, its
// source and the PCI date in the first screen.
func TestBrowserPresentationQuestion(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	presentations := func() map[string]bool {
		out := map[string]bool{}
		for _, it := range b.plan() {
			out[it.Presentation] = true
		}
		return out
	}

	b.launchInto(e, "stale-labs")
	if got := b.attr(`[data-testid="presentation"]`, "data-presentation"); got != "unknown" {
		t.Fatalf("stale-labs presentation %q, want unknown", got)
	}
	if got := b.text(`[data-testid="verdict-presentation"]`); !strings.Contains(got, "answer the question") {
		t.Errorf("presentation text %q: want it to ask", got)
	}
	if p := presentations(); !p["acs"] || !p["ccs"] {
		t.Errorf("plan presentations %v, want both while unknown", p)
	}
	if !eval[bool](b, `document.getElementById('presentation-none').checked`) {
		t.Error("no answer should be checked before the clinician answers")
	}
	b.screenshot("presentation-unknown", "stale-labs: the record cannot tell the presentation; the plan for each, and the question")

	b.change(chromedp.Click(chromedp.CSS(`label[for="presentation-ccs"]`)))
	if got := b.attr(`[data-testid="presentation"]`, "data-presentation"); got != "ccs" || b.attr(`[data-testid="presentation"]`, "data-origin") != "entered" {
		t.Errorf("after answering CCS: presentation %q from %q", got, b.attr(`[data-testid="presentation"]`, "data-origin"))
	}
	if p := presentations(); p["acs"] || !p["ccs"] {
		t.Errorf("plan presentations %v after answering CCS, want CCS only", p)
	}
	if got := b.text(`[data-testid="verdict-entered"]`); !strings.Contains(got, "Presentation of the index PCI") {
		t.Errorf("entered line %q: want it to name the presentation", got)
	}
	if !eval[bool](b, `document.getElementById('presentation-ccs').checked`) {
		t.Error("the CCS answer is not checked after the click")
	}
	b.screenshot("presentation-ccs", "stale-labs answered CCS: the plan for CCS only, marked as including an entered value")

	b.change(chromedp.Click(chromedp.CSS(`label[for="presentation-none"]`)))
	if p := presentations(); !p["acs"] || !p["ccs"] {
		t.Errorf("plan presentations %v after withdrawing the answer, want both again", p)
	}

	b.launchInto(e, "stable-angina-pci")
	if got := b.attr(`[data-testid="presentation"]`, "data-presentation"); got != "ccs" {
		t.Errorf("stable-angina-pci presentation %q, want ccs from the record", got)
	}
	// The sources in the record's words with their dates; the FHIR
	// references as the elements' titles.
	if got, refs := b.text(`[data-testid="verdict-presentation"]`), b.attr(`[data-testid="verdict-presentation"] .source`, "title"); !strings.Contains(got, "chronic coronary syndrome") ||
		!strings.Contains(got, "Stable angina") || !strings.Contains(refs, "Condition/stable-angina-pci-cond-2") {
		t.Errorf("presentation %q (sources %q): want CCS with its source", got, refs)
	}
	// The procedure by its name and date; its code, with the reference,
	// in the title, never ahead of the name.
	if got, ref := b.text(`[data-testid="verdict-pci"]`), b.attr(`[data-testid="verdict-pci"]`, "title"); !strings.Contains(got, "Percutaneous coronary intervention") ||
		!regexp.MustCompile(`\d{1,2} [A-Z][a-z]{2} \d{4}`).MatchString(got) || strings.Contains(got, "415070008") || ref != "Procedure/stable-angina-pci-proc-4 · SNOMED CT 415070008" {
		t.Errorf("PCI line %q (title %q): want the procedure and its date, its reference and code as the title", got, ref)
	}
	if got := b.text(`[data-testid="verdict-presentation"]`); regexp.MustCompile(`\d{6,}`).MatchString(got) {
		t.Errorf("presentation %q: a code in the text", got)
	}
	for _, sel := range []string{`[data-testid="verdict-why"]`, `[data-testid="verdict-presentation"]`, `[data-testid="verdict-pci"]`} {
		if bottom := eval[float64](b, fmt.Sprintf(`document.querySelector(%q).getBoundingClientRect().bottom`, sel)); bottom <= 0 || bottom > 800 {
			t.Errorf("%s ends at %v px, want within the first 800", sel, bottom)
		}
	}
	b.screenshot("presentation-ccs-record", "stable-angina-pci: CCS from the record, with its condition and the PCI date, at the top")
	b.noConsoleErrors()
}

// TestBrowserTradeoffLabelled: the trade-off percentages, as a range on
// load and as a point once answered, say they come from a different model
// than PRECISE-HBR, with unverified parameters; PRECISE-HBR's own figure in
// the verdict carries no such label.
func TestBrowserTradeoffLabelled(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	b.launchInto(e, "af-pci-triple")
	check := func(when string) {
		t.Helper()
		got := b.text(`[data-testid="tradeoff-model-note"]`)
		if !strings.Contains(got, "not PRECISE-HBR") || !strings.Contains(got, "unverified") {
			t.Errorf("%s: trade-off note %q", when, got)
		}
		if desc := eval[string](b, `(document.querySelector('[data-testid="tradeoff-svg"] desc') || {}).textContent || ''`); strings.Contains(desc, "%") && !strings.Contains(desc, "unverified") {
			t.Errorf("%s: the chart's description %q gives percentages without the label", when, desc)
		}
	}
	check("on load")
	if got := b.text(`[data-testid="verdict-risk"]`); strings.Contains(got, "unverified") || !strings.Contains(got, "PRECISE-HBR") {
		t.Errorf("verdict risk %q: want PRECISE-HBR's figure, unlabelled", got)
	}
	for i := 0; i < 10; i++ {
		id := eval[string](b, `(() => { const li = document.querySelector('#tradeoff-factor-list li[data-present="unknown"] input[data-answer="no"]:not([disabled])'); return li ? li.id : ''; })()`)
		if id == "" {
			break
		}
		b.change(chromedp.Click(chromedp.CSS("#" + id)))
	}
	b.waitFor("the patient's point", `document.querySelector('[data-testid="tradeoff-point"] circle') ? 'ok' : ''`)
	check("as a point")
	b.screenshot("tradeoff-labelled", "af-pci-triple: the trade-off percentages labelled as a different, unverified model")
}
