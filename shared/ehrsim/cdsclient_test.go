package ehrsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fakeCDS is a CDS service that records what the sandbox sends, and reads
// the FHIR server with the lent token while the call is in flight.
type fakeCDS struct {
	ts      *httptest.Server
	mu      sync.Mutex
	headers []http.Header
	bodies  []map[string]any
	reads   []int // status of the in-flight FHIR read with the lent token
	prefix  map[string]string
}

func newFakeCDS(t *testing.T, appLaunch string) *fakeCDS {
	f := &fakeCDS{prefix: map[string]string{
		"patient":     "Patient/{{context.patientId}}",
		"hemoglobin":  "Observation?patient={{context.patientId}}&code=http%3A%2F%2Floinc.org%7C718-7&_sort=-date",
		"unfillable":  "Practitioner/{{context.nonexistent}}",
		"nobody":      "Patient/nobody-{{context.patientId}}",
		"medications": "MedicationRequest?patient={{context.patientId}}&status=active",
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cds/cds-services", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"services": []any{
			map[string]any{"hook": "patient-view", "id": "pv", "description": "d", "prefetch": f.prefix},
			map[string]any{"hook": "order-sign", "id": "os", "description": "d"},
		}})
	})
	mux.HandleFunc("POST /cds/cds-services/{id}", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		status := 0
		if fa, ok := body["fhirAuthorization"].(map[string]any); ok {
			ctx, _ := body["context"].(map[string]any)
			req, _ := http.NewRequest(http.MethodGet, body["fhirServer"].(string)+"/Patient/"+ctx["patientId"].(string), nil)
			req.Header.Set("Authorization", "Bearer "+fa["access_token"].(string))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
		}
		f.mu.Lock()
		f.headers = append(f.headers, r.Header.Clone())
		f.bodies = append(f.bodies, body)
		f.reads = append(f.reads, status)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"cards": []any{map[string]any{
			"uuid": "c1", "summary": "Very HBR: PRECISE-HBR 31", "indicator": "critical", "detail": "**why** <script>x</script>",
			"source": map[string]any{"label": "SMART Calc"},
			"links":  []any{map[string]any{"label": "Open SMART Calc", "url": appLaunch, "type": "smart"}},
		}}})
	})
	f.ts = httptest.NewServer(mux)
	t.Cleanup(f.ts.Close)
	return f
}

func newCDSEnv(t *testing.T) (*env, *CDSClient, *fakeCDS) {
	e := newEnv(t)
	f := newFakeCDS(t, appLaunch)
	c, err := e.s.NewCDSClient(CDSClientConfig{ServiceBase: f.ts.URL + "/cds"})
	if err != nil {
		t.Fatal(err)
	}
	mux := e.ts.Config.Handler.(*http.ServeMux)
	mux.Handle("/ehr/cds", c)
	mux.Handle("/ehr/cds-jwks", c)
	return e, c, f
}

