package smart_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

const (
	redirectURI = "https://app.example/callback"
	clientScope = "launch openid fhirUser patient/Patient.rs patient/Observation.rs online_access"
	secretValue = "s3cr3t-v@lue+/="
)

// countingStore counts the store calls a Flow makes and can fail some.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls []string
	fail  map[string]error
	// created maps launch ids to the (sealed) verifier stored.
	created map[string]string
}

func (c *countingStore) record(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, name)
	return c.fail[name]
}

func (c *countingStore) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *countingStore) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
}

func (c *countingStore) CreateLaunch(ctx context.Context, l *store.Launch) error {
	c.mu.Lock()
	if c.created == nil {
		c.created = map[string]string{}
	}
	c.created[l.State] = l.Verifier
	c.mu.Unlock()
	if err := c.record("CreateLaunch"); err != nil {
		return err
	}
	return c.Store.CreateLaunch(ctx, l)
}

func (c *countingStore) ConsumeLaunch(ctx context.Context, state string) (*store.Launch, error) {
	if err := c.record("ConsumeLaunch"); err != nil {
		return nil, err
	}
	return c.Store.ConsumeLaunch(ctx, state)
}

func (c *countingStore) CreateSession(ctx context.Context, s *store.Session) error {
	if err := c.record("CreateSession"); err != nil {
		return err
	}
	return c.Store.CreateSession(ctx, s)
}

func (c *countingStore) CreateSessionAndLaunch(ctx context.Context, s *store.Session, l *store.Launch) error {
	if err := c.record("CreateSessionAndLaunch"); err != nil {
		return err
	}
	return c.Store.CreateSessionAndLaunch(ctx, s, l)
}

func (c *countingStore) GetSession(ctx context.Context, id string) (*store.Session, error) {
	if err := c.record("GetSession"); err != nil {
		return nil, err
	}
	return c.Store.GetSession(ctx, id)
}

func (c *countingStore) UpdateTokens(ctx context.Context, s *store.Session) error {
	if err := c.record("UpdateTokens"); err != nil {
		return err
	}
	return c.Store.UpdateTokens(ctx, s)
}

// newLaunchKey returns a random launch key, as the local runner makes one.
func newLaunchKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, smart.LaunchKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newMemory(t testing.TB, now func() time.Time) *store.Memory {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := store.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	m := store.NewMemory(sealer)
	m.Now = now
	return m
}

// fixture is a Flow wired to a fake SMART authorization server.
type fixture struct {
	srv     *smarttest.AuthServer
	flow    *smart.Flow
	store   *countingStore
	reg     smart.Registration
	secrets map[string]string
	key     *ecdsa.PrivateKey // private_key_jwt client key
	clock   *smarttest.Clock
}

// newFixture registers a client of the given auth type with a fresh
// AuthServer and builds a Flow for it. edit may change the registration.
func newFixture(t testing.TB, auth string, edit ...func(*smart.Registration)) *fixture {
	t.Helper()
	srv := smarttest.NewAuthServer(t)
	fx := &fixture{srv: srv, secrets: map[string]string{}, clock: smarttest.NewClock(time.Now().Truncate(time.Second))}
	srv.Now = fx.clock.Now
	reg := smart.Registration{
		ID:           "test-ehr",
		Issuer:       srv.FHIRBase,
		ClientID:     "calc-" + auth,
		ClientAuth:   smart.ClientAuth{Type: auth},
		Scope:        clientScope,
		Launch:       []string{"ehr", "standalone"},
		AllowedHosts: []string{"127.0.0.1", "ehr.example"}, // ehr.example: smart_style_url
	}
	client := smarttest.Client{ID: reg.ClientID, Auth: auth, RedirectURIs: []string{redirectURI}}
	switch auth {
	case smart.AuthClientSecretBasic:
		reg.ClientAuth.Secret = "ehr-client-secret"
		fx.secrets["ehr-client-secret"] = secretValue
		client.Secret = secretValue
	case smart.AuthPrivateKeyJWT:
		fx.key = smarttest.NewECKey(t)
		reg.ClientAuth.Key = "ehr-client-key"
		reg.ClientAuth.KID = "calc-key-1"
		reg.ClientAuth.Alg = "ES384"
		fx.secrets["ehr-client-key"] = smarttest.PEM(t, fx.key)
		client.PublicKey = fx.key.Public()
		client.KeyID = "calc-key-1"
	}
	for _, e := range edit {
		e(&reg)
	}
	srv.AddClient(client)
	fx.reg = reg
	registry, err := smart.NewRegistry([]smart.Registration{reg}, true)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	fx.store = &countingStore{Store: newMemory(t, fx.clock.Now)}
	fx.flow = &smart.Flow{
		Registry:    registry,
		Discovery:   &smart.Discoverer{Now: fx.clock.Now},
		Store:       fx.store,
		RedirectURI: redirectURI,
		LaunchKey:   newLaunchKey(t),
		Now:         fx.clock.Now,
		Secrets: func(name string) (string, error) {
			v, ok := fx.secrets[name]
			if !ok {
				return "", fmt.Errorf("secret %s not configured", name)
			}
			return v, nil
		},
	}
	return fx
}

// launched is a launch that went through authorize.
type launched struct {
	begin *smart.BeginResult
	code  string
	state string
}

// launch begins an EHR launch with ctx and approves it at the server.
func (fx *fixture) launch(t testing.TB, ctx smarttest.LaunchContext) launched {
	t.Helper()
	res, err := fx.flow.Begin(context.Background(), smart.BeginRequest{Issuer: fx.srv.FHIRBase, Launch: fx.srv.NewLaunch(ctx)})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	code, state, err := fx.srv.Authorize(res.AuthorizeURL)
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	return launched{begin: res, code: code, state: state}
}

// complete completes l with its code and binding nonce.
func (fx *fixture) complete(l launched) (*smart.CompleteResult, error) {
	return fx.flow.Complete(context.Background(), smart.CompleteRequest{State: l.state, Code: l.code, BindingNonce: l.begin.BindingNonce})
}

var defaultContext = smarttest.LaunchContext{
	Patient:       "pat-1",
	Encounter:     "enc-1",
	FHIRUser:      "Practitioner/prac-1",
	SmartStyleURL: "https://ehr.example/style.json",
	Tenant:        "tenant-1",
}

// asError returns err as *smart.Error or fails the test.
func asError(t testing.TB, err error) *smart.Error {
	t.Helper()
	var e *smart.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *smart.Error", err, err)
	}
	if !strings.HasPrefix(e.Error(), "smart: ") {
		t.Errorf("Error() = %q, want prefix \"smart: \"", e.Error())
	}
	return e
}

func mustParse(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sealedVerifier returns the sealed verifier the store holds for state,
// read without consuming the launch ("" if none): what a store dump shows.
func (fx *fixture) sealedVerifier(state string) string {
	return fx.store.created[smart.LaunchID(state)]
}
