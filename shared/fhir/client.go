// Package fhir is SMART Calc's FHIR R4 REST client and the few resource
// shapes it decodes.
//
// A Client reads and searches one FHIR server (its Base, the session's iss)
// with the session's bearer token. It is built for a clinical app talking to
// real EHRs: parameters are always percent-encoded (smart-launcher-v2's proxy
// collapses an unencoded "//" in http://loinc.org), Bundle next links are
// followed only on the server's own origin so the token never leaves it,
// idempotent reads are retried on 429 and 503 a bounded number of times, a 401
// triggers one token refresh and one retry, and every failure is an *Error
// that callers sort with errors.Is: a 403 (break-the-glass included) is a
// permission refusal, never "no data".
//
// FetchRecord issues every request one bleeding-risk assessment needs at
// once, so the assessment costs one round trip to the EHR, and keeps each
// search's failure to itself so one refused resource type leaves the others
// usable.
package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for the Client's zero-valued limits.
const (
	DefaultMaxPages         = 10
	DefaultMaxRetries       = 2
	DefaultMaxRetryAfter    = 5 * time.Second
	DefaultMaxResponseBytes = 4 << 20
	// DefaultMaxRecordBytes is the byte budget of one FetchRecord, across
	// every search and page.
	DefaultMaxRecordBytes = 16 << 20
	// DefaultMaxEntries bounds the entries one search keeps, across pages.
	DefaultMaxEntries = 1000
)

// defaultHTTPClient bounds a request when the caller gives no client and no
// context deadline.
var defaultHTTPClient = NewHTTPClient(30 * time.Second)

// ConnectTimeout is how long NewHTTPClient's dialer waits for an EHR to
// accept a connection. A connection dropped by a full accept queue fails
// after this and is retried, instead of costing the whole request timeout.
const ConnectTimeout = 2 * time.Second

// NewHTTPClient returns a client for FHIR and token requests: a short
// connect timeout (ConnectTimeout), timeout for the whole request.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// Client is a FHIR R4 REST client for one server and one session. Set the
// fields, then use it from any number of goroutines; build one per session
// request (OnUnauthorized runs at most once per Client).
type Client struct {
	// Base is the FHIR base URL (the session's iss), e.g.
	// https://fhir-ehr.cerner.com/r4/<tenant>. A trailing slash is ignored.
	Base string
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	// Redirects are followed only within Base's origin.
	HTTPClient *http.Client
	// Token returns the access token to send as "Authorization: Bearer". It
	// is called for every request and must be safe for concurrent use. nil
	// sends no Authorization header (open servers).
	Token func(ctx context.Context) (string, error)
	// OnUnauthorized refreshes the token after a 401 and returns the new
	// one. The client calls it at most once (concurrent 401s share the call),
	// retries each refused request once with the new token, and uses that
	// token for its later requests. nil means a 401 is final.
	OnUnauthorized func(ctx context.Context) (string, error)
	// MaxPages bounds the Bundle pages one search reads (the first included);
	// 0 means DefaultMaxPages. A search cut short says so (Truncated).
	MaxPages int
	// MaxRetries bounds the retries of one request after 429, 503 or a
	// connection failure; 0 means DefaultMaxRetries, negative means none.
	MaxRetries int
	// Backoff returns the wait before retry number attempt (1, 2, …) when the
	// server sent no Retry-After; nil means exponential from 250 ms, capped at
	// 2 s, with jitter.
	Backoff func(attempt int) time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for; a
	// longer one ends the request with ErrUnavailable at once. 0 means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// MaxResponseBytes bounds one response body; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxRecordBytes is FetchRecord's byte budget across all its searches
	// and pages: the bytes of the responses it keeps (a response is
	// charged once read whole, so one dropped as too large never takes
	// the budget from the others); 0 means DefaultMaxRecordBytes. A search
	// that runs out keeps the pages it read and is marked Truncated; one
	// that could keep nothing fails with an *Error whose TooLarge is set.
	MaxRecordBytes int64
	// MaxEntries bounds the entries one search keeps, across its pages; 0
	// means DefaultMaxEntries. A search cut short is marked Truncated.
	MaxEntries int
	// Limit, when not nil, is a semaphore shared by every Client that talks
	// to the same EHR on this instance: each request (each attempt) holds a
	// slot while it is open, so a burst of assessments queues here instead
	// of overflowing a small EHR's accept queue. Waiting for a slot counts
	// against the request's context.
	Limit chan struct{}

	// sleep waits between retries; tests replace it to observe the waits.
	sleep func(ctx context.Context, d time.Duration) error

	hcOnce sync.Once
	hc     *http.Client

	mu          sync.Mutex
	refreshDone chan struct{} // non-nil once a refresh started; closed when it ends
	refreshed   string        // the token OnUnauthorized returned
	refreshErr  error
}

