package calculate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// Assessor is what the session API needs: shared/assess's Service.
type Assessor interface {
	Load(ctx context.Context, authorization string) (*assess.Session, error)
	Context(ctx context.Context, ss *assess.Session) (*assess.Context, error)
	Assess(ctx context.Context, ss *assess.Session, overrides calc.Inputs) (*assess.Assessment, error)
	End(ctx context.Context, ss *assess.Session) error
}

// Handoffs exchanges the callback's one-time hand-off codes: shared/smart's
// Flow.
type Handoffs interface {
	ExchangeHandoff(ctx context.Context, code, nonce string) (string, error)
}

// MaxHandoffBody bounds POST /api/session.
const MaxHandoffBody = 4 << 10

// exchange serves POST /api/session {"handoff": code}: the code, spent once,
// becomes {"session": handle}. Only the browser the callback sent it to
// can exchange it: it shows the hand-off's binding nonce in the cookie the
// callback set, or where that cookie was refused, in "binding" from this
// tab's sessionStorage.
func (h *Handler) exchange(w http.ResponseWriter, r *http.Request) {
	log := logging.FromContext(r.Context(), slog.Default())
	if h.Handoff == nil {
		web.JSONError(w, http.StatusServiceUnavailable, "not_configured", say(r).Text("api.handoff-not-configured", nil))
		return
	}
	var body struct {
		Handoff string `json:"handoff"`
		Binding string `json:"binding,omitempty"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxHandoffBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Handoff == "" {
		log.Warn("session refused", "status", 400, "cause", "malformed_body")
		web.JSONError(w, http.StatusBadRequest, "malformed_body", say(r).Text("api.body-handoff", nil))
		return
	}
	corr := smart.Correlation(body.Handoff)
	nonce := body.Binding
	if c, err := r.Cookie(web.HandoffCookieName(corr)); err == nil && c.Value != "" {
		nonce = c.Value
	}
	handle, err := h.Handoff.ExchangeHandoff(r.Context(), body.Handoff, nonce)
	if errors.Is(err, store.ErrUnavailable) {
		// The code is not spent: keep its cookie, so that the page's
		// retry can still exchange it.
		log.Error("session store unavailable", "status", 503, "cause", "store_unavailable", "handoff", corr, "err", err.Error())
		w.Header().Set("Retry-After", strconv.Itoa(store.RetryAfterSeconds))
		web.JSONError(w, http.StatusServiceUnavailable, "store_unavailable", say(r).Text("api.store-unavailable", nil))
		return
	}
	http.SetCookie(w, web.ClearHandoffCookie(corr))
	switch {
	case errors.Is(err, smart.ErrHandoff):
		log.Warn("session refused", "status", 401, "cause", "handoff_refused", "handoff", corr, "err", err.Error())
		unauthorized(w, "handoff_refused", say(r).Text("api.handoff-refused", nil))
		return
	case err != nil:
		log.Error("session hand-off failed", "status", 500, "handoff", corr, "err", err.Error())
		web.JSONError(w, http.StatusInternalServerError, "internal", say(r).Text("api.handoff-failed", nil))
		return
	}
	log.Info("session handed off", "handoff", corr)
	web.JSON(w, http.StatusOK, map[string]string{"session": handle})
}

// signOut serves DELETE /api/session: the session ends on every instance.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	ss := h.session(w, r)
	if ss == nil {
		return
	}
	if err := h.Assess.End(r.Context(), ss); err != nil {
		h.fail(w, r, logging.FromContext(r.Context(), slog.Default()), err)
		return
	}
	logging.FromContext(r.Context(), slog.Default()).Info("session ended", "cause", "signed_out")
	w.WriteHeader(http.StatusNoContent)
}

// MaxAssessmentBody bounds POST /api/assessment.
const MaxAssessmentBody = 64 << 10

// session loads the request's session, or answers 401 and returns nil.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) *assess.Session {
	log := logging.FromContext(r.Context(), slog.Default())
	if h.Assess == nil {
		web.JSONError(w, http.StatusServiceUnavailable, "not_configured", say(r).Text("api.assess-not-configured", nil))
		return nil
	}
	ss, err := h.Assess.Load(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		h.fail(w, r, log, err)
		return nil
	}
	if err := ss.ActivityError(); err != nil {
		// Served all the same: the idle timeout then counts from the
		// last activity recorded, so the session ends early, never late.
		log.Warn("session activity not recorded", "cause", activityCause(err), "err", err.Error())
	}
	return ss
}

func (h *Handler) context(w http.ResponseWriter, r *http.Request) {
	ss := h.session(w, r)
	if ss == nil {
		return
	}
	c, err := h.Assess.Context(r.Context(), ss)
	if err != nil {
		h.fail(w, r, logging.FromContext(r.Context(), slog.Default()), err)
		return
	}
	localized(w, r, http.StatusOK, c)
}

func (h *Handler) assessment(w http.ResponseWriter, r *http.Request) {
	log := logging.FromContext(r.Context(), slog.Default())
	ss := h.session(w, r)
	if ss == nil {
		return
	}
	var overrides calc.Inputs
	if r.Method == http.MethodPost {
		if !isJSON(r.Header.Get("Content-Type")) {
			log.Warn("assessment: request refused", "status", 415, "error", "unsupported_media_type", "content_type", clipHeader(r.Header.Get("Content-Type")))
			w.Header().Set("Accept-Post", "application/json")
			web.JSONError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", say(r).Text("api.json-only", nil))
			return
		}
		var body struct {
			Inputs map[string]json.RawMessage `json:"inputs"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, MaxAssessmentBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			log.Warn("assessment: request refused", "status", 400, "error", "malformed_body")
			web.JSONError(w, http.StatusBadRequest, "malformed_body", say(r).Text("api.body-inputs", nil))
			return
		}
		in, err := h.Engine.ParseInputs(body.Inputs, calc.OriginEntered)
		if err != nil {
			log.Warn("assessment: request refused", "status", 400, "error", "invalid_input", "reason", err.Error())
			web.JSONError(w, http.StatusBadRequest, "invalid_input", inputErrorText(r, h.Scoring, err))
			return
		}
		overrides = in
	}
	a, err := h.Assess.Assess(r.Context(), ss, overrides)
	if err != nil {
		h.fail(w, r, log, err)
		return
	}
	log.Info("assessment served", "what_if", len(overrides), "data_errors", len(a.DataErrors), "fhir_requests", a.FHIRRequests)
	a.Language = string(message.Negotiate(r.Header.Get("Accept-Language")))
	localized(w, r, http.StatusOK, a)
}

