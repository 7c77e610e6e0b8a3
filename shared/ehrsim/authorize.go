package ehrsim

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

const (
	launchLifetime   = 10 * time.Minute // an EHR launch token
	pendingLifetime  = 10 * time.Minute // a standalone request waiting at the picker
	codeLifetime     = 60 * time.Second
	codeMemory       = 10 * time.Minute // how long a used code is remembered as used
	onlineRefresh    = 12 * time.Hour
	offlineRefresh   = 30 * 24 * time.Hour
	idTokenLifetime  = time.Hour
	assertionMaxLife = 5 * time.Minute
	clockLeeway      = 30 * time.Second
	jwtBearerType    = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

var (
	challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	verifierRE  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
)

// launchContext is what an EHR launch token stands for.
type launchContext struct {
	site               *site
	patient, encounter string
	faults             faultSet
	needBanner         bool
	expires            time.Time
}

// authorization is what a code, and every token issued from it, grants.
type authorization struct {
	site               *site // the profile's server that issued it
	clientID           string
	scopes             []string
	patient, encounter string
	user               string
	faults             faultSet
	needBanner         bool
	nonce              string
	codeID             string // the code this chain of tokens came from
}

// pendingAuth is a standalone request waiting for the patient picker.
type pendingAuth struct {
	a           *authorization
	redirectURI string
	state       string
	challenge   string
	expires     time.Time
}

type authCode struct {
	a           *authorization
	redirectURI string
	challenge   string
	issued      time.Time
	used        bool
}

type issuedToken struct {
	a       *authorization
	expires time.Time
}

// serveLaunch starts an EHR launch: it stores the launch context under an
// opaque token and sends the browser to the app's launch URI with iss and
// launch, as Oracle Health's Code Console does.
func (s *Server) serveLaunch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET to start a launch.")
		return
	}
	lc, msg, status := s.newLaunch(r.URL.Query())
	if lc == nil {
		s.errorPage(w, status, "Cannot launch", msg)
		return
	}
	if s.cfg.AppLaunchURL == "" {
		s.errorPage(w, http.StatusInternalServerError, "No app configured", "The sandbox has no AppLaunchURL, so it cannot launch an app.")
		return
	}
	tok := randomToken()
	now := s.cfg.Now()
	lc.expires = now.Add(launchLifetime)
	s.mu.Lock()
	s.sweep(now)
	s.launches[hashKey(tok)] = lc
	s.mu.Unlock()
	u, _ := url.Parse(s.cfg.AppLaunchURL) // validated in New
	q := u.Query()
	q.Set("iss", lc.site.fhirBase)
	q.Set("launch", tok)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// newLaunch validates /launch's parameters: patient (required), profile,
// fault, encounter and need_patient_banner.
func (s *Server) newLaunch(q url.Values) (*launchContext, string, int) {
	prof, err := profileNamed(q.Get("profile"))
	if err != nil {
		return nil, "Bad profile: " + err.Error() + ".", http.StatusBadRequest
	}
	pid := q.Get("patient")
	if pid == "" {
		return nil, "Say which patient to launch into: /launch?patient=<id>.", http.StatusBadRequest
	}
	if s.data.get("Patient", pid) == nil {
		return nil, fmt.Sprintf("There is no patient %q in this sandbox.", pid), http.StatusNotFound
	}
	f, err := parseFaults(q["fault"], s.cfg.FaultDelay)
	if err != nil {
		return nil, "Bad fault list: " + err.Error() + ".", http.StatusBadRequest
	}
	lc := &launchContext{site: s.site(prof.name), patient: pid, faults: f, needBanner: true}
	switch v := q.Get("need_patient_banner"); v {
	case "", "true", "1":
	case "false", "0":
		lc.needBanner = false
	default:
		return nil, "need_patient_banner must be true or false.", http.StatusBadRequest
	}
	if enc := q.Get("encounter"); enc != "" {
		e := s.data.get("Encounter", enc)
		if e == nil || e.patient != pid {
			return nil, fmt.Sprintf("Encounter %q is not an encounter of patient %q.", enc, pid), http.StatusBadRequest
		}
		lc.encounter = enc
	} else {
		lc.encounter = s.currentEncounter(pid)
	}
	return lc, "", 0
}

// currentEncounter is the patient's latest in-progress encounter, the
// context an EHR would launch from.
func (s *Server) currentEncounter(pid string) string {
	id, best := "", time.Time{}
	for _, e := range s.data.byType["Encounter"] {
		if e.patient != pid || e.doc["status"] != "in-progress" {
			continue
		}
		st, _ := sortValue(e, searchParams["Encounter"]["date"])
		if id == "" || st.After(best) {
			id, best = e.id, st
		}
	}
	return id
}

