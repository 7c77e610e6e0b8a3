package smart_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

// benchFlow returns a Flow against a minimal SMART server whose token
// endpoint answers every request with a fixed token response (no PKCE
// check), and a warm discovery cache.
func benchFlow(b *testing.B, auth string) (*smart.Flow, string) {
	b.Helper()
	mux := http.NewServeMux()
	var base string
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"authorization_endpoint":"` + base + `/authorize","token_endpoint":"` + base + `/token",
			"code_challenge_methods_supported":["S256"]}`))
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-0123456789abcdef","token_type":"Bearer","expires_in":3600,
			"scope":"launch patient/Patient.rs online_access","refresh_token":"rt-0123456789abcdef",
			"patient":"pat-1","encounter":"enc-1","need_patient_banner":true}`))
	})
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	base = ts.URL
	reg := smart.Registration{
		ID: "bench", Issuer: ts.URL + "/fhir", ClientID: "calc", ClientAuth: smart.ClientAuth{Type: auth},
		Scope: "launch patient/Patient.rs online_access", Launch: []string{"ehr"}, AllowedHosts: []string{"127.0.0.1"},
	}
	secrets := map[string]string{}
	if auth == smart.AuthClientSecretBasic {
		reg.ClientAuth.Secret = "s"
		secrets["s"] = secretValue
	}
	if auth == smart.AuthPrivateKeyJWT {
		reg.ClientAuth = smart.ClientAuth{Type: auth, Key: "k", KID: "kid-1", Alg: "ES384"}
		secrets["k"] = smarttest.PEM(b, smarttest.NewECKey(b))
	}
	registry, err := smart.NewRegistry([]smart.Registration{reg}, true)
	if err != nil {
		b.Fatal(err)
	}
	f := &smart.Flow{
		Registry:    registry,
		Discovery:   &smart.Discoverer{},
		Store:       newMemory(b, time.Now),
		RedirectURI: redirectURI,
		LaunchKey:   newLaunchKey(b),
		Secrets:     func(name string) (string, error) { return secrets[name], nil },
	}
	if _, err := f.Discovery.Discover(context.Background(), reg.Issuer); err != nil {
		b.Fatal(err)
	}
	return f, reg.Issuer
}

// BenchmarkBegin measures the launch step with a warm discovery cache and
// the in-memory store: matching, random state, verifier and nonce, the
// launch document and the authorize URL.
func BenchmarkBegin(b *testing.B) {
	f, iss := benchFlow(b, smart.AuthPublic)
	ctx := context.Background()
	req := smart.BeginRequest{Issuer: iss, Launch: "launch-0123456789"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Begin(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkComplete measures the callback step against an httptest token
// server on loopback (one POST per iteration) and the in-memory store.
func BenchmarkComplete(b *testing.B) {
	for _, auth := range []string{smart.AuthPublic, smart.AuthClientSecretBasic, smart.AuthPrivateKeyJWT} {
		b.Run(auth, func(b *testing.B) {
			f, iss := benchFlow(b, auth)
			ctx := context.Background()
			var states []string
			for range b.N {
				res, err := f.Begin(ctx, smart.BeginRequest{Issuer: iss, Launch: "launch-0123456789"})
				if err != nil {
					b.Fatal(err)
				}
				states = append(states, res.State)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.Complete(ctx, smart.CompleteRequest{State: states[i], Code: "code-0123456789"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
