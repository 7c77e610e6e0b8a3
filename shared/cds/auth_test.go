package cds

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
)

// TestAuthentication: every call without a valid JWT of a registered CDS
// client gets 401, no card and no FHIR read.
func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	// sign makes a JWT with full control of the header, for the cases the
	// sandbox client cannot produce.
	sign := func(alg jose.SignatureAlgorithm, key any, headers map[jose.HeaderKey]any, claims map[string]any) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		for k, v := range headers {
			opts = opts.WithHeader(k, v)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := func() map[string]any {
		return map[string]any{"iss": e.cli.Issuer(), "aud": e.svc.ServiceURL(ServicePatientView), "iat": now.Unix(),
			"exp": now.Add(5 * time.Minute).Unix(), "jti": "jti-" + randomID()}
	}
	kid := kidOf(t, e)
	replayed := e.call(ehrsim.CDSCall{Hook: HookPatientView, Patient: "low-risk"})
	if replayed.Status != http.StatusOK {
		t.Fatalf("first use of the JWT: status %d", replayed.Status)
	}
	tests := []struct {
		name   string
		call   ehrsim.CDSCall
		reason string
	}{
		{"no JWT", ehrsim.CDSCall{Bearer: " "}, "Bearer"},
		{"not a JWT", ehrsim.CDSCall{Bearer: "opaque-token"}, "not a JWT"},
		{"bad signature", ehrsim.CDSCall{SignWith: other}, "signature does not verify"},
		{"wrong aud", ehrsim.CDSCall{EditClaims: func(c map[string]any) { c["aud"] = e.svc.DiscoveryURL() }}, "aud"},
		{"aud of another service", ehrsim.CDSCall{EditClaims: func(c map[string]any) { c["aud"] = e.svc.ServiceURL(ServiceOrderSign) }}, "aud"},
		{"wrong iss", ehrsim.CDSCall{EditClaims: func(c map[string]any) { c["iss"] = "https://unknown-ehr.example" }}, "iss"},
		{"expired", ehrsim.CDSCall{EditClaims: func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-2*time.Minute).Unix()
		}}, "expired"},
		{"no exp", ehrsim.CDSCall{EditClaims: func(c map[string]any) { delete(c, "exp") }}, "no exp"},
		{"exp too far ahead", ehrsim.CDSCall{EditClaims: func(c map[string]any) { c["exp"] = now.Add(3 * time.Hour).Unix() }}, "ahead"},
		{"exp 6 min ahead (lifetime capped at 5 min)", ehrsim.CDSCall{EditClaims: func(c map[string]any) { c["exp"] = now.Add(6 * time.Minute).Unix() }}, "more than 5m0s ahead"},
		{"lifetime exp − iat over 5 min", ehrsim.CDSCall{EditClaims: func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-4*time.Minute).Unix(), now.Add(3*time.Minute).Unix()
		}}, "lifetime"},
		{"issued in the future", ehrsim.CDSCall{EditClaims: func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() }}, "not valid yet"},
		{"no jti", ehrsim.CDSCall{EditClaims: func(c map[string]any) { delete(c, "jti") }}, "no jti"},
		{"replayed jti", ehrsim.CDSCall{Bearer: replayed.JWT}, "replay"},
		{"HMAC-signed", ehrsim.CDSCall{Bearer: sign(jose.HS256, []byte("0123456789abcdef0123456789abcdef"),
			map[jose.HeaderKey]any{"kid": kid}, valid())}, "asymmetric"},
		{"jku pointing elsewhere", ehrsim.CDSCall{Bearer: sign(jose.ES384, e.key,
			map[jose.HeaderKey]any{"kid": kid, "jku": "https://attacker.example/jwks"}, valid())}, "jku"},
		{"unknown kid", ehrsim.CDSCall{Bearer: sign(jose.ES384, e.key, map[jose.HeaderKey]any{"kid": "rotated-away"}, valid())}, "kid"},
		{"no kid", ehrsim.CDSCall{Bearer: sign(jose.ES384, e.key, nil, valid())}, "no kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.with(t)
			c := tt.call
			c.Hook, c.Patient, c.NoPrefetch = HookPatientView, "low-risk", true
			res := e.call(c)
			if res.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", res.Status, res.Body)
			}
			body := string(res.Body)
			if strings.Contains(body, "cards") || strings.Contains(body, "low-risk") {
				t.Errorf("a refused call got data: %s", body)
			}
			if !strings.Contains(body, tt.reason) {
				t.Errorf("body %s does not say %q", body, tt.reason)
			}
			if reqs := e.serviceRequests(); len(reqs) != 0 {
				t.Errorf("a refused call read FHIR: %v", reqs)
			}
		})
	}
	t.Run("feedback needs a JWT too", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.svc.ServiceURL(ServicePatientView)+"/feedback", strings.NewReader(`{"feedback":[]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
}

func kidOf(t *testing.T, e *env) string {
	t.Helper()
	resp, err := http.Get(e.cli.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("sandbox JWKS: %v", err)
	}
	return set.Keys[0].KeyID
}

func randomID() string { return newUUID() }

// TestKeysUnavailable: without the client's keys the call can be neither
// accepted nor refused as forged: 503, never 500, never data.
func TestKeysUnavailable(t *testing.T) {
	e := newEnv(t, func(e *env) {
		e.svc.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/cds-jwks") {
				return nil, errors.New("connection refused")
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
	})
	res := e.call(ehrsim.CDSCall{Hook: HookPatientView, Patient: "low-risk"})
	if res.Status != http.StatusServiceUnavailable || strings.Contains(string(res.Body), "cards") {
		t.Errorf("status %d: %s", res.Status, res.Body)
	}
}

// TestKeyCache: a JWK Set is fetched once and reused; an unknown kid
// refetches it at most once per MinRefresh, so a rotated key is found.
func TestKeyCache(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	var fetches atomic.Int32
	var keys atomic.Value
	keys.Store([]jose.JSONWebKey{{Key: k1.Public(), KeyID: "k1", Algorithm: "ES384", Use: "sig"}})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys.Load().([]jose.JSONWebKey)})
	}))
	defer ts.Close()
	kc := &keyCache{MinRefresh: time.Minute, TTL: time.Hour}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	get := func(kid string, at time.Time) error {
		_, err := kc.key(ctx, ts.Client(), ts.URL, kid, at)
		return err
	}
	if err := get("k1", now); err != nil || fetches.Load() != 1 {
		t.Fatalf("first lookup: %v, %d fetches", err, fetches.Load())
	}
	if err := get("k1", now.Add(time.Second)); err != nil || fetches.Load() != 1 {
		t.Fatalf("cached lookup: %v, %d fetches", err, fetches.Load())
	}
	keys.Store([]jose.JSONWebKey{{Key: k2.Public(), KeyID: "k2", Algorithm: "ES384", Use: "sig"}})
	if err := get("k2", now.Add(2*time.Second)); !errors.Is(err, ErrUnauthenticated) || fetches.Load() != 1 {
		t.Fatalf("unknown kid within MinRefresh: %v, %d fetches (want no refetch)", err, fetches.Load())
	}
	if err := get("k2", now.Add(2*time.Minute)); err != nil || fetches.Load() != 2 {
		t.Fatalf("unknown kid after MinRefresh: %v, %d fetches (want one refetch)", err, fetches.Load())
	}
	// A symmetric key in a JWK Set is never used to verify.
	keys.Store([]jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct", Algorithm: "HS256"}})
	if err := get("oct", now.Add(5*time.Minute)); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("symmetric key: %v", err)
	}
}

func TestMemoryReplayCache(t *testing.T) {
	m := &MemoryReplayCache{Max: 2}
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	use := func(key string, exp, at time.Time) (bool, error) { return m.Use(ctx, key, exp, at) }
	if fresh, _ := use("a", now.Add(time.Minute), now); !fresh {
		t.Fatal("first use not fresh")
	}
	if fresh, _ := use("a", now.Add(time.Minute), now.Add(time.Second)); fresh {
		t.Fatal("replay within the lifetime accepted")
	}
	if fresh, _ := use("b", now.Add(time.Minute), now); !fresh {
		t.Fatal("b not fresh")
	}
	if _, err := use("c", now.Add(time.Minute), now); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: %v, want ErrReplayCacheFull (fail closed)", err)
	}
	// Once expired, entries are swept and the cache takes new ids.
	if fresh, err := use("c", now.Add(3*time.Minute), now.Add(2*time.Minute)); !fresh || err != nil {
		t.Fatalf("after expiry: %v %v", fresh, err)
	}
	if m.Len() != 1 {
		t.Errorf("Len = %d, want 1 after the sweep", m.Len())
	}
}

func TestParseClients(t *testing.T) {
	tests := []struct {
		name, json string
		loopback   bool
		wantErr    string
	}{
		{"valid", `[{"id":"epic","iss":"https://ehr.example/cds","jwks_url":"https://ehr.example/jwks","fhir_hosts":["ehr.example"]}]`, false, ""},
		{"loopback http allowed locally", `[{"id":"sb","iss":"http://127.0.0.1:8080/ehr","jwks_url":"http://127.0.0.1:8080/ehr/cds-jwks","fhir_hosts":["127.0.0.1:8080"]}]`, true, ""},
		{"no fhir_hosts", `[{"id":"sb","iss":"https://ehr.example/cds","jwks_url":"https://ehr.example/jwks"}]`, false, "fhir_hosts is required"},
		{"empty fhir_hosts", `[{"id":"sb","iss":"https://ehr.example/cds","jwks_url":"https://ehr.example/jwks","fhir_hosts":[]}]`, false, "fhir_hosts is required"},
		{"http refused when deployed", `[{"id":"sb","iss":"x","jwks_url":"http://127.0.0.1:8080/jwks"}]`, false, "https"},
		{"http to a remote host refused", `[{"id":"sb","iss":"x","jwks_url":"http://ehr.example/jwks"}]`, true, "https"},
		{"unknown field", `[{"id":"a","iss":"x","jwks_url":"https://e/j","secret":"s"}]`, false, "unknown field"},
		{"missing iss", `[{"id":"a","jwks_url":"https://e/j"}]`, false, "iss is required"},
		{"missing id", `[{"iss":"x","jwks_url":"https://e/j"}]`, false, "id is required"},
		{"duplicate iss", `[{"id":"a","iss":"x","jwks_url":"https://e/j","fhir_hosts":["e"]},{"id":"b","iss":"x","jwks_url":"https://e/k","fhir_hosts":["e"]}]`, false, "twice"},
		{"bad host", `[{"id":"a","iss":"x","jwks_url":"https://e/j","fhir_hosts":["https://e/fhir"]}]`, false, "fhir_hosts"},
		{"not an array", `{"id":"a"}`, false, "JSON array"},
		{"trailing data", `[] []`, false, "unexpected data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseClients([]byte(tt.json), tt.loopback)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	engine, err := scoring()
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{Assess: nil, BaseURL: "https://x.example/calculate/", AppLaunchURL: "/launch"}
	err = s.Validate()
	for _, want := range []string{"Assess", "BaseURL", "AppLaunchURL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	_ = engine
}

// TestMaxTokenLifetimeCapped: a configured lifetime above 5 min is capped.
func TestMaxTokenLifetimeCapped(t *testing.T) {
	for _, tt := range []struct {
		set, want time.Duration
	}{{0, 5 * time.Minute}, {time.Hour, 5 * time.Minute}, {2 * time.Minute, 2 * time.Minute}} {
		s := &Service{MaxTokenLifetime: tt.set}
		if got := s.maxTokenLifetime(); got != tt.want {
			t.Errorf("MaxTokenLifetime %v: %v, want %v", tt.set, got, tt.want)
		}
	}
}

// TestKeyRotatedUnderSameKid: a client that rotates its key but keeps the
// kid is accepted after one refetch of its JWK Set; a bad signature under a
// known kid refetches at most once per MinRefresh.
func TestKeyRotatedUnderSameKid(t *testing.T) {
	oldKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	newKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	forged, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	var serving atomic.Pointer[ecdsa.PrivateKey]
	serving.Store(oldKey)
	var fetches atomic.Int32
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/jwks" {
			t.Errorf("JWKS request %s %s", r.Method, r.URL)
		}
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &serving.Load().PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(jwks.Close)
	e := newEnv(t, func(e *env) { e.svc.Clients[0].JWKSURL = jwks.URL + "/jwks" })
	sign := func(key *ecdsa.PrivateKey) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		tok, err := jwt.Signed(s).Claims(map[string]any{"iss": e.cli.Issuer(), "aud": e.svc.ServiceURL(ServicePatientView),
			"iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix(), "jti": "jti-" + randomID()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	steps := []struct {
		name        string
		rotate      bool
		key         *ecdsa.PrivateKey
		status      int
		wantFetches int32
	}{
		{"old key, first fetch", false, oldKey, http.StatusOK, 1},
		{"old key, cached", false, oldKey, http.StatusOK, 1},
		{"rotated under the same kid: one refetch", true, newKey, http.StatusOK, 2},
		{"new key, cached", false, newKey, http.StatusOK, 2},
		{"forged signature: refetch rate-limited", false, forged, http.StatusUnauthorized, 2},
		{"forged again: still no fetch", false, forged, http.StatusUnauthorized, 2},
	}
	for _, st := range steps {
		if st.rotate {
			serving.Store(newKey)
		}
		res := e.call(ehrsim.CDSCall{Hook: HookPatientView, Patient: "low-risk", NoPrefetch: true, Bearer: sign(st.key)})
		if res.Status != st.status {
			t.Errorf("%s: status %d, want %d: %s", st.name, res.Status, st.status, res.Body)
		}
		if got := fetches.Load(); got != st.wantFetches {
			t.Errorf("%s: %d JWKS fetches, want %d", st.name, got, st.wantFetches)
		}
	}
}
