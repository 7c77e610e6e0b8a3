package cds

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrUnauthenticated means a call carried no valid CDS client JWT. Callers
// see an *AuthError with the reason.
var ErrUnauthenticated = errors.New("cds: unauthenticated")

// ErrKeysUnavailable means the client's JWK Set could not be fetched and
// none is cached, so the JWT cannot be checked either way (503).
var ErrKeysUnavailable = errors.New("cds: the CDS client's keys are unavailable")

// AuthError says why a JWT was refused. Reason is safe to log and to send
// back: it never quotes the token.
type AuthError struct {
	Reason string
	Err    error // ErrUnauthenticated or ErrKeysUnavailable
}

func (e *AuthError) Error() string { return "cds: " + e.Reason }
func (e *AuthError) Unwrap() error { return e.Err }

func authErr(format string, a ...any) *AuthError {
	return &AuthError{Reason: fmt.Sprintf(format, a...), Err: ErrUnauthenticated}
}

// signatureAlgorithms are the asymmetric algorithms a CDS client may sign
// with. CDS Hooks forbids none and every symmetric (HMAC) algorithm, and
// recommends ES384 and RS384.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.EdDSA,
}

// verified is an authenticated call.
type verified struct {
	client *Client
	jti    string
}

// authenticate checks the Authorization header of a call to the endpoint
// aud (the service URL, or for feedback also its /feedback URL).
func (s *Service) authenticate(ctx context.Context, authorization string, aud ...string) (*verified, error) {
	scheme, raw, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, authErr("an Authorization: Bearer <JWT> header is required")
	}
	if len(raw) > 16<<10 {
		return nil, authErr("the JWT is too large")
	}
	tok, err := jwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return nil, authErr("the bearer token is not a JWT signed with an asymmetric algorithm")
	}
	if len(tok.Headers) != 1 {
		return nil, authErr("the JWT must have exactly one signature")
	}
	h := tok.Headers[0]
	if typ, ok := h.ExtraHeaders[jose.HeaderType].(string); ok && !strings.EqualFold(typ, "JWT") {
		return nil, authErr("the JWT's typ header must be JWT")
	}
	if h.KeyID == "" {
		return nil, authErr("the JWT has no kid header")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, authErr("the JWT's claims cannot be read")
	}
	c := s.client(unverified.Issuer)
	if c == nil {
		return nil, authErr("the JWT's iss is not a registered CDS client")
	}
	if jku, ok := h.ExtraHeaders["jku"]; ok {
		if u, _ := jku.(string); u != c.JWKSURL {
			return nil, authErr("the JWT's jku is not the client's registered JWK Set URL")
		}
	}
	key, err := s.keys.key(ctx, s.httpClient(), c.JWKSURL, h.KeyID, s.now())
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, authErr("the JWT's alg does not match its key")
	}
	var claims jwt.Claims
	if err := tok.Claims(key.Key, &claims); err != nil {
		// The client may have rotated its key and kept the kid: refetch
		// the set once (at most once per MinRefresh per URL) and retry.
		next, ferr := s.keys.refetch(ctx, s.httpClient(), c.JWKSURL, h.KeyID, key, s.now())
		if ferr != nil || next == nil {
			return nil, authErr("the JWT's signature does not verify")
		}
		if next.Algorithm != "" && next.Algorithm != h.Algorithm {
			return nil, authErr("the JWT's alg does not match its key")
		}
		if err := tok.Claims(next.Key, &claims); err != nil {
			return nil, authErr("the JWT's signature does not verify")
		}
	}
	now := s.now()
	switch {
	case claims.Expiry == nil:
		return nil, authErr("the JWT has no exp")
	case claims.IssuedAt == nil:
		return nil, authErr("the JWT has no iat")
	case claims.ID == "":
		return nil, authErr("the JWT has no jti")
	case len(claims.ID) > 256:
		return nil, authErr("the JWT's jti is too long")
	}
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: c.Issuer, AnyAudience: aud, Time: now}, s.clockSkew())
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, authErr("the JWT has expired")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, authErr("the JWT's aud is not this service's URL")
	case errors.Is(err, jwt.ErrIssuedInTheFuture), errors.Is(err, jwt.ErrNotValidYet):
		return nil, authErr("the JWT is not valid yet (check the client's clock)")
	case err != nil:
		return nil, authErr("the JWT's claims are invalid")
	}
	exp := claims.Expiry.Time()
	if exp.Sub(now) > s.maxTokenLifetime() {
		return nil, authErr("the JWT's exp is more than %s ahead", s.maxTokenLifetime())
	}
	if exp.Sub(claims.IssuedAt.Time()) > s.maxTokenLifetime() {
		return nil, authErr("the JWT's lifetime (exp − iat) is more than %s", s.maxTokenLifetime())
	}
	fresh, err := s.replay().Use(ctx, c.Issuer+"\x00"+claims.ID, exp.Add(s.clockSkew()), now)
	switch {
	case err != nil:
		return nil, &AuthError{Reason: "the JWT's jti could not be checked for replay", Err: ErrKeysUnavailable}
	case !fresh:
		return nil, authErr("the JWT's jti was already used (replay)")
	}
	return &verified{client: c, jti: claims.ID}, nil
}

