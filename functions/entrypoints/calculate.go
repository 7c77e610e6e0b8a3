package entrypoints

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/smartcalc-app/smartcalc/functions/calculate"
	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/cds"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/readiness"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// Calculate builds the calculate function's handler: the embedded scoring
// configuration is validated first, and a broken one stops the function
// with an error naming the field; it never computes with defaults.
func (e *Env) Calculate() (http.Handler, error) {
	scoring, err := calc.LoadConfig()
	if err != nil {
		return nil, fmt.Errorf("entrypoints: scoring configuration: %w", err)
	}
	engine, err := calc.NewEngine(scoring)
	if err != nil {
		return nil, fmt.Errorf("entrypoints: scoring engine: %w", err)
	}
	if e.Store == nil && e.Config.TokenKey == nil {
		return nil, fmt.Errorf("entrypoints: calculate: %s is required to open sealed tokens", config.EnvTokenKey)
	}
	flow, err := e.Flow()
	if err != nil {
		return nil, err
	}
	as := &assess.Service{
		Sessions:    flow.Store,
		Refresh:     flow.Refresh,
		Engine:      engine,
		Scoring:     scoring,
		HTTPClient:  e.httpClient(),
		Now:         e.Now,
		LabLookback: e.Config.LabLookback,
		MaxConcurrentFHIR: func(id string) int {
			if r, ok := flow.Registry.Get(id); ok {
				return r.MaxConcurrentFHIR
			}
			return 0
		},
	}
	clients := e.CDSClients
	if len(e.Config.CDSClients) > 0 {
		parsed, err := cds.ParseClients(e.Config.CDSClients, !e.Config.Deployed)
		if err != nil {
			return nil, fmt.Errorf("entrypoints: %s: %w", config.EnvCDSClients, err)
		}
		clients = append(parsed, clients...)
	}
	hooks := &cds.Service{
		Assess:            as,
		Clients:           clients,
		BaseURL:           strings.TrimSuffix(e.Config.AppURL(), "/"),
		AppLaunchURL:      e.Config.LaunchURI(),
		Budget:            e.Config.CDSBudget,
		Language:          e.Config.CDSLanguage,
		HTTPClient:        e.httpClient(),
		Now:               e.Now,
		Log:               e.Log,
		AllowLoopbackHTTP: !e.Config.Deployed,
	}
	if fs, ok := flow.Store.(*store.Firestore); ok {
		// One replay store for every instance: a JWT is accepted once.
		hooks.Replay = store.ReplayCache{Store: fs}
	}
	if err := hooks.Validate(); err != nil {
		return nil, fmt.Errorf("entrypoints: CDS Hooks: %w", err)
	}
	var ready func(context.Context) error
	if p, ok := flow.Store.(store.Pinger); ok {
		ready = p.Ping
	}
	var doctor *readiness.Doctor
	if e.Config.AdminToken != "" {
		doctor = e.doctor(scoring)
	}
	return calculate.New(&calculate.Handler{
		Ready:          ready,
		Engine:         engine,
		Scoring:        scoring,
		Assess:         as,
		Handoff:        flow,
		CDS:            hooks,
		Log:            e.Log,
		Project:        e.Config.FirestoreProject,
		FrameAncestors: e.ancestors,
		IdleTimeout:    e.Config.IdleTimeout,
		SessionTTL:     e.Config.SessionTTL,
		Doctor:         doctor,
		AdminToken:     e.Config.AdminToken,
	}), nil
}
