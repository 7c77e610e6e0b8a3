package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// launchVia runs an EHR launch into patient through the sandbox profile and
// returns the session handle and its stored session.
func (e *env) launchVia(t testing.TB, profile, patient string, faults ...string) (string, *store.Session) {
	t.Helper()
	seen, resp, body := e.redirects(t, e.Sandbox.ProfileLaunchURL(profile, patient, faults...))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s launch into %s: status %d: %.400s", profile, patient, resp.StatusCode, body)
	}
	handle := e.handleFrom(t, seen)
	sess, err := e.store.GetSession(context.Background(), smart.SessionID(handle))
	if err != nil {
		t.Fatal(err)
	}
	return handle, sess
}

// registration returns the local runner's registration of the sandbox
// profile, for tests to change before the first request builds the
// registry.
func registrationOf(en *entrypoints.Env, id string) *smart.Registration {
	for i := range en.Registrations {
		if en.Registrations[i].ID == id {
			return &en.Registrations[i]
		}
	}
	panic("no registration " + id)
}

// outcome is what a profile's launch must not change in an assessment.
func outcome(a *assess.Assessment) string {
	var b strings.Builder
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for k := range a.Results {
			if !yield(k) {
				return
			}
		}
	}) {
		r := a.Results[id]
		fmt.Fprintf(&b, "%s %s", id, r.Status)
		for _, v := range r.Values {
			fmt.Fprintf(&b, " %s=%v", v.Name, v.Value)
		}
		for _, c := range r.Criteria {
			if c.Met != nil && *c.Met {
				fmt.Fprintf(&b, " +%s", c.Name)
			}
		}
		b.WriteString("\n")
	}
	hbr := "null"
	if a.Summary.HBR != nil {
		hbr = fmt.Sprint(*a.Summary.HBR)
	}
	fmt.Fprintf(&b, "summary hbr=%s, %d data errors", hbr, len(a.DataErrors))
	return b.String()
}

// TestProfileLaunchesAssessEverySamplePatient launches into every shipped
// patient through the Oracle Health and Epic profiles, each registered as
// a deployer registers it, and checks that the assessment is the one the
// default profile gives.
func TestProfileLaunchesAssessEverySamplePatient(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	oracle, _ := e.Sandbox.Endpoints(ehrsim.ProfileOracle)
	epic, _ := e.Sandbox.Endpoints(ehrsim.ProfileEpic)
	for _, p := range e.Sandbox.Patients() {
		h, _ := e.launchVia(t, ehrsim.ProfileDefault, p.ID)
		want := outcome(e.assessment(t, h))
		for _, c := range []struct {
			profile, registration, base string
			scope                       string // a scope the grant must hold
			refresh                     bool
		}{
			{ehrsim.ProfileOracle, "sandbox-oracle", oracle.FHIRBase, "patient/Observation.read", true},
			{ehrsim.ProfileEpic, "sandbox-epic", epic.FHIRBase, "user/Observation.read", false},
		} {
			h, sess := e.launchVia(t, c.profile, p.ID)
			if sess.RegistrationID != c.registration || sess.FHIRBase != c.base || sess.Patient != p.ID {
				t.Errorf("%s/%s: session %s at %s for %s", c.profile, p.ID, sess.RegistrationID, sess.FHIRBase, sess.Patient)
			}
			if !strings.Contains(" "+sess.Scope+" ", " "+c.scope+" ") || (sess.RefreshToken != "") != c.refresh {
				t.Errorf("%s/%s: granted %q, refresh token %v", c.profile, p.ID, sess.Scope, sess.RefreshToken != "")
			}
			a := e.assessment(t, h)
			if got := outcome(a); got != want {
				t.Errorf("%s/%s: the assessment differs from the default profile's:\n%s\nwant\n%s", c.profile, p.ID, got, want)
			}
			if a.Patient == nil || a.Patient.ID != p.ID {
				t.Errorf("%s/%s: assessed patient %+v", c.profile, p.ID, a.Patient)
			}
		}
	}
}

