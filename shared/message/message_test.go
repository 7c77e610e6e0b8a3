package message

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDefaultCatalogueParses(t *testing.T) {
	c, err := Parse(catalogJSON)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Keys()); n < 200 {
		t.Errorf("%d keys: the catalogue is incomplete", n)
	}
	if c.ETag() == "" || string(c.JSON()) != string(catalogJSON) {
		t.Error("the served catalogue must be the embedded file, with an ETag")
	}
}

func TestParseRefusesBrokenCatalogues(t *testing.T) {
	for _, tt := range []struct{ name, json, want string }{
		{"missing zh-TW key", `{"languages":{"en":"English","zh-TW":"中文"},"strings":{"en":{"a":"A","b":"B"},"zh-TW":{"a":"甲"}}}`, `zh-TW lacks "b"`},
		{"extra zh-TW key", `{"languages":{"en":"English","zh-TW":"中文"},"strings":{"en":{"a":"A"},"zh-TW":{"a":"甲","c":"丙"}}}`, `en lacks "c"`},
		{"placeholders", `{"languages":{"en":"English","zh-TW":"中文"},"strings":{"en":{"a":"{x} A"},"zh-TW":{"a":"{y}甲"}}}`, "placeholders differ"},
		{"ASCII comma", `{"languages":{"en":"English","zh-TW":"中文"},"strings":{"en":{"a":"A, B"},"zh-TW":{"a":"甲, 乙"}}}`, "Chinese punctuation"},
		{"ASCII colon after a placeholder", `{"languages":{"en":"English","zh-TW":"中文"},"strings":{"en":{"a":"{x}: B"},"zh-TW":{"a":"{x}: 乙"}}}`, "Chinese punctuation"},
		{"English config_text", `{"languages":{"en":"English","zh-TW":"中文"},"strings":{"en":{"a":"A"},"zh-TW":{"a":"甲"}},"config_text":{"en":{"x":"X"}}}`, "must not have en"},
		{"empty", `{"languages":{"en":"English","zh-TW":"中文"},"strings":{"en":{"a":" "},"zh-TW":{"a":"甲"}}}`, "is empty"},
		{"unknown field", `{"languages":{},"strings":{},"extra":1}`, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestASCIIPunctuation(t *testing.T) {
	for s, bad := range map[string]bool{
		"血紅素 {value} g/dL":                     false,
		"Urban 等人，JAMA Cardiol 2021;6:410-419": false,
		"單位 10*9/L":                            false,
		"於 08:30":                              false,
		"血紅素: 12":                              true,
		"血紅素 (Hb)":                             true,
		"甲, 乙":                                 true,
		"{a}; {b}":                             true,
	} {
		if got := ASCIIPunctuation(s) != ""; got != bad {
			t.Errorf("ASCIIPunctuation(%q) = %q, want a finding: %v", s, ASCIIPunctuation(s), bad)
		}
	}
}

func testCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := Parse([]byte(`{"languages":{"en":"English","zh-TW":"繁體中文"},
"strings":{
 "en":{"greet":"Hello {name}, {n} results on {d}.","list.separator":", ","list.last":" and ","list.series":"; ",
  "date.year":"{year}","date.month":"{month_name} {year}","date.day":"{day} {month_name} {year}","date.month.11":"Nov","date.month.5":"May",
  "wrap":"Note: {inner}","items":"Items: {list}.","series":"Seen: {s}."},
 "zh-TW":{"greet":"{name}您好，{d} 有 {n} 筆結果。","list.separator":"、","list.last":"及","list.series":"；",
  "date.year":"{year}年","date.month":"{year}年{month_name}","date.day":"{year}年{month_name}{day}日","date.month.11":"11月","date.month.5":"5月",
  "wrap":"注意：{inner}","items":"項目：{list}。","series":"所見：{s}。"}},
"config_text":{"zh-TW":{"criterion.hb":"血紅素 {min}–{max} g/dL"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSprint(t *testing.T) {
	c := testCatalog(t)
	en, zh := c.Printer(English), c.Printer(TraditionalChinese)
	m := New("greet", Args{"name": "Dr Lin", "n": 3, "d": Date("2026-11-30T08:30:00Z")})
	if got := en.Sprint(m); got != "Hello Dr Lin, 3 results on 30 Nov 2026." {
		t.Errorf("en: %q", got)
	}
	if got := zh.Sprint(m); got != "Dr Lin您好，2026年11月30日 有 3 筆結果。" {
		t.Errorf("zh-TW: %q", got)
	}
	for _, tt := range []struct {
		p    Printer
		m    Msg
		want string
	}{
		{en, New("wrap", Args{"inner": New("greet", Args{"name": "A", "n": Num{Value: 1.2345, Decimals: 2}, "d": Date("2026-05")})}), "Note: Hello A, 1.23 results on May 2026."},
		{zh, New("items", Args{"list": List{"Hb", "WBC", "eGFR"}}), "項目：Hb、WBC及eGFR。"},
		// A measured value keeps the decimals it is measured to; a plain
		// number drops trailing zeros.
		{en, New("items", Args{"list": List{Num{Value: 1.1, Decimals: 2, Fixed: true}, Num{Value: 82, Decimals: 1, Fixed: true}, Num{Value: 1.1, Decimals: 2}, Num{Value: -0.01, Decimals: 1, Fixed: true}}}), "Items: 1.10, 82.0, 1.1 and 0.0."},
		{en, New("items", Args{"list": List{"Hb", "WBC", "eGFR"}}), "Items: Hb, WBC and eGFR."},
		{en, New("items", Args{"list": List{"Hb"}}), "Items: Hb."},
		{zh, New("series", Args{"s": Series{"a, b", "c"}}), "所見：a, b；c。"},
		{en, New("greet", Args{"name": "A", "n": 2.50, "d": Date("2026")}), "Hello A, 2.5 results on 2026."},
		{en, Verbatim("Apixaban 5 MG Oral Tablet"), "Apixaban 5 MG Oral Tablet"},
		{zh, Config("criterion.hb", "Hemoglobin 11–12.9 g/dL", map[string]float64{"min": 11, "max": 12.9}), "血紅素 11–12.9 g/dL"},
		{zh, Config("criterion.other", "Other criterion", nil), "Other criterion"},
		// A missing key or argument shows, so that the API tests catch it.
		{en, New("no.such.key", nil), "no.such.key"},
		{en, New("greet", Args{"name": "A"}), "Hello A, {n} results on {d}."},
	} {
		if got := tt.p.Sprint(tt.m); got != tt.want {
			t.Errorf("%s %q: %q, want %q", tt.p.Lang(), tt.m.Key, got, tt.want)
		}
	}
}

func TestLocalizeReachesNestedMessages(t *testing.T) {
	c := testCatalog(t)
	type source struct {
		Label Msg `json:"label"`
	}
	type result struct {
		Title   Msg               `json:"title"`
		Sources []source          `json:"sources"`
		ByName  map[string]source `json:"by_name"`
		Ptr     *source           `json:"ptr"`
		Any     any               `json:"any"`
		Numbers []float64         `json:"numbers"`
	}
	m := New("items", Args{"list": List{"a", "b"}})
	r := &result{Title: m, Sources: []source{{m}}, ByName: map[string]source{"x": {m}}, Ptr: &source{m}, Any: &source{m}, Numbers: []float64{1}}
	c.Printer(TraditionalChinese).Localize(r)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"title":"項目：a及b。","sources":[{"label":"項目：a及b。"}],"by_name":{"x":{"label":"項目：a及b。"}},"ptr":{"label":"項目：a及b。"},"any":{"label":"項目：a及b。"},"numbers":[1]}`
	if string(b) != want {
		t.Errorf("localized JSON\n %s\nwant\n %s", b, want)
	}
	var back result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Title.String() != "項目：a及b。" || back.Sources[0].Label.String() != "項目：a及b。" {
		t.Errorf("decoded %q, %q", back.Title, back.Sources[0].Label)
	}
}

func TestNegotiate(t *testing.T) {
	for h, want := range map[string]Lang{
		"":                               English,
		"zh-TW":                          TraditionalChinese,
		"zh-tw,zh;q=0.9,en;q=0.8":        TraditionalChinese,
		"en-US,en;q=0.9,zh-TW;q=0.8":     English,
		"fr-FR, zh-Hant;q=0.5":           TraditionalChinese,
		"zh-CN":                          English,
		"zh-HK;q=0.9, en;q=0.9":          TraditionalChinese,
		"de, *;q=0.1":                    English,
		"zh;q=0":                         English,
		"zh-TW;q=bogus, en":              English,
		"en;q=0.2, zh-Hant-TW;q=0.7":     TraditionalChinese,
		strings.Repeat("x,", 200) + "zh": TraditionalChinese,
	} {
		if got := Negotiate(h); got != want {
			t.Errorf("Negotiate(%.40q) = %s, want %s", h, got, want)
		}
	}
}

// TestZhTWNamesTheEHROneWay holds the Traditional Chinese catalogue to its
// one term for the EHR, 電子病歷系統 (introduced once as
// 電子病歷系統（EHR）): never the bare English abbreviation.
func TestZhTWNamesTheEHROneWay(t *testing.T) {
	c, err := Parse(catalogJSON)
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for _, k := range c.Keys() {
		texts[k] = c.Text(TraditionalChinese, k)
	}
	for _, k := range c.ConfigKeys(TraditionalChinese) {
		texts["config_text."+k] = c.ConfigText(TraditionalChinese, k)
	}
	for k, s := range texts {
		if strings.Contains(strings.ReplaceAll(s, "電子病歷系統（EHR）", ""), "EHR") {
			t.Errorf("zh-TW %s says EHR where the catalogue says 電子病歷系統: %q", k, s)
		}
	}
}
