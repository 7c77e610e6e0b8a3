package ehrsim

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

const (
	fhirJSON      = "application/fhir+json; charset=utf-8"
	pageTokenLife = 10 * time.Minute
)

// pageState is what a Bundle's next link stands for.
type pageState struct {
	typ      string
	params   url.Values
	offset   int
	clientID string
	expires  time.Time
}

// serveFHIR answers st's FHIR server; rest is the path after its base.
func (s *Server) serveFHIR(w http.ResponseWriter, r *http.Request, st *site, rest string) {
	s.fhirRequests.Add(1)
	if s.cfg.OnFHIRRequest != nil {
		s.cfg.OnFHIRRequest(r)
	}
	switch rest {
	case "/.well-known/smart-configuration":
		s.serveSMARTConfiguration(w, r, st)
		return
	case "/.well-known/openid-configuration":
		// Where the issuer is the FHIR base, and Epic's second copy
		// under its FHIR base.
		if st.issuerPath == st.fhirPath || st.name == ProfileEpic {
			s.serveOpenIDConfiguration(w, r, st)
			return
		}
		writeOutcome(w, http.StatusNotFound, "not-found", "The OpenID configuration is under the id_token issuer: "+st.issuer)
		return
	case "/metadata":
		if r.Method != http.MethodGet {
			writeOutcome(w, http.StatusMethodNotAllowed, "not-supported", "Only GET is supported on /metadata.")
			return
		}
		writeFHIR(w, http.StatusOK, s.capabilityStatement(st))
		return
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	if len(segs) == 0 || segs[0] == "" || len(segs) > 2 {
		writeOutcome(w, http.StatusNotFound, "not-supported", "This server supports only read (GET [base]/Type/id) and type search (GET [base]/Type?...).")
		return
	}
	typ := segs[0]
	search := len(segs) == 1 || segs[1] == "_search"
	switch {
	case len(segs) == 2 && segs[1] == "_search" && r.Method != http.MethodPost:
		writeOutcome(w, http.StatusMethodNotAllowed, "not-supported", "Use POST for [base]/Type/_search.")
		return
	case !(len(segs) == 2 && segs[1] == "_search") && r.Method != http.MethodGet:
		writeOutcome(w, http.StatusMethodNotAllowed, "not-supported", "This server is read-only: only GET (and POST _search) are supported.")
		return
	}
	a, ok := s.authenticateBearer(w, r, st)
	if !ok {
		return
	}
	if !isResourceType(typ) || (searchParams[typ] == nil && s.data.byType[typ] == nil) {
		writeOutcome(w, http.StatusNotFound, "not-supported", fmt.Sprintf("Resource type %q is not supported.", typ))
		return
	}
	if d := a.faults.fhirDelay; d > 0 {
		if err := s.cfg.Sleep(r.Context(), d); err != nil {
			return // the client went away
		}
	}
	if fail, forbid := a.faults.fhirFault(typ); fail {
		writeOutcome(w, http.StatusInternalServerError, "exception", "Internal server error.")
		return
	} else if forbid {
		writeOutcomeDetails(w, http.StatusForbidden, "forbidden",
			fmt.Sprintf("Access to %s for this patient is restricted: break-the-glass authorization is required.", typ))
		return
	}
	if !search {
		s.read(w, a, typ, segs[1])
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-www-form-urlencoded" {
			writeOutcome(w, http.StatusUnsupportedMediaType, "not-supported", "POST _search needs an application/x-www-form-urlencoded body.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeOutcome(w, http.StatusBadRequest, "invalid", "The search form could not be read.")
			return
		}
		params = r.Form
	}
	s.search(w, a, typ, params)
}

// authenticateBearer finds the authorization behind the request's bearer
// token, or answers 401.
func (s *Server) authenticateBearer(w http.ResponseWriter, r *http.Request, st *site) (*authorization, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ehrsim"`)
		writeOutcome(w, http.StatusUnauthorized, "login", "A bearer access token is required (Authorization: Bearer <token>).")
		return nil, false
	}
	now := s.cfg.Now()
	s.mu.Lock()
	it := s.access[hashKey(strings.TrimSpace(tok))]
	s.mu.Unlock()
	desc := ""
	switch {
	case it == nil:
		desc = "The access token is unknown or was revoked."
	case !now.Before(it.expires):
		desc = "The access token expired."
	case it.a.site != st:
		desc = "The access token was not issued for this FHIR server."
	}
	if desc != "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="ehrsim", error="invalid_token", error_description=%q`, desc))
		writeOutcome(w, http.StatusUnauthorized, "expired", desc)
		return nil, false
	}
	return it.a, true
}

