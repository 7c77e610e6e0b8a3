package message

import (
	"regexp"
	"slices"
	"testing"
)

// placeholderRE is the placeholder's definition; Placeholders and Fill
// must find what it finds.
var placeholderRE = regexp.MustCompile(`\{(\w+)\}`)

var placeholderTexts = []string{
	"",
	"no placeholders",
	"{a}",
	"{input} is {value} {unit}.",
	"{{a}}",
	"{a{b}}",
	"{}",
	"{ a}",
	"{a-b} {a_b} {A9}",
	"{a}{b}{a}",
	"{unclosed",
	"closed}",
	"{中文}",
	"中文{x}，{y_2}。",
	"{a}\n{b}",
	"{a}}",
	"{{",
	"}{a}{",
}

func TestPlaceholdersAsRegexp(t *testing.T) {
	for _, s := range placeholderTexts {
		var want []string
		for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
			want = append(want, m[1])
		}
		if got := Placeholders(s); !slices.Equal(got, want) {
			t.Errorf("Placeholders(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestFillAsRegexp(t *testing.T) {
	values := map[string]string{"a": "A", "input": "Hb", "value": "{b}", "y_2": "二"}
	for _, s := range placeholderTexts {
		want := placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := values[m[1:len(m)-1]]; ok {
				return v
			}
			return m
		})
		got := Fill(s, func(name string) (string, bool) {
			v, ok := values[name]
			return v, ok
		})
		if got != want {
			t.Errorf("Fill(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzPlaceholders(f *testing.F) {
	for _, s := range placeholderTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
			want = append(want, m[1])
		}
		if got := Placeholders(s); !slices.Equal(got, want) {
			t.Errorf("Placeholders(%q) = %q, want %q", s, got, want)
		}
		fill := func(name string) (string, bool) { return "<" + name + ">", len(name)%2 == 0 }
		want2 := placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := fill(m[1 : len(m)-1]); ok {
				return v
			}
			return m
		})
		if got := Fill(s, fill); got != want2 {
			t.Errorf("Fill(%q) = %q, want %q", s, got, want2)
		}
	})
}

func TestSamePlaceholders(t *testing.T) {
	for _, a := range placeholderTexts {
		for _, b := range placeholderTexts {
			if got, want := samePlaceholders(a, b), placeholderSet(a) == placeholderSet(b); got != want {
				t.Errorf("samePlaceholders(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}
