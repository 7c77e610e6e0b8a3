package smart

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smartcalc-app/smartcalc/shared/store"
)

// idTokenAlgs are the id_token signature algorithms accepted: SMART
// requires RS256; ES* are common. Never "none" or HMAC.
var idTokenAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}

// fhirUserRef matches a fhirUser claim: an absolute or relative reference to
// a Patient, Practitioner, PractitionerRole, RelatedPerson or Person, whose
// id (after the last slash) isFHIRID also checks. It is compiled on first
// use: only a callback with an id_token needs it.
var fhirUserRef = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:[^\s?#]*/)?(?:Patient|Practitioner|PractitionerRole|RelatedPerson|Person)/[^/]+$`)
})

var errNoKey = errors.New("no JWKS key matches the id_token's kid and alg")

// verifyIDToken verifies an id_token (OIDC Core §3.1.3.7, SMART App Launch
// §OpenID Connect) and returns its fhirUser. Keys come from the jwks_uri
// that discovery found at launch (stored with the launch, so a cold
// instance makes no discovery request), else from the issuer's
// openid-configuration. The issuer must be the registration's
// id_token_issuer, else the discovered issuer or iss. It fails closed: any
// doubt is an error.
func (f *Flow) verifyIDToken(ctx context.Context, reg *Registration, l *store.Launch, raw string) (string, error) {
	tok, err := jwt.ParseSigned(raw, idTokenAlgs)
	if err != nil {
		return "", fmt.Errorf("id_token: %w", err)
	}
	if len(tok.Headers) != 1 {
		return "", errors.New("id_token: want exactly one signature")
	}
	h := tok.Headers[0]

	var issuers []string
	switch {
	case reg.IDTokenIssuer != "":
		issuers = []string{reg.IDTokenIssuer}
	case l.DiscoveryIssuer != "":
		issuers = []string{l.DiscoveryIssuer, l.Issuer}
	default:
		issuers = []string{l.Issuer}
	}
	jwksURI := l.JWKSURI
	if jwksURI == "" {
		// The openid-configuration URL derives from an issuer that may
		// come from the EHR's discovery document: the same rules as any
		// endpoint apply before it is fetched.
		if err := f.endpointAllowed(reg, "issuer (openid-configuration)", issuers[0]); err != nil {
			return "", fmt.Errorf("id_token: %v", err)
		}
		if jwksURI, err = f.Discovery.openIDJWKSURI(ctx, issuers[0]); err != nil {
			return "", fmt.Errorf("id_token: no keys: %w", err)
		}
	}
	// Checked again before the fetch: registrations may have changed
	// since the launch, and an openid-configuration may name any host.
	if err := f.endpointAllowed(reg, "jwks_uri", jwksURI); err != nil {
		return "", fmt.Errorf("id_token: %v", err)
	}

	var claims jwt.Claims
	extra := map[string]any{}
	for refresh := false; ; refresh = true {
		ks, err := f.Discovery.keySet(ctx, jwksURI, refresh)
		if err != nil {
			return "", fmt.Errorf("id_token: keys: %w", err)
		}
		err = verifyWith(tok, h, ks, &claims, &extra)
		if err == nil {
			break
		}
		if errors.Is(err, errNoKey) && !refresh {
			continue // the EHR may have rotated its keys
		}
		return "", fmt.Errorf("id_token: %w", err)
	}

	if !slices.Contains(issuers, claims.Issuer) {
		return "", fmt.Errorf("id_token: iss %q is not the expected issuer %q", clip(claims.Issuer), issuers)
	}
	if claims.Subject == "" {
		return "", errors.New("id_token: no sub")
	}
	if claims.Expiry == nil || claims.IssuedAt == nil {
		return "", errors.New("id_token: exp and iat are required")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{reg.ClientID}, Time: f.now()}, ClockSkew); err != nil {
		return "", fmt.Errorf("id_token: %w (client_id %q)", err, reg.ClientID)
	}
	if len(claims.Audience) > 1 {
		if azp, _ := extra["azp"].(string); azp != reg.ClientID {
			return "", fmt.Errorf("id_token: several audiences and azp %q is not client_id %q", clip(azp), reg.ClientID)
		}
	}
	if l.NonceHash != "" {
		n, _ := extra["nonce"].(string)
		if n == "" || subtle.ConstantTimeCompare([]byte(bindingHash(n)), []byte(l.NonceHash)) != 1 {
			return "", errors.New("id_token: nonce missing or not the one sent at authorize")
		}
	}
	fhirUser, _ := extra["fhirUser"].(string)
	if fhirUser == "" {
		fhirUser, _ = extra["profile"].(string) // the SMART v1 claim
	}
	if fhirUser != "" && !f.fhirUserOK(fhirUser) {
		return "", fmt.Errorf("id_token: fhirUser %q is not a Patient, Practitioner, PractitionerRole, RelatedPerson or Person reference, relative or an https URL", clip(fhirUser))
	}
	return fhirUser, nil
}

// fhirUserOK reports whether s is a FHIR user reference: relative
// (Practitioner/123) or absolute with https (http only for allowed
// loopback), never another scheme such as javascript:.
func (f *Flow) fhirUserOK(s string) bool {
	if len(s) > maxURLLen || !fhirUserRef().MatchString(s) || !isFHIRID(s[strings.LastIndexByte(s, '/')+1:]) {
		return false
	}
	if !strings.Contains(s, ":") {
		return true
	}
	_, err := checkURL(s, f.Registry.allowLoopback)
	return err == nil
}

// verifyWith checks tok's signature against the matching keys of ks and
// decodes its claims.
func verifyWith(tok *jwt.JSONWebToken, h jose.Header, ks *jose.JSONWebKeySet, claims *jwt.Claims, extra *map[string]any) error {
	candidates := ks.Keys
	if h.KeyID != "" {
		candidates = ks.Key(h.KeyID)
	}
	tried := 0
	var last error
	for _, k := range candidates {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		pub := k.Public()
		switch pub.Key.(type) {
		case *rsa.PublicKey:
			if !strings.HasPrefix(h.Algorithm, "RS") {
				continue
			}
		case *ecdsa.PublicKey:
			if !strings.HasPrefix(h.Algorithm, "ES") {
				continue
			}
		default:
			continue
		}
		tried++
		if last = tok.Claims(pub.Key, claims, extra); last == nil {
			return nil
		}
	}
	if tried == 0 {
		return errNoKey
	}
	return fmt.Errorf("signature not verified: %w", last)
}
