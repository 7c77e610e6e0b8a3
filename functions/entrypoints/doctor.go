package entrypoints

import (
	"fmt"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/readiness"
	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// Doctor builds the readiness check over the same registrations, HTTP
// client, secrets and URIs as the functions. Unlike the functions it does
// not stop at an invalid registration: it reports it.
func (e *Env) Doctor() (*readiness.Doctor, error) {
	scoring, err := calc.LoadConfig()
	if err != nil {
		return nil, fmt.Errorf("entrypoints: scoring configuration: %w", err)
	}
	return e.doctor(scoring), nil
}

// doctor is Doctor with the scoring configuration already loaded.
func (e *Env) doctor(scoring *calc.Config) *readiness.Doctor {
	d := &readiness.Doctor{
		AllowLoopbackHTTP: !e.Config.Deployed,
		HTTPClient:        e.httpClient(),
		LaunchURI:         e.Config.LaunchURI(),
		RedirectURI:       e.Config.RedirectURI(),
		Secrets:           e.Config.Secret,
		Scoring:           scoring,
	}
	if len(e.Config.EHRs) > 0 {
		regs, err := smart.ParseRegistrations(e.Config.EHRs)
		if err != nil {
			d.RegistrationsError = fmt.Errorf("%s: %w", config.EnvEHRs, err)
		}
		d.Registrations = regs
	}
	d.Registrations = append(d.Registrations, e.Registrations...)
	return d
}
