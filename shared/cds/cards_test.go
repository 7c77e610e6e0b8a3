package cds

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

func ptr[T any](v T) *T { return &v }

// testService is a Service on the real scoring configuration, without
// HTTP.
func testService(t *testing.T) *Service {
	t.Helper()
	engine, err := scoring()
	if err != nil {
		t.Fatal(err)
	}
	return &Service{Assess: &assess.Service{Engine: engine, Scoring: engine.Config()},
		BaseURL: "https://fn.example/calculate", AppLaunchURL: "https://fn.example/launch"}
}

// hbrView is a very-HBR assessment whose record holds the given DAPT.
func hbrView(t *testing.T, s *Service, dapt mapping.DAPT) (*view, *assess.Assessment) {
	t.Helper()
	return viewOf(t, s, calc.Inputs{
		"age": calc.Number(80, ""), "hemoglobin": calc.Number(9.5, ""), "egfr": calc.Number(25, ""), "wbc": calc.Number(9, ""),
		"prior_bleeding": calc.Bool(true), "oral_anticoagulation": calc.Bool(false), "arc_hbr_other": calc.Bool(false),
	}, dapt)
}

// notHBRView is the view of a 60-year-old whose record decides every
// ARC-HBR criterion but planned surgery, and neither score says HBR.
func notHBRView(t *testing.T, s *Service) (*view, *assess.Assessment) {
	t.Helper()
	return viewOf(t, s, calc.Inputs{
		"age": calc.Number(60, ""), "sex": calc.Text("male"), "hemoglobin": calc.Number(14, ""), "egfr": calc.Number(90, ""),
		"wbc": calc.Number(7, ""), "platelets": calc.Number(250, ""), "oral_anticoagulation": calc.Bool(false),
		"bleeding_history": calc.Text("none"), "prior_bleeding": calc.Bool(false), "arc_hbr_other": calc.Bool(false),
		"intracranial_hemorrhage": calc.Bool(false), "brain_avm": calc.Bool(false), "ischemic_stroke": calc.Text("none"),
		"bleeding_diathesis": calc.Bool(false), "cirrhosis_portal_hypertension": calc.Bool(false), "active_malignancy": calc.Bool(false),
		"recent_major_surgery_trauma": calc.Bool(false), "nsaid_or_steroid": calc.Bool(false),
	}, mapping.DAPT{})
}

// viewOf evaluates every calculator on in and returns the card view of
// the assessment and the assessment, with its summary.
func viewOf(t *testing.T, s *Service, in calc.Inputs, dapt mapping.DAPT) (*view, *assess.Assessment) {
	t.Helper()
	results, err := s.Assess.Engine.EvaluateAll(in)
	if err != nil {
		t.Fatal(err)
	}
	a := &assess.Assessment{Results: map[string]*calc.Result{}, DAPT: dapt}
	for _, r := range results {
		a.Results[r.Calculator] = r
	}
	a.Summary = s.Assess.Scoring.Summarize(a.Results, in, nil)
	return s.view(a, nil, 7), a
}

func draftCall(t *testing.T, hook string, selections []string, drafts ...string) *call {
	t.Helper()
	var entries []map[string]json.RawMessage
	for _, d := range drafts {
		entries = append(entries, map[string]json.RawMessage{"resource": json.RawMessage(d)})
	}
	b, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "collection", "entry": entries})
	return &call{req: Request{Hook: hook}, ctx: HookContext{PatientID: "p1", DraftOrders: b, Selections: selections}}
}

func med(id, code, name string) string {
	b, _ := json.Marshal(map[string]any{"resourceType": "MedicationRequest", "id": id, "status": "draft", "intent": "order",
		"subject":                   map[string]string{"reference": "Patient/p1"},
		"medicationCodeableConcept": map[string]any{"coding": []map[string]string{{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}}, "text": name}})
	return string(b)
}

