package cds

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	got []Feedback
	err error
}

func (r *recorder) Record(_ context.Context, fb []Feedback) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, fb...)
	return nil
}

func TestFeedback(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, func(e *env) { e.svc.Feedback = rec })
	ctx := context.Background()
	overridden := map[string]any{"feedback": []any{map[string]any{
		"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:05:31Z",
		"overrideReason": map[string]any{
			"reason":      map[string]any{"system": "http://hl7.org/fhir/ValueSet/non-adherence-reason", "code": "patient-refused"},
			"userComment": "Mr Jan Kowalski refused, see note",
		}}}}
	accepted := map[string]any{"feedback": []any{map[string]any{
		"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:05:31.52Z",
		"acceptedSuggestions": []any{map[string]any{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}}}}}
	tests := []struct {
		name string
		body any
		want int
	}{
		{"overridden with a reason and a comment", overridden, http.StatusOK},
		{"accepted", accepted, http.StatusOK},
		{"empty", map[string]any{"feedback": []any{}}, http.StatusBadRequest},
		{"bad outcome", map[string]any{"feedback": []any{map[string]any{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-11-26T10:05:31Z"}}}, http.StatusBadRequest},
		{"accepted without suggestions", map[string]any{"feedback": []any{map[string]any{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:05:31Z"}}}, http.StatusBadRequest},
		{"no timestamp", map[string]any{"feedback": []any{map[string]any{"card": "x", "outcome": "overridden"}}}, http.StatusBadRequest},
		{"not an object", []any{1, 2}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, err := e.cli.Feedback(ctx, ServicePatientView, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
		})
	}
	if len(rec.got) != 2 {
		t.Fatalf("recorded %d items, want 2", len(rec.got))
	}
	o := rec.got[0]
	if o.Service != ServicePatientView || o.Client != "sandbox" || o.Card != "9368d37b-283f-44a0-93ea-547cebab93ed" ||
		o.Outcome != "overridden" || o.ReasonCode != "patient-refused" || !o.OutcomeTime.Equal(time.Date(2026, 11, 26, 10, 5, 31, 0, time.UTC)) {
		t.Errorf("recorded %+v", o)
	}
	if a := rec.got[1]; a.Outcome != "accepted" || a.Accepted != 1 {
		t.Errorf("recorded %+v", a)
	}
	if strings.Contains(e.logs.String(), "Kowalski") {
		t.Errorf("the clinician's comment reached the log")
	}

	t.Run("a failing store is a 503, never a 500", func(t *testing.T) {
		rec.err = errors.New("firestore down")
		status, _ := e.cli.Feedback(ctx, ServiceOrderSign, accepted)
		if status != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", status)
		}
	})
}

// TestFeedbackLog: by default, feedback is a log line without the comment.
func TestFeedbackLog(t *testing.T) {
	e := newEnv(t)
	status, err := e.cli.Feedback(context.Background(), ServiceOrderSelect, map[string]any{"feedback": []any{map[string]any{
		"card": "f6b95768-b1c8-40dc-8385-bf3504b82ffb", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T00:00:00Z",
		"overrideReason": map[string]any{"userComment": "patient Doe is on dialysis"}}}})
	if err != nil || status != http.StatusOK {
		t.Fatalf("status %d, %v", status, err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"message":"cds: feedback"`) || !strings.Contains(logs, "f6b95768-b1c8-40dc-8385-bf3504b82ffb") {
		t.Errorf("no feedback line:\n%s", logs)
	}
	if strings.Contains(logs, "dialysis") || strings.Contains(logs, "Doe") {
		t.Errorf("the comment reached the log:\n%s", logs)
	}
}
