package assess_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// now is the tests' clock.
var now = time.Date(2026, 6, 14, 9, 30, 0, 0, time.UTC)

// fhirServer is a FHIR server holding one Patient. It accepts the access
// tokens in valid and records every request.
type fhirServer struct {
	*httptest.Server
	mu        sync.Mutex
	valid     map[string]bool
	patient   map[string]any
	status    int    // if non-zero, the answer to every request
	challenge string // WWW-Authenticate with status
	requests  []*http.Request
}

func newFHIRServer(t *testing.T, validTokens ...string) *fhirServer {
	t.Helper()
	s := &fhirServer{
		valid: map[string]bool{},
		patient: map[string]any{
			"resourceType": "Patient",
			"id":           "p1",
			"name":         []any{map[string]any{"use": "official", "family": "Chen", "given": []string{"Mei"}}},
			"gender":       "female",
			"birthDate":    "1950-06-15",
			"identifier": []any{map[string]any{
				"type":  map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}}},
				"value": "MRN-0042",
			}},
		},
	}
	for _, tok := range validTokens {
		s.valid[tok] = true
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *fhirServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(context.Background()))
	status, challenge, patient := s.status, s.challenge, s.patient
	ok := s.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	switch {
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	case status != 0:
		if challenge != "" {
			w.Header().Set("WWW-Authenticate", challenge)
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"resourceType": "OperationOutcome",
			"issue": []any{map[string]any{"severity": "error", "code": "forbidden"}}})
		return
	case r.Method != http.MethodGet || r.URL.Path != "/fhir/Patient/p1":
		w.WriteHeader(http.StatusNotFound)
		return
	}
	json.NewEncoder(w).Encode(patient)
}

// auths returns the Authorization headers received, in order.
func (s *fhirServer) auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

// countingSessions counts GetSession and Touch calls and can fail them.
type countingSessions struct {
	store.Sessions
	gets, touches   atomic.Int32
	fail, touchFail error
}

func (c *countingSessions) Touch(ctx context.Context, s *store.Session, at time.Time) error {
	c.touches.Add(1)
	if c.touchFail != nil {
		return c.touchFail
	}
	return c.Sessions.Touch(ctx, s, at)
}

func (c *countingSessions) GetSession(ctx context.Context, id string) (*store.Session, error) {
	c.gets.Add(1)
	if c.fail != nil {
		return nil, c.fail
	}
	return c.Sessions.GetSession(ctx, id)
}

// refresher stands in for smart.Flow.Refresh: it counts calls and answers
// with next. If hold is set, the first call waits for it to close, so that
// concurrent callers pile up behind the refresh.
type refresher struct {
	calls   atomic.Int32
	next    func(s *store.Session) (*store.Session, error)
	entered chan struct{}
	hold    chan struct{}
}

func (r *refresher) Refresh(ctx context.Context, s *store.Session) (*store.Session, error) {
	if r.calls.Add(1) == 1 && r.hold != nil {
		close(r.entered)
		<-r.hold
	}
	return r.next(s)
}

// renew is a successful refresh to access token at.
func renew(at string) func(*store.Session) (*store.Session, error) {
	return func(s *store.Session) (*store.Session, error) {
		n := *s
		n.AccessToken = at
		n.TokenExpiry = now.Add(time.Hour)
		return &n, nil
	}
}

type fixture struct {
	srv      *fhirServer
	sessions *countingSessions
	svc      *assess.Service
	ref      *refresher
}

