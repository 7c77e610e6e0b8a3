package readiness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// capabilityStatement is the part of a CapabilityStatement the check
// reads.
type capabilityStatement struct {
	ResourceType string `json:"resourceType"`
	FHIRVersion  string `json:"fhirVersion"`
	Rest         []struct {
		Mode     string `json:"mode"`
		Resource []struct {
			Type        string `json:"type"`
			Interaction []struct {
				Code string `json:"code"`
			} `json:"interaction"`
			SearchParam []struct {
				Name string `json:"name"`
			} `json:"searchParam"`
		} `json:"resource"`
	} `json:"rest"`
}

// fhir reads {iss}/metadata and compares it with what the assessment
// reads (assess.Needs): R4, each resource type with its interaction and
// search parameters. What is missing is named with the calculators it
// affects.
func (x *run) fhir(ctx context.Context) {
	cs, err := x.metadata(ctx)
	if err != nil {
		x.set("fhir", Fail, err.Error(), fmt.Sprintf("Check that %s is the EHR's FHIR R4 base: its /metadata must answer a CapabilityStatement.", x.iss))
		return
	}
	if !strings.HasPrefix(cs.FHIRVersion, "4.0") {
		x.set("fhir", Fail, fmt.Sprintf("The CapabilityStatement says FHIR %q, not R4 (4.0.x). SMART Calc reads FHIR R4 only.", cs.FHIRVersion),
			fmt.Sprintf("Register the EHR's R4 FHIR base as %s (for example …/r4/<tenant> at Oracle Health, …/api/FHIR/R4 at Epic).", field(x.reg, "iss")))
		return
	}
	type resource struct {
		interactions, params []string
	}
	have := map[string]resource{}
	for _, rest := range cs.Rest {
		if rest.Mode != "" && rest.Mode != "server" {
			continue
		}
		for _, r := range rest.Resource {
			var res resource
			for _, i := range r.Interaction {
				res.interactions = append(res.interactions, i.Code)
			}
			for _, p := range r.SearchParam {
				res.params = append(res.params, p.Name)
			}
			have[r.Type] = res
		}
	}
	var problems []string
	fatal := false
	for _, n := range x.needs {
		res, ok := have[n.Resource]
		var what string
		switch {
		case !ok:
			what = "not in the CapabilityStatement"
		case n.Interaction == fhir.InteractionRead && len(res.interactions) > 0 && !slices.Contains(res.interactions, "read"):
			what = "no read interaction"
		case n.Interaction == fhir.InteractionSearch && len(res.interactions) > 0 && !slices.Contains(res.interactions, "search-type"):
			what = "no search-type interaction"
		default:
			var missing []string
			for _, p := range n.SearchParams {
				if len(res.params) > 0 && !slices.Contains(res.params, p) && !(p == "patient" && slices.Contains(res.params, "subject")) {
					missing = append(missing, p)
				}
			}
			if len(missing) > 0 {
				what = "no search parameter " + strings.Join(missing, ", ")
			}
		}
		if what == "" {
			continue
		}
		if n.Resource == "Patient" {
			fatal = true
		}
		problems = append(problems, fmt.Sprintf("%s: %s. Without it: %s (calculators %s).", n.Resource, what, n.Without, strings.Join(n.Calculators, ", ")))
	}
	switch {
	case fatal:
		x.set("fhir", Fail, "FHIR "+cs.FHIRVersion+".\n"+strings.Join(problems, "\n"), "The EHR must allow Patient read for SMART Calc to assess anyone: ask the EHR to enable it for the app.")
	case len(problems) > 0:
		x.set("fhir", Warn, "FHIR "+cs.FHIRVersion+".\n"+strings.Join(problems, "\n"),
			"Ask the EHR to enable the missing resources and search parameters for the app; until then the assessment asks the clinician for those inputs.")
	default:
		var types []string
		for _, n := range x.needs {
			types = append(types, n.Resource)
		}
		x.set("fhir", Pass, fmt.Sprintf("FHIR %s, with %s and the search parameters the assessment sends.", cs.FHIRVersion, strings.Join(types, ", ")), "")
	}
}

// metadata GETs {iss}/metadata without a token, as a FHIR server answers
// it to anyone.
func (x *run) metadata(ctx context.Context) (*capabilityStatement, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := strings.TrimSuffix(x.iss, "/") + "/metadata"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	c := x.d.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	var cs capabilityStatement
	if err := json.Unmarshal(body, &cs); err != nil || cs.ResourceType != "CapabilityStatement" {
		return nil, fmt.Errorf("GET %s: not a FHIR CapabilityStatement in JSON", u)
	}
	return &cs, nil
}
