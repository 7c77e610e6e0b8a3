package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "tok-SECRET-4b8f0e"

// recorded is what the test servers saw of one request.
type recorded struct {
	Method, Path, RawQuery, Accept, Authorization string
}

// recorder wraps a handler and keeps every request it serves.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	h    http.HandlerFunc
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Accept"), r.Header.Get("Authorization")})
	rc.mu.Unlock()
	rc.h(w, r)
}

func (rc *recorder) requests() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.reqs...)
}

func newServer(t testing.TB, h http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	rc := &recorder{h: h}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv, rc
}

// newClient returns a client for srv's /fhir base with the test token and no
// waiting between retries.
func newClient(srv *httptest.Server) *Client {
	return &Client{
		Base:       srv.URL + "/fhir/",
		HTTPClient: srv.Client(),
		Token:      func(context.Context) (string, error) { return testToken, nil },
		Backoff:    func(int) time.Duration { return 0 },
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func bundle(next string, resources ...string) string {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Bundle","type":"searchset"`)
	if next != "" {
		fmt.Fprintf(&b, `,"link":[{"relation":"self","url":"x"},{"relation":"next","url":%q}]`, next)
	}
	b.WriteString(`,"entry":[`)
	for i, r := range resources {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"fullUrl":"urn:x:%d","resource":%s,"search":{"mode":"match"}}`, i, r)
	}
	b.WriteString(`]}`)
	return b.String()
}

func TestReadSendsExactRequest(t *testing.T) {
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Patient","id":"p-1","gender":"female","birthDate":"1948-02-03","name":[{"use":"official","text":"王小明"}]}`)
	})
	var p Patient
	if err := newClient(srv).Read(context.Background(), "Patient", "p-1", &p); err != nil {
		t.Fatal(err)
	}
	want := []recorded{{"GET", "/fhir/Patient/p-1", "", "application/fhir+json", "Bearer " + testToken}}
	if got := rc.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	if p.ID != "p-1" || p.Gender != "female" || p.DisplayName() != "王小明" {
		t.Errorf("decoded %+v", p)
	}
}