// TestDraftFindings covers the DAPT and anticoagulant cases the sandbox's
// patients (all already on DAPT) cannot.
func TestDraftFindings(t *testing.T) {
	s := testService(t)
	active := calc.Source{Reference: "MedicationRequest/a1", Display: "aspirin 81 mg tablet", Date: "2026-11-01"}
	tests := []struct {
		name     string
		dapt     mapping.DAPT
		call     *call
		want     daptChange
		oac      bool
		card     bool
		contains string
	}{
		{"both drafted, nothing active: starts DAPT", mapping.DAPT{Present: ptr(false)},
			draftCall(t, HookOrderSign, nil, med("d1", "1191", "aspirin 81 mg"), med("d2", "1116632", "ticagrelor 90 mg")),
			daptStart, false, true, "start DAPT (aspirin + ticagrelor)"},
		{"P2Y12 drafted on active aspirin: starts DAPT", mapping.DAPT{Present: ptr(false), Aspirin: []calc.Source{active}},
			draftCall(t, HookOrderSign, nil, med("d1", "613391", "prasugrel 10 mg")),
			daptStart, false, true, "start DAPT (aspirin + prasugrel)"},
		{"P2Y12 alone, no aspirin anywhere: no DAPT", mapping.DAPT{Present: ptr(false)},
			draftCall(t, HookOrderSign, nil, med("d1", "32968", "clopidogrel 75 mg")),
			daptNone, false, false, ""},
		{"P2Y12 drafted, active medications unreadable: may start DAPT", mapping.DAPT{},
			draftCall(t, HookOrderSign, nil, med("d1", "32968", "clopidogrel 75 mg")),
			daptPossible, false, true, "may start DAPT"},
		{"warfarin drafted: anticoagulant", mapping.DAPT{Present: ptr(false)},
			draftCall(t, HookOrderSign, nil, med("d1", "11289", "warfarin 5 mg")),
			daptNone, true, true, "add an oral anticoagulant (warfarin)"},
		{"rivaroxaban 2.5 mg (vascular dose): not long-term OAC", mapping.DAPT{Present: ptr(false)},
			draftCall(t, HookOrderSign, nil, med("d1", "2059015", "rivaroxaban 2.5 mg")),
			daptNone, false, false, ""},
		{"order-select: unselected drafts count for DAPT, not as triggers", mapping.DAPT{Present: ptr(false)},
			draftCall(t, HookOrderSelect, []string{"MedicationRequest/d2"}, med("d1", "1191", "aspirin"), med("d2", "1116632", "ticagrelor")),
			daptStart, false, true, "start DAPT"},
		{"order-select: only an unselected anticoagulant: no card", mapping.DAPT{Present: ptr(false)},
			draftCall(t, HookOrderSelect, []string{"MedicationRequest/d2"}, med("d1", "1364430", "apixaban"), med("d2", "83367", "atorvastatin")),
			daptNone, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, a := hbrView(t, s, tt.dapt)
			f := s.draftFindings(tt.call, a)
			if f.dapt != tt.want || (len(f.oac) > 0) != tt.oac {
				t.Fatalf("findings %+v, want dapt %d, oac %v", f, tt.want, tt.oac)
			}
			c, ok := s.orderCard(v, f)
			if ok != tt.card {
				t.Fatalf("card %v, want %v", ok, tt.card)
			}
			if ok {
				if c.Indicator != IndicatorWarning || !strings.Contains(c.Summary, tt.contains) {
					t.Errorf("card %q (%s), want warning with %q", c.Summary, c.Indicator, tt.contains)
				}
			}
		})
	}
}

