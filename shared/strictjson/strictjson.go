// Package strictjson decodes the JSON documents the functions read at
// start-up (the scoring configuration, the message catalogue) strictly and
// in one pass.
//
// Unmarshal decodes as encoding/json's Decoder with DisallowUnknownFields
// does, followed by a check that nothing but white space follows the
// document, with the same results and errors. encoding/json scans each
// value before decoding it, and scans it again for every json.Unmarshaler
// below it, which made decoding the ~300 KB scoring configuration most of
// a cold start; Unmarshal reads each byte once, and a type whose document
// form differs from its Go form decodes itself from the same stream
// (Unmarshaler) instead of from a copy.
//
// It decodes what those documents hold: structs with json tags,
// string-keyed maps, slices, pointers, strings, numbers, booleans, and
// types implementing Unmarshaler or json.Unmarshaler; another type is an
// error. As with encoding/json, keys match a field's name exactly or else
// case-insensitively, an unknown key is an error, null leaves a value as it
// is (and sets a pointer, slice or map to nil), a repeated key decodes
// again, and invalid UTF-8 or a lone surrogate in a string becomes U+FFFD.
// Errors are encoding/json's: a *json.SyntaxError in encoding/json's own
// words, wherever in the document it is; else the first in document order
// of a *json.UnmarshalTypeError naming the field, `json: unknown field
// "name"`, or an Unmarshaler's error.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Unmarshaler is a type that decodes itself from the document: its method
// reads exactly one value, with d's Decode and PeekString.
type Unmarshaler interface {
	UnmarshalStrictJSON(d *Decoder) error
}

// Unmarshal decodes the JSON document b into v, a non-nil pointer.
func Unmarshal(b []byte, v any) error { return unmarshal(b, v, false) }

// UnmarshalShared is Unmarshal for a document that outlives v and is never
// modified, such as an embedded file: the strings decoded share b's memory
// (those with escapes or invalid UTF-8 excepted) instead of being copied
// onto the heap.
func UnmarshalShared(b []byte, v any) error { return unmarshal(b, v, true) }

func unmarshal(b []byte, v any, shared bool) error {
	d := Decoder{data: b, shared: shared}
	err := d.Decode(v)
	if err == nil {
		d.skipSpace()
		if d.off < len(d.data) {
			return errTrailing
		}
		return nil
	}
	// A syntax error anywhere in the document is the error, as with
	// encoding/json (which scans the whole value before decoding it), in
	// encoding/json's words.
	var raw json.RawMessage
	if serr := json.NewDecoder(bytes.NewReader(b)).Decode(&raw); serr != nil {
		return serr
	}
	if err == errSyntax {
		// encoding/json accepts what this decoder refused: a defect
		// here, reported rather than hidden.
		return fmt.Errorf("strictjson: syntax error at offset %d that encoding/json accepts", d.off)
	}
	return err
}

var (
	// errSyntax stands for a syntax error until Unmarshal asks
	// encoding/json for its wording.
	errSyntax   = errors.New("strictjson: syntax error")
	errTrailing = errors.New("unexpected data after the JSON document")
)

// Decoder reads one document; an Unmarshaler reads its value with it.
type Decoder struct {
	data   []byte
	off    int
	shared bool // strings may share data's memory
	// structName and path are the innermost struct's type name and the
	// JSON field names from the document's root, for type errors.
	structName string
	path       []string
}

// Decode decodes the next value of the document into v, a non-nil
// pointer.
func (d *Decoder) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictjson: decode into %T: want a non-nil pointer", v)
	}
	p, err := planFor(rv.Type().Elem())
	if err != nil {
		return err
	}
	d.skipSpace()
	return p.decode(d, rv.Elem())
}

// PeekString reports whether the next value is a string.
func (d *Decoder) PeekString() bool {
	d.skipSpace()
	return d.peek() == '"'
}

