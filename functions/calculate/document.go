package calculate

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// ScoringConfigHandler serves GET /api/scoring-config: the versioned scoring
// configuration exactly as embedded, with a strong ETag so that the UI can
// revalidate cheaply (hashed on the first request that needs it).
func ScoringConfigHandler(cfg *calc.Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			logging.FromContext(r.Context(), slog.Default()).WarnContext(r.Context(), "scoring-config: method refused", "method", r.Method)
			web.JSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", say(r).Text("api.use-get", nil))
			return
		}
		serveDocument(w, r, cfg.Raw(), cfg.ETag())
	})
}

// MessagesHandler serves GET /messages.json: the message catalogue the
// server writes its sentences from, for the UI's own strings, with a
// strong ETag like the scoring configuration. The catalogue is obtained on
// the first request, as every user of it does: an instance that only
// answers health checks never parses it.
func MessagesHandler(catalog func() *message.Catalog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := catalog()
		serveDocument(w, r, c.JSON(), c.ETag())
	})
}

// serveDocument answers a GET or HEAD for a JSON document served exactly as
// embedded: revalidated on every use (no-cache) against its strong etag,
// 304 when If-None-Match names it, else the document (its headers alone
// for HEAD).
func serveDocument(w http.ResponseWriter, r *http.Request, raw []byte, etag string) {
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
