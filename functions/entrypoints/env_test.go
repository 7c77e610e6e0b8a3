package entrypoints_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// load returns a local configuration with vars on top.
func load(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	regs, _ := json.Marshal([]map[string]any{{
		"id": "ehr", "iss": "https://ehr.example/fhir", "client_id": "calc", "client_auth": map[string]string{"type": "public"},
		"scope": "launch patient/Patient.rs", "launch": []string{"ehr"}, "allowed_hosts": []string{"ehr.example"},
	}})
	env := map[string]string{
		config.EnvBaseURL:  "http://127.0.0.1:9",
		config.EnvEHRs:     string(regs),
		config.EnvTokenKey: base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestLaunchKeyPerFunction: launch and callback do not start without the
// launch key; calculate, which is not given it, does.
func TestLaunchKeyPerFunction(t *testing.T) {
	for _, name := range []string{"launch", "callback"} {
		e := &entrypoints.Env{Config: load(t, nil), Log: slog.New(slog.DiscardHandler)}
		if _, err := e.Handler(name); err == nil || !strings.Contains(err.Error(), config.EnvLaunchKey) {
			t.Errorf("%s without the launch key: %v, want an error naming %s", name, err, config.EnvLaunchKey)
		}
		key := map[string]string{config.EnvLaunchKey: base64.StdEncoding.EncodeToString(make([]byte, 32))}
		e = &entrypoints.Env{Config: load(t, key), Log: slog.New(slog.DiscardHandler)}
		if _, err := e.Handler(name); err != nil {
			t.Errorf("%s with the launch key: %v", name, err)
		}
	}
	e := &entrypoints.Env{Config: load(t, nil), Log: slog.New(slog.DiscardHandler)}
	if _, err := e.Handler("calculate"); err != nil {
		t.Errorf("calculate without the launch key: %v", err)
	}
}

// TestIdleTimeoutFromConfig follows SMARTCALC_IDLE_TIMEOUT from the loader
// through the store the environment builds to the API's 401.
func TestIdleTimeoutFromConfig(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	e := &entrypoints.Env{Config: load(t, map[string]string{config.EnvIdleTimeout: "10m"}), Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }}
	h, err := e.Handler("calculate")
	if err != nil {
		t.Fatal(err)
	}
	newSession := func(handle string) {
		t.Helper()
		err := e.Store.CreateSession(context.Background(), &store.Session{ID: smart.SessionID(handle), RegistrationID: "ehr",
			FHIRBase: "https://ehr.example/fhir", Patient: "p1", AccessToken: "at", ExpiresAt: now.Add(8 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
	}
	call := func(method, handle string) (int, string) {
		req := httptest.NewRequest(method, "/api/session", nil)
		if method == http.MethodGet {
			req = httptest.NewRequest(method, "/api/context", nil)
		}
		req.Header.Set("Authorization", "Bearer "+handle)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	newSession("handle-in-use-0123456789")
	newSession("handle-left-idle-0123456789")
	now = now.Add(10*time.Minute - time.Second)
	if status, body := call(http.MethodDelete, "handle-in-use-0123456789"); status != http.StatusNoContent {
		t.Errorf("sign-out a second before the idle timeout: %d %s", status, body)
	}
	now = now.Add(time.Second)
	status, body := call(http.MethodGet, "handle-left-idle-0123456789")
	if status != http.StatusUnauthorized || !strings.Contains(body, `"error":"session_idle"`) || !strings.Contains(body, `"limit_minutes":10`) {
		t.Errorf("after 10 minutes unused: %d %s, want 401 session_idle with limit_minutes 10", status, body)
	}
}

// TestBindingOffLoggedAtStart: a registration that turns the browser
// binding off is named in a warning when launch or callback starts; one
// that keeps it is not.
func TestBindingOffLoggedAtStart(t *testing.T) {
	key := map[string]string{config.EnvLaunchKey: base64.StdEncoding.EncodeToString(make([]byte, 32))}
	for _, name := range []string{"launch", "callback"} {
		var logs strings.Builder
		e := &entrypoints.Env{Config: load(t, key), Log: slog.New(slog.NewJSONHandler(&logs, nil)),
			Registrations: []smart.Registration{{ID: "unbound-ehr", Issuer: "https://unbound.example/fhir", ClientID: "calc",
				ClientAuth: smart.ClientAuth{Type: smart.AuthPublic}, Scope: "launch patient/Patient.rs", Launch: []string{"ehr"},
				AllowedHosts: []string{"unbound.example"}, BrowserBinding: smart.BindingOff}}}
		if _, err := e.Handler(name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := logs.String()
		if strings.Count(out, "browser binding off") != 1 || !strings.Contains(out, `"registration":"unbound-ehr"`) || !strings.Contains(out, `"level":"WARN"`) {
			t.Errorf("%s start-up log, want one warning naming unbound-ehr:\n%s", name, out)
		}
		if strings.Contains(out, `"registration":"ehr"`) {
			t.Errorf("%s warned about a registration that keeps the binding:\n%s", name, out)
		}
	}
}
