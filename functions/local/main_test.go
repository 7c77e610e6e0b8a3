package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

func TestMain(m *testing.M) { os.Exit(smarttest.RunWithFirestore(m)) }

// syncBuffer collects log lines from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// spyStore records every secret that passes through the store, so the log
// test can look for them, and can tamper with a launch's sealed verifier
// (which then does not open).
type spyStore struct {
	store.Store
	mu        sync.Mutex
	secrets   []string
	tamper    atomic.Bool
	consumeMu sync.Mutex
	// touchDown makes every activity write fail as a store outage would.
	touchDown atomic.Bool
	touches   atomic.Int32
}

func (s *spyStore) Touch(ctx context.Context, sess *store.Session, at time.Time) error {
	s.touches.Add(1)
	if s.touchDown.Load() {
		return fmt.Errorf("%w: the test's activity writes fail", store.ErrUnavailable)
	}
	return s.Store.Touch(ctx, sess, at)
}

func (s *spyStore) note(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range v {
		if x != "" {
			s.secrets = append(s.secrets, x)
		}
	}
}

func (s *spyStore) CreateLaunch(ctx context.Context, l *store.Launch) error {
	s.note(l.State, l.Verifier)
	return s.Store.CreateLaunch(ctx, l)
}

func (s *spyStore) ConsumeLaunch(ctx context.Context, state string) (*store.Launch, error) {
	l, err := s.Store.ConsumeLaunch(ctx, state)
	if err == nil && s.tamper.Load() {
		// What the original app did: exchange the code with a verifier
		// other than the one whose challenge went to authorize.
		l.Verifier = strings.Repeat("x", 43)
	}
	return l, err
}

func (s *spyStore) CreateSession(ctx context.Context, sess *store.Session) error {
	s.note(sess.AccessToken, sess.RefreshToken)
	return s.Store.CreateSession(ctx, sess)
}

// CreateSessionAndLaunch is how the callback stores a session and its
// hand-off (whose sealed handle sits in Verifier).
func (s *spyStore) CreateSessionAndLaunch(ctx context.Context, sess *store.Session, l *store.Launch) error {
	s.note(sess.AccessToken, sess.RefreshToken, l.State, l.Verifier)
	return s.Store.CreateSessionAndLaunch(ctx, sess, l)
}

type env struct {
	*Server
	logs   *syncBuffer
	store  *spyStore
	client *http.Client
	// outbound counts the app's own outbound requests (to EHRs).
	outbound atomic.Int64
}

type storeKind string

const (
	memoryStore    storeKind = "memory"
	firestoreStore storeKind = "firestore"
)

func newStore(t testing.TB, kind storeKind, now func() time.Time) store.Store {
	sealer, err := store.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if kind == firestoreStore {
		return &store.Firestore{Client: smarttest.NewFirestoreClient(t), Sealer: sealer, Now: now}
	}
	m := store.NewMemory(sealer)
	m.MaxLaunches = entrypoints.LocalMaxLaunches // as the runner bounds it
	if now != nil {
		m.Now = now
	}
	return m
}

type countingTransport struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// start runs a local SMART Calc on a free port with the given store.
func start(t testing.TB, kind storeKind, vars map[string]string, tune *Tune, now func() time.Time) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	e := &env{logs: &syncBuffer{}}
	e.store = &spyStore{Store: newStore(t, kind, now)}
	full := &Tune{
		Sandbox: func(c *ehrsim.Config) {
			c.AutoPickPatient = "low-risk"
			if tune != nil && tune.Sandbox != nil {
				tune.Sandbox(c)
			}
		},
		Env: func(en *entrypoints.Env) {
			en.Store = e.store
			en.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: countingTransport{&e.outbound, http.DefaultTransport}}
			if now != nil {
				en.Now = now
			}
			if tune != nil && tune.Env != nil {
				tune.Env(en)
			}
		},
	}
	getenv := func(k string) string { return vars[k] }
	var logTo io.Writer = e.logs
	if _, bench := t.(*testing.B); bench {
		logTo = io.Discard // a benchmark's millions of lines would dominate its memory
	}
	srv, err := newServer(base, getenv, logging.New(logTo, slog.LevelDebug), full)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	e.Server = srv
	jar, _ := cookiejar.New(nil)
	e.client = &http.Client{Jar: jar, Timeout: 30 * time.Second}
	return e
}

