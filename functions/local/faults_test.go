package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

func dataError(a *assess.Assessment, resource string) *assess.DataError {
	for i := range a.DataErrors {
		if a.DataErrors[i].Resource == resource {
			return &a.DataErrors[i]
		}
	}
	return nil
}

func TestSessionRequired(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, h := range []string{"", "not-a-session", strings.Repeat("A", 43)} {
		for _, path := range []string{"context", "assessment"} {
			status, body := e.api(t, "GET", path, h, "")
			if status != 401 || !strings.Contains(string(body), "Relaunch") {
				t.Errorf("%s with handle %q: %d %s", path, h, status, body)
			}
		}
	}
}

func TestAssessmentFaults(t *testing.T) {
	e := start(t, memoryStore, nil, &Tune{Sandbox: func(c *ehrsim.Config) { c.FaultDelay = 300 * time.Millisecond }}, nil)

	t.Run("fhir-5xx on one search", func(t *testing.T) {
		a := e.assessment(t, e.launch(t, "hbr-anticoag", "fhir-5xx:Condition"))
		de := dataError(a, "Condition")
		if de == nil || de.Kind != assess.KindUnavailable {
			t.Fatalf("Condition data error %+v in %+v", de, a.DataErrors)
		}
		if len(de.Inputs) == 0 {
			t.Error("the data error names no affected input")
		}
		if a.Results["precise-hbr"] == nil || a.Results["arc-hbr"] == nil {
			t.Fatal("the assessment did not answer as a whole")
		}
		// Labs still came through.
		if v := value(a.Results["egfr-ckd-epi-2021"], "egfr"); v == nil && value(a.Results["precise-hbr"], "score") == nil {
			t.Errorf("labs lost with the Condition search")
		}
		if !strings.Contains(warningText(a), "The EHR did not answer for the problem list") {
			t.Errorf("no warning names the failed search: %q", a.Warnings)
		}
	})

	t.Run("fhir-403 is a refusal, not missing data", func(t *testing.T) {
		a := e.assessment(t, e.launch(t, "hbr-anticoag", "fhir-403:Condition"))
		de := dataError(a, "Condition")
		if de == nil || de.Kind != assess.KindForbidden {
			t.Fatalf("Condition data error %+v", de)
		}
		// Said once, as a refusal, in the assessment's warnings.
		if !strings.Contains(warningText(a), "The EHR refused access to the problem list") && !strings.Contains(warningText(a), "break-the-glass access to the problem list") {
			t.Errorf("the warnings do not say access was refused: %q", a.Warnings)
		}
	})

	t.Run("scope downgrade names the missing scope", func(t *testing.T) {
		h := e.launch(t, "hbr-anticoag", "scope-downgrade")
		a := e.assessment(t, h)
		de := dataError(a, "Observation")
		if de == nil || de.Kind != assess.KindScope || de.Scope != "patient/Observation.rs" {
			t.Fatalf("Observation data error %+v", de)
		}
		if a.FHIRRequests != 0 {
			t.Errorf("%d FHIR requests with no resource scope granted, want 0", a.FHIRRequests)
		}
		if !strings.Contains(warningText(a), "not granted access to the") || !strings.Contains(warningText(a), "lab results") {
			t.Errorf("the warnings do not say the lab results were not granted: %q", a.Warnings)
		}
		status, body := e.api(t, "GET", "context", h, "")
		if status != 200 || !strings.Contains(string(body), "patient/Patient.r") {
			t.Errorf("context: %d %s", status, body)
		}
	})

	t.Run("slow FHIR still answers", func(t *testing.T) {
		a := e.assessment(t, e.launch(t, "low-risk", "fhir-slow"))
		if len(a.DataErrors) != 0 || value(a.Results["precise-hbr"], "score") == nil {
			t.Errorf("slow FHIR: errors %+v", a.DataErrors)
		}
	})

	t.Run("expired token is refreshed once", func(t *testing.T) {
		h := e.launch(t, "low-risk", "token-expired")
		before, err := e.store.GetSession(context.Background(), smart.SessionID(h))
		if err != nil {
			t.Fatal(err)
		}
		tokens := e.Sandbox.TokenRequests()
		var wg sync.WaitGroup
		results := make([]*assess.Assessment, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.assessment(t, h)
			}()
		}
		wg.Wait()
		for i, a := range results {
			if a == nil || len(a.DataErrors) != 0 || value(a.Results["precise-hbr"], "score") == nil {
				t.Errorf("assessment %d after refresh: %+v", i, a)
			}
		}
		after, err := e.store.GetSession(context.Background(), smart.SessionID(h))
		if err != nil {
			t.Fatal(err)
		}
		if after.AccessToken == before.AccessToken || !after.TokenExpiry.After(time.Now()) {
			t.Errorf("the session's token was not refreshed")
		}
		if n := e.Sandbox.TokenRequests() - tokens; n < 1 || n > int64(len(results)) {
			t.Errorf("%d refresh requests", n)
		}
	})

	t.Run("what-if overrides are marked entered", func(t *testing.T) {
		h := e.launch(t, "low-risk")
		status, body := e.api(t, "POST", "assessment", h, `{"inputs":{"hemoglobin":{"value":90,"unit":"g/L"},"prior_bleeding":true}}`)
		if status != 200 {
			t.Fatalf("POST assessment: %d %s", status, body)
		}
		var a assess.Assessment
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		hbr := a.Results["precise-hbr"]
		found := false
		for _, in := range hbr.Inputs {
			if in.Name == "hemoglobin" {
				found = true
				if in.Origin != "entered" || in.Value != 9.0 {
					t.Errorf("hemoglobin echo %+v", in)
				}
			}
		}
		if !found {
			t.Error("no hemoglobin input echoed")
		}
		if sm := a.Summary; strings.Join(sm.Entered, ",") != "hemoglobin,prior_bleeding" || !strings.Contains(sm.EnteredText.String(), "Hemoglobin") {
			t.Errorf("summary entered %v %q: the summary must say it includes the entered values", sm.Entered, sm.EnteredText)
		}
		base := e.assessment(t, h)
		if len(base.Summary.Entered) != 0 || !base.Summary.EnteredText.IsZero() {
			t.Errorf("a record-only assessment says it includes entered values: %+v", base.Summary)
		}
		if value(hbr, "score").(float64) <= value(base.Results["precise-hbr"], "score").(float64) {
			t.Errorf("lower Hb and prior bleeding did not raise the score: %v vs %v", value(hbr, "score"), value(base.Results["precise-hbr"], "score"))
		}
		for _, bad := range []string{`{"inputs":{"hemoglobin":{"value":9,"unit":"furlong"}}}`, `{"inputs":{"nonsense":1}}`, `not json`} {
			if status, _ := e.api(t, "POST", "assessment", h, bad); status != 400 {
				t.Errorf("POST %s: %d, want 400", bad, status)
			}
		}
	})
}

