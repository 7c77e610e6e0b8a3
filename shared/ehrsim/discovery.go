package ehrsim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/go-jose/go-jose/v4"
)

// initSigning prepares the id_token signer and the JWKS.
func (s *Server) initSigning(key *rsa.PrivateKey) error {
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return fmt.Errorf("ehrsim: signing key: %w", err)
		}
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("ehrsim: signing key: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return fmt.Errorf("ehrsim: signing key: %w", err)
	}
	s.signer, s.jwks = signer, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}
	return nil
}

// capabilities are advertised in the SMART configuration.
var capabilities = []string{
	"launch-ehr", "launch-standalone", "authorize-post",
	"client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
	"context-ehr-patient", "context-ehr-encounter", "context-standalone-patient", "context-banner", "context-style",
	"sso-openid-connect",
	"permission-v1", "permission-v2", "permission-offline", "permission-online", "permission-patient", "permission-user",
}

func (s *Server) scopesSupported(st *site) []string {
	out := []string{"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "online_access", "offline_access"}
	if !st.noWildcards {
		out = append(out, "patient/*.rs", "user/*.rs", "patient/*.read", "user/*.read")
	}
	var types []string
	for t := range searchParams {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		out = append(out, "patient/"+t+".rs", "patient/"+t+".read", "user/"+t+".rs", "user/"+t+".read")
	}
	return out
}

// authMethods are the token endpoint's client authentication methods as
// st advertises them.
func (st *site) authMethods() []string {
	if st.profile.authMethods != nil {
		return st.profile.authMethods
	}
	return []string{"none", "client_secret_basic", "private_key_jwt"}
}

func (s *Server) serveSMARTConfiguration(w http.ResponseWriter, r *http.Request, st *site) {
	writeDiscovery(w, r, map[string]any{
		// With sso-openid-connect, issuer is the id_tokens' issuer (SMART
		// App Launch 2.x conformance).
		"issuer":                                st.issuer,
		"jwks_uri":                              st.jwksURL,
		"authorization_endpoint":                st.authorizeURL,
		"token_endpoint":                        st.tokenURL,
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": st.authMethods(),
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES384", "RS384"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"response_types_supported":                         []string{"code"},
		"scopes_supported":                                 s.scopesSupported(st),
		"capabilities":                                     capabilities,
	})
}

func (s *Server) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request, st *site) {
	writeDiscovery(w, r, map[string]any{
		"issuer":                                st.issuer,
		"jwks_uri":                              st.jwksURL,
		"authorization_endpoint":                st.authorizeURL,
		"token_endpoint":                        st.tokenURL,
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "fhirUser", "profile"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "profile"},
		"token_endpoint_auth_methods_supported": st.authMethods(),
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	})
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) { writeDiscovery(w, r, s.jwks) }

// style is the smart_style_url document (the example of the SMART IG).
var style = map[string]string{
	"color_background":     "#edeae3",
	"color_error":          "#9e2d2d",
	"color_highlight":      "#69b5ce",
	"color_modal_backdrop": "",
	"color_success":        "#498e49",
	"color_text":           "#303030",
	"dim_border_radius":    "6px",
	"dim_font_size":        "13px",
	"dim_spacing_size":     "20px",
	"font_family_body":     "Georgia, Times, 'Times New Roman', serif",
	"font_family_heading":  "\"HelveticaNeue-Light\", Helvetica, Arial, 'Lucida Grande', sans-serif",
}

func (s *Server) serveStyle(w http.ResponseWriter, r *http.Request) { writeDiscovery(w, r, style) }

// writeDiscovery answers a public JSON document, readable from any origin.
func writeDiscovery(w http.ResponseWriter, r *http.Request, v any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	json.NewEncoder(w).Encode(v)
}