// newFixture stores a session edited by edit and returns a Service for it
// and the session's handle.
func newFixture(t *testing.T, srv *fhirServer, edit func(*store.Session)) (*fixture, string) {
	t.Helper()
	key := make([]byte, store.SealKeySize)
	rand.Read(key)
	sealer, err := store.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	mem := store.NewMemory(sealer)
	mem.Now = func() time.Time { return now }
	b := make([]byte, 32)
	rand.Read(b)
	handle := base64.RawURLEncoding.EncodeToString(b)
	s := &store.Session{
		ID:                smart.SessionID(handle),
		RegistrationID:    "test-ehr",
		FHIRBase:          srv.URL + "/fhir",
		Patient:           "p1",
		Encounter:         "e1",
		FHIRUser:          "Practitioner/dr-1",
		Scope:             "launch openid fhirUser patient/Patient.rs patient/Observation.rs online_access",
		NeedPatientBanner: true,
		SmartStyleURL:     "https://ehr.example/style.json",
		Tenant:            "tenant-1",
		AccessToken:       "at-1",
		RefreshToken:      "rt-1",
		TokenURL:          "https://ehr.example/token",
		TokenExpiry:       now.Add(time.Hour),
		ExpiresAt:         now.Add(8 * time.Hour),
	}
	if edit != nil {
		edit(s)
	}
	if err := mem.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	fx := &fixture{srv: srv, sessions: &countingSessions{Sessions: mem}, ref: &refresher{next: renew("at-2")}}
	fx.svc = &assess.Service{
		Sessions:   fx.sessions,
		Refresh:    fx.ref.Refresh,
		HTTPClient: srv.Client(),
		Now:        func() time.Time { return now },
	}
	return fx, handle
}

func (fx *fixture) load(t *testing.T, handle string) *assess.Session {
	t.Helper()
	ss, err := fx.svc.Load(context.Background(), "Bearer "+handle)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ss
}

func TestLoad(t *testing.T) {
	srv := newFHIRServer(t)
	fx, handle := newFixture(t, srv, nil)
	expiredFx, expiredHandle := newFixture(t, srv, func(s *store.Session) { s.ExpiresAt = now })
	for _, tc := range []struct {
		name          string
		fx            *fixture
		authorization string
		ok            bool
		gets          int32 // store reads expected
	}{
		{"bearer", fx, "Bearer " + handle, true, 1},
		{"scheme is case-insensitive", fx, "bearer " + handle, true, 1},
		{"surrounding and inner spaces", fx, "  Bearer   " + handle + "  ", true, 1},
		{"no header", fx, "", false, 0},
		{"scheme only", fx, "Bearer", false, 0},
		{"scheme and space only", fx, "Bearer   ", false, 0},
		{"other scheme", fx, "Basic " + handle, false, 0},
		{"no scheme", fx, handle, false, 0},
		{"handle too long", fx, "Bearer " + strings.Repeat("A", 257), false, 0},
		{"unknown handle", fx, "Bearer " + strings.Repeat("A", 43), false, 1},
		{"handle with a changed character", fx, "Bearer " + handle[:42] + string(handle[42]^1), false, 1},
		{"session past its lifetime", expiredFx, "Bearer " + expiredHandle, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fx.sessions.gets.Store(0)
			ss, err := tc.fx.svc.Load(context.Background(), tc.authorization)
			if got := tc.fx.sessions.gets.Load(); got != tc.gets {
				t.Errorf("store reads = %d, want %d", got, tc.gets)
			}
			if !tc.ok {
				if !errors.Is(err, assess.ErrNoSession) || ss != nil {
					t.Fatalf("Load(%.60q) = %v, %v; want ErrNoSession", tc.authorization, ss, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			st := ss.Store()
			if st.ID != smart.SessionID(handle) || st.Patient != "p1" || st.AccessToken != "at-1" {
				t.Errorf("loaded session = %+v", st)
			}
		})
	}

	t.Run("store failure is not a missing session", func(t *testing.T) {
		fx.sessions.fail = errors.New("firestore: unavailable")
		defer func() { fx.sessions.fail = nil }()
		_, err := fx.svc.Load(context.Background(), "Bearer "+handle)
		if err == nil || errors.Is(err, assess.ErrNoSession) || !strings.HasPrefix(err.Error(), "assess: ") ||
			!strings.Contains(err.Error(), "firestore: unavailable") {
			t.Errorf("Load with a failing store = %v, want an assess: error wrapping the store's", err)
		}
	})
}

// readAll reads the Patient through n FHIR clients of ss at once and
// returns their errors.
func readAll(ss *assess.Session, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var p fhir.Patient
			errs[i] = ss.FHIR().Read(context.Background(), "Patient", "p1", &p)
		})
	}
	wg.Wait()
	return errs
}

