package callback_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/functions/callback"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

const (
	redirectURI = "https://app.example/callback"
	appURL      = "https://app.example/calculate/"
)

type fixture struct {
	h     *callback.Handler
	srv   *smarttest.AuthServer
	store *store.Memory
	logs  *bytes.Buffer
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith registers the test server as "test-ehr", edited by edit,
// beside a second registration, "other-ehr", that uses a Redirect URI of
// its own (…/callback/other-ehr).
func newFixtureWith(t *testing.T, edit func(*smart.Registration)) *fixture {
	t.Helper()
	srv := smarttest.NewAuthServer(t)
	srv.AddClient(smarttest.Client{ID: "calc", Auth: smart.AuthPublic, RedirectURIs: []string{redirectURI, redirectURI + "/test-ehr"}})
	testEHR := smart.Registration{
		ID: "test-ehr", Issuer: srv.FHIRBase, ClientID: "calc", ClientAuth: smart.ClientAuth{Type: smart.AuthPublic},
		Scope: "launch openid fhirUser patient/Patient.rs online_access", Launch: []string{"ehr"}, AllowedHosts: []string{"127.0.0.1"},
	}
	if edit != nil {
		edit(&testEHR)
	}
	reg, err := smart.NewRegistry([]smart.Registration{testEHR, {
		ID: "other-ehr", Issuer: "https://other-ehr.example/fhir", ClientID: "calc", ClientAuth: smart.ClientAuth{Type: smart.AuthPublic},
		Scope: "launch patient/Patient.rs", Launch: []string{"ehr"}, AllowedHosts: []string{"other-ehr.example"},
		RedirectPerRegistration: true,
	}}, true)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, store.SealKeySize)
	rand.Read(key)
	sealer, err := store.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	launchKey := make([]byte, smart.LaunchKeySize)
	rand.Read(launchKey)
	fx := &fixture{srv: srv, store: store.NewMemory(sealer), logs: &bytes.Buffer{}}
	fx.h = &callback.Handler{
		Flow: &smart.Flow{
			Registry:    reg,
			Discovery:   &smart.Discoverer{},
			Store:       fx.store,
			RedirectURI: redirectURI,
			LaunchKey:   launchKey,
		},
		Log:    logging.New(fx.logs, slog.LevelDebug),
		AppURL: appURL,
	}
	return fx
}

// authorized is a launch the EHR approved: the callback URL and the
// browser's binding cookie.
type authorized struct {
	url         string
	code, state string
	redirectURI string // the redirect_uri the launch sent to authorize
	cookie      *http.Cookie
	// storage is the tab's sessionStorage after the embedded launch page.
	storage map[string]string
}

