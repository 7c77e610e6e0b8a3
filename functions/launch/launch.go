// Package launch is the launch function: the Launch URI an EHR opens with
// iss and launch. It refuses an EHR it does not know before any outbound
// request, and otherwise redirects the browser to the EHR's authorize
// endpoint with PKCE (S256), a fresh state, aud and the launch context; the
// verifier and state wait in the store for the callback.
package launch

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// Handler serves GET /launch?iss=…&launch=… (EHR launch) and GET
// /launch?iss=… (standalone launch, where the registration allows it).
type Handler struct {
	Flow           *smart.Flow
	Log            *slog.Logger
	Project        string   // for trace links in logs
	FrameAncestors []string // EHR origins allowed to frame the error page
	LaunchTTL      time.Duration
}

// ServeHTTP parses the launch parameters, begins the flow and redirects.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logging.ForRequest(h.Log, r, h.Project, "launch")
	// Only GET: a HEAD from a link checker or prefetcher would otherwise
	// store a launch document and set a binding cookie for nothing.
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		log.Warn("launch refused", "cause", "method", "method", r.Method)
		web.ErrorPage(w, r, h.FrameAncestors, web.Problem{Status: http.StatusMethodNotAllowed,
			Title: message.New("launch.method.title", nil)})
		return
	}
	q := r.URL.Query()
	req := smart.BeginRequest{Issuer: q.Get("iss"), Launch: q.Get("launch")}
	res, err := h.Flow.Begin(r.Context(), req)
	if err != nil {
		p := smart.Problem(err)
		// LogFailure logs iss itself, clipped: the raw parameter may be
		// as long as the request line allows.
		smart.LogFailure(log, "launch failed", err, "mode", mode(req))
		web.ErrorPage(w, r, h.FrameAncestors, p)
		return
	}
	http.SetCookie(w, web.BindingCookie(res.Correlation, res.BindingNonce, h.LaunchTTL))
	log.Info("launch started",
		logging.CorrelationKey, res.Correlation,
		"registration", res.Registration.ID,
		"iss", req.Issuer,
		"mode", mode(req))
	if embedded(r) {
		// An EHR's iframe may refuse even the partitioned cookie: the
		// page also keeps the nonce in the frame's sessionStorage, where
		// the callback's fallback page finds it.
		web.StoreAndGo(w, h.FrameAncestors, web.BindingStorageKey(res.Correlation), res.BindingNonce, res.AuthorizeURL)
		return
	}
	web.NoStore(w.Header())
	w.Header().Set("Referrer-Policy", "no-referrer")
	web.Redirect(w, res.AuthorizeURL, http.StatusFound)
}

// embedded reports whether the browser loads the launch into a frame.
func embedded(r *http.Request) bool {
	d := r.Header.Get("Sec-Fetch-Dest")
	return d == "iframe" || d == "frame"
}

func mode(req smart.BeginRequest) string {
	if req.Launch == "" {
		return "standalone"
	}
	return "ehr"
}
