package readiness

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// idToken finds the issuer the EHR's id_tokens will carry and the keys
// that sign them, and compares the issuer with what the registration
// accepts: id_token_issuer, or else the discovered issuer and iss (as the
// callback does).
func (x *run) idToken(ctx context.Context) {
	if !hasScope(x.reg.Scope, "openid") {
		x.set("id-token", Pass, "The scope has no openid: no id_token is requested (and no fhirUser comes back).", "")
		return
	}
	disc := x.flow.Discovery
	issuer, from := x.cfg.Issuer, "the SMART configuration's issuer"
	if issuer == "" {
		if oc, err := disc.OpenIDConfiguration(ctx, x.iss); err == nil && oc.Issuer != "" {
			issuer, from = oc.Issuer, "the OpenID configuration at the FHIR base"
		}
	}
	accepted := []string{x.reg.IDTokenIssuer}
	if x.reg.IDTokenIssuer == "" {
		accepted = []string{x.iss}
		if x.cfg.Issuer != "" && x.cfg.Issuer != x.iss {
			accepted = []string{x.cfg.Issuer, x.iss}
		}
	}
	var notes []string
	switch {
	case issuer == "":
		notes = append(notes, fmt.Sprintf("The EHR names no issuer (none in its SMART configuration, no OpenID configuration at the FHIR base); SMART Calc accepts id_tokens from %s, which the first launch checks.", strings.Join(accepted, " or ")))
	case !slices.Contains(accepted, issuer):
		fix := fmt.Sprintf("Set %s to %q.", field(x.reg, "id_token_issuer"), issuer)
		x.set("id-token", Fail, fmt.Sprintf("The EHR's id_tokens come from %s (%s), but registration %q accepts only %s: every launch would fail with id_token_invalid.", issuer, from, x.reg.ID, strings.Join(accepted, " or ")), fix)
		return
	case x.reg.IDTokenIssuer == "" && issuer != x.iss:
		notes = append(notes, fmt.Sprintf("The id_token issuer %s (%s) is not the FHIR base; SMART Calc accepts it because discovery names it. Setting id_token_issuer to it pins it.", issuer, from))
	default:
		notes = append(notes, fmt.Sprintf("id_tokens come from %s (%s), which the registration accepts.", issuer, from))
	}

	// The keys: the jwks_uri of the SMART configuration, as the callback
	// uses, else the issuer's OpenID configuration.
	jwks := x.cfg.JWKSURI
	if issuer != "" {
		if err := x.flow.CheckEndpoint(x.reg, "issuer", issuer); err == nil {
			oc, err := disc.OpenIDConfiguration(ctx, issuer)
			switch {
			case err != nil && jwks == "":
				x.set("id-token", Fail, strings.Join(notes, " ")+" "+strings.TrimPrefix(err.Error(), "smart: ")+"; without it (and with no jwks_uri in the SMART configuration) no id_token can be verified.",
					fmt.Sprintf("Check that %s is the EHR's id_token issuer, or set %s to it.", issuer, field(x.reg, "id_token_issuer")))
				return
			case err != nil:
				notes = append(notes, "Its OpenID configuration could not be read ("+strings.TrimPrefix(err.Error(), "smart: ")+"); SMART Calc does not need it, since the SMART configuration names jwks_uri.")
			case oc.Issuer != issuer:
				notes = append(notes, fmt.Sprintf("Its OpenID configuration names another issuer, %s.", oc.Issuer))
			default:
				notes = append(notes, "Its OpenID configuration is reachable.")
				if jwks == "" {
					jwks = oc.JWKSURI
				}
			}
		}
	}
	if jwks == "" {
		x.set("id-token", Warn, strings.Join(notes, " ")+" The EHR names no jwks_uri: id_tokens cannot be verified until it does.", "")
		return
	}
	if err := x.flow.CheckEndpoint(x.reg, "jwks_uri", jwks); err != nil {
		x.set("id-token", Skip, strings.Join(notes, " ")+" The signing keys were not fetched: "+err.Error()+" (see hosts).", "")
		return
	}
	ks, err := disc.KeySet(ctx, jwks)
	if err != nil {
		x.set("id-token", Fail, strings.Join(notes, " ")+" "+strings.TrimPrefix(err.Error(), "smart: ")+": id_tokens cannot be verified, so launches fail with id_token_invalid.",
			"Check the EHR's jwks_uri ("+jwks+") from this network; it is the EHR's to serve.")
		return
	}
	n := 0
	for _, k := range ks.Keys {
		if k.Use == "" || k.Use == "sig" {
			n++
		}
	}
	if n == 0 {
		x.set("id-token", Fail, strings.Join(notes, " ")+" The JWK Set at "+jwks+" has no signing key.", "Ask the EHR: its jwks_uri serves no key SMART Calc can verify id_tokens with.")
		return
	}
	notes = append(notes, fmt.Sprintf("%d signing key(s) at %s.", n, jwks))
	x.set("id-token", Pass, strings.Join(notes, " "), "")
}