func TestReadRefusesBadInputAndWrongResource(t *testing.T) {
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fhir/Patient/other":
			writeJSON(w, 200, `{"resourceType":"Patient","id":"someone-else"}`)
		case "/fhir/Patient/obs":
			writeJSON(w, 200, `{"resourceType":"Observation","id":"obs"}`)
		case "/fhir/Patient/oo":
			writeJSON(w, 200, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"nope"}]}`)
		case "/fhir/Patient/bad":
			writeJSON(w, 200, `{"resourceType":"Patient","id":"bad",`)
		case "/fhir/Patient/badtype":
			writeJSON(w, 200, `{"resourceType":"Patient","id":"badtype","birthDate":19480203}`)
		case "/fhir/Patient/html":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>login</html>")
		}
	})
	c := newClient(srv)
	tests := []struct {
		typ, id  string
		kind     error
		contains string
		sent     bool
	}{
		{"Patient", "../Observation/1", nil, "invalid resource id", false},
		{"Patient", "a/b", nil, "invalid resource id", false},
		{"Patient", "", nil, "invalid resource id", false},
		{"patient", "1", nil, "invalid resource type", false},
		{"Patient", "other", ErrBadResponse, "with another id", true},
		{"Patient", "obs", ErrBadResponse, "got Observation", true},
		{"Patient", "oo", ErrBadResponse, "nope", true},
		{"Patient", "bad", ErrBadResponse, "truncated JSON", true},
		{"Patient", "badtype", ErrBadResponse, `"birthDate" has the wrong type`, true},
		{"Patient", "html", ErrBadResponse, "malformed JSON", true},
	}
	for _, tt := range tests {
		before := len(rc.requests())
		var p Patient
		err := c.Read(context.Background(), tt.typ, tt.id, &p)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Read(%s, %q) = %v, want *Error", tt.typ, tt.id, err)
			continue
		}
		if tt.kind != nil && !errors.Is(err, tt.kind) || tt.kind == nil && e.Kind != nil {
			t.Errorf("Read(%s, %q) kind = %v, want %v", tt.typ, tt.id, e.Kind, tt.kind)
		}
		if !strings.Contains(err.Error(), tt.contains) || !strings.HasPrefix(err.Error(), "fhir: read ") {
			t.Errorf("Read(%s, %q) error %q, want it to contain %q", tt.typ, tt.id, err, tt.contains)
		}
		if sent := len(rc.requests()) > before; sent != tt.sent {
			t.Errorf("Read(%s, %q) sent a request: %v, want %v", tt.typ, tt.id, sent, tt.sent)
		}
	}
}

func TestBaseURLValidation(t *testing.T) {
	for _, base := range []string{"", "ftp://x/fhir", "/fhir", "https://user:pw@x/fhir", "https://x/fhir?a=b", "http://[::1"} {
		c := &Client{Base: base}
		err := c.Read(context.Background(), "Patient", "1", new(Patient))
		if err == nil || !strings.Contains(err.Error(), "invalid base URL") {
			t.Errorf("Base %q: err = %v", base, err)
		}
	}
}

func TestSearchEncodesParameters(t *testing.T) {
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		// The decoded values must survive intact, "//" included.
		q := r.URL.Query()
		if q.Get("code") != "http://loinc.org|718-7,http://loinc.org|20509-6" || q.Get("date") != "ge2025-01-02T03:04:05Z" {
			t.Errorf("decoded query = %v", q)
		}
		writeJSON(w, 200, bundle(""))
	})
	params := url.Values{
		"patient": {"p-1"},
		"code":    {SearchToken("http://loinc.org", "718-7") + "," + SearchToken("http://loinc.org", "20509-6")},
		"date":    {"ge2025-01-02T03:04:05Z"},
		"_sort":   {"-date"},
		"_count":  {"200"},
	}
	if _, err := newClient(srv).Search(context.Background(), "Observation", params); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	want := "_count=200&_sort=-date&code=http%3A%2F%2Floinc.org%7C718-7%2Chttp%3A%2F%2Floinc.org%7C20509-6&date=ge2025-01-02T03%3A04%3A05Z&patient=p-1"
	if len(got) != 1 || got[0].Path != "/fhir/Observation" || got[0].RawQuery != want {
		t.Fatalf("requests = %+v\nwant query %s", got, want)
	}
	if strings.Contains(got[0].RawQuery, "//") || strings.Contains(got[0].RawQuery, "|") {
		t.Errorf("query has unencoded characters: %s", got[0].RawQuery)
	}
	if got[0].Accept != "application/fhir+json" || got[0].Authorization != "Bearer "+testToken {
		t.Errorf("headers = %+v", got[0])
	}
}

func obs(id string) string {
	return `{"resourceType":"Observation","id":"` + id + `","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"subject":{"reference":"Patient/p-1"}}`
}

func TestSearchPaging(t *testing.T) {
	foreign, foreignRC := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, bundle("", obs("stolen")))
	})
	var srvURL string
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		switch page {
		case "":
			writeJSON(w, 200, bundle("/fhir/Observation?page=2&_getpages=abc", obs("o1"), obs("o2")))
		case "2": // absolute next link on the same origin
			writeJSON(w, 200, bundle(srvURL+"/fhir/Observation?page=3", obs("o3")))
		case "3":
			writeJSON(w, 200, bundle("?page=4", obs("o4")))
		case "4":
			writeJSON(w, 200, bundle("", obs("o5")))
		case "evil":
			writeJSON(w, 200, bundle(foreign.URL+"/fhir/Observation?page=2", obs("o1")))
		case "tenant": // same origin, another tenant's FHIR base
			writeJSON(w, 200, bundle(srvURL+"/other-tenant/fhir/Observation?page=2", obs("o1")))
		case "climb":
			writeJSON(w, 200, bundle(srvURL+"/fhir/%2E%2E/other-tenant/Observation?page=2", obs("o1")))
		case "scheme":
			writeJSON(w, 200, bundle(strings.Replace(srvURL, "http:", "https:", 1)+"/fhir/Observation?page=2", obs("o1")))
		}
	})
	srvURL = srv.URL

	ids := func(res *SearchResult) string {
		var s []string
		for _, e := range res.Entries {
			s = append(s, e.ID)
		}
		return strings.Join(s, ",")
	}

	tests := []struct {
		name      string
		maxPages  int
		first     string
		wantIDs   string
		wantReqs  int
		truncated bool
		wantErr   bool
	}{
		{name: "all pages", maxPages: 0, wantIDs: "o1,o2,o3,o4,o5", wantReqs: 4},
		{name: "bounded", maxPages: 2, wantIDs: "o1,o2,o3", wantReqs: 2, truncated: true},
		{name: "one page", maxPages: 1, wantIDs: "o1,o2", wantReqs: 1, truncated: true},
		{name: "foreign origin refused", first: "evil", wantIDs: "o1", wantReqs: 1, wantErr: true},
		{name: "other scheme refused", first: "scheme", wantIDs: "o1", wantReqs: 1, wantErr: true},
		{name: "another tenant's path refused", first: "tenant", wantIDs: "o1", wantReqs: 1, wantErr: true},
		{name: "encoded dot segments refused", first: "climb", wantIDs: "o1", wantReqs: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rc.requests())
			c := newClient(srv)
			c.MaxPages = tt.maxPages
			params := url.Values{"patient": {"p-1"}}
			if tt.first != "" {
				params.Set("page", tt.first)
			}
			res, err := c.Search(context.Background(), "Observation", params)
			if tt.wantErr {
				if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "another origin") {
					t.Errorf("err = %v, want a refused next link", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); got != tt.wantIDs {
				t.Errorf("ids = %s, want %s", got, tt.wantIDs)
			}
			reqs := rc.requests()[before:]
			if len(reqs) != tt.wantReqs {
				t.Errorf("requests = %d, want %d: %+v", len(reqs), tt.wantReqs, reqs)
			}
			for _, r := range reqs {
				if r.Authorization != "Bearer "+testToken || r.Accept != "application/fhir+json" {
					t.Errorf("page request headers = %+v", r)
				}
			}
			if res.Truncated != tt.truncated {
				t.Errorf("Truncated = %v, want %v", res.Truncated, tt.truncated)
			}
		})
	}
	if n := len(foreignRC.requests()); n != 0 {
		t.Errorf("the foreign server got %d requests", n)
	}
}