// Entry is one resource of a search result.
type Entry struct {
	ResourceType string
	ID           string
	FullURL      string
	// Mode is Bundle.entry.search.mode: "match", "include", or "" when the
	// server did not say.
	Mode     string
	Resource json.RawMessage
}

// SearchResult is every page of one search.
type SearchResult struct {
	// Entries are the match and include entries of all pages, in server
	// order.
	Entries []Entry
	// Outcomes are OperationOutcome entries (search mode "outcome"): warnings
	// such as results withheld for permission reasons.
	Outcomes []OperationOutcome
	// Truncated is set when a next link remained after MaxPages pages.
	Truncated bool
}

// Read reads typ/id into v (a pointer to one of this package's resource
// structs, or anything JSON decodes into). The response must be a resource of
// type typ with that id.
func (c *Client) Read(ctx context.Context, typ, id string, v any) error {
	const op = "read"
	if !validType(typ) {
		return &Error{Op: op, Type: typ, Err: errors.New("invalid resource type")}
	}
	if !validID(id) {
		return &Error{Op: op, Type: typ, Err: errors.New("invalid resource id")}
	}
	base, err := c.base()
	if err != nil {
		return &Error{Op: op, Type: typ, Err: err}
	}
	body, err := c.get(ctx, op, typ, base.String()+"/"+typ+"/"+id)
	if err != nil {
		return err
	}
	var h resourceHeader
	if err := json.Unmarshal(body, &h); err != nil {
		return &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: jsonError(err)}
	}
	if h.ResourceType == "OperationOutcome" {
		var o OperationOutcome
		if json.Unmarshal(body, &o) != nil {
			return &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: errors.New("got an unreadable OperationOutcome instead of a result")}
		}
		return outcomeError(op, typ, &o)
	}
	if h.ResourceType != typ || (h.ID != "" && h.ID != id) {
		return &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse,
			Err: fmt.Errorf("asked for %s with the requested id, got %s", typ, describe(h, id))}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: jsonError(err)}
	}
	return nil
}

func describe(h resourceHeader, want string) string {
	if h.ResourceType == "" {
		return "no resourceType"
	}
	if h.ID != "" && h.ID != want {
		return h.ResourceType + " with another id"
	}
	return h.ResourceType
}

// Search runs GET [base]/typ?params and follows the Bundle's next links, on
// Base's origin only, up to MaxPages pages. Parameters are percent-encoded
// (url.Values.Encode), so "code=http://loinc.org|718-7,http://loinc.org|20509-6"
// travels as code=http%3A%2F%2Floinc.org%7C718-7%2C…
//
// Each page is decoded entry by entry as it streams in (never read whole),
// within MaxResponseBytes and the record budget; at MaxEntries the search
// stops reading and is marked Truncated. A page that goes over a byte cap
// is dropped: the pages before it are kept and the result is Truncated, or,
// on the first page, the error says it was too large.
//
// On error the result still holds the pages read before the failure (nil if
// none). When a page carries an OperationOutcome asking for break-the-glass,
// Search returns every page it read together with an *Error matching
// ErrForbidden: the records it holds are real, but absence means nothing.
func (c *Client) Search(ctx context.Context, typ string, params url.Values) (*SearchResult, error) {
	res := new(SearchResult)
	got, err := c.search(ctx, typ, params, &rawSink{res: res})
	if got == nil {
		return nil, err
	}
	res.Outcomes, res.Truncated = got.Outcomes, got.Truncated
	return res, err
}

