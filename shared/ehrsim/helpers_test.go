package ehrsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

const (
	appLaunch   = "https://app.example/launch"
	appCallback = "https://app.example/callback"
	testSecret  = "s3cret+/=&x" // exercises the form-encoding of Basic credentials
	ehrScope    = "launch openid fhirUser patient/*.rs online_access"
)

var (
	keysOnce  sync.Once
	serverKey *rsa.PrivateKey // id_token signing, shared to keep tests fast
	clientEC  *ecdsa.PrivateKey
	clientRSA *rsa.PrivateKey
	otherEC   *ecdsa.PrivateKey
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if serverKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if clientRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if clientEC, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if otherEC, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

// env is one sandbox behind an httptest server, mounted at /ehr/ in a mux.
type env struct {
	t     *testing.T
	s     *Server
	ts    *httptest.Server
	clock *smarttest.Clock
	hc    *http.Client // does not follow redirects

	mu    sync.Mutex
	slept []time.Duration
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	testKeys(t)
	e := &env{t: t, clock: smarttest.NewClock(time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC))}
	mux := http.NewServeMux()
	e.ts = httptest.NewServer(mux)
	t.Cleanup(e.ts.Close)
	rsaJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &clientRSA.PublicKey, KeyID: "rsa1", Algorithm: "RS384", Use: "sig"}}})
	cfg := Config{
		BaseURL:      e.ts.URL + "/ehr",
		AppLaunchURL: appLaunch,
		SigningKey:   serverKey,
		Now:          e.clock.Now,
		Sleep: func(_ context.Context, d time.Duration) error {
			e.mu.Lock()
			e.slept = append(e.slept, d)
			e.mu.Unlock()
			return nil
		},
		Clients: []Client{
			{ID: "pub", Type: ClientPublic, RedirectURIs: []string{appCallback}},
			{ID: "conf", Type: ClientSecretBasic, Secret: testSecret, RedirectURIs: []string{appCallback}},
			{ID: "jwt-ec", Type: ClientPrivateKeyJWT, PublicKey: &clientEC.PublicKey, KeyID: "ec1", RedirectURIs: []string{appCallback}},
			{ID: "jwt-rsa", Type: ClientPrivateKeyJWT, JWKS: rsaJWKS, RedirectURIs: []string{appCallback}},
			{ID: "limited", Type: ClientPublic, Scope: "launch launch/patient openid fhirUser patient/Patient.rs", RedirectURIs: []string{appCallback}},
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.s = s
	mux.Handle("/ehr/", s)
	e.hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *env) get(u string) *http.Response {
	e.t.Helper()
	res, err := e.hc.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	return res
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// launch runs /ehr/launch and returns the launch token from the redirect.
func (e *env) launch(patient string, faults ...string) string {
	e.t.Helper()
	res := e.get(e.s.LaunchURL(patient, faults...))
	if res.StatusCode != http.StatusFound {
		e.t.Fatalf("launch: status %d: %s", res.StatusCode, readBody(e.t, res))
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != appLaunch {
		e.t.Fatalf("launch redirected to %s, want %s", got, appLaunch)
	}
	if iss := loc.Query().Get("iss"); iss != e.s.FHIRBase() {
		e.t.Fatalf("iss = %q, want %q", iss, e.s.FHIRBase())
	}
	return loc.Query().Get("launch")
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = randomToken()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authParams is a valid authorization request; the verifier is returned
// separately.
func (e *env) authParams(client, scope, launch string) (url.Values, string) {
	v, c := pkce()
	p := url.Values{
		"response_type":         {"code"},
		"client_id":             {client},
		"redirect_uri":          {appCallback},
		"scope":                 {scope},
		"state":                 {"state-" + randomToken()[:8]},
		"aud":                   {e.s.FHIRBase()},
		"code_challenge":        {c},
		"code_challenge_method": {"S256"},
	}
	if launch != "" {
		p.Set("launch", launch)
	}
	return p, v
}

func (e *env) authorize(p url.Values) *http.Response {
	e.t.Helper()
	return e.get(e.s.AuthorizeURL() + "?" + p.Encode())
}

// redirectQuery checks res is a redirect to the app's callback and returns
// its query.
func (e *env) redirectQuery(res *http.Response) url.Values {
	e.t.Helper()
	if res.StatusCode != http.StatusFound {
		e.t.Fatalf("status %d, want 302: %s", res.StatusCode, readBody(e.t, res))
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != appCallback {
		e.t.Fatalf("redirected to %s, want %s", got, appCallback)
	}
	return loc.Query()
}

// code authorizes p and returns the code.
func (e *env) code(p url.Values) string {
	e.t.Helper()
	q := e.redirectQuery(e.authorize(p))
	if q.Get("error") != "" {
		e.t.Fatalf("authorize error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != p.Get("state") {
		e.t.Fatalf("state = %q, want %q", q.Get("state"), p.Get("state"))
	}
	return q.Get("code")
}

type tokenReply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r tokenReply) str(k string) string { s, _ := r.body[k].(string); return s }

// token posts form to the token endpoint, authenticated as client.
func (e *env) token(client string, form url.Values) tokenReply {
	e.t.Helper()
	req := e.tokenRequest(client, form)
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	r := tokenReply{status: res.StatusCode, header: res.Header}
	b, _ := io.ReadAll(res.Body)
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.body); err != nil {
			e.t.Fatalf("token response is not JSON: %s", b)
		}
	}
	return r
}

func (e *env) tokenRequest(client string, form url.Values) *http.Request {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	var basic [2]string
	switch client {
	case "conf":
		basic = [2]string{url.QueryEscape("conf"), url.QueryEscape(testSecret)}
	case "jwt-ec":
		f.Set("client_assertion_type", jwtBearerType)
		f.Set("client_assertion", e.assertion(clientEC, jose.ES384, "ec1", "jwt-ec", nil))
	case "jwt-rsa":
		f.Set("client_assertion_type", jwtBearerType)
		f.Set("client_assertion", e.assertion(clientRSA, jose.RS384, "rsa1", "jwt-rsa", nil))
	case "":
	default:
		f.Set("client_id", client)
	}
	req, _ := http.NewRequest(http.MethodPost, e.s.TokenURL(), strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic[0] != "" {
		req.SetBasicAuth(basic[0], basic[1])
	}
	return req
}

// assertion signs a client assertion; edit changes the claims first.
func (e *env) assertion(key any, alg jose.SignatureAlgorithm, kid, client string, edit func(map[string]any)) string {
	e.t.Helper()
	now := e.clock.Now()
	claims := map[string]any{
		"iss": client, "sub": client, "aud": e.s.TokenURL(),
		"exp": now.Add(2 * time.Minute).Unix(), "iat": now.Unix(), "jti": randomToken(),
	}
	if edit != nil {
		edit(claims)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func codeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCallback}, "code_verifier": {verifier}}
}

// ehrLaunch runs a whole EHR launch and code exchange and returns the token
// response, which must succeed.
func (e *env) ehrLaunch(patient, client, scope string, faults ...string) tokenReply {
	e.t.Helper()
	p, v := e.authParams(client, scope, e.launch(patient, faults...))
	r := e.token(client, codeForm(e.code(p), v))
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %v", r.status, r.body)
	}
	return r
}

// fhir GETs path (relative to the FHIR base, or absolute) with token.
func (e *env) fhir(token, path string) (int, map[string]any, http.Header) {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.s.FHIRBase() + "/" + strings.TrimPrefix(path, "/")
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		e.t.Fatalf("GET %s: not JSON (%d): %s", path, res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		e.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if res.StatusCode >= 400 && body["resourceType"] != "OperationOutcome" {
		e.t.Errorf("GET %s: error %d is not an OperationOutcome: %s", path, res.StatusCode, b)
	}
	return res.StatusCode, body, res.Header
}

// entries returns a search Bundle's resources with the given mode.
func entries(b map[string]any, mode string) []map[string]any {
	var out []map[string]any
	for _, x := range asSlice(b["entry"]) {
		e := x.(map[string]any)
		if e["search"].(map[string]any)["mode"] == mode {
			out = append(out, e["resource"].(map[string]any))
		}
	}
	return out
}

func ids(rs []map[string]any) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r["id"].(string))
	}
	return out
}

func link(b map[string]any, rel string) string {
	for _, x := range asSlice(b["link"]) {
		l := x.(map[string]any)
		if l["relation"] == rel {
			return l["url"].(string)
		}
	}
	return ""
}

// day formats a date relative to the test clock, for date searches.
func (e *env) day(offset int) string {
	return e.clock.Now().AddDate(0, 0, offset).Format("2006-01-02")
}