func TestRedirectToAnotherOriginRefused(t *testing.T) {
	foreign, foreignRC := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Patient","id":"1"}`)
	})
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fhir/Patient/1" {
			http.Redirect(w, r, foreign.URL+"/fhir/Patient/1", http.StatusFound)
			return
		}
		if r.URL.Path == "/fhir/Patient/2" {
			http.Redirect(w, r, "/fhir/Patient/2b", http.StatusFound)
			return
		}
		writeJSON(w, 200, `{"resourceType":"Patient","id":"2"}`)
	})
	c := newClient(srv)
	err := c.Read(context.Background(), "Patient", "1", new(Patient))
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "redirect to another origin refused") {
		t.Errorf("err = %v", err)
	}
	if n := len(foreignRC.requests()); n != 0 {
		t.Errorf("the foreign server got %d requests", n)
	}
	if err := c.Read(context.Background(), "Patient", "2", new(Patient)); err != nil {
		t.Errorf("same-origin redirect: %v", err)
	}
}

// respond is one scripted response.
type respond struct {
	status     int
	retryAfter string
	body       string
	hangUp     bool // close the connection without answering
}

func scripted(t *testing.T, script []respond) (*httptest.Server, *recorder) {
	var n atomic.Int32
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(script) {
			t.Errorf("unexpected request %d", i+1)
			w.WriteHeader(599)
			return
		}
		s := script[i]
		if s.hangUp {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		body := s.body
		if body == "" && s.status == 200 {
			body = `{"resourceType":"Patient","id":"1"}`
		}
		writeJSON(w, s.status, body)
	})
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		script     []respond
		maxRetries int
		wantReqs   int
		wantKind   error // nil means success
		wantStatus int
		wantWaits  []time.Duration
	}{
		{name: "429 then ok", script: []respond{{status: 429}, {status: 429}, {status: 200}}, wantReqs: 3, wantWaits: []time.Duration{0, 0}},
		{name: "503 then ok", script: []respond{{status: 503}, {status: 200}}, wantReqs: 2, wantWaits: []time.Duration{0}},
		{name: "503 bounded", script: []respond{{status: 503}, {status: 503}, {status: 503}}, wantReqs: 3, wantKind: ErrUnavailable, wantStatus: 503, wantWaits: []time.Duration{0, 0}},
		{name: "429 bounded by MaxRetries", maxRetries: 1, script: []respond{{status: 429}, {status: 429}}, wantReqs: 2, wantKind: ErrUnavailable, wantStatus: 429, wantWaits: []time.Duration{0}},
		{name: "retries off", maxRetries: -1, script: []respond{{status: 503}}, wantReqs: 1, wantKind: ErrUnavailable, wantStatus: 503},
		{name: "Retry-After honoured", script: []respond{{status: 429, retryAfter: "2"}, {status: 200}}, wantReqs: 2, wantWaits: []time.Duration{2 * time.Second}},
		{name: "Retry-After beyond the cap ends at once", script: []respond{{status: 503, retryAfter: "3600"}}, wantReqs: 1, wantKind: ErrUnavailable, wantStatus: 503},
		{name: "500 not retried", script: []respond{{status: 500}}, wantReqs: 1, wantKind: ErrUnavailable, wantStatus: 500},
		{name: "502 not retried", script: []respond{{status: 502}}, wantReqs: 1, wantKind: ErrUnavailable, wantStatus: 502},
		{name: "400 not retried", script: []respond{{status: 400, body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad param"}]}`}}, wantReqs: 1, wantStatus: 400},
		{name: "404 not retried", script: []respond{{status: 404}}, wantReqs: 1, wantKind: ErrNotFound, wantStatus: 404},
		{name: "410 is not found", script: []respond{{status: 410}}, wantReqs: 1, wantKind: ErrNotFound, wantStatus: 410},
		{name: "connection dropped then ok", script: []respond{{hangUp: true}, {status: 200}}, wantReqs: 2, wantWaits: []time.Duration{0}},
		{name: "connection dropped bounded", script: []respond{{hangUp: true}, {hangUp: true}, {hangUp: true}}, wantReqs: 3, wantKind: ErrUnavailable, wantWaits: []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rc := scripted(t, tt.script)
			c := newClient(srv)
			c.MaxRetries = tt.maxRetries
			var waits []time.Duration
			c.sleep = func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}
			err := c.Read(context.Background(), "Patient", "1", new(Patient))
			if n := len(rc.requests()); n != tt.wantReqs {
				t.Errorf("requests = %d, want %d", n, tt.wantReqs)
			}
			if fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits = %v, want %v", waits, tt.wantWaits)
			}
			if tt.wantKind == nil && tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Kind != tt.wantKind || e.Status != tt.wantStatus {
				t.Errorf("err = %v (kind %v, status %d), want kind %v status %d", err, e.Kind, e.Status, tt.wantKind, tt.wantStatus)
			}
		})
	}
}