func TestTokenRefresh(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expiry   time.Duration // token expiry from now; 0 means unknown
		valid    []string      // tokens the FHIR server accepts
		refresh  bool          // a refresh is expected
		wantAuth string        // the token the reads end up using
	}{
		{"expired", -time.Minute, []string{"at-2"}, true, "Bearer at-2"},
		{"expires within the margin", 10 * time.Second, []string{"at-2"}, true, "Bearer at-2"},
		{"still valid", 5 * time.Minute, []string{"at-1"}, false, "Bearer at-1"},
		{"refused before its expiry (401, then one refresh and retry)", time.Hour, []string{"at-2"}, true, "Bearer at-2"},
		{"refused with no expiry known", 0, []string{"at-2"}, true, "Bearer at-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFHIRServer(t, tc.valid...)
			fx, handle := newFixture(t, srv, func(s *store.Session) {
				s.TokenExpiry = time.Time{}
				if tc.expiry != 0 {
					s.TokenExpiry = now.Add(tc.expiry)
				}
			})
			fx.ref.entered, fx.ref.hold = make(chan struct{}), make(chan struct{})
			ss := fx.load(t, handle)

			const n = 8
			done := make(chan []error)
			go func() { done <- readAll(ss, n) }()
			if tc.refresh {
				// Let the other readers pile up behind the refresh.
				<-fx.ref.entered
				time.Sleep(20 * time.Millisecond)
			}
			close(fx.ref.hold)
			for i, err := range <-done {
				if err != nil {
					t.Errorf("read %d: %v", i, err)
				}
			}
			want := int32(0)
			if tc.refresh {
				want = 1
			}
			if got := fx.ref.calls.Load(); got != want {
				t.Errorf("refreshes = %d, want %d for %d concurrent readers", got, want, n)
			}
			auths := fx.srv.auths()
			if last := auths[len(auths)-1]; last != tc.wantAuth {
				t.Errorf("last request sent %q, want %q", last, tc.wantAuth)
			}
			if got := ss.Store().AccessToken; got != strings.TrimPrefix(tc.wantAuth, "Bearer ") {
				t.Errorf("session token = %q", got)
			}
		})
	}
}

