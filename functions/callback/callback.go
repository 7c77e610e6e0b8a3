// Package callback is the callback function: the Redirect URI the EHR sends
// the browser back to with code and state. It consumes the launch exactly
// once, exchanges the code with that launch's verifier, creates the app
// session and sends the browser to the app with the session handle in the
// URL fragment, which never reaches a server or a Referer header.
package callback

import (
	"log/slog"
	"net/http"

	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// Handler serves GET /callback?code=…&state=… (or ?error=…&state=…).
type Handler struct {
	Flow           *smart.Flow
	Log            *slog.Logger
	Project        string
	FrameAncestors []string
	AppURL         string // the calculate function's UI, e.g. https://…/calculate/
}

// ServeHTTP completes the flow and redirects to the app.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logging.ForRequest(h.Log, r, h.Project, "callback")
	// Not even HEAD: the flow consumes the launch and spends the code, so
	// only the browser's GET may run it, never a prefetcher's HEAD.
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		log.Warn("callback refused", "cause", "method", "method", r.Method)
		web.ErrorPage(w, h.FrameAncestors, web.Problem{Status: http.StatusMethodNotAllowed,
			Title: "The EHR returned to SMART Calc with an unexpected request."})
		return
	}
	q := r.URL.Query()
	req := smart.CompleteRequest{
		State:            q.Get("state"),
		Code:             q.Get("code"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		ErrorURI:         q.Get("error_uri"),
	}
	if req.State != "" {
		if c, err := r.Cookie(web.BindingCookieName(smart.Correlation(req.State))); err == nil {
			req.BindingNonce = c.Value
		}
		http.SetCookie(w, web.ClearBindingCookie(smart.Correlation(req.State)))
	}
	res, err := h.Flow.Complete(r.Context(), req)
	if err != nil {
		smart.LogFailure(log, "callback failed", err)
		web.ErrorPage(w, h.FrameAncestors, smart.Problem(err))
		return
	}
	if !res.Bound {
		log.Warn("launch not bound to a browser",
			logging.CorrelationKey, res.Correlation,
			"detail", "no binding cookie came back (an embedded EHR browser may block cookies); state and PKCE still protect the exchange")
	}
	log.Info("session created",
		logging.CorrelationKey, res.Correlation,
		"registration", res.Session.RegistrationID,
		"scope_requested", res.Launch.Scope,
		"scope_granted", res.Session.Scope,
		"token_expires", res.Session.TokenExpiry,
		"refresh_token", res.Session.RefreshToken != "")
	web.NoStore(w.Header())
	w.Header().Set("Referrer-Policy", "no-referrer")
	web.Redirect(w, h.AppURL+"#session="+res.Handle, http.StatusSeeOther)
}
