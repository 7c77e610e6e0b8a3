package smart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Defaults of a zero Discoverer.
const (
	DefaultDiscoveryTTL     = time.Hour
	DefaultDiscoveryTimeout = 10 * time.Second
	DefaultMaxEntries       = 256
	// MaxDocumentSize caps a discovery, OpenID configuration or JWKS
	// document.
	MaxDocumentSize = 1 << 20
)

// Configuration is an EHR's SMART configuration
// ({iss}/.well-known/smart-configuration). Endpoint URLs are absolute:
// relative ones are resolved against iss (as a directory). A Configuration
// returned by Discover is shared by the cache and must not be modified.
type Configuration struct {
	Issuer                                     string   `json:"issuer,omitempty"`
	JWKSURI                                    string   `json:"jwks_uri,omitempty"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint,omitempty"`
	ManagementEndpoint                         string   `json:"management_endpoint,omitempty"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	GrantTypesSupported                        []string `json:"grant_types_supported,omitempty"`
	ResponseTypesSupported                     []string `json:"response_types_supported,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	Capabilities                               []string `json:"capabilities,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported (RFC 9207): the EHR
	// sends iss with every authorization response, so the callback
	// requires it.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// Discoverer fetches SMART configurations (and, for id_token checks, OpenID
// configurations and JWKS) and caches successful results per instance for
// TTL. Failures are not cached. Concurrent misses for one URL share one
// fetch. The zero value is ready to use; set the fields before first use.
type Discoverer struct {
	// HTTPClient makes the requests; nil means a client with Timeout.
	// Redirects to another host are refused.
	HTTPClient *http.Client
	// TTL is how long a result is cached; 0 means DefaultDiscoveryTTL.
	TTL time.Duration
	// Timeout bounds one fetch; 0 means DefaultDiscoveryTimeout.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxEntries bounds the cache; 0 means DefaultMaxEntries.
	MaxEntries int

	mu    sync.Mutex
	cache map[string]cacheEntry
	group singleflight.Group
}

type cacheEntry struct {
	val     any
	expires time.Time
}

func (d *Discoverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Discover returns the SMART configuration of iss. It requires
// authorization_endpoint and token_endpoint and nothing else (real EHRs lag
// the spec). A failure is an *Error of kind DiscoveryFailed.
func (d *Discoverer) Discover(ctx context.Context, iss string) (*Configuration, error) {
	wellKnown := strings.TrimSuffix(iss, "/") + "/.well-known/smart-configuration"
	v, err := d.cached(ctx, "smart "+wellKnown, false, func(ctx context.Context) (any, int, error) {
		var c Configuration
		status, err := d.fetchJSON(ctx, wellKnown, &c)
		if err != nil {
			return nil, status, err
		}
		if err := c.resolve(iss); err != nil {
			return nil, status, err
		}
		return &c, status, nil
	})
	if err != nil {
		return nil, discoveryError(iss, err)
	}
	return v.(*Configuration), nil
}

// fetchError carries the HTTP status of a failed fetch.
type fetchError struct {
	status int
	err    error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func discoveryError(iss string, err error) error {
	e := &Error{Kind: DiscoveryFailed, Issuer: iss, Err: fmt.Errorf("discovery: %w", err)}
	var fe *fetchError
	if errors.As(err, &fe) {
		e.Status = fe.status
	}
	return e
}

// resolve makes the endpoint URLs absolute against iss and checks the two
// the app needs.
func (c *Configuration) resolve(iss string) error {
	base, err := url.Parse(strings.TrimSuffix(iss, "/") + "/")
	if err != nil {
		return fmt.Errorf("iss: %v", err)
	}
	for _, f := range []struct {
		name     string
		p        *string
		required bool
	}{
		{"authorization_endpoint", &c.AuthorizationEndpoint, true},
		{"token_endpoint", &c.TokenEndpoint, true},
		{"jwks_uri", &c.JWKSURI, false},
		{"revocation_endpoint", &c.RevocationEndpoint, false},
		{"introspection_endpoint", &c.IntrospectionEndpoint, false},
		{"management_endpoint", &c.ManagementEndpoint, false},
		{"registration_endpoint", &c.RegistrationEndpoint, false},
	} {
		if *f.p == "" {
			if f.required {
				return fmt.Errorf("%s missing", f.name)
			}
			continue
		}
		ref, err := url.Parse(*f.p)
		if err != nil || len(*f.p) > maxURLLen {
			return fmt.Errorf("%s is not a URL", f.name)
		}
		u := base.ResolveReference(ref)
		if u.Scheme != "https" && u.Scheme != "http" {
			return fmt.Errorf("%s: scheme %q", f.name, u.Scheme)
		}
		*f.p = u.String()
	}
	return nil
}

// cached returns the cached value for key, or fetches it once for all
// concurrent callers. refresh skips the cache (a JWKS without the wanted
// key). The fetch runs detached from any one caller's cancellation, bounded
// by Timeout; each caller still stops waiting when its ctx ends.
func (d *Discoverer) cached(ctx context.Context, key string, refresh bool, fetch func(context.Context) (any, int, error)) (any, error) {
	if !refresh {
		d.mu.Lock()
		e, ok := d.cache[key]
		d.mu.Unlock()
		if ok && d.now().Before(e.expires) {
			return e.val, nil
		}
	}
	ch := d.group.DoChan(key, func() (any, error) {
		timeout := d.Timeout
		if timeout <= 0 {
			timeout = DefaultDiscoveryTimeout
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		v, status, err := fetch(fctx)
		if err != nil {
			return nil, &fetchError{status: status, err: err}
		}
		d.put(key, v)
		return v, nil
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *Discoverer) put(key string, v any) {
	ttl := d.TTL
	if ttl <= 0 {
		ttl = DefaultDiscoveryTTL
	}
	max := d.MaxEntries
	if max <= 0 {
		max = DefaultMaxEntries
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache == nil {
		d.cache = make(map[string]cacheEntry)
	}
	if _, ok := d.cache[key]; !ok && len(d.cache) >= max {
		// Drop expired entries, then the one closest to expiry.
		var oldest string
		var oldestExp time.Time
		for k, e := range d.cache {
			if !now.Before(e.expires) {
				delete(d.cache, k)
				continue
			}
			if oldest == "" || e.expires.Before(oldestExp) {
				oldest, oldestExp = k, e.expires
			}
		}
		if len(d.cache) >= max {
			delete(d.cache, oldest)
		}
	}
	d.cache[key] = cacheEntry{val: v, expires: now.Add(ttl)}
}

// client returns the HTTP client with redirects limited to the same host.
func (d *Discoverer) client() *http.Client {
	c := http.Client{Timeout: DefaultDiscoveryTimeout}
	if d.HTTPClient != nil {
		c = *d.HTTPClient
	}
	c.CheckRedirect = sameHostRedirects
	return &c
}

// sameHostRedirects follows at most three redirects, only to the same host
// and never from https to http.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	prev := via[len(via)-1].URL
	if !strings.EqualFold(req.URL.Host, prev.Host) || (prev.Scheme == "https" && req.URL.Scheme != "https") {
		return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
	}
	return nil
}

// fetchJSON GETs u as JSON into v, reading at most MaxDocumentSize bytes.
func (d *Discoverer) fetchJSON(ctx context.Context, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > MaxDocumentSize {
		return resp.StatusCode, fmt.Errorf("GET %s: document larger than %d bytes", u, MaxDocumentSize)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: not a JSON object: %w", u, err)
	}
	return resp.StatusCode, nil
}

// keySet returns the JWKS at uri; refresh bypasses the cache.
func (d *Discoverer) keySet(ctx context.Context, uri string, refresh bool) (*jose.JSONWebKeySet, error) {
	v, err := d.cached(ctx, "jwks "+uri, refresh, func(ctx context.Context) (any, int, error) {
		var ks jose.JSONWebKeySet
		status, err := d.fetchJSON(ctx, uri, &ks)
		if err != nil {
			return nil, status, err
		}
		return &ks, status, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*jose.JSONWebKeySet), nil
}

// openIDJWKSURI returns the jwks_uri of issuer's OpenID configuration.
func (d *Discoverer) openIDJWKSURI(ctx context.Context, issuer string) (string, error) {
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	v, err := d.cached(ctx, "oidc "+wellKnown, false, func(ctx context.Context) (any, int, error) {
		var c struct {
			JWKSURI string `json:"jwks_uri"`
		}
		status, err := d.fetchJSON(ctx, wellKnown, &c)
		if err != nil {
			return nil, status, err
		}
		if c.JWKSURI == "" {
			return nil, status, fmt.Errorf("GET %s: no jwks_uri", wellKnown)
		}
		base, _ := url.Parse(wellKnown)
		ref, err := url.Parse(c.JWKSURI)
		if err != nil {
			return nil, status, fmt.Errorf("GET %s: jwks_uri is not a URL", wellKnown)
		}
		return base.ResolveReference(ref).String(), status, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// OpenIDConfiguration is the part of an OpenID Provider's configuration
// ({issuer}/.well-known/openid-configuration) SMART Calc uses.
type OpenIDConfiguration struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// OpenIDConfiguration fetches issuer's OpenID configuration, uncached, with
// jwks_uri made absolute. The readiness check uses it; the callback reads
// only the jwks_uri (openIDJWKSURI, cached).
func (d *Discoverer) OpenIDConfiguration(ctx context.Context, issuer string) (*OpenIDConfiguration, error) {
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDiscoveryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var c OpenIDConfiguration
	if _, err := d.fetchJSON(ctx, wellKnown, &c); err != nil {
		return nil, fmt.Errorf("smart: openid-configuration: %w", err)
	}
	if c.JWKSURI != "" {
		base, _ := url.Parse(wellKnown)
		ref, err := url.Parse(c.JWKSURI)
		if err != nil {
			return nil, fmt.Errorf("smart: openid-configuration: GET %s: jwks_uri is not a URL", wellKnown)
		}
		c.JWKSURI = base.ResolveReference(ref).String()
	}
	return &c, nil
}

// KeySet fetches the JWK Set at uri, bypassing the cache.
func (d *Discoverer) KeySet(ctx context.Context, uri string) (*jose.JSONWebKeySet, error) {
	ks, err := d.keySet(ctx, uri, true)
	if err != nil {
		return nil, fmt.Errorf("smart: JWKS: %w", err)
	}
	return ks, nil
}