func TestTokenRefreshFailure(t *testing.T) {
	for _, tc := range []struct {
		name         string
		edit         func(*store.Session)
		refreshErr   error
		noRefresh    bool // Service.Refresh nil
		wantExpired  bool
		wantRefresh  int32
		wantInErrMsg string
	}{
		{
			name:        "no refresh token",
			edit:        func(s *store.Session) { s.RefreshToken = ""; s.TokenExpiry = now.Add(-time.Minute) },
			wantExpired: true, wantRefresh: 0,
		},
		{
			name:        "refresh not configured",
			edit:        func(s *store.Session) { s.TokenExpiry = now.Add(-time.Minute) },
			noRefresh:   true,
			wantExpired: true, wantRefresh: 0,
		},
		{
			name:        "refresh token refused (RefreshUnavailable)",
			edit:        func(s *store.Session) { s.TokenExpiry = now.Add(-time.Minute) },
			refreshErr:  &smart.Error{Kind: smart.RefreshUnavailable, EHRError: "invalid_grant"},
			wantExpired: true, wantRefresh: 1, wantInErrMsg: "refresh_unavailable",
		},
		{
			name:        "refresh token refused after a 401",
			refreshErr:  &smart.Error{Kind: smart.RefreshUnavailable, EHRError: "invalid_grant"},
			wantExpired: true, wantRefresh: 1,
		},
		{
			// Not a session that ended: the EHR's token endpoint failed.
			// The readers still share the one failed attempt.
			name:        "token endpoint failure",
			edit:        func(s *store.Session) { s.TokenExpiry = now.Add(-time.Minute) },
			refreshErr:  &smart.Error{Kind: smart.TokenEndpointError, Status: 503},
			wantExpired: false, wantRefresh: 1, wantInErrMsg: "the EHR's sign-in service failed: smart: token_endpoint_error",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFHIRServer(t, "at-2") // at-1 is refused
			fx, handle := newFixture(t, srv, tc.edit)
			fx.ref.next = func(*store.Session) (*store.Session, error) { return nil, tc.refreshErr }
			if tc.noRefresh {
				fx.svc.Refresh = nil
			}
			ss := fx.load(t, handle)

			for i, err := range readAll(ss, 8) {
				if !errors.Is(err, fhir.ErrUnauthorized) {
					t.Errorf("read %d = %v, want fhir.ErrUnauthorized", i, err)
				}
				if errors.Is(err, assess.ErrSessionExpired) != tc.wantExpired {
					t.Errorf("read %d = %v; ErrSessionExpired %v, want %v", i, err, !tc.wantExpired, tc.wantExpired)
				}
				if !tc.wantExpired && err != nil && tc.refreshErr != nil && !errors.Is(err, assess.ErrEHRUnavailable) {
					t.Errorf("read %d = %v, want assess.ErrEHRUnavailable: try again, not relaunch", i, err)
				}
				if err != nil && !strings.Contains(err.Error(), tc.wantInErrMsg) {
					t.Errorf("read %d = %v, want it to contain %q", i, err, tc.wantInErrMsg)
				}
			}
			if got := fx.ref.calls.Load(); got != tc.wantRefresh {
				t.Errorf("refreshes = %d, want %d: a failed refresh is not repeated for each request", got, tc.wantRefresh)
			}
			for _, a := range fx.srv.auths() {
				if a != "Bearer at-1" {
					t.Errorf("FHIR request with Authorization %q, want only the session's token", a)
				}
			}

			// The /api/context answer for such a session.
			_, err := fx.svc.Context(context.Background(), ss)
			if tc.wantExpired && !errors.Is(err, assess.ErrSessionExpired) {
				t.Errorf("Context = %v, want ErrSessionExpired", err)
			}
		})
	}
}

