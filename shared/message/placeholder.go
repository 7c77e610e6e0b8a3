package message

import "strings"

// A placeholder is {name}, name one or more ASCII letters, digits or
// underscores (the regular expression \{(\w+)\}). Catalogue texts and the
// scoring configuration's texts use the same placeholders; these functions
// find them without a regular expression, since every sentence written and
// every start-up check goes through them.

// nextPlaceholder finds the first placeholder of s at or after from: its
// start and end (s[start:end] is "{name}"), or ok false.
func nextPlaceholder(s string, from int) (start, end int, ok bool) {
	for {
		i := strings.IndexByte(s[from:], '{')
		if i < 0 {
			return 0, 0, false
		}
		start = from + i
		j := start + 1
		for j < len(s) && isWordByte(s[j]) {
			j++
		}
		if j > start+1 && j < len(s) && s[j] == '}' {
			return start, j + 1, true
		}
		from = start + 1
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// Placeholders returns the names of tmpl's placeholders, in order, each as
// often as it appears.
func Placeholders(tmpl string) []string {
	var names []string
	for from := 0; ; {
		start, end, ok := nextPlaceholder(tmpl, from)
		if !ok {
			return names
		}
		names = append(names, tmpl[start+1:end-1])
		from = end
	}
}

// Fill replaces each placeholder of tmpl for which value gives a text, and
// leaves the others as they are.
func Fill(tmpl string, value func(name string) (string, bool)) string {
	start, end, ok := nextPlaceholder(tmpl, 0)
	if !ok {
		return tmpl
	}
	var b strings.Builder
	b.Grow(len(tmpl) + 16)
	last := 0
	for ok {
		b.WriteString(tmpl[last:start])
		if v, has := value(tmpl[start+1 : end-1]); has {
			b.WriteString(v)
		} else {
			b.WriteString(tmpl[start:end])
		}
		last = end
		start, end, ok = nextPlaceholder(tmpl, end)
	}
	b.WriteString(tmpl[last:])
	return b.String()
}
