package ehrsim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// FaultInfo documents one fault a launch can ask for with
// /launch?patient=ID&fault=name[:arg],name2...
type FaultInfo struct {
	Name        string
	Arg         string // what the optional ":arg" is, or ""
	Description string
}

// Faults lists the faults a launch can carry. They are stored with the
// launch token and carried into the code and the tokens issued from it.
var Faults = []FaultInfo{
	{"scope-downgrade", "", "Grant only openid fhirUser launch online_access (of those requested), as Oracle Health does when a tenant trims scopes; FHIR reads then fail 403 insufficient_scope."},
	{"no-openid", "", "Drop openid, fhirUser and profile from the grant, so no id_token is issued."},
	{"no-refresh", "", "Drop online_access and offline_access and issue no refresh_token."},
	{"invalid_client", "", "The token endpoint answers 401 invalid_client for this launch's code."},
	{"invalid_grant", "", "The token endpoint answers 400 invalid_grant for this launch's code."},
	{"pkce-mismatch", "", "The code is bound to the code_challenge of another verifier than the app's, as when a second component (a browser library) also ran PKCE: the exchange fails with invalid_grant (PKCE verification failed)."},
	{"refresh-expired", "", "Refresh requests answer 400 invalid_grant (refresh token expired), so the app must ask for a relaunch."},
	{"token-slow", "duration, e.g. 5s", "The token endpoint waits before answering (default Config.FaultDelay, 3 s)."},
	{"token-5xx", "", "The token endpoint answers 503 with an HTML body, like a failing gateway."},
	{"token-expired", "", "The access token from the code exchange is already expired (expires_in 1); refreshed tokens are normal."},
	{"fhir-slow", "duration, e.g. 5s", "Every FHIR read and search waits before answering (default Config.FaultDelay, 3 s)."},
	{"fhir-5xx", "resource type, e.g. Observation", "FHIR reads and searches answer 500 OperationOutcome: all types, or only the one named."},
	{"fhir-403", "resource type, e.g. Condition", "FHIR reads and searches of that type (or all) answer 403 OperationOutcome, like a break-the-glass refusal."},
}

// faultSet is a parsed fault list.
type faultSet struct {
	scopeDowngrade, noOpenID, noRefresh    bool
	invalidClient, invalidGrant            bool
	pkceMismatch                           bool
	refreshExpired, token5xx, tokenExpired bool
	tokenDelay, fhirDelay                  time.Duration // 0 = not slow
	fhir5xx, fhir403                       map[string]bool
	names                                  []string // canonical, for display
}

// parseFaults parses a comma-separated fault list. def is the delay of slow
// faults given without a duration.
func parseFaults(list []string, def time.Duration) (faultSet, error) {
	var f faultSet
	for _, item := range list {
		for _, raw := range strings.Split(item, ",") {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				continue
			}
			name, arg, hasArg := strings.Cut(raw, ":")
			if hasArg && arg == "" {
				return f, fmt.Errorf("fault %q has an empty argument", raw)
			}
			noArg := func() error {
				if hasArg {
					return fmt.Errorf("fault %q takes no argument", name)
				}
				return nil
			}
			var err error
			switch name {
			case "scope-downgrade":
				f.scopeDowngrade, err = true, noArg()
			case "no-openid":
				f.noOpenID, err = true, noArg()
			case "no-refresh":
				f.noRefresh, err = true, noArg()
			case "invalid_client":
				f.invalidClient, err = true, noArg()
			case "invalid_grant":
				f.invalidGrant, err = true, noArg()
			case "pkce-mismatch":
				f.pkceMismatch, err = true, noArg()
			case "refresh-expired":
				f.refreshExpired, err = true, noArg()
			case "token-5xx":
				f.token5xx, err = true, noArg()
			case "token-expired":
				f.tokenExpired, err = true, noArg()
			case "token-slow":
				f.tokenDelay, err = faultDelay(arg, def)
			case "fhir-slow":
				f.fhirDelay, err = faultDelay(arg, def)
			case "fhir-5xx", "fhir-403":
				if hasArg && !isResourceType(arg) {
					return f, fmt.Errorf("fault %q: %q is not a resource type", name, arg)
				}
				m := &f.fhir5xx
				if name == "fhir-403" {
					m = &f.fhir403
				}
				if *m == nil {
					*m = map[string]bool{}
				}
				(*m)[arg] = true // "" means every type
			default:
				return f, fmt.Errorf("unknown fault %q (known: %s)", name, faultNames())
			}
			if err != nil {
				return f, err
			}
			f.names = append(f.names, raw)
		}
	}
	sort.Strings(f.names)
	return f, nil
}

func faultDelay(arg string, def time.Duration) (time.Duration, error) {
	if arg == "" {
		return def, nil
	}
	d, err := time.ParseDuration(arg)
	if err != nil || d <= 0 || d > time.Minute {
		return 0, fmt.Errorf("fault delay %q must be a duration between 0 and 1m", arg)
	}
	return d, nil
}

func faultNames() string {
	n := make([]string, len(Faults))
	for i, f := range Faults {
		n[i] = f.Name
	}
	return strings.Join(n, ", ")
}

// fhirFault reports whether FHIR requests for typ must fail with 500 or 403.
func (f faultSet) fhirFault(typ string) (fail5xx, forbid bool) {
	return f.fhir5xx[""] || f.fhir5xx[typ], f.fhir403[""] || f.fhir403[typ]
}

func (f faultSet) String() string { return strings.Join(f.names, ",") }