func (fx *fixture) authorize(t *testing.T) authorized {
	t.Helper()
	res, err := fx.h.Flow.Begin(context.Background(), smart.BeginRequest{
		Issuer: fx.srv.FHIRBase,
		Launch: fx.srv.NewLaunch(smarttest.LaunchContext{Patient: "p1", FHIRUser: "Practitioner/dr-1"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	code, state, err := fx.srv.Authorize(res.AuthorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	au, err := url.Parse(res.AuthorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	return authorized{
		redirectURI: au.Query().Get("redirect_uri"),
		url:         "/callback?" + url.Values{"code": {code}, "state": {state}}.Encode(),
		code:        code,
		state:       state,
		cookie:      web.BindingCookie(res.Correlation, res.BindingNonce, 0),
		storage:     map[string]string{web.BindingStorageKey(res.Correlation): res.BindingNonce},
	}
}

// browse is a browser that runs the callback's fallback page: when the GET
// answers with it, the page's POST follows, from origin, with the nonce
// found in storage.
func (fx *fixture) browse(target string, cookie *http.Cookie, storage map[string]string, origin string) *httptest.ResponseRecorder {
	rec := fx.serve(http.MethodGet, target, cookie)
	body := rec.Body.String()
	_, data, ok := strings.Cut(body, `<script type="application/json" id="d">`)
	if rec.Code != http.StatusOK || !ok {
		return rec
	}
	data, _, _ = strings.Cut(data, "</script>")
	var d struct {
		Key, Action string
		Fields      map[string]string
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		panic(err)
	}
	form := url.Values{"binding": {storage[d.Key]}}
	for k, v := range d.Fields {
		form.Set(k, v)
	}
	req := httptest.NewRequest(http.MethodPost, d.Action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	rec = httptest.NewRecorder()
	fx.h.ServeHTTP(rec, req)
	return rec
}

const appOrigin = "https://app.example"

func (fx *fixture) serve(method, target string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, req)
	return rec
}

func TestCallbackCreatesSession(t *testing.T) {
	for _, viaCookie := range []bool{true, false} {
		t.Run(map[bool]string{true: "cookie", false: "sessionStorage fallback"}[viaCookie], func(t *testing.T) {
			bound := true
			fx := newFixture(t)
			a := fx.authorize(t)
			var cookie *http.Cookie
			if viaCookie {
				cookie = a.cookie
			}
			rec := fx.browse(a.url, cookie, a.storage, appOrigin)
			// The cookie path redirects; the fallback path answers with a
			// page that keeps the hand-off nonce in sessionStorage.
			next, nonce := rec.Header().Get("Location"), ""
			if viaCookie {
				if rec.Code != http.StatusSeeOther {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			} else {
				d := pageData(t, rec)
				if d["key"] != web.HandoffStorageKey || d["nonce"] == "" || next != "" {
					t.Fatalf("status %d Location %q data %v", rec.Code, next, d)
				}
				next, nonce = d["next"], d["nonce"]
			}
			code, ok := strings.CutPrefix(next, appURL+"#handoff=")
			if !ok || len(code) != 43 {
				t.Fatalf("next %q, want the app with a hand-off code in the fragment", next)
			}
			var cleared, handoffCookie []*http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.MaxAge == -1 {
					cleared = append(cleared, c)
				} else {
					handoffCookie = append(handoffCookie, c)
				}
			}
			if len(cleared) != 1 || cleared[0].Name != a.cookie.Name {
				t.Errorf("cleared cookies = %+v, want the binding cookie cleared", cleared)
			}
			if len(handoffCookie) != 1 || handoffCookie[0].Name != web.HandoffCookieName(smart.Correlation(code)) ||
				!handoffCookie[0].HttpOnly || !handoffCookie[0].Partitioned || handoffCookie[0].MaxAge > 60 {
				t.Fatalf("hand-off cookie = %+v", handoffCookie)
			}
			if viaCookie {
				nonce = handoffCookie[0].Value
			}
			handle, err := fx.h.Flow.ExchangeHandoff(context.Background(), code, nonce)
			if err != nil || len(handle) != 43 || strings.Contains(next, handle) {
				t.Fatalf("ExchangeHandoff: %q, %v", handle, err)
			}
			s, err := fx.store.GetSession(context.Background(), smart.SessionID(handle))
			if err != nil || s.Patient != "p1" || s.FHIRUser != "Practitioner/dr-1" {
				t.Fatalf("session = %+v, %v", s, err)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("headers = %v", rec.Header())
			}
			log := fx.logs.String()
			for _, secret := range []string{a.code, a.state, a.cookie.Value, handle, code, nonce, s.AccessToken, s.RefreshToken} {
				if strings.Contains(log, secret) {
					t.Errorf("log holds a secret (%.8s…):\n%s", secret, log)
				}
			}
			if !strings.Contains(log, `"message":"session created"`) || !strings.Contains(log, smart.Correlation(a.state)) {
				t.Errorf("log = %s", log)
			}
			if got := strings.Contains(log, "launch not bound to a browser"); got == bound {
				t.Errorf("bound %v, but the not-bound warning logged: %v", bound, got)
			}
		})
	}
}

// A HEAD (a link checker or prefetcher) must not spend the one-time code:
// the browser's GET that follows still completes.
func TestCallbackHEADSpendsNothing(t *testing.T) {
	fx := newFixture(t)
	a := fx.authorize(t)
	rec := fx.serve(http.MethodHead, a.url, a.cookie)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, POST" {
		t.Errorf("HEAD: status %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if n := len(fx.srv.Requests("/token")); n != 0 {
		t.Fatalf("HEAD made %d token requests", n)
	}
	if rec := fx.serve(http.MethodGet, a.url, a.cookie); rec.Code != http.StatusSeeOther {
		t.Errorf("GET after HEAD: status %d: %.300s", rec.Code, rec.Body)
	}
}

func TestCallbackRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(a authorized) string
		cookie func(a authorized) *http.Cookie // default: the launch's
		status int
		cause  string
		page   string // on the page
		absent string // not on the page
	}{
		{
			name:   "unknown state",
			target: func(authorized) string { return "/callback?code=abc&state=" + strings.Repeat("A", 43) },
			status: http.StatusBadRequest, cause: "unknown_state", page: "Relaunch",
		},
		{
			name:   "missing state",
			target: func(authorized) string { return "/callback?code=abc" },
			status: http.StatusBadRequest, cause: "missing_state",
		},
		{
			name: "EHR refusal for this launch",
			target: func(a authorized) string {
				return "/callback?" + url.Values{"state": {a.state}, "error": {"access_denied"}, "error_description": {"User said no"}}.Encode()
			},
			status: http.StatusForbidden, cause: "ehr_denied", page: "access_denied: User said no",
		},
		{
			// Phishing text: the attacker mints a state with /launch and
			// sends the clinician an error redirect for it.
			name: "error redirect for a launch of another browser",
			target: func(a authorized) string {
				return "/callback?" + url.Values{"state": {a.state}, "error": {"access_denied"}, "error_description": {"Call 555-0100 now"}, "error_uri": {"https://evil.example/help"}}.Encode()
			},
			cookie: func(authorized) *http.Cookie { return nil },
			status: http.StatusForbidden, cause: "ehr_denied", absent: "555-0100", page: "did not come back to the browser",
		},
		{
			name: "crafted error redirect",
			target: func(authorized) string {
				return "/callback?" + url.Values{"error": {"access_denied"}, "error_description": {"Call 555-0100 now"}}.Encode()
			},
			status: http.StatusForbidden, cause: "ehr_denied", absent: "555-0100",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			a := fx.authorize(t)
			cookie, storage := a.cookie, a.storage
			if tc.cookie != nil {
				cookie, storage = tc.cookie(a), nil
			}
			rec := fx.browse(tc.target(a), cookie, storage, appOrigin)
			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(body, tc.page) || (tc.absent != "" && strings.Contains(body, tc.absent)) {
				t.Errorf("status %d, want %d; page:\n%.2000s", rec.Code, tc.status, body)
			}
			if !strings.Contains(fx.logs.String(), `"cause":"`+tc.cause+`"`) {
				t.Errorf("log lacks cause %s:\n%s", tc.cause, fx.logs)
			}
			if n := len(fx.srv.Requests("/token")); n != 0 {
				t.Errorf("%d token requests, want none", n)
			}
		})
	}
}

// TestCallbackLoginCSRF is the login-CSRF attack: the attacker launches,
// approves their own patient and sends the victim the callback URL. The
// victim's browser has neither the launch's cookie nor its sessionStorage
// nonce; a cross-site page may also replay the attacker's own nonce in a
// POST. None of this creates a session or spends the code.
func TestCallbackLoginCSRF(t *testing.T) {
	for _, tc := range []struct {
		name    string
		storage func(a authorized) map[string]string
		origin  string
		status  int
		cause   string
	}{
		{"victim opens the link", func(authorized) map[string]string { return nil }, appOrigin, http.StatusForbidden, "binding_mismatch"},
		{"another launch's nonce", func(a authorized) map[string]string {
			m := map[string]string{}
			for k := range a.storage {
				m[k] = "bm90LXRoaXMtbGF1bmNo"
			}
			return m
		}, appOrigin, http.StatusForbidden, "binding_mismatch"},
		{"cross-site POST with the attacker's nonce", func(a authorized) map[string]string { return a.storage }, "https://evil.example", http.StatusForbidden, "cross_origin_post"},
		{"POST without Origin", func(a authorized) map[string]string { return a.storage }, "", http.StatusForbidden, "cross_origin_post"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			a := fx.authorize(t)
			rec := fx.browse(a.url, nil, tc.storage(a), tc.origin)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), "Open SMART Calc from the EHR again") {
				t.Errorf("status %d, want %d:\n%.1500s", rec.Code, tc.status, rec.Body)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("Location %q", loc)
			}
			if n := len(fx.srv.Requests("/token")); n != 0 {
				t.Errorf("%d token requests, want none", n)
			}
			if !strings.Contains(fx.logs.String(), `"cause":"`+tc.cause+`"`) {
				t.Errorf("log lacks cause %s:\n%s", tc.cause, fx.logs)
			}
		})
	}
}

