package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// launchURL returns a /launch URL with a fresh sandbox launch token, and
// warms the discovery cache with one launch.
func launchURL(b *testing.B, e *env) string {
	b.Helper()
	u := e.stopAt(b, e.URL+"/ehr/launch?patient=low-risk", "/launch")
	rec := httptest.NewRecorder()
	e.Handler.ServeHTTP(rec, httptest.NewRequest("GET", u.String(), nil))
	if rec.Code != http.StatusFound {
		b.Fatalf("warm-up launch: %d %s", rec.Code, rec.Body)
	}
	return u.String()
}

// BenchmarkLaunchHandler measures the launch function's handler alone
// (in-memory store, warm discovery cache: no outbound request).
func BenchmarkLaunchHandler(b *testing.B) {
	e := start(b, memoryStore, nil, nil, nil)
	u := launchURL(b, e)
	before := e.outbound.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.Handler.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != http.StatusFound {
			b.Fatalf("launch: %d", rec.Code)
		}
	}
	b.StopTimer()
	if n := e.outbound.Load() - before; n != 0 {
		b.Errorf("%d discovery fetches while warm, want 0", n)
	}
}

// BenchmarkLaunchHandlerParallel is the same on every core: 1e9/ns-per-op
// is the handler's launches per second on this machine.
func BenchmarkLaunchHandlerParallel(b *testing.B) {
	e := start(b, memoryStore, nil, nil, nil)
	u := launchURL(b, e)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			e.Handler.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
			if rec.Code != http.StatusFound {
				b.Errorf("launch: %d", rec.Code)
				return
			}
		}
	})
}

// BenchmarkLaunchHTTP measures /launch through the local runner's HTTP
// server over loopback with keep-alive clients on every core; the load
// generator shares the two cores with the server.
func BenchmarkLaunchHTTP(b *testing.B) {
	e := start(b, memoryStore, nil, nil, nil)
	u := launchURL(b, e)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(u)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				b.Errorf("launch: %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkCallbackHandler measures the callback function's handler: one
// launch consumed from the in-memory store, the code exchanged at the
// sandbox's token endpoint over loopback, one session created. The launch
// and authorize steps that make each fresh code are not timed.
func BenchmarkCallbackHandler(b *testing.B) { benchCallback(b, memoryStore) }

// BenchmarkCallbackHandlerFirestore is the same against the Firestore
// emulator (3 RPCs: Get and Update of the launch, Create of the session).
func BenchmarkCallbackHandlerFirestore(b *testing.B) { benchCallback(b, firestoreStore) }

func benchCallback(b *testing.B, kind storeKind) {
	e := start(b, kind, nil, nil, nil)
	u := launchURL(b, e)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		rec := httptest.NewRecorder()
		e.Handler.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		resp, err := noFollow.Get(rec.Header().Get("Location"))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		cb, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || cb.Path != "/callback" {
			b.Fatalf("authorize answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		req := httptest.NewRequest("GET", cb.String(), nil)
		for _, c := range rec.Result().Cookies() { // the launching browser's binding cookie
			req.AddCookie(c)
		}
		b.StartTimer()
		rec = httptest.NewRecorder()
		e.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			b.Fatalf("callback: %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkAssessment measures GET /api/assessment end to end through the
// local runner: one session read from the in-memory store, the record
// fetched from the sandbox over loopback (every search concurrent), the
// mapping and all six calculators. It reports the FHIR requests per
// assessment, which must equal the number of searches.
func BenchmarkAssessment(b *testing.B) {
	e := start(b, memoryStore, nil, nil, nil)
	h := e.launch(b, "hbr-anticoag")
	before := e.Sandbox.FHIRRequests()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if status, body := e.api(b, "GET", "assessment", h, ""); status != 200 {
			b.Fatalf("assessment: %d %s", status, body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(e.Sandbox.FHIRRequests()-before)/float64(b.N), "fhir-requests/op")
}