func TestDefaultBackoffIsBounded(t *testing.T) {
	c := &Client{}
	for attempt := 1; attempt <= 10; attempt++ {
		d := c.backoff(attempt)
		if d < 0 || d > 2*time.Second {
			t.Errorf("backoff(%d) = %v, outside [0, 2s]", attempt, d)
		}
	}
	if d := c.backoff(1); d < 125*time.Millisecond || d > 250*time.Millisecond {
		t.Errorf("backoff(1) = %v, want 125–250ms", d)
	}
}

func TestRetryWaitStopsAtContextEnd(t *testing.T) {
	srv, rc := scripted(t, []respond{{status: 503, retryAfter: "5"}})
	c := newClient(srv)
	c.MaxRetryAfter = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	err := c.Read(ctx, "Patient", "1", new(Patient))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want ErrUnavailable and context.Canceled", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newClient(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Read(ctx, "Patient", "1", new(Patient))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("requests = %d, want 1 (no retry after the deadline)", n)
	}
	// An http.Client timeout with time left in the context is retried,
	// MaxRetries times at most.
	c2 := newClient(srv)
	hc := *srv.Client()
	hc.Timeout = 50 * time.Millisecond
	c2.HTTPClient = &hc
	before := len(rc.requests())
	err = c2.Read(context.Background(), "Patient", "1", new(Patient))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("client timeout err = %v", err)
	}
	if n := len(rc.requests()) - before; n != 1+DefaultMaxRetries {
		t.Errorf("client timeout: requests = %d, want %d", n, 1+DefaultMaxRetries)
	}
}

