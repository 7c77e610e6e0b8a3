package smart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

func TestProblem(t *testing.T) {
	causes := make([]message.Msg, 1, 4) // spare capacity: Problem must not write into it
	causes[0] = message.Verbatim("cause one")
	unmatched := &smart.Error{Kind: smart.EHRDenied, EHRError: "access_denied",
		EHRDescription: "Call 555-0100 to unlock your account", EHRURI: "https://evil.example/help", Unmatched: true,
		Causes: causes}
	for _, tc := range []struct {
		name string
		err  error
		want web.Problem
	}{
		{
			name: "not a smart error",
			err:  errors.New("boom"),
			want: web.Problem{Status: 500, Title: message.Verbatim("SMART Calc could not complete the sign-in."),
				Advice: message.Verbatim("Relaunch SMART Calc from the EHR. If it happens again, tell your EHR support team.")},
		},
		{
			name: "nil",
			err:  nil,
			want: web.Problem{Status: 500, Title: message.Verbatim("SMART Calc could not complete the sign-in."),
				Advice: message.Verbatim("Relaunch SMART Calc from the EHR. If it happens again, tell your EHR support team.")},
		},
		{
			name: "wrapped",
			err:  fmt.Errorf("callback: %w", &smart.Error{Kind: smart.ReplayedState, Correlation: "0123456789abcdef"}),
			want: web.Problem{Status: 409, Title: message.Verbatim("This launch was already used"),
				Advice:      message.Verbatim("Relaunch SMART Calc from the EHR. Reloading the page or using the back button repeats a launch that can only be used once."),
				Correlation: "0123456789abcdef"},
		},
		{
			name: "EHR error with description and URI",
			err: &smart.Error{Kind: smart.EHRDenied, Correlation: "c1", EHRError: "access_denied",
				EHRDescription: "The user denied the request", EHRURI: "urn:cerner:error:access-denied?correlation=abc"},
			want: web.Problem{Status: 403, Title: message.Verbatim("The EHR did not authorize SMART Calc"),
				Advice:      message.Verbatim("Access was declined. Relaunch SMART Calc from the EHR. If you meant to allow access, approve SMART Calc when the EHR asks."),
				EHRError:    "access_denied: The user denied the request (urn:cerner:error:access-denied?correlation=abc)",
				Correlation: "c1"},
		},
		{
			name: "EHR error code alone",
			err:  &smart.Error{Kind: smart.EHRDenied, EHRError: "server_error"},
			want: web.Problem{Status: 502, Title: message.Verbatim("The EHR did not authorize SMART Calc"),
				Advice:   message.Verbatim("Relaunch SMART Calc from the EHR. If this keeps happening, give your EHR administrator the details below."),
				EHRError: "server_error"},
		},
		{
			name: "EHR error code and URI",
			err:  &smart.Error{Kind: smart.TokenEndpointError, EHRError: "invalid_scope", EHRURI: "https://ehr.example/e/1"},
			want: web.Problem{Status: 502, Title: message.Verbatim("The EHR's token service returned an error"),
				Advice:   message.Verbatim("Wait a minute and relaunch SMART Calc from the EHR. If this keeps happening, give your EHR administrator the details below."),
				EHRError: "invalid_scope (https://ehr.example/e/1)"},
		},
		{
			name: "unmatched EHR error: its text stays off the page",
			err:  unmatched,
			want: web.Problem{Status: 403, Title: message.Verbatim("The EHR did not authorize SMART Calc"),
				Advice: message.Verbatim("Access was declined. Relaunch SMART Calc from the EHR. If you meant to allow access, approve SMART Calc when the EHR asks."),
				Causes: msgs("cause one", "this error response did not match a launch SMART Calc started (its state was missing, unknown, expired or already used), so the EHR's message is not shown here; SMART Calc's log has it")},
		},
		{
			name: "causes and what was sent",
			err: &smart.Error{Kind: smart.InvalidGrant, Correlation: "c2", EHRError: "invalid_grant",
				Causes: msgs("PKCE verifier mismatch", "redirect_uri mismatch"), Sent: msgs("POST https://ehr.example/token", "grant_type=authorization_code")},
			want: web.Problem{Status: 502, Title: message.Verbatim("The EHR rejected SMART Calc's authorization code"),
				Advice:   message.Verbatim("Relaunch SMART Calc from the EHR. If this keeps happening, give your EHR administrator the details below."),
				Causes:   msgs("PKCE verifier mismatch", "redirect_uri mismatch"),
				Sent:     msgs("POST https://ehr.example/token", "grant_type=authorization_code"),
				EHRError: "invalid_grant", Correlation: "c2"},
		},
		{
			name: "token endpoint unreachable",
			err:  &smart.Error{Kind: smart.TokenEndpointUnreachable},
			want: web.Problem{Status: 504, Title: message.Verbatim("The EHR's token service did not answer"),
				Advice: message.Verbatim("Wait a minute and relaunch SMART Calc from the EHR. If this keeps happening, give your EHR administrator the details below.")},
		},
		{
			name: "SMART Calc misconfigured",
			err:  &smart.Error{Kind: smart.Misconfigured},
			want: web.Problem{Status: 500, Title: message.Verbatim("SMART Calc is not configured correctly"),
				Advice: message.Verbatim("Try again in a minute. If this keeps happening, contact the SMART Calc administrator.")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := smart.Problem(tc.err)
			checkProblem(t, got, tc.want)
		})
	}
	if len(unmatched.Causes) != 1 || !causes[:2][1].IsZero() {
		t.Errorf("Problem changed the error's causes: %q", causes[:2])
	}

	// The unmatched EHR's words reach neither the page nor its title.
	rec := httptest.NewRecorder()
	web.ErrorPage(rec, nil, nil, smart.Problem(unmatched))
	if body := rec.Body.String(); strings.Contains(body, "555-0100") || strings.Contains(body, "evil.example") {
		t.Errorf("page shows the unmatched EHR text:\n%s", body)
	}
}