// TestIndicatorFollowsTheSummary: the card's verdict and indicator are the
// summary's (summary.hbr), never the cards' own reading of the scores. The
// looser rule the cards had read a not-HBR PRECISE-HBR as "not HBR" while
// ARC-HBR was still undetermined, and so raised no order card; it made
// very HBR critical and ARC-HBR alone a warning.
func TestIndicatorFollowsTheSummary(t *testing.T) {
	s := testService(t)
	// notHBR decides every ARC-HBR criterion (none met) and gives
	// PRECISE-HBR 10 for a 52-year-old man.
	notHBR := func() calc.Inputs {
		return calc.Inputs{"age": calc.Number(52, ""), "sex": calc.Text("male"), "hemoglobin": calc.Number(15, ""), "egfr": calc.Number(100, ""),
			"wbc": calc.Number(6, ""), "platelets": calc.Number(250, ""), "prior_bleeding": calc.Bool(false), "oral_anticoagulation": calc.Bool(false),
			"arc_hbr_other": calc.Bool(false), "bleeding_history": calc.Text("none"), "intracranial_hemorrhage": calc.Bool(false),
			"brain_avm": calc.Bool(false), "ischemic_stroke": calc.Text("none"), "bleeding_diathesis": calc.Bool(false),
			"cirrhosis_portal_hypertension": calc.Bool(false), "active_malignancy": calc.Bool(false), "recent_major_surgery_trauma": calc.Bool(false),
			"nondeferrable_major_surgery": calc.Bool(false), "nsaid_or_steroid": calc.Bool(false)}
	}
	with := func(in calc.Inputs, kv ...any) calc.Inputs {
		for i := 0; i < len(kv); i += 2 {
			switch v := kv[i+1].(type) {
			case nil:
				delete(in, kv[i].(string))
			case bool:
				in[kv[i].(string)] = calc.Bool(v)
			case float64:
				in[kv[i].(string)] = calc.Number(v, "")
			}
		}
		return in
	}
	tests := []struct {
		name      string
		in        calc.Inputs
		risk      risk
		verdict   string
		indicator string
		orderCard bool
	}{
		{"both decided, neither HBR", notHBR(), riskNo, verdictNotHBR, IndicatorInfo, false},
		{"PRECISE-HBR not HBR, ARC-HBR undetermined (platelets unknown)", with(notHBR(), "platelets", nil), riskUnknown, verdictUndetermined, IndicatorInfo, true},
		{"ICH: ARC-HBR alone", with(notHBR(), "intracranial_hemorrhage", true), riskYes, verdictHBR, IndicatorWarning, true},
		{"very HBR", with(notHBR(), "age", 80.0, "hemoglobin", 8.0, "egfr", 25.0), riskYes, verdictHBR, IndicatorWarning, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, err := s.Assess.Engine.EvaluateAll(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			a := &assess.Assessment{Results: map[string]*calc.Result{}}
			for _, r := range results {
				a.Results[r.Calculator] = r
			}
			a.Summary = s.Assess.Scoring.Summarize(a.Results, tt.in, nil)
			v := s.view(a, nil, 7)
			if v.risk != tt.risk || v.indic != tt.indicator {
				t.Fatalf("risk %d indicator %q, want %d %q (summary.hbr %v)", v.risk, v.indic, tt.risk, tt.indicator, a.Summary.HBR)
			}
			if c := s.patientCard(v); !strings.HasPrefix(c.Summary, tt.verdict+": ") || c.Indicator != tt.indicator {
				t.Errorf("patient card %q (%s), want the verdict %q", c.Summary, c.Indicator, tt.verdict)
			}
			drafts := findings{dapt: daptStart, aspirin: []calc.Source{{Display: "aspirin"}}, p2y12: []calc.Source{{Display: "clopidogrel"}}}
			if _, ok := s.orderCard(v, drafts); ok != tt.orderCard {
				t.Errorf("order card %v, want %v", ok, tt.orderCard)
			}
		})
	}
}

func TestSummaryAndMarkdown(t *testing.T) {
	long := strings.Repeat("PRECISE-HBR incomplete (needs hemoglobin, eGFR, white blood cell count), ", 4)
	got := summary(long)
	if n := utf8.RuneCountInString(got); n > MaxSummary || !strings.HasSuffix(got, "…") {
		t.Errorf("summary(%d runes) = %q (%d runes)", len(long), got, n)
	}
	if s := "Very HBR: PRECISE-HBR 31"; summary(s) != s {
		t.Errorf("a short summary was changed")
	}
	if got := md("[click](https://evil.example) *x* <b>_y_</b> |t|\nnext"); strings.ContainsAny(strings.NewReplacer(`\[`, "", `\]`, "", `\*`, "", `\<`, "", `\>`, "", `\_`, "", `\|`, "").Replace(got), "[]*<>_|\n") {
		t.Errorf("md left markup: %q", got)
	}
}