// insufficientScope answers 403 with the scope that would have allowed it.
func insufficientScope(w http.ResponseWriter, typ, perm string) {
	need := fmt.Sprintf("patient/%s.%s", typ, perm)
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="ehrsim", error="insufficient_scope", scope=%q`, need))
	writeOutcome(w, http.StatusForbidden, "forbidden", fmt.Sprintf("The access token's scope does not allow this: it needs %s (or user/%s.%s, or the v1 .read form).", need, typ, perm))
}

// allowed reports whether one of scopes lets a read r: the compartment for
// patient/ scopes, and the query of query-restricted scopes.
func (s *Server) allowed(a *authorization, scopes []resourceScope, r *resource) bool {
	for _, sc := range scopes {
		if sc.context == "patient" && (a.patient == "" || (r.patient != "" && r.patient != a.patient)) {
			continue
		}
		if sc.query != nil {
			q, err := parseQuery(r.typ, sc.query)
			if err != nil || !q.matches(r, a.site.fhirBase) {
				continue
			}
		}
		return true
	}
	return false
}

func (s *Server) read(w http.ResponseWriter, a *authorization, typ, id string) {
	scopes := applicable(a.scopes, typ, 'r')
	if len(scopes) == 0 {
		insufficientScope(w, typ, "rs")
		return
	}
	res := s.data.get(typ, id)
	if res == nil {
		writeOutcome(w, http.StatusNotFound, "not-found", fmt.Sprintf("%s/%s is not known.", typ, id))
		return
	}
	if !s.allowed(a, scopes, res) {
		writeOutcome(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s/%s is outside what this access token may read (patient compartment or scope restriction).", typ, id))
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(http.StatusOK)
	w.Write(res.raw)
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

type searchBundle struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
	Type  string        `json:"type"`
	Total int           `json:"total"`
	Link  []bundleLink  `json:"link"`
	Entry []bundleEntry `json:"entry,omitempty"`
}

func (s *Server) search(w http.ResponseWriter, a *authorization, typ string, params url.Values) {
	scopes := applicable(a.scopes, typ, 's')
	if len(scopes) == 0 {
		insufficientScope(w, typ, "rs")
		return
	}
	offset := 0
	base := a.site.fhirBase
	self := base + "/" + typ + "?" + params.Encode()
	if _, paged := params["_page"]; paged {
		if len(params) != 1 || len(params["_page"]) != 1 {
			writeOutcome(w, http.StatusBadRequest, "invalid", "_page must be used alone, exactly as the next link gives it.")
			return
		}
		now := s.cfg.Now()
		s.mu.Lock()
		st := s.pages[hashKey(params.Get("_page"))]
		s.mu.Unlock()
		if st == nil || now.After(st.expires) || st.typ != typ || st.clientID != a.clientID {
			writeOutcome(w, http.StatusBadRequest, "invalid", "The page token is unknown or expired; repeat the search.")
			return
		}
		params, offset = st.params, st.offset
	}
	q, err := parseQuery(typ, params)
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "not-supported", err.Error())
		return
	}
	userWide := false
	for _, sc := range scopes {
		userWide = userWide || (sc.context == "user" && sc.query == nil)
	}
	if !userWide {
		for _, p := range q.patientRefs(base) {
			if p != a.patient {
				writeOutcome(w, http.StatusForbidden, "forbidden", fmt.Sprintf("This access token is limited to patient %s and cannot search patient %s.", a.patient, p))
				return
			}
		}
	}
	var matched []*resource
	for _, res := range s.data.byType[typ] {
		if q.matches(res, base) && s.allowed(a, scopes, res) {
			matched = append(matched, res)
		}
	}
	q.sortResults(matched)
	end := min(offset+q.count, len(matched))
	if offset > end {
		offset = end
	}
	b := searchBundle{ResourceType: "Bundle", ID: randomToken()[:16], Type: "searchset", Total: len(matched)}
	b.Meta.LastUpdated = s.cfg.Now().UTC().Format(time.RFC3339)
	b.Link = append(b.Link, bundleLink{"self", self})
	if q.count > 0 && end < len(matched) {
		tok := randomToken()
		s.mu.Lock()
		s.sweep(s.cfg.Now())
		s.pages[hashKey(tok)] = &pageState{typ: typ, params: params, offset: end, clientID: a.clientID, expires: s.cfg.Now().Add(pageTokenLife)}
		s.mu.Unlock()
		b.Link = append(b.Link, bundleLink{"next", base + "/" + typ + "?" + url.Values{"_page": {tok}}.Encode()})
	}
	included := map[string]bool{}
	for _, res := range matched[offset:end] {
		b.Entry = append(b.Entry, entry(base, res, "match"))
	}
	for _, res := range matched[offset:end] {
		for _, path := range q.includes {
			for _, e := range pathValues(res.doc, path) {
				m, _ := e.(map[string]any)
				ref, _ := m["reference"].(string)
				t, id, ok := strings.Cut(ref, "/")
				inc := s.data.get(t, id)
				if !ok || inc == nil || included[ref] || !s.allowed(a, applicable(a.scopes, t, 'r'), inc) {
					continue
				}
				included[ref] = true
				b.Entry = append(b.Entry, entry(base, inc, "include"))
			}
		}
	}
	writeFHIR(w, http.StatusOK, b)
}

func entry(base string, r *resource, mode string) bundleEntry {
	e := bundleEntry{FullURL: base + "/" + r.typ + "/" + r.id, Resource: r.raw}
	e.Search.Mode = mode
	return e
}

func (s *Server) capabilityStatement(st *site) map[string]any {
	var types []string
	for t := range searchParams {
		types = append(types, t)
	}
	sort.Strings(types)
	var resources []map[string]any
	for _, t := range types {
		var sp []map[string]any
		var names []string
		for n := range searchParams[t] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			kind := map[paramKind]string{tokenParam: "token", dateParam: "date", refParam: "reference", patientParam: "reference", stringParam: "string"}[searchParams[t][n].kind]
			sp = append(sp, map[string]any{"name": n, "type": kind})
		}
		resources = append(resources, map[string]any{
			"type":        t,
			"interaction": []map[string]string{{"code": "read"}, {"code": "search-type"}},
			"searchParam": sp,
		})
	}
	return map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         s.cfg.Now().UTC().Format("2006-01-02"),
		"kind":         "instance",
		"software":     map[string]string{"name": "SMART Calc sandbox EHR (ehrsim)"},
		"implementation": map[string]string{
			"description": "Sandbox EHR for SMART Calc",
			"url":         st.fhirBase,
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"json"},
		"rest": []map[string]any{{
			"mode": "server",
			"security": map[string]any{
				"service": []map[string]any{{"coding": []map[string]string{{
					"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}}}},
				"extension": []map[string]any{{
					"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
					"extension": []map[string]string{
						{"url": "authorize", "valueUri": st.authorizeURL},
						{"url": "token", "valueUri": st.tokenURL},
					},
				}},
			},
			"resource": resources,
		}},
	}
}

func writeFHIR(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
	}
	w.Header().Set("Content-Type", fhirJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// writeOutcome answers an error as an OperationOutcome.
func writeOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	writeFHIR(w, status, map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []map[string]any{{"severity": "error", "code": code, "diagnostics": diagnostics}},
	})
}

// writeOutcomeDetails is writeOutcome with the text also in details, where
// some EHRs put it.
func writeOutcomeDetails(w http.ResponseWriter, status int, code, text string) {
	writeFHIR(w, status, map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []map[string]any{{"severity": "error", "code": code, "diagnostics": text,
			"details": map[string]any{"text": text}}},
	})
}
