package launch_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/launch"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// newHandler returns a launch handler for one registration at a fake SMART
// server, and the buffer it logs to.
func newHandler(t *testing.T) (*launch.Handler, *smarttest.AuthServer, *bytes.Buffer) {
	t.Helper()
	srv := smarttest.NewAuthServer(t)
	reg, err := smart.NewRegistry([]smart.Registration{{
		ID: "test-ehr", Issuer: srv.FHIRBase, ClientID: "calc", ClientAuth: smart.ClientAuth{Type: smart.AuthPublic},
		Scope: "launch openid fhirUser patient/Patient.rs", Launch: []string{"ehr"}, AllowedHosts: []string{"127.0.0.1"},
	}}, true)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	return &launch.Handler{
		Flow: &smart.Flow{
			Registry:    reg,
			Discovery:   &smart.Discoverer{},
			Store:       store.NewMemory(nil),
			RedirectURI: "https://app.example/callback",
			LaunchKey:   bytes.Repeat([]byte{0x5a}, smart.LaunchKeySize),
		},
		Log:       logging.New(&logs, slog.LevelDebug),
		LaunchTTL: 10 * time.Minute,
	}, srv, &logs
}

// logLines decodes the JSON log lines.
func logLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %.200s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func TestLaunchRefusalLogs(t *testing.T) {
	huge := "https://ehr.example/" + strings.Repeat("a", 200<<10)
	for _, tc := range []struct {
		name    string
		iss     string
		status  int
		cause   string
		wantIss string // the logged iss ("" = none)
	}{
		{"unknown iss", "https://evil.example/fhir", http.StatusForbidden, "unknown_issuer", "https://evil.example/fhir"},
		{"malformed iss", "not a url", http.StatusBadRequest, "malformed_issuer", "not a url"},
		{"missing iss", "", http.StatusBadRequest, "malformed_issuer", ""},
		// Cloud Logging drops an entry over 256 KB: the line must stay
		// small whatever the EHR (or anyone) sends.
		{"200 KB iss", huge, http.StatusBadRequest, "malformed_issuer", huge[:512] + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, srv, logs := newHandler(t)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/launch?launch=abc&iss="+url.QueryEscape(tc.iss), nil))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), "SMART Calc") {
				t.Errorf("status %d, want %d with the error page", rec.Code, tc.status)
			}
			if n := len(srv.Requests("")); n != 0 {
				t.Errorf("%d requests to the EHR, want none", n)
			}
			if n := logs.Len(); n > 8<<10 {
				t.Errorf("log line of %d bytes", n)
			}
			if n := strings.Count(logs.String(), `"iss":`); n > 1 {
				t.Errorf("log line has iss %d times:\n%.1000s", n, logs.String())
			}
			lines := logLines(t, logs)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1", len(lines))
			}
			m := lines[0]
			if m["severity"] != "WARNING" || m["message"] != "launch failed" || m["cause"] != tc.cause || m["mode"] != "ehr" ||
				m["function"] != "launch" {
				t.Errorf("log line = %v", m)
			}
			if got, _ := m["iss"].(string); got != tc.wantIss {
				t.Errorf("logged iss = %.80q (%d bytes), want %.80q", got, len(got), tc.wantIss)
			}
		})
	}
}

func TestLaunchRedirects(t *testing.T) {
	h, srv, logs := newHandler(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/launch?launch=abc&iss="+url.QueryEscape(srv.FHIRBase), nil))
	if rec.Code != http.StatusFound {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != srv.URL+"/authorize" {
		t.Fatalf("Location %q", rec.Header().Get("Location"))
	}
	state := loc.Query().Get("state")
	corr := smart.Correlation(state)
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != "__Host-smartcalc-"+corr || !cookies[0].Secure || !cookies[0].HttpOnly ||
		!cookies[0].Partitioned || cookies[0].MaxAge != 600 {
		t.Errorf("binding cookie = %+v", cookies)
	}
	if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers = %v", rec.Header())
	}
	log := logs.String()
	if strings.Contains(log, state) || strings.Contains(log, cookies[0].Value) || strings.Contains(log, loc.Query().Get("code_challenge")) {
		t.Errorf("log holds the state, the binding nonce or the challenge:\n%s", log)
	}
	m := logLines(t, logs)[0]
	if m["message"] != "launch started" || m["correlation"] != corr || m["registration"] != "test-ehr" || m["iss"] != srv.FHIRBase {
		t.Errorf("log line = %v", m)
	}
}

// TestLaunchMethod: only GET starts a launch. A HEAD (a link checker or a
// prefetcher) is refused like a POST, before any request to the EHR and
// without a binding cookie or a launch document.
func TestLaunchMethod(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodHead, http.MethodPut} {
		t.Run(method, func(t *testing.T) {
			h, srv, _ := newHandler(t)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, "/launch?launch=abc&iss="+url.QueryEscape(srv.FHIRBase), nil))
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET" {
				t.Errorf("status %d Allow %q, want 405 and GET", rec.Code, rec.Header().Get("Allow"))
			}
			if n := len(srv.Requests("")); n != 0 {
				t.Errorf("%d requests to the EHR, want none", n)
			}
			if c := rec.Header().Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("cookies set: %q", c)
			}
		})
	}
}

// In an EHR's iframe the launch also keeps the binding nonce in the frame's
// sessionStorage (the fallback for browsers that refuse even a partitioned
// cookie): a no-store page stores it and replaces itself with the
// authorize URL; no secret rides in a URL.
func TestLaunchEmbeddedStoresNonce(t *testing.T) {
	for _, dest := range []string{"iframe", "document", ""} {
		t.Run(dest, func(t *testing.T) {
			h, srv, _ := newHandler(t)
			req := httptest.NewRequest(http.MethodGet, "/launch?launch=abc&iss="+url.QueryEscape(srv.FHIRBase), nil)
			if dest != "" {
				req.Header.Set("Sec-Fetch-Dest", dest)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			cookies := rec.Result().Cookies()
			if len(cookies) != 1 || !cookies[0].Partitioned {
				t.Fatalf("cookies = %+v, want the partitioned binding cookie", cookies)
			}
			if dest != "iframe" {
				if rec.Code != http.StatusFound {
					t.Errorf("status %d, want 302", rec.Code)
				}
				return
			}
			body := rec.Body.String()
			key := "smartcalc.binding." + strings.TrimPrefix(cookies[0].Name, "__Host-smartcalc-")
			if rec.Code != http.StatusOK || rec.Header().Get("Location") != "" ||
				!strings.Contains(body, `"key":"`+key+`"`) || !strings.Contains(body, `"nonce":"`+cookies[0].Value+`"`) ||
				!strings.Contains(body, `"next":"`+srv.URL) {
				t.Errorf("status %d Location %q:\n%s", rec.Code, rec.Header().Get("Location"), body)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}
