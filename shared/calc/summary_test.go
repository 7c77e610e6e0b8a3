package calc

import (
	"strings"
	"testing"
)

// TestSummarize: the one verdict from ARC-HBR and PRECISE-HBR, its basis,
// the sentence that says why, and the disagreement explained.
func TestSummarize(t *testing.T) {
	e := testEngine(t)
	cfg := e.Config()
	// phbrInputs gives PRECISE-HBR 10 (not HBR) for a 52-year-old man.
	phbrLow := with(arcNone(), "age", 52, "hemoglobin", 15, "egfr", 100, "wbc", 6, "prior_bleeding", false, "arc_hbr_other", false)
	tests := []struct {
		name       string
		in         Inputs
		hbr        any
		basis      []string
		reason     string
		notWeighed []string
		text       []string
	}{
		{"neither, both decided", phbrLow, false, []string{"arc-hbr", "precise-hbr"}, ReasonNotHBR, nil, []string{"Not high bleeding risk", "23"}},
		{"ICH: ARC-HBR alone", with(phbrLow, "intracranial_hemorrhage", true), true, []string{"arc-hbr"}, ReasonARCOnly, []string{"intracranial-hemorrhage"},
			[]string{"consensus definition", "does not weigh", "ICH"}},
		{"OAC: both", with(phbrLow, "oral_anticoagulation", true, "age", 80, "hemoglobin", 10), true, []string{"arc-hbr", "precise-hbr"}, ReasonBoth, nil, []string{"definition is met and PRECISE-HBR is in", "23"}},
		{"PRECISE-HBR alone", with(phbrLow, "age", 79, "hemoglobin", 12, "egfr", 65, "wbc", 12, "sex", "female"), true, []string{"precise-hbr"}, ReasonPreciseOnly, nil, []string{"graded risk factors"}},
		{"Hb missing", with(phbrLow, "hemoglobin", nil), nil, []string{}, ReasonUndetermined, nil, []string{"undetermined"}},
		{"Hb missing, OAC", with(phbrLow, "hemoglobin", nil, "oral_anticoagulation", true), true, []string{"arc-hbr"}, ReasonHBRPartial, nil, []string{"cannot change"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := map[string]*Result{}
			for _, id := range []string{"arc-hbr", "precise-hbr"} {
				res[id] = mustEval(t, e, id, tt.in)
			}
			s := cfg.Summarize(res, tt.in, nil)
			var got any
			if s.HBR != nil {
				got = *s.HBR
			}
			if got != tt.hbr || !sameStrings(s.Basis, tt.basis) || s.Reason != tt.reason {
				t.Fatalf("hbr %v basis %v reason %s, want %v %v %s (ARC %s %v, PRECISE-HBR %s %v)", got, s.Basis, s.Reason, tt.hbr, tt.basis, tt.reason,
					res["arc-hbr"].Status, res["arc-hbr"].Values, res["precise-hbr"].Status, res["precise-hbr"].Values)
			}
			if !sameStrings(s.NotWeighed, tt.notWeighed) {
				t.Errorf("not weighed %v, want %v", s.NotWeighed, tt.notWeighed)
			}
			for _, w := range tt.text {
				if !strings.Contains(s.Text.String(), w) {
					t.Errorf("text %q lacks %q", s.Text, w)
				}
			}
			if res["precise-hbr"].Status == StatusOK {
				f := num(t, res["precise-hbr"], "bleeding_1y")
				if s.Risk == nil || s.Risk.Calculator != "precise-hbr" || s.Risk.Value*10 != float64(int(s.Risk.Value*10+0.5)) || s.Risk.Value-f > 0.05 || f-s.Risk.Value > 0.05 {
					t.Errorf("risk %+v, want PRECISE-HBR's %v to one decimal", s.Risk, f)
				}
			} else if s.Risk != nil {
				t.Errorf("risk %+v without a PRECISE-HBR result", s.Risk)
			}
		})
	}
}

