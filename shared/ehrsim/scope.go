package ehrsim

import (
	"net/url"
	"regexp"
	"strings"
)

// resourceScope is one parsed SMART resource scope, v1 (patient/Observation.read)
// or v2 (patient/Observation.rs?category=laboratory).
type resourceScope struct {
	context string     // patient, user or system
	typ     string     // resource type or "*"
	perms   string     // subset of "cruds", in that order
	query   url.Values // v2 query restriction, or nil
}

var (
	scopeRE  = regexp.MustCompile(`^(patient|user|system)/([A-Z][A-Za-z]*|\*)\.([a-z*]+)(\?.*)?$`)
	v2PermRE = regexp.MustCompile(`^c?r?u?d?s?$`)
)

// nonResourceScopes are the other scopes the sandbox can grant.
var nonResourceScopes = map[string]bool{
	"openid": true, "fhirUser": true, "profile": true,
	"launch": true, "launch/patient": true, "launch/encounter": true,
	"online_access": true, "offline_access": true,
}

// parseResourceScope parses a resource scope. v1 permissions map to v2 as the
// IG says: read -> rs, write -> cud, * -> cruds. Letters out of order are
// not a scope.
func parseResourceScope(s string) (resourceScope, bool) {
	m := scopeRE.FindStringSubmatch(s)
	if m == nil {
		return resourceScope{}, false
	}
	rs := resourceScope{context: m[1], typ: m[2]}
	switch p := m[3]; {
	case p == "read":
		rs.perms = "rs"
	case p == "write":
		rs.perms = "cud"
	case p == "*":
		rs.perms = "cruds"
	case p != "" && v2PermRE.MatchString(p):
		rs.perms = p
	default:
		return resourceScope{}, false
	}
	if m[4] != "" {
		if m[3] == "read" || m[3] == "write" || m[3] == "*" {
			return resourceScope{}, false // query restrictions are v2 only
		}
		q, err := url.ParseQuery(m[4][1:])
		if err != nil || len(q) == 0 {
			return resourceScope{}, false
		}
		rs.query = q
	}
	return rs, true
}

// covers reports whether an allowed scope a permits granting r.
func (a resourceScope) covers(r resourceScope) bool {
	if a.context != r.context || (a.typ != "*" && a.typ != r.typ) {
		return false
	}
	for _, p := range r.perms {
		if !strings.ContainsRune(a.perms, p) {
			return false
		}
	}
	return a.query == nil || a.query.Encode() == r.query.Encode()
}

// grantScopes returns the requested scopes this client may have, in request
// order without duplicates. Unknown, malformed and system/ scopes are
// dropped, as real servers do.
func grantScopes(requested []string, allowed string) []string {
	var allowRes []resourceScope
	allowOther := map[string]bool{}
	for _, a := range strings.Fields(allowed) {
		if rs, ok := parseResourceScope(a); ok {
			allowRes = append(allowRes, rs)
		} else {
			allowOther[a] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range requested {
		if seen[s] {
			continue
		}
		seen[s] = true
		if nonResourceScopes[s] {
			if allowed == "" || allowOther[s] {
				out = append(out, s)
			}
			continue
		}
		rs, ok := parseResourceScope(s)
		if !ok || rs.context == "system" {
			continue
		}
		if allowed == "" {
			out = append(out, s)
			continue
		}
		for _, a := range allowRes {
			if a.covers(rs) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// keepScopes returns the scopes of granted that keep reports true for.
func keepScopes(granted []string, keep func(string) bool) []string {
	var out []string
	for _, s := range granted {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func hasScope(scopes []string, s string) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

// scopeSubset reports whether every scope in sub is in of.
func scopeSubset(sub, of []string) bool {
	for _, s := range sub {
		if !hasScope(of, s) {
			return false
		}
	}
	return true
}

// hasPatientScope reports whether any scope is a patient/ resource scope.
func hasPatientScope(scopes []string) bool {
	for _, s := range scopes {
		if rs, ok := parseResourceScope(s); ok && rs.context == "patient" {
			return true
		}
	}
	return false
}

// applicable returns the granted resource scopes that allow perm ('r' read,
// 's' search) on typ.
func applicable(scopes []string, typ string, perm rune) []resourceScope {
	var out []resourceScope
	for _, s := range scopes {
		rs, ok := parseResourceScope(s)
		if !ok || rs.context == "system" || (rs.typ != "*" && rs.typ != typ) || !strings.ContainsRune(rs.perms, perm) {
			continue
		}
		out = append(out, rs)
	}
	return out
}