func TestSignOut(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			e := start(t, kind, nil, nil, nil)
			h := e.launch(t, "low-risk")
			if status, body := e.api(t, "GET", "context", h, ""); status != 200 {
				t.Fatalf("context before sign-out: %d %s", status, body)
			}
			if status, body := e.api(t, "DELETE", "session", h, ""); status != 204 {
				t.Fatalf("DELETE session: %d %s", status, body)
			}
			if _, err := e.store.GetSession(context.Background(), smart.SessionID(h)); !errors.Is(err, store.ErrSignedOut) {
				t.Errorf("the store gives %v for the signed-out session, want ErrSignedOut", err)
			}
			// Another tab holding the same handle (a duplicated tab copies
			// sessionStorage) is told the session was signed out, not only
			// that it is missing; so is a second sign-out.
			for _, call := range [][2]string{{"GET", "assessment"}, {"GET", "context"}, {"DELETE", "session"}} {
				status, raw := e.api(t, call[0], call[1], h, "")
				var body struct{ Error, Message string }
				json.Unmarshal(raw, &body)
				if status != 401 || body.Error != "session_signed_out" || !strings.Contains(body.Message, "signed out") {
					t.Errorf("%s %s after sign-out: %d %s, want 401 session_signed_out", call[0], call[1], status, raw)
				}
			}
			if !strings.Contains(e.logs.String(), `"cause":"session_signed_out"`) {
				t.Error("no log line says the request came after a sign-out")
			}
		})
	}
}