// pageData reads the JSON data block of a script page.
func pageData(t *testing.T, rec *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	_, data, ok := strings.Cut(rec.Body.String(), `<script type="application/json" id="d">`)
	if rec.Code != http.StatusOK || !ok {
		t.Fatalf("status %d, not a script page:\n%.1000s", rec.Code, rec.Body)
	}
	data, _, _ = strings.Cut(data, "</script>")
	var d map[string]string
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCallbackPerRegistrationRoute drives the Redirect URI per registration
// (…/callback/<id>) over HTTP: the response of a launch whose registration
// sends …/callback/test-ehr completes only there (deployed, Cloud Functions
// hands the function the path without its name: /test-ehr); at another
// registration's route, an unknown one or the shared /callback it is the
// mix-up defence's 403 and no code is sent. A registration that keeps the
// shared /callback still completes there, and only there.
func TestCallbackPerRegistrationRoute(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perReg   bool
		path     string
		fallback bool // no cookie: the sessionStorage page POSTs back to path
		status   int
	}{
		{"own route", true, "/callback/test-ehr", false, http.StatusSeeOther},
		{"own route, deployed path", true, "/test-ehr", false, http.StatusSeeOther},
		{"own route, sessionStorage fallback", true, "/callback/test-ehr", true, http.StatusOK},
		{"another registration's route", true, "/callback/other-ehr", false, http.StatusForbidden},
		{"unknown route", true, "/callback/no-such-ehr", false, http.StatusForbidden},
		{"shared route", true, "/callback", false, http.StatusForbidden},
		{"plain /callback", false, "/callback", false, http.StatusSeeOther},
		{"plain /callback, deployed path", false, "/", false, http.StatusSeeOther},
		{"plain /callback, sessionStorage fallback", false, "/callback", true, http.StatusOK},
		{"plain registration at a per-registration route", false, "/callback/test-ehr", false, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixtureWith(t, func(r *smart.Registration) { r.RedirectPerRegistration = tc.perReg })
			a := fx.authorize(t)
			wantRedirect := redirectURI
			if tc.perReg {
				wantRedirect += "/test-ehr"
			}
			if a.redirectURI != wantRedirect {
				t.Fatalf("the launch sent redirect_uri %q, want %q", a.redirectURI, wantRedirect)
			}
			target := tc.path + "?" + url.Values{"code": {a.code}, "state": {a.state}}.Encode()
			cookie := a.cookie
			if tc.fallback {
				cookie = nil
			}
			rec := fx.browse(target, cookie, a.storage, appOrigin)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d:\n%.1500s", rec.Code, tc.status, rec.Body)
			}
			tokens := len(fx.srv.Requests("/token"))
			if tc.status == http.StatusForbidden {
				if tokens != 0 {
					t.Errorf("%d token requests, want none", tokens)
				}
				if !strings.Contains(fx.logs.String(), `"cause":"mix_up"`) || !strings.Contains(rec.Body.String(), "did not use this sign-in") {
					t.Errorf("not refused as a mix-up: log\n%s\npage\n%.1500s", fx.logs, rec.Body)
				}
				return
			}
			if tokens != 1 {
				t.Errorf("%d token requests, want 1", tokens)
			}
			next := rec.Header().Get("Location")
			if tc.fallback {
				next = pageData(t, rec)["next"]
			}
			if !strings.HasPrefix(next, appURL+"#handoff=") {
				t.Errorf("next %q, want the app with a hand-off code", next)
			}
			if !strings.Contains(fx.logs.String(), `"message":"session created"`) {
				t.Errorf("log lacks the session:\n%s", fx.logs)
			}
		})
	}
}
