package strictjson

import "testing"

func TestCount(t *testing.T) {
	for doc, want := range map[string]int{
		`[]`:                                0,
		`[ ]`:                               0,
		`{}`:                                0,
		`[1]`:                               1,
		`["a,b", "c\"]", 3]`:                3,
		`[[1, 2], {"a": [3, 4]}, "]"]`:      3,
		`{"a": 1, "b": {"c": 2, "d": 3}}`:   2,
		`{"a\\": ",", "b": "\\\\", "c": 0}`: 3,
		`[null,true,false]`:                 3,
	} {
		d := Decoder{data: []byte(doc), off: 1}
		d.skipSpace()
		if got := d.count(); got != want {
			t.Errorf("count(%s) = %d, want %d", doc, got, want)
		}
	}
}
