package main

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// TestFirestoreRPCBudget holds each step to its Firestore budget, counted
// at the gRPC layer against the emulator: 1 RPC in launch, at most 3 in
// callback (consume the launch: Get and Update; one Commit creating the
// session and its hand-off), 2 for the hand-off exchange (Get and Update),
// 1 per API call, and 2 for the first API call after a minute without one
// (the read and the throttled, blind activity write).
func TestFirestoreRPCBudget(t *testing.T) {
	client, rpcs := smarttest.NewCountingFirestoreClient(t)
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	fs := &store.Firestore{Client: client, Sealer: sealer, Now: now}
	e := start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) { en.Store = fs }}, now)
	// The launching browser's jar carries the binding cookie.
	noFollow := &http.Client{Jar: e.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	step := func(name, u string, want int, budget int) *http.Response {
		t.Helper()
		rpcs.Reset()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: status %d, want %d", name, resp.StatusCode, want)
		}
		if got := rpcs.Total(); got > budget || got == 0 {
			t.Errorf("%s: %d Firestore RPCs (%v), budget %d", name, got, rpcs.Counts(), budget)
		}
		t.Logf("%s: %d RPCs %v", name, rpcs.Total(), rpcs.Counts())
		return resp
	}
	launch := e.stopAt(t, e.URL+"/ehr/launch?patient=low-risk", "/launch")
	resp := step("launch", launch.String(), http.StatusFound, 1)
	authz, err := noFollow.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	authz.Body.Close()
	resp = step("callback", authz.Header.Get("Location"), http.StatusSeeOther, 3)
	rpcs.Reset()
	handle := e.handleFrom(t, []string{resp.Header.Get("Location")})
	if got := rpcs.Total(); got > 2 {
		t.Errorf("POST /api/session: %d Firestore RPCs (%v), budget 2", got, rpcs.Counts())
	}
	api := func(path string, advance time.Duration, want map[string]int) {
		t.Helper()
		offset.Add(int64(advance))
		rpcs.Reset()
		if status, body := e.api(t, "GET", path, handle, ""); status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		total := 0
		for _, n := range want {
			total += n
		}
		if got := rpcs.Counts(); rpcs.Total() != total || !maps.Equal(got, want) {
			t.Errorf("GET /api/%s %v later: Firestore RPCs %v, want %v", path, advance, got, want)
		}
		t.Logf("GET /api/%s %v later: %d RPCs %v", path, advance, rpcs.Total(), rpcs.Counts())
	}
	read := map[string]int{"BatchGetDocuments": 1}
	readAndTouch := map[string]int{"BatchGetDocuments": 1, "Commit": 1}
	api("context", 0, read)
	api("assessment", 0, read)
	api("context", 30*time.Second, read)            // activity recorded at most once a minute
	api("assessment", 31*time.Second, readAndTouch) // a minute since the last record: one blind write
	api("context", 0, read)
	api("assessment", 29*time.Minute, readAndTouch)
}

// BenchmarkLaunchHandlerFirestore is BenchmarkLaunchHandler against the
// Firestore emulator: the time of the launch step with its one RPC.
func BenchmarkLaunchHandlerFirestore(b *testing.B) {
	e := start(b, firestoreStore, nil, nil, nil)
	u := launchURL(b, e)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.Handler.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != http.StatusFound {
			b.Fatalf("launch: %d", rec.Code)
		}
	}
}
