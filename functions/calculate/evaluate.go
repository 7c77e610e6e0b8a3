package calculate

import (
	"bytes"
	"encoding/json"
	"errors"
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
		p := say(r)
		bad := func(status int, code, msg, detail string) {
			log.WarnContext(r.Context(), "evaluate: request refused", "status", status, "error", code, "reason", detail)
			web.JSONError(w, status, code, msg)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			bad(http.StatusMethodNotAllowed, "method_not_allowed", p.Text("api.evaluate-post", nil), r.Method)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				bad(http.StatusUnsupportedMediaType, "unsupported_media_type", p.Text("api.json-only", nil), clipHeader(ct))
				return
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEvaluateBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				bad(http.StatusRequestEntityTooLarge, "body_too_large", p.Text("api.body-too-large", message.Args{"bytes": MaxEvaluateBody}), err.Error())
				return
			}
			bad(http.StatusBadRequest, "malformed_body", p.Text("api.body-unreadable", nil), err.Error())
			return
		}
		var req evaluateRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			bad(http.StatusBadRequest, "malformed_body", p.Text("api.body-evaluate", message.Args{"problem": describeJSONError(err)}), err.Error())
			return
		}
		if dec.More() {
			bad(http.StatusBadRequest, "malformed_body", p.Text("api.body-trailing", nil), "data after the JSON object")
			return
		}
		if strings.TrimSpace(req.Calculator) == "" {
			bad(http.StatusBadRequest, "missing_calculator", p.Text("api.no-calculator", nil), "no calculator")
			return
		}
		in, err := e.ParseInputs(req.Inputs, calc.OriginEntered)
		if err == nil {
			var res *calc.Result
			res, err = e.Evaluate(req.Calculator, in)
			if err == nil {
				log.InfoContext(r.Context(), "evaluate", "calculator", res.Calculator, "status", string(res.Status))
				localized(w, r, http.StatusOK, res)
				return
			}
		}
		switch {
		case errors.Is(err, calc.ErrUnknownCalculator):
			ids := message.List{}
			for _, c := range e.Calculators() {
				ids = append(ids, c.ID)
			}
			bad(http.StatusBadRequest, "unknown_calculator", p.Text("api.unknown-calculator", message.Args{"id": req.Calculator, "ids": ids}), err.Error())
		case errors.Is(err, calc.ErrUnknownUnit):
			bad(http.StatusBadRequest, "unknown_unit", inputErrorText(r, e.Config(), err), err.Error())
		case errors.As(err, new(*calc.InputError)):
			bad(http.StatusBadRequest, "invalid_input", inputErrorText(r, e.Config(), err), err.Error())
		default:
			log.ErrorContext(r.Context(), "evaluate: unexpected error", "error", err.Error())
			web.JSONError(w, http.StatusInternalServerError, "internal", p.Text("api.evaluate-failed", nil))
		}
	})
}

// inputErrorText says what is wrong with an input, in the request's
// language.
func inputErrorText(r *http.Request, cfg *calc.Config, err error) string {
	var ie *calc.InputError
	if !errors.As(err, &ie) {
		return say(r).Text("api.evaluate-failed", nil)
	}
	return say(r).Sprint(cfg.InputErrorMessage(ie))
}

// describeJSONError turns a decoding error into a phrase without Go type
// names.
func describeJSONError(err error) message.Msg {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return message.New("api.json.syntax", message.Args{"offset": int(syn.Offset)})
	case errors.As(err, &typ):
		if typ.Field != "" {
			return message.New("api.json.field-type", message.Args{"field": typ.Field})
		}
		return message.New("api.json.not-object", nil)
	case errors.Is(err, io.EOF):
		return message.New("api.json.empty", nil)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return message.New("api.json.ends-early", nil)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return message.New("api.json.unknown-field", message.Args{"field": strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)})
	}
	return message.New("api.json.malformed", nil)
}
