package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/logging"
)

// doctor is `go run ./functions/local doctor [-json] ISS`: the readiness
// check of the registration for ISS (or of the registration with that id),
// with the registrations the functions use: SMARTCALC_EHRS and the
// sandbox's, which the runner adds. When nothing listens on
// 127.0.0.1:$PORT it serves the sandbox there while it checks, so the
// sandbox's profiles can be checked without a runner; otherwise it checks
// the runner that listens there. It returns the exit code: 0 when no check
// failed, 1 when one did, 2 for a usage or configuration error.
func doctor(ctx context.Context, args []string, getenv func(string) string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(errOut)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "usage: go run ./functions/local doctor [-json] ISS\n\n"+
			"Checks the EHR registration whose iss (or id) is ISS: discovery, capabilities, hosts,\n"+
			"id_token issuer and keys, FHIR CapabilityStatement, Redirect URI and client authentication.\n"+
			"Registrations come from SMARTCALC_EHRS (or SMARTCALC_EHRS_FILE), plus the sandbox's:\n"+
			"sandbox, sandbox-oracle and sandbox-epic.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	port := getenv(config.EnvPort)
	if port == "" {
		port = "8080"
	}
	base := "http://" + net.JoinHostPort("127.0.0.1", port)
	srv, err := newServer(base, getenv, logging.New(errOut, slog.LevelWarn), nil)
	if err != nil {
		fmt.Fprintln(errOut, "smartcalc doctor:", err)
		return 2
	}
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port)); err == nil {
		hs := &http.Server{Handler: srv.Handler, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
	}
	d, err := srv.Env.Doctor()
	if err != nil {
		fmt.Fprintln(errOut, "smartcalc doctor:", err)
		return 2
	}
	iss := fs.Arg(0)
	if !strings.Contains(iss, "://") {
		// A registration id.
		found := false
		for _, r := range d.Registrations {
			if r.ID == iss && r.Issuer != "" {
				iss, found = r.Issuer, true
				break
			}
		}
		if !found {
			fmt.Fprintf(errOut, "smartcalc doctor: %q is neither an iss URL nor the id of a registration with an exact iss\n", iss)
			return 2
		}
	}
	rep := d.Check(ctx, iss)
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(out)
	}
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		fmt.Fprintln(errOut, "smartcalc doctor:", err)
		return 2
	}
	if rep.Failed() {
		return 1
	}
	return 0
}
