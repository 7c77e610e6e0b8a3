package ehrsim

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestShippedPatients(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	ps := e.s.Patients()
	want := []string{"hbr-anticoag", "cirrhosis", "recent-bleed", "alt-units", "stale-labs", "entered-in-error", "no-labs",
		"low-risk", "woman-hb-12-5", "malignancy", "skin-cancer", "stroke", "nsaid-steroid", "thrombocytopenia",
		"ich-history", "recent-surgery", "ckd-severe", "pulmonary-embolism", "factor-v-leiden", "never-smoker",
		"nstemi-dapt", "stable-angina-pci", "af-pci-triple"}
	if len(ps) != len(want) {
		t.Fatalf("%d patients, want %d", len(ps), len(want))
	}
	for i, p := range ps {
		if p.ID != want[i] {
			t.Errorf("patient %d is %q, want %q", i, p.ID, want[i])
		}
		if p.Name == "" || p.Name == "(no name)" || p.MRN == "" || p.Description == "" || p.Source != "shipped" ||
			(p.Gender != "male" && p.Gender != "female") {
			t.Errorf("incomplete summary %+v", p)
		}
		bd, err := time.Parse("2006-01-02", p.BirthDate)
		if err != nil || now.Sub(bd) < 18*365*24*time.Hour {
			t.Errorf("%s: birth date %q", p.ID, p.BirthDate)
		}
	}
	if ps[8].Name != "陳美玲" {
		t.Errorf("woman-hb-12-5 name %q, want the Chinese name.text", ps[8].Name)
	}

	// Every date lies in the past, relative to the injected clock.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && dateRE.MatchString(s) && !dateSkipKeys[k] {
					if r, ok := parseFHIRDate(s); !ok || r.start.After(now) {
						t.Errorf("date %s = %q is not in the past of %v", k, s, now)
					}
				}
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	codeSystems := map[string]bool{
		"http://loinc.org": true, "http://snomed.info/sct": true, "http://hl7.org/fhir/sid/icd-10-cm": true,
		"http://www.nlm.nih.gov/research/umls/rxnorm": true, "http://unitsofmeasure.org": true,
	}
	for typ, rs := range e.s.data.byType {
		for _, r := range rs {
			walk(r.doc)
			if typ != "Patient" && typ != "Medication" && typ != "Practitioner" && r.patient == "" {
				t.Errorf("%s/%s belongs to no patient", typ, r.id)
			}
			if typ == "Observation" {
				if vq, ok := r.doc["valueQuantity"].(map[string]any); ok && vq["system"] != "http://unitsofmeasure.org" {
					t.Errorf("Observation/%s quantity without UCUM: %v", r.id, vq)
				}
				for _, c := range pathValues(r.doc, "code.coding") {
					if c.(map[string]any)["system"] != "http://loinc.org" {
						t.Errorf("Observation/%s code not LOINC: %v", r.id, c)
					}
				}
			}
			for _, p := range []string{"code.coding", "medicationCodeableConcept.coding", "valueQuantity"} {
				for _, c := range pathValues(r.doc, p) {
					if sys, _ := c.(map[string]any)["system"].(string); !codeSystems[sys] {
						t.Errorf("%s/%s: code system %q", typ, r.id, sys)
					}
				}
			}
		}
	}
}

// obsByCode returns a patient's Observations with a LOINC code, as
// (days before now, value) pairs.
func obsByCode(t *testing.T, e *env, patient, code string) map[int]float64 {
	out := map[int]float64{}
	today, _ := time.Parse("2006-01-02", e.clock.Now().Format("2006-01-02"))
	for _, r := range e.s.data.byType["Observation"] {
		if r.patient != patient || r.doc["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"] != code {
			continue
		}
		when, _ := r.doc["effectiveDateTime"].(string)
		if when == "" {
			when = r.doc["effectivePeriod"].(map[string]any)["start"].(string)
		}
		d, _ := time.Parse("2006-01-02", when[:10])
		v, _ := r.doc["valueQuantity"].(map[string]any)["value"].(interface{ Float64() (float64, error) })
		f, _ := v.Float64()
		out[int(today.Sub(d).Hours()/24)] = f
	}
	return out
}