// redirects follows a chain from u and returns every Location seen and the
// last response.
func (e *env) redirects(t testing.TB, u string) ([]string, *http.Response, string) {
	t.Helper()
	var seen []string
	c := *e.client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		seen = append(seen, req.URL.String())
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		return nil
	}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return seen, resp, string(body)
}

// stopAt follows redirects from u until the next one would go to a URL
// whose path is stop, and returns that URL without requesting it.
func (e *env) stopAt(t testing.TB, u, stop string) *url.URL {
	t.Helper()
	var found *url.URL
	c := *e.client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == stop {
			found = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if found == nil {
		t.Fatalf("GET %s never redirected to %s (status %d)", u, stop, resp.StatusCode)
	}
	return found
}

func (e *env) handleFrom(t testing.TB, seen []string) string {
	t.Helper()
	for _, s := range seen {
		if _, frag, ok := strings.Cut(s, "#handoff="); ok {
			return e.exchange(t, frag)
		}
	}
	t.Fatalf("no #handoff= in redirects %q", seen)
	return ""
}

// exchange is the app page's POST /calculate/api/session: the launching
// browser (e.client's cookie jar) trades the hand-off code for the handle.
func (e *env) exchange(t testing.TB, code string) string {
	t.Helper()
	resp, err := e.client.Post(e.URL+"/calculate/api/session", "application/json", strings.NewReader(`{"handoff":"`+code+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Session string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Session == "" {
		t.Fatalf("POST /calculate/api/session: status %d, %v", resp.StatusCode, err)
	}
	return out.Session
}

var kinds = []storeKind{memoryStore, firestoreStore}

func TestEHRLaunchReachesSession(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			e := start(t, kind, nil, nil, nil)
			seen, resp, _ := e.redirects(t, e.URL+"/ehr/launch?patient=low-risk")
			if resp.StatusCode != 200 {
				t.Fatalf("final status %d", resp.StatusCode)
			}
			last := seen[len(seen)-1]
			if !strings.HasPrefix(last, e.URL+"/calculate/#handoff=") {
				t.Fatalf("chain ended at %q, want %s/calculate/#handoff=…", last, e.URL)
			}
			handle := e.handleFrom(t, seen)
			if raw, err := base64.RawURLEncoding.DecodeString(handle); err != nil || len(raw) < 32 {
				t.Errorf("handle %q is not ≥256 random bits in base64url", handle)
			}
			sess, err := e.store.GetSession(context.Background(), smart.SessionID(handle))
			if err != nil {
				t.Fatalf("session not in the store: %v", err)
			}
			if sess.Patient != "low-risk" || sess.RegistrationID != "sandbox" || sess.FHIRBase != e.Sandbox.FHIRBase() {
				t.Errorf("session %+v", sess)
			}
			if sess.AccessToken == "" || !strings.Contains(sess.Scope, "patient/Observation") {
				t.Errorf("session lacks token or scope: scope %q", sess.Scope)
			}
		})
	}
}

func TestAuthorizeRedirect(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	launchURL := e.stopAt(t, e.URL+"/ehr/launch?patient=low-risk", "/launch")
	authz := e.stopAt(t, launchURL.String(), "/ehr/authorize")
	q := authz.Query()
	iss := launchURL.Query().Get("iss")
	if iss != e.Sandbox.FHIRBase() {
		t.Fatalf("iss %q", iss)
	}
	checks := map[string]string{
		"response_type":         "code",
		"client_id":             SandboxClientID,
		"redirect_uri":          e.URL + "/callback",
		"aud":                   iss,
		"launch":                launchURL.Query().Get("launch"),
		"code_challenge_method": "S256",
	}
	for k, want := range checks {
		if got := q.Get(k); got != want || want == "" {
			t.Errorf("authorize %s = %q, want %q", k, got, want)
		}
	}
	state, err := base64.RawURLEncoding.DecodeString(q.Get("state"))
	if err != nil || len(state)*8 < 256 {
		t.Errorf("state %q: %d bits, want ≥256", q.Get("state"), len(state)*8)
	}
	if ch, err := base64.RawURLEncoding.DecodeString(q.Get("code_challenge")); err != nil || len(ch) != sha256.Size {
		t.Errorf("code_challenge %q is not a base64url SHA-256", q.Get("code_challenge"))
	}
	if !strings.Contains(q.Get("scope"), "launch") {
		t.Errorf("scope %q lacks launch", q.Get("scope"))
	}
}

