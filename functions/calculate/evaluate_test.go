package calculate

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

func testEngine(t *testing.T) *calc.Engine {
	t.Helper()
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	e, err := calc.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEvaluateHandler(t *testing.T) {
	h := EvaluateHandler(testEngine(t))
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		code        string // error code, or "" for a result
		message     string // part of the error message
		lang        string // Accept-Language
		check       func(t *testing.T, r *calc.Result)
	}{
		{name: "PRECISE-HBR", method: "POST", contentType: "application/json",
			body:   `{"calculator": "precise-hbr", "inputs": {"age": 72, "hemoglobin": {"value": 123, "unit": "g/L"}, "egfr": 50, "wbc": 8, "prior_bleeding": false, "oral_anticoagulation": true, "arc_hbr_other": false}}`,
			status: 200, check: func(t *testing.T, r *calc.Result) {
				v, _ := r.Value("score")
				// 2 + 10.5 + 6.75 + 2.75 + 4 + 5 = 31
				if r.Status != calc.StatusOK || v.Value != 31.0 || v.Category != "very-hbr" {
					t.Errorf("status %s score %v %s", r.Status, v.Value, v.Category)
				}
				for _, in := range r.Inputs {
					if in.Origin != calc.OriginEntered {
						t.Errorf("input %s origin %s", in.Name, in.Origin)
					}
				}
			}},
		{name: "charset in content type", method: "POST", contentType: "application/json; charset=utf-8",
			body: `{"calculator": "egfr-ckd-epi-2021", "inputs": {"age": 55, "sex": "male", "creatinine": 1.09}}`, status: 200,
			check: func(t *testing.T, r *calc.Result) {
				if v, _ := r.Value("egfr"); v.Value != 80.0 {
					t.Errorf("egfr %v", v.Value)
				}
			}},
		{name: "missing inputs are a result, not an error", method: "POST", contentType: "application/json",
			body: `{"calculator": "arc-hbr", "inputs": {"age": 80}}`, status: 200,
			check: func(t *testing.T, r *calc.Result) {
				if r.Status != calc.StatusIncomplete || len(r.Missing) == 0 {
					t.Errorf("status %s missing %v", r.Status, r.Missing)
				}
			}},
		{name: "out of range is a result", method: "POST", contentType: "application/json",
			body: `{"calculator": "precise-dapt", "inputs": {"age": 15}}`, status: 200,
			check: func(t *testing.T, r *calc.Result) {
				if r.Status != calc.StatusOutOfRange || !strings.Contains(r.Message.String(), "Age") {
					t.Errorf("status %s message %q", r.Status, r.Message)
				}
			}},
		{name: "no content type is accepted", method: "POST", body: `{"calculator": "crcl-cockcroft-gault", "inputs": {}}`, status: 200},
		{name: "GET", method: "GET", status: 405, code: "method_not_allowed"},
		{name: "PUT", method: "PUT", body: `{}`, status: 405, code: "method_not_allowed"},
		{name: "form body", method: "POST", contentType: "application/x-www-form-urlencoded", body: "calculator=arc-hbr", status: 415, code: "unsupported_media_type"},
		{name: "malformed JSON", method: "POST", contentType: "application/json", body: `{"calculator": "arc-hbr",`, status: 400, code: "malformed_body", message: "ends early"},
		{name: "syntax error", method: "POST", contentType: "application/json", body: `{"calculator": arc}`, status: 400, code: "malformed_body", message: "malformed JSON"},
		{name: "empty body", method: "POST", contentType: "application/json", body: ``, status: 400, code: "malformed_body", message: "empty"},
		{name: "array body", method: "POST", contentType: "application/json", body: `[1]`, status: 400, code: "malformed_body"},
		{name: "unknown field", method: "POST", contentType: "application/json", body: `{"calculator": "arc-hbr", "inputs": {}, "patient": "x"}`, status: 400, code: "malformed_body", message: "patient"},
		{name: "two objects", method: "POST", contentType: "application/json", body: `{"calculator": "arc-hbr"} {}`, status: 400, code: "malformed_body"},
		{name: "calculator of the wrong type", method: "POST", contentType: "application/json", body: `{"calculator": 3}`, status: 400, code: "malformed_body", message: "calculator"},
		{name: "no calculator", method: "POST", contentType: "application/json", body: `{"inputs": {}}`, status: 400, code: "missing_calculator"},
		{name: "unknown calculator", method: "POST", contentType: "application/json", body: `{"calculator": "has-bled", "inputs": {}}`, status: 400, code: "unknown_calculator", message: "precise-hbr"},
		{name: "wrong type", method: "POST", contentType: "application/json", body: `{"calculator": "precise-hbr", "inputs": {"age": "seventy"}}`, status: 400, code: "invalid_input", message: "Age: the value is not of the right kind; give a number"},
		{name: "unknown input", method: "POST", contentType: "application/json", body: `{"calculator": "precise-hbr", "inputs": {"ages": 70}}`, status: 400, code: "invalid_input", message: "ages"},
		{name: "unknown unit", method: "POST", contentType: "application/json", body: `{"calculator": "precise-hbr", "inputs": {"hemoglobin": {"value": 7, "unit": "mmol/dL"}}}`, status: 400, code: "unknown_unit", message: "g/dL"},
		{name: "bad enum", method: "POST", contentType: "application/json", body: `{"calculator": "arc-hbr", "inputs": {"ischemic_stroke": "severe"}}`, status: 400, code: "invalid_input", message: "Ischaemic stroke: the value is not valid; give one of None"},
		{name: "zh-TW error", lang: "zh-TW", method: "POST", contentType: "application/json", body: `{"calculator": "precise-hbr", "inputs": {"age": "seventy"}}`, status: 400, code: "invalid_input", message: "年齡：數值的類型不對"},
		{name: "zh-TW result", lang: "zh-TW", method: "POST", contentType: "application/json",
			body: `{"calculator": "precise-dapt", "inputs": {"age": 15}}`, status: 200,
			check: func(t *testing.T, r *calc.Result) {
				if msg := r.Message.String(); !strings.Contains(msg, "超出") || !strings.Contains(msg, "年齡") {
					t.Errorf("message %q, want it in zh-TW", msg)
				}
			}},
		{name: "body too large", method: "POST", contentType: "application/json", body: `{"calculator": "arc-hbr", "inputs": {}, "x": "` + strings.Repeat("a", MaxEvaluateBody) + `"}`, status: 413, code: "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/api/evaluate", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.lang != "" {
				req.Header.Set("Accept-Language", tt.lang)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("cache-control %q", cc)
			}
			if tt.code != "" {
				var e struct{ Error, Message string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
					t.Fatalf("error body %s: %v", rec.Body, err)
				}
				if e.Error != tt.code || e.Message == "" || !strings.Contains(e.Message, tt.message) {
					t.Errorf("error %q %q, want %q containing %q", e.Error, e.Message, tt.code, tt.message)
				}
				if strings.Contains(e.Message, "json:") || strings.Contains(e.Message, "map[") {
					t.Errorf("message leaks Go internals: %q", e.Message)
				}
				if tt.status == 405 && rec.Header().Get("Allow") != "POST" {
					t.Errorf("Allow %q", rec.Header().Get("Allow"))
				}
				return
			}
			var r calc.Result
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
				t.Fatalf("result %s: %v", rec.Body, err)
			}
			if tt.check != nil {
				tt.check(t, &r)
			}
		})
	}
}

