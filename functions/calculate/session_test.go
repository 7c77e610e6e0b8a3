package calculate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// failingAssessor answers every call with err.
type failingAssessor struct{ err error }

func (f failingAssessor) Load(context.Context, string) (*assess.Session, error) { return nil, f.err }
func (f failingAssessor) Context(context.Context, *assess.Session) (*assess.Context, error) {
	return nil, f.err
}
func (f failingAssessor) Assess(context.Context, *assess.Session, calc.Inputs) (*assess.Assessment, error) {
	return nil, f.err
}
func (f failingAssessor) End(context.Context, *assess.Session) error { return f.err }

func TestSessionErrorsMapToStatus(t *testing.T) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := calc.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		err     error
		status  int
		code    string
		minutes int    // limit_minutes
		message string // in the message
	}{
		{assess.ErrNoSession, http.StatusUnauthorized, "session_expired", 0, "Relaunch"},
		{assess.ErrIdle, http.StatusUnauthorized, "session_idle", 30, "30 minutes without use"},
		{assess.ErrLifetime, http.StatusUnauthorized, "session_lifetime", 480, "at most 8 hours"},
		{assess.ErrSignedOut, http.StatusUnauthorized, "session_signed_out", 0, "signed out"},
		{fmt.Errorf("%w (%w)", assess.ErrUnsealed, store.ErrUnsealable), http.StatusUnauthorized, "session_expired", 0, "Relaunch"},
		{assess.ErrSessionExpired, http.StatusUnauthorized, "session_expired", 0, "Relaunch"},
		{fmt.Errorf("%w: token endpoint 503", assess.ErrEHRUnavailable), http.StatusBadGateway, "ehr_unavailable", 0, ""},
		{context.DeadlineExceeded, http.StatusGatewayTimeout, "timeout", 0, ""},
		{errors.New("store down"), http.StatusInternalServerError, "internal", 0, ""},
	}
	for _, tt := range tests {
		h := New(&Handler{Engine: engine, Scoring: cfg, Assess: failingAssessor{tt.err}, Log: slog.New(slog.DiscardHandler),
			IdleTimeout: 30 * time.Minute, SessionTTL: 8 * time.Hour})
		for _, path := range []string{"/api/context", "/api/assessment", "/api/session"} {
			rec := httptest.NewRecorder()
			method := "GET"
			if path == "/api/session" {
				method = "DELETE"
			}
			req := httptest.NewRequest(method, path, nil)
			req.Header.Set("Authorization", "Bearer x")
			h.ServeHTTP(rec, req)
			var body struct {
				Error, Message string
				LimitMinutes   int `json:"limit_minutes"`
			}
			json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Error != tt.code || body.Message == "" || body.LimitMinutes != tt.minutes ||
				!strings.Contains(body.Message, tt.message) {
				t.Errorf("%s %s with %v: %d %+v, want %d %s, %d minutes, %q", method, path, tt.err, rec.Code, body, tt.status, tt.code, tt.minutes, tt.message)
			}
			if tt.status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", path)
			}
		}
	}
}

// fakeHandoffs accepts one code with one nonce.
type fakeHandoffs struct{ code, nonce, handle string }

func (f fakeHandoffs) ExchangeHandoff(_ context.Context, code, nonce string) (string, error) {
	switch {
	case code == "store-down":
		return "", errors.New("store down")
	case code == "store-unavailable":
		return "", fmt.Errorf("store: get: %w", store.ErrUnavailable)
	case code != f.code || nonce != f.nonce:
		return "", smart.ErrHandoff
	}
	return f.handle, nil
}

