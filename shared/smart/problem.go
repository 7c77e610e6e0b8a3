package smart

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"

	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/store"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// Problem turns a Flow error into the clinician's error page. An error that
// is not an *Error (which Flow never returns) becomes a generic 500 page.
func Problem(err error) web.Problem {
	var e *Error
	if !errors.As(err, &e) {
		return web.Problem{
			Status: http.StatusInternalServerError,
			Title:  message.New("signin.generic.title", nil),
			Advice: message.New("signin.advice.generic", nil),
		}
	}
	p := web.Problem{
		Status:      e.HTTPStatus(),
		Title:       e.Title(),
		Advice:      e.Advice(),
		Causes:      e.Causes,
		Sent:        e.Sent,
		Correlation: e.Correlation,
	}
	if e.StoreUnavailable() {
		p.RetryAfter = store.RetryAfterSeconds
	}
	switch {
	case e.Unmatched:
		// The text came with a forged or stale URL as easily as from the
		// EHR: showing it would let anyone put words on SMART Calc's page.
		p.Causes = append(slices.Clip(p.Causes), message.New("cause.unmatched", nil))
	case e.Unbound:
		p.Causes = append(slices.Clip(p.Causes), message.New("cause.unbound", nil))
	case e.EHRError != "":
		p.EHRError = e.EHRError
		if e.EHRDescription != "" {
			p.EHRError += ": " + e.EHRDescription
		}
		if e.EHRURI != "" {
			p.EHRError += " (" + e.EHRURI + ")"
		}
	}
	return p
}

// English writes messages in English: the log's language and doctor's,
// for the deployer.
func English(msgs []message.Msg) []string {
	return message.Default().Printer(message.English).SprintAll(msgs)
}

// LogFailure writes the one log line for the deployer that names the cause
// of a failed launch, callback or refresh: WARNING for problems with the
// request (4xx), ERROR for the EHR's or SMART Calc's own (5xx).
func LogFailure(log *slog.Logger, msg string, err error, attrs ...any) {
	var e *Error
	if !errors.As(err, &e) {
		text := "no error given"
		if err != nil {
			text = err.Error()
		}
		log.Error(msg, append(attrs, "cause", "internal", "status", http.StatusInternalServerError, "err", text)...)
		return
	}
	attrs = append(attrs, "cause", e.Kind.String(), "status", e.HTTPStatus())
	if e.Correlation != "" {
		attrs = append(attrs, "correlation", e.Correlation)
	}
	if e.RegistrationID != "" {
		attrs = append(attrs, "registration", e.RegistrationID)
	}
	if e.Issuer != "" {
		attrs = append(attrs, "iss", e.Issuer)
	}
	if e.EHRError != "" {
		attrs = append(attrs, "ehr_error", e.EHRError, "ehr_error_description", e.EHRDescription, "ehr_error_uri", e.EHRURI)
	}
	if e.Unmatched {
		attrs = append(attrs, "launch_matched", false)
	}
	if e.Unbound {
		attrs = append(attrs, "browser_bound", false)
	}
	if e.Status != 0 {
		attrs = append(attrs, "ehr_status", e.Status)
	}
	if len(e.Causes) > 0 {
		attrs = append(attrs, "likely_causes", English(e.Causes))
	}
	if len(e.Sent) > 0 {
		attrs = append(attrs, "sent", English(e.Sent))
	}
	attrs = append(attrs, "err", e.Error())
	if e.HTTPStatus() >= 500 {
		log.Error(msg, attrs...)
	} else {
		log.Warn(msg, attrs...)
	}
}