// keyCache caches the CDS clients' JWK Sets by URL. A kid it does not know
// triggers one refetch, at most once per minKeyRefresh per URL, so key
// rotation works without letting unknown kids make SMART Calc hammer the
// EHR.
type keyCache struct {
	TTL        time.Duration // how long a fetched set is used; default 1 h
	MinRefresh time.Duration // least time between fetches of one URL; default 1 min

	mu   sync.Mutex
	sets map[string]*keySet
}

type keySet struct {
	mu        sync.Mutex // held while fetching
	keys      []jose.JSONWebKey
	fetchedAt time.Time
	triedAt   time.Time
	// sigRefetchAt is the last refetch after a failed signature; such
	// refetches are limited to one per MinRefresh on their own, so a
	// rotation is picked up at once however recent the last fetch was.
	sigRefetchAt time.Time
}

// maxJWKSBytes bounds a JWK Set response.
const maxJWKSBytes = 1 << 20

func (kc *keyCache) set(u string) *keySet {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if kc.sets == nil {
		kc.sets = map[string]*keySet{}
	}
	ks := kc.sets[u]
	if ks == nil {
		ks = &keySet{}
		kc.sets[u] = ks
	}
	return ks
}

// key returns the public key kid of the set at u.
func (kc *keyCache) key(ctx context.Context, hc *http.Client, u, kid string, now time.Time) (*jose.JSONWebKey, error) {
	ttl, minRefresh := kc.TTL, kc.MinRefresh
	if ttl <= 0 {
		ttl = time.Hour
	}
	if minRefresh <= 0 {
		minRefresh = time.Minute
	}
	ks := kc.set(u)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	stale := ks.fetchedAt.IsZero() || now.Sub(ks.fetchedAt) > ttl
	k := find(ks.keys, kid)
	if !stale && k != nil {
		return k, nil
	}
	var fetchErr error
	if ks.triedAt.IsZero() || now.Sub(ks.triedAt) >= minRefresh || stale && ks.fetchedAt.IsZero() {
		ks.triedAt = now
		keys, err := fetchKeys(ctx, hc, u)
		if err == nil {
			ks.keys, ks.fetchedAt = keys, now
			k = find(keys, kid)
		}
		fetchErr = err
	}
	switch {
	case k != nil:
		return k, nil
	case fetchErr != nil && ks.fetchedAt.IsZero():
		return nil, &AuthError{Reason: "the CDS client's JWK Set could not be fetched", Err: ErrKeysUnavailable}
	}
	return nil, authErr("the JWT's kid is not in the client's JWK Set")
}