// timeoutErr is a net.Error that timed out, as a dialer's connect timeout.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestConnectTimeoutRetried: a connection the EHR does not accept within the
// connect timeout is retried at once (with backoff), and the read succeeds
// on the next connection.
func TestConnectTimeoutRetried(t *testing.T) {
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Patient","id":"1"}`)
	})
	for _, tt := range []struct {
		name     string
		failing  int // dials that time out first
		wantErr  bool
		wantReqs int
	}{
		{"one dropped connection", 1, false, 1},
		{"two dropped connections", 2, false, 1},
		{"every connection dropped", 1 + DefaultMaxRetries, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rc.requests())
			var dials atomic.Int32
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.DisableKeepAlives = true
			d := &net.Dialer{}
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if dials.Add(1) <= int32(tt.failing) {
					return nil, &net.OpError{Op: "dial", Net: network, Err: timeoutErr{}}
				}
				return d.DialContext(ctx, network, addr)
			}
			c := newClient(srv)
			c.HTTPClient = &http.Client{Transport: tr}
			err := c.Read(context.Background(), "Patient", "1", new(Patient))
			if (err != nil) != tt.wantErr || tt.wantErr && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := int(dials.Load()); got != min(tt.failing+1, 1+DefaultMaxRetries) {
				t.Errorf("dials = %d", got)
			}
			if n := len(rc.requests()) - before; n != tt.wantReqs {
				t.Errorf("requests reaching the EHR = %d, want %d", n, tt.wantReqs)
			}
		})
	}
}

// TestLimitBoundsConcurrentRequests: clients sharing one Limit never have
// more requests open at once than its size, and every read completes.
func TestLimitBoundsConcurrentRequests(t *testing.T) {
	var open, peak atomic.Int32
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := open.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		open.Add(-1)
		writeJSON(w, 200, `{"resourceType":"Patient","id":"1"}`)
	})
	for _, size := range []int{1, 3} {
		peak.Store(0)
		limit := make(chan struct{}, size)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := newClient(srv)
				c.Limit = limit
				errs <- c.Read(context.Background(), "Patient", "1", new(Patient))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("limit %d: %v", size, err)
			}
		}
		if p := peak.Load(); p > int32(size) || p == 0 {
			t.Errorf("limit %d: peak of %d concurrent requests", size, p)
		}
		if len(limit) != 0 {
			t.Errorf("limit %d: %d slots still held", size, len(limit))
		}
	}
}

