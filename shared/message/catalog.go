package message

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/smartcalc-app/smartcalc/shared/strictjson"
)

//go:embed messages.json
var catalogJSON []byte

// Lang is a language SMART Calc writes in, as a BCP 47 tag.
type Lang string

// The languages, English first (the default).
const (
	English            Lang = "en"
	TraditionalChinese Lang = "zh-TW"
)

// Langs lists the languages, the default first.
var Langs = []Lang{English, TraditionalChinese}

// ParseLang returns the language a tag names exactly ("en", "zh-TW"), as a
// setting gives it.
func ParseLang(s string) (Lang, bool) {
	for _, l := range Langs {
		if strings.EqualFold(strings.TrimSpace(s), string(l)) {
			return l, true
		}
	}
	return "", false
}

// Catalog is a parsed message catalogue. It is immutable.
type Catalog struct {
	strings map[Lang]map[string]string
	config  map[Lang]map[string]string
	raw     []byte
	etag    func() string
}

// catalogFile is the shape of messages.json.
type catalogFile struct {
	Comment    string                       `json:"_comment"`
	Languages  map[string]string            `json:"languages"`
	Strings    map[string]map[string]string `json:"strings"`
	ConfigText map[string]map[string]string `json:"config_text"`
}

// Parse reads a catalogue and checks it: every language of Langs has the
// same keys with the same placeholders, no text is empty, and the zh-TW
// texts use Chinese punctuation. The catalogue keeps data, which it serves
// (JSON) and its texts share: data must not change afterwards.
func Parse(data []byte) (*Catalog, error) {
	var f catalogFile
	if err := strictjson.UnmarshalShared(data, &f); err != nil {
		return nil, fmt.Errorf("message: catalogue: %w", err)
	}
	c := &Catalog{strings: map[Lang]map[string]string{}, config: map[Lang]map[string]string{}, raw: data}
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	for _, l := range Langs {
		if f.Languages[string(l)] == "" {
			fail("languages lacks %s", l)
		}
		c.strings[l] = f.Strings[string(l)]
		if len(c.strings[l]) == 0 {
			fail("strings lacks %s", l)
		}
		c.config[l] = f.ConfigText[string(l)]
	}
	for k := range f.Strings {
		if _, ok := ParseLang(k); !ok {
			fail("strings has %q, which is not a language SMART Calc writes", k)
		}
	}
	if _, ok := f.ConfigText[string(English)]; ok {
		fail("config_text must not have en: English comes from the scoring configuration")
	}
	// The errors are sorted at the end, so the checks go through the maps
	// in any order.
	en := c.strings[English]
	for _, l := range Langs[1:] {
		for k, text := range en {
			tr, ok := c.strings[l][k]
			switch {
			case !ok:
				fail("%s lacks %q", l, k)
			case !samePlaceholders(text, tr):
				fail("%q: placeholders differ: en {%s}, %s {%s}", k, placeholderSet(text), l, placeholderSet(tr))
			}
		}
		for k := range c.strings[l] {
			if _, ok := en[k]; !ok {
				fail("en lacks %q", k)
			}
		}
	}
	for _, l := range Langs {
		for k, v := range c.strings[l] {
			if strings.TrimSpace(v) == "" {
				fail("strings[%s][%q] is empty", l, k)
			}
		}
		for k, v := range c.config[l] {
			if strings.TrimSpace(v) == "" {
				fail("config_text[%s][%q] is empty", l, k)
			}
		}
	}
	for _, m := range []map[string]string{c.strings[TraditionalChinese], c.config[TraditionalChinese]} {
		for k, text := range m {
			if p := ASCIIPunctuation(text); p != "" {
				fail("zh-TW %q: %s: use Chinese punctuation (，：；。（）！？)", k, p)
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("message: catalogue: %s", strings.Join(errs, "; "))
	}
	// Hashed on first use: only GET /messages.json needs it.
	c.etag = sync.OnceValue(func() string {
		sum := sha256.Sum256(data)
		return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	})
	return c, nil
}

// Default returns the embedded catalogue. A broken catalogue is a build
// defect, caught by this package's tests: Default panics on it.
var Default = sync.OnceValue(func() *Catalog {
	c, err := Parse(catalogJSON)
	if err != nil {
		panic(err)
	}
	return c
})

// JSON returns the catalogue as served to the browser.
func (c *Catalog) JSON() []byte { return c.raw }

// ETag is a strong validator of JSON.
func (c *Catalog) ETag() string { return c.etag() }

// Has reports whether key is a message of the catalogue.
func (c *Catalog) Has(key string) bool {
	_, ok := c.strings[English][key]
	return ok
}

// Keys lists the message keys.
func (c *Catalog) Keys() []string { return sortedKeys(c.strings[English]) }

// Text returns the template of key in l, or "" when there is none.
func (c *Catalog) Text(l Lang, key string) string { return c.strings[l][key] }

// ConfigText returns the translation in l of a configuration text, or ""
// when there is none (English has none: it is the configuration's own).
func (c *Catalog) ConfigText(l Lang, key string) string { return c.config[l][key] }

// ConfigKeys lists the configuration texts translated into l.
func (c *Catalog) ConfigKeys(l Lang) []string { return sortedKeys(c.config[l]) }

// asciiPunct are the ASCII marks that Chinese text writes full width.
const asciiPunct = ",;:!?()"

// ASCIIPunctuation returns the first ASCII punctuation mark of a zh-TW text
// that stands in Chinese text (next to a Han character or a placeholder,
// spaces aside), with its context; "" when there is none. Marks inside
// Latin runs (a citation's "2021;6:410", "10*9/L", a clock time) are left.
func ASCIIPunctuation(s string) string {
	if !strings.ContainsAny(s, asciiPunct) {
		return ""
	}
	r := []rune(s)
	// A placeholder stands for words of the text's language; other
	// braces (a JSON example) do not.
	inPlaceholder := make([]bool, len(r))
	for from := 0; ; {
		start, end, ok := nextPlaceholder(s, from)
		if !ok {
			break
		}
		lo, hi := utf8.RuneCountInString(s[:start]), utf8.RuneCountInString(s[:end])
		for i := lo; i < hi; i++ {
			inPlaceholder[i] = true
		}
		from = end
	}
	chinese := func(i, step int) bool {
		for ; i >= 0 && i < len(r); i += step {
			switch {
			case r[i] == ' ':
				continue
			case inPlaceholder[i]:
				return true
			}
			return isHan(r[i]) || (r[i] >= 0x3000 && r[i] <= 0x303f) || (r[i] >= 0xff00 && r[i] <= 0xffef)
		}
		return true // the start or end of the text
	}
	for i, x := range r {
		if x >= utf8.RuneSelf || strings.IndexByte(asciiPunct, byte(x)) < 0 {
			continue
		}
		if chinese(i-1, -1) || chinese(i+1, 1) {
			lo, hi := max(0, i-6), min(len(r), i+7)
			return fmt.Sprintf("%q in …%s…", string(x), string(r[lo:hi]))
		}
	}
	return ""
}

func isHan(x rune) bool {
	return (x >= 0x4e00 && x <= 0x9fff) || (x >= 0x3400 && x <= 0x4dbf) || (x >= 0xf900 && x <= 0xfaff)
}

// samePlaceholders reports whether a and b name the same placeholders
// (placeholderSet(a) == placeholderSet(b)), without building the sets.
func samePlaceholders(a, b string) bool {
	return placeholdersIn(a, b) && placeholdersIn(b, a)
}

// placeholdersIn reports whether every placeholder of a is one of b's.
func placeholdersIn(a, b string) bool {
	for from := 0; ; {
		start, end, ok := nextPlaceholder(a, from)
		if !ok {
			return true
		}
		if !hasPlaceholder(b, a[start:end]) {
			return false
		}
		from = end
	}
}

// hasPlaceholder reports whether s has the placeholder ph ("{name}").
func hasPlaceholder(s, ph string) bool {
	for from := 0; ; {
		start, end, ok := nextPlaceholder(s, from)
		if !ok {
			return false
		}
		if s[start:end] == ph {
			return true
		}
		from = end
	}
}

func placeholderSet(s string) string {
	var out []string
	for _, name := range Placeholders(s) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
