package message

import (
	"reflect"
	"strconv"
	"strings"
)

var msgType = reflect.TypeFor[Msg]()

// Localize writes, in the printer's language, the text of every Msg that v
// (a pointer) reaches through struct fields, pointers, slices, arrays, maps
// and interfaces: one pass over an answer before it is encoded, so that no
// sentence of a nested result, source or gap stays in another language.
func (p Printer) Localize(v any) {
	p.walk(reflect.ValueOf(v), map[uintptr]bool{})
}

func (p Printer) walk(v reflect.Value, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		p.walk(v.Elem(), seen)
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		if e.Kind() == reflect.Pointer {
			p.walk(e, seen)
		}
	case reflect.Struct:
		if v.Type() == msgType {
			if v.CanAddr() {
				m := v.Addr().Interface().(*Msg)
				m.text = p.Sprint(*m)
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				p.walk(v.Field(i), seen)
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		fallthrough
	case reflect.Array:
		if !holdsMsg(v.Type().Elem(), map[reflect.Type]bool{}) {
			return
		}
		for i := range v.Len() {
			p.walk(v.Index(i), seen)
		}
	case reflect.Map:
		if v.IsNil() || !holdsMsg(v.Type().Elem(), map[reflect.Type]bool{}) {
			return
		}
		iter := v.MapRange()
		for iter.Next() {
			val := iter.Value()
			if val.Kind() == reflect.Pointer {
				p.walk(val, seen)
				continue
			}
			cp := reflect.New(val.Type()).Elem()
			cp.Set(val)
			p.walk(cp, seen)
			v.SetMapIndex(iter.Key(), cp)
		}
	}
}

// holdsMsg reports whether values of t can hold a Msg, so that the walk
// skips slices of numbers and maps of strings.
func holdsMsg(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		if t == msgType {
			return true
		}
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && holdsMsg(f.Type, seen) {
				return true
			}
		}
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return holdsMsg(t.Elem(), seen)
	case reflect.Interface:
		return true
	}
	return false
}

// Negotiate picks the language of an Accept-Language header (RFC 9110
// §12.5.4): the supported language the reader weights highest; English
// when none is supported. Chinese in Traditional script or as written in
// Taiwan, Hong Kong or Macao, and plain "zh", are Traditional Chinese;
// Simplified Chinese is not offered, so it falls to English.
func Negotiate(header string) Lang {
	best, bestQ := English, -1.0
	for i, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		if tag == "" {
			continue
		}
		q := 1.0
		for _, prm := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(prm), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		l, ok := langOf(tag)
		if !ok || q <= 0 {
			continue
		}
		// Earlier items win ties: q - i·ε keeps the header's order.
		if w := q - float64(i)*1e-6; w > bestQ {
			best, bestQ = l, w
		}
	}
	return best
}

// langOf maps a lower-cased language tag to a supported language.
func langOf(tag string) (Lang, bool) {
	switch {
	case tag == "*", tag == "en", strings.HasPrefix(tag, "en-"):
		return English, true
	case tag == "zh", tag == "zh-tw", tag == "zh-hk", tag == "zh-mo", strings.HasPrefix(tag, "zh-hant"):
		return TraditionalChinese, true
	}
	return "", false
}
