package smart_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

// TestMixUp is the mix-up attack: a hostile registered EHR forwards the
// browser to an honest EHR's authorize endpoint, hoping that the callback
// sends the honest code and the PKCE verifier to the hostile token
// endpoint. The RFC 9207 iss, required where discovery advertises it, and
// a Redirect URI per registration each stop it before any token request.
func TestMixUp(t *testing.T) {
	const (
		shared    = "https://app.example/callback"
		honestCB  = "https://app.example/callback/honest"
		hostileCB = "https://app.example/callback/hostile"
	)
	for _, tc := range []struct {
		name        string
		perReg      bool // both registrations use /callback/<id>
		advertise   bool // honest advertises authorization_response_iss_parameter_supported
		attack      bool // the hostile EHR's launch, forwarded to honest
		iss         func(honest, hostile *smarttest.AuthServer) string
		route       string
		wantMixUp   bool
		wantSession bool
	}{
		{name: "forwarded, honest sends iss", attack: true, iss: func(h, _ *smarttest.AuthServer) string { return h.FHIRBase }, wantMixUp: true},
		{name: "forwarded, per-registration Redirect URI", perReg: true, attack: true, route: "honest", wantMixUp: true},
		{name: "forwarded, per-registration, answered on the shared path", perReg: true, attack: true, wantMixUp: true},
		{name: "honest launch, iss of another EHR", iss: func(_, x *smarttest.AuthServer) string { return x.FHIRBase }, wantMixUp: true},
		{name: "honest launch, iss required but missing", advertise: true, wantMixUp: true},
		{name: "honest launch, iss required and right", advertise: true, iss: func(h, _ *smarttest.AuthServer) string { return h.FHIRBase }, wantSession: true},
		{name: "honest launch, no iss, not advertised", wantSession: true},
		{name: "honest launch, per-registration", perReg: true, route: "honest", wantSession: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			honest, hostile := smarttest.NewAuthServer(t), smarttest.NewAuthServer(t)
			honestRedirect, hostileRedirect := shared, shared
			if tc.perReg {
				honestRedirect, hostileRedirect = honestCB, hostileCB
			}
			if tc.advertise {
				honest.EditDiscovery(func(d map[string]any) { d["authorization_response_iss_parameter_supported"] = true })
			}
			honest.AddClient(smarttest.Client{ID: "calc", Auth: smart.AuthPublic, RedirectURIs: []string{honestRedirect}})
			hostile.AddClient(smarttest.Client{ID: "calc", Auth: smart.AuthPublic, RedirectURIs: []string{hostileRedirect}})
			reg := func(id string, s *smarttest.AuthServer) smart.Registration {
				return smart.Registration{ID: id, Issuer: s.FHIRBase, ClientID: "calc", ClientAuth: smart.ClientAuth{Type: smart.AuthPublic},
					Scope: "launch/patient patient/Patient.rs", Launch: []string{"standalone"}, AllowedHosts: []string{"127.0.0.1"},
					RedirectPerRegistration: tc.perReg}
			}
			registry, err := smart.NewRegistry([]smart.Registration{reg("honest", honest), reg("hostile", hostile)}, true)
			if err != nil {
				t.Fatal(err)
			}
			flow := &smart.Flow{Registry: registry, Discovery: &smart.Discoverer{}, Store: newMemory(t, nil), RedirectURI: shared, LaunchKey: newLaunchKey(t)}
			start := honest
			if tc.attack {
				start = hostile
			}
			b, err := flow.Begin(context.Background(), smart.BeginRequest{Issuer: start.FHIRBase})
			if err != nil {
				t.Fatal(err)
			}
			var code, state string
			if tc.attack {
				code, state, err = smarttest.ForwardAuthorize(b.AuthorizeURL, honest, "calc", honestRedirect)
			} else {
				code, state, err = honest.Authorize(b.AuthorizeURL)
			}
			if err != nil {
				t.Fatal(err)
			}
			iss := ""
			if tc.iss != nil {
				iss = tc.iss(honest, hostile)
			}
			res, err := flow.Complete(context.Background(), smart.CompleteRequest{State: state, Code: code, BindingNonce: b.BindingNonce,
				ResponseIssuer: iss, RouteRegistration: tc.route})
			if tc.wantMixUp {
				expectKind(t, err, smart.MixUp, http.StatusForbidden)
			} else if err != nil || !tc.wantSession || res.Session.RegistrationID != "honest" {
				t.Fatalf("Complete = %+v, %v", res, err)
			}
			if n := len(hostile.Requests("/token")); n != 0 {
				t.Errorf("the hostile token endpoint got %d requests: the honest code and verifier reached it", n)
			}
		})
	}
}