func checkProblem(t *testing.T, got, want web.Problem) {
	t.Helper()
	if got.Status != want.Status || got.Title.String() != want.Title.String() || got.Advice.String() != want.Advice.String() ||
		got.EHRError != want.EHRError || got.Correlation != want.Correlation ||
		!slices.Equal(smart.English(got.Causes), smart.English(want.Causes)) || !slices.Equal(smart.English(got.Sent), smart.English(want.Sent)) {
		t.Errorf("Problem:\n got %+v\nwant %+v", got, want)
	}
}

// logLine runs LogFailure into a Cloud Logging-shaped JSON logger and
// returns the one line it wrote.
func logLine(t *testing.T, err error, attrs ...any) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	smart.LogFailure(logging.New(&buf, slog.LevelDebug), "callback failed", err, attrs...)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("LogFailure wrote %d lines, want 1:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("log line is not JSON: %v\n%s", err, lines[0])
	}
	return m
}

func TestLogFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		attrs  []any
		want   map[string]any // fields and their values (JSON numbers as float64)
		absent []string
		errHas string
	}{
		{
			name: "request problem: WARNING",
			err:  &smart.Error{Kind: smart.UnknownIssuer, Issuer: "https://evil.example/fhir", Err: smart.ErrUnknownIssuer},
			want: map[string]any{"severity": "WARNING", "message": "callback failed", "cause": "unknown_issuer",
				"status": 403.0, "iss": "https://evil.example/fhir"},
			absent: []string{"correlation", "registration", "ehr_error", "ehr_status", "likely_causes", "sent", "launch_matched"},
			errHas: "smart: unknown_issuer: unknown iss",
		},
		{
			name: "EHR problem: ERROR with everything the deployer needs",
			err: &smart.Error{Kind: smart.InvalidGrant, Correlation: "0123456789abcdef", RegistrationID: "oracle-prod",
				Issuer: "https://fhir-ehr.cerner.com/r4/t1", EHRError: "invalid_grant", EHRDescription: "code expired",
				EHRURI: "urn:cerner:error?correlation=x-1", Status: 400,
				Causes: msgs("code reused or expired"), Sent: msgs("POST https://authorization.cerner.com/token")},
			attrs: []any{"mode", "ehr"},
			want: map[string]any{"severity": "ERROR", "cause": "invalid_grant", "status": 502.0,
				"correlation": "0123456789abcdef", "registration": "oracle-prod", "iss": "https://fhir-ehr.cerner.com/r4/t1",
				"ehr_error": "invalid_grant", "ehr_error_description": "code expired", "ehr_error_uri": "urn:cerner:error?correlation=x-1",
				"ehr_status": 400.0, "likely_causes": []any{"code reused or expired"},
				"sent": []any{"POST https://authorization.cerner.com/token"}, "mode": "ehr"},
			absent: []string{"launch_matched"},
			errHas: `registration "oracle-prod"`,
		},
		{
			name: "unmatched EHR error redirect is logged in full",
			err: &smart.Error{Kind: smart.EHRDenied, EHRError: "access_denied", EHRDescription: "call 555-0100",
				Unmatched: true},
			want: map[string]any{"severity": "WARNING", "cause": "ehr_denied", "status": 403.0,
				"ehr_error": "access_denied", "ehr_error_description": "call 555-0100", "launch_matched": false},
		},
		{
			name: "EHR timeout: ERROR 504",
			err:  &smart.Error{Kind: smart.DiscoveryFailed, Issuer: "https://ehr.example/fhir", Err: context.DeadlineExceeded},
			want: map[string]any{"severity": "ERROR", "cause": "discovery_failed", "status": 504.0},
		},
		{
			name:   "not a smart error",
			err:    errors.New("boom"),
			attrs:  []any{"mode", "standalone"},
			want:   map[string]any{"severity": "ERROR", "cause": "internal", "status": 500.0, "err": "boom", "mode": "standalone"},
			absent: []string{"correlation", "iss"},
		},
		{
			name: "nil error does not panic",
			err:  nil,
			want: map[string]any{"severity": "ERROR", "cause": "internal", "status": 500.0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := logLine(t, tc.err, tc.attrs...)
			for k, want := range tc.want {
				got, ok := m[k]
				if !ok {
					t.Errorf("log line lacks %q: %v", k, m)
					continue
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("log %s = %#v, want %#v", k, got, want)
				}
			}
			for _, k := range tc.absent {
				if _, ok := m[k]; ok {
					t.Errorf("log line has %s = %#v, want it absent", k, m[k])
				}
			}
			if errText, _ := m["err"].(string); errText == "" || !strings.Contains(errText, tc.errHas) {
				t.Errorf("log err = %q, want it to contain %q", errText, tc.errHas)
			}
		})
	}
}

