// Package callback is the callback function: the Redirect URI the EHR sends
// the browser back to with code and state. It consumes the launch exactly
// once, exchanges the code with that launch's verifier, creates the app
// session and sends the browser to the app with a one-time hand-off code in
// the URL fragment (#handoff=…), which the app page exchanges for the
// session handle: the handle never rides in a URL.
package callback

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// Handler serves GET /callback?code=…&state=… (or ?error=…&state=…), and
// POST /callback from its own sessionStorage fallback page.
type Handler struct {
	Flow           *smart.Flow
	Log            *slog.Logger
	Project        string
	FrameAncestors []string
	AppURL         string // the calculate function's UI, e.g. https://…/calculate/
}

// maxForm bounds the fallback page's POST body.
const maxForm = 16 << 10

// ServeHTTP completes the flow and redirects to the app. A GET that brings
// its launch's binding cookie completes at once. A GET without it answers
// with the fallback page, which POSTs the same parameters with the nonce
// the launch kept in sessionStorage; no nonce matching means 403.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logging.ForRequest(h.Log, r, h.Project, "callback")
	var q url.Values
	nonce := ""
	switch r.Method {
	case http.MethodGet:
		q = r.URL.Query()
		if st := q.Get("state"); st != "" {
			c, err := r.Cookie(web.BindingCookieName(smart.Correlation(st)))
			if err != nil || c.Value == "" {
				h.postBack(w, r, q)
				return
			}
			nonce = c.Value
		}
	case http.MethodPost:
		// Only the fallback page, on SMART Calc's own origin, may POST:
		// a cross-site form would replay an attacker's own launch.
		if !web.SameOrigin(r, h.origin()) {
			log.Warn("callback refused", "cause", "cross_origin_post", "origin", clipHeader(r.Header.Get("Origin")))
			web.ErrorPage(w, r, h.FrameAncestors, web.Problem{Status: http.StatusForbidden,
				Title:  message.New("callback.cross-origin.title", nil),
				Advice: message.New("callback.cross-origin.advice", nil)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			log.Warn("callback refused", "cause", "malformed_form")
			web.ErrorPage(w, r, h.FrameAncestors, web.Problem{Status: http.StatusBadRequest,
				Title: message.New("callback.unexpected.title", nil)})
			return
		}
		q = r.PostForm
		nonce = q.Get("binding")
	default:
		// Not even HEAD: the flow consumes the launch and spends the
		// code, so only the browser may run it, never a prefetcher.
		w.Header().Set("Allow", "GET, POST")
		log.Warn("callback refused", "cause", "method", "method", r.Method)
		web.ErrorPage(w, r, h.FrameAncestors, web.Problem{Status: http.StatusMethodNotAllowed,
			Title: message.New("callback.unexpected.title", nil)})
		return
	}
	req := smart.CompleteRequest{
		State:            q.Get("state"),
		Code:             q.Get("code"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		ErrorURI:         q.Get("error_uri"),
		BindingNonce:     nonce,
		// RFC 9207, and the registration of a …/callback/<id> URI: the
		// mix-up defence.
		ResponseIssuer:    q.Get("iss"),
		RouteRegistration: routeRegistration(r.URL.Path),
	}
	if req.State != "" {
		http.SetCookie(w, web.ClearBindingCookie(smart.Correlation(req.State)))
	}
	res, err := h.Flow.Complete(r.Context(), req)
	if err != nil {
		smart.LogFailure(log, "callback failed", err, "binding_from", bindingFrom(r, nonce))
		web.ErrorPage(w, r, h.FrameAncestors, smart.Problem(err))
		return
	}
	if !res.Bound {
		log.Warn("launch not bound to a browser",
			logging.CorrelationKey, res.Correlation,
			"detail", `the registration sets "browser_binding": "off"`)
	}
	for _, d := range res.Dropped {
		log.Warn("context value dropped", logging.CorrelationKey, res.Correlation, "detail", d)
	}
	log.Info("session created",
		logging.CorrelationKey, res.Correlation,
		"registration", res.Session.RegistrationID,
		"binding_from", bindingFrom(r, nonce),
		"scope_requested", res.Launch.Scope,
		"scope_granted", res.Session.Scope,
		"token_expires", res.Session.TokenExpiry,
		"refresh_token", res.Session.RefreshToken != "")
	// The handle itself never rides in a URL: the app page exchanges a
	// one-time code, bound to this browser and stored with the session,
	// for it.
	ho := res.Handoff
	next := h.AppURL + "#handoff=" + ho.Code
	if ho.Nonce != "" {
		http.SetCookie(w, web.HandoffCookie(ho.Correlation, ho.Nonce, smart.HandoffTTL))
	}
	if r.Method == http.MethodPost && ho.Nonce != "" {
		// The fallback page's browser refused the cookie: the nonce
		// waits for the app page in this tab's sessionStorage.
		web.StoreAndGo(w, h.FrameAncestors, web.HandoffStorageKey, ho.Nonce, next)
		return
	}
	web.NoStore(w.Header())
	w.Header().Set("Referrer-Policy", "no-referrer")
	web.Redirect(w, next, http.StatusSeeOther)
}

// postBack answers a GET without a binding cookie with the fallback page.
// Nothing is consumed yet: the POST it makes runs the flow.
func (h *Handler) postBack(w http.ResponseWriter, r *http.Request, q url.Values) {
	fields := map[string]string{}
	for _, k := range []string{"state", "code", "error", "error_description", "error_uri", "iss"} {
		if v := q.Get(k); v != "" {
			fields[k] = v
		}
	}
	logging.ForRequest(h.Log, r, h.Project, "callback").Info("callback without binding cookie: sessionStorage fallback page",
		logging.CorrelationKey, smart.Correlation(q.Get("state")))
	web.PostBack(w, h.FrameAncestors, web.BindingStorageKey(smart.Correlation(q.Get("state"))), r.URL.Path, fields)
}

// routeRegistration is <id> for a …/callback/<id> path, "" for the shared
// …/callback (or the function's root, where Cloud Functions strips the
// name).
func routeRegistration(p string) string {
	p = strings.TrimSuffix(p, "/")
	i := strings.LastIndexByte(p, '/')
	last := p[i+1:]
	if last == "" || last == "callback" {
		return ""
	}
	if id, err := url.PathUnescape(last); err == nil {
		return id
	}
	return last
}

// origin is the scheme and host of the app, which the callback shares.
func (h *Handler) origin() string {
	u, err := url.Parse(h.AppURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func bindingFrom(r *http.Request, nonce string) string {
	switch {
	case nonce == "":
		return "none"
	case r.Method == http.MethodPost:
		return "session_storage"
	}
	return "cookie"
}

func clipHeader(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}
