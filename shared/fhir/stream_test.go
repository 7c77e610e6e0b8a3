package fhir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// streamedPage writes a searchset Bundle of n Observations one entry at a
// time, flushing as it goes, and counts the entries it managed to write
// before the client stopped reading.
func streamedPage(n int, written *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"/fhir/Observation?page=2"}],"entry":[`)
		for i := range n {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			if _, err := fmt.Fprintf(w, `{"resource":%s,"search":{"mode":"match"}}`, labObs(fmt.Sprint("o", i), "718-7", 12, "2025-03-01")); err != nil {
				return
			}
			written.Add(1)
			if i%100 == 0 {
				w.(http.Flusher).Flush()
			}
		}
		fmt.Fprint(w, `]}`)
	}
}

// TestSearchStopsReadingAtEntryCap: a page far over the per-response cap
// is read only up to the entry cap, entry by entry: the search keeps the
// first MaxEntries entries and is marked Truncated, instead of failing as
// too large after reading the cap's worth of bytes.
func TestSearchStopsReadingAtEntryCap(t *testing.T) {
	var written atomic.Int64
	const n = 200_000 // about 60 MB
	srv, rc := newServer(t, streamedPage(n, &written))
	c := newClient(srv)
	c.MaxEntries = 50
	res, err := c.Search(context.Background(), "Observation", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 50 || !res.Truncated || res.Entries[49].ID != "o49" {
		t.Fatalf("%d entries, truncated %v", len(res.Entries), res.Truncated)
	}
	if pages := len(rc.requests()); pages != 1 {
		t.Errorf("%d requests, want 1 (a cut search follows no next link)", pages)
	}
	srv.CloseClientConnections()
	if w := written.Load(); w >= n {
		t.Errorf("the server wrote all %d entries: the client read the page to its end", w)
	}
}

// TestFetchRecordDecodesAsItStreams: FetchRecord decodes the same stream
// straight into the record, with the entry cap.
func TestFetchRecordDecodesAsItStreams(t *testing.T) {
	var written atomic.Int64
	srv, _ := newServer(t, ehrHandler(map[string]http.HandlerFunc{"/fhir/Observation": streamedPage(200_000, &written)}))
	c := newClient(srv)
	c.MaxEntries = 30
	rec := c.FetchRecord(context.Background(), fullQuery())
	if len(rec.Observations) != 30 || !rec.Truncated["Observation"] || rec.Err("Observation") != nil {
		t.Errorf("%d observations, truncated %v, error %v", len(rec.Observations), rec.Truncated["Observation"], rec.Err("Observation"))
	}
	if rec.Patient == nil || len(rec.Conditions) != 1 || len(rec.Medications) == 0 {
		t.Errorf("the rest of the record: patient %v conditions %d medications %d errors %v", rec.Patient, len(rec.Conditions), len(rec.Medications), rec.Errors)
	}
}

// cancelAfter is a body that cancels the request's context once it has
// handed out after bytes, the way a deadline passes mid-response.
type cancelAfter struct {
	r      io.Reader
	after  int
	read   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 512)])
	c.read += n
	if c.read >= c.after {
		c.cancel()
	}
	return n, err
}

func (c *cancelAfter) Close() error { return nil }

type bodyTransport func(*http.Request) io.ReadCloser

func (f bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: f(r), Request: r, ContentLength: -1}, nil
}

// TestDecodingStopsAtDeadline: a body already in memory (a CDS prefetch)
// needs no network read, yet decoding it stops once the context ends: the
// search fails as unavailable with the deadline's error and the rest of
// the body is never decoded.
func TestDecodingStopsAtDeadline(t *testing.T) {
	rs := make([]string, 5000)
	for i := range rs {
		rs[i] = labObs(fmt.Sprint("o", i), "718-7", 12, "2025-03-01")
	}
	page := bundle("", rs...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var body *cancelAfter
	c := &Client{Base: "https://ehr.example/fhir", HTTPClient: &http.Client{Transport: bodyTransport(func(*http.Request) io.ReadCloser {
		body = &cancelAfter{r: strings.NewReader(page), after: 4096, cancel: cancel}
		return body
	})}}
	res, err := c.Search(ctx, "Observation", nil)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnavailable with the context's error", err)
	}
	if res != nil && len(res.Entries) != 0 {
		t.Errorf("%d entries kept from a page cut by the deadline", len(res.Entries))
	}
	if body.read >= len(page) {
		t.Errorf("the whole %d-byte body was read after the deadline", len(page))
	}
}

// TestBundleKeyOrder: JSON members may come in any order; entries that
// arrive before resourceType are held until it says what the body is.
func TestBundleKeyOrder(t *testing.T) {
	entry := `"entry":[{"resource":` + obs("o1") + `,"search":{"mode":"match"}}]`
	for _, tt := range []struct {
		name, body string
		entries    int
		err        string
	}{
		{"resourceType last", `{"type":"searchset",` + entry + `,"resourceType":"Bundle"}`, 1, ""},
		{"link after entry", `{"resourceType":"Bundle",` + entry + `,"link":[{"relation":"next","url":"https://ehr.example/fhir/Observation?p=2"}]}`, 1, ""},
		{"outcome with entries", `{` + entry + `,"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"no"}]}`, 0, "no"},
		{"entry not an array", `{"resourceType":"Bundle","entry":5}`, 0, "wrong type"},
		{"trailing data", `{"resourceType":"Bundle"} {}`, 0, "malformed JSON"},
	} {
		res, err := ParseBundle([]byte(tt.body))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
		case err == nil && len(res.Entries) != tt.entries:
			t.Errorf("%s: %d entries, want %d", tt.name, len(res.Entries), tt.entries)
		}
		if tt.name == "link after entry" && err == nil && !res.Truncated {
			t.Errorf("%s: the next link was not seen", tt.name)
		}
	}
}