// TestPatientCardGivesTheSummary: the card leads with the assessment's one
// answer, the same sentence, figure and assumptions as the app's page.
func TestPatientCardGivesTheSummary(t *testing.T) {
	s := testService(t)
	// Not HBR, the verdict rests on the assumption that no surgery is
	// planned, and the card states it; HBR, the assumption changes
	// nothing and neither the summary nor the card states it.
	_, low := notHBRView(t, s)
	if low.Summary.HBR == nil || *low.Summary.HBR || len(low.Summary.Assumptions) != 1 {
		t.Fatalf("the not-HBR fixture: hbr %v, assumptions %+v; want false with the surgery assumption", low.Summary.HBR, low.Summary.Assumptions)
	}
	assumption := md(low.Summary.Assumptions[0].Statement.String())
	if lc := s.patientCard(s.view(low, nil, 7)); !strings.Contains(lc.Detail, assumption) {
		t.Errorf("not-HBR card detail lacks the assumption %q:\n%s", assumption, lc.Detail)
	}
	_, a := hbrView(t, s, mapping.DAPT{})
	a.Summary = s.Assess.Scoring.Summarize(a.Results, nil, nil)
	if a.Summary.Text.IsZero() || a.Summary.Risk == nil || a.Summary.HBR == nil || !*a.Summary.HBR || len(a.Summary.Assumptions) != 0 {
		t.Fatalf("the HBR fixture's summary: %+v", a.Summary)
	}
	c := s.patientCard(s.view(a, nil, 7))
	for _, want := range []string{md(a.Summary.Text.String()), md(a.Summary.Risk.Label.String())} {
		if !strings.Contains(c.Detail, want) {
			t.Errorf("card detail lacks %q:\n%s", want, c.Detail)
		}
	}
	if strings.Contains(c.Detail, assumption) {
		t.Errorf("HBR card detail states the surgery assumption, which cannot change its verdict:\n%s", c.Detail)
	}
	if len(a.Summary.Plan) == 0 {
		t.Fatal("the fixture's summary has no plan")
	}
	for _, it := range a.Summary.Plan {
		if !strings.Contains(c.Detail, md(it.Text.String())) {
			t.Errorf("card detail lacks the plan item %s/%s", it.Pathway, it.Presentation)
		}
		for _, ct := range it.Citations {
			mark := "not verified]"
			if ct.IsVerified() {
				mark = "level " + md(ct.Level) + ", verified]"
			}
			if !strings.Contains(c.Detail, mark) {
				t.Errorf("card detail does not mark %s %s as %q", ct.Guideline, ct.Section, mark)
			}
			// The guideline by its name, never by the configuration's id.
			if strings.Contains(c.Detail, ct.Guideline) {
				t.Errorf("card detail names the guideline by its id %q", ct.Guideline)
			}
			if name := message.Default().Printer(message.English).Text("guideline."+ct.Guideline, nil); !strings.Contains(c.Detail, "["+md(name)+" ") {
				t.Errorf("card detail lacks the guideline's name %q", name)
			}
		}
	}
	if i, j := strings.Index(c.Detail, md(a.Summary.Text.String())), strings.Index(c.Detail, "PRECISE-HBR "); i < 0 || j >= 0 && j < i {
		t.Errorf("the summary is not the card's first statement:\n%s", c.Detail)
	}
}

// TestCardsInTheDeploymentLanguage: with SMARTCALC_CDS_LANGUAGE=zh-TW the
// cards are written in Traditional Chinese, every sentence of the
// assessment with them; only the guidelines' own section titles (in the
// citations) and the equations' names stay as published.
func TestCardsInTheDeploymentLanguage(t *testing.T) {
	english := regexp.MustCompile(`\b[A-Za-z][A-Za-z'’-]*[A-Za-z](?:,? [A-Za-z][A-Za-z'’-]*[A-Za-z]){2,}\b`)
	citation := regexp.MustCompile(`\[[^\]]*\]`)
	for _, lang := range []message.Lang{message.TraditionalChinese, message.English} {
		s := testService(t)
		s.Language = lang
		v, _ := hbrView(t, s, mapping.DAPT{})
		c := s.patientCard(v)
		text := citation.ReplaceAllString(c.Summary+"\n"+c.Detail+"\n"+c.Links[0].Label, "")
		found := english.FindAllString(text, -1)
		switch {
		case lang == message.English && len(found) == 0:
			t.Errorf("English card without English: the check is broken:\n%s", text)
		case lang != message.English && len(found) > 0:
			t.Errorf("%s card has English %q:\n%s", lang, found, text)
		}
		if lang != message.English && (!strings.Contains(c.Summary, "高出血風險") || !strings.Contains(c.Detail, "依指引的抗血栓治療計畫")) {
			t.Errorf("%s card:\n%s\n%s", lang, c.Summary, c.Detail)
		}
	}
}