// serveAuthorize is the authorization endpoint of st's profile (GET, or
// POST form).
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request, st *site) {
	var params url.Values
	switch r.Method {
	case http.MethodGet:
		params = r.URL.Query()
	case http.MethodPost:
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-www-form-urlencoded" {
			s.errorPage(w, http.StatusUnsupportedMediaType, "Bad authorization request", "POST to the authorization endpoint must be application/x-www-form-urlencoded.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, http.StatusBadRequest, "Bad authorization request", "The form could not be read.")
			return
		}
		params = r.PostForm
	default:
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.")
		return
	}
	// Until client_id and redirect_uri are trusted, errors go to a page.
	if len(params["client_id"]) > 1 || len(params["redirect_uri"]) > 1 {
		s.errorPage(w, http.StatusBadRequest, "Bad authorization request", "client_id and redirect_uri must each be given once.")
		return
	}
	client := s.clients[params.Get("client_id")]
	if client == nil || client.Profile != st.name {
		s.errorPage(w, http.StatusBadRequest, "Unknown client", fmt.Sprintf("No app with client_id %q is registered with this EHR.", params.Get("client_id")))
		return
	}
	redirect := params.Get("redirect_uri")
	if !contains(client.RedirectURIs, redirect) {
		s.errorPage(w, http.StatusBadRequest, "Bad redirect_uri", fmt.Sprintf("redirect_uri %q is not registered for client %q; it must match a registered URI exactly.", redirect, client.ID))
		return
	}
	state := params.Get("state")
	fail := func(code, desc string) { s.redirectError(w, r, redirect, state, code, desc) }
	for k, v := range params {
		if len(v) > 1 {
			fail("invalid_request", k+" must be given once")
			return
		}
	}
	switch rt := params.Get("response_type"); {
	case rt == "":
		fail("invalid_request", "response_type is required")
		return
	case rt != "code":
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	if state == "" {
		fail("invalid_request", "state is required")
		return
	}
	method, challenge := params.Get("code_challenge_method"), params.Get("code_challenge")
	switch {
	case method == "" || challenge == "":
		fail("invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256")
		return
	case method != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case !challengeRE.MatchString(challenge):
		fail("invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")
		return
	}
	requested := strings.Fields(params.Get("scope"))
	switch aud := params.Get("aud"); {
	case aud == "" && st.audRequired(requested):
		fail("invalid_request", "aud is required: send the FHIR base URL of this EHR")
		return
	case aud != "" && aud != st.fhirBase:
		fail("invalid_request", fmt.Sprintf("Bad audience value '%s'. Expected '%s'.", aud, st.fhirBase))
		return
	}
	if len(requested) == 0 {
		fail("invalid_scope", "scope is required")
		return
	}
	a := &authorization{site: st, clientID: client.ID, user: UserID, nonce: params.Get("nonce"), needBanner: true}
	if launch := params.Get("launch"); launch != "" {
		now := s.cfg.Now()
		s.mu.Lock()
		lc := s.launches[hashKey(launch)]
		s.mu.Unlock()
		if lc == nil || now.After(lc.expires) || lc.site != st {
			fail("invalid_request", "The launch parameter is unknown or expired; relaunch the app from the EHR.")
			return
		}
		if !hasScope(requested, "launch") {
			fail("invalid_scope", "An EHR launch must request the launch scope.")
			return
		}
		a.patient, a.encounter, a.faults, a.needBanner = lc.patient, lc.encounter, lc.faults, lc.needBanner
	} else if hasScope(requested, "launch") {
		fail("invalid_request", "The launch scope needs the launch parameter of an EHR launch; a standalone launch requests launch/patient instead.")
		return
	}
	a.scopes = s.grant(st, requested, client, a.faults)
	if len(a.scopes) == 0 {
		fail("invalid_scope", "None of the requested scopes can be granted to this client.")
		return
	}
	if a.patient == "" && st.noStandalonePatient {
		// A provider-facing standalone launch: no patient context, and
		// no picker.
		s.issueCode(w, r, a, redirect, state, challenge)
		return
	}
	if a.patient == "" && hasScope(a.scopes, "launch/patient") {
		if s.cfg.AutoPickPatient == "" {
			s.showPicker(w, &pendingAuth{a: a, redirectURI: redirect, state: state, challenge: challenge})
			return
		}
		a.patient = s.cfg.AutoPickPatient
	}
	if a.patient == "" && hasPatientScope(a.scopes) {
		fail("access_denied", "patient/ scopes need a patient context: request launch (EHR launch) or launch/patient (standalone launch).")
		return
	}
	if a.patient == "" {
		a.encounter = ""
	}
	s.issueCode(w, r, a, redirect, state, challenge)
}

// grant intersects the request with what the client may have, as st's
// profile does, then applies the launch's scope faults.
func (s *Server) grant(st *site, requested []string, c *Client, f faultSet) []string {
	g := grantScopes(requested, c.Scope)
	if st.grantRegistered && c.Scope != "" {
		// The client's registered resource scopes, whatever it asked
		// for, beside the identity, context and refresh scopes it asked
		// for and may have.
		g = keepScopes(g, func(x string) bool { return nonResourceScopes[x] })
		for _, x := range strings.Fields(c.Scope) {
			if _, ok := parseResourceScope(x); ok && !hasScope(g, x) {
				g = append(g, x)
			}
		}
	}
	if st.versioned && c.SMARTVersion != "" {
		g = keepScopes(g, func(x string) bool { v := scopeVersion(x); return v == "" || v == c.SMARTVersion })
	}
	if st.noWildcards {
		g = keepScopes(g, func(x string) bool { rs, ok := parseResourceScope(x); return !ok || rs.typ != "*" })
	}
	if f.scopeDowngrade {
		keep := map[string]bool{"openid": true, "fhirUser": true, "launch": true, "online_access": true}
		g = keepScopes(g, func(x string) bool { return keep[x] })
	}
	if f.noOpenID {
		g = keepScopes(g, func(x string) bool { return x != "openid" && x != "fhirUser" && x != "profile" })
	}
	if f.noRefresh {
		g = keepScopes(g, func(x string) bool { return x != "online_access" && x != "offline_access" })
	}
	return g
}

func (s *Server) showPicker(w http.ResponseWriter, p *pendingAuth) {
	id := randomToken()
	now := s.cfg.Now()
	p.expires = now.Add(pendingLifetime)
	s.mu.Lock()
	s.sweep(now)
	s.pending[hashKey(id)] = p
	s.mu.Unlock()
	s.pickerPage(w, id)
}

// servePick receives the picker's choice.
func (s *Server) servePick(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "The patient picker posts its form here.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	key := hashKey(r.PostForm.Get("request"))
	now := s.cfg.Now()
	s.mu.Lock()
	p := s.pending[key]
	delete(s.pending, key)
	s.mu.Unlock()
	if p == nil || now.After(p.expires) {
		s.errorPage(w, http.StatusBadRequest, "Request expired", "This authorization request is unknown or expired. Start the launch again from the app.")
		return
	}
	if r.PostForm.Has("cancel") {
		s.redirectError(w, r, p.redirectURI, p.state, "access_denied", "The user cancelled the patient selection.")
		return
	}
	pid := r.PostForm.Get("patient")
	if s.data.get("Patient", pid) == nil {
		s.redirectError(w, r, p.redirectURI, p.state, "access_denied", "No patient was selected.")
		return
	}
	p.a.patient = pid
	s.issueCode(w, r, p.a, p.redirectURI, p.state, p.challenge)
}

func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, a *authorization, redirect, state, challenge string) {
	if a.faults.pkceMismatch {
		// What the predecessor app did: a second component ran PKCE too,
		// so the code is bound to a challenge of another verifier than
		// the one the app will send.
		_, challenge = otherChallenge()
	}
	code := randomToken()
	now := s.cfg.Now()
	a.codeID = randomToken()
	s.mu.Lock()
	s.sweep(now)
	s.codes[hashKey(code)] = &authCode{a: a, redirectURI: redirect, challenge: challenge, issued: now}
	s.mu.Unlock()
	s.redirectWith(w, r, redirect, url.Values{"code": {code}, "state": {state}})
}

// redirectError sends an RFC 6749 §4.1.2.1 error to a trusted redirect_uri.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirect, state, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {sanitizeDescription(desc)}}
	if state != "" {
		v.Set("state", state)
	}
	s.redirectWith(w, r, redirect, v)
}

func (s *Server) redirectWith(w http.ResponseWriter, r *http.Request, redirect string, add url.Values) {
	u, _ := url.Parse(redirect) // registered, validated in New
	q := u.Query()
	for k, v := range add {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}
