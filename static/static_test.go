package static

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// htmlPages are the pages the calculate function serves.
var htmlPages = []string{"index.html", "evaluate.html"}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(FS, name)
	if err != nil {
		t.Fatalf("embedded %s: %v", name, err)
	}
	return string(b)
}

func parsePage(t *testing.T, name string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(readFile(t, name)))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return doc
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func jsFiles(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(FS, "*.js")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded JavaScript (%v)", err)
	}
	return names
}

// localTarget maps a relative URL used by a page to the embedded file it
// needs, or "" when the URL is not a file of ours (a fragment, the API).
func localTarget(u string) string {
	u = strings.SplitN(strings.SplitN(u, "#", 2)[0], "?", 2)[0]
	switch {
	case u == "":
		return ""
	case u == "./" || u == ".":
		return "index.html"
	case strings.HasPrefix(u, "api/"), strings.HasPrefix(u, "data:"):
		return ""
	case u == MessagesPath:
		return "" // served by the calculate function from shared/message
	}
	return path.Clean(strings.TrimPrefix(u, "./"))
}

func TestOnlyUIFilesEmbedded(t *testing.T) {
	want := map[string]bool{".html": true, ".js": true, ".css": true}
	var got []string
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		got = append(got, p)
		if !want[path.Ext(p)] {
			t.Errorf("embedded %s is not a UI file", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"index.html", "evaluate.html", "app.js", "evaluate.js", "app.css", "i18n.js", "tradeoff.js"} {
		if _, err := fs.Stat(FS, must); err != nil {
			t.Errorf("%s is not embedded (have %v)", must, got)
		}
	}
}

func TestReferencedFilesExist(t *testing.T) {
	for _, page := range htmlPages {
		walk(parsePage(t, page), func(n *html.Node) {
			if n.Type != html.ElementNode {
				return
			}
			for _, key := range []string{"src", "href"} {
				v, ok := attr(n, key)
				if !ok {
					continue
				}
				if strings.Contains(v, "://") || strings.HasPrefix(v, "//") {
					t.Errorf("%s: <%s %s=%q> loads from another origin (CSP 'self' only; no CDN)", page, n.Data, key, v)
					continue
				}
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), "javascript:") {
					t.Errorf("%s: <%s %s=%q> is a javascript: URL", page, n.Data, key, v)
					continue
				}
				if strings.HasPrefix(v, "/") {
					t.Errorf("%s: <%s %s=%q> is absolute; use a relative URL so the page works under /calculate/ and at the function root", page, n.Data, key, v)
					continue
				}
				if target := localTarget(v); target != "" {
					if _, err := fs.Stat(FS, target); err != nil {
						t.Errorf("%s: <%s %s=%q>: %s is not embedded", page, n.Data, key, v, target)
					}
				}
			}
		})
	}
	// Module imports and fetched files.
	imp := regexp.MustCompile(`(?m)^\s*import\s[^;]*?from\s+'([^']+)'`)
	fetched := regexp.MustCompile(`fetch\(\s*'([^']+)'`)
	for _, js := range jsFiles(t) {
		src := readFile(t, js)
		for _, m := range imp.FindAllStringSubmatch(src, -1) {
			if !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s imports %q: only relative imports of our own modules", js, m[1])
				continue
			}
			if _, err := fs.Stat(FS, localTarget(m[1])); err != nil {
				t.Errorf("%s imports %q, which is not embedded", js, m[1])
			}
		}
		for _, m := range fetched.FindAllStringSubmatch(src, -1) {
			if target := localTarget(m[1]); target != "" {
				if _, err := fs.Stat(FS, target); err != nil {
					t.Errorf("%s fetches %q, which is not embedded", js, m[1])
				}
			}
		}
	}
}

