package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// doc is a document type with every kind Unmarshal decodes.
type doc struct {
	Name     string             `json:"name"`
	Count    int                `json:"count,omitempty"`
	Small    int8               `json:"small"`
	Ratio    float64            `json:"ratio"`
	Ratio32  float32            `json:"ratio32"`
	On       bool               `json:"on"`
	Opt      *float64           `json:"opt"`
	OptInt   *int               `json:"opt_int"`
	OptBool  *bool              `json:"opt_bool"`
	Tags     []string           `json:"tags"`
	Nums     map[string]float64 `json:"nums"`
	Items    []item             `json:"items"`
	ByName   map[string]item    `json:"by_name"`
	Deep     map[string][]item  `json:"deep"`
	Next     *doc               `json:"next"`
	Raw      json.RawMessage    `json:"raw"`
	Untagged string
	Skipped  string `json:"-"`
	hidden   string
}

type item struct {
	ID   string   `json:"id"`
	Vals []string `json:"vals"`
	Sub  *item    `json:"sub"`
	Mark named    `json:"mark"`
}

type named string

// reference decodes as the scoring configuration did before Unmarshal:
// encoding/json's Decoder with DisallowUnknownFields, then nothing but
// white space.
func reference(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON document")
	}
	return nil
}

// same checks that Unmarshal and reference agree on b: the same value, or
// the same error.
func same(t *testing.T, b []byte) {
	t.Helper()
	sameAs(t, b, Unmarshal)
	sameAs(t, append([]byte(nil), b...), UnmarshalShared)
}

func sameAs(t *testing.T, b []byte, unmarshal func([]byte, any) error) {
	t.Helper()
	var got, want doc
	gotErr := unmarshal(b, &got)
	wantErr := reference(b, &want)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%q: Unmarshal error %v, encoding/json error %v", b, gotErr, wantErr)
	case gotErr != nil:
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("%q: Unmarshal error %q, encoding/json error %q", b, gotErr, wantErr)
		}
	case !reflect.DeepEqual(got, want):
		t.Fatalf("%q: Unmarshal gave\n%+v\nencoding/json gave\n%+v", b, got, want)
	}
}

var documents = []string{
	`{}`,
	` {"name": "a"} `,
	`{"name": "a", "count": 3, "small": -7, "ratio": 1.5e-3, "ratio32": 2.5, "on": true, "opt": 0.25, "opt_int": 4, "opt_bool": false}`,
	`{"tags": ["x", "y", ""], "nums": {"a": 1, "b": -0, "c": 1E+2}}`,
	`{"tags": [], "nums": {}, "items": []}`,
	`{"tags": null, "nums": null, "items": null, "opt": null, "next": null, "name": null, "on": null, "count": null}`,
	`{"items": [{"id": "i", "vals": ["v"], "sub": {"id": "s", "mark": "m"}}, {"id": "j"}]}`,
	`{"by_name": {"a": {"id": "1"}, "b": {"vals": []}}, "deep": {"x": [{"id": "d"}], "y": null}}`,
	`{"next": {"name": "n", "next": {"count": 2}}}`,
	`{"raw": {"any": [1, "thing", null]}, "Untagged": "u"}`,
	`{"NAME": "case", "Count": 1, "untagged": "u2"}`,
	`{"name": "first", "name": "second"}`,
	`{"items": [{"id": "a", "vals": ["1", "2"]}], "items": [{"vals": ["3"]}]}`,
	`{"by_name": {"a": {"id": "1", "vals": ["x"]}}, "by_name": {"a": {"id": "2"}}}`,
	`{"name": "esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 \ud800 \udc00x \ud800\u0041"}`,
	"{\"name\": \"bad \xff utf8 \xe4\xb8\"}",
	`{"name": "中文，標點", "tags": ["混合 text"]}`,
	`{"name": "a"} `,
	// Type errors, each the first problem of its document.
	`{"name": 5}`,
	`{"count": 1.5}`,
	`{"count": "1"}`,
	`{"small": 300}`,
	`{"ratio": "x"}`,
	`{"ratio": 1e400}`,
	`{"ratio32": 1e39}`,
	`{"on": "true"}`,
	`{"tags": "x"}`,
	`{"tags": [1]}`,
	`{"nums": []}`,
	`{"items": [{"id": 1}]}`,
	`{"items": [{"sub": {"vals": [true]}}]}`,
	`{"by_name": {"a": []}}`,
	`{"next": {"next": {"on": 0}}}`,
	`[]`,
	`"text"`,
	`{"opt": true}`,
	// Unknown fields.
	`{"nope": 1}`,
	`{"items": [{"id": "a", "extra": {}}]}`,
	`{"Skipped": "x"}`,
	`{"hidden": "x"}`,
	`{"next": {"name": "n", "unknown": [1, 2]}}`,
	// Syntax errors, wherever they are, win.
	``,
	` `,
	`{`,
	`{"name": "a",}`,
	`{"name" "a"}`,
	`{"name": "a"`,
	`{"nope": 1, "name": }`,
	`{"name": 5, "tags": [1,]}`,
	`{"tags": [01]}`,
	`{"ratio": 1.}`,
	`{"ratio": .5}`,
	`{"ratio": -}`,
	`{"ratio": 1e}`,
	`{"on": tru}`,
	`{"name": "tab	inside"}`,
	`{"name": "\x"}`,
	`{"name": "\u12"}`,
	`{"name": "open}`,
	`{'name': 'a'}`,
	// Trailing data.
	`{} {}`,
	`{"name": "a"} x`,
	`{}]`,
	`{} null`,
}

