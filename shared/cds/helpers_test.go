package cds

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// clientKey is the sandbox CDS client's P-384 key, shared by the tests.
var clientKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// scoring is the embedded configuration and its engine, loaded once.
var scoring = sync.OnceValues(func() (*calc.Engine, error) {
	cfg, err := calc.LoadConfig()
	if err != nil {
		return nil, err
	}
	return calc.NewEngine(cfg)
})

// appClientID and appScope are the app's registration at the sandbox, as
// the local runner makes it.
const (
	appClientID = "smartcalc-test"
	appScope    = "launch openid fhirUser patient/Patient.rs patient/Observation.rs patient/Condition.rs " +
		"patient/MedicationRequest.rs patient/Medication.rs patient/MedicationStatement.rs patient/Procedure.rs patient/Encounter.rs online_access"
)

// env is one loopback server holding the sandbox EHR at /ehr/ (its FHIR
// server and its CDS Hooks client) and the CDS service at /calculate/, as
// the local runner mounts them.
type env struct {
	t    testing.TB
	ts   *httptest.Server
	sim  *ehrsim.Server
	cli  *ehrsim.CDSClient
	svc  *Service
	key  *ecdsa.PrivateKey // the sandbox CDS client's signing key
	logs *syncBuffer
	reqs *reqLog // FHIR requests the service made itself
}

type reqLog struct {
	mu   sync.Mutex
	reqs []*http.Request
}

// with returns e reporting to t (for subtests).
func (e *env) with(t testing.TB) *env {
	cp := *e
	cp.t = t
	return &cp
}

type envOption func(*env)