// TestCSPCompliance checks what the Content-Security-Policy (script-src
// 'self'; style-src 'self') would block or what would weaken it: inline
// scripts, <style> elements, style and on* attributes.
func TestCSPCompliance(t *testing.T) {
	for _, page := range htmlPages {
		scripts := 0
		walk(parsePage(t, page), func(n *html.Node) {
			if n.Type != html.ElementNode {
				return
			}
			switch n.Data {
			case "script":
				scripts++
				if _, ok := attr(n, "src"); !ok {
					t.Errorf("%s: inline <script> without src", page)
				}
				if n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) != "" {
					t.Errorf("%s: <script> with inline content", page)
				}
			case "style":
				t.Errorf("%s: <style> element (use app.css)", page)
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				if k == "style" {
					t.Errorf("%s: <%s style=%q> (use a class in app.css)", page, n.Data, a.Val)
				}
				if strings.HasPrefix(k, "on") {
					t.Errorf("%s: <%s %s=...> event-handler attribute (bind in JavaScript)", page, n.Data, a.Key)
				}
			}
		})
		if scripts == 0 {
			t.Errorf("%s loads no script", page)
		}
	}
	// The JavaScript builds the DOM with textContent and never parses
	// strings as HTML or code, and sets no style attribute.
	banned := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\s*\(|setAttribute\(\s*'style'|\bstyle:\s*'`)
	for _, js := range jsFiles(t) {
		for i, line := range strings.Split(readFile(t, js), "\n") {
			if m := banned.FindString(line); m != "" {
				t.Errorf("%s:%d uses %q", js, i+1, m)
			}
		}
	}
	css := readFile(t, "app.css")
	if regexp.MustCompile(`@import|url\(\s*['"]?(https?:)?//`).MatchString(css) {
		t.Error("app.css imports or loads from another origin")
	}
}

// TestSessionHandleStaysOutOfStorageAndURLs checks the handle's only homes:
// sessionStorage and the Authorization header.
func TestSessionHandleStaysOutOfStorageAndURLs(t *testing.T) {
	for _, js := range jsFiles(t) {
		src := readFile(t, js)
		if strings.Contains(src, "localStorage") && js != "i18n.js" {
			t.Errorf("%s uses localStorage; only the language choice may be kept there", js)
		}
		if strings.Contains(src, "document.cookie") {
			t.Errorf("%s uses cookies; the page must work with third-party cookies blocked", js)
		}
		if regexp.MustCompile(`\bconsole\.\w+\(`).MatchString(src) {
			t.Errorf("%s writes to the console, where a handle or PHI could end up", js)
		}
	}
	app := readFile(t, "app.js")
	for _, want := range []string{"history.replaceState", "sessionStorage", "'Bearer '"} {
		if !strings.Contains(app+readFile(t, "api.js"), want) {
			t.Errorf("app.js/api.js lack %s", want)
		}
	}
	if strings.Contains(readFile(t, "evaluate.js"), "sessionStorage") || strings.Contains(readFile(t, "evaluate.js"), "handle") {
		t.Error("evaluate.js touches the session: the standalone calculator must not")
	}
}

func TestUniqueIDsAndLabelledControls(t *testing.T) {
	for _, page := range htmlPages {
		ids := map[string]int{}
		labelled := map[string]bool{}
		var controls []*html.Node
		walk(parsePage(t, page), func(n *html.Node) {
			if n.Type != html.ElementNode {
				return
			}
			if id, ok := attr(n, "id"); ok {
				ids[id]++
			}
			if n.Data == "label" {
				if f, ok := attr(n, "for"); ok {
					labelled[f] = true
				}
			}
			if n.Data == "input" || n.Data == "select" || n.Data == "textarea" {
				controls = append(controls, n)
			}
		})
		for id, c := range ids {
			if c > 1 {
				t.Errorf("%s: id %q appears %d times", page, id, c)
			}
		}
		for _, c := range controls {
			id, _ := attr(c, "id")
			_, aria := attr(c, "aria-label")
			_, by := attr(c, "aria-labelledby")
			if !labelled[id] && !aria && !by {
				t.Errorf("%s: <%s id=%q> has no label", page, c.Data, id)
			}
		}
		// Every element the page's script looks up by a literal id exists.
		script := map[string]string{"index.html": "app.js", "evaluate.html": "evaluate.js"}[page]
		for _, m := range regexp.MustCompile(`\$\('([^']+)'\)`).FindAllStringSubmatch(readFile(t, script), -1) {
			if ids[m[1]] == 0 {
				t.Errorf("%s looks up #%s, which %s does not have", script, m[1], page)
			}
		}
	}
}

type catalog struct {
	Languages  map[string]string            `json:"languages"`
	Strings    map[string]map[string]string `json:"strings"`
	ConfigText map[string]map[string]string `json:"config_text"`
}

func loadCatalog(t *testing.T) catalog {
	t.Helper()
	var c catalog
	if err := json.Unmarshal(message.Default().JSON(), &c); err != nil {
		t.Fatalf("the message catalogue: %v", err)
	}
	return c
}

var placeholder = regexp.MustCompile(`\{(\w+)\}`)

func placeholders(s string) string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestI18nLanguagesHaveTheSameKeys(t *testing.T) {
	c := loadCatalog(t)
	en, zh := c.Strings["en"], c.Strings["zh-TW"]
	if len(en) == 0 || len(zh) == 0 {
		t.Fatalf("the message catalogue needs strings for en and zh-TW; have %d and %d", len(en), len(zh))
	}
	if c.Languages["en"] == "" || c.Languages["zh-TW"] == "" {
		t.Errorf("languages = %v, want en and zh-TW", c.Languages)
	}
	for k, v := range en {
		z, ok := zh[k]
		switch {
		case !ok:
			t.Errorf("zh-TW lacks %q", k)
		case strings.TrimSpace(z) == "" || strings.TrimSpace(v) == "":
			t.Errorf("%q is empty in a language", k)
		case placeholders(v) != placeholders(z):
			t.Errorf("%q: placeholders differ: en {%s}, zh-TW {%s}", k, placeholders(v), placeholders(z))
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
	if _, ok := c.ConfigText["en"]; ok {
		t.Error("config_text must not have en: English comes from the scoring configuration")
	}
	for lang, m := range c.ConfigText {
		if _, ok := c.Strings[lang]; !ok {
			t.Errorf("config_text has %s, which has no strings", lang)
		}
		for k, v := range m {
			if strings.TrimSpace(v) == "" {
				t.Errorf("config_text[%s][%q] is empty", lang, k)
			}
		}
	}
}

// TestI18nKeysUsedExist checks every key the pages ask for, literal or from
// a known family of dynamic keys.
func TestI18nKeysUsedExist(t *testing.T) {
	en := loadCatalog(t).Strings["en"]
	need := map[string]string{}
	lit := regexp.MustCompile(`\bt\(\s*'([^']+)'\s*[,)]`)
	for _, js := range jsFiles(t) {
		for _, m := range lit.FindAllStringSubmatch(readFile(t, js), -1) {
			need[m[1]] = js
		}
	}
	for _, page := range htmlPages {
		walk(parsePage(t, page), func(n *html.Node) {
			if v, ok := attr(n, "data-i18n"); ok {
				need[v] = page
			}
			if v, ok := attr(n, "data-i18n-attr"); ok {
				for _, pair := range strings.Split(v, ";") {
					if _, k, ok := strings.Cut(pair, ":"); ok {
						need[strings.TrimSpace(k)] = page
					}
				}
			}
		})
	}
	families := map[string][]string{
		"origin.":            {"record", "entered", "derived", "absent", "unavailable", "asked"},
		"warnings.group.":    {"access", "values", "stale", "record", "model"},
		"component.counted.": {"upper", "lower"},
		"short.":             {"age", "hemoglobin", "creatinine", "egfr", "wbc", "platelets"},
		"tradeoff.zone.":     {"thrombotic", "equivalent", "bleeding"},
		"tradeoff.legend.":   {"thrombotic", "equivalent", "bleeding"},
		"relaunch.reason.":   {"missing", "expired", "malformed"},
		"error.phase.":       {"load", "whatif", "evaluate", "config"},
		"enum.":              {"none", "minor", "major", "female", "male"},
	}
	for prefix, names := range families {
		for _, n := range names {
			need[prefix+n] = "a dynamic key"
		}
	}
	if len(need) < 50 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(need))
	}
	for k, where := range need {
		if _, ok := en[k]; !ok {
			t.Errorf("%s uses %q, which the message catalogue lacks", where, k)
		}
	}
}

// TestJavaScriptSyntax runs node --check on every module when Node.js is
// installed (it is a development convenience, not a build dependency).
func TestJavaScriptSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	for _, js := range jsFiles(t) {
		src := readFile(t, js)
		cmd := exec.Command(node, "--input-type=module", "--check")
		cmd.Stdin = strings.NewReader(src)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", js, err, out)
		}
	}
}

