package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/readiness"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

// recorder notes every secret that crosses the browser side: codes and
// states in callback URLs, session handles in fragments, binding cookies.
type recorder struct {
	mu      sync.Mutex
	secrets []string
	next    http.RoundTripper
	// kinds counts what was seen, so that the test proves something:
	// "handoff" codes, OIDC "nonce"s.
	kinds map[string]int
}

func (r *recorder) saw(kind, v string) {
	if v == "" {
		return
	}
	r.mu.Lock()
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	r.kinds[kind]++
	r.mu.Unlock()
	r.add(v)
}

func (r *recorder) add(v ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range v {
		if len(s) >= 8 {
			r.secrets = append(r.secrets, s)
		}
	}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	r.add(q.Get("code"), q.Get("state"), q.Get("launch"))
	r.saw("nonce", q.Get("nonce"))
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	for _, c := range resp.Cookies() {
		r.add(c.Value)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			lq := u.Query()
			r.add(lq.Get("code"), lq.Get("state"), lq.Get("code_challenge"))
			r.saw("nonce", lq.Get("nonce"))
			if _, h, ok := strings.Cut(u.Fragment, "handoff="); ok {
				r.saw("handoff", h)
			}
		}
	}
	// The hand-off exchange answers with the handle.
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/api/session") && resp.Body != nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct{ Session string }
		if json.Unmarshal(body, &out) == nil {
			r.add(out.Session)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, err
}