// plan decodes the value at d.off into a value of one type.
type plan struct {
	decode func(d *Decoder, v reflect.Value) error
}

var (
	plans   sync.Map   // reflect.Type => *plan, complete
	buildMu sync.Mutex // held while building plans
)

func planFor(t reflect.Type) (*plan, error) {
	if p, ok := plans.Load(t); ok {
		return p.(*plan), nil
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	building := map[reflect.Type]*plan{}
	p, err := build(t, building)
	if err != nil {
		return nil, err
	}
	for t, p := range building {
		plans.Store(t, p)
	}
	return p, nil
}

// build makes the plan of t and of the types below it. building holds the
// plans being built, so that a type that contains itself refers to its own
// plan.
func build(t reflect.Type, building map[reflect.Type]*plan) (*plan, error) {
	if p, ok := plans.Load(t); ok {
		return p.(*plan), nil
	}
	if p, ok := building[t]; ok {
		return p, nil
	}
	p := &plan{}
	building[t] = p
	elem := func() (*plan, error) { return build(t.Elem(), building) }
	switch pt := reflect.PointerTo(t); {
	case pt.Implements(unmarshalerType):
		p.decode = decodeUnmarshaler
		return p, nil
	case pt.Implements(jsonUnmarshalerType):
		p.decode = decodeJSONUnmarshaler
		return p, nil
	}
	switch t.Kind() {
	case reflect.String:
		p.decode = decodeString
	case reflect.Bool:
		p.decode = decodeBool
	case reflect.Float64, reflect.Float32:
		p.decode = decodeFloat
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.decode = decodeInt
	case reflect.Pointer:
		e, err := elem()
		if err != nil {
			return nil, err
		}
		p.decode = func(d *Decoder, v reflect.Value) error { return decodePointer(d, v, e) }
	case reflect.Slice:
		e, err := elem()
		if err != nil {
			return nil, err
		}
		p.decode = func(d *Decoder, v reflect.Value) error { return decodeSlice(d, v, e) }
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("strictjson: cannot decode into %s: map keys must be strings", t)
		}
		e, err := elem()
		if err != nil {
			return nil, err
		}
		p.decode = func(d *Decoder, v reflect.Value) error { return decodeMap(d, v, e) }
	case reflect.Struct:
		s, err := buildStruct(t, building)
		if err != nil {
			return nil, err
		}
		p.decode = s.decode
	default:
		return nil, fmt.Errorf("strictjson: cannot decode into %s", t)
	}
	return p, nil
}

var (
	unmarshalerType     = reflect.TypeFor[Unmarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// structPlan decodes objects into one struct type.
type structPlan struct {
	name   string // the type's name, for type errors
	fields []field
}

// field is a struct field the document may name.
type field struct {
	name  string // its JSON key
	index int
	plan  *plan
}

func buildStruct(t reflect.Type, building map[reflect.Type]*plan) (*structPlan, error) {
	s := &structPlan{name: t.Name()}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil, fmt.Errorf("strictjson: cannot decode into %s: embedded field %s", t, f.Name)
		}
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts != "" && opts != "omitempty" {
			return nil, fmt.Errorf("strictjson: cannot decode into %s: option %q of field %s", t, opts, f.Name)
		}
		if name == "" {
			name = f.Name
		}
		p, err := build(f.Type, building)
		if err != nil {
			return nil, err
		}
		s.fields = append(s.fields, field{name: name, index: i, plan: p})
	}
	return s, nil
}

// field finds the field a key names: its exact name, else the first
// whose name matches it case-insensitively.
func (s *structPlan) field(key []byte) *field {
	for i := range s.fields {
		if string(key) == s.fields[i].name {
			return &s.fields[i]
		}
	}
	for i := range s.fields {
		if bytes.EqualFold(key, []byte(s.fields[i].name)) {
			return &s.fields[i]
		}
	}
	return nil
}