func TestUnauthorizedRefreshesOnce(t *testing.T) {
	const fresh = "tok-FRESH-77aa"
	tests := []struct {
		name        string
		accept      string // the token the server accepts; "" accepts none
		refresh     func(context.Context) (string, error)
		wantReqs    int
		wantAuth    []string
		wantErr     bool
		wantRefresh int
	}{
		{name: "refresh then ok", accept: fresh, refresh: func(context.Context) (string, error) { return fresh, nil },
			wantReqs: 2, wantAuth: []string{testToken, fresh}, wantRefresh: 1},
		{name: "still refused", accept: "", refresh: func(context.Context) (string, error) { return fresh, nil },
			wantReqs: 2, wantAuth: []string{testToken, fresh}, wantErr: true, wantRefresh: 1},
		{name: "refresh fails", accept: fresh, refresh: func(context.Context) (string, error) { return "", errors.New("invalid_grant") },
			wantReqs: 1, wantAuth: []string{testToken}, wantErr: true, wantRefresh: 1},
		{name: "refresh returns nothing", accept: fresh, refresh: func(context.Context) (string, error) { return "", nil },
			wantReqs: 1, wantAuth: []string{testToken}, wantErr: true, wantRefresh: 1},
		{name: "no refresh hook", accept: fresh, wantReqs: 1, wantAuth: []string{testToken}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.accept == "" || r.Header.Get("Authorization") != "Bearer "+tt.accept {
					w.Header().Set("WWW-Authenticate", `Bearer realm="fhir", error="invalid_token", error_description="expired"`)
					writeJSON(w, 401, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login","diagnostics":"token expired"}]}`)
					return
				}
				writeJSON(w, 200, `{"resourceType":"Patient","id":"1"}`)
			})
			c := newClient(srv)
			var calls atomic.Int32
			if tt.refresh != nil {
				c.OnUnauthorized = func(ctx context.Context) (string, error) {
					calls.Add(1)
					return tt.refresh(ctx)
				}
			}
			err := c.Read(context.Background(), "Patient", "1", new(Patient))
			reqs := rc.requests()
			var auth []string
			for _, r := range reqs {
				auth = append(auth, strings.TrimPrefix(r.Authorization, "Bearer "))
			}
			if len(reqs) != tt.wantReqs || fmt.Sprint(auth) != fmt.Sprint(tt.wantAuth) {
				t.Errorf("requests carried tokens %v, want %v", auth, tt.wantAuth)
			}
			if int(calls.Load()) != tt.wantRefresh {
				t.Errorf("refresh calls = %d, want %d", calls.Load(), tt.wantRefresh)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				// Later requests use the refreshed token straight away.
				if err := c.Read(context.Background(), "Patient", "1", new(Patient)); err != nil {
					t.Errorf("second read: %v", err)
				}
				if last := rc.requests()[len(rc.requests())-1]; last.Authorization != "Bearer "+fresh || calls.Load() != 1 {
					t.Errorf("second read used %q after %d refreshes", last.Authorization, calls.Load())
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrUnauthorized) || e.Status != 401 || e.Code != "invalid_token" {
				t.Errorf("err = %#v, want ErrUnauthorized with status 401 and code invalid_token", err)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), fresh) {
				t.Errorf("error leaks a token: %v", err)
			}
		})
	}
}

func TestConcurrentUnauthorizedShareOneRefresh(t *testing.T) {
	const fresh = "tok-FRESH-c0ffee"
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fresh {
			writeJSON(w, 401, "")
			return
		}
		writeJSON(w, 200, bundle(""))
	})
	c := newClient(srv)
	var calls atomic.Int32
	c.OnUnauthorized = func(context.Context) (string, error) {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond) // let the other 401s arrive while refreshing
		return fresh, nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.Search(context.Background(), "Condition", url.Values{"patient": {"1"}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("search %d: %v", i, err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("OnUnauthorized called %d times, want 1", calls.Load())
	}
	if n := len(rc.requests()); n > 16 || n < 9 {
		t.Errorf("requests = %d, want at most one retry per search", n)
	}
}

func TestTokenErrorIsUnauthorized(t *testing.T) {
	srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, bundle("")) })
	c := newClient(srv)
	sessionGone := errors.New("session expired")
	c.Token = func(context.Context) (string, error) { return "", sessionGone }
	_, err := c.Search(context.Background(), "Condition", nil)
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, sessionGone) {
		t.Errorf("err = %v", err)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("requests = %d, want 0", n)
	}
	// No Token func: no Authorization header at all.
	c.Token = nil
	if _, err := c.Search(context.Background(), "Condition", nil); err != nil {
		t.Fatal(err)
	}
	if r := rc.requests()[0]; r.Authorization != "" {
		t.Errorf("Authorization = %q without a token source", r.Authorization)
	}
}

