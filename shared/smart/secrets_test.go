package smart_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

// secretSet collects every secret value a scenario produced.
type secretSet struct {
	mu     sync.Mutex
	values []string
}

func (s *secretSet) add(vs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vs {
		if len(v) >= 8 { // shorter strings match by accident
			s.values = append(s.values, v)
		}
	}
}

// recordTokens makes the server report the tokens it issues.
func (s *secretSet) recordTokens(fx *fixture, edit func(map[string]any)) {
	fx.srv.EditTokenResponse(func(_ smarttest.Request, r map[string]any) {
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if v, ok := r[k].(string); ok {
				s.add(v)
			}
		}
		if edit != nil {
			edit(r)
		}
	})
}

// fromRequests adds what the client sent to the token endpoint.
func (s *secretSet) fromRequests(fx *fixture) {
	for _, r := range fx.srv.Requests("/token") {
		s.add(r.Form.Get("code"), r.Form.Get("code_verifier"), r.Form.Get("client_assertion"),
			r.Form.Get("refresh_token"), r.Header.Get("Authorization"))
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Basic ") {
			s.add(strings.TrimPrefix(a, "Basic "))
		}
	}
}

// TestErrorsCarryNoSecrets drives every failure that happens after secrets
// exist and checks that no error text, cause or Sent line contains a code,
// verifier, client secret, key, assertion, token, state or binding nonce.
func TestErrorsCarryNoSecrets(t *testing.T) {
	type scenario struct {
		name string
		auth string
		run  func(t *testing.T, fx *fixture, secrets *secretSet) error
	}
	completeWith := func(setup func(fx *fixture, secrets *secretSet)) func(t *testing.T, fx *fixture, secrets *secretSet) error {
		return func(t *testing.T, fx *fixture, secrets *secretSet) error {
			l := fx.launch(t, defaultContext)
			secrets.add(l.code, l.state, l.begin.State, l.begin.BindingNonce)
			// The OIDC nonce, and the launch document's sealed verifier.
			if u, err := url.Parse(l.begin.AuthorizeURL); err == nil {
				secrets.add(u.Query().Get("nonce"))
			}
			secrets.add(fx.sealedVerifier(l.state))
			if setup != nil {
				setup(fx, secrets)
			}
			_, err := fx.complete(l)
			return err
		}
	}
	scenarios := []scenario{
		{"invalid_grant", smart.AuthClientSecretBasic, completeWith(func(fx *fixture, _ *secretSet) {
			fx.srv.CodeLifetime = 1
			fx.clock.Add(2)
		})},
		{"invalid_client secret", smart.AuthClientSecretBasic, completeWith(func(fx *fixture, s *secretSet) {
			fx.secrets["ehr-client-secret"] = "wrong-secret-value"
			s.add("wrong-secret-value")
		})},
		{"invalid_client key", smart.AuthPrivateKeyJWT, completeWith(func(fx *fixture, s *secretSet) {
			pem := smarttest.PEM(t, smarttest.NewECKey(t))
			fx.secrets["ehr-client-key"] = pem
			s.add(pem)
		})},
		{"bad token_type", smart.AuthPublic, completeWith(func(fx *fixture, s *secretSet) {
			s.recordTokens(fx, func(r map[string]any) { r["token_type"] = "mac" })
		})},
		{"no patient", smart.AuthPrivateKeyJWT, completeWith(func(fx *fixture, s *secretSet) {
			s.recordTokens(fx, func(r map[string]any) { delete(r, "patient") })
		})},
		{"bad patient", smart.AuthPublic, completeWith(func(fx *fixture, s *secretSet) {
			s.recordTokens(fx, func(r map[string]any) { r["patient"] = strings.Repeat("p", 100) })
		})},
		{"id_token wrong audience", smart.AuthClientSecretBasic, completeWith(func(fx *fixture, s *secretSet) {
			tok := fx.srv.IDToken(t, fx.srv.IDTokenClaims("someone-else", "Practitioner/x"))
			s.recordTokens(fx, func(r map[string]any) { r["id_token"] = tok })
		})},
		{"token endpoint 500", smart.AuthClientSecretBasic, completeWith(func(fx *fixture, _ *secretSet) {
			fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
				return http.StatusInternalServerError, map[string]string{"message": "boom"}, true
			})
		})},
		{"unreachable", smart.AuthPrivateKeyJWT, completeWith(func(fx *fixture, _ *secretSet) {
			fx.flow.HTTPClient = &http.Client{Transport: &failingTransport{}}
		})},
		{"binding mismatch", smart.AuthPublic, func(t *testing.T, fx *fixture, s *secretSet) error {
			l := fx.launch(t, defaultContext)
			s.add(l.code, l.state, l.begin.BindingNonce)
			_, err := fx.flow.Complete(context.Background(), smart.CompleteRequest{State: l.state, Code: l.code, BindingNonce: "forged-nonce-value"})
			return err
		}},
		{"replayed", smart.AuthPublic, func(t *testing.T, fx *fixture, s *secretSet) error {
			l := fx.launch(t, defaultContext)
			s.add(l.code, l.state)
			s.recordTokens(fx, nil)
			if _, err := fx.complete(l); err != nil {
				t.Fatal(err)
			}
			_, err := fx.complete(l)
			return err
		}},
		{"ehr error", smart.AuthPublic, completeWith(func(fx *fixture, _ *secretSet) {
			fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
				return http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "bad"}, true
			})
		})},
		{"verifier sealed under another launch key", smart.AuthPublic, completeWith(func(fx *fixture, s *secretSet) {
			// A launch in flight while the launch key was rotated.
			old := fx.flow.LaunchKey
			fx.flow.LaunchKey = newLaunchKey(t)
			s.add(string(old), hex.EncodeToString(old), base64.StdEncoding.EncodeToString(old), base64.RawURLEncoding.EncodeToString(old))
		})},
		{"refresh revoked", smart.AuthClientSecretBasic, func(t *testing.T, fx *fixture, s *secretSet) error {
			s.recordTokens(fx, nil)
			sess := fx.session(t)
			fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
				return http.StatusBadRequest, map[string]string{"error": "invalid_grant"}, true
			})
			_, err := fx.flow.Refresh(context.Background(), sess)
			return err
		}},
		{"refresh assertion refused", smart.AuthPrivateKeyJWT, func(t *testing.T, fx *fixture, s *secretSet) error {
			s.recordTokens(fx, nil)
			sess := fx.session(t)
			fx.srv.OnToken(func(smarttest.Request) (int, any, bool) {
				return http.StatusUnauthorized, map[string]string{"error": "invalid_client"}, true
			})
			_, err := fx.flow.Refresh(context.Background(), sess)
			return err
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			fx := newFixture(t, sc.auth)
			secrets := &secretSet{}
			secrets.add(secretValue)
			for _, v := range fx.secrets {
				secrets.add(v)
			}
			k := fx.flow.LaunchKey
			secrets.add(string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k))
			err := sc.run(t, fx, secrets)
			if err == nil {
				t.Fatal("scenario succeeded, want an error")
			}
			secrets.fromRequests(fx)
			e := asError(t, err)
			texts := []string{err.Error(), fmt.Sprintf("%+v", *e), fmt.Sprintf("%#v", e.Sent), e.Title().String(), e.Advice().String(),
				e.EHRError, e.EHRDescription, e.EHRURI, e.Issuer, e.RegistrationID, e.Correlation}
			texts = append(texts, smart.English(e.Causes)...)
			texts = append(texts, smart.English(e.Sent)...)
			if len(secrets.values) < 3 {
				t.Fatalf("only %d secrets collected; the scenario is not checking anything", len(secrets.values))
			}
			for _, secret := range secrets.values {
				for _, text := range texts {
					if strings.Contains(text, secret) {
						t.Errorf("%v error text contains a secret (%.12s…):\n%s", e.Kind, secret, text)
					}
				}
			}
		})
	}
}