func TestUnmarshalAsEncodingJSON(t *testing.T) {
	for _, d := range documents {
		same(t, []byte(d))
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, d := range documents {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, b []byte) { same(t, b) })
}

func TestUnmarshalShared(t *testing.T) {
	b := []byte(`{"name": "plain", "untagged": "esc\u00e9", "nums": {"key": 1}, "tags": ["中文"]}`)
	within := func(s string) bool {
		p := unsafe.Pointer(unsafe.StringData(s))
		return uintptr(p) >= uintptr(unsafe.Pointer(&b[0])) && uintptr(p) < uintptr(unsafe.Pointer(&b[0]))+uintptr(len(b))
	}
	var d doc
	if err := UnmarshalShared(b, &d); err != nil {
		t.Fatal(err)
	}
	var key string
	for k := range d.Nums {
		key = k
	}
	if !within(d.Name) || !within(key) || !within(d.Tags[0]) {
		t.Error("UnmarshalShared copied a string without escapes")
	}
	if within(d.Untagged) || d.Untagged != "escé" {
		t.Errorf("a string with escapes: %q, shared %v", d.Untagged, within(d.Untagged))
	}
	if err := Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if within(d.Name) {
		t.Error("Unmarshal shared the document's memory")
	}
}

// selfDecoding decodes a string or an object {"v": …} into V.
type selfDecoding struct{ V string }

func (s *selfDecoding) UnmarshalStrictJSON(d *Decoder) error {
	if d.PeekString() {
		return d.Decode(&s.V)
	}
	var o struct {
		V string `json:"v"`
	}
	if err := d.Decode(&o); err != nil {
		return err
	}
	if o.V == "" {
		return errors.New("selfDecoding: empty v")
	}
	s.V = o.V
	return nil
}

func TestUnmarshaler(t *testing.T) {
	var got struct {
		List []selfDecoding          `json:"list"`
		ByID map[string]selfDecoding `json:"by_id"`
		One  *selfDecoding           `json:"one"`
		Null *selfDecoding           `json:"null"`
	}
	err := Unmarshal([]byte(`{"list": ["a", {"v": "b"}], "by_id": {"x": "c"}, "one": {"v": "d"}, "null": null}`), &got)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.List) != 2 || got.List[0].V != "a" || got.List[1].V != "b" || got.ByID["x"].V != "c" || got.One.V != "d" || got.Null != nil {
		t.Errorf("got %+v", got)
	}
	for doc, want := range map[string]string{
		`{"list": [{"v": ""}]}`:          "selfDecoding: empty v",
		`{"list": [{"w": "x"}]}`:         `json: unknown field "w"`,
		`{"list": [5]}`:                  "json: cannot unmarshal number into Go struct field .list of type struct",
		`{"list": [{"v": "x"}, {"v": ]}`: "invalid character ']' looking for beginning of value",
	} {
		err := Unmarshal([]byte(doc), &got)
		if err == nil || !strings.HasPrefix(err.Error(), strings.Split(want, " of type")[0]) {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
}

func TestUnsupportedTypes(t *testing.T) {
	for _, v := range []any{
		new(map[int]string),
		new(struct{ C chan int }),
		new(any),
		new(struct{ item }),
		new(struct {
			N int `json:"n,string"`
		}),
	} {
		if err := Unmarshal([]byte(`{}`), v); err == nil || !strings.HasPrefix(err.Error(), "strictjson: cannot decode into") {
			t.Errorf("%T: error %v, want cannot decode", v, err)
		}
	}
	if err := Unmarshal([]byte(`{}`), doc{}); err == nil {
		t.Error("Unmarshal into a non-pointer: no error")
	}
}