func TestCDSClientCall(t *testing.T) {
	e, c, f := newCDSEnv(t)
	res, err := c.Call(context.Background(), CDSCall{Hook: "patient-view", Patient: "hbr-anticoag"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || len(res.Cards) != 1 || res.Cards[0].Summary != "Very HBR: PRECISE-HBR 31" {
		t.Fatalf("result %+v", res)
	}

	// The JWT: ES384 with kid, jku and typ, verifiable with the published
	// JWK Set, with the claims CDS Hooks requires.
	auth := f.headers[1].Get("Authorization")
	tok, err := jwt.ParseSigned(strings.TrimPrefix(auth, "Bearer "), []jose.SignatureAlgorithm{jose.ES384})
	if err != nil {
		t.Fatalf("JWT: %v", err)
	}
	h := tok.Headers[0]
	if h.ExtraHeaders["jku"] != c.JWKSURL() || h.ExtraHeaders[jose.HeaderType] != "JWT" || h.KeyID == "" {
		t.Errorf("JWT header %+v", h)
	}
	resp := e.get(c.JWKSURL())
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 || !keys[0].IsPublic() {
		t.Fatalf("JWKS has no public key %q", h.KeyID)
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("signature: %v", err)
	}
	err = claims.Validate(jwt.Expected{Issuer: c.Issuer(), AnyAudience: jwt.Audience{f.ts.URL + "/cds/cds-services/pv"}, Time: e.clock.Now()})
	if err != nil || claims.ID == "" || claims.IssuedAt == nil || claims.Expiry == nil {
		t.Errorf("claims %+v: %v", claims, err)
	}
	if d := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); d > 5*time.Minute {
		t.Errorf("JWT lifetime %v, want at most 5 min", d)
	}

	// The body: hook, hookInstance, context, fhirServer, fhirAuthorization.
	body := f.bodies[0]
	if body["hook"] != "patient-view" || body["fhirServer"] != e.s.FHIRBase() || body["hookInstance"] == "" {
		t.Errorf("body %v", body)
	}
	ctx := body["context"].(map[string]any)
	if ctx["patientId"] != "hbr-anticoag" || ctx["userId"] != "Practitioner/"+UserID {
		t.Errorf("context %v", ctx)
	}
	fa := body["fhirAuthorization"].(map[string]any)
	if fa["token_type"] != "Bearer" || fa["subject"] != DefaultCDSServiceClientID || fa["patient"] != "hbr-anticoag" ||
		!strings.Contains(fa["scope"].(string), "patient/Observation.rs") {
		t.Errorf("fhirAuthorization %v", fa)
	}
	// The lent token worked during the call and is revoked after it.
	if f.reads[0] != http.StatusOK {
		t.Errorf("in-flight FHIR read with the lent token: status %d", f.reads[0])
	}
	if status, _, _ := e.fhir(fa["access_token"].(string), "/Patient/hbr-anticoag"); status != http.StatusUnauthorized {
		t.Errorf("the lent token still works after the call: status %d", status)
	}

	// The prefetch: templates filled against the sandbox's FHIR data.
	pf := body["prefetch"].(map[string]any)
	if p, _ := pf["patient"].(map[string]any); p["resourceType"] != "Patient" || p["id"] != "hbr-anticoag" {
		t.Errorf("patient prefetch %v", pf["patient"])
	}
	hb, _ := pf["hemoglobin"].(map[string]any)
	if hb["resourceType"] != "Bundle" || hb["total"].(float64) < 1 {
		t.Errorf("hemoglobin prefetch %v", hb)
	}
	if _, ok := pf["unfillable"]; ok {
		t.Errorf("a template with an unknown token was filled; CDS Hooks asks to omit the key")
	}
	if v, ok := pf["nobody"]; !ok || v != nil {
		t.Errorf("a read that finds nothing must be null, got %v (present %v)", v, ok)
	}
	if strings.Join(res.PrefetchKeys, ",") != "hemoglobin,medications,nobody,patient" {
		t.Errorf("PrefetchKeys %v", res.PrefetchKeys)
	}
}

func TestCDSClientOptions(t *testing.T) {
	_, c, f := newCDSEnv(t)
	res, err := c.Call(context.Background(), CDSCall{Hook: "order-sign", Patient: "hbr-anticoag", NoFHIRAccess: true,
		DraftOrders: []json.RawMessage{DraftMedicationRequest("d1", "hbr-anticoag", "32968", "clopidogrel 75 mg tablet")}})
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("%v %+v", err, res)
	}
	body := f.bodies[0]
	if _, ok := body["fhirAuthorization"]; ok {
		t.Errorf("NoFHIRAccess sent fhirAuthorization")
	}
	if _, ok := body["prefetch"]; ok {
		t.Errorf("a service without templates got a prefetch")
	}
	ctx := body["context"].(map[string]any)
	drafts := ctx["draftOrders"].(map[string]any)
	if drafts["resourceType"] != "Bundle" || len(drafts["entry"].([]any)) != 1 {
		t.Errorf("draftOrders %v", drafts)
	}
	// A replayed JWT is sent as given.
	res2, err := c.Call(context.Background(), CDSCall{Hook: "patient-view", Patient: "low-risk", Bearer: res.JWT, NoPrefetch: true})
	if err != nil || f.headers[len(f.headers)-1].Get("Authorization") != "Bearer "+res.JWT {
		t.Errorf("Bearer was not sent as given: %v", err)
	}
	_ = res2
	if _, err := c.Call(context.Background(), CDSCall{Hook: "patient-view", Patient: "no-such-patient"}); err == nil {
		t.Errorf("a call for an unknown patient did not fail")
	}
	if _, err := c.Call(context.Background(), CDSCall{Hook: "order-select", Patient: "low-risk"}); err == nil {
		t.Errorf("a hook the service does not offer did not fail")
	}
}

func TestCDSPage(t *testing.T) {
	e, c, _ := newCDSEnv(t)
	resp := e.get(c.PageURL() + "?patient=hbr-anticoag&hook=patient-view&drafts=")
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Very HBR: PRECISE-HBR 31") {
		t.Fatalf("status %d:\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, "<script>x</script>") {
		t.Errorf("card detail was not escaped")
	}
	// The smart link launches the app through the sandbox's own EHR launch.
	if !strings.Contains(page, `href="`+strings.ReplaceAll(e.s.LaunchURL("hbr-anticoag"), "&", "&amp;")+`"`) {
		t.Errorf("the smart link is not an EHR launch:\n%s", page)
	}
	resp = e.get(c.PageURL() + "?patient=hbr-anticoag&hook=order-sign&drafts=unobtainium")
	b, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "Unknown drug unobtainium") {
		t.Errorf("unknown drug not reported")
	}
}

func TestNewCDSClientValidation(t *testing.T) {
	e := newEnv(t)
	if _, err := e.s.NewCDSClient(CDSClientConfig{ServiceBase: "not a url"}); err == nil {
		t.Error("bad ServiceBase accepted")
	}
	if _, err := e.s.NewCDSClient(CDSClientConfig{ServiceBase: "https://x.example", Key: clientRSAWeak(t)}); err == nil {
		t.Error("weak RSA key accepted")
	}
}

func clientRSAWeak(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skip("cannot generate a 1024-bit key:", err)
	}
	return k
}