func (s *structPlan) decode(d *Decoder, v reflect.Value) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '{':
	default:
		return d.typeError(v.Type())
	}
	d.off++
	outer, depth := d.structName, len(d.path)
	defer func() { d.structName, d.path = outer, d.path[:depth] }()
	d.skipSpace()
	if d.peek() == '}' {
		d.off++
		return nil
	}
	for {
		d.skipSpace()
		key, _, err := d.key()
		if err != nil {
			return err
		}
		f := s.field(key)
		if f == nil {
			return fmt.Errorf("json: unknown field %q", key)
		}
		d.structName, d.path = s.name, append(d.path[:depth], f.name)
		d.skipSpace()
		if err := f.plan.decode(d, v.Field(f.index)); err != nil {
			return err
		}
		if done, err := d.next('}'); done || err != nil {
			return err
		}
	}
}

// key reads an object key and its colon. The key is a slice of the
// document (inDoc) unless it has escapes.
func (d *Decoder) key() (key []byte, inDoc bool, err error) {
	if d.peek() != '"' {
		return nil, false, errSyntax
	}
	key, inDoc, err = d.stringBytes()
	if err != nil {
		return nil, false, err
	}
	d.skipSpace()
	if d.peek() != ':' {
		return nil, false, errSyntax
	}
	d.off++
	return key, inDoc, nil
}

// next reads what follows a member or an element: a comma (done false) or
// end (done true).
func (d *Decoder) next(end byte) (done bool, err error) {
	d.skipSpace()
	switch d.peek() {
	case ',':
		d.off++
		return false, nil
	case end:
		d.off++
		return true, nil
	}
	return false, errSyntax
}

func decodeString(d *Decoder, v reflect.Value) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		v.SetString(s)
		return nil
	}
	return d.typeError(v.Type())
}

func decodeBool(d *Decoder, v reflect.Value) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case 't':
		if err := d.literal("true"); err != nil {
			return err
		}
		v.SetBool(true)
		return nil
	case 'f':
		if err := d.literal("false"); err != nil {
			return err
		}
		v.SetBool(false)
		return nil
	}
	return d.typeError(v.Type())
}

func decodeFloat(d *Decoder, v reflect.Value) error {
	if c := d.peek(); c == 'n' {
		return d.literal("null")
	} else if c != '-' && (c < '0' || c > '9') {
		return d.typeError(v.Type())
	}
	start := d.off
	num, err := d.number()
	if err != nil {
		return err
	}
	x, err := strconv.ParseFloat(string(num), v.Type().Bits())
	if err != nil {
		return d.typeErrorAt(v.Type(), "number "+string(num), start)
	}
	v.SetFloat(x)
	return nil
}

func decodeInt(d *Decoder, v reflect.Value) error {
	if c := d.peek(); c == 'n' {
		return d.literal("null")
	} else if c != '-' && (c < '0' || c > '9') {
		return d.typeError(v.Type())
	}
	start := d.off
	num, err := d.number()
	if err != nil {
		return err
	}
	x, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || v.OverflowInt(x) {
		return d.typeErrorAt(v.Type(), "number "+string(num), start)
	}
	v.SetInt(x)
	return nil
}

func decodePointer(d *Decoder, v reflect.Value, elem *plan) error {
	if d.peek() == 'n' {
		if err := d.literal("null"); err != nil {
			return err
		}
		v.SetZero()
		return nil
	}
	if v.IsNil() {
		v.Set(reflect.New(v.Type().Elem()))
	}
	return elem.decode(d, v.Elem())
}

// open reads the start of an array or object into v: null sets v to its
// zero value (null is true), the opening byte is stepped over, anything
// else is a type error.
func (d *Decoder) open(v reflect.Value, opening byte) (null bool, err error) {
	switch d.peek() {
	case 'n':
		if err := d.literal("null"); err != nil {
			return false, err
		}
		v.SetZero()
		return true, nil
	case opening:
		d.off++
		return false, nil
	}
	return false, d.typeError(v.Type())
}