// TestActivityWriteFailureServes: an API call whose activity write fails
// (the session read worked) is served, logged, and costs no retry; the next
// call writes the activity again.
func TestActivityWriteFailureServes(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := start(t, memoryStore, nil, nil, now)
	h := e.launch(t, "low-risk")
	offset.Store(int64(2 * time.Minute)) // the next call records activity
	e.store.touchDown.Store(true)
	e.store.touches.Store(0)
	for _, path := range []string{"context", "assessment"} {
		if status, body := e.api(t, "GET", path, h, ""); status != 200 {
			t.Errorf("%s with a failing activity write: %d %.300s, want 200", path, status, body)
		}
	}
	if n := e.store.touches.Load(); n != 2 {
		t.Errorf("%d activity writes for 2 calls, want 2 (one each, no retry)", n)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"message":"session activity not recorded"`) || !strings.Contains(logs, `"cause":"store_unavailable"`) {
		t.Errorf("no warning for the activity not recorded:\n%s", lastLines(logs, 10))
	}
	e.store.touchDown.Store(false)
	e.store.touches.Store(0)
	if status, _ := e.api(t, "GET", "context", h, ""); status != 200 {
		t.Errorf("context after the store came back: %d", status)
	}
	if n := e.store.touches.Load(); n != 1 {
		t.Errorf("%d activity writes after the store came back, want 1", n)
	}
	if status, _ := e.api(t, "GET", "context", h, ""); status != 200 || e.store.touches.Load() != 1 {
		t.Errorf("the next call within the minute: %d, %d writes in all, want 200 and no new write", status, e.store.touches.Load())
	}
}

// warningText is an assessment's warnings as one text.
func warningText(a *assess.Assessment) string {
	var b strings.Builder
	for _, w := range a.Warnings {
		b.WriteString(w.Text.String() + "\n")
	}
	return b.String()
}

// TestSessionIdleAndLifetime drives the session limits through the API on
// both stores, with the app's clock moved by hand: a session in use every
// 29 minutes stays open until its 8-hour lifetime ends it; one left unused
// for the 30-minute idle timeout ends. Each 401 says which limit ended it.
func TestSessionIdleAndLifetime(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			var offset atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			e := start(t, kind, nil, nil, now)
			ended := func(h, code string, minutes int) {
				t.Helper()
				for _, path := range []string{"context", "assessment"} {
					status, raw := e.api(t, "GET", path, h, "")
					var body struct {
						Error, Message string
						LimitMinutes   int `json:"limit_minutes"`
					}
					json.Unmarshal(raw, &body)
					if status != 401 || body.Error != code || body.LimitMinutes != minutes || !strings.Contains(body.Message, "Relaunch") {
						t.Errorf("%s after %v: %d %s, want 401 %s with limit_minutes %d", path, time.Duration(offset.Load()), status, raw, code, minutes)
					}
				}
			}
			inUse := func(h string) {
				t.Helper()
				if status, body := e.api(t, "GET", "context", h, ""); status != 200 {
					t.Fatalf("context after %v: %d %s", time.Duration(offset.Load()), status, body)
				}
			}

			idle := e.launch(t, "low-risk")
			for range 3 {
				offset.Add(int64(29 * time.Minute))
				inUse(idle)
			}
			offset.Add(int64(30 * time.Minute))
			ended(idle, "session_idle", 30)
			if !strings.Contains(e.logs.String(), `"cause":"session_idle"`) {
				t.Error("no log line names the idle timeout")
			}

			offset.Store(0)
			long := e.launch(t, "low-risk")
			for i := 1; i <= 16; i++ { // a request every 29 minutes, 7 h 44 min in all
				offset.Store(int64(time.Duration(i) * 29 * time.Minute))
				inUse(long)
			}
			offset.Store(int64(8*time.Hour - time.Minute))
			inUse(long)
			offset.Store(int64(8*time.Hour + time.Minute))
			ended(long, "session_lifetime", 480)
		})
	}
}
