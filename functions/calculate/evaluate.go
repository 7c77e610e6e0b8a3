package calculate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// MaxEvaluateBody bounds the body of POST /api/evaluate. A complete set of
// inputs is about 2 KiB.
const MaxEvaluateBody = 64 << 10

// evaluateRequest is the body of POST /api/evaluate (README Design §5).
type evaluateRequest struct {
	Calculator string                     `json:"calculator"`
	Inputs     map[string]json.RawMessage `json:"inputs"`
}

// EvaluateHandler serves POST /api/evaluate: one calculator from the given
// inputs alone, with no session and no patient data. A malformed body, an
// unknown calculator, a wrong type or an unknown unit is a 400 naming the
// problem; missing or out-of-range inputs are a 200 result whose status says
// so.
func EvaluateHandler(e *calc.Engine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logging.FromContext(r.Context(), slog.Default())
		bad := func(status int, code, msg string) {
			log.WarnContext(r.Context(), "evaluate: request refused", "status", status, "error", code, "reason", msg)
			web.JSONError(w, status, code, msg)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			bad(http.StatusMethodNotAllowed, "method_not_allowed", "Use POST with a JSON body {\"calculator\": id, \"inputs\": {...}}.")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				bad(http.StatusUnsupportedMediaType, "unsupported_media_type", "The body must be JSON (Content-Type: application/json).")
				return
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEvaluateBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				bad(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("The body exceeds %d bytes.", MaxEvaluateBody))
				return
			}
			bad(http.StatusBadRequest, "malformed_body", "The body could not be read.")
			return
		}
		var req evaluateRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			bad(http.StatusBadRequest, "malformed_body", "The body is not a valid request: "+describeJSONError(err)+`. Send {"calculator": id, "inputs": {...}}.`)
			return
		}
		if dec.More() {
			bad(http.StatusBadRequest, "malformed_body", "The body has data after the JSON object.")
			return
		}
		if strings.TrimSpace(req.Calculator) == "" {
			bad(http.StatusBadRequest, "missing_calculator", `The body must name a calculator: {"calculator": id}.`)
			return
		}
		in, err := e.ParseInputs(req.Inputs, calc.OriginEntered)
		if err == nil {
			var res *calc.Result
			res, err = e.Evaluate(req.Calculator, in)
			if err == nil {
				log.InfoContext(r.Context(), "evaluate", "calculator", res.Calculator, "status", string(res.Status))
				web.JSON(w, http.StatusOK, res)
				return
			}
		}
		var ie *calc.InputError
		switch {
		case errors.Is(err, calc.ErrUnknownCalculator):
			ids := make([]string, 0)
			for _, c := range e.Calculators() {
				ids = append(ids, c.ID)
			}
			bad(http.StatusBadRequest, "unknown_calculator", fmt.Sprintf("Unknown calculator %q. Known calculators: %s.", req.Calculator, strings.Join(ids, ", ")))
		case errors.Is(err, calc.ErrUnknownUnit):
			errors.As(err, &ie)
			bad(http.StatusBadRequest, "unknown_unit", fmt.Sprintf("Input %q: %s.", ie.Input, ie.Reason))
		case errors.As(err, &ie):
			bad(http.StatusBadRequest, "invalid_input", fmt.Sprintf("Input %q: %s.", ie.Input, ie.Reason))
		default:
			log.ErrorContext(r.Context(), "evaluate: unexpected error", "error", err.Error())
			web.JSONError(w, http.StatusInternalServerError, "internal", "The calculation failed.")
		}
	})
}

// describeJSONError turns a decoding error into a sentence without Go type
// names.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", typ.Field)
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

// ScoringConfigHandler serves GET /api/scoring-config: the versioned scoring
// configuration exactly as embedded, with a strong ETag so that the UI can
// revalidate cheaply.
func ScoringConfigHandler(cfg *calc.Config) http.Handler {
	raw, etag := cfg.Raw(), cfg.ETag()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			logging.FromContext(r.Context(), slog.Default()).WarnContext(r.Context(), "scoring-config: method refused", "method", r.Method)
			web.JSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use GET.")
			return
		}
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", fmt.Sprint(len(raw)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(raw)
		}
	})
}

// etagMatch implements If-None-Match's weak comparison for a list of tags.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// MessagesHandler serves GET /messages.json: the message catalogue the
// server writes its sentences from, for the UI's own strings, with a
// strong ETag like the scoring configuration.
func MessagesHandler(c *message.Catalog) http.Handler {
	raw, etag := c.JSON(), c.ETag()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache")
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", fmt.Sprint(len(raw)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(raw)
		}
	})
}