func TestContext(t *testing.T) {
	birthSex := func(code string) []any {
		return []any{map[string]any{"url": fhir.ExtBirthSex, "valueCode": code}}
	}
	for _, tc := range []struct {
		name      string
		scope     string
		status    int
		challenge string
		patient   func(p map[string]any)
		check     func(t *testing.T, c *assess.Context)
		requests  int
	}{
		{
			name:     "banner",
			requests: 1,
			check: func(t *testing.T, c *assess.Context) {
				p := c.Patient
				if p.ID != "p1" || p.Name != "Mei Chen" || p.BirthDate != "1950-06-15" || p.Sex != "female" || p.MRN != "MRN-0042" {
					t.Errorf("banner = %+v", p)
				}
				if p.Age == nil || *p.Age != 75 {
					t.Errorf("age = %v, want 75 (birthday tomorrow)", p.Age)
				}
				if len(c.DataErrors) != 0 {
					t.Errorf("DataErrors = %+v", c.DataErrors)
				}
			},
		},
		{
			name:     "birth date in the future: no age, a clear message",
			requests: 1,
			patient:  func(p map[string]any) { p["birthDate"] = "2100-01-01" },
			check:    wantBirthProblem("2100-01-01 is after today", "future"),
		},
		{
			name:     "birth date more than 130 years ago: no age, a clear message",
			requests: 1,
			patient:  func(p map[string]any) { p["birthDate"] = "1890-01-01" },
			check:    wantBirthProblem("1890-01-01 is more than 130 years ago", "too-old"),
		},
		{
			name:     "sex from the birth-sex extension when gender is absent",
			requests: 1,
			patient:  func(p map[string]any) { delete(p, "gender"); p["extension"] = birthSex("M") },
			check:    wantSex("male"),
		},
		{
			name:     "sex from the birth-sex extension when gender is unknown",
			requests: 1,
			patient:  func(p map[string]any) { p["gender"] = "unknown"; p["extension"] = birthSex("F") },
			check:    wantSex("female"),
		},
		{
			name:     "administrative gender wins over birth sex",
			requests: 1,
			patient:  func(p map[string]any) { p["gender"] = "male"; p["extension"] = birthSex("F") },
			check:    wantSex("male"),
		},
		{
			name:     "birth sex UNK leaves gender as recorded",
			requests: 1,
			patient:  func(p map[string]any) { p["gender"] = "other"; p["extension"] = birthSex("UNK") },
			check:    wantSex("other"),
		},
		{
			name:     "scope lacks Patient: no request, a scope data error",
			scope:    "launch openid patient/Observation.rs",
			requests: 0,
			check: func(t *testing.T, c *assess.Context) {
				want := []assess.DataError{{Resource: "Patient", Kind: assess.KindScope, Scope: "patient/Patient.r"}}
				if !sameErrors(c.DataErrors, want) || !strings.Contains(c.DataErrors[0].Message.String(), "not granted access to the demographics") {
					t.Errorf("DataErrors = %+v, want %+v", c.DataErrors, want)
				}
				// The banner says the data is not available, and why; it is
				// not "not recorded".
				if c.Patient == nil || c.Patient.ID != "p1" || c.Patient.Name != "" || !strings.HasPrefix(c.Patient.Unavailable.String(), "Not available") {
					t.Errorf("Patient = %+v, want only the id and why the rest is not available", c.Patient)
				}
			},
		},
		{
			name:     "403: a forbidden data error",
			status:   http.StatusForbidden,
			requests: 1,
			check: func(t *testing.T, c *assess.Context) {
				want := []assess.DataError{{Resource: "Patient", Kind: assess.KindForbidden}}
				if !sameErrors(c.DataErrors, want) || !strings.Contains(c.DataErrors[0].Message.String(), "refused") {
					t.Errorf("DataErrors = %+v, want %+v", c.DataErrors, want)
				}
				if c.Patient == nil || c.Patient.ID != "p1" || c.Patient.Name != "" || !strings.Contains(c.Patient.Unavailable.String(), "refused") {
					t.Errorf("Patient = %+v, want only the id and why the rest is not available", c.Patient)
				}
			},
		},
		{
			name:      "403 insufficient_scope: the read scope is named",
			status:    http.StatusForbidden,
			challenge: `Bearer error="insufficient_scope"`,
			requests:  1,
			check: func(t *testing.T, c *assess.Context) {
				want := []assess.DataError{{Resource: "Patient", Kind: assess.KindScope, Scope: "patient/Patient.r"}}
				if !sameErrors(c.DataErrors, want) {
					t.Errorf("DataErrors = %+v, want %+v", c.DataErrors, want)
				}
			},
		},
		{
			name:     "5xx: unavailable",
			status:   http.StatusNotImplemented,
			requests: 1,
			check: func(t *testing.T, c *assess.Context) {
				want := []assess.DataError{{Resource: "Patient", Kind: assess.KindUnavailable}}
				if !sameErrors(c.DataErrors, want) {
					t.Errorf("DataErrors = %+v, want %+v", c.DataErrors, want)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFHIRServer(t, "at-1")
			srv.status, srv.challenge = tc.status, tc.challenge
			if tc.patient != nil {
				tc.patient(srv.patient)
			}
			fx, handle := newFixture(t, srv, func(s *store.Session) {
				if tc.scope != "" {
					s.Scope = tc.scope
				}
			})
			ss := fx.load(t, handle)
			c, err := fx.svc.Context(context.Background(), ss)
			if err != nil {
				t.Fatalf("Context: %v", err)
			}
			st := ss.Store()
			if !c.NeedPatientBanner || c.Scope != st.Scope || c.FHIRUser != "Practitioner/dr-1" || c.StyleURL != "https://ehr.example/style.json" ||
				c.Tenant != "tenant-1" || c.Encounter != "e1" || !c.ExpiresAt.Equal(now.Add(8*time.Hour)) {
				t.Errorf("context = %+v", c)
			}
			if c.DataErrors == nil {
				t.Error("DataErrors is nil; the API promises an array")
			}
			srv.mu.Lock()
			reqs := slices.Clone(srv.requests)
			srv.mu.Unlock()
			if len(reqs) != tc.requests {
				t.Fatalf("FHIR requests = %d, want %d", len(reqs), tc.requests)
			}
			for _, r := range reqs {
				if r.Method != http.MethodGet || r.URL.Path != "/fhir/Patient/p1" || r.URL.RawQuery != "" ||
					r.Header.Get("Authorization") != "Bearer at-1" || r.Header.Get("Accept") != "application/fhir+json" {
					t.Errorf("request %s %s Authorization %q Accept %q", r.Method, r.URL, r.Header.Get("Authorization"), r.Header.Get("Accept"))
				}
			}
			tc.check(t, c)
		})
	}
}

func wantBirthProblem(msg, issue string) func(t *testing.T, c *assess.Context) {
	return func(t *testing.T, c *assess.Context) {
		t.Helper()
		if c.Patient == nil || c.Patient.Age != nil || !strings.Contains(c.Patient.BirthDateProblem.String(), msg) ||
			c.Patient.BirthDateIssue != issue || c.Patient.MaxAge != 130 {
			t.Errorf("banner = %+v, want no age and a birth date problem %s with %q", c.Patient, issue, msg)
		}
	}
}

func wantSex(sex string) func(t *testing.T, c *assess.Context) {
	return func(t *testing.T, c *assess.Context) {
		t.Helper()
		if c.Patient == nil || c.Patient.Sex != sex {
			t.Errorf("banner = %+v, want sex %q", c.Patient, sex)
		}
	}
}

// sameErrors compares data errors on everything but the message.
func sameErrors(got, want []assess.DataError) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Resource != w.Resource || g.Kind != w.Kind || g.Scope != w.Scope || g.Message.IsZero() {
			return false
		}
	}
	return true
}

