// Package calculate is the calculate function: the clinician's UI, its JSON
// API and the CDS Hooks services. It is thin: sessions, FHIR reads, refresh
// and scoring live in shared/assess, shared/calc and shared/cds.
//
// Routes (relative to the function's root; /calculate/ in the local runner):
//
//	GET  /                     the UI (static, embedded)
//	GET  /evaluate.html        the standalone calculator (no EHR, no PHI)
//	GET  /messages.json        the message catalogue the UI and the server share
//	GET  /api/context          patient banner and session context (session)
//	GET  /api/assessment       every calculator on the patient's record (session)
//	POST /api/assessment       the same with clinician-entered values (session)
//	POST /api/session          {"handoff": code} → {"session": handle}, once, same browser
//	DELETE /api/session        sign out: the session ends on every instance
//	POST /api/evaluate         one calculator from given inputs (no session)
//	GET  /api/scoring-config   the versioned scoring configuration
//	GET  /healthz              liveness: the handler is built (scoring configuration loaded)
//	GET  /readyz               readiness: the session store answers (503 otherwise)
//	GET  /cds-services         CDS Hooks discovery; POST /cds-services/{id} the hooks
//	GET  /admin/doctor?iss=…   the readiness check of one EHR registration (admin
//	                           token as bearer; absent when no token is configured)
package calculate

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/cds"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/readiness"
	"github.com/smartcalc-app/smartcalc/shared/store"
	"github.com/smartcalc-app/smartcalc/shared/web"
	"github.com/smartcalc-app/smartcalc/static"
)

// Handler routes the calculate function's requests.
type Handler struct {
	Engine         *calc.Engine
	Scoring        *calc.Config
	Assess         Assessor     // nil: the session API answers 503
	Handoff        Handoffs     // nil: POST /api/session answers 503
	CDS            *cds.Service // nil: the CDS Hooks services answer 503
	Log            *slog.Logger
	Project        string
	FrameAncestors []string
	// Ready checks the session store for GET /readyz; nil means always
	// ready.
	Ready func(ctx context.Context) error
	// IdleTimeout and SessionTTL are the session limits, named in the 401
	// that says a session ended (0: not named).
	IdleTimeout, SessionTTL time.Duration
	// Doctor runs the readiness check at /admin/doctor, for requests
	// with AdminToken; with either unset, the path does not exist.
	Doctor     *readiness.Doctor
	AdminToken string

	mux *http.ServeMux
}

// New returns the handler with its routes.
func New(h *Handler) *Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static.FS, ".")
	fileServer := http.FileServerFS(files)
	mux.Handle("GET /{$}", fileServer)
	mux.Handle("GET /{file}", fileServer)
	mux.Handle("GET /"+static.MessagesPath, MessagesHandler(message.Default))
	mux.Handle("/api/evaluate", EvaluateHandler(h.Engine))
	mux.Handle("/api/scoring-config", ScoringConfigHandler(h.Scoring))
	mux.HandleFunc("GET /api/context", h.context)
	mux.HandleFunc("GET /api/assessment", h.assessment)
	mux.HandleFunc("POST /api/assessment", h.assessment)
	mux.HandleFunc("POST /api/session", h.exchange)
	mux.HandleFunc("DELETE /api/session", h.signOut)
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /readyz", h.ready)
	MountCDS(mux, h.CDS)
	if h.Doctor != nil && h.AdminToken != "" {
		mux.HandleFunc("GET /admin/doctor", h.doctor)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		web.JSONError(w, http.StatusNotFound, "not_found", say(r).Text("api.not-found", message.Args{"path": r.URL.Path}))
	})
	h.mux = mux
	return h
}

// ServeHTTP sets the security headers and a request-scoped logger, then
// routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	web.Headers(w.Header(), h.FrameAncestors)
	log := logging.ForRequest(h.Log, r, h.Project, "calculate")
	h.mux.ServeHTTP(w, r.WithContext(logging.WithContext(r.Context(), log)))
}

// say is the printer of the language the request asks for
// (Accept-Language): every sentence of the answer is written in it.
func say(r *http.Request) message.Printer {
	return message.Default().Printer(message.Negotiate(r.Header.Get("Accept-Language")))
}

// localized writes v as JSON with every sentence in the request's
// language, saying which (Content-Language) and that it depends on
// Accept-Language (Vary).
func localized(w http.ResponseWriter, r *http.Request, status int, v any) {
	p := say(r)
	p.Localize(v)
	w.Header().Set("Content-Language", string(p.Lang()))
	w.Header().Add("Vary", "Accept-Language")
	web.JSON(w, status, v)
}

// ready answers 200 when the session store answers within its deadline and
// 503 with Retry-After otherwise. /healthz stays a liveness check, so a
// Firestore outage takes instances out of rotation without restarting them.
func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	if h.Ready != nil {
		if err := h.Ready(r.Context()); err != nil {
			logging.FromContext(r.Context(), slog.Default()).Error("not ready", "status", 503, "cause", "store_unavailable", "err", err.Error())
			w.Header().Set("Retry-After", strconv.Itoa(store.RetryAfterSeconds))
			web.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": "unavailable"})
			return
		}
	}
	web.JSON(w, http.StatusOK, map[string]string{"status": "ready", "store": "ok"})
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	web.JSON(w, http.StatusOK, map[string]string{"status": "ok", "scoring_config": h.Scoring.Version})
}