const btgOutcome = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"suppressed","details":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"BTG"}],"text":"This chart is restricted. Break-the-glass access is required."}}]}`

func TestForbidden(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    string
		body      string
		scope     bool
		btg       bool
		wantInMsg string
	}{
		{name: "break the glass", status: 403, body: btgOutcome, btg: true, wantInMsg: "This chart is restricted. Break-the-glass access is required."},
		{name: "insufficient scope", status: 403, header: `Bearer error="insufficient_scope", scope="patient/Observation.rs"`, scope: true, wantInMsg: "insufficient_scope"},
		{name: "plain forbidden", status: 403, body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden","diagnostics":"User lacks access"}]}`, wantInMsg: "User lacks access"},
		{name: "forbidden, not JSON", status: 403, body: `<html>denied</html>`, wantInMsg: "forbidden (HTTP 403)"},
		{name: "200 OperationOutcome asking for break the glass", status: 200, body: btgOutcome, btg: true, wantInMsg: "Break-the-glass access is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rc := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("WWW-Authenticate", tt.header)
				}
				writeJSON(w, tt.status, tt.body)
			})
			_, err := newClient(srv).Search(context.Background(), "Observation", url.Values{"patient": {"1"}})
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrForbidden) {
				t.Fatalf("err = %v, want ErrForbidden", err)
			}
			if errors.Is(err, ErrScope) != tt.scope || e.BreakTheGlass != tt.btg {
				t.Errorf("scope %v btg %v, want %v %v", errors.Is(err, ErrScope), e.BreakTheGlass, tt.scope, tt.btg)
			}
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
				t.Errorf("a refusal also matches a missing-data sentinel: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantInMsg)
			}
			if msg := e.Message(); !strings.Contains(msg, "Observation") || (tt.btg && !strings.Contains(msg, "break-the-glass")) || (tt.scope && !strings.Contains(msg, "not granted")) {
				t.Errorf("Message() = %q", msg)
			}
			if n := len(rc.requests()); n != 1 {
				t.Errorf("requests = %d, want 1 (no retry on 403)", n)
			}
		})
	}
}

func TestSearchKeepsRecordsBesideBreakTheGlassWarning(t *testing.T) {
	body := `{"resourceType":"Bundle","type":"searchset","entry":[` +
		`{"resource":` + obs("o1") + `,"search":{"mode":"match"}},` +
		`{"resource":` + btgOutcome + `,"search":{"mode":"outcome"}}]}`
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, body) })
	res, err := newClient(srv).Search(context.Background(), "Observation", nil)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrForbidden) || !e.BreakTheGlass || e.Status != 200 {
		t.Fatalf("err = %v, want a break-the-glass ErrForbidden", err)
	}
	if res == nil || len(res.Entries) != 1 || res.Entries[0].ID != "o1" || len(res.Outcomes) != 1 {
		t.Errorf("result = %+v, want the one record and the outcome", res)
	}
}

func TestSearchOutcomeWarningsKept(t *testing.T) {
	body := `{"resourceType":"Bundle","type":"searchset","entry":[` +
		`{"resource":` + obs("o1") + `},` +
		`{"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"informational","diagnostics":"Some results filtered"}]}}]}`
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, body) })
	res, err := newClient(srv).Search(context.Background(), "Observation", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || len(res.Outcomes) != 1 || res.Outcomes[0].Text() != "Some results filtered" {
		t.Errorf("result = %+v", res)
	}
}

func TestSearchMalformed(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", `<html>`, "malformed JSON"},
		{"truncated", `{"resourceType":"Bundle","entry":[`, "truncated JSON"},
		{"not a bundle", `{"resourceType":"Patient","id":"1"}`, `got resourceType "Patient"`},
		{"entry without resourceType object", `{"resourceType":"Bundle","entry":[{"resource":[1,2]}]}`, "wrong type"},
		{"link of wrong type", `{"resourceType":"Bundle","link":"next"}`, "wrong type"},
		{"200 OperationOutcome", `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"search failed"}]}`, "search failed"},
	}
	for _, tt := range tests {
		srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, tt.body) })
		_, err := newClient(srv).Search(context.Background(), "Observation", nil)
		if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "fhir: search Observation: ") {
			t.Errorf("%s: err = %v, want ErrBadResponse containing %q", tt.name, err, tt.want)
		}
	}
}

func TestResponseSizeCap(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = obs(fmt.Sprint("o", i))
	}
	big := bundle("", many...)
	for _, chunked := range []bool{false, true} {
		srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if chunked {
				w.Header().Set("Content-Type", "application/fhir+json")
				w.WriteHeader(200)
				w.(http.Flusher).Flush() // no Content-Length
			}
			fmt.Fprint(w, big)
		})
		c := newClient(srv)
		c.MaxResponseBytes = 4096
		_, err := c.Search(context.Background(), "Observation", nil)
		if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "4096-byte limit") {
			t.Errorf("chunked=%v: err = %v", chunked, err)
		}
		c.MaxResponseBytes = int64(len(big))
		if _, err := c.Search(context.Background(), "Observation", nil); err != nil {
			t.Errorf("chunked=%v: at the limit: %v", chunked, err)
		}
	}
}