func TestSampleScenarios(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		patient, code string
		want          map[int]float64 // days ago -> value
	}{
		{"hbr-anticoag", "718-7", map[int]float64{1: 11.8, 90: 12.6}},
		{"recent-bleed", "718-7", map[int]float64{1: 10.4, 61: 7.2}},
		{"stale-labs", "718-7", map[int]float64{200: 13.9}},
		{"entered-in-error", "718-7", map[int]float64{1: 8.1, 10: 14.2}},
		{"alt-units", "14682-9", map[int]float64{2: 97}},
		{"malignancy", "59260-0", map[int]float64{1: 7.0}},
		{"thrombocytopenia", "777-3", map[int]float64{1: 78}},
		{"woman-hb-12-5", "718-7", map[int]float64{1: 12.5}},
		{"no-labs", "718-7", map[int]float64{}},
	}
	for _, tt := range tests {
		got := obsByCode(t, e, tt.patient, tt.code)
		if len(got) != len(tt.want) {
			t.Errorf("%s %s: %v, want %v", tt.patient, tt.code, got, tt.want)
			continue
		}
		for d, v := range tt.want {
			if got[d] != v {
				t.Errorf("%s %s: %v, want %v", tt.patient, tt.code, got, tt.want)
			}
		}
	}
	// The GI bleed of recent-bleed is about two months old.
	for _, r := range e.s.data.byType["Condition"] {
		if r.patient == "recent-bleed" && strings.Contains(string(r.raw), "K92.2") {
			onset, _ := time.Parse(time.RFC3339, r.doc["onsetDateTime"].(string))
			if d := e.clock.Now().Sub(onset); d < 55*24*time.Hour || d > 65*24*time.Hour {
				t.Errorf("GI bleed onset %v is %v ago", onset, d)
			}
		}
	}
}

func TestLoadSynthea(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DataDir = "testdata/synthea" })
	const pid = "6f1b1b0e-1b7c-4f55-9d0a-3c2f1a9e7b11"
	ps := e.s.Patients()
	last := ps[len(ps)-1]
	if last.ID != pid || last.Name != "Jane456 Doe123" || last.MRN != pid || !strings.HasPrefix(last.Source, "Jane_Doe") {
		t.Fatalf("loaded patient %+v", last)
	}
	tok := e.ehrLaunch(pid, "pub", ehrScope).str("access_token")
	_, b, _ := e.fhir(tok, "Observation?patient="+pid+"&code=http%3A%2F%2Floinc.org%7C718-7")
	obs := entries(b, "match")
	if len(obs) != 1 || obs[0]["id"] != "9d2e4f61-7c1b-4e3a-8f0d-5a6b7c8d9e02" {
		t.Fatalf("observations %v", ids(obs))
	}
	if ref := obs[0]["subject"].(map[string]any)["reference"]; ref != "Patient/"+pid {
		t.Errorf("subject %v, want the urn:uuid rewritten", ref)
	}
	if ref := obs[0]["encounter"].(map[string]any)["reference"]; ref != "Encounter/0a5c7a7e-8a3c-4c1e-9f5e-2b8a1d6c3e01" {
		t.Errorf("encounter %v", ref)
	}
	// Dates in bundles without the relative-dates tag stay as they are.
	if obs[0]["effectiveDateTime"] != "2024-05-01T09:10:00-04:00" {
		t.Errorf("effectiveDateTime %v was changed", obs[0]["effectiveDateTime"])
	}
	_, b, _ = e.fhir(tok, "Encounter?patient="+pid)
	enc := entries(b, "match")
	if len(enc) != 1 {
		t.Fatalf("encounters %v", ids(enc))
	}
	if ref := enc[0]["serviceProvider"].(map[string]any)["reference"]; ref != "Organization/5e765f2b-e908-3888-9fc7-df2cb87beb58" {
		t.Errorf("conditional Organization reference not resolved: %v", ref)
	}
	if ref := enc[0]["participant"].([]any)[0].(map[string]any)["individual"].(map[string]any)["reference"]; ref != "Practitioner/0000016d-3a85-4cca-0000-000000000c1c" {
		t.Errorf("conditional Practitioner reference not resolved: %v", ref)
	}
	_, b, _ = e.fhir(tok, "Condition?patient="+pid)
	cond := entries(b, "match")
	if len(cond) != 1 || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(cond[0]["id"].(string)) {
		t.Errorf("condition without id got %v", ids(cond))
	}
	if status, org, _ := e.fhir(tok, "Organization/5e765f2b-e908-3888-9fc7-df2cb87beb58"); status != 200 || org["name"] != "SPRINGFIELD GENERAL HOSPITAL" {
		t.Errorf("Organization read: %d", status)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"broken.json", `{"resourceType": "Bundle",`, "not valid JSON"},
		{"patient.json", `{"resourceType": "Patient", "id": "x"}`, "not a FHIR Bundle"},
		{"document.json", `{"resourceType": "Bundle", "type": "document", "entry": []}`, "Bundle.type"},
		{"badid.json", `{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", "id": "bad id!"}}]}`, "not a valid FHIR id"},
		{"noresource.json", `{"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "DELETE", "url": "Patient/1"}}]}`, "no resource"},
		{"reltag.json", `{"resourceType": "Bundle", "type": "collection", "meta": {"tag": [{"system": "https://smartcalc.app/fhir/ehrsim", "code": "relative-dates"}]}, "entry": []}`, "timestamp"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tt.name), []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{BaseURL: "http://127.0.0.1:1/ehr", DataDir: dir, SigningKey: testSigningKey(t)})
		if err == nil || !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", tt.name, err, tt.want)
		}
	}
	if _, err := New(Config{BaseURL: "http://127.0.0.1:1/ehr", DataDir: "testdata/does-not-exist", SigningKey: testSigningKey(t)}); err == nil {
		t.Error("a missing DataDir was accepted")
	}
}

