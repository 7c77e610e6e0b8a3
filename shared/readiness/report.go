// Package readiness checks one EHR registration end to end before any
// clinician launches SMART Calc from it: the registration, the EHR's SMART
// configuration and capabilities against it, the endpoint hosts, the
// id_token issuer and keys, the FHIR CapabilityStatement against what the
// assessment reads, whether the EHR knows the client id and its Redirect
// URI, and whether it accepts the client authentication, without a user.
// Each check passes, warns or fails with the fix in the deployer's terms:
// the registration field to change, or what to enter in the EHR's console.
//
// It is the code behind `go run ./functions/local doctor ISS` and the
// calculate function's admin path; both only parse, call and write. The
// checks use shared/smart's own discovery, endpoint checks and client
// authentication, so they see the EHR exactly as a launch does. Nothing it
// reports holds a secret value: secrets and assertions are resolved inside
// shared/smart and never returned.
package readiness

import (
	"fmt"
	"io"
	"strings"
)

// Status is a check's outcome.
type Status string

// The outcomes. Skip means the check could not run because an earlier one
// failed (its detail says which).
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check is one check's outcome.
type Check struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	// Detail is what was found.
	Detail string `json:"detail,omitempty"`
	// Fix says what to change: the registration field, or what to enter
	// in the EHR's console. Empty when nothing needs changing.
	Fix string `json:"fix,omitempty"`
}

// Console is what the EHR's app registration must say for this
// registration.
type Console struct {
	LaunchURI    string `json:"launch_uri"`
	RedirectURI  string `json:"redirect_uri"`
	Scope        string `json:"scope"`
	SMARTVersion string `json:"smart_version"`
	ClientType   string `json:"client_type"`
	ClientID     string `json:"client_id"`
}

// Report is the outcome of every check for one iss.
type Report struct {
	Issuer       string   `json:"iss"`
	Registration string   `json:"registration,omitempty"`
	Checks       []Check  `json:"checks"`
	Console      *Console `json:"console,omitempty"`
	// Summary counts the checks by status.
	Summary map[Status]int `json:"summary"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Summary[Fail] > 0 }

// Check returns the check with that id.
func (r *Report) Check(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

func (r *Report) add(c Check) {
	r.Checks = append(r.Checks, c)
	if r.Summary == nil {
		r.Summary = map[Status]int{}
	}
	r.Summary[c.Status]++
}

// WriteText writes the report for a person: one block per check, the fix
// under each one that needs it, and the console settings.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "SMART Calc readiness check for %s\n", r.Issuer)
	if r.Registration != "" {
		fmt.Fprintf(&b, "Registration: %s\n", r.Registration)
	}
	b.WriteString("\n")
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %-17s %s\n", strings.ToUpper(string(c.Status)), c.ID, c.Title)
		for _, line := range strings.Split(c.Detail, "\n") {
			if line != "" {
				fmt.Fprintf(&b, "      %s\n", line)
			}
		}
		if c.Fix != "" {
			fmt.Fprintf(&b, "      Fix: %s\n", c.Fix)
		}
	}
	if c := r.Console; c != nil {
		b.WriteString("\nWhat the EHR's app registration must say:\n")
		fmt.Fprintf(&b, "  Client id:     %s\n", c.ClientID)
		fmt.Fprintf(&b, "  Client type:   %s\n", c.ClientType)
		fmt.Fprintf(&b, "  Launch URI:    %s\n", c.LaunchURI)
		fmt.Fprintf(&b, "  Redirect URI:  %s\n", c.RedirectURI)
		fmt.Fprintf(&b, "  SMART version: %s\n", c.SMARTVersion)
		fmt.Fprintf(&b, "  Scopes:        %s\n", c.Scope)
	}
	fmt.Fprintf(&b, "\nSummary: %d pass, %d warn, %d fail, %d skip\n", r.Summary[Pass], r.Summary[Warn], r.Summary[Fail], r.Summary[Skip])
	_, err := io.WriteString(w, b.String())
	return err
}