// search is Search with the entries handed to sink as they are decoded;
// the result carries only the outcomes and Truncated.
func (c *Client) search(ctx context.Context, typ string, params url.Values, sink entrySink) (*SearchResult, error) {
	const op = "search"
	if !validType(typ) {
		return nil, &Error{Op: op, Type: typ, Err: errors.New("invalid resource type")}
	}
	base, err := c.base()
	if err != nil {
		return nil, &Error{Op: op, Type: typ, Err: err}
	}
	u := base.String() + "/" + typ
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	maxPages := c.MaxPages
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	maxEntries := c.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	var res *SearchResult
	kept := 0
	for page := 1; ; page++ {
		resp, err := c.open(ctx, op, typ, u)
		if err != nil {
			var e *Error
			if page > 1 && errors.As(err, &e) && e.TooLarge {
				// The budget ran out after some pages: keep them.
				res.Truncated = true
				break
			}
			return res, err
		}
		if res == nil {
			res = new(SearchResult)
		}
		info, derr := decodePage(ctx, resp, maxEntries-kept, sink.stage)
		resp.Close()
		if derr == nil {
			// Kept only if the record budget still holds the page
			// beside what the record's other searches kept meanwhile.
			derr = resp.commit()
		}
		if derr != nil {
			sink.drop()
			var e *Error
			switch {
			case ctx.Err() != nil:
				return res, &Error{Op: op, Type: typ, Kind: ErrUnavailable, Err: ctx.Err()}
			case errors.Is(derr, errTooLarge) && page > 1:
				res.Truncated = true // keep the pages before this one
			case errors.Is(derr, errTooLarge):
				return res, &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: derr, TooLarge: true}
			case errors.As(derr, &e):
				e.Op, e.Type = op, typ
				return res, e
			case resp.readErr != nil:
				return res, &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: errors.New("reading the response failed")}
			case isJSONError(derr):
				return res, &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: jsonError(derr)}
			default:
				return res, &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: derr}
			}
			break
		}
		sink.commit()
		kept += info.entries
		res.Outcomes = append(res.Outcomes, info.outcomes...)
		if info.full {
			res.Truncated = true
			break
		}
		if info.next == "" {
			break
		}
		if page >= maxPages || kept == maxEntries {
			res.Truncated = true
			break
		}
		nu, err := resolveSameOrigin(base, u, info.next)
		if err != nil {
			return res, &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: err}
		}
		u = nu
	}
	for _, o := range res.Outcomes {
		if o.BreakTheGlass() {
			return res, &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrForbidden, Outcome: &o, BreakTheGlass: true}
		}
	}
	return res, nil
}

// ParseBundle decodes one searchset Bundle, such as a CDS Hooks prefetch
// value, into a SearchResult. Its next link is not followed; Truncated is set
// when it has one.
func ParseBundle(data []byte) (*SearchResult, error) {
	res := new(SearchResult)
	sink := &rawSink{res: res}
	info, err := decodePage(context.Background(), bytes.NewReader(data), math.MaxInt, sink.stage)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op, e.Type = "parse", "Bundle"
			return nil, e
		}
		if isJSONError(err) {
			err = jsonError(err)
		}
		return nil, &Error{Op: "parse", Type: "Bundle", Kind: ErrBadResponse, Err: err}
	}
	sink.commit()
	res.Outcomes = info.outcomes
	res.Truncated = info.next != ""
	return res, nil
}