// activityCause names a failed activity write for the log.
func activityCause(err error) string {
	if errors.Is(err, store.ErrUnavailable) {
		return "store_unavailable"
	}
	return "store_error"
}

// isJSON reports whether a Content-Type is application/json (any
// parameters, such as charset, allowed).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// clipHeader bounds a header value before it reaches a log line.
func clipHeader(v string) string {
	if len(v) > 100 {
		return v[:100] + "…"
	}
	return v
}

// fail answers an assess error: 503 with Retry-After when the session store
// did not answer, 401 when the clinician must relaunch, 502 when the EHR
// failed as a whole, 500 otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := say(r)
	switch {
	case errors.Is(err, store.ErrUnavailable):
		log.Error("session store unavailable", "status", 503, "cause", "store_unavailable", "err", err.Error())
		w.Header().Set("Retry-After", strconv.Itoa(store.RetryAfterSeconds))
		web.JSONError(w, http.StatusServiceUnavailable, "store_unavailable", p.Text("api.store-unavailable", nil))
	case errors.Is(err, assess.ErrIdle):
		log.Warn("session refused", "status", 401, "cause", "session_idle")
		h.sessionEnded(w, p, "session_idle", h.IdleTimeout)
	case errors.Is(err, assess.ErrLifetime):
		log.Warn("session refused", "status", 401, "cause", "session_lifetime")
		h.sessionEnded(w, p, "session_lifetime", h.SessionTTL)
	case errors.Is(err, assess.ErrSignedOut):
		log.Warn("session refused", "status", 401, "cause", "session_signed_out")
		unauthorized(w, "session_signed_out", p.Text("api.session-signed-out", nil))
	case errors.Is(err, assess.ErrUnsealed):
		// Error, not Warn: every open session answers this after a
		// rotation of the token-sealing key, and constantly if instances
		// hold different keys.
		log.Error("session refused", "status", 401, "cause", "session_unsealable", "err", err.Error())
		unauthorized(w, "session_expired", p.Text("api.relaunch", nil))
	case errors.Is(err, assess.ErrNoSession):
		log.Warn("session refused", "status", 401, "cause", "no_session")
		unauthorized(w, "session_expired", p.Text("api.relaunch", nil))
	case errors.Is(err, assess.ErrSessionExpired):
		log.Warn("session refused", "status", 401, "cause", "ehr_session_expired", "err", err.Error())
		unauthorized(w, "session_expired", p.Text("api.ehr-session-expired", nil))
	case errors.Is(err, assess.ErrEHRUnavailable):
		log.Error("session token refresh failed", "status", 502, "cause", "refresh_failed", "err", err.Error())
		web.JSONError(w, http.StatusBadGateway, "ehr_unavailable", p.Text("api.ehr-unavailable", nil))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		log.Warn("request ended early", "status", 504, "err", err.Error())
		web.JSONError(w, http.StatusGatewayTimeout, "timeout", p.Text("api.timeout", nil))
	default:
		log.Error("assessment failed", "status", 500, "err", err.Error())
		web.JSONError(w, http.StatusInternalServerError, "internal", p.Text("api.assess-failed", nil))
	}
}

// sessionEnded answers 401 for a session that ended by a limit: code says
// which, and limit_minutes (when known) how long the limit is, for the page
// to say in the clinician's language.
func (h *Handler) sessionEnded(w http.ResponseWriter, p message.Printer, code string, limit time.Duration) {
	body := struct {
		web.APIError
		LimitMinutes int `json:"limit_minutes,omitempty"`
	}{APIError: web.APIError{Error: code, Message: p.Text("api.relaunch", nil)}}
	if m := int(limit / time.Minute); m > 0 {
		body.LimitMinutes = m
		if code == "session_idle" {
			body.Message = p.Text("api.session-idle", message.Args{"minutes": m})
		} else {
			body.Message = p.Text("api.session-lifetime", message.Args{"hours": message.Num{Value: float64(m) / 60, Decimals: 1}})
		}
	}
	w.Header().Set("WWW-Authenticate", bearerChallenge)
	web.JSON(w, http.StatusUnauthorized, body)
}

// bearerChallenge is the WWW-Authenticate challenge of every 401 the API
// answers: the session handle is a Bearer token (RFC 6750 §3).
const bearerChallenge = `Bearer realm="smartcalc"`

// unauthorized answers 401 with the Bearer challenge and the JSON error.
func unauthorized(w http.ResponseWriter, code, msg string) {
	w.Header().Set("WWW-Authenticate", bearerChallenge)
	web.JSONError(w, http.StatusUnauthorized, code, msg)
}
