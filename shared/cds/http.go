package cds

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// ServeHTTP serves, relative to where the handler is mounted (the
// calculate function's root):
//
//	GET  /cds-services                  discovery (public)
//	POST /cds-services/{id}             a hook call (JWT)
//	POST /cds-services/{id}/feedback    card feedback (JWT)
//	OPTIONS on each                     CORS preflight
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(s.init)
	cors(w.Header())
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// cors allows browser-based CDS clients on any origin: calls are
// authenticated by the JWT in the Authorization header, never by cookies.
func cors(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Vary", "Origin")
}

func (s *Service) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cds-services", s.serveDiscovery)
	mux.HandleFunc("POST /cds-services/{id}", s.serveHook)
	mux.HandleFunc("POST /cds-services/{id}/feedback", s.serveFeedback)
	mux.HandleFunc("/cds-services/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not-found", "No such CDS service endpoint. Discovery is GET /cds-services; services are POST /cds-services/{id}.")
	})
	mux.HandleFunc("/cds-services", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "not-supported", "Use GET for discovery.")
	})
	return mux
}

func (s *Service) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Discovery())
}

// serveHook answers one hook call within the budget. It never answers 500:
// a failure past authentication becomes an info card (patient-view) or no
// card (order hooks).
func (s *Service) serveHook(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.PathValue("id")
	log := s.log(r).With("cds_service", id)
	w := &trackingWriter{ResponseWriter: rw}
	defer func() {
		if p := recover(); p != nil {
			log.Error("cds: hook failed", "panic", panicText(p))
			if !w.wrote {
				writeJSON(w, http.StatusOK, Response{Cards: []Card{}})
			}
		}
	}()
	hook, ok := services[id]
	if !ok {
		writeError(w, http.StatusNotFound, "not-found", "No CDS service with this id: see GET /cds-services.")
		return
	}
	log = log.With("hook", hook)
	ctx, cancel := context.WithTimeout(r.Context(), s.budget())
	defer cancel()
	if s.initErr != nil {
		log.Error("cds: not configured", "err", s.initErr.Error())
		writeError(w, http.StatusServiceUnavailable, "exception", "The CDS service is not configured on this server.")
		return
	}
	v, err := s.authenticate(ctx, r.Header.Get("Authorization"), s.ServiceURL(id))
	if err != nil {
		s.refuse(w, log, err)
		return
	}
	log = log.With("cds_client", v.client.ID)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxRequestBytes()))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too-costly", "The request body is too large.")
		} else {
			writeError(w, http.StatusBadRequest, "invalid", "The request body could not be read.")
		}
		log.Warn("cds: request body unreadable", "status", http.StatusBadRequest)
		return
	}
	k, err := s.parseCall(body, hook, v.client)
	if err != nil {
		var br *badRequest
		msg := "The request is not a valid CDS Hooks call."
		if errors.As(err, &br) {
			msg = br.msg
		}
		log.Warn("cds: bad request", "status", http.StatusBadRequest, "reason", msg)
		writeError(w, http.StatusBadRequest, "invalid", msg)
		return
	}
	var resp Response
	var st *hookStats
	func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("cds: hook failed", "panic", panicText(p))
				resp = Response{Cards: []Card{}}
				if hook == HookPatientView {
					resp.Cards = append(resp.Cards, s.failureCard())
				}
			}
		}()
		resp, st = s.answer(ctx, k, start)
	}()
	attrs := []any{"status", http.StatusOK, "cards", len(resp.Cards), "latency_ms", time.Since(start).Milliseconds()}
	if st != nil {
		attrs = append(attrs, "prefetch_keys", st.prefetched, "fetched", st.fetched, "not_checked", st.notChecked,
			"timed_out", st.timedOut, "not_mapped", st.unmapped, "fhir_requests", st.requests)
	}
	log.Info("cds: hook answered", attrs...)
	writeJSON(w, http.StatusOK, resp)
}

// refuse answers a failed authentication: 401 and no data, or 503 when
// the client's keys cannot be fetched.
func (s *Service) refuse(w http.ResponseWriter, log interface {
	Warn(string, ...any)
}, err error) {
	reason := "the call is not authenticated"
	var ae *AuthError
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	if errors.Is(err, ErrKeysUnavailable) {
		log.Warn("cds: cannot authenticate", "status", http.StatusServiceUnavailable, "reason", reason)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "transient", "SMART Calc cannot check the CDS client's signature right now: "+reason+".")
		return
	}
	log.Warn("cds: unauthenticated call refused", "status", http.StatusUnauthorized, "reason", reason)
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "security", "Unauthenticated: "+reason+".")
}

func panicText(p any) string {
	if e, ok := p.(error); ok {
		return e.Error()
	}
	if s, ok := p.(string); ok {
		return s
	}
	return "panic"
}

// hookStats are what the log line reports: never patient data.
type hookStats struct {
	prefetched, fetched, notChecked, timedOut []string
	unmapped                                  []string // resource types the mapping had no time to examine
	requests                                  int
}

func stats(sources []source, timed map[string]bool, requests int) *hookStats {
	st := &hookStats{requests: requests}
	for _, src := range sources {
		switch {
		case src.prefetch:
			st.prefetched = append(st.prefetched, src.key)
		case src.fetched:
			st.fetched = append(st.fetched, src.key)
		default:
			st.notChecked = append(st.notChecked, src.key)
		}
		if timed[src.typ] {
			st.timedOut = append(st.timedOut, src.key)
		}
	}
	sort.Strings(st.prefetched)
	return st
}

// writeJSON writes v with status, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusOK, []byte(`{"cards":[]}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers with an OperationOutcome, as CDS Hooks recommends for
// non-2xx answers.
func writeError(w http.ResponseWriter, status int, code, text string) {
	writeJSON(w, status, map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []map[string]string{{"severity": "error", "code": code, "diagnostics": text}},
	})
}

// trackingWriter remembers whether the response was started, so a late
// failure never writes twice.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(status int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