// Decode decodes the entries of resource type typ into T, one of this
// package's resource structs. It decodes every entry it can; the error, if
// any, is an *Error matching ErrBadResponse that names the first entry that
// failed.
func Decode[T any](entries []Entry, typ string) ([]T, error) {
	var out []T
	var first error
	bad := 0
	for _, e := range entries {
		if e.ResourceType != typ {
			continue
		}
		var v T
		if err := json.Unmarshal(e.Resource, &v); err != nil {
			bad++
			if first == nil {
				first = fmt.Errorf("%s/%s: %w", typ, e.ID, jsonError(err))
			}
			continue
		}
		out = append(out, v)
	}
	if first == nil {
		return out, nil
	}
	if bad > 1 {
		first = fmt.Errorf("%w (and %d more)", first, bad-1)
	}
	return out, &Error{Op: "decode", Type: typ, Kind: ErrBadResponse, Err: first}
}

// jsonError keeps a decoding error's position and kind but not the input it
// quotes, which could be patient data.
func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Error() != "unexpected end of JSON input" {
		return fmt.Errorf("malformed JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("JSON field %q has the wrong type (%s)", te.Field, te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || se != nil && se.Error() == "unexpected end of JSON input" {
		return errors.New("truncated JSON")
	}
	return errors.New("malformed JSON")
}

// isJSONError reports whether err came from decoding JSON (as opposed to
// reading the response).
func isJSONError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF)
}

// outcomeError turns a 200 response whose body is an OperationOutcome into
// an error: permission refusal if it asks for break-the-glass, otherwise an
// unusable response.
func outcomeError(op, typ string, o *OperationOutcome) *Error {
	e := &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Outcome: o}
	if o.BreakTheGlass() {
		e.Kind, e.BreakTheGlass = ErrForbidden, true
	}
	if e.Kind == ErrBadResponse {
		e.Err = errors.New("got an OperationOutcome instead of a result")
	}
	return e
}

// base parses Base.
func (c *Client) base() (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(c.Base, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("invalid base URL")
	}
	return u, nil
}

var errForeignRedirect = errors.New("redirect to another origin refused")

// resolveSameOrigin resolves a next link against the current page URL and
// refuses it unless it is on base's origin.
func resolveSameOrigin(base *url.URL, current, next string) (string, error) {
	cu, err := url.Parse(current)
	if err != nil {
		return "", errors.New("bad page URL")
	}
	nu, err := cu.Parse(next)
	if err != nil {
		return "", errors.New("malformed next link")
	}
	if !sameOrigin(base, nu) || nu.User != nil {
		return "", errors.New("next link to another origin refused")
	}
	// The token goes with the link: on a multi-tenant host it must stay
	// under this FHIR base's path, not reach another tenant's.
	if !underPath(base.EscapedPath(), nu.EscapedPath()) {
		return "", errors.New("next link outside the FHIR base path (another origin or tenant) refused")
	}
	nu.Fragment = ""
	return nu.String(), nil
}

// underPath reports whether the escaped path p is base itself or below it,
// with no dot segment (encoded or not) that could climb out.
func underPath(base, p string) bool {
	base = strings.TrimRight(base, "/")
	if p != base && !strings.HasPrefix(p, base+"/") {
		return false
	}
	for _, seg := range strings.Split(strings.ToLower(p), "/") {
		if seg == "." || seg == ".." || strings.Contains(seg, "%2e%2e") || strings.Contains(seg, "%2f") {
			return false
		}
	}
	return true
}

// sameOrigin compares scheme, host and port (default ports made explicit).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// httpClient returns a copy of HTTPClient whose redirects stay on Base's
// origin, so the Authorization header never follows a redirect elsewhere.
func (c *Client) httpClient() *http.Client {
	c.hcOnce.Do(func() {
		hc := c.HTTPClient
		if hc == nil {
			hc = defaultHTTPClient
		}
		cp := *hc
		prev := hc.CheckRedirect
		cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if !sameOrigin(via[0].URL, req.URL) {
				return errForeignRedirect
			}
			if prev != nil {
				return prev(req, via)
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		}
		c.hc = &cp
	})
	return c.hc
}

