package ehrsim

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFHIRAuth(t *testing.T) {
	e := newEnv(t)
	tok := e.ehrLaunch("hbr-anticoag", "pub", ehrScope).str("access_token")

	t.Run("no token", func(t *testing.T) {
		status, oo, h := e.fhir("", "Patient/hbr-anticoag")
		if status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || oo["resourceType"] != "OperationOutcome" {
			t.Errorf("got %d %q %v", status, h.Get("WWW-Authenticate"), oo)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		status, _, h := e.fhir("not-a-token", "Patient/hbr-anticoag")
		if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("got %d %q", status, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("compartment", func(t *testing.T) {
		for _, path := range []string{
			"Patient/low-risk",
			"Observation?patient=low-risk",
			"Observation?subject=Patient/low-risk",
			"Observation?patient=" + url.QueryEscape(e.s.FHIRBase()+"/Patient/low-risk"),
			"Condition?patient=hbr-anticoag,low-risk",
		} {
			if status, _, _ := e.fhir(tok, path); status != 403 {
				t.Errorf("%s: %d, want 403", path, status)
			}
		}
		// A search without a patient parameter is limited to the compartment.
		_, b, _ := e.fhir(tok, "Patient")
		if got := ids(entries(b, "match")); !slices.Equal(got, []string{"hbr-anticoag"}) {
			t.Errorf("Patient search returned %v", got)
		}
		_, b, _ = e.fhir(tok, "Observation?code=718-7")
		for _, r := range entries(b, "match") {
			if r["subject"].(map[string]any)["reference"] != "Patient/hbr-anticoag" {
				t.Errorf("search leaked %v", r["id"])
			}
		}
		// Reading another patient's observation by id is refused too.
		other := e.s.data.byType["Observation"][0]
		for _, r := range e.s.data.byType["Observation"] {
			if r.patient == "low-risk" {
				other = r
				break
			}
		}
		if status, _, _ := e.fhir(tok, "Observation/"+other.id); status != 403 {
			t.Errorf("read of another patient's Observation: %d", status)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		e := newEnv(t)
		tok := e.ehrLaunch("hbr-anticoag", "pub", ehrScope).str("access_token")
		e.clock.Add(time.Hour)
		status, _, h := e.fhir(tok, "Patient/hbr-anticoag")
		if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "expired") {
			t.Errorf("got %d %q", status, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("scope", func(t *testing.T) {
		tests := []struct {
			scope string
			path  string
			want  int
		}{
			{"launch patient/Patient.rs", "Observation?patient=hbr-anticoag", 403},
			{"launch patient/Patient.rs", "Patient/hbr-anticoag", 200},
			{"launch patient/Patient.r", "Patient?_id=hbr-anticoag", 403}, // read without search
			{"launch patient/Patient.s", "Patient/hbr-anticoag", 403},     // search without read
			{"launch patient/Patient.read patient/Observation.read", "Observation?patient=hbr-anticoag", 200},
			{"launch patient/*.read", "Condition?patient=hbr-anticoag", 200},
			{"launch patient/Observation.write", "Observation?patient=hbr-anticoag", 403},
			{"launch user/*.rs", "Observation?patient=low-risk", 200},
			{"launch user/Patient.rs", "Patient/low-risk", 200},
		}
		for _, tt := range tests {
			r := e.ehrLaunch("hbr-anticoag", "pub", tt.scope)
			status, _, h := e.fhir(r.str("access_token"), tt.path)
			if status != tt.want {
				t.Errorf("%s with %q: %d, want %d", tt.path, tt.scope, status, tt.want)
			}
			if status == 403 && !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
				t.Errorf("%s with %q: WWW-Authenticate %q", tt.path, tt.scope, h.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("query-restricted scope", func(t *testing.T) {
		r := e.ehrLaunch("hbr-anticoag", "pub", "launch patient/Observation.rs?category="+
			"http://terminology.hl7.org/CodeSystem/observation-category|vital-signs")
		_, b, _ := e.fhir(r.str("access_token"), "Observation?patient=hbr-anticoag")
		got := entries(b, "match")
		if len(got) != 1 || b["total"] != 1.0 {
			t.Fatalf("got %d results (total %v), want only the weight", len(got), b["total"])
		}
		lab := ""
		for _, o := range e.s.data.byType["Observation"] {
			if o.patient == "hbr-anticoag" && o.doc["category"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"] == "laboratory" {
				lab = o.id
				break
			}
		}
		if status, _, _ := e.fhir(r.str("access_token"), "Observation/"+lab); status != 403 {
			t.Errorf("read of a lab outside the scope's query: %d", status)
		}
	})
}

// obsValues returns the valueQuantity.value of each result, in order.
func obsValues(rs []map[string]any) []float64 {
	var out []float64
	for _, r := range rs {
		if vq, ok := r["valueQuantity"].(map[string]any); ok {
			out = append(out, vq["value"].(float64))
		}
	}
	return out
}

func TestSearch(t *testing.T) {
	e := newEnv(t)
	tok := e.ehrLaunch("hbr-anticoag", "pub", "launch user/*.rs").str("access_token")
	const pt = "patient=hbr-anticoag&"
	tests := []struct {
		name   string
		query  string
		n      int
		values []float64 // Observation values in order, when given
	}{
		{"code system|code", "Observation?" + pt + "code=" + url.QueryEscape("http://loinc.org|718-7"), 2, nil},
		{"bare code", "Observation?" + pt + "code=718-7", 2, nil},
		{"code in another system", "Observation?" + pt + "code=" + url.QueryEscape("http://snomed.info/sct|718-7"), 0, nil},
		{"system only", "Observation?" + pt + "code=" + url.QueryEscape("http://loinc.org|"), 7, nil},
		{"comma OR list", "Observation?" + pt + "code=718-7,6690-2," + url.QueryEscape("http://loinc.org|777-3"), 4, nil},
		{"two code params AND", "Observation?" + pt + "code=718-7&code=6690-2", 0, nil},
		{"subject", "Observation?subject=Patient/hbr-anticoag&code=718-7", 2, nil},
		{"_sort=-date", "Observation?" + pt + "code=718-7&_sort=-date", 2, []float64{11.8, 12.6}},
		{"_sort=date", "Observation?" + pt + "code=718-7&_sort=date", 2, []float64{12.6, 11.8}},
		{"date ge", "Observation?" + pt + "code=718-7&date=ge" + e.day(-30), 1, []float64{11.8}},
		{"date lt", "Observation?" + pt + "code=718-7&date=lt" + e.day(-30), 1, []float64{12.6}},
		{"date eq day", "Observation?" + pt + "code=718-7&date=" + e.day(-1), 1, []float64{11.8}},
		{"date range", "Observation?" + pt + "date=gt" + e.day(-100) + "&date=le" + e.day(-80), 1, []float64{12.6}},
		{"date sa", "Observation?" + pt + "code=718-7&date=sa" + e.day(-2), 1, []float64{11.8}},
		{"date month", "Observation?" + pt + "code=718-7&date=" + e.day(-1)[:7], -1, nil}, // at least parses
		{"category", "Observation?" + pt + "category=vital-signs", 1, []float64{82}},
		{"Condition clinical-status", "Condition?" + pt + "clinical-status=active", 4, nil},
		{"Condition category", "Condition?" + pt + "category=encounter-diagnosis", 1, nil},
		{"Condition resolved", "Condition?patient=recent-bleed&clinical-status=resolved", 1, nil},
		{"Condition ICD-10-CM", "Condition?patient=recent-bleed&code=" + url.QueryEscape("http://hl7.org/fhir/sid/icd-10-cm|K92.2"), 1, nil},
		{"MedicationRequest active order", "MedicationRequest?" + pt + "status=active&intent=order", 4, nil},
		{"MedicationRequest skips entered-in-error", "MedicationRequest?patient=entered-in-error&status=active", 2, nil},
		{"MedicationRequest by RxNorm", "MedicationRequest?patient=nsaid-steroid&code=8640", 1, nil},
		{"MedicationStatement", "MedicationStatement?patient=nsaid-steroid&status=active", 1, nil},
		{"Procedure date", "Procedure?patient=recent-bleed&date=ge" + e.day(-90), 2, nil},
		{"Procedure transfusion", "Procedure?patient=recent-bleed&code=116859006", 1, nil},
		{"Encounter class", "Encounter?patient=recent-bleed&class=IMP", 2, nil},
		{"Encounter class system|code", "Encounter?patient=recent-bleed&class=" + url.QueryEscape("http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP"), 2, nil},
		{"Patient _id", "Patient?_id=low-risk,stroke", 2, nil},
		{"Patient identifier", "Patient?identifier=" + url.QueryEscape("urn:oid:2.16.840.1.113883.19.5|100012"), 1, nil},
		{"Patient name", "Patient?name=kowal", 1, nil},
		{"POST-free GET with _format", "Patient?_id=stroke&_format=json", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b, _ := e.fhir(tok, tt.query)
			if status != 200 || b["type"] != "searchset" {
				t.Fatalf("%d %v", status, b)
			}
			got := entries(b, "match")
			if tt.n >= 0 && len(got) != tt.n {
				t.Fatalf("%d results, want %d: %v", len(got), tt.n, ids(got))
			}
			if tt.n >= 0 && int(b["total"].(float64)) != tt.n {
				t.Errorf("total = %v, want %d", b["total"], tt.n)
			}
			if tt.values != nil && !slices.Equal(obsValues(got), tt.values) {
				t.Errorf("values %v, want %v", obsValues(got), tt.values)
			}
			if self := link(b, "self"); !strings.HasPrefix(self, e.s.FHIRBase()+"/") {
				t.Errorf("self link %q", self)
			}
			for _, x := range asSlice(b["entry"]) {
				en := x.(map[string]any)
				r := en["resource"].(map[string]any)
				if en["fullUrl"] != e.s.FHIRBase()+"/"+r["resourceType"].(string)+"/"+r["id"].(string) {
					t.Errorf("fullUrl %v", en["fullUrl"])
				}
			}
		})
	}
	t.Run("_count=0", func(t *testing.T) {
		_, b, _ := e.fhir(tok, "Observation?"+pt+"_count=0")
		if b["total"] != 7.0 || len(asSlice(b["entry"])) != 0 || link(b, "next") != "" {
			t.Errorf("total %v, entries %d", b["total"], len(asSlice(b["entry"])))
		}
	})
	t.Run("_include medication", func(t *testing.T) {
		_, b, _ := e.fhir(tok, "MedicationRequest?"+pt+"_include=MedicationRequest:medication")
		inc := entries(b, "include")
		if len(inc) != 1 || inc[0]["id"] != "med-apixaban-5mg" || inc[0]["resourceType"] != "Medication" {
			t.Errorf("included %v", ids(inc))
		}
	})
	t.Run("POST _search", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.s.FHIRBase()+"/Observation/_search", strings.NewReader("patient=hbr-anticoag&code=718-7"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if body := readBody(t, res); res.StatusCode != 200 || !strings.Contains(body, `"total":2`) {
			t.Errorf("%d %s", res.StatusCode, body)
		}
	})
}

func TestSearchPaging(t *testing.T) {
	e := newEnv(t)
	tok := e.ehrLaunch("hbr-anticoag", "pub", ehrScope).str("access_token")
	next := "Observation?patient=hbr-anticoag&_count=2&_sort=-date"
	var got []string
	pages := 0
	for next != "" {
		status, b, _ := e.fhir(tok, next)
		if status != 200 {
			t.Fatalf("page %d: %d %v", pages, status, b)
		}
		if b["total"] != 7.0 {
			t.Errorf("page %d total %v, want 7", pages, b["total"])
		}
		page := entries(b, "match")
		if len(page) > 2 {
			t.Errorf("page %d has %d entries", pages, len(page))
		}
		got = append(got, ids(page)...)
		next = link(b, "next")
		if next != "" && (strings.Contains(next, "patient=") || !strings.HasPrefix(next, e.s.FHIRBase()+"/Observation?_page=")) {
			t.Errorf("next link %q is not opaque", next)
		}
		pages++
	}
	if pages != 4 || len(got) != 7 {
		t.Fatalf("%d pages, %d results: %v", pages, len(got), got)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("%s on two pages", id)
		}
		seen[id] = true
	}
	// Page tokens are bound to the client and expire.
	_, b, _ := e.fhir(tok, "Observation?patient=hbr-anticoag&_count=1")
	nextURL := link(b, "next")
	other := e.ehrLaunch("hbr-anticoag", "conf", ehrScope).str("access_token")
	if status, _, _ := e.fhir(other, nextURL); status != 400 {
		t.Errorf("another client's page token: %d, want 400", status)
	}
	if status, _, _ := e.fhir(tok, nextURL+"&code=718-7"); status != 400 {
		t.Errorf("_page with other params: %d, want 400", status)
	}
	e.clock.Add(pageTokenLife + time.Second)
	if status, _, _ := e.fhir(tok, nextURL); status != 400 && status != 401 {
		t.Errorf("expired page token: %d", status)
	}
}

func TestSearchErrors(t *testing.T) {
	e := newEnv(t)
	tok := e.ehrLaunch("hbr-anticoag", "pub", ehrScope).str("access_token")
	tests := []struct {
		path string
		want int
	}{
		{"Observation?patient=hbr-anticoag&foo=bar", 400},
		{"Observation?patient=hbr-anticoag&date=yesterday", 400},
		{"Observation?patient=hbr-anticoag&date=ap2024-01-01", 400},
		{"Observation?patient=hbr-anticoag&code:text=hemoglobin", 400},
		{"Observation?patient=hbr-anticoag&_sort=value", 400},
		{"Observation?patient=hbr-anticoag&_count=-1", 400},
		{"Observation?patient=hbr-anticoag&_count=abc", 400},
		{"Observation?patient=hbr-anticoag&_format=xml", 400},
		{"Observation?patient=hbr-anticoag&_include=Observation:subject", 400},
		{"Observation?patient=hbr-anticoag&code=", 400},
		{"Observation?patient=hbr-anticoag&access_token=x", 400},
		{"Observation/nope", 404},
		{"Foo?patient=hbr-anticoag", 404},
		{"Observation/x/_history", 404},
		{"", 404},
	}
	for _, tt := range tests {
		status, oo, _ := e.fhir(tok, tt.path)
		if status != tt.want || oo["resourceType"] != "OperationOutcome" {
			t.Errorf("%s: %d %v, want %d OperationOutcome", tt.path, status, oo["resourceType"], tt.want)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, e.s.FHIRBase()+"/Patient/hbr-anticoag", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 {
		t.Errorf("DELETE: %d, want 405", res.StatusCode)
	}
}

func TestFHIRRequestHook(t *testing.T) {
	var paths []string
	e := newEnv(t, func(c *Config) {
		c.OnFHIRRequest = func(r *http.Request) { paths = append(paths, r.URL.Path+"?"+r.URL.RawQuery) }
	})
	tok := e.ehrLaunch("hbr-anticoag", "pub", ehrScope).str("access_token")
	before := e.s.FHIRRequests()
	e.fhir(tok, "Observation?patient=hbr-anticoag&code=718-7")
	if e.s.FHIRRequests() != before+1 {
		t.Errorf("FHIRRequests went from %d to %d", before, e.s.FHIRRequests())
	}
	if len(paths) == 0 || !strings.HasSuffix(paths[len(paths)-1], "/ehr/fhir/Observation?patient=hbr-anticoag&code=718-7") {
		t.Errorf("hook saw %v", paths)
	}
	if e.s.TokenRequests() != 1 {
		t.Errorf("TokenRequests = %d, want 1", e.s.TokenRequests())
	}
}
