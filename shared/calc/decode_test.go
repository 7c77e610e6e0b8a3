package calc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/strictjson"
)

// TestConfigDecodesAsEncodingJSON holds the one-pass decoding of the
// configuration to what encoding/json makes of the same document, and the
// code sets' codes to the document's own.
func TestConfigDecodesAsEncodingJSON(t *testing.T) {
	var fast, ref Config
	if err := strictjson.Unmarshal(embeddedConfig, &fast); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(embeddedConfig))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ref); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, ref) {
		t.Error("strictjson and encoding/json decode the configuration differently")
	}

	// CodeMatch decodes itself the same way under both: check it against
	// the document read as plain JSON.
	var raw struct {
		Codes map[string]json.RawMessage `json:"codes"`
	}
	if err := json.Unmarshal(embeddedConfig, &raw); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for group, sets := range map[string]map[string]CodeSet{"conditions": fast.Codes.Conditions, "medications": fast.Codes.Medications, "procedures": fast.Codes.Procedures} {
		var doc map[string]struct {
			Include, Exclude []struct {
				System, Match string
				Codes         []any
			}
		}
		if err := json.Unmarshal(raw.Codes[group], &doc); err != nil {
			t.Fatal(err)
		}
		for name, set := range sets {
			for kind, pair := range map[string][2]any{"include": {set.Include, doc[name].Include}, "exclude": {set.Exclude, doc[name].Exclude}} {
				got := pair[0].([]CodeMatch)
				want := pair[1].([]struct {
					System, Match string
					Codes         []any
				})
				if len(got) != len(want) {
					t.Fatalf("%s.%s.%s: %d matches, document has %d", group, name, kind, len(got), len(want))
				}
				for i, m := range got {
					w := want[i]
					if m.System != w.System || m.Match != w.Match || len(m.Codes) != len(w.Codes) || len(m.Refs) != len(w.Codes) {
						t.Fatalf("%s.%s.%s[%d] = %+v, document %+v", group, name, kind, i, m, w)
					}
					for j, c := range w.Codes {
						code, display := "", ""
						switch c := c.(type) {
						case string:
							code = c
						case map[string]any:
							code, _ = c["code"].(string)
							display, _ = c["display"].(string)
							if _, has := c["checked"]; has != (m.Refs[j].Checked != nil) {
								t.Errorf("%s.%s.%s[%d].codes[%d]: checked decoded %v", group, name, kind, i, j, m.Refs[j].Checked)
							}
						}
						if m.Codes[j] != code || m.Refs[j].Code != code || m.Refs[j].Display != display {
							t.Errorf("%s.%s.%s[%d].codes[%d] = %q %+v, document %v", group, name, kind, i, j, m.Codes[j], m.Refs[j], c)
						}
						checked++
					}
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d codes checked", checked)
	}
}
