package smart_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
)

// discoveryServer serves handler at /fhir/.well-known/smart-configuration,
// checks the request, and counts requests.
func discoveryServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodGet {
			t.Errorf("Unexpected method; got %q, want GET", r.Method)
		}
		if r.URL.Path != "/fhir/.well-known/smart-configuration" {
			t.Errorf("Unexpected path; got %q", r.URL.Path)
		}
		if got := r.Header.Get("Accept"); got != "application/json" {
			t.Errorf("Unexpected Accept header; got %q, want application/json", got)
		}
		handler(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, &hits
}

func okConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"authorization_endpoint":"https://ehr.example/authorize","token_endpoint":"https://ehr.example/token",
		"code_challenge_methods_supported":["S256"],"capabilities":["launch-ehr"],"unknown_extension":{"x":1}}`)
}

func TestDiscoverCachesSuccess(t *testing.T) {
	ts, hits := discoveryServer(t, okConfig)
	c := smarttest.NewClock(time.Unix(1_700_000_000, 0))
	d := &smart.Discoverer{TTL: time.Hour, Now: c.Now}
	ctx := context.Background()
	iss := ts.URL + "/fhir"

	cfg, err := d.Discover(ctx, iss)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if cfg.AuthorizationEndpoint != "https://ehr.example/authorize" || cfg.TokenEndpoint != "https://ehr.example/token" ||
		len(cfg.CodeChallengeMethodsSupported) != 1 || cfg.CodeChallengeMethodsSupported[0] != "S256" {
		t.Errorf("Discover = %+v", cfg)
	}
	// A trailing slash on iss names the same document.
	if _, err := d.Discover(ctx, iss+"/"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Discover(ctx, iss); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("requests after warm calls = %d, want 1", got)
	}

	c.Add(59 * time.Minute)
	if _, err := d.Discover(ctx, iss); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("requests before TTL = %d, want 1", got)
	}
	c.Add(time.Minute)
	if _, err := d.Discover(ctx, iss); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("requests after TTL = %d, want 2 (refetch)", got)
	}
}

func TestDiscoverDoesNotCacheFailure(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	ts, hits := discoveryServer(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		okConfig(w, r)
	})
	d := &smart.Discoverer{}
	_, err := d.Discover(context.Background(), ts.URL+"/fhir")
	e := asError(t, err)
	if e.Kind != smart.DiscoveryFailed || e.Status != http.StatusServiceUnavailable || e.HTTPStatus() != http.StatusBadGateway {
		t.Errorf("Discover error = %+v (HTTPStatus %d)", e, e.HTTPStatus())
	}
	fail.Store(false)
	if _, err := d.Discover(context.Background(), ts.URL+"/fhir"); err != nil {
		t.Fatalf("Discover after recovery: %v", err)
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("requests = %d, want 2 (the failure was not cached)", got)
	}
}

func TestDiscoverCollapsesConcurrentMisses(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	ts, hits := discoveryServer(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		okConfig(w, r)
	})
	d := &smart.Discoverer{}
	const n = 20
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			started.Done()
			_, err := d.Discover(context.Background(), ts.URL+"/fhir")
			errs <- err
		}()
	}
	started.Wait()
	<-entered
	// Give the other callers time to join the in-flight fetch. Whatever
	// the timing, a second request would mean a miss was not collapsed
	// (late callers hit the cache).
	time.Sleep(50 * time.Millisecond)
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Discover: %v", err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("requests = %d, want 1 for %d concurrent misses", got, n)
	}
}

func TestDiscoverCallerCancellationDoesNotFailOthers(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	ts, _ := discoveryServer(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		okConfig(w, r)
	})
	d := &smart.Discoverer{}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := d.Discover(ctx, ts.URL+"/fhir")
		first <- err
	}()
	<-entered
	second := make(chan error, 1)
	go func() {
		_, err := d.Discover(context.Background(), ts.URL+"/fhir")
		second <- err
	}()
	cancel()
	if err := <-first; err == nil {
		t.Error("cancelled caller succeeded, want its context error")
	}
	close(release)
	if err := <-second; err != nil {
		t.Errorf("second caller failed after the first cancelled: %v", err)
	}
}

func TestDiscoverDocuments(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		want       func(t *testing.T, base string, cfg *smart.Configuration)
		wantErr    string
		wantStatus int
	}{
		{
			name: "relative endpoints resolve against iss",
			body: `{"authorization_endpoint":"auth/authorize","token_endpoint":"/oauth/token","jwks_uri":"../keys",
				"introspection_endpoint":"https://other.example/introspect"}`,
			want: func(t *testing.T, base string, cfg *smart.Configuration) {
				// A slice, not a map keyed by the results: two fields
				// resolved to one URL must not hide each other.
				for _, f := range []struct{ name, got, want string }{
					{"authorization_endpoint", cfg.AuthorizationEndpoint, base + "/fhir/auth/authorize"},
					{"token_endpoint", cfg.TokenEndpoint, base + "/oauth/token"},
					{"jwks_uri", cfg.JWKSURI, base + "/keys"},
					{"introspection_endpoint", cfg.IntrospectionEndpoint, "https://other.example/introspect"},
				} {
					if f.got != f.want {
						t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
					}
				}
			},
		},
		{
			name: "optional fields absent",
			body: `{"authorization_endpoint":"https://e/a","token_endpoint":"https://e/t"}`,
			want: func(t *testing.T, base string, cfg *smart.Configuration) {
				if cfg.JWKSURI != "" || cfg.Capabilities != nil {
					t.Errorf("cfg = %+v", cfg)
				}
			},
		},
		{name: "missing token endpoint", body: `{"authorization_endpoint":"https://e/a"}`, wantErr: "token_endpoint missing"},
		{name: "missing authorize endpoint", body: `{"token_endpoint":"https://e/t"}`, wantErr: "authorization_endpoint missing"},
		{name: "endpoint with bad scheme", body: `{"authorization_endpoint":"javascript:alert(1)","token_endpoint":"https://e/t"}`, wantErr: "authorization_endpoint"},
		{name: "not JSON", body: `<html>Login</html>`, wantErr: "not a JSON object"},
		{name: "JSON array", body: `[1,2]`, wantErr: "not a JSON object"},
		{name: "not found", status: http.StatusNotFound, body: `{}`, wantErr: "HTTP 404", wantStatus: http.StatusNotFound},
		{
			name:    "larger than 1 MiB",
			body:    `{"authorization_endpoint":"https://e/a","token_endpoint":"https://e/t","pad":"` + strings.Repeat("x", smart.MaxDocumentSize) + `"}`,
			wantErr: "larger than",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, _ := discoveryServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				fmt.Fprint(w, tc.body)
			})
			cfg, err := (&smart.Discoverer{}).Discover(context.Background(), ts.URL+"/fhir")
			if tc.wantErr != "" {
				e := asError(t, err)
				if e.Kind != smart.DiscoveryFailed || !strings.Contains(e.Error(), tc.wantErr) || e.Status != tc.wantStatus && tc.wantStatus != 0 {
					t.Fatalf("Discover error = %q (%+v), want DiscoveryFailed containing %q", e, e, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			tc.want(t, ts.URL, cfg)
		})
	}
}

func TestDiscoverRefusesCrossHostRedirect(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(okConfig))
	defer other.Close()
	ts, _ := discoveryServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusFound)
	})
	_, err := (&smart.Discoverer{}).Discover(context.Background(), ts.URL+"/fhir")
	if e := asError(t, err); e.Kind != smart.DiscoveryFailed || !strings.Contains(e.Error(), "redirect to another host") {
		t.Fatalf("Discover = %v, want a refused redirect", err)
	}
}

func TestDiscoverTimeout(t *testing.T) {
	release := make(chan struct{})
	ts, _ := discoveryServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	_, err := (&smart.Discoverer{Timeout: 20 * time.Millisecond}).Discover(context.Background(), ts.URL+"/fhir")
	e := asError(t, err)
	if e.Kind != smart.DiscoveryFailed || e.HTTPStatus() != http.StatusGatewayTimeout {
		t.Fatalf("Discover = %v (HTTPStatus %d), want DiscoveryFailed with 504", err, e.HTTPStatus())
	}
}

func TestDiscoverBoundedCache(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(okConfig))
	defer ts.Close()
	var hits atomic.Int32
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hits.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := smarttest.NewClock(time.Unix(1_700_000_000, 0))
	d := &smart.Discoverer{HTTPClient: counting, MaxEntries: 2, Now: c.Now}
	ctx := context.Background()
	for _, tenant := range []string{"a", "b", "c", "c", "b"} {
		c.Add(time.Second)
		if _, err := d.Discover(ctx, ts.URL+"/"+tenant); err != nil {
			t.Fatal(err)
		}
	}
	// a, b, c fetched; c cached; b was kept (a evicted first, being
	// closest to expiry), so 3 fetches.
	if got := hits.Load(); got != 3 {
		t.Errorf("fetches = %d, want 3", got)
	}
	if _, err := d.Discover(ctx, ts.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 4 {
		t.Errorf("fetches = %d, want 4 (a was evicted)", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