// TestOracleIDTokenIssuerQuirk: Oracle Health's id_tokens come from the
// tenant's authorization server, not the FHIR base. The registration's
// id_token_issuer makes the launch work; set to the FHIR base, every
// launch fails with id_token_invalid and says so.
func TestOracleIDTokenIssuerQuirk(t *testing.T) {
	e := start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) {
		oracle := registrationOf(en, "sandbox-oracle")
		oracle.IDTokenIssuer = oracle.Issuer
	}}, nil)
	_, resp, body := e.redirects(t, e.Sandbox.ProfileLaunchURL(ehrsim.ProfileOracle, "low-risk"))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "identity token could not be verified") {
		t.Errorf("status %d: %.400s", resp.StatusCode, body)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"cause":"id_token_invalid"`) || !strings.Contains(logs, "/tenants/"+ehrsim.OracleTenant+"/oidc/idsps/") {
		t.Errorf("the log does not name the issuer the id_token came from:\n%s", logs)
	}
}

// TestOracleV1RegistrationQuirk: an app registered with Oracle Health as
// SMART v1 is granted no v2 scopes. A registration that asks for v2 scopes
// launches, but reads nothing, and the assessment says which scopes are
// missing.
func TestOracleV1RegistrationQuirk(t *testing.T) {
	e := start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) {
		registrationOf(en, "sandbox-oracle").Scope = assess.RecommendedScope(false)
	}}, nil)
	h, sess := e.launchVia(t, ehrsim.ProfileOracle, "hbr-anticoag")
	if strings.Contains(sess.Scope, "patient/") {
		t.Errorf("granted %q: a v1 app got v2 scopes", sess.Scope)
	}
	a := e.assessment(t, h)
	kinds := map[string]bool{}
	for _, d := range a.DataErrors {
		kinds[string(d.Kind)] = true
	}
	if !kinds["scope"] || a.Results["precise-hbr"].Status == "ok" {
		t.Errorf("data errors %+v, PRECISE-HBR %s: the missing scopes should be reported", a.DataErrors, a.Results["precise-hbr"].Status)
	}
	// And the readiness check of the same registration passes its scope
	// syntax (the EHR advertises both versions), while telling the
	// deployer to register the app as SMART v2.
	d, err := e.Env.Doctor()
	if err != nil {
		t.Fatal(err)
	}
	oracle, _ := e.Sandbox.Endpoints(ehrsim.ProfileOracle)
	rep := d.Check(context.Background(), oracle.FHIRBase)
	if c, _ := rep.Check("scope-syntax"); c.Status != "pass" || !strings.Contains(c.Detail, "register the app as SMART v2") || rep.Console.SMARTVersion != "v2" {
		t.Errorf("scope-syntax %+v, console %+v", c, rep.Console)
	}
}

// TestProfileAudIsTheFHIRBase: both vendors require aud to be the FHIR
// base the launch came from; SMART Calc sends exactly the iss.
func TestProfileAudIsTheFHIRBase(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, profile := range []string{ehrsim.ProfileOracle, ehrsim.ProfileEpic} {
		ep, _ := e.Sandbox.Endpoints(profile)
		launchURL := e.stopAt(t, e.Sandbox.ProfileLaunchURL(profile, "low-risk"), "/launch")
		authz := e.stopAt(t, launchURL.String(), strings.TrimPrefix(ep.AuthorizeURL, e.URL))
		q := authz.Query()
		if q.Get("aud") != ep.FHIRBase || launchURL.Query().Get("iss") != ep.FHIRBase || q.Get("launch") == "" || !strings.Contains(" "+q.Get("scope")+" ", " launch ") {
			t.Errorf("%s: aud %q launch %q scope %q, want aud = iss = %s and the launch scope", profile, q.Get("aud"), q.Get("launch"), q.Get("scope"), ep.FHIRBase)
		}
	}
}

// TestOracleRefreshKeepsTheRefreshToken: Oracle Health's access tokens
// last 570 s and a refresh returns no new refresh token; the session keeps
// the original, and refreshes again with it.
func TestOracleRefreshKeepsTheRefreshToken(t *testing.T) {
	clk := smarttest.NewClock(time.Now())
	e := start(t, memoryStore, nil, &Tune{Sandbox: func(c *ehrsim.Config) { c.Now = clk.Now }}, clk.Now)
	h, sess := e.launchVia(t, ehrsim.ProfileOracle, "low-risk")
	if d := sess.TokenExpiry.Sub(clk.Now()); d < 560*time.Second || d > 580*time.Second {
		t.Errorf("token expires in %v, want Oracle's 570 s", d)
	}
	first := sess.RefreshToken
	for i := range 2 {
		clk.Add(10 * time.Minute)
		before := e.Sandbox.TokenRequests()
		if status, body := e.api(t, "GET", "assessment", h, ""); status != http.StatusOK {
			t.Fatalf("assessment %d after the token expired: %d %.300s", i, status, body)
		}
		if e.Sandbox.TokenRequests() != before+1 {
			t.Errorf("refresh %d: %d token requests", i, e.Sandbox.TokenRequests()-before)
		}
		s, _ := e.store.GetSession(context.Background(), smart.SessionID(h))
		if s.RefreshToken != first || s.AccessToken == sess.AccessToken {
			t.Errorf("refresh %d: refresh token kept %v, access token renewed %v", i, s.RefreshToken == first, s.AccessToken != sess.AccessToken)
		}
	}
}

// TestEpicPatientIdentifiersQuirk: Epic's token response names the
// patient twice (patient, the FHIR ID; __epic.dstu2.patient, the DSTU2 ID)
// and need_patient_banner as a string. The session takes the FHIR ID and
// the banner flag.
func TestEpicPatientIdentifiersQuirk(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, banner := range []string{"true", "false"} {
		seen, resp, body := e.redirects(t, e.Sandbox.ProfileLaunchURL(ehrsim.ProfileEpic, "cirrhosis")+"&need_patient_banner="+banner)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %.300s", resp.StatusCode, body)
		}
		h := e.handleFrom(t, seen)
		sess, _ := e.store.GetSession(context.Background(), smart.SessionID(h))
		if sess.Patient != "cirrhosis" || fmt.Sprint(sess.NeedPatientBanner) != banner {
			t.Errorf("session patient %q, need_patient_banner %v; want cirrhosis, %s", sess.Patient, sess.NeedPatientBanner, banner)
		}
		status, ctxBody := e.api(t, "GET", "context", h, "")
		var c struct {
			NeedPatientBanner bool `json:"need_patient_banner"`
			Patient           struct {
				ID string `json:"id"`
			} `json:"patient"`
		}
		if json.Unmarshal(ctxBody, &c); status != http.StatusOK || c.Patient.ID != "cirrhosis" || fmt.Sprint(c.NeedPatientBanner) != banner {
			t.Errorf("context %d %s", status, ctxBody)
		}
	}
}

// TestEpicPublicClientHasNoRefreshQuirk: Epic gives a public client no
// refresh token, even with online_access. The session works until the
// access token expires; then the API says to relaunch.
func TestEpicPublicClientHasNoRefreshQuirk(t *testing.T) {
	clk := smarttest.NewClock(time.Now())
	e := start(t, memoryStore, nil, &Tune{Sandbox: func(c *ehrsim.Config) { c.Now = clk.Now }}, clk.Now)
	h, sess := e.launchVia(t, ehrsim.ProfileEpic, "low-risk")
	if sess.RefreshToken != "" || !strings.Contains(sess.Scope, "online_access") {
		t.Fatalf("granted %q with a refresh token %v", sess.Scope, sess.RefreshToken != "")
	}
	if status, _ := e.api(t, "GET", "assessment", h, ""); status != http.StatusOK {
		t.Fatalf("assessment: %d", status)
	}
	clk.Add(2 * time.Hour)
	status, body := e.api(t, "GET", "assessment", h, "")
	if status != http.StatusUnauthorized || !strings.Contains(strings.ToLower(string(body)), "relaunch") {
		t.Errorf("after expiry: %d %s, want 401 asking to relaunch", status, body)
	}
}

// TestEpicStandaloneQuirk: Epic returns no patient to a provider's
// standalone launch, so the sandbox-epic registration allows EHR launches
// only; one that allows standalone gets "did not say which patient".
func TestEpicStandaloneQuirk(t *testing.T) {
	epic := func(e *env) string { ep, _ := e.Sandbox.Endpoints(ehrsim.ProfileEpic); return ep.FHIRBase }
	e := start(t, memoryStore, nil, nil, nil)
	resp, err := e.client.Get(e.URL + "/launch?iss=" + url.QueryEscape(epic(e)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("standalone launch of sandbox-epic: %d, want 403 (launch mode not allowed)", resp.StatusCode)
	}
	e = start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) {
		r := registrationOf(en, "sandbox-epic")
		r.Launch = []string{smart.LaunchEHR, smart.LaunchStandalone}
	}}, nil)
	_, last, body := e.redirects(t, e.URL+"/launch?iss="+url.QueryEscape(epic(e)))
	if last.StatusCode != http.StatusBadGateway || !strings.Contains(body, "did not say which patient") {
		t.Errorf("standalone through Epic: %d %.300s", last.StatusCode, body)
	}
}

// TestPKCEMismatchExplained: the original app's bug as a sandbox fault.
// The callback's page names the verifier mismatch first, in the words the
// EHR's answer supports, for every profile.
func TestPKCEMismatchExplained(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, profile := range []string{ehrsim.ProfileDefault, ehrsim.ProfileOracle, ehrsim.ProfileEpic} {
		_, resp, body := e.redirects(t, e.Sandbox.ProfileLaunchURL(profile, "low-risk", "pkce-mismatch"))
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d", profile, resp.StatusCode)
		}
		causes := between(body, "<ol>", "</ol>")
		first := between(causes, "<li>", "</li>")
		if !strings.Contains(first, "PKCE verifier mismatch, as the EHR&#39;s answer says") || !strings.Contains(first, "different code_verifier") ||
			!strings.Contains(first, "Launch URI") {
			t.Errorf("%s: first cause %q", profile, first)
		}
		if !strings.Contains(body, "PKCE verification failed") {
			t.Errorf("%s: the page does not show what the EHR said", profile)
		}
	}
	// An invalid_grant that does not name the verifier keeps the usual
	// order and wording.
	_, _, body := e.redirects(t, e.URL+"/ehr/launch?patient=low-risk&fault=invalid_grant")
	if first := between(between(body, "<ol>", "</ol>"), "<li>", "</li>"); strings.Contains(first, "as the EHR") || !strings.HasPrefix(first, "PKCE verifier mismatch: SMART Calc made") {
		t.Errorf("plain invalid_grant: first cause %q", first)
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	before, _, _ := strings.Cut(after, end)
	return before
}