func TestScoringConfigHandler(t *testing.T) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	h := ScoringConfigHandler(cfg)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/scoring-config", nil))
	if rec.Code != 200 || rec.Body.String() != string(cfg.Raw()) {
		t.Fatalf("status %d, body differs from the embedded configuration", rec.Code)
	}
	etag := rec.Header().Get("ETag")
	if etag == "" || etag != cfg.ETag() || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("etag %q content type %q", etag, rec.Header().Get("Content-Type"))
	}
	var doc struct {
		Version     string `json:"version"`
		Calculators []struct {
			ID string `json:"id"`
		} `json:"calculators"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc.Version != cfg.Version || len(doc.Calculators) != 6 {
		t.Errorf("document %+v: %v", doc, err)
	}

	for _, inm := range []string{etag, `"other", ` + etag, "W/" + etag, "*"} {
		req := httptest.NewRequest("GET", "/api/scoring-config", nil)
		req.Header.Set("If-None-Match", inm)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: status %d, body %d bytes", inm, rec.Code, rec.Body.Len())
		}
	}
	req := httptest.NewRequest("GET", "/api/scoring-config", nil)
	req.Header.Set("If-None-Match", `"2020.1.0-deadbeef"`)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("stale etag: status %d", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/api/scoring-config", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d body %d", rec.Code, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/scoring-config", strings.NewReader("{}")))
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestMessagesServed checks that the page gets the server's own catalogue
// at messages.json, beside the embedded UI files, and revalidates it.
func TestMessagesServed(t *testing.T) {
	h := New(&Handler{Engine: testEngine(t), Scoring: testEngine(t).Config(), Log: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/messages.json", nil))
	if rec.Code != 200 || rec.Body.String() != string(message.Default().JSON()) {
		t.Fatalf("GET /messages.json: status %d, %d bytes; want the catalogue", rec.Code, rec.Body.Len())
	}
	req := httptest.NewRequest("GET", "/messages.json", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", rec.Code)
	}
}
