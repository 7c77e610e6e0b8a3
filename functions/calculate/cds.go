package calculate

import (
	"net/http"

	"github.com/smartcalc-app/smartcalc/shared/cds"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// MountCDS registers the CDS Hooks endpoints (shared/cds) on the calculate
// function's mux:
//
//	GET  /cds-services                  discovery (public)
//	POST /cds-services/{id}             patient-view, order-select, order-sign (CDS client JWT)
//	POST /cds-services/{id}/feedback    card feedback (CDS client JWT)
//	OPTIONS on each                     CORS preflight
//
// The patterns are method-qualified where the UI's "GET /{file}" would
// otherwise overlap. A nil service answers 503 on every one of them.
func MountCDS(mux *http.ServeMux, s *cds.Service) {
	h := CDSHandler(s)
	for _, p := range []string{"GET /cds-services", "POST /cds-services", "OPTIONS /cds-services", "/cds-services/"} {
		mux.Handle(p, h)
	}
}

// CDSHandler returns the CDS Hooks service as a handler; it is thin, like
// every calculate handler: the service parses, authenticates, assesses and
// writes. A nil service answers 503.
func CDSHandler(s *cds.Service) http.Handler {
	if s == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			web.JSONError(w, http.StatusServiceUnavailable, "not_configured", "CDS Hooks are not configured on this server.")
		})
	}
	return s
}
