package entrypoints

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/callback"
	"github.com/smartcalc-app/smartcalc/functions/launch"
	"github.com/smartcalc-app/smartcalc/shared/cds"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// LocalFirestoreProject is the project id used with a Firestore emulator
// when no project is configured.
const LocalFirestoreProject = "smartcalc-local"

// LocalMaxLaunches bounds the in-memory store's launches in a local run.
const LocalMaxLaunches = 5_000

// Env holds the configuration and the dependencies the handlers share. The
// zero values of the optional fields are filled from Config on first use; the
// local runner and tests set them to inject a store, a clock or a client.
type Env struct {
	Config *config.Config
	Log    *slog.Logger

	Store         store.Store          // default: Firestore if configured, else in memory (never when deployed)
	HTTPClient    *http.Client         // outbound calls to EHRs; default: 10 s timeout, 2 s connect timeout
	Now           func() time.Time     // default time.Now
	Registrations []smart.Registration // added to those in Config (the local runner's sandbox)
	CDSClients    []cds.Client         // added to those in Config (the local runner's sandbox)

	mu        sync.Mutex
	registry  *smart.Registry
	discovery *smart.Discoverer
	flow      *smart.Flow
	ancestors []string
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Launch builds the launch function's handler. It needs the launch key.
func (e *Env) Launch() (http.Handler, error) {
	if len(e.Config.LaunchKey) == 0 {
		return nil, fmt.Errorf("entrypoints: launch: %s is required to seal PKCE verifiers", config.EnvLaunchKey)
	}
	f, err := e.Flow()
	if err != nil {
		return nil, err
	}
	return &launch.Handler{
		Flow:           f,
		Log:            e.Log,
		Project:        e.Config.FirestoreProject,
		FrameAncestors: e.ancestors,
		LaunchTTL:      e.Config.LaunchTTL,
	}, nil
}

// Callback builds the callback function's handler. It needs the token key
// and the launch key.
func (e *Env) Callback() (http.Handler, error) {
	if e.Store == nil && e.Config.TokenKey == nil {
		return nil, fmt.Errorf("entrypoints: callback: %s is required to seal tokens", config.EnvTokenKey)
	}
	if len(e.Config.LaunchKey) == 0 {
		return nil, fmt.Errorf("entrypoints: callback: %s is required to open PKCE verifiers", config.EnvLaunchKey)
	}
	f, err := e.Flow()
	if err != nil {
		return nil, err
	}
	return &callback.Handler{
		Flow:           f,
		Log:            e.Log,
		Project:        e.Config.FirestoreProject,
		FrameAncestors: e.ancestors,
		AppURL:         e.Config.AppURL(),
	}, nil
}

// Flow returns the SMART flow shared by the handlers built from e.
func (e *Env) Flow() (*smart.Flow, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flow != nil {
		return e.flow, nil
	}
	if e.Config.BaseURL == nil {
		return nil, fmt.Errorf("entrypoints: %s is required", config.EnvBaseURL)
	}
	reg, err := e.registryLocked()
	if err != nil {
		return nil, err
	}
	st, err := e.storeLocked()
	if err != nil {
		return nil, err
	}
	client := e.httpClient()
	e.discovery = &smart.Discoverer{HTTPClient: client, TTL: e.Config.DiscoveryTTL, Now: e.Now}
	e.flow = &smart.Flow{
		Registry:    reg,
		Discovery:   e.discovery,
		Store:       st,
		HTTPClient:  client,
		RedirectURI: e.Config.RedirectURI(),
		LaunchTTL:   e.Config.LaunchTTL,
		SessionTTL:  e.Config.SessionTTL,
		Now:         e.now,
		Rand:        rand.Reader,
		Secrets:     e.Config.Secret,
		LaunchKey:   e.Config.LaunchKey, // nil in calculate, which never begins or completes a launch
	}
	return e.flow, nil
}

func (e *Env) httpClient() *http.Client {
	if e.HTTPClient == nil {
		e.HTTPClient = fhir.NewHTTPClient(10 * time.Second)
	}
	return e.HTTPClient
}

func (e *Env) registryLocked() (*smart.Registry, error) {
	if e.registry != nil {
		return e.registry, nil
	}
	var regs []smart.Registration
	if len(e.Config.EHRs) > 0 {
		parsed, err := smart.ParseRegistrations(e.Config.EHRs)
		if err != nil {
			return nil, fmt.Errorf("entrypoints: %s: %w", config.EnvEHRs, err)
		}
		regs = append(regs, parsed...)
	}
	regs = append(regs, e.Registrations...)
	if len(regs) == 0 {
		return nil, fmt.Errorf("entrypoints: no EHR registrations: set %s", config.EnvEHRs)
	}
	r, err := smart.NewRegistry(regs, !e.Config.Deployed)
	if err != nil {
		return nil, fmt.Errorf("entrypoints: %w", err)
	}
	if e.Log != nil {
		for _, reg := range r.Registrations() {
			if !reg.BindingRequired() {
				e.Log.Warn("browser binding off: callbacks for this registration are not bound to the browser that launched (login CSRF is possible)",
					"registration", reg.ID)
			}
		}
	}
	e.registry = r
	e.ancestors = FrameAncestors(regs, e.Config.FrameAncestors)
	return r, nil
}

// FrameAncestors lists the origins allowed to embed SMART Calc: each
// registered EHR's FHIR origin and allowed hosts, plus the configured extras.
func FrameAncestors(regs []smart.Registration, extra []string) []string {
	set := map[string]bool{}
	for _, r := range regs {
		if u, err := url.Parse(r.Issuer); err == nil && r.Issuer != "" && u.Host != "" {
			set[u.Scheme+"://"+u.Host] = true
		}
		for _, h := range r.AllowedHosts {
			set["https://"+h] = true
		}
	}
	for _, o := range extra {
		set[o] = true
	}
	out := make([]string, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

func (e *Env) storeLocked() (store.Store, error) {
	if e.Store != nil {
		return e.Store, nil
	}
	var sealer *store.Sealer
	if e.Config.TokenKey != nil {
		s, err := store.NewSealer(e.Config.TokenKey)
		if err != nil {
			return nil, fmt.Errorf("entrypoints: %s: %w", config.EnvTokenKey, err)
		}
		sealer = s
	}
	project := e.Config.FirestoreProject
	if project == "" && e.Config.EmulatorHost != "" {
		project = LocalFirestoreProject
	}
	if project == "" {
		if e.Config.Deployed {
			return nil, errors.New("entrypoints: no Firestore project configured")
		}
		m := store.NewMemory(sealer)
		m.Now = e.now
		m.IdleTimeout = e.Config.IdleTimeout
		// A local run needs few launches in flight; a small bound keeps the
		// process's memory flat under a sustained load test (about 430 bytes
		// a launch), at the price of evicting launches older than
		// MaxLaunches/rate, which then fail cleanly as unknown.
		m.MaxLaunches = LocalMaxLaunches
		e.Store = m
		return e.Store, nil
	}
	client, err := store.NewFirestoreClient(context.Background(), project, e.Config.FirestoreDatabase, e.Config.EmulatorHost)
	if err != nil {
		return nil, fmt.Errorf("entrypoints: %w", err)
	}
	e.Store = &store.Firestore{Client: client, Sealer: sealer, Now: e.Now, IdleTimeout: e.Config.IdleTimeout}
	return e.Store, nil
}
