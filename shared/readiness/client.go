package readiness

import (
	"context"
	"fmt"
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/smart"
)

// redirectURI asks the authorization endpoint, with an unsupported
// response_type (so no code is ever issued), whether it knows the client
// id and its Redirect URI: a server that knows both redirects back with an
// error; one that does not must not redirect (RFC 6749 §4.1.2.1).
func (x *run) redirectURI(ctx context.Context) {
	authz := x.cfg.AuthorizationEndpoint
	if !x.allowed[authz] {
		x.set("redirect-uri", Skip, "Not run: the authorization endpoint's host is not allowed (see hosts).", "")
		return
	}
	redirect := x.flow.RedirectURIFor(x.reg)
	fix := fmt.Sprintf("In the EHR's app registration for client_id %q, enter exactly %s as a Redirect URI, character for character (no trailing slash, no query), and check that %s is the id the EHR issued.",
		x.reg.ClientID, redirect, field(x.reg, "client_id"))
	p, err := x.flow.ProbeAuthorize(ctx, x.reg, authz, x.iss)
	switch {
	case err != nil:
		x.set("redirect-uri", Warn, "The authorization endpoint could not be asked: "+strings.TrimPrefix(err.Error(), "smart: ")+". The Redirect URI is checked at the first launch.", fix)
	case p.ToRedirectURI:
		x.set("redirect-uri", Pass, fmt.Sprintf("The EHR redirected back to %s (with %s), so it knows client_id %q and accepts this Redirect URI. The request asked for response_type %s, so no code was issued.",
			redirect, nonEmpty(p.Error, "no error"), x.reg.ClientID, smart.ProbeResponseType), "")
	case p.Elsewhere != "":
		x.set("redirect-uri", Warn, fmt.Sprintf("The EHR sent the browser to %s (a sign-in page?) before checking the client, so the Redirect URI is checked at the first launch.", p.Elsewhere), fix)
	default:
		x.set("redirect-uri", Fail, fmt.Sprintf("The EHR answered HTTP %d without redirecting back to %s: it does not know client_id %q, or that Redirect URI is not registered for it (a server must not redirect to a Redirect URI it does not know). A launch stops at the EHR's error page.",
			p.Status, redirect, x.reg.ClientID), fix)
	}
}

// clientAuth exchanges a made-up code with the registration's client
// authentication. invalid_grant means the EHR accepted the client.
func (x *run) clientAuth(ctx context.Context) {
	token := x.cfg.TokenEndpoint
	if !x.allowed[token] {
		x.set("client-auth", Skip, "Not run: the token endpoint's host is not allowed (see hosts); no credential was sent.", "")
		return
	}
	a := x.reg.ClientAuth
	p, err := x.flow.ProbeClient(ctx, x.reg, token)
	if err != nil {
		if smart.IsMisconfigured(err) {
			name := a.Secret
			if a.Type == smart.AuthPrivateKeyJWT {
				name = a.Key
			}
			x.set("client-auth", Fail, "SMART Calc could not build its client authentication: "+strings.TrimPrefix(err.Error(), "smart: ")+". Nothing was sent.",
				fmt.Sprintf("Give the secret named %q its value: locally the variable SMARTCALC_SECRET_… that the error names; deployed, a version in Secret Manager whose number is in secret_versions (a PEM private key for private_key_jwt).", name))
			return
		}
		x.set("client-auth", Fail, "The token endpoint could not be reached: "+strings.TrimPrefix(err.Error(), "smart: ")+".",
			fmt.Sprintf("Check that %s is reachable from where SMART Calc runs.", token))
		return
	}
	said := p.Error
	if p.Description != "" {
		said += ": " + p.Description
	}
	if said == "" {
		said = fmt.Sprintf("HTTP %d without an OAuth error", p.Status)
	}
	first := "At the first launch the exchange also checks the redirect_uri and PKCE."
	if smart.NamesPKCE(p.Description) {
		first = "The EHR's answer names PKCE: likely cause at a launch, " + smart.InvalidGrantCauses(x.reg, x.flow.RedirectURIFor(x.reg), p.Description)[0].String() + "."
	}
	switch {
	case p.ClientAccepted():
		x.set("client-auth", Pass, fmt.Sprintf("The EHR accepted %s client authentication for client_id %q and refused only the made-up code (%s). %s", a.Type, x.reg.ClientID, said, first), "")
	case p.ClientRefused():
		var fix string
		switch a.Type {
		case smart.AuthPublic:
			fix = fmt.Sprintf("The EHR does not accept client_id %q as a public client: if the EHR registered the app as confidential, set %s to client_secret_basic with the secret's name (or private_key_jwt); otherwise check client_id.", x.reg.ClientID, field(x.reg, "client_auth"))
		case smart.AuthClientSecretBasic:
			fix = fmt.Sprintf("Check that the secret named %q holds the EHR's current secret for client_id %q, byte for byte (no trailing newline), and that its version is in secret_versions; if the EHR registered the app as public, set %s to {\"type\": \"public\"}.", a.Secret, x.reg.ClientID, field(x.reg, "client_auth"))
		case smart.AuthPrivateKeyJWT:
			fix = fmt.Sprintf("Register the public key of the private key named %q with the EHR under kid %q (alg %s), or correct %s; if the EHR registered the app as public, set client_auth to {\"type\": \"public\"}. Check this server's clock.", a.Key, a.KID, a.Alg, field(x.reg, "client_auth"))
		}
		x.set("client-auth", Fail, fmt.Sprintf("The EHR refused %s client authentication for client_id %q (%s): a launch would fail with invalid_client.", a.Type, x.reg.ClientID, said), fix)
	case p.Error == "unauthorized_client":
		x.set("client-auth", Fail, fmt.Sprintf("The EHR says client_id %q may not use the authorization code grant (%s).", x.reg.ClientID, said),
			"Ask the EHR to enable the app for user launches (authorization code) in this tenant.")
	default:
		x.set("client-auth", Warn, fmt.Sprintf("The EHR's answer does not tell whether it accepted the client authentication (%s). The first launch does.", said), "")
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
