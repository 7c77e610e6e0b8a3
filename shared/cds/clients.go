package cds

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/config"
)

// Client is a CDS client (an EHR) allowed to call the services. It is
// configuration: deployers list the EHRs as a JSON array (see
// ParseClients), for example
//
//	[{"id": "epic-prod",
//	  "iss": "https://ehr.example.org/cds-client",
//	  "jwks_url": "https://ehr.example.org/cds-client/jwks",
//	  "fhir_hosts": ["ehr.example.org"]}]
type Client struct {
	// ID names the client in logs.
	ID string `json:"id"`
	// Issuer is the exact iss of the client's JWTs.
	Issuer string `json:"iss"`
	// JWKSURL is where the client publishes its public keys (a JWK Set).
	// A JWT's jku header, when present, must equal it.
	JWKSURL string `json:"jwks_url"`
	// FHIRHosts are the only hosts (host or host:port) the request's
	// fhirServer may name: SMART Calc sends the fhirAuthorization token
	// nowhere else. Required: a client without it is refused at start-up.
	FHIRHosts []string `json:"fhir_hosts,omitempty"`
}

// ParseClients decodes the JSON array of CDS clients strictly (unknown
// fields and trailing data are errors) and validates each entry. Plain
// http URLs are accepted only for loopback hosts, and only when
// allowLoopbackHTTP is set (local runs and tests).
func ParseClients(data []byte, allowLoopbackHTTP bool) ([]Client, error) {
	out, err := config.DecodeList[Client](data)
	if err != nil {
		return nil, fmt.Errorf("cds: clients: %w", err)
	}
	if err := validateClients(out, allowLoopbackHTTP); err != nil {
		return nil, err
	}
	return out, nil
}

// validateClients checks every client and that no issuer is listed twice.
func validateClients(cs []Client, allowLoopbackHTTP bool) error {
	seen := map[string]bool{}
	for i, c := range cs {
		name := c.ID
		if name == "" {
			name = fmt.Sprintf("clients[%d]", i)
		}
		if c.ID == "" {
			return fmt.Errorf("cds: %s: id is required", name)
		}
		if c.Issuer == "" {
			return fmt.Errorf("cds: %s: iss is required", name)
		}
		if seen[c.Issuer] {
			return fmt.Errorf("cds: %s: iss %q is listed twice", name, c.Issuer)
		}
		seen[c.Issuer] = true
		if err := checkURL(c.JWKSURL, allowLoopbackHTTP); err != nil {
			return fmt.Errorf("cds: %s: jwks_url: %w", name, err)
		}
		if len(c.FHIRHosts) == 0 {
			return fmt.Errorf("cds: %s: fhir_hosts is required: list the hosts of the FHIR servers this client may name as fhirServer (SMART Calc sends the token it is lent nowhere else)", name)
		}
		for _, h := range c.FHIRHosts {
			if h == "" || strings.ContainsAny(h, "/?#@ ") {
				return fmt.Errorf("cds: %s: fhir_hosts: %q is not a host or host:port", name, h)
			}
		}
	}
	return nil
}

// checkURL accepts an absolute https URL without user info or fragment;
// http only for loopback hosts when allowed.
func checkURL(s string, allowLoopbackHTTP bool) error {
	u, err := url.Parse(s)
	switch {
	case s == "" || err != nil || u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", s)
	case u.User != nil || u.Fragment != "":
		return fmt.Errorf("%q must not carry user info or a fragment", s)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowLoopbackHTTP && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q must use https", s)
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// allowsFHIRServer reports whether the client may direct SMART Calc to
// the FHIR base fhirServer.
func (c *Client) allowsFHIRServer(u *url.URL) bool {
	for _, h := range c.FHIRHosts {
		if strings.EqualFold(h, u.Host) || strings.EqualFold(h, u.Hostname()) && u.Port() == "" {
			return true
		}
	}
	return false
}