// refetch fetches the set at u again after a signature failed under the
// cached key old, unless a failed signature already refetched it within
// MinRefresh.
// It returns the key kid of the new set if it differs from old, or nil.
func (kc *keyCache) refetch(ctx context.Context, hc *http.Client, u, kid string, old *jose.JSONWebKey, now time.Time) (*jose.JSONWebKey, error) {
	minRefresh := kc.MinRefresh
	if minRefresh <= 0 {
		minRefresh = time.Minute
	}
	ks := kc.set(u)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k := find(ks.keys, kid); k != nil && !sameKey(k, old) {
		return k, nil // another call already fetched the rotated key
	}
	if !ks.sigRefetchAt.IsZero() && now.Sub(ks.sigRefetchAt) < minRefresh {
		return nil, nil
	}
	ks.sigRefetchAt, ks.triedAt = now, now
	keys, err := fetchKeys(ctx, hc, u)
	if err != nil {
		return nil, err
	}
	ks.keys, ks.fetchedAt = keys, now
	if k := find(keys, kid); k != nil && !sameKey(k, old) {
		return k, nil
	}
	return nil, nil
}

// sameKey reports whether a and b are the same public key.
func sameKey(a, b *jose.JSONWebKey) bool {
	if a == nil || b == nil {
		return a == b
	}
	ta, err1 := a.Thumbprint(crypto.SHA256)
	tb, err2 := b.Thumbprint(crypto.SHA256)
	return err1 == nil && err2 == nil && string(ta) == string(tb)
}

// find returns the usable signing key kid: public, valid, and not marked
// for encryption.
func find(keys []jose.JSONWebKey, kid string) *jose.JSONWebKey {
	for i := range keys {
		k := &keys[i]
		if k.KeyID == kid && k.IsPublic() && k.Valid() && (k.Use == "" || k.Use == "sig") {
			return k
		}
	}
	return nil
}

func fetchKeys(ctx context.Context, hc *http.Client, u string) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errors.New("cds: jwks: bad URL")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errors.New("cds: jwks: request failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cds: jwks: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil || len(body) > maxJWKSBytes {
		return nil, errors.New("cds: jwks: response unreadable or too large")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("cds: jwks: not a JWK Set")
	}
	return set.Keys, nil
}

// ReplayCache remembers the JWT ids (jti) seen within their lifetime.
type ReplayCache interface {
	// Use records key until exp and reports whether it was new: false
	// means a replay. now is the current time.
	Use(ctx context.Context, key string, exp, now time.Time) (fresh bool, err error)
}

// DefaultReplayEntries bounds a MemoryReplayCache whose Max is 0.
const DefaultReplayEntries = 100_000

// ErrReplayCacheFull means a MemoryReplayCache holds Max unexpired entries:
// the call is refused rather than let a replay through.
var ErrReplayCacheFull = errors.New("cds: replay cache full")

// MemoryReplayCache is a ReplayCache in this instance's memory, bounded by
// Max entries (default DefaultReplayEntries). When full of unexpired ids it
// refuses new ones (fail closed). It does not see other instances: see the
// package comment.
type MemoryReplayCache struct {
	Max int

	mu        sync.Mutex
	seen      map[string]time.Time
	lastSweep time.Time
}

// Use implements ReplayCache.
func (m *MemoryReplayCache) Use(_ context.Context, key string, exp, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if until, ok := m.seen[key]; ok && now.Before(until) {
		return false, nil
	}
	max := m.Max
	if max <= 0 {
		max = DefaultReplayEntries
	}
	if len(m.seen) >= max || now.Sub(m.lastSweep) > time.Minute {
		m.lastSweep = now
		for k, until := range m.seen {
			if !now.Before(until) {
				delete(m.seen, k)
			}
		}
	}
	if len(m.seen) >= max {
		return false, ErrReplayCacheFull
	}
	m.seen[key] = exp
	return true, nil
}

// Len returns the number of remembered ids (for tests and metrics).
func (m *MemoryReplayCache) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}