// get sends one idempotent GET (open) and reads the whole 2xx body.
func (c *Client) get(ctx context.Context, op, typ, u string) ([]byte, error) {
	resp, err := c.open(ctx, op, typ, u)
	if err != nil {
		return nil, err
	}
	data, err := resp.readAll()
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Op: op, Type: typ, Kind: ErrUnavailable, Err: ctx.Err()}
		}
		return nil, &Error{Op: op, Type: typ, Status: http.StatusOK, Kind: ErrBadResponse, Err: err, TooLarge: errors.Is(err, errTooLarge)}
	}
	return data, nil
}

// open sends one idempotent GET with retries and the one refresh, and
// returns the body of a 2xx response, unread, within the per-response cap
// and the record budget. The caller closes it. A 2xx whose Content-Length
// is over the cap is refused unread.
func (c *Client) open(ctx context.Context, op, typ, u string) (*body, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return nil, &Error{Op: op, Type: typ, Kind: ErrUnauthorized, Err: fmt.Errorf("token: %w", err)}
	}
	maxRetries := c.MaxRetries
	if maxRetries == 0 {
		maxRetries = DefaultMaxRetries
	}
	refreshed := false
	for retries := 0; ; {
		resp, err := c.send(ctx, u, tok)
		if err != nil {
			if ctx.Err() != nil {
				return nil, &Error{Op: op, Type: typ, Kind: ErrUnavailable, Err: ctx.Err()}
			}
			if errors.Is(err, errForeignRedirect) {
				return nil, &Error{Op: op, Type: typ, Kind: ErrBadResponse, Err: errForeignRedirect}
			}
			if retryableNetError(err) && retries < maxRetries {
				retries++
				if werr := c.wait(ctx, c.backoff(retries)); werr != nil {
					return nil, &Error{Op: op, Type: typ, Kind: ErrUnavailable, Err: werr}
				}
				continue
			}
			return nil, &Error{Op: op, Type: typ, Kind: ErrUnavailable, Err: err}
		}
		status := resp.StatusCode
		if status >= 200 && status < 300 {
			if limit := c.maxResponseBytes(); resp.ContentLength > limit {
				resp.Body.Close()
				return nil, &Error{Op: op, Type: typ, Status: status, Kind: ErrBadResponse, TooLarge: true,
					Err: fmt.Errorf("%w: response of %d bytes exceeds the %d-byte limit", errTooLarge, resp.ContentLength, limit)}
			}
			return c.newBody(ctx, resp.Body), nil
		}
		body, _ := c.readAll(ctx, resp)
		switch {
		case status == http.StatusUnauthorized && !refreshed && c.OnUnauthorized != nil:
			refreshed = true
			tok, err = c.refresh(ctx, tok)
			if err != nil {
				e := statusError(op, typ, resp, body)
				e.Err = fmt.Errorf("token refresh: %w", err)
				return nil, e
			}
			continue
		case (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && retries < maxRetries:
			d, ok := retryAfter(resp.Header)
			if !ok {
				d = c.backoff(retries + 1)
			} else if d > c.maxRetryAfter() {
				e := statusError(op, typ, resp, body)
				e.Err = fmt.Errorf("server asked to retry after %s", d.Round(time.Second))
				return nil, e
			}
			retries++
			if werr := c.wait(ctx, d); werr != nil {
				e := statusError(op, typ, resp, body)
				e.Err = werr
				return nil, e
			}
			continue
		}
		return nil, statusError(op, typ, resp, body)
	}
}