// TestProblemAndLogHoldNoSecret renders the page and the log line of
// failures that happen once codes, verifiers, secrets, assertions and
// tokens exist, and looks for every one of them.
func TestProblemAndLogHoldNoSecret(t *testing.T) {
	for _, tc := range []struct {
		name  string
		auth  string
		setup func(t *testing.T, fx *fixture, s *secretSet)
	}{
		{"invalid_client secret", smart.AuthClientSecretBasic, func(t *testing.T, fx *fixture, s *secretSet) {
			fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
				return http.StatusUnauthorized, map[string]string{"error": "invalid_client"}, true
			})
		}},
		{"invalid_grant with an assertion", smart.AuthPrivateKeyJWT, func(t *testing.T, fx *fixture, s *secretSet) {
			fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
				return http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "bad code"}, true
			})
		}},
		{"tokens issued, then no patient", smart.AuthClientSecretBasic, func(t *testing.T, fx *fixture, s *secretSet) {
			s.recordTokens(fx, func(r map[string]any) { delete(r, "patient") })
		}},
		{"tokens issued, then a forged id_token", smart.AuthPublic, func(t *testing.T, fx *fixture, s *secretSet) {
			tok := smarttest.SignJWT(t, smarttest.NewRSAKey(t), "RS256", fx.srv.KeyID, fx.srv.IDTokenClaims(fx.reg.ClientID, "Practitioner/x"))
			s.add(tok)
			s.recordTokens(fx, func(r map[string]any) { r["id_token"] = tok })
		}},
		{"token endpoint 500 echoing the request", smart.AuthClientSecretBasic, func(t *testing.T, fx *fixture, s *secretSet) {
			fx.srv.OnToken(func(r smarttest.Request) (int, any, bool) {
				return http.StatusInternalServerError, map[string]any{"echo": r.Form, "authorization": r.Header.Get("Authorization")}, true
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, tc.auth)
			secrets := &secretSet{}
			for _, v := range fx.secrets {
				secrets.add(v)
			}
			l := fx.launch(t, defaultContext)
			secrets.add(l.code, l.state, l.begin.BindingNonce)
			tc.setup(t, fx, secrets)
			_, err := fx.complete(l)
			if err == nil {
				t.Fatal("Complete succeeded, want an error")
			}
			secrets.fromRequests(fx)
			if len(secrets.values) < 4 {
				t.Fatalf("only %d secrets collected; the test would check nothing", len(secrets.values))
			}

			rec := httptest.NewRecorder()
			web.ErrorPage(rec, nil, nil, smart.Problem(err))
			var logBuf bytes.Buffer
			smart.LogFailure(logging.New(&logBuf, slog.LevelDebug), "callback failed", err)
			page, log := html.UnescapeString(rec.Body.String()), logBuf.String()
			for _, s := range secrets.values {
				for where, text := range map[string]string{"page": page, "log": log} {
					if strings.Contains(text, s) || strings.Contains(text, jsonEscape(s)) {
						t.Errorf("%s contains a secret (%.12s…)", where, s)
					}
				}
			}
			if corr := smart.Correlation(l.state); !strings.Contains(page, corr) || !strings.Contains(log, corr) {
				t.Errorf("page or log lacks the correlation %s", corr)
			}
		})
	}
}