// withBudget sets the service's budget.
func withBudget(d time.Duration) envOption { return func(e *env) { e.svc.Budget = d } }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	engine, err := scoring()
	if err != nil {
		t.Fatalf("scoring configuration: %v", err)
	}
	e := &env{t: t, logs: &syncBuffer{}, reqs: &reqLog{}}
	mux := http.NewServeMux()
	e.ts = httptest.NewServer(mux)
	t.Cleanup(e.ts.Close)
	e.sim, err = ehrsim.New(ehrsim.Config{
		BaseURL:      e.ts.URL + "/ehr",
		AppLaunchURL: e.ts.URL + "/launch",
		Clients:      []ehrsim.Client{{ID: appClientID, Type: ehrsim.ClientPublic, RedirectURIs: []string{e.ts.URL + "/callback"}}},
		OnFHIRRequest: func(r *http.Request) {
			if r.Header.Get(ehrsim.CDSPrefetchHeader) == "" && strings.Contains(r.URL.Path, "/fhir/") && !strings.Contains(r.URL.Path, ".well-known") {
				e.reqs.mu.Lock()
				e.reqs.reqs = append(e.reqs.reqs, r.Clone(context.Background()))
				e.reqs.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatalf("ehrsim: %v", err)
	}
	e.key = clientKey()
	e.cli, err = e.sim.NewCDSClient(ehrsim.CDSClientConfig{ServiceBase: e.ts.URL + "/calculate", Key: e.key})
	if err != nil {
		t.Fatalf("ehrsim CDS client: %v", err)
	}
	log := logging.New(e.logs, slog.LevelDebug)
	e.svc = &Service{
		Assess:            &assess.Service{Engine: engine, Scoring: engine.Config()},
		Clients:           []Client{{ID: "sandbox", Issuer: e.cli.Issuer(), JWKSURL: e.cli.JWKSURL(), FHIRHosts: []string{strings.TrimPrefix(e.ts.URL, "http://")}}},
		BaseURL:           e.ts.URL + "/calculate",
		AppLaunchURL:      e.ts.URL + "/launch",
		AllowLoopbackHTTP: true,
		Log:               log,
	}
	for _, o := range opts {
		o(e)
	}
	if err := e.svc.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	mux.Handle("/ehr/", e.sim)
	mux.Handle("/ehr/cds", e.cli)
	mux.Handle("/ehr/cds-jwks", e.cli)
	mux.Handle("/calculate/", http.StripPrefix("/calculate", e.svc))
	return e
}

// call runs a hook through the sandbox's CDS client.
func (e *env) call(c ehrsim.CDSCall) *ehrsim.CDSResult {
	e.t.Helper()
	e.resetRequests()
	res, err := e.cli.Call(context.Background(), c)
	if err != nil {
		e.t.Fatalf("Call(%s, %s): %v", c.Hook, c.Patient, err)
	}
	return res
}

func (e *env) resetRequests() {
	e.reqs.mu.Lock()
	e.reqs.reqs = nil
	e.reqs.mu.Unlock()
}

// serviceRequests returns the FHIR requests the service made itself, as
// "Type" for searches and "Type/id" for reads.
func (e *env) serviceRequests() []string {
	e.reqs.mu.Lock()
	defer e.reqs.mu.Unlock()
	var out []string
	for _, r := range e.reqs.reqs {
		_, rest, _ := strings.Cut(r.URL.Path, "/fhir/")
		out = append(out, rest)
	}
	return out
}

// post sends a raw hook call to service id with the given JWT.
func (e *env) post(id string, body []byte, jwt string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.svc.ServiceURL(id), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if jwt != "" {
		req.Header.Set("Authorization", "Bearer "+jwt)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// jwt signs a fresh JWT for service id with the sandbox's key.
func (e *env) jwt(id string) string {
	e.t.Helper()
	s, err := e.cli.SignJWT(e.svc.ServiceURL(id), nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// appAssessment runs the app's own path for a patient: an EHR launch and
// the code exchange at the sandbox (S256 PKCE, the app's public client),
// then assess.Service.Assess on that session, as GET /api/assessment does.
func (e *env) appAssessment(patient string) *assess.Assessment {
	e.t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	loc := redirect(e.t, hc, e.sim.LaunchURL(patient))
	launch := loc.Query().Get("launch")
	verifier := strings.Repeat("v", 20) + base64.RawURLEncoding.EncodeToString([]byte(patient+time.Now().String()))
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {appClientID}, "redirect_uri": {e.ts.URL + "/callback"},
		"scope": {appScope}, "state": {"state-for-test-0123456789"}, "aud": {e.sim.FHIRBase()}, "launch": {launch},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	cb := redirect(e.t, hc, e.sim.AuthorizeURL()+"?"+q.Encode())
	resp, err := hc.PostForm(e.sim.TokenURL(), url.Values{
		"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")}, "redirect_uri": {e.ts.URL + "/callback"},
		"client_id": {appClientID}, "code_verifier": {verifier},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
		Patient     string `json:"patient"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		e.t.Fatalf("token response: %v (status %d)", err, resp.StatusCode)
	}
	return e.assessWithToken(tok.Patient, tok.AccessToken, tok.Scope)
}

// redirect GETs u and returns the Location of its 302.
func redirect(t testing.TB, hc *http.Client, u string) *url.URL {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: status %d, want 302", u, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assessWithToken runs assess.Service.Assess for a session holding the
// sandbox access token, exactly as the calculate function does.
func (e *env) assessWithToken(patient, token, scope string) *assess.Assessment {
	e.t.Helper()
	sealer, err := store.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		e.t.Fatal(err)
	}
	sessions := store.NewMemory(sealer)
	handle := "handle-" + patient + "-0123456789abcdef0123456789abcdef"
	now := time.Now()
	if err := sessions.CreateSession(context.Background(), &store.Session{
		ID: smart.SessionID(handle), RegistrationID: "sandbox", FHIRBase: e.sim.FHIRBase(), Patient: patient,
		Scope: scope, AccessToken: token, TokenExpiry: now.Add(time.Hour), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}); err != nil {
		e.t.Fatal(err)
	}
	as := &assess.Service{Sessions: sessions, Engine: e.svc.Assess.Engine, Scoring: e.svc.Assess.Scoring}
	ss, err := as.Load(context.Background(), "Bearer "+handle)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := as.Assess(context.Background(), ss, nil)
	if err != nil {
		e.t.Fatalf("app assessment: %v", err)
	}
	return a
}

// The verdict headings of the cards in English, as the app's page words
// them (the catalogue's verdict.* messages).
const (
	verdictHBR          = "High bleeding risk"
	verdictNotHBR       = "Not high bleeding risk"
	verdictUndetermined = "Bleeding risk undetermined"
)
