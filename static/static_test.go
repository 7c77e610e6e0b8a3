package static

import (
	"encoding/json"
	"io/fs"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/html"
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
	}
	return path.Clean(strings.TrimPrefix(u, "./"))
}

func TestOnlyUIFilesEmbedded(t *testing.T) {
	want := map[string]bool{".html": true, ".js": true, ".css": true, ".json": true}
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
	for _, must := range []string{"index.html", "evaluate.html", "app.js", "evaluate.js", "app.css", "i18n.js", "i18n.json", "tradeoff.js"} {
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
	if err := json.Unmarshal([]byte(readFile(t, "i18n.json")), &c); err != nil {
		t.Fatalf("i18n.json: %v", err)
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
		t.Fatalf("i18n.json needs strings for en and zh-TW; have %d and %d", len(en), len(zh))
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
		"origin.":          {"record", "entered", "derived"},
		"dataerror.":       {"forbidden", "unavailable", "scope", "unauthorized", "bad_response"},
		"tradeoff.zone.":   {"thrombotic", "equivalent", "bleeding"},
		"tradeoff.legend.": {"thrombotic", "equivalent", "bleeding"},
		"relaunch.reason.": {"missing", "expired", "malformed"},
		"error.phase.":     {"load", "whatif", "evaluate", "config"},
		"enum.":            {"none", "minor", "major", "female", "male"},
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
			t.Errorf("%s uses %q, which i18n.json lacks", where, k)
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
