package readiness

import (
	"fmt"
	"slices"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// scopeSyntax checks the registration's scope: SMART syntax, one SMART
// version, a version the EHR advertises, and a scope for every resource
// type the assessment reads.
func (x *run) scopeSyntax() {
	scope := x.reg.Scope
	v1, v2, bad := assess.ScopeSyntax(scope)
	caps := x.cfg.Capabilities
	if len(bad) > 0 {
		x.set("scope-syntax", Fail, fmt.Sprintf("Not SMART scopes: %s. SMART v2 permissions are letters of cruds in that order (patient/Observation.rs); v1 uses .read, .write or .*. An EHR ignores, replaces or refuses such a scope.", strings.Join(bad, " ")),
			fmt.Sprintf("In %s, write each as patient/<Type>.rs (SMART v2) or patient/<Type>.read (SMART v1), the form the EHR registered the app with.", field(x.reg, "scope")))
		return
	}
	var notes []string
	version, other := "v2", "v1"
	if len(v1) > 0 && len(v2) == 0 {
		version, other = "v1", "v2"
	}
	if len(v1) > 0 && len(v2) > 0 {
		x.set("scope-syntax", Warn, fmt.Sprintf("The scope mixes SMART v1 (%s) and v2 (%s). An EHR grants the syntax the app was registered with; Oracle Health drops the other silently.", strings.Join(v1, " "), strings.Join(v2, " ")),
			fmt.Sprintf("Use one syntax in %s: v2 %q, or v1 %q, and register the app with that SMART version.", field(x.reg, "scope"), assess.ConvertScope(scope, false), assess.ConvertScope(scope, true)))
		return
	}
	hasV1, hasV2 := slices.Contains(caps, "permission-v1"), slices.Contains(caps, "permission-v2")
	switch {
	case !hasV1 && !hasV2:
		notes = append(notes, "The EHR advertises neither permission-v1 nor permission-v2; the first launch's granted scope shows which syntax it accepts.")
	case version == "v2" && !hasV2:
		x.set("scope-syntax", Fail, "The scope uses SMART v2 syntax (.rs), but the EHR advertises only permission-v1: it will not grant them.",
			fmt.Sprintf("Set %s to %q and register the app as SMART v1.", field(x.reg, "scope"), assess.ConvertScope(scope, true)))
		return
	case version == "v1" && !hasV1:
		x.set("scope-syntax", Fail, "The scope uses SMART v1 syntax (.read), but the EHR advertises only permission-v2: it will not grant them.",
			fmt.Sprintf("Set %s to %q and register the app as SMART v2.", field(x.reg, "scope"), assess.ConvertScope(scope, false)))
		return
	}
	var missing []string
	for _, n := range x.needs {
		if !coversType(scope, n.Resource) {
			missing = append(missing, fmt.Sprintf("%s (%s; calculators %s)", n.Resource, n.Without, strings.Join(n.Calculators, ", ")))
		}
	}
	if len(missing) > 0 {
		x.set("scope-syntax", Warn, fmt.Sprintf("SMART %s scopes, but none for: %s.", version, strings.Join(missing, "; ")),
			fmt.Sprintf("Add a read and search scope for each type to %s, and select it in the EHR's app registration.", field(x.reg, "scope")))
		return
	}
	notes = append([]string{fmt.Sprintf("SMART %s scopes for every resource type the assessment reads; register the app as SMART %s (an EHR grants a %s app no %s scopes).", version, version, version, other)}, notes...)
	x.set("scope-syntax", Pass, strings.Join(notes, " "), "")
}

// coversType reports whether scope has a patient or user scope for typ
// (or a wildcard).
func coversType(scope, typ string) bool {
	for _, s := range strings.Fields(scope) {
		for _, ctx := range []string{"patient/", "user/"} {
			if strings.HasPrefix(s, ctx+typ+".") || strings.HasPrefix(s, ctx+"*.") {
				return true
			}
		}
	}
	return false
}

// scopesSupported names every requested scope the EHR does not list in
// scopes_supported. The list need not be exhaustive (SMART App Launch
// conformance), so these warn.
func (x *run) scopesSupported() {
	list := x.cfg.ScopesSupported
	if len(list) == 0 {
		x.set("scopes-supported", Warn, "The EHR does not list scopes_supported. The first launch shows what it grants: the callback logs scope_requested and scope_granted.", "")
		return
	}
	_, _, bad := assess.ScopeSyntax(x.reg.Scope)
	var missing []string
	for _, s := range strings.Fields(x.reg.Scope) {
		if slices.Contains(bad, s) || supported(list, s) {
			continue
		}
		missing = append(missing, s)
	}
	if len(missing) > 0 {
		x.set("scopes-supported", Warn, fmt.Sprintf("Not in the EHR's scopes_supported, so probably not granted: %s. (The list need not be complete; the first launch's granted scope is the answer.)", strings.Join(missing, " ")),
			fmt.Sprintf("Remove them from %s or ask the EHR to support them; the assessment asks the clinician for what they would have read.", field(x.reg, "scope")))
		return
	}
	x.set("scopes-supported", Pass, fmt.Sprintf("All %d requested scopes are in scopes_supported.", len(strings.Fields(x.reg.Scope))), "")
}

// supported reports whether s is in list, directly or under a wildcard
// (patient/*.rs covers patient/Observation.rs and its subsets).
func supported(list []string, s string) bool {
	if slices.Contains(list, s) {
		return true
	}
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok {
		return false
	}
	_, perm, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	perm, _, _ = strings.Cut(perm, "?")
	for _, l := range list {
		lctx, lrest, ok := strings.Cut(l, "/")
		if !ok || lctx != ctx {
			continue
		}
		ltyp, lperm, ok := strings.Cut(lrest, ".")
		if !ok || ltyp != "*" {
			continue
		}
		if lperm == perm || (lperm != "read" && perm != "read" && allIn(perm, lperm)) {
			return true
		}
	}
	return false
}

func allIn(p, of string) bool {
	for _, c := range p {
		if !strings.ContainsRune(of, c) {
			return false
		}
	}
	return true
}

// authMethods checks token_endpoint_auth_methods_supported (and, for
// private_key_jwt, the signing algorithms) against client_auth.
func (x *run) authMethods() {
	a := x.reg.ClientAuth
	methods := x.cfg.TokenEndpointAuthMethodsSupported
	if a.Type == smart.AuthPublic {
		x.set("auth-methods", Pass, "A public client sends only its client_id to the token endpoint.", "")
		return
	}
	if len(methods) == 0 {
		x.set("auth-methods", Warn, "The EHR does not list token_endpoint_auth_methods_supported; the client-auth check below tells whether it accepts "+a.Type+".", "")
		return
	}
	if !slices.Contains(methods, a.Type) {
		x.set("auth-methods", Fail, fmt.Sprintf("The token endpoint supports %v, not %s.", methods, a.Type),
			fmt.Sprintf("Set %s to one the EHR supports (SMART Calc supports client_secret_basic and private_key_jwt), registered the same way in the EHR.", field(x.reg, "client_auth")))
		return
	}
	if a.Type == smart.AuthPrivateKeyJWT {
		algs := x.cfg.TokenEndpointAuthSigningAlgValuesSupported
		switch {
		case len(algs) == 0:
			x.set("auth-methods", Warn, "private_key_jwt is supported, but the EHR lists no token_endpoint_auth_signing_alg_values_supported.", "")
			return
		case !slices.Contains(algs, a.Alg):
			x.set("auth-methods", Fail, fmt.Sprintf("The EHR verifies assertions signed with %v, not %s.", algs, a.Alg),
				fmt.Sprintf("Set %s to one of %v (ES384 needs a P-384 key, RS384 an RSA key of 2048 bits or more) and register the matching public key.", field(x.reg, "client_auth.alg"), algs))
			return
		}
		x.set("auth-methods", Pass, fmt.Sprintf("The token endpoint supports private_key_jwt with %s.", a.Alg), "")
		return
	}
	x.set("auth-methods", Pass, "The token endpoint supports "+a.Type+".", "")
}
