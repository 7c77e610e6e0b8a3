package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
)

func TestCloudLoggingShape(t *testing.T) {
	tests := []struct {
		name  string
		log   func(*slog.Logger)
		level slog.Level
		want  map[string]string
	}{
		{"info", func(l *slog.Logger) { l.Info("launch started", "iss", "https://ehr") }, slog.LevelInfo,
			map[string]string{"severity": "INFO", "message": "launch started", "iss": "https://ehr"}},
		{"warn", func(l *slog.Logger) { l.Warn("no binding") }, slog.LevelInfo,
			map[string]string{"severity": "WARNING", "message": "no binding"}},
		{"error", func(l *slog.Logger) { l.Error("token endpoint refused") }, slog.LevelInfo,
			map[string]string{"severity": "ERROR", "message": "token endpoint refused"}},
		{"debug", func(l *slog.Logger) { l.Debug("detail") }, slog.LevelDebug,
			map[string]string{"severity": "DEBUG", "message": "detail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(New(&buf, tt.level))
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %q (line %s)", k, got[k], v, buf.String())
				}
			}
			if _, ok := got["level"]; ok {
				t.Errorf("line still has slog's level key: %s", buf.String())
			}
			if _, ok := got["msg"]; ok {
				t.Errorf("line still has slog's msg key: %s", buf.String())
			}
		})
	}
}

func TestLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, ParseLevel("warn")).Info("hidden")
	if buf.Len() != 0 {
		t.Errorf("info logged at warn level: %s", buf.String())
	}
}

func TestForRequestTrace(t *testing.T) {
	tests := []struct {
		header, project, want string
	}{
		{"105445aa7843bc8bf206b12000100000/1;o=1", "p1", "projects/p1/traces/105445aa7843bc8bf206b12000100000"},
		{"", "p1", ""},
		{"105445aa7843bc8bf206b12000100000/1", "", ""},
		{"not-hex!/1", "p1", ""},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		r := httptest.NewRequest("GET", "/launch", nil)
		if tt.header != "" {
			r.Header.Set("X-Cloud-Trace-Context", tt.header)
		}
		ForRequest(New(&buf, slog.LevelInfo), r, tt.project, "launch").Info("x")
		var got map[string]any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if tr, _ := got[TraceKey].(string); tr != tt.want {
			t.Errorf("header %q project %q: trace %q, want %q", tt.header, tt.project, tr, tt.want)
		}
		if got["function"] != "launch" {
			t.Errorf("function = %v", got["function"])
		}
	}
}
