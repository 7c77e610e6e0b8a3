package calculate

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/readiness"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// doctorTimeout bounds one readiness check, inside the function's minute.
const doctorTimeout = 45 * time.Second

// adminAuthorized reports whether r carries the admin token as a bearer
// token; it compares hashes in constant time, so neither the token's
// length nor its content leaks through timing. status is 401 without a
// bearer token and 403 with a wrong one.
func (h *Handler) adminAuthorized(r *http.Request) (ok bool, status int) {
	scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return false, http.StatusUnauthorized
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256([]byte(h.AdminToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return false, http.StatusForbidden
	}
	return true, http.StatusOK
}

// doctor serves GET /admin/doctor?iss=…: the readiness report of the
// registration for iss, as JSON, or as text with format=text. Only a
// request with the admin token gets it; without a configured token the
// route does not exist.
func (h *Handler) doctor(w http.ResponseWriter, r *http.Request) {
	log := logging.FromContext(r.Context(), slog.Default())
	web.NoStore(w.Header())
	if ok, status := h.adminAuthorized(r); !ok {
		cause, code := "wrong_admin_token", "forbidden"
		if status == http.StatusUnauthorized {
			cause, code = "no_admin_token", "unauthorized"
			w.Header().Set("WWW-Authenticate", `Bearer realm="smartcalc-admin"`)
		}
		log.Warn("admin request refused", "path", r.URL.Path, "status", status, "cause", cause)
		web.JSONError(w, status, code, "This path needs the admin token (Authorization: Bearer …).")
		return
	}
	iss := r.URL.Query().Get("iss")
	if iss == "" {
		web.JSONError(w, http.StatusBadRequest, "missing_iss", "Give the EHR's FHIR base: /admin/doctor?iss=https://…")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), doctorTimeout)
	defer cancel()
	rep := h.Doctor.Check(ctx, iss)
	log.Info("readiness check", "iss", iss, "registration", rep.Registration,
		"pass", rep.Summary[readiness.Pass], "warn", rep.Summary[readiness.Warn], "fail", rep.Summary[readiness.Fail], "skip", rep.Summary[readiness.Skip])
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = rep.WriteText(w)
		return
	}
	web.JSON(w, http.StatusOK, rep)
}