// TestSummarizeAssumptionsAndEntered: the summary carries the assumptions
// the verdict rests on and says which values the clinician entered.
func TestSummarizeAssumptionsAndEntered(t *testing.T) {
	e := testEngine(t)
	in := with(arcNone(), "nondeferrable_major_surgery", nil)
	res := map[string]*Result{"arc-hbr": mustEval(t, e, "arc-hbr", in), "precise-hbr": mustEval(t, e, "precise-hbr", in)}
	s := e.Config().Summarize(res, nil, []string{"hemoglobin", "age"})
	if len(s.Assumptions) != 1 || s.Assumptions[0].Input != "nondeferrable_major_surgery" {
		t.Errorf("assumptions %+v", s.Assumptions)
	}
	if strings.Join(s.Entered, ",") != "age,hemoglobin" || !strings.Contains(s.EnteredText.String(), "Hemoglobin") || !strings.Contains(s.EnteredText.String(), "Age") {
		t.Errorf("entered %v %q", s.Entered, s.EnteredText)
	}
	if s := e.Config().Summarize(res, nil, nil); !s.EnteredText.IsZero() || len(s.Entered) != 0 {
		t.Errorf("nothing entered, yet %v %q", s.Entered, s.EnteredText)
	}
	// HBR on a major criterion: the assumption that no surgery is planned
	// cannot change the verdict, so the summary does not state it, while
	// the ARC-HBR result still lists the criterion it assumed.
	hbr := with(in, "platelets", 50)
	res = map[string]*Result{"arc-hbr": mustEval(t, e, "arc-hbr", hbr), "precise-hbr": mustEval(t, e, "precise-hbr", hbr)}
	if s := e.Config().Summarize(res, nil, nil); s.HBR == nil || !*s.HBR || len(s.Assumptions) != 0 || len(res["arc-hbr"].Assumptions) != 1 {
		t.Errorf("HBR: verdict %v, summary assumptions %+v, result assumptions %+v; want true, none, the surgery one", s.HBR, s.Assumptions, res["arc-hbr"].Assumptions)
	}
}

// TestSummarizePresentation: the presentation comes from pci_presentation
// (the record's, or the clinician's answer, which replaces it), else from
// an NSTEMI or STEMI; unknown, the plan gives both presentations.
func TestSummarizePresentation(t *testing.T) {
	e := testEngine(t)
	pciSrc := Source{Reference: "Procedure/pci", Date: "2026-11-20", Display: "PCI"}
	mi := Source{Reference: "Condition/mi", Date: "2026-11-19", Display: "NSTEMI"}
	fromRecord := Input{Value: PresentationACS, Origin: OriginRecord, Source: &mi, Evidence: []Source{mi, pciSrc}}
	tests := []struct {
		name     string
		in       Inputs
		want     any
		key      string
		origin   Origin
		evidence []string
	}{
		{"from the record", with(fullInputs(), InputPresentation, fromRecord), PresentationACS, TextPresentationACS, OriginRecord, []string{"Condition/mi", "Procedure/pci"}},
		{"the clinician's answer replaces the record's", with(fullInputs(), InputPresentation, Text(PresentationCCS)), PresentationCCS, TextPresentationCCS, OriginEntered, nil},
		{"unknown", fullInputs(), nil, TextPresentationUnknown, "", nil},
		{"an NSTEMI or STEMI entered for the trade-off model", with(fullInputs(), "nstemi_stemi", true), PresentationACS, TextPresentationACS, OriginEntered, nil},
		{"the presentation answer wins over the trade-off input", with(fullInputs(), "nstemi_stemi", true, InputPresentation, Text(PresentationCCS)), PresentationCCS, TextPresentationCCS, OriginEntered, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, err := e.EvaluateAll(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			res := map[string]*Result{}
			for _, r := range results {
				res[r.Calculator] = r
			}
			s := e.Config().Summarize(res, tt.in, nil)
			var got any
			if s.Presentation != nil {
				got = *s.Presentation
			}
			if got != tt.want || s.PresentationKey != tt.key || s.PresentationText.String() != e.Config().Summary.Texts[tt.key] || s.PresentationText.IsZero() || s.PresentationOrigin != tt.origin {
				t.Fatalf("presentation %v key %q text %q origin %q, want %v %q %q", got, s.PresentationKey, s.PresentationText, s.PresentationOrigin, tt.want, tt.key, tt.origin)
			}
			var refs []string
			for _, src := range s.PresentationEvidence {
				refs = append(refs, src.Reference)
			}
			if !sameStrings(refs, tt.evidence) {
				t.Errorf("evidence %v, want %v", refs, tt.evidence)
			}
			presentations := map[string]bool{}
			for _, it := range s.Plan {
				if it.Presentation != PresentationAny {
					presentations[it.Presentation] = true
				}
			}
			if tt.want == nil && (!presentations[PresentationACS] || !presentations[PresentationCCS]) ||
				tt.want != nil && (len(presentations) != 1 || !presentations[tt.want.(string)]) {
				t.Errorf("plan presentations %v for presentation %v", presentations, tt.want)
			}
		})
	}
}