// TestShortLivedTokenRefreshedOnce: with tokens that live less than the
// refresh margin, a session refreshes once, not before every request, and
// concurrent readers share that one refresh.
func TestShortLivedTokenRefreshedOnce(t *testing.T) {
	shortLived := func(at string) func(*store.Session) (*store.Session, error) {
		return func(s *store.Session) (*store.Session, error) {
			n := *s
			n.AccessToken = at
			n.TokenExpiry = now.Add(10 * time.Second) // inside the 30 s margin
			return &n, nil
		}
	}
	for _, tc := range []struct {
		name       string
		concurrent bool
	}{{"sequential reads", false}, {"concurrent reads", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFHIRServer(t, "at-2")
			fx, handle := newFixture(t, srv, func(s *store.Session) { s.TokenExpiry = now.Add(10 * time.Second) })
			fx.ref.next = shortLived("at-2")
			ss := fx.load(t, handle)
			client := ss.FHIR()
			var wg sync.WaitGroup
			errs := make(chan error, 5)
			for range 5 {
				read := func() { errs <- client.Read(context.Background(), "Patient", "p1", new(fhir.Patient)) }
				if tc.concurrent {
					wg.Add(1)
					go func() { defer wg.Done(); read() }()
				} else {
					read()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("read: %v", err)
				}
			}
			if got := fx.ref.calls.Load(); got != 1 {
				t.Errorf("refreshes = %d, want 1 for 5 requests", got)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			for _, r := range srv.requests {
				if got := r.Header.Get("Authorization"); got != "Bearer at-2" {
					t.Errorf("request carried %q, want the refreshed token", got)
				}
			}
		})
	}
}

