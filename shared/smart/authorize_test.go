package smart

import (
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestAuthorizeURLMatchesOAuth2 holds the hand-written authorization
// request to exactly what x/oauth2's AuthCodeURL builds.
func TestAuthorizeURLMatchesOAuth2(t *testing.T) {
	tests := []struct {
		name, endpoint, launch, scope string
	}{
		{"ehr launch", "https://authorization.example/tenants/t1/authorize", "a b&c=d/é", "launch openid fhirUser patient/Observation.rs online_access"},
		{"standalone", "https://authorization.example/authorize", "", "launch/patient patient/*.read"},
		{"endpoint with a query", "https://ehr.example/oauth2/authorize?tenant=x", "L1", "launch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			conf := oauth2.Config{ClientID: "client id+1", Endpoint: oauth2.Endpoint{AuthURL: tt.endpoint},
				RedirectURL: "https://app.example/callback?x=1", Scopes: strings.Fields(tt.scope)}
			opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", "https://ehr.example/fhir/r4")}
			if tt.launch != "" {
				opts = append(opts, oauth2.SetAuthURLParam("launch", tt.launch))
			}
			want := conf.AuthCodeURL("st/ate+", opts...)
			got := authorizeURL(tt.endpoint, "client id+1", "https://app.example/callback?x=1", tt.scope, "st/ate+",
				oauth2.S256ChallengeFromVerifier(verifier), "https://ehr.example/fhir/r4", tt.launch, "")
			if got != want {
				t.Errorf("authorizeURL\n got  %s\n want %s", got, want)
			}
		})
	}
}
