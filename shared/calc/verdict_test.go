package calc

import (
	"encoding/json"
	"testing"
)

// TestResultVerdictJSON holds the "hbr" field of a result: ARC-HBR and
// PRECISE-HBR say true, false or null; a calculator that gives no
// bleeding-risk verdict leaves the field out.
func TestResultVerdictJSON(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name, calculator string
		in               Inputs
		status           Status
		want             string // the raw JSON of "hbr"; "" when absent
	}{
		{"ARC-HBR not met, surgery assumed absent", "arc-hbr", with(arcNone(), "nondeferrable_major_surgery", nil), StatusOK, "false"},
		{"ARC-HBR one major", "arc-hbr", with(arcNone(), "platelets", 50), StatusOK, "true"},
		{"ARC-HBR Hb missing could change it", "arc-hbr", with(arcNone(), "nondeferrable_major_surgery", nil, "hemoglobin", nil), StatusIncomplete, "null"},
		{"PRECISE-HBR 2 points", "precise-hbr", hbrBase(), StatusOK, "false"},
		{"PRECISE-HBR in an HBR band", "precise-hbr", with(hbrBase(), "age", 85, "hemoglobin", 9, "egfr", 20, "prior_bleeding", true, "oral_anticoagulation", true), StatusOK, "true"},
		{"PRECISE-HBR without Hb", "precise-hbr", with(hbrBase(), "hemoglobin", nil), StatusIncomplete, "null"},
		{"creatinine clearance gives no verdict", "crcl-cockcroft-gault", Inputs{"age": Number(70, ""), "weight": Number(80, ""), "creatinine": Number(1, ""), "sex": Text("male")}, StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustEval(t, e, tt.calculator, tt.in)
			if r.Status != tt.status {
				t.Fatalf("status %s (missing %v), want %s", r.Status, r.Missing, tt.status)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(b, &fields); err != nil {
				t.Fatal(err)
			}
			got, ok := fields["hbr"]
			switch {
			case tt.want == "" && ok:
				t.Fatalf("hbr %s, want no field", got)
			case tt.want != "" && string(got) != tt.want:
				t.Fatalf("hbr %q (present %v), want %s", got, ok, tt.want)
			}
			if tt.want == "" {
				return
			}
			// The verdict agrees with the score's own category, and reads
			// back as written.
			if cat := r.Values[0].Category; (tt.want == "true") != (cat == "hbr" || cat == "very-hbr") {
				t.Errorf("verdict %s beside category %q", tt.want, cat)
			}
			var back Result
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("read back: %v", err)
			}
			if rb, _ := json.Marshal(back.HBR); string(rb) != tt.want {
				t.Errorf("read back %s, want %s", rb, tt.want)
			}
		})
	}
}