// TestLoadIdleTimeout: every Load reads the session once and records the
// activity at most once a minute; a session unused for the idle timeout, or
// past its lifetime, ends with an error that says which.
func TestLoadIdleTimeout(t *testing.T) {
	srv := newFHIRServer(t)
	fx, handle := newFixture(t, srv, nil)
	clock := now
	fx.svc.Now = func() time.Time { return clock }
	fx.sessions.Sessions.(*store.Memory).Now = func() time.Time { return clock }
	step := func(advance time.Duration, touches int32, want error) {
		t.Helper()
		clock = clock.Add(advance)
		fx.sessions.gets.Store(0)
		fx.sessions.touches.Store(0)
		ss, err := fx.svc.Load(context.Background(), "Bearer "+handle)
		if got := fx.sessions.gets.Load(); got != 1 {
			t.Errorf("+%v: %d store reads, want 1", advance, got)
		}
		if got := fx.sessions.touches.Load(); got != touches {
			t.Errorf("+%v: %d activity writes, want %d", advance, got, touches)
		}
		if want != nil {
			if !errors.Is(err, want) || !errors.Is(err, assess.ErrNoSession) || ss != nil {
				t.Errorf("+%v: Load = %v, %v; want %v (an ErrNoSession)", advance, ss, err, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("+%v: Load: %v", advance, err)
		}
	}
	step(0, 0, nil)                                      // just created: its creation is its activity
	step(59*time.Second, 0, nil)                         // throttled
	step(time.Second, 1, nil)                            // a minute since the last record
	step(time.Second, 0, nil)                            // throttled again
	step(store.DefaultIdleTimeout-2*time.Second, 1, nil) // a second before the idle timeout since the last record
	step(store.DefaultIdleTimeout-time.Second, 1, nil)
	step(store.DefaultIdleTimeout, 0, assess.ErrIdle) // unused for the idle timeout
	step(0, 0, assess.ErrIdle)                        // and it stays ended

	// Past the lifetime, however active.
	fx2, handle2 := newFixture(t, srv, func(s *store.Session) { s.ExpiresAt = now.Add(90 * time.Minute) })
	clock2 := now
	fx2.svc.Now = func() time.Time { return clock2 }
	fx2.sessions.Sessions.(*store.Memory).Now = func() time.Time { return clock2 }
	for range 3 {
		clock2 = clock2.Add(29 * time.Minute)
		if _, err := fx2.svc.Load(context.Background(), "Bearer "+handle2); err != nil {
			t.Fatalf("Load while in use: %v", err)
		}
	}
	clock2 = clock2.Add(3 * time.Minute)
	if _, err := fx2.svc.Load(context.Background(), "Bearer "+handle2); !errors.Is(err, assess.ErrLifetime) || !errors.Is(err, assess.ErrNoSession) {
		t.Errorf("Load past the lifetime = %v, want ErrLifetime", err)
	}

	// A failed activity write does not fail the request: the session is
	// served, the error is kept for the caller's log, nothing is retried
	// within the request, and the next request writes the activity again.
	fx3, handle3 := newFixture(t, srv, nil)
	clock3 := now
	fx3.svc.Now = func() time.Time { return clock3 }
	fx3.sessions.Sessions.(*store.Memory).Now = func() time.Time { return clock3 }
	clock3 = clock3.Add(2 * time.Minute)
	fx3.sessions.touchFail = fmt.Errorf("%w: firestore down", store.ErrUnavailable)
	fx3.sessions.touches.Store(0)
	ss, err := fx3.svc.Load(context.Background(), "Bearer "+handle3)
	if err != nil || ss == nil {
		t.Fatalf("Load with a failing activity write = %v, %v; want the session", ss, err)
	}
	if aerr := ss.ActivityError(); !errors.Is(aerr, store.ErrUnavailable) || !strings.Contains(aerr.Error(), "firestore down") {
		t.Errorf("ActivityError = %v, want the store's error", aerr)
	}
	if n := fx3.sessions.touches.Load(); n != 1 {
		t.Errorf("%d activity writes, want 1 (no retry within the request)", n)
	}
	fx3.sessions.touchFail = nil
	fx3.sessions.touches.Store(0)
	clock3 = clock3.Add(time.Second)
	ss, err = fx3.svc.Load(context.Background(), "Bearer "+handle3)
	if err != nil || ss.ActivityError() != nil {
		t.Fatalf("Load after the store came back = %v, %v", err, ss.ActivityError())
	}
	if n := fx3.sessions.touches.Load(); n != 1 {
		t.Errorf("%d activity writes on the next request, want 1: the failed one left the activity unrecorded", n)
	}
	// Activity that was never recorded counts as none: the session ends
	// the idle timeout after the last recorded activity, never later.
	fx3.sessions.touchFail = fmt.Errorf("%w: firestore down", store.ErrUnavailable)
	for _, d := range []time.Duration{10 * time.Minute, 10 * time.Minute, store.DefaultIdleTimeout - 20*time.Minute - time.Second} {
		clock3 = clock3.Add(d)
		if _, err := fx3.svc.Load(context.Background(), "Bearer "+handle3); err != nil {
			t.Fatalf("Load while activity writes fail: %v", err)
		}
	}
	clock3 = clock3.Add(time.Second)
	if _, err := fx3.svc.Load(context.Background(), "Bearer "+handle3); !errors.Is(err, assess.ErrIdle) {
		t.Errorf("Load 30 min after the last recorded activity = %v, want ErrIdle", err)
	}
}

// TestAssessDeadline: one deadline bounds all of an assessment's FHIR
// reads. A search the EHR never answers is cancelled when it passes (the
// EHR sees the request end, rather than SMART Calc waiting out its own
// client timeout), and the assessment comes back with what was read and
// says what was not.
func TestAssessDeadline(t *testing.T) {
	srv := newFHIRServer(t, "at-1")
	cancelled := make(chan bool, 1)
	base := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fhir/Observation" {
			base.ServeHTTP(w, r)
			return
		}
		select {
		case <-r.Context().Done():
			cancelled <- true
		case <-time.After(15 * time.Second):
			cancelled <- false
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","entry":[]}`)
		}
	})
	fx, handle := newFixture(t, srv, nil)
	engine, err := calc.NewEngine(mustConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	fx.svc.Engine, fx.svc.Scoring = engine, engine.Config()
	fx.svc.AssessTimeout = 300 * time.Millisecond
	a, err := fx.svc.Assess(context.Background(), fx.load(t, handle), nil)
	if err != nil {
		t.Fatalf("Assess: %v", err)
	}
	if !<-cancelled {
		t.Error("the Observation search was answered, not cancelled at the assessment's deadline")
	}
	var obs *assess.DataError
	for i := range a.DataErrors {
		if a.DataErrors[i].Resource == "Observation" {
			obs = &a.DataErrors[i]
		}
	}
	if obs == nil || obs.Kind != assess.KindUnavailable || obs.Message.Key == "" {
		t.Fatalf("Observation data error %+v, want it reported unavailable; all: %+v", obs, a.DataErrors)
	}
	if a.Patient == nil || a.Patient.Name != "Mei Chen" {
		t.Errorf("the patient, read in time, is missing: %+v", a.Patient)
	}
	t.Logf("what the assessment says: %s %+v", obs.Message.Key, obs.Inputs)
}

// TestLoadAfterKeyRotation: a session sealed under a token-sealing key that
// has since been rotated cannot be used, and is a session to relaunch
// (ErrUnsealed, wrapping ErrNoSession), not a fault.
func TestLoadAfterKeyRotation(t *testing.T) {
	fx, handle := newFixture(t, newFHIRServer(t), nil)
	mem := fx.sessions.Sessions.(*store.Memory)
	key := make([]byte, store.SealKeySize)
	rand.Read(key)
	rotated, err := store.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	mem.Sealer = rotated
	ss, err := fx.svc.Load(context.Background(), "Bearer "+handle)
	if ss != nil || !errors.Is(err, assess.ErrUnsealed) || !errors.Is(err, assess.ErrNoSession) || !errors.Is(err, store.ErrUnsealable) {
		t.Fatalf("Load after a key rotation = %v, %v; want ErrUnsealed (an ErrNoSession) wrapping store.ErrUnsealable", ss, err)
	}
}