// textDigits are the digits a configuration text may write, in either
// language: names that contain digits and numbers of guideline or
// publication text that are not scoring parameters. Any other number in a
// configuration text must be a {placeholder} filled from the configuration,
// so that no text repeats a parameter and goes stale when it changes. An
// entry with key "" applies to every text; its literals are cut out of the
// text before the check.
var textDigits = []struct {
	key      string
	literals []string
	reason   string
}{
	{"", []string{"BARC 3/5", "BARC 3–5", "BARC 3-5", "BARC 3 或 5", "BARC 3 or 5"}, "the BARC bleeding types: a classification's names"},
	{"", []string{"1-year", "1 year"}, "the publications' outcome horizon (1-year bleeding), part of the outcome's name"},
	{"", []string{"×10⁹/L", "1.73 m²"}, "units"},
	{"", []string{"CKD-EPI 2021"}, "the equation's name"},
	{"calc.arc-hbr.description", []string{"≥4%", "≥1%"}, "ARC-HBR's published definition of high bleeding risk (Urban 2019), for information: the engine decides by the criteria counts"},
	{"calc.precise-dapt.description", []string{"12 months", "12 個月"}, "the published PRECISE-DAPT outcome (bleeding at 12 months, Costa 2017)"},
	{"calc.arc-hbr-tradeoff.caveat", []string{"JAMA Cardiol 2021;6:410-419", "doi:10.1001/jamacardio.2020.6814"}, "a citation"},
	{"band.precise-dapt.very-low.note", []string{"quartile 1", "第 1 四分位"}, "a quartile's ordinal"},
	{"band.precise-dapt.low.note", []string{"quartile 2", "第 2 四分位"}, "a quartile's ordinal"},
	{"band.precise-dapt.moderate.note", []string{"quartile 3", "第 3 四分位"}, "a quartile's ordinal"},
	{"band.precise-dapt.high.note", []string{"12-24 months", "12–24 個月"}, "the DAPT durations of the trials (Costa 2017), not a parameter"},
	{"rec.short-dapt-precise-dapt.text", []string{"3-6 months", "3–6 個月", "12-24 months", "12–24 個月"}, "the DAPT durations of the trials (Costa 2017), not a parameter"},
	{"plan.dapt-standard.acs.text", []string{"12 months", "12 個月"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
	{"plan.dapt-standard.ccs.text", []string{"75–100 mg", "75 mg", "3–6 months", "1–3 months", "6 months", "3–6 個月", "1–3 個月", "6 個月"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
	{"plan.dapt-abbreviated.acs.text", []string{"3–6 months", "1 month", "30 days", "3–6 個月", "1 個月", "30 天"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
	{"plan.dapt-abbreviated.ccs.text", []string{"1–3 months", "75–100 mg", "75 mg", "1–3 個月"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
	{"plan.oac-antiplatelet.acs.text", []string{"1 week", "1 month", "12 months", "6 months", "2.0–2.5", "70%", "1 週", "1 個月", "12 個月", "6 個月"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
	{"plan.oac-antiplatelet.ccs.text", []string{"1 week", "1 month", "12 months", "6 months", "70%", "1 週", "1 個月", "12 個月", "6 個月"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
	{"plan.oac-antiplatelet.acs.hbr.text", []string{"15 mg", "20 mg", "110 mg", "150 mg"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
	{"plan.oac-antiplatelet.ccs.hbr.text", []string{"6 (or even 3) months", "6（甚至 3）個月", "15 mg", "20 mg", "110 mg", "150 mg"}, "the guideline's own durations and doses (plan citations quote them), not scoring parameters"},
}

// numberRE finds numbers; standaloneNumbers drops those glued to Latin
// letters or superscripts, which are parts of names (P2Y12, G3a, 10⁹).
var numberRE = regexp.MustCompile(`\p{Nd}+(?:[.,]\p{Nd}+)*`)

func standaloneNumbers(s string) []string {
	glued := func(r rune) bool {
		return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || strings.ContainsRune("⁰¹²³⁴⁵⁶⁷⁸⁹", r)
	}
	var out []string
	for _, m := range numberRE.FindAllStringIndex(s, -1) {
		before, _ := utf8.DecodeLastRuneInString(s[:m[0]])
		after, _ := utf8.DecodeRuneInString(s[m[1]:])
		if glued(before) || glued(after) {
			continue
		}
		out = append(out, s[m[0]:m[1]])
	}
	return out
}

// strayNumbers returns the numbers text (under key) writes outside its
// placeholders and allowed literals, and marks the literals it used.
func strayNumbers(key, text string, used map[string]bool) []string {
	s := placeholder.ReplaceAllString(text, " ")
	for _, a := range textDigits {
		if a.key != "" && a.key != key {
			continue
		}
		for _, l := range a.literals {
			if strings.Contains(s, l) {
				used[a.key+"\x00"+l] = true
				s = strings.ReplaceAll(s, l, " ")
			}
		}
	}
	return standaloneNumbers(s)
}

func placeholderSet(s string) map[string]bool {
	out := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out[m[1]] = true
	}
	return out
}

func configTexts(t *testing.T) map[string]calc.ConfigText {
	t.Helper()
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]calc.ConfigText{}
	for _, x := range cfg.Texts() {
		texts[x.Key] = x
	}
	if len(texts) < 50 {
		t.Fatalf("the configuration lists only %d texts", len(texts))
	}
	return texts
}

// TestConfigTextNumbersComeFromTheConfiguration holds the product rule "no
// number is written twice" for text: a translation (config_text) or an
// English configuration text never writes a number itself, except the few
// guideline and name numbers of textDigits; configuration numbers are
// {placeholders} that name a parameter of their own text, the same ones in
// both languages. The input-specific value names (strings enum.<input>.*)
// follow the same rule with their input's parameters.
func TestConfigTextNumbersComeFromTheConfiguration(t *testing.T) {
	texts := configTexts(t)
	cat := loadCatalog(t)
	used := map[string]bool{}
	check := func(where, key, text string, params map[string]float64) {
		if n := strayNumbers(key, text, used); len(n) > 0 {
			t.Errorf("%s %q writes %v: name the configuration's number as a {placeholder} (it may name %v), or add a guideline number to textDigits with its reason", where, text, n, sortedNames(params))
		}
		for p := range placeholderSet(text) {
			if _, ok := params[p]; !ok {
				t.Errorf("%s %q: {%s} is not a number of this text (it may name %v)", where, text, p, sortedNames(params))
			}
		}
	}
	for _, key := range sortedKeys(texts) {
		x := texts[key]
		check("English "+key, key, x.Template, x.Params)
	}
	for lang, tr := range cat.ConfigText {
		for _, key := range sortedKeys(tr) {
			text := tr[key]
			x, ok := texts[key]
			if !ok {
				t.Errorf("config_text[%s][%q] translates no configuration text (keys come from calc.Config.Texts)", lang, key)
				continue
			}
			check("config_text["+lang+"]["+key+"]", key, text, x.Params)
			if en, tr := strings.Join(sortedKeys(placeholderSet(x.Template)), ","), strings.Join(sortedKeys(placeholderSet(text)), ","); en != tr {
				t.Errorf("config_text[%s][%q] names {%s}, the English %q names {%s}: the same numbers in both languages", lang, key, tr, x.Template, en)
			}
		}
	}
	for lang, strs := range cat.Strings {
		for _, key := range sortedKeys(strs) {
			parts := strings.Split(key, ".")
			if len(parts) != 3 || parts[0] != "enum" {
				continue
			}
			params := texts["input."+parts[1]+".description"].Params
			check("strings["+lang+"]["+key+"]", key, strs[key], params)
		}
	}
	for _, a := range textDigits {
		if a.reason == "" {
			t.Errorf("textDigits %q %v: no reason", a.key, a.literals)
		}
		for _, l := range a.literals {
			if !used[a.key+"\x00"+l] {
				t.Errorf("textDigits %q: %q is in no text any more: remove it", a.key, l)
			}
		}
	}
}

// TestConfigTextCheckCatchesNumbers shows the check above failing on the
// texts this change fixed.
func TestConfigTextCheckCatchesNumbers(t *testing.T) {
	for _, tt := range []struct {
		key, text string
		want      string
	}{
		{"criterion.stroke-major", "6 個月內中度或重度缺血性中風（NIHSS ≥5）", "6,5"},
		{"band.precise-hbr.hbr", "一年 BARC 3/5 型出血風險 4% 至 <6%", "4,6"},
		{"rec.short-dapt-precise-dapt.text", "PRECISE-DAPT 分數 ≥25 時建議短期 DAPT（3–6 個月）", "25"},
		{"criterion.bleeding-major", "6 個月內需住院或輸血的自發性出血", "6"},
		{"criterion.bleeding-major", "{bleeding_major_months} 個月內需住院或輸血的自發性出血", ""},
		{"factor.egfr-30-60", "eGFR {min}–{max_minus_one} mL/min/1.73 m²", ""},
		{"band.egfr-ckd-epi-2021.G3b", "G3b（30–44）", "30,44"},
		{"calc.egfr-ckd-epi-2021.title", "P2Y12 抑制劑", ""},
	} {
		if got := strings.Join(strayNumbers(tt.key, tt.text, map[string]bool{}), ","); got != tt.want {
			t.Errorf("strayNumbers(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

// TestRiskStringsMatchTheEngine checks that the UI's English risk strings
// write a band's risk_percent exactly as the engine's Band.Risk does (the
// CDS cards show the engine's).
func TestRiskStringsMatchTheEngine(t *testing.T) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	en := loadCatalog(t).Strings["en"]
	fill := func(key string, p map[string]string) string {
		return placeholder.ReplaceAllStringFunc(en[key], func(m string) string { return p[m[1:len(m)-1]] })
	}
	num := func(x *float64) string { return strconv.FormatFloat(*x, 'f', -1, 64) }
	n := 0
	for _, cd := range cfg.Calculators {
		bands, outcome := cd.Bands, cd.BandsRiskOutcome
		if cd.Points != nil {
			bands, outcome = cd.Points.Bands, cd.Points.BandsRiskOutcome
		}
		for _, b := range bands {
			r := b.RiskPercent
			if r == nil {
				continue
			}
			n++
			var ui string
			switch {
			case r.Min != nil && r.Max != nil:
				ui = fill("risk.between", map[string]string{"min": num(r.Min), "max": num(r.Max), "outcome": outcome})
			case r.Max != nil:
				ui = fill("risk.below", map[string]string{"max": num(r.Max), "outcome": outcome})
			default:
				ui = fill("risk.at-least", map[string]string{"min": num(r.Min), "outcome": outcome})
			}
			if ui != b.Risk {
				t.Errorf("%s %s: the UI writes %q, the engine %q", cd.ID, b.Category, ui, b.Risk)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d bands with a risk range, want PRECISE-HBR's 3", n)
	}
}

// TestTextParamsMatchTheEngine runs scoring.js's textParamsOf in Node.js on
// the configuration and compares its numbers with calc.Config.Texts: the UI
// and the engine fill the same placeholders with the same numbers.
func TestTextParamsMatchTheEngine(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "scoring.mjs"), []byte(readFile(t, "scoring.js")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scoring.json"), cfg.Raw(), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `import { textParamsOf } from './scoring.mjs';
import { readFileSync } from 'node:fs';
process.stdout.write(JSON.stringify(textParamsOf(JSON.parse(readFileSync('./scoring.json', 'utf8')))));
`
	if err := os.WriteFile(filepath.Join(dir, "main.mjs"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "main.mjs")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var js map[string]map[string]float64
	if err := json.Unmarshal(out, &js); err != nil {
		t.Fatalf("textParamsOf output: %v", err)
	}
	named := 0
	for _, x := range cfg.Texts() {
		got := js[x.Key]
		if len(got) == 0 && len(x.Params) == 0 {
			continue
		}
		named++
		if !reflect.DeepEqual(got, x.Params) {
			t.Errorf("%s: scoring.js gives %v, the engine %v", x.Key, got, x.Params)
		}
	}
	if named < 20 {
		t.Errorf("only %d texts have numbers: the comparison is broken", named)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedNames(m map[string]float64) []string { return sortedKeys(m) }
