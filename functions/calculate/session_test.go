package calculate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/store"
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
		err    error
		status int
		code   string
	}{
		{assess.ErrNoSession, http.StatusUnauthorized, "session_expired"},
		{assess.ErrSessionExpired, http.StatusUnauthorized, "session_expired"},
		{fmt.Errorf("%w: token endpoint 503", assess.ErrEHRUnavailable), http.StatusBadGateway, "ehr_unavailable"},
		{context.DeadlineExceeded, http.StatusGatewayTimeout, "timeout"},
		{errors.New("store down"), http.StatusInternalServerError, "internal"},
		{fmt.Errorf("assess: load session: %w", fmt.Errorf("store: get session: %w: %w", store.ErrUnavailable, context.DeadlineExceeded)), http.StatusServiceUnavailable, "store_unavailable"},
		{fmt.Errorf("%w: %w", assess.ErrEHRUnavailable, store.ErrUnavailable), http.StatusServiceUnavailable, "store_unavailable"},
	}
	for _, tt := range tests {
		h := New(&Handler{Engine: engine, Scoring: cfg, Assess: failingAssessor{tt.err}, Log: slog.New(slog.DiscardHandler)})
		for _, path := range []string{"/api/context", "/api/assessment"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer x")
			h.ServeHTTP(rec, req)
			var body struct{ Error, Message string }
			json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Error != tt.code || body.Message == "" {
				t.Errorf("%s with %v: %d %+v, want %d %s", path, tt.err, rec.Code, body, tt.status, tt.code)
			}
			if got := rec.Header().Get("Retry-After"); (tt.status == http.StatusServiceUnavailable) != (got != "") {
				t.Errorf("%s with %v: Retry-After %q", path, tt.err, got)
			}
			if tt.status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", path)
			}
		}
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
