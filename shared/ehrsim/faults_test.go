package ehrsim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	t.Run("scope-downgrade", func(t *testing.T) {
		e := newEnv(t)
		r := e.ehrLaunch("hbr-anticoag", "pub", ehrScope+" patient/Observation.rs", "scope-downgrade")
		if r.str("scope") != "launch openid fhirUser online_access" {
			t.Errorf("scope %q", r.str("scope"))
		}
		status, oo, h := e.fhir(r.str("access_token"), "Observation?patient=hbr-anticoag")
		if status != 403 || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") || oo["resourceType"] != "OperationOutcome" {
			t.Errorf("FHIR after downgrade: %d %q", status, h.Get("WWW-Authenticate"))
		}
		if r.str("id_token") == "" || r.str("refresh_token") == "" {
			t.Errorf("downgraded grant still carries openid fhirUser online_access: %v", r.body)
		}
	})
	t.Run("no-openid and no-refresh", func(t *testing.T) {
		e := newEnv(t)
		r := e.ehrLaunch("hbr-anticoag", "pub", ehrScope, "no-openid,no-refresh")
		if r.str("scope") != "launch patient/*.rs" || r.body["id_token"] != nil || r.body["refresh_token"] != nil {
			t.Errorf("got %v", r.body)
		}
	})
	tokenFault := func(t *testing.T, fault string) (*env, tokenReply, string, url.Values) {
		e := newEnv(t)
		p, v := e.authParams("pub", ehrScope, e.launch("hbr-anticoag", fault))
		form := codeForm(e.code(p), v)
		return e, e.token("pub", form), v, form
	}
	t.Run("invalid_client", func(t *testing.T) {
		_, r, _, _ := tokenFault(t, "invalid_client")
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Errorf("got %d %v", r.status, r.body)
		}
	})
	t.Run("invalid_grant", func(t *testing.T) {
		_, r, _, _ := tokenFault(t, "invalid_grant")
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Errorf("got %d %v", r.status, r.body)
		}
	})
	t.Run("token-5xx", func(t *testing.T) {
		e, r, _, form := tokenFault(t, "token-5xx")
		if r.status != 503 || r.body != nil {
			t.Errorf("got %d %v, want a 503 HTML page", r.status, r.body)
		}
		// The gateway error did not consume the code: the fault persists.
		if r := e.token("pub", form); r.status != 503 {
			t.Errorf("retry: %d", r.status)
		}
	})
	t.Run("token-slow", func(t *testing.T) {
		e, r, _, _ := tokenFault(t, "token-slow:7s")
		if r.status != 200 || len(e.slept) != 1 || e.slept[0] != 7*time.Second {
			t.Errorf("got %d, slept %v", r.status, e.slept)
		}
		e2, r2, _, _ := tokenFault(t, "token-slow")
		if r2.status != 200 || len(e2.slept) != 1 || e2.slept[0] != 3*time.Second {
			t.Errorf("default delay: got %d, slept %v", r2.status, e2.slept)
		}
	})
	t.Run("token-expired", func(t *testing.T) {
		e, r, _, _ := tokenFault(t, "token-expired")
		if r.status != 200 || r.body["expires_in"] != 1.0 {
			t.Fatalf("got %d %v", r.status, r.body)
		}
		if status, _, _ := e.fhir(r.str("access_token"), "Patient/hbr-anticoag"); status != 401 {
			t.Errorf("expired token: %d, want 401", status)
		}
		r2 := e.token("pub", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}})
		if r2.status != 200 || r2.body["expires_in"] != 3600.0 {
			t.Fatalf("refresh: %d %v", r2.status, r2.body)
		}
		if status, _, _ := e.fhir(r2.str("access_token"), "Patient/hbr-anticoag"); status != 200 {
			t.Errorf("refreshed token: %d", status)
		}
	})
	t.Run("refresh-expired", func(t *testing.T) {
		e, r, _, _ := tokenFault(t, "refresh-expired")
		r2 := e.token("pub", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}})
		if r2.status != 400 || r2.str("error") != "invalid_grant" {
			t.Errorf("got %d %v", r2.status, r2.body)
		}
	})
	t.Run("fhir faults", func(t *testing.T) {
		e := newEnv(t)
		tok := e.ehrLaunch("hbr-anticoag", "pub", ehrScope, "fhir-5xx:Observation", "fhir-403:Condition", "fhir-slow:2s").str("access_token")
		tests := []struct {
			path string
			want int
		}{
			{"Observation?patient=hbr-anticoag", 500},
			{"Condition?patient=hbr-anticoag", 403},
			{"Patient/hbr-anticoag", 200},
			{"MedicationRequest?patient=hbr-anticoag", 200},
		}
		for _, tt := range tests {
			status, oo, _ := e.fhir(tok, tt.path)
			if status != tt.want {
				t.Errorf("%s: %d, want %d", tt.path, status, tt.want)
			}
			if tt.want == 403 && !strings.Contains(oo["issue"].([]any)[0].(map[string]any)["diagnostics"].(string), "break-the-glass") {
				t.Errorf("%s: %v", tt.path, oo)
			}
		}
		if len(e.slept) != len(tests) || e.slept[0] != 2*time.Second {
			t.Errorf("slept %v, want 2s per FHIR request", e.slept)
		}
		all := e.ehrLaunch("hbr-anticoag", "pub", ehrScope, "fhir-5xx").str("access_token")
		if status, _, _ := e.fhir(all, "Patient/hbr-anticoag"); status != 500 {
			t.Errorf("fhir-5xx for all types: %d", status)
		}
	})
	t.Run("need_patient_banner=false", func(t *testing.T) {
		e := newEnv(t)
		res := e.get(e.s.LaunchURL("low-risk") + "&need_patient_banner=false")
		launch, _ := url.Parse(res.Header.Get("Location"))
		p, v := e.authParams("pub", ehrScope, launch.Query().Get("launch"))
		r := e.token("pub", codeForm(e.code(p), v))
		if r.body["need_patient_banner"] != false {
			t.Errorf("need_patient_banner %v", r.body["need_patient_banner"])
		}
	})
	t.Run("bad fault lists", func(t *testing.T) {
		e := newEnv(t)
		for _, f := range []string{"explode", "fhir-5xx:notatype", "token-slow:forever", "scope-downgrade:x", "fhir-403:"} {
			res := e.get(e.s.LaunchURL("low-risk", f))
			if body := readBody(t, res); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "fault") {
				t.Errorf("%s: %d", f, res.StatusCode)
			}
		}
	})
}