func TestConcurrentCallbacksOneSession(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			e := start(t, kind, nil, nil, nil)
			cb := e.stopAt(t, e.URL+"/ehr/launch?patient=low-risk", "/callback")
			cookies := e.client.Jar.Cookies(cb)
			const n = 20
			var wg sync.WaitGroup
			statuses := make([]int, n)
			bodies := make([]string, n)
			startGun := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// The launching browser's binding cookie, sent by each
					// (a shared jar would lose it to the first answer).
					c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
					req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
					for _, ck := range cookies {
						req.AddCookie(ck)
					}
					<-startGun
					resp, err := c.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					statuses[i], bodies[i] = resp.StatusCode, string(b)
				}()
			}
			close(startGun)
			wg.Wait()
			var won, lost int
			for i, s := range statuses {
				switch {
				case s == http.StatusSeeOther:
					won++
				case s >= 400 && s < 500:
					lost++
					if !strings.Contains(bodies[i], "already used") || !strings.Contains(bodies[i], "Relaunch") {
						t.Errorf("loser %d page does not explain: %.300s", i, bodies[i])
					}
				default:
					t.Errorf("callback %d: status %d", i, s)
				}
			}
			if won != 1 || lost != n-1 {
				t.Errorf("%d sessions and %d 4xx answers, want 1 and %d (statuses %v)", won, lost, n-1, statuses)
			}
			if got := e.Sandbox.TokenRequests(); got != 1 {
				t.Errorf("the token endpoint saw %d exchanges, want 1", got)
			}
		})
	}
}

func TestBadStateRefused(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			var offset atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			e := start(t, kind, nil, nil, now)
			noRedirect := &http.Client{Jar: e.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(u string) (int, string) {
				resp, err := noRedirect.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				// Without a binding cookie the callback answers with its
				// sessionStorage page: a browser runs it, with nothing
				// stored for this state.
				if form, action, ok := fallbackForm(string(b)); ok && resp.StatusCode == http.StatusOK {
					req, _ := http.NewRequest(http.MethodPost, e.URL+action, strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Origin", e.URL)
					if resp, err = noRedirect.Do(req); err != nil {
						t.Fatal(err)
					}
					b, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				return resp.StatusCode, string(b)
			}

			// Replayed: the first callback wins, the second is refused.
			cb := e.stopAt(t, e.URL+"/ehr/launch?patient=low-risk", "/callback")
			if s, _ := get(cb.String()); s != http.StatusSeeOther {
				t.Fatalf("first callback: %d", s)
			}
			if s, body := get(cb.String()); s < 400 || s >= 500 || !strings.Contains(body, "already used") {
				t.Errorf("replayed state: %d %.200s", s, body)
			}

			// Unknown and missing state.
			if s, body := get(e.URL + "/callback?code=abc&state=" + strings.Repeat("A", 43)); s < 400 || s >= 500 || !strings.Contains(body, "Relaunch") {
				t.Errorf("unknown state: %d %.200s", s, body)
			}
			if s, _ := get(e.URL + "/callback?code=abc"); s < 400 || s >= 500 {
				t.Errorf("missing state: %d", s)
			}

			// Expired: the callback comes after the launch TTL.
			cb = e.stopAt(t, e.URL+"/ehr/launch?patient=low-risk", "/callback")
			offset.Store(int64(11 * time.Minute))
			if s, body := get(cb.String()); s < 400 || s >= 500 || !strings.Contains(strings.ToLower(body), "expired") {
				t.Errorf("expired state: %d %.300s", s, body)
			}
			for _, line := range []string{`"cause":"replayed_state"`, `"cause":"unknown_state"`, `"cause":"missing_state"`, `"cause":"expired_state"`} {
				if !strings.Contains(e.logs.String(), line) {
					t.Errorf("no log line with %s", line)
				}
			}
		})
	}
}

