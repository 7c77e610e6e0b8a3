package main

// Browser tests of how the page reads to a clinician: every sentence in
// Traditional Chinese when asked, the answer and what it rests on in the
// first screen, the unit switches, and the banner when reads are refused.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// englishRun finds three English words or more in a row.
var englishRun = regexp.MustCompile(`\b[A-Za-z][A-Za-z'’-]*[A-Za-z](?:,? [A-Za-z][A-Za-z'’-]*[A-Za-z]){2,}\b`)

// switchLang picks a language in the page's selector and waits until the
// page has asked the server again and shows its answer in that language.
func (b *tab) switchLang(lang, loaded string) {
	b.t.Helper()
	eval[chromedp.Void](b, `document.getElementById('status').textContent = ''`)
	b.do(
		chromedp.SetValue(chromedp.CSS("#lang-select"), lang),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('lang-select').dispatchEvent(new Event('change', {bubbles: true}))`),
	)
	b.waitStatus(loaded)
}

// serverTextJS collects the sentences the server wrote that the page shows
// (the verdict, its marks and assumptions, each score's status, the
// criteria's evidence, the warnings, the questions beside missing
// inputs), without the record's own words: drug and procedure names, which
// the page shows as the record gives them, are in elements of class
// "record" or "source".
const serverTextJS = `JSON.stringify([...document.querySelectorAll(
  '[data-testid="verdict-why"], [data-testid="verdict-risk"], [data-testid="verdict-stale"], [data-testid="verdict-assumption"], ' +
  '.result-status, #arc-table .ev-text, [data-testid="warning"], [data-testid="input-note"], .plan-text, #patient-note')]
  .map((e) => e.textContent.trim()).filter(Boolean))`

// TestBrowserZhTWSentences switches stale-labs (old labs, an unknown
// presentation, every kind of evidence) to Traditional Chinese: the page
// asks the server again with Accept-Language: zh-TW, and every sentence
// the server wrote is Chinese; switching back gives English again.
func TestBrowserZhTWSentences(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	b.launchInto(e, "stale-labs")
	before := len(b.requestsSeen())
	b.switchLang("zh-TW", "評估已載入。")
	var asked bool
	for _, r := range b.requestsSeen()[before:] {
		if strings.Contains(r.Request.URL, "/calculate/api/assessment") {
			asked = true
			if got := fmt.Sprint(r.Request.Headers["Accept-Language"]); got != "zh-TW" {
				t.Errorf("%s sent Accept-Language %q, want zh-TW", r.Request.URL, got)
			}
		}
	}
	if !asked {
		t.Fatal("switching the language did not ask the server again")
	}
	var texts []string
	if err := json.Unmarshal([]byte(eval[string](b, serverTextJS)), &texts); err != nil {
		t.Fatal(err)
	}
	if len(texts) < 15 {
		t.Fatalf("only %d server sentences on the page: %q", len(texts), texts)
	}
	han := regexp.MustCompile(`\p{Han}`)
	for _, s := range texts {
		if m := englishRun.FindString(s); m != "" || !han.MatchString(s) {
			t.Errorf("zh-TW page shows %q (English %q)", s, m)
		}
	}
	if got := b.text(`[data-testid="verdict-head"]`); got != "非高出血風險" {
		t.Errorf("verdict %q", got)
	}
	// Warnings are grouped under headings in the page's language.
	if got := b.text(`[data-testid="warning-group"][data-group="stale"] h3`); got != "較舊的結果" {
		t.Errorf("stale warnings heading %q", got)
	}
	b.noConsoleErrors()
	b.screenshot("zh-TW", "stale-labs in Traditional Chinese: the verdict, its old-results mark, the evidence, the grouped warnings and the plan written by the server in zh-TW")

	b.switchLang("en", "Assessment loaded.")
	if got := b.text(`[data-testid="verdict-why"]`); !strings.HasPrefix(got, "Not high bleeding risk:") {
		t.Errorf("back in English, the verdict reads %q", got)
	}
}

// firstScreen are the parts of the answer that must be in the first
// screen: the verdict, why, the bleeding figure and what it rests on.
var firstScreen = []string{`[data-testid="verdict-head"]`, `[data-testid="verdict-why"]`, `[data-testid="key-inputs"]`, `[data-testid="presentation"]`}

// TestBrowserFirstScreen opens sample patients in a 1280×800 window, in
// English and Traditional Chinese: the verdict, why, its inputs and the
// presentation end within the first 800 px, and the plan starts there.
// It logs each page's height at 1280 wide and keeps a screenshot of each
// first screen.
func TestBrowserFirstScreen(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, lang := range []string{"en", "zh-TW"} {
		t.Run(lang, func(t *testing.T) {
			b := newBrowser(t, nil)
			b.do(chromedp.EmulateViewport(1280, 800))
			loaded := map[string]string{"en": "Assessment loaded.", "zh-TW": "評估已載入。"}[lang]
			b.navigate(e.URL + "/calculate/evaluate.html")
			eval[chromedp.Void](b, `localStorage.setItem('smartcalc.lang', '`+lang+`')`)
			var heights []string
			for _, p := range []string{"hbr-anticoag", "stale-labs", "no-labs", "alt-units", "ich-history", "af-pci-triple"} {
				b.mu.Lock()
				b.since = len(b.requests)
				b.mu.Unlock()
				b.navigate(e.URL + "/ehr/launch?patient=" + p)
				b.waitStatus(loaded)
				for _, sel := range firstScreen {
					if bottom := eval[float64](b, fmt.Sprintf(`document.querySelector(%q).getBoundingClientRect().bottom`, sel)); bottom <= 0 || bottom > 800 {
						t.Errorf("%s %s: %s ends at %.0f px, want within the first 800", lang, p, sel, bottom)
					}
				}
				if top := eval[float64](b, `document.querySelector('[data-testid="plan-item"]').getBoundingClientRect().top`); top <= 0 || top > 760 {
					t.Errorf("%s %s: the plan starts at %.0f px, want in the first screen", lang, p, top)
				}
				heights = append(heights, fmt.Sprintf("%s %.0f px", p, eval[float64](b, `document.documentElement.scrollHeight`)))
				png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				b.saveArtifact("first-screen-"+lang+"-"+p, png, p+" in "+lang+": the first screen of a 1280×800 window")
			}
			t.Logf("page heights at 1280 wide (%s): %s", lang, strings.Join(heights, ", "))
			b.noConsoleErrors()
		})
	}
}

// TestBrowserUnitSwitches opens alt-units (Hb in g/L, creatinine in
// µmol/L, WBC in /µL, weight in lb): each value shows in the canonical unit
// with the value as reported beside it; switching creatinine to µmol/L and
// WBC to /µL shows them as reported, at that unit's precision, in the key
// inputs and in the score tables, and the scores do not move.
func TestBrowserUnitSwitches(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	b.launchInto(e, "alt-units")
	score := b.text("#phbr-score")
	key := func(name string) string { return b.text(`[data-testid="key-` + name + `"] .key-val`) }
	for name, want := range map[string]*regexp.Regexp{
		"hemoglobin": regexp.MustCompile(`^11\.8 g/dL \(reported 118 g/L\)$`),
		"creatinine": regexp.MustCompile(`^1\.10 mg/dL \(reported 97 µmol/L\)$`),
		"wbc":        regexp.MustCompile(`^7\.4 ×10⁹/L \(reported 7400 /µL\)$`),
	} {
		if got := key(name); !want.MatchString(got) {
			t.Errorf("%s in the key inputs %q, want %v", name, got, want)
		}
	}
	b.screenshot("canonical", "alt-units: every value in the canonical unit at its precision, the value as reported beside it")

	b.do(chromedp.Click(chromedp.CSS(`label[for="unit-creatinine-umolL"]`)))
	b.waitFor("creatinine in µmol/L", `document.getElementById('crcl-in-creatinine')?.dataset.unit === 'umol/L' ? 'ok' : ''`)
	b.do(chromedp.Click(chromedp.CSS(`label[for="unit-wbc-uL"]`)))
	b.waitFor("WBC in /µL", `document.getElementById('phbr-in-wbc')?.dataset.unit === '/uL' ? 'ok' : ''`)
	if got := key("creatinine"); !regexp.MustCompile(`^\d+ µmol/L$`).MatchString(got) {
		t.Errorf("creatinine in µmol/L %q, want a whole number and no 'reported' (it is the reported unit)", got)
	}
	if got := key("wbc"); got != "7400 /µL" {
		t.Errorf("WBC in /µL %q, want 7400 /µL", got)
	}
	if got := eval[string](b, `document.getElementById('phbr-in-wbc').value`); got != "7400" {
		t.Errorf("the PRECISE-HBR WBC field %q, want 7400 /µL", got)
	}
	if got := b.text("#phbr-score"); got != score {
		t.Errorf("PRECISE-HBR %q after switching units, was %q: a unit is a display choice", got, score)
	}
	// A value typed in the switched unit is sent in it, and converted by
	// the server: 10 000 /µL is 10 ×10⁹/L.
	b.change(typeInto("phbr-in-wbc", "10000")...)
	if got := key("wbc"); got != "10000 /µL" || b.attr(`[data-testid="key-wbc"]`, "data-origin") != "entered" {
		t.Errorf("WBC entered as 10000 /µL shows %q (%s)", got, b.attr(`[data-testid="key-wbc"]`, "data-origin"))
	}
	b.screenshot("switched", "alt-units with creatinine in µmol/L and WBC in /µL, WBC entered as 10000 /µL")
	b.noConsoleErrors()
}

// TestBrowserRefusedReads launches with reads refused, by a downgraded
// scope and by the EHR (break-the-glass): the banner says "Not available"
// and why, never "not recorded"; the refusal is warned once; the inputs
// that depend on it are "Not available".
func TestBrowserRefusedReads(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, tt := range []struct{ fault, reason, warning string }{
		{"scope-downgrade", "not granted access to the demographics", "SMART Calc was not granted access to the"},
		{"fhir-403", "break-the-glass access to this patient's demographics", "break-the-glass access to the"},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			b := newBrowser(t, nil)
			b.do(chromedp.EmulateViewport(1280, 800))
			b.navigate(e.URL + "/ehr/launch?patient=hbr-anticoag&fault=" + tt.fault)
			b.waitStatus("Assessment loaded.")
			for _, id := range []string{"patient-name", "patient-age", "patient-birth-date", "patient-sex", "patient-mrn"} {
				if got := b.text("#" + id); got != "Not available" {
					t.Errorf("#%s %q, want Not available", id, got)
				}
			}
			if got := b.text("#patient-note"); !strings.Contains(got, tt.reason) {
				t.Errorf("banner note %q, want the reason (%s)", got, tt.reason)
			}
			if body := eval[string](b, `document.getElementById('app').innerText`); strings.Contains(strings.ToLower(body), "not recorded") {
				t.Error("the page says 'not recorded' for what could not be read")
			}
			warnings := eval[int](b, `[...document.querySelectorAll('[data-testid="warning"]')].filter((w) => w.textContent.includes(`+fmt.Sprintf("%q", tt.warning)+`)).length`)
			if warnings != 1 {
				t.Errorf("%d warnings say %q, want the refusal said once", warnings, tt.warning)
			}
			if got := b.attr(`[data-testid="key-hemoglobin"]`, "data-origin"); got != "unavailable" {
				t.Errorf("hemoglobin origin %q, want unavailable", got)
			}
			if got := b.text(`[data-testid="key-hemoglobin"] .badge`); got != "Not available" {
				t.Errorf("hemoglobin badge %q", got)
			}
			b.screenshot("banner", "hbr-anticoag with "+tt.fault+": the banner says Not available and why; the refusal warned once")
			b.noConsoleErrors()
		})
	}
}

// overflowJS names the elements that reach past the window's right edge,
// and reports whether the page scrolls sideways.
const overflowJS = `JSON.stringify({
  scroll: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  wide: [...document.querySelectorAll('#app *')].filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '')),
})`

// TestBrowserNarrowLayouts opens sample patients, with reads refused too,
// at a tablet's 768 px and a phone's or EHR side panel's 390 px, in both
// languages: nothing reaches past the window (no sideways scrolling, no
// table cut off), the answer comes first (the verdict above the key inputs
// and the plan, each above the scores), and ARC-HBR's criteria not met are
// folded. At 1280 px the criteria table's answer column stays a table
// column (the summary's grid once turned its cells into grids).
func TestBrowserNarrowLayouts(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, lang := range []string{"en", "zh-TW"} {
		t.Run(lang, func(t *testing.T) {
			b := newBrowser(t, nil)
			loaded := map[string]string{"en": "Assessment loaded.", "zh-TW": "評估已載入。"}[lang]
			b.navigate(e.URL + "/calculate/evaluate.html")
			eval[chromedp.Void](b, `localStorage.setItem('smartcalc.lang', '`+lang+`')`)
			for _, w := range []int64{768, 390} {
				b.do(chromedp.EmulateViewport(w, 800))
				for _, p := range []string{"stale-labs", "alt-units", "hbr-anticoag&fault=fhir-403"} {
					b.navigate(e.URL + "/ehr/launch?patient=" + p)
					b.waitStatus(loaded)
					var o struct {
						Scroll bool
						Wide   []string
					}
					if err := json.Unmarshal([]byte(eval[string](b, overflowJS)), &o); err != nil {
						t.Fatal(err)
					}
					if o.Scroll || len(o.Wide) > 0 {
						t.Errorf("%s at %d px: the page scrolls sideways (%v), or these reach past the window: %v", p, w, o.Scroll, o.Wide)
					}
					top := func(sel string) float64 {
						return eval[float64](b, fmt.Sprintf(`document.querySelector(%q).getBoundingClientRect().top`, sel))
					}
					if v, k, pl, sc := top(`[data-testid="verdict-head"]`), top(`[data-testid="key-inputs"]`), top(`[data-testid="answer-plan"]`), top(`#card-precise-hbr`); !(v < k && k < sc && pl < sc) {
						t.Errorf("%s at %d px: verdict at %.0f, key inputs %.0f, plan %.0f, scores %.0f: want the answer first", p, w, v, k, pl, sc)
					}
					if open := eval[bool](b, `(() => { const d = document.querySelector('[data-testid="arc-not-met"]'); return !!d && d.open; })()`); open {
						t.Errorf("%s at %d px: ARC-HBR's criteria not met are unfolded", p, w)
					}
					png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
					if err != nil {
						t.Fatal(err)
					}
					b.saveArtifact(fmt.Sprintf("%s-%d-%s", lang, w, p), png, fmt.Sprintf("%s at %d px in %s: the answer first, nothing cut off", p, w, lang))
				}
			}
			b.do(chromedp.EmulateViewport(1280, 800))
			b.navigate(e.URL + "/ehr/launch?patient=hbr-anticoag&fault=fhir-403")
			b.waitStatus(loaded)
			if d := eval[string](b, `getComputedStyle(document.querySelector('#arc-table td.answer')).display`); d != "table-cell" {
				t.Errorf("an ARC-HBR answer cell displays as %q, want table-cell", d)
			}
			b.noConsoleErrors()
		})
	}
}