func decodeSlice(d *Decoder, v reflect.Value, elem *plan) error {
	if null, err := d.open(v, '['); null || err != nil {
		return err
	}
	d.skipSpace()
	if d.peek() == ']' {
		d.off++
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		return nil
	}
	// As with encoding/json, elements decode into those the slice has, and
	// the slice is cut to the array's length.
	for i := 0; ; i++ {
		if i >= v.Cap() {
			v.Grow(max(4, i))
		}
		if i >= v.Len() {
			v.SetLen(i + 1)
		}
		d.skipSpace()
		if err := elem.decode(d, v.Index(i)); err != nil {
			return err
		}
		done, err := d.next(']')
		if err != nil {
			return err
		}
		if done {
			v.SetLen(i + 1)
			return nil
		}
	}
}

func decodeMap(d *Decoder, v reflect.Value, elem *plan) error {
	if null, err := d.open(v, '{'); null || err != nil {
		return err
	}
	t := v.Type()
	d.skipSpace()
	if v.IsNil() {
		// Sized at once: growing it member by member would leave the
		// smaller tables behind as garbage. (Arrays are not counted
		// first: their elements' arrays would be counted again at each
		// level, for less garbage saved.)
		v.Set(reflect.MakeMapWithSize(t, d.count()))
	}
	if d.peek() == '}' {
		d.off++
		return nil
	}
	// As with encoding/json, each value decodes into a zero value, which
	// then replaces the map's.
	e := reflect.New(t.Elem()).Elem()
	k := reflect.New(t.Key()).Elem()
	for {
		d.skipSpace()
		key, inDoc, err := d.key()
		if err != nil {
			return err
		}
		k.SetString(d.toString(key, inDoc))
		e.SetZero()
		d.skipSpace()
		if err := elem.decode(d, e); err != nil {
			return err
		}
		v.SetMapIndex(k, e)
		if done, err := d.next('}'); done || err != nil {
			return err
		}
	}
}

// count counts the members or elements of the object or array whose first
// member or element is at d.off (after its opening bracket and any space).
// It only looks for brackets, commas and strings, so it is quick; on a
// malformed document it may miscount, which only costs an allocation: the
// decoding that follows finds the error.
func (d *Decoder) count() int {
	b := d.data[d.off:]
	commas, depth, empty := 0, 0, true
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			// To the closing quote: the next quote not escaped by an
			// odd number of backslashes.
			for {
				q := bytes.IndexByte(b[i+1:], '"')
				if q < 0 {
					return 0
				}
				i += 1 + q
				bs := 0
				for bs < i && b[i-1-bs] == '\\' {
					bs++
				}
				if bs%2 == 0 {
					break
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				if empty {
					return 0
				}
				return commas + 1
			}
			depth--
		case ',':
			if depth == 0 {
				commas++
			}
		case ' ', '\t', '\n', '\r':
			continue
		}
		empty = false
	}
	return 0
}

func decodeUnmarshaler(d *Decoder, v reflect.Value) error {
	return v.Addr().Interface().(Unmarshaler).UnmarshalStrictJSON(d)
}

// decodeJSONUnmarshaler hands a json.Unmarshaler its value's bytes, as
// encoding/json does (null included).
func decodeJSONUnmarshaler(d *Decoder, v reflect.Value) error {
	start := d.off
	if err := d.skipValue(); err != nil {
		return err
	}
	return v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(d.data[start:d.off])
}

func (d *Decoder) literal(s string) error {
	if !bytes.HasPrefix(d.data[d.off:], []byte(s)) {
		return errSyntax
	}
	d.off += len(s)
	return nil
}

