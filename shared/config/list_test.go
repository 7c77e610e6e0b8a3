package config

import (
	"strings"
	"testing"
)

func TestDecodeList(t *testing.T) {
	type item struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	got, err := DecodeList[item]([]byte(`[{"id":"a","name":"x"},{"id":"b"}]`))
	if err != nil || len(got) != 2 || got[0].Name != "x" || got[1].ID != "b" {
		t.Fatalf("DecodeList = %+v, %v", got, err)
	}
	for _, tt := range []struct{ in, want string }{
		{`{"id":"a"}`, "want a JSON array"},
		{`[{"id":"a"}] []`, "unexpected data after"},
		{`[{"id":"a"},{"id":"b","nmae":"typo"}]`, `entry 1 ("b"): json: unknown field "nmae"`},
		{`[{"name":1}]`, "entry 0: json: cannot unmarshal"},
	} {
		if _, err := DecodeList[item]([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeList(%s) error %v, want %q", tt.in, err, tt.want)
		}
	}
}