func TestErrorsNeverCarryTheTokenOrURL(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "echo": // a server that echoes the Authorization header into its outcome
			writeJSON(w, 400, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad"}]}`)
		case "401":
			w.Header().Set("WWW-Authenticate", `Bearer error="`+r.Header.Get("Authorization")+`"`)
			writeJSON(w, 401, "")
		case "hang":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			writeJSON(w, 500, "oops")
		}
	})
	for _, cs := range []string{"echo", "401", "hang", "500"} {
		c := newClient(srv)
		_, err := c.Search(context.Background(), "Observation", url.Values{"case": {cs}, "patient": {"patient-secret-id"}})
		if err == nil {
			t.Fatalf("%s: no error", cs)
		}
		var e *Error
		errors.As(err, &e)
		for _, s := range []string{err.Error(), e.Message()} {
			if strings.Contains(s, testToken) || strings.Contains(s, "patient-secret-id") || strings.Contains(s, srv.URL) {
				t.Errorf("%s: error text leaks the token or URL: %s", cs, s)
			}
		}
	}
	// A server that closes the connection: the unreachable-host error must not carry the URL.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c := &Client{Base: dead.URL + "/fhir", Token: func(context.Context) (string, error) { return testToken, nil }, Backoff: func(int) time.Duration { return 0 }}
	_, err := c.Search(context.Background(), "Observation", url.Values{"patient": {"patient-secret-id"}})
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "patient-secret-id") || strings.Contains(err.Error(), dead.URL) {
		t.Errorf("connection refused: err = %v", err)
	}
}

func TestChallengeError(t *testing.T) {
	tests := map[string]string{
		`Bearer error="insufficient_scope"`:                                      "insufficient_scope",
		`Bearer realm="x", error_description="a error=b", error="invalid_token"`: "invalid_token",
		`Bearer error=invalid_token, realm="x"`:                                  "invalid_token",
		`Bearer realm="x"`:                                                       "",
		`Bearer error="Bearer abc.def"`:                                          "",
		``:                                                                       "",
	}
	for in, want := range tests {
		if got := challengeError(in); got != want {
			t.Errorf("challengeError(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecode(t *testing.T) {
	entries := []Entry{
		{ResourceType: "Observation", ID: "a", Resource: json.RawMessage(obs("a"))},
		{ResourceType: "Medication", ID: "m", Resource: json.RawMessage(`{"resourceType":"Medication","id":"m"}`)},
		{ResourceType: "Observation", ID: "b", Resource: json.RawMessage(`{"resourceType":"Observation","id":"b","valueQuantity":{"value":"7.5"}}`)},
		{ResourceType: "Observation", ID: "c", Resource: json.RawMessage(obs("c"))},
		{ResourceType: "Observation", ID: "d", Resource: json.RawMessage(`{"resourceType":"Observation","id":"d","status":1}`)},
	}
	got, err := Decode[Observation](entries, "Observation")
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Errorf("decoded %+v", got)
	}
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "Observation/b") || !strings.Contains(err.Error(), "and 1 more") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(bundle("next?x", obs("1"), btgOutcome, `{"resourceType":"Medication","id":"m"}`)))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":null},{"search":{"mode":"outcome"},"resource":{"resourceType":"OperationOutcome"}}]}`))
	f.Add([]byte(`{"resourceType":"OperationOutcome","issue":[{"details":{"text":"x"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition","onsetDateTime":"2024-02","code":{}}}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseBundle(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fhir: ") {
				t.Errorf("error without prefix: %v", err)
			}
			return
		}
		rec := &Record{}
		for _, typ := range []string{"Observation", "Condition", "MedicationRequest", "MedicationStatement", "Procedure", "Encounter"} {
			_ = rec.add(typ, "1", res.Entries)
		}
		for i := range rec.Observations {
			rec.Observations[i].EffectiveTime()
		}
		for i := range rec.Conditions {
			rec.Conditions[i].Onset()
			rec.Conditions[i].Abatement()
		}
		for i := range rec.MedicationRequests {
			rec.RequestMedication(&rec.MedicationRequests[i])
		}
		for _, o := range res.Outcomes {
			o.Text()
			o.BreakTheGlass()
		}
	})
}
