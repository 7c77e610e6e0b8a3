package cds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Feedback is one card outcome the CDS client reports, reduced to what
// carries no PHI: the clinician's free-text comment is dropped.
type Feedback struct {
	Service     string    `json:"service"`
	Client      string    `json:"client"` // the registered CDS client's id
	Card        string    `json:"card"`   // the card's uuid
	Outcome     string    `json:"outcome"`
	Accepted    int       `json:"accepted_suggestions,omitempty"`
	ReasonCode  string    `json:"override_reason_code,omitempty"`
	ReasonSys   string    `json:"override_reason_system,omitempty"`
	OutcomeTime time.Time `json:"outcome_time"`
	ReceivedAt  time.Time `json:"received_at"`
}

// FeedbackRecorder keeps feedback. Record must not block for long: the
// client is waiting.
type FeedbackRecorder interface {
	Record(ctx context.Context, fb []Feedback) error
}

// LogFeedback records feedback as log lines (the default).
type LogFeedback struct{ Log *slog.Logger }

// Record implements FeedbackRecorder.
func (l LogFeedback) Record(ctx context.Context, fb []Feedback) error {
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	for _, f := range fb {
		log.InfoContext(ctx, "cds: feedback", "cds_service", f.Service, "cds_client", f.Client, "card", f.Card,
			"outcome", f.Outcome, "accepted_suggestions", f.Accepted, "override_reason_system", f.ReasonSys,
			"override_reason_code", f.ReasonCode, "outcome_time", f.OutcomeTime.Format(time.RFC3339))
	}
	return nil
}

// maxFeedback bounds one feedback call.
const (
	maxFeedbackItems = 100
	maxFeedbackBytes = 256 << 10
)

type feedbackBody struct {
	Feedback []struct {
		Card                string            `json:"card"`
		Outcome             string            `json:"outcome"`
		AcceptedSuggestions []json.RawMessage `json:"acceptedSuggestions"`
		OverrideReason      *struct {
			Reason *struct {
				System string `json:"system"`
				Code   string `json:"code"`
			} `json:"reason"`
		} `json:"overrideReason"`
		OutcomeTimestamp string `json:"outcomeTimestamp"`
	} `json:"feedback"`
}

// parseFeedback checks a feedback body (CDS Hooks 2.0 §Feedback).
func parseFeedback(body []byte, service, client string, now time.Time) ([]Feedback, error) {
	var fb feedbackBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fb); err != nil || dec.More() {
		return nil, badf("the body is not a feedback object ({\"feedback\": [...]})")
	}
	if len(fb.Feedback) == 0 {
		return nil, badf("feedback must hold at least one item")
	}
	if len(fb.Feedback) > maxFeedbackItems {
		return nil, badf("at most %d feedback items per call", maxFeedbackItems)
	}
	out := make([]Feedback, 0, len(fb.Feedback))
	for i, f := range fb.Feedback {
		switch {
		case f.Card == "" || len(f.Card) > 128:
			return nil, badf("feedback[%d].card must be the card's uuid", i)
		case f.Outcome != "accepted" && f.Outcome != "overridden":
			return nil, badf("feedback[%d].outcome must be accepted or overridden", i)
		case f.Outcome == "accepted" && len(f.AcceptedSuggestions) == 0:
			return nil, badf("feedback[%d]: an accepted outcome needs acceptedSuggestions", i)
		}
		t, err := time.Parse(time.RFC3339Nano, f.OutcomeTimestamp)
		if err != nil {
			return nil, badf("feedback[%d].outcomeTimestamp must be an RFC 3339 time", i)
		}
		rec := Feedback{Service: service, Client: client, Card: f.Card, Outcome: f.Outcome,
			Accepted: len(f.AcceptedSuggestions), OutcomeTime: t.UTC(), ReceivedAt: now.UTC()}
		if r := f.OverrideReason; r != nil && r.Reason != nil {
			if len(r.Reason.System) > 256 || len(r.Reason.Code) > 128 {
				return nil, badf("feedback[%d].overrideReason.reason is too long", i)
			}
			rec.ReasonSys, rec.ReasonCode = r.Reason.System, r.Reason.Code
		}
		out = append(out, rec)
	}
	return out, nil
}

// serveFeedback records card feedback. The JWT's aud may be the feedback
// URL or the service's URL.
func (s *Service) serveFeedback(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	log := s.log(r).With("cds_service", id)
	if _, ok := services[id]; !ok {
		writeError(w, http.StatusNotFound, "not-found", "No CDS service with this id: see GET /cds-services.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.budget())
	defer cancel()
	if s.initErr != nil {
		writeError(w, http.StatusServiceUnavailable, "exception", "The CDS service is not configured on this server.")
		return
	}
	v, err := s.authenticate(ctx, r.Header.Get("Authorization"), s.ServiceURL(id)+"/feedback", s.ServiceURL(id))
	if err != nil {
		s.refuse(w, log, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFeedbackBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too-costly", "The feedback body is too large or unreadable.")
		return
	}
	fb, err := parseFeedback(body, id, v.client.ID, s.now())
	if err != nil {
		var br *badRequest
		msg := "Bad feedback."
		if errors.As(err, &br) {
			msg = br.msg
		}
		log.Warn("cds: bad feedback", "status", http.StatusBadRequest, "reason", msg)
		writeError(w, http.StatusBadRequest, "invalid", msg)
		return
	}
	rec := s.Feedback
	if rec == nil {
		rec = LogFeedback{Log: log}
	}
	if err := rec.Record(ctx, fb); err != nil {
		log.Error("cds: feedback not recorded", "err", err.Error(), "items", len(fb))
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "transient", "The feedback could not be recorded; try again.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
