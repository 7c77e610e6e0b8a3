// Command local runs all of SMART Calc in one process for development and
// demos: the launch, callback and calculate functions, exactly as deployed,
// plus the sandbox EHR, on 127.0.0.1. It prints the URL to open.
//
//	go run ./functions/local
//
// The store is in memory unless FIRESTORE_EMULATOR_HOST or
// SMARTCALC_FIRESTORE_PROJECT is set. The sandbox is registered
// automatically; SMARTCALC_EHRS adds more EHRs, and SMARTCALC_SANDBOX_DATA
// names a folder of FHIR Bundles to load as extra patients.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/cds"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// SandboxClientID is the client id the app uses at the sandbox EHR's
// default profile; the vendor profiles' apps are SandboxClientID-oracle and
// SandboxClientID-epic.
const SandboxClientID = "smartcalc-local"

// SandboxScope is what the app asks the sandbox for: the scope the README
// and the Terraform example recommend for every EHR.
var SandboxScope = assess.RecommendedScope(false)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "doctor" {
		os.Exit(doctor(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	if err := run(ctx, os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "smartcalc:", err)
		os.Exit(1)
	}
}

// Server is a running local SMART Calc.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	Env     *entrypoints.Env
	Sandbox *ehrsim.Server
	// Hooks is the sandbox's CDS Hooks client (/ehr/cds), which calls the
	// calculate function's CDS services as an EHR would.
	Hooks   *ehrsim.CDSClient
	Handler http.Handler
}

// newServer builds everything for base (http://127.0.0.1:PORT) without
// listening. getenv supplies the configuration; log receives the app's logs.
// Tests use tune to adjust the sandbox and the environment before the
// handlers are built.
func newServer(base string, getenv func(string) string, log *slog.Logger, tune *Tune) (*Server, error) {
	vars := map[string]string{}
	for _, v := range config.Variables {
		if !v.Prefix {
			vars[v.Name] = getenv(v.Name)
		}
	}
	vars[config.EnvBaseURL] = base
	for _, name := range []string{config.EnvTokenKey, config.EnvLaunchKey} {
		if vars[name] == "" {
			// A fresh key per run: launches and sessions die with the
			// process anyway.
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return nil, err
			}
			vars[name] = base64.StdEncoding.EncodeToString(k)
		}
	}
	cfg, err := config.Load(func(k string) string {
		if strings.HasPrefix(k, config.EnvSecretPrefix) {
			return getenv(k)
		}
		return vars[k]
	})
	if err != nil {
		return nil, err
	}
	simCfg := ehrsim.Config{
		BaseURL:      base + "/ehr",
		AppLaunchURL: cfg.LaunchURI(),
		DataDir:      cfg.SandboxData,
		Clients:      sandboxClients(cfg.RedirectURI()),
	}
	if tune != nil && tune.Sandbox != nil {
		tune.Sandbox(&simCfg)
	}
	sim, err := ehrsim.New(simCfg)
	if err != nil {
		return nil, err
	}
	env := &entrypoints.Env{
		Config:        cfg,
		Log:           log,
		Registrations: sandboxRegistrations(sim, hostOf(base)),
	}
	// The sandbox also plays the EHR's CDS Hooks client, calling the
	// calculate function's CDS services with its signed JWT.
	hooks, err := sim.NewCDSClient(ehrsim.CDSClientConfig{ServiceBase: cfg.URL("/calculate")})
	if err != nil {
		return nil, err
	}
	fhirHost := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	env.CDSClients = []cds.Client{{ID: "sandbox", Issuer: hooks.Issuer(), JWKSURL: hooks.JWKSURL(), FHIRHosts: []string{fhirHost}}}
	if tune != nil && tune.Env != nil {
		tune.Env(env)
	}
	mux := http.NewServeMux()
	for _, name := range entrypoints.Names {
		h, err := env.Handler(name)
		if err != nil {
			return nil, err
		}
		if name == "calculate" {
			mux.Handle("/calculate/", http.StripPrefix("/calculate", h))
			mux.Handle("/calculate", http.RedirectHandler("/calculate/", http.StatusMovedPermanently))
			continue
		}
		mux.Handle("/"+name, h)
		if name == "callback" { // per-registration Redirect URIs: /callback/<id>
			mux.Handle("/callback/{id}", h)
		}
	}
	mux.Handle("/ehr/cds", hooks)
	mux.Handle("/ehr/cds-jwks", hooks)
	mux.Handle("/ehr/", sim)
	mux.Handle("/{$}", http.RedirectHandler("/ehr/", http.StatusFound))
	return &Server{URL: base, Env: env, Sandbox: sim, Hooks: hooks, Handler: mux}, nil
}