func TestUnknownIssuerMakesNoRequest(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, iss := range []string{"https://evil.example/fhir", "not a url", "http://example.com/fhir", ""} {
		before := e.outbound.Load()
		resp, err := e.client.Get(e.URL + "/launch?launch=x&iss=" + url.QueryEscape(iss))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 403 {
			t.Errorf("iss %q: status %d", iss, resp.StatusCode)
		}
		if !strings.Contains(string(body), "SMART Calc") {
			t.Errorf("iss %q: no error page: %.200s", iss, body)
		}
		if n := e.outbound.Load() - before; n != 0 {
			t.Errorf("iss %q: %d outbound requests, want 0", iss, n)
		}
	}
	if !strings.Contains(e.logs.String(), `"cause":"unknown_issuer"`) || !strings.Contains(e.logs.String(), `"cause":"malformed_issuer"`) {
		t.Errorf("logs lack the causes:\n%s", e.logs.String())
	}
}

func TestWrongVerifierExplained(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	// The stored verifier is sealed under the launch key and the state,
	// which the store never holds, so it cannot be swapped there any more:
	// the sandbox refuses the grant as it would a wrong verifier.
	_, resp, body := e.redirects(t, e.URL+"/ehr/launch?patient=low-risk&fault=invalid_grant")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	order := []string{"verifier", "redirect_uri", "reused", "another client"}
	last := -1
	for _, w := range order {
		i := strings.Index(body, w)
		if i < 0 {
			t.Errorf("page does not mention %q", w)
			continue
		}
		if i < last {
			t.Errorf("%q is out of order on the page", w)
		}
		last = i
	}
	for _, w := range []string{"invalid_grant", e.URL + "/callback", SandboxClientID} {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if strings.Contains(body, strings.Repeat("x", 43)) {
		t.Error("page shows the verifier")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"cause":"invalid_grant"`) || !strings.Contains(logs, "likely_causes") {
		t.Errorf("log lacks the invalid_grant diagnosis:\n%s", logs)
	}
}

func TestStandaloneLaunch(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			e := start(t, kind, nil, &Tune{Sandbox: func(c *ehrsim.Config) { c.AutoPickPatient = "cirrhosis" }}, nil)
			authz := e.stopAt(t, e.URL+"/launch?iss="+url.QueryEscape(e.Sandbox.FHIRBase()), "/ehr/authorize")
			if authz.Query().Has("launch") || !strings.Contains(authz.Query().Get("scope"), "launch/patient") {
				t.Errorf("standalone authorize: %v", authz.Query())
			}
			seen, resp, _ := e.redirects(t, e.URL+"/launch?iss="+url.QueryEscape(e.Sandbox.FHIRBase()))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			sess, err := e.store.GetSession(context.Background(), smart.SessionID(e.handleFrom(t, seen)))
			if err != nil {
				t.Fatal(err)
			}
			if sess.Patient != "cirrhosis" {
				t.Errorf("session patient %q, want the one the sandbox picked", sess.Patient)
			}
		})
	}
}

// fallbackForm reads the callback's sessionStorage fallback page: the form
// its script POSTs, with no nonce stored, and where.
func fallbackForm(page string) (url.Values, string, bool) {
	_, data, ok := strings.Cut(page, `<script type="application/json" id="d">`)
	if !ok {
		return nil, "", false
	}
	data, _, _ = strings.Cut(data, "</script>")
	var d struct {
		Action string
		Fields map[string]string
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil || d.Action == "" {
		return nil, "", false
	}
	form := url.Values{"binding": {""}}
	for k, v := range d.Fields {
		form.Set(k, v)
	}
	return form, d.Action, true
}