// TestSessionExchange is POST /api/session: the nonce comes from the
// hand-off cookie, else from the body; a wrong one, or none, is 401.
func TestSessionExchange(t *testing.T) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := calc.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	code := strings.Repeat("c", 43)
	fake := fakeHandoffs{code: code, nonce: "n1", handle: "the-handle"}
	cookie := web.HandoffCookie(smart.Correlation(code), "n1", 0)
	for _, tc := range []struct {
		name   string
		body   string
		cookie *http.Cookie
		status int
		code   string
	}{
		{"cookie", `{"handoff":"` + code + `"}`, cookie, 200, ""},
		{"sessionStorage nonce", `{"handoff":"` + code + `","binding":"n1"}`, nil, 200, ""},
		{"another browser", `{"handoff":"` + code + `"}`, nil, 401, "handoff_refused"},
		{"wrong nonce", `{"handoff":"` + code + `","binding":"n2"}`, nil, 401, "handoff_refused"},
		{"not JSON", `handoff=` + code, nil, 400, "malformed_body"},
		{"unknown field", `{"handoff":"` + code + `","session":"x"}`, nil, 400, "malformed_body"},
		{"empty", `{}`, nil, 400, "malformed_body"},
		{"store failure", `{"handoff":"store-down"}`, nil, 500, "internal"},
		{"store unavailable", `{"handoff":"store-unavailable"}`, nil, 503, "store_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := New(&Handler{Engine: engine, Scoring: cfg, Handoff: fake, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
			req := httptest.NewRequest("POST", "/api/session", strings.NewReader(tc.body))
			if tc.cookie != nil {
				req.AddCookie(tc.cookie)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var body struct{ Error, Message, Session string }
			json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tc.status || body.Error != tc.code {
				t.Fatalf("%d %+v, want %d %s", rec.Code, body, tc.status, tc.code)
			}
			if tc.status == 200 && body.Session != "the-handle" {
				t.Errorf("session %q", body.Session)
			}
			if strings.Contains(logs.String(), code) || strings.Contains(logs.String(), "the-handle") {
				t.Errorf("log holds the code or the handle:\n%s", logs.String())
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := calc.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Errorf("store: ping: %w", store.ErrUnavailable)
	for _, tt := range []struct {
		name              string
		ready             func(context.Context) error
		readyz, healthz   int
		wantRetryAfterSet bool
	}{
		{"no check", nil, http.StatusOK, http.StatusOK, false},
		{"store answers", func(context.Context) error { return nil }, http.StatusOK, http.StatusOK, false},
		{"store down", func(context.Context) error { return down }, http.StatusServiceUnavailable, http.StatusOK, true},
	} {
		h := New(&Handler{Engine: engine, Scoring: cfg, Ready: tt.ready, Log: slog.New(slog.DiscardHandler)})
		for path, want := range map[string]int{"/readyz": tt.readyz, "/healthz": tt.healthz} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != want {
				t.Errorf("%s: %s = %d, want %d", tt.name, path, rec.Code, want)
			}
			if path == "/readyz" && (rec.Header().Get("Retry-After") != "") != tt.wantRetryAfterSet {
				t.Errorf("%s: %s Retry-After %q", tt.name, path, rec.Header().Get("Retry-After"))
			}
		}
	}
}

// okAssessor loads any session and answers an empty assessment, counting
// the assessments it was asked for.
type okAssessor struct{ assessed *int }

func (okAssessor) Load(context.Context, string) (*assess.Session, error) {
	return &assess.Session{}, nil
}
func (okAssessor) Context(context.Context, *assess.Session) (*assess.Context, error) {
	return &assess.Context{}, nil
}
func (a okAssessor) Assess(context.Context, *assess.Session, calc.Inputs) (*assess.Assessment, error) {
	*a.assessed++
	return &assess.Assessment{}, nil
}
func (okAssessor) End(context.Context, *assess.Session) error { return nil }

func TestAssessmentPostRequiresJSON(t *testing.T) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := calc.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		contentType string
		status      int
		code        string
	}{
		{"application/json", http.StatusOK, ""},
		{"application/json; charset=utf-8", http.StatusOK, ""},
		{"Application/JSON", http.StatusOK, ""},
		{"", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"text/plain", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/jsonx", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/json; charset", http.StatusUnsupportedMediaType, "unsupported_media_type"},
	} {
		n := 0
		h := New(&Handler{Engine: engine, Scoring: cfg, Assess: okAssessor{&n}, Log: slog.New(slog.DiscardHandler)})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/assessment", strings.NewReader(`{"inputs":{}}`))
		req.Header.Set("Authorization", "Bearer x")
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		h.ServeHTTP(rec, req)
		var body struct{ Error, Message string }
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tt.status || body.Error != tt.code {
			t.Errorf("Content-Type %q: %d %+v, want %d %q", tt.contentType, rec.Code, body, tt.status, tt.code)
		}
		if wantAssessed := tt.status == http.StatusOK; (n == 1) != wantAssessed {
			t.Errorf("Content-Type %q: assessed %d times", tt.contentType, n)
		}
	}
}