// sandboxClients are the app's registrations in the sandbox EHR, one per
// profile, as a deployer makes them in each vendor's console: public
// clients with SMART Calc's Redirect URI (the vendor profiles' their own,
// /callback/<registration id>); at Oracle Health registered as SMART v1
// with the v1 scopes; at Epic with its registered APIs (user/<Type>.read,
// the form Epic grants).
func sandboxClients(redirectURI string) []ehrsim.Client {
	epic := []string{"launch", "openid", "fhirUser", "online_access"}
	for _, r := range assess.ReadResources {
		epic = append(epic, "user/"+r+".read")
	}
	return []ehrsim.Client{
		{ID: SandboxClientID, Type: ehrsim.ClientPublic, RedirectURIs: []string{redirectURI}},
		{ID: SandboxClientID + "-oracle", Type: ehrsim.ClientPublic, Profile: ehrsim.ProfileOracle, SMARTVersion: "v1",
			Scope: assess.RecommendedScope(true) + " launch/patient", RedirectURIs: []string{redirectURI + "/sandbox-oracle"}},
		{ID: SandboxClientID + "-epic", Type: ehrsim.ClientPublic, Profile: ehrsim.ProfileEpic,
			Scope: strings.Join(epic, " "), RedirectURIs: []string{redirectURI + "/sandbox-epic"}},
	}
}

// sandboxRegistrations are SMART Calc's registrations of the sandbox, one
// per profile, as a deployer writes them in SMARTCALC_EHRS: each with its
// own iss, client id and scope, and the id_token issuer where it is not the
// FHIR base. The vendor profiles' use their own Redirect URI
// (redirect_per_registration), so that three EHRs never share one without
// RFC 9207's iss. The default profile's comes first.
func sandboxRegistrations(sim *ehrsim.Server, host string) []smart.Registration {
	def, _ := sim.Endpoints(ehrsim.ProfileDefault)
	oracle, _ := sim.Endpoints(ehrsim.ProfileOracle)
	epic, _ := sim.Endpoints(ehrsim.ProfileEpic)
	public := smart.ClientAuth{Type: smart.AuthPublic}
	hosts := []string{host}
	return []smart.Registration{
		{ID: "sandbox", Issuer: def.FHIRBase, ClientID: SandboxClientID, ClientAuth: public, Scope: SandboxScope,
			Launch: []string{smart.LaunchEHR, smart.LaunchStandalone}, AllowedHosts: hosts},
		{ID: "sandbox-oracle", Issuer: oracle.FHIRBase, ClientID: SandboxClientID + "-oracle", ClientAuth: public,
			Scope: assess.RecommendedScope(true), Launch: []string{smart.LaunchEHR, smart.LaunchStandalone}, AllowedHosts: hosts,
			IDTokenIssuer: oracle.IDTokenIssuer, RedirectPerRegistration: true},
		{ID: "sandbox-epic", Issuer: epic.FHIRBase, ClientID: SandboxClientID + "-epic", ClientAuth: public,
			Scope: SandboxScope, Launch: []string{smart.LaunchEHR}, AllowedHosts: hosts,
			IDTokenIssuer: epic.IDTokenIssuer, RedirectPerRegistration: true},
	}
}

func hostOf(base string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return h
}

// Tune adjusts a local server before its handlers are built.
type Tune struct {
	Sandbox func(*ehrsim.Config)
	Env     func(*entrypoints.Env)
}

// run listens on 127.0.0.1:PORT (8080 by default), prints the URL to open to
// out, and serves until ctx ends. ready, if not nil, receives the server once
// it listens.
func run(ctx context.Context, getenv func(string) string, out io.Writer, ready chan<- *Server) error {
	port := getenv(config.EnvPort)
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%s: %w (set PORT to use another port)", port, err)
	}
	base := "http://" + ln.Addr().String()
	log := logging.New(os.Stderr, logging.ParseLevel(getenv(config.EnvLogLevel)))
	srv, err := newServer(base, getenv, log, nil)
	if err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{Handler: srv.Handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "SMART Calc is running.\n"+
		"  Open the sandbox EHR: %s/ehr/ (profiles: default, oracle, epic; /ehr/launch?patient=ID&profile=oracle)\n"+
		"  To register this run with another EHR (addresses for its app registration, not pages to open):\n"+
		"    Launch URI:   %s/launch\n"+
		"    Redirect URI: %s/callback\n"+
		"  The app itself (%s/calculate/) opens through a launch.\n",
		base, base, base, base)
	if ready != nil {
		ready <- srv
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