// send issues the GET. Transport errors lose their *url.Error wrapper, which
// would print the URL (patient id included).
func (c *Client) send(ctx context.Context, u, tok string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errors.New("bad request URL")
	}
	req.Header.Set("Accept", "application/fhir+json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.Limit != nil {
		select {
		case c.Limit <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if c.Limit != nil {
			<-c.Limit
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	if c.Limit != nil {
		resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { <-c.Limit }}
	}
	return resp, nil
}

// releaseBody frees a Limit slot when the response body is closed.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

func (c *Client) maxRecordBytes() int64 {
	if c.MaxRecordBytes > 0 {
		return c.MaxRecordBytes
	}
	return DefaultMaxRecordBytes
}

// retryableNetError reports whether a transport error is worth retrying on
// an idempotent read: a connection the EHR did not accept within the
// dialer's connect timeout (a full accept queue drops it silently), refused
// or reset, or a response that timed out; not a TLS or URL problem. The
// caller's context bounds all the attempts together.
func retryableNetError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// statusError builds the error for a non-2xx response.
func statusError(op, typ string, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, Type: typ, Status: resp.StatusCode, Code: challengeError(resp.Header.Get("WWW-Authenticate"))}
	var o OperationOutcome
	if len(body) > 0 && json.Unmarshal(body, &o) == nil && o.ResourceType == "OperationOutcome" {
		e.Outcome = &o
		e.BreakTheGlass = o.BreakTheGlass()
	}
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
	case s == http.StatusForbidden && e.Code == "insufficient_scope":
		e.Kind = ErrScope
	case s == http.StatusForbidden:
		e.Kind = ErrForbidden
	case s == http.StatusNotFound || s == http.StatusGone:
		e.Kind = ErrNotFound
	case s == http.StatusTooManyRequests || s >= 500:
		e.Kind = ErrUnavailable
	case s >= 300 && s < 400:
		e.Kind = ErrBadResponse
	}
	return e
}

// challengeError extracts the error parameter of a Bearer WWW-Authenticate
// challenge (RFC 6750 §3), e.g. invalid_token or insufficient_scope.
func challengeError(h string) string {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t,")
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			return ""
		}
		name = strings.TrimSpace(name)
		after = strings.TrimLeft(after, " \t")
		var val string
		if strings.HasPrefix(after, `"`) {
			// quoted-string with backslash escapes
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			end := strings.IndexAny(after, ", \t")
			if end < 0 {
				end = len(after)
			}
			val, rest = after[:end], after[end:]
		}
		if strings.EqualFold(name, "error") {
			// Only RFC 6750 error-code characters: never echo anything else.
			for _, r := range val {
				if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
					return ""
				}
			}
			return val
		}
	}
	return ""
}

// retryAfter parses Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

func (c *Client) maxRetryAfter() time.Duration {
	if c.MaxRetryAfter > 0 {
		return c.MaxRetryAfter
	}
	return DefaultMaxRetryAfter
}

func (c *Client) backoff(attempt int) time.Duration {
	if c.Backoff != nil {
		return c.Backoff(attempt)
	}
	d := 250 * time.Millisecond << min(attempt-1, 3)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// token returns the refreshed token once there is one, else Token's.
func (c *Client) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	t := c.refreshed
	c.mu.Unlock()
	if t != "" || c.Token == nil {
		return t, nil
	}
	return c.Token(ctx)
}

// refresh runs OnUnauthorized at most once per Client; concurrent and later
// callers share its result. stale is the token the server refused: if the
// refresh already produced exactly that token, there is nothing to retry with.
func (c *Client) refresh(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	if c.refreshDone == nil {
		done := make(chan struct{})
		c.refreshDone = done
		c.mu.Unlock()
		t, err := c.OnUnauthorized(ctx)
		if err == nil && t == "" {
			err = errors.New("no token returned")
		}
		c.mu.Lock()
		if err == nil {
			c.refreshed = t
		}
		c.refreshErr = err
		close(done)
		c.mu.Unlock()
		return t, err
	}
	done := c.refreshDone
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refreshErr != nil {
		return "", c.refreshErr
	}
	if c.refreshed == stale {
		return "", errors.New("the refreshed token was refused too")
	}
	return c.refreshed, nil
}