// jsonEscape is s as encoding/json writes it inside a string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestStoreUnavailableProblem(t *testing.T) {
	for _, tt := range []struct {
		name       string
		err        error
		status     int
		retryAfter int
	}{
		{"unavailable", fmt.Errorf("create launch: %w", fmt.Errorf("store: create launch: %w: %w", store.ErrUnavailable, context.DeadlineExceeded)), http.StatusServiceUnavailable, store.RetryAfterSeconds},
		{"other store failure", errors.New("create launch: store: decode"), http.StatusInternalServerError, 0},
	} {
		e := &smart.Error{Kind: smart.StoreFailure, Err: tt.err}
		p := smart.Problem(e)
		if p.Status != tt.status || p.RetryAfter != tt.retryAfter {
			t.Errorf("%s: status %d retry-after %d, want %d %d", tt.name, p.Status, p.RetryAfter, tt.status, tt.retryAfter)
		}
		rec := httptest.NewRecorder()
		web.ErrorPage(rec, nil, nil, p)
		if got, want := rec.Header().Get("Retry-After"), map[bool]string{true: "2", false: ""}[tt.retryAfter > 0]; got != want {
			t.Errorf("%s: Retry-After %q, want %q", tt.name, got, want)
		}
		if tt.retryAfter > 0 && !strings.Contains(rec.Body.String(), "Try again in a moment") {
			t.Errorf("%s: page lacks the try-again advice: %s", tt.name, rec.Body.String())
		}
	}
}

// msgs are texts as messages said verbatim.
func msgs(texts ...string) []message.Msg {
	out := make([]message.Msg, len(texts))
	for i, s := range texts {
		out[i] = message.Verbatim(s)
	}
	return out
}