func (d *Decoder) peek() byte {
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

func (d *Decoder) skipSpace() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// typeError reports the value at d.off, once read past, as not decodable
// into t.
func (d *Decoder) typeError(t reflect.Type) error {
	start := d.off
	var kind string
	switch d.peek() {
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	case '"':
		kind = "string"
	case 't', 'f':
		kind = "bool"
	default:
		kind = "number"
	}
	if err := d.skipValue(); err != nil {
		return err
	}
	return d.typeErrorAt(t, kind, start)
}

func (d *Decoder) typeErrorAt(t reflect.Type, value string, offset int) error {
	e := &json.UnmarshalTypeError{Value: value, Type: t, Offset: int64(offset)}
	if d.structName != "" || len(d.path) > 0 {
		e.Struct, e.Field = d.structName, strings.Join(d.path, ".")
	}
	return e
}

// skipValue reads past one well-formed value.
func (d *Decoder) skipValue() error {
	switch c := d.peek(); c {
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		d.off++
		d.skipSpace()
		if d.peek() == end {
			d.off++
			return nil
		}
		for {
			d.skipSpace()
			if c == '{' {
				if _, _, err := d.key(); err != nil {
					return err
				}
				d.skipSpace()
			}
			if err := d.skipValue(); err != nil {
				return err
			}
			if done, err := d.next(end); done || err != nil {
				return err
			}
		}
	case '"':
		_, _, err := d.stringBytes()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	_, err := d.number()
	return err
}

// number reads a JSON number.
func (d *Decoder) number() ([]byte, error) {
	b, i := d.data, d.off
	digits := func() bool {
		from := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > from
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return nil, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, errSyntax
		}
	}
	num := b[d.off:i]
	d.off = i
	return num, nil
}

// str reads the string at d.off.
func (d *Decoder) str() (string, error) {
	b, inDoc, err := d.stringBytes()
	if err != nil {
		return "", err
	}
	return d.toString(b, inDoc), nil
}

// toString returns b, read by stringBytes, as a string: sharing the
// document's memory when b is a slice of a shared document, and the memory
// unquote allocated for it (which nothing else refers to) when it is not a
// slice of the document.
func (d *Decoder) toString(b []byte, inDoc bool) string {
	if len(b) > 0 && (!inDoc || d.shared) {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

// stringBytes reads the string at d.off and returns its value: a slice of
// the document (inDoc) unless it has escapes or invalid UTF-8.
func (d *Decoder) stringBytes() (s []byte, inDoc bool, err error) {
	b := d.data
	for i := d.off + 1; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			s := b[d.off+1 : i]
			d.off = i + 1
			return s, true, nil
		case c == '\\':
			s, err := d.unquote()
			return s, false, err
		case c < ' ':
			return nil, false, errSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				s, err := d.unquote()
				return s, false, err
			}
			i += size
		}
	}
	return nil, false, errSyntax
}

// unquote decodes the string at d.off as encoding/json does: escapes
// resolved, invalid UTF-8 and lone surrogates as U+FFFD. It returns a new
// slice, which only the caller refers to.
func (d *Decoder) unquote() ([]byte, error) {
	b := d.data
	// The value is at most as long as its source (a lone invalid byte,
	// one byte long, becomes U+FFFD, three): the source's length, plus
	// room for those.
	end, invalid := d.off+1, 0
	for end < len(b) && b[end] != '"' {
		switch {
		case b[end] == '\\':
			end++
		case b[end] >= utf8.RuneSelf:
			if r, size := utf8.DecodeRune(b[end:]); r == utf8.RuneError && size == 1 {
				invalid++
			}
		}
		end++
	}
	out := make([]byte, 0, max(0, end-d.off-1)+2*invalid)
	for i := d.off + 1; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			d.off = i + 1
			return out, nil
		case c < ' ':
			return nil, errSyntax
		case c == '\\':
			if i+1 >= len(b) {
				return nil, errSyntax
			}
			switch e := b[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok {
					return nil, errSyntax
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if r2, ok := hex4(b[i+2:]); ok {
							if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
								out = utf8.AppendRune(out, pair)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, errSyntax
			}
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	return nil, errSyntax
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
