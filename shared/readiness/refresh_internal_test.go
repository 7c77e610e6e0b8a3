package readiness

import "testing"

func TestVendorOf(t *testing.T) {
	for _, tc := range []struct{ iss, token, want string }{
		{"https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4", "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token", vendorEpic},
		{"https://epicproxy.example.org/FHIRProxy/api/FHIR/R4/", "https://epicproxy.example.org/FHIRProxy/oauth2/token", vendorEpic},
		{"https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
			"https://authorization.cerner.com/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d/protocols/oauth2/profiles/smart-v1/token", vendorOracle},
		{"https://ehr.example/fhir", "https://ehr.example/oauth2/token", ""},
		{"https://ehr.example/api/FHIR/R4", "https://ehr.example/token", ""},
		{"::", "https://ehr.example/oauth2/token", ""},
	} {
		if got := vendorOf(tc.iss, tc.token); got != tc.want {
			t.Errorf("vendorOf(%q, %q) = %q, want %q", tc.iss, tc.token, got, tc.want)
		}
	}
}