// TestLogsHoldNoSecret runs full launches with each kind of client
// authentication, and failing ones, and the readiness check (the doctor
// subcommand's report, as text and JSON, and the admin path), then
// searches everything logged and reported for every secret value the run
// saw.
func TestLogsHoldNoSecret(t *testing.T) {
	const secret = "sandbox-client-secret-value-0123456789"
	const adminToken = "admin-token-value-for-the-log-test-0123456789"
	key := smarttest.NewECKey(t)
	pem := smarttest.PEM(t, key)
	tests := []struct {
		name   string
		client ehrsim.Client
		auth   smart.ClientAuth
		vars   map[string]string
	}{
		{"public", ehrsim.Client{Type: ehrsim.ClientPublic}, smart.ClientAuth{Type: smart.AuthPublic}, nil},
		{"client_secret_basic", ehrsim.Client{Type: ehrsim.ClientSecretBasic, Secret: secret},
			smart.ClientAuth{Type: smart.AuthClientSecretBasic, Secret: "sandbox-secret"},
			map[string]string{config.SecretVariable("sandbox-secret"): secret}},
		{"private_key_jwt", ehrsim.Client{Type: ehrsim.ClientPrivateKeyJWT, PublicKey: key.Public(), KeyID: "k1"},
			smart.ClientAuth{Type: smart.AuthPrivateKeyJWT, Key: "sandbox-key", KID: "k1", Alg: "ES384"},
			map[string]string{config.SecretVariable("sandbox-key"): pem}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{config.EnvAdminToken: adminToken}
			for k, v := range tt.vars {
				vars[k] = v
			}
			e := start(t, memoryStore, vars, &Tune{
				Sandbox: func(c *ehrsim.Config) {
					cl := tt.client
					cl.ID = SandboxClientID
					cl.RedirectURIs = c.Clients[0].RedirectURIs
					c.Clients[0] = cl
				},
				Env: func(en *entrypoints.Env) { en.Registrations[0].ClientAuth = tt.auth },
			}, nil)
			rec := &recorder{next: http.DefaultTransport}
			e.client.Transport = rec

			// Successful EHR and standalone launches.
			for _, u := range []string{
				e.URL + "/ehr/launch?patient=low-risk",
				e.URL + "/ehr/launch?patient=hbr-anticoag",
				e.URL + "/launch?iss=" + url.QueryEscape(e.Sandbox.FHIRBase()),
			} {
				seen, resp, _ := e.redirects(t, u)
				if resp.StatusCode != 200 {
					t.Fatalf("%s: status %d", u, resp.StatusCode)
				}
				// The page's exchange: the hand-off code, its nonce and
				// the handle all pass through the recorder.
				e.handleFrom(t, seen)
			}
			// A replayed hand-off code is refused (and logged) without
			// the code reaching the log.
			seen, _, _ := e.redirects(t, e.URL+"/ehr/launch?patient=low-risk")
			_, code, _ := strings.Cut(seen[len(seen)-1], "#handoff=")
			e.exchange(t, code)
			if resp, err := e.client.Post(e.URL+"/calculate/api/session", "application/json", strings.NewReader(`{"handoff":"`+code+`"}`)); err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("replayed hand-off: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			// Failures: the EHR refuses the client or the grant, a
			// verifier mismatch, a replayed callback.
			for _, fault := range []string{"invalid_client", "invalid_grant"} {
				if _, resp, _ := e.redirects(t, e.URL+"/ehr/launch?patient=low-risk&fault="+fault); resp.StatusCode < 400 {
					t.Errorf("fault %s: status %d", fault, resp.StatusCode)
				}
			}
			e.store.tamper.Store(true)
			e.redirects(t, e.URL+"/ehr/launch?patient=low-risk")
			e.store.tamper.Store(false)
			cb := e.stopAt(t, e.URL+"/ehr/launch?patient=low-risk", "/callback")
			e.client.Get(cb.String())
			e.client.Get(cb.String())

			// The readiness check of the same registration: it sends the
			// client's credentials to the token endpoint, and reports.
			rep := e.checkReport(t, e.Sandbox.FHIRBase())
			if c, _ := rep.Check("client-auth"); c.Status != readiness.Pass {
				t.Fatalf("client-auth %+v", c)
			}
			var report bytes.Buffer
			rep.WriteText(&report)
			json.NewEncoder(&report).Encode(rep)
			req, _ := http.NewRequest(http.MethodGet, e.URL+"/calculate/admin/doctor?format=text&iss="+url.QueryEscape(e.Sandbox.FHIRBase()), nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("admin path: %v %v", resp, err)
			} else {
				io.Copy(&report, resp.Body)
				resp.Body.Close()
			}
			if !strings.Contains(report.String(), "PASS  client-auth") {
				t.Fatalf("the reports do not show the client check:\n%s", report.String())
			}

			logs := e.logs.String()
			if !strings.Contains(logs, `"message":"session created"`) || !strings.Contains(logs, `"cause":"invalid_grant"`) || !strings.Contains(logs, `"message":"readiness check"`) {
				t.Fatalf("the run did not log what it should:\n%s", logs)
			}
			logs += report.String()
			secrets := append([]string{secret, pem, adminToken, base64.StdEncoding.EncodeToString([]byte(SandboxClientID + ":" + secret))}, rec.secrets...)
			secrets = append(secrets, e.store.secrets...)
			// The run's keys: the launch key that seals verifiers and the
			// token key, in every form they could be printed.
			if len(e.Env.Config.LaunchKey) != 32 || len(e.Env.Config.TokenKey) != 32 {
				t.Fatal("the run has no launch key or token key")
			}
			for _, k := range [][]byte{e.Env.Config.LaunchKey, e.Env.Config.TokenKey} {
				secrets = append(secrets, string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k),
					base64.RawStdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k))
			}
			if len(rec.secrets) < 10 || len(e.store.secrets) < 6 || rec.kinds["handoff"] < 3 || rec.kinds["nonce"] < 3 {
				t.Fatalf("saw too few secrets to test: %d browser-side (%v), %d stored", len(rec.secrets), rec.kinds, len(e.store.secrets))
			}
			for _, s := range secrets {
				if s != "" && strings.Contains(logs, s) {
					t.Errorf("a secret reached the log: %.12s…", s)
				}
			}
			for _, marker := range []*regexp.Regexp{
				regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}`),                       // a JWT: id_token, assertion
				regexp.MustCompile(`(?i)(Bearer|Basic) [A-Za-z0-9._~+/=-]{12,}`), // an Authorization header value
				regexp.MustCompile(`code_verifier=|client_assertion=|client_secret=`),
			} {
				if m := marker.FindString(logs); m != "" {
					t.Errorf("the log holds %.20q… (a JWT, an Authorization header or a token request body)", m)
				}
			}
		})
	}
}