func testSigningKey(t *testing.T) *rsa.PrivateKey {
	testKeys(t)
	return serverKey
}

func TestConfigErrors(t *testing.T) {
	testKeys(t)
	redirect := []string{appCallback}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"relative base", Config{BaseURL: "/ehr"}, "BaseURL"},
		{"unknown client type", Config{BaseURL: "http://h/ehr", Clients: []Client{{ID: "a", Type: "magic", RedirectURIs: redirect}}}, "unknown Type"},
		{"basic without secret", Config{BaseURL: "http://h/ehr", Clients: []Client{{ID: "a", Type: ClientSecretBasic, RedirectURIs: redirect}}}, "Secret"},
		{"jwt without key", Config{BaseURL: "http://h/ehr", Clients: []Client{{ID: "a", Type: ClientPrivateKeyJWT, RedirectURIs: redirect}}}, "PublicKey"},
		{"no redirect", Config{BaseURL: "http://h/ehr", Clients: []Client{{ID: "a", Type: ClientPublic}}}, "RedirectURIs"},
		{"duplicate", Config{BaseURL: "http://h/ehr", Clients: []Client{{ID: "a", Type: ClientPublic, RedirectURIs: redirect}, {ID: "a", Type: ClientPublic, RedirectURIs: redirect}}}, "twice"},
		{"unknown auto-pick", Config{BaseURL: "http://h/ehr", AutoPickPatient: "nobody"}, "AutoPickPatient"},
		{"FHIR base on another path", Config{BaseURL: "http://h/ehr", FHIRBaseURL: "http://h:9/fhir"}, "FHIRBaseURL"},
		{"relative FHIR base", Config{BaseURL: "http://h/ehr", FHIRBaseURL: "/ehr/fhir"}, "FHIRBaseURL"},
	}
	for _, tt := range tests {
		tt.cfg.SigningKey = serverKey
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about %s", tt.name, err, tt.want)
		}
	}
	s, err := New(Config{BaseURL: "http://h/ehr", FHIRBaseURL: "http://h:9/ehr/fhir/", SigningKey: serverKey})
	if err != nil {
		t.Fatalf("FHIRBaseURL on another port: %v", err)
	}
	if s.FHIRBase() != "http://h:9/ehr/fhir" || s.TokenURL() != "http://h/ehr/token" {
		t.Errorf("FHIRBaseURL: FHIR base %q, token %q", s.FHIRBase(), s.TokenURL())
	}
}
