package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// outageAnswerWithin is how soon every request must answer while Firestore
// is down: the 10 s.
const outageAnswerWithin = 10 * time.Second

// flowStep is one request of a full launch and what it answered.
type flowStep struct {
	name       string
	status     int
	retryAfter string
	err        error
}

// fullLaunch runs launch, authorize, callback, context and assessment with a
// client that gives up after outageAnswerWithin, and stops at the first
// answer that is not the step's success.
func fullLaunch(e *env, c *http.Client) []flowStep {
	c = ownBrowser(c)
	var steps []flowStep
	do := func(name, method, u, handle string, want int) (*http.Response, bool) {
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			steps = append(steps, flowStep{name: name, err: err})
			return nil, false
		}
		if handle != "" {
			req.Header.Set("Authorization", "Bearer "+handle)
		}
		resp, err := c.Do(req)
		if err != nil {
			steps = append(steps, flowStep{name: name, err: err})
			return nil, false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		steps = append(steps, flowStep{name: name, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")})
		return resp, resp.StatusCode == want
	}
	resp, ok := do("ehr-launch", "GET", e.URL+"/ehr/launch?patient=low-risk", "", http.StatusFound)
	if !ok {
		return steps
	}
	for _, s := range []struct {
		name string
		want int
	}{{"launch", http.StatusFound}, {"authorize", http.StatusFound}, {"callback", http.StatusSeeOther}} {
		loc, err := resp.Location()
		if err != nil {
			steps = append(steps, flowStep{name: s.name, err: err})
			return steps
		}
		if resp, ok = do(s.name, "GET", loc.String(), "", s.want); !ok {
			return steps
		}
	}
	_, code, ok := strings.Cut(resp.Header.Get("Location"), "#handoff=")
	if !ok {
		steps = append(steps, flowStep{name: "callback", err: fmt.Errorf("no hand-off code in %q", resp.Header.Get("Location"))})
		return steps
	}
	handle, status, retryAfter, err := handoff(e, c, code)
	steps = append(steps, flowStep{name: "session", status: status, retryAfter: retryAfter, err: err})
	if handle == "" {
		return steps
	}
	for _, path := range []string{"context", "assessment"} {
		if _, ok := do(path, "GET", e.URL+"/calculate/api/"+path, handle, http.StatusOK); !ok {
			return steps
		}
	}
	return steps
}

func flowComplete(steps []flowStep) bool {
	return len(steps) == 7 && steps[6].err == nil && steps[6].status == http.StatusOK
}

// TestFirestoreOutage kills the Firestore emulator during a stream of full
// launches and brings it back: every request answers within 10 s, either
// with its success or with 503 and Retry-After; the readiness endpoint says
// so while /healthz stays 200; and full launches succeed again within
// seconds of the restart. The restarted emulator starts empty, so a launch
// begun before the outage may end as an unknown launch or session (400 or
// 401), a clean refusal that the test counts.
func TestFirestoreOutage(t *testing.T) {
	emu := smarttest.StartFirestoreEmulator(t)
	client, err := store.NewFirestoreClient(context.Background(), emu.Project(), "", emu.Host())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	fs := &store.Firestore{Client: client, Sealer: sealer}
	e := start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) { en.Store = fs }}, nil)
	c := &http.Client{
		Timeout:       outageAnswerWithin,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	probe := func(path string) int {
		resp, err := c.Get(e.URL + "/calculate/" + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if steps := fullLaunch(e, c); !flowComplete(steps) {
		t.Fatalf("before the outage: %+v", steps)
	}
	if got := probe("readyz"); got != http.StatusOK {
		t.Fatalf("readyz before the outage: %d, want 200", got)
	}

	type result struct {
		started time.Time
		steps   []flowStep
	}
	var (
		mu      sync.Mutex
		results []result
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := result{started: time.Now()}
				r.steps = fullLaunch(e, c)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	emu.Kill(t)
	killed := time.Now()
	time.Sleep(3 * time.Second)
	if got := probe("readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("readyz during the outage: %d, want 503", got)
	}
	if got := probe("healthz"); got != http.StatusOK {
		t.Errorf("healthz during the outage: %d, want 200 (liveness)", got)
	}
	emu.Restart(t)
	restarted := time.Now()
	t.Logf("emulator down for %v", restarted.Sub(killed).Round(time.Millisecond))

	// Recovery: a full launch that starts after the restart completes.
	var recovered time.Time
	for deadline := restarted.Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		for _, r := range results {
			if r.started.After(restarted) && flowComplete(r.steps) {
				recovered = time.Now()
			}
		}
		mu.Unlock()
		if !recovered.IsZero() {
			break
		}
	}
	close(stop)
	wg.Wait()
	if recovered.IsZero() {
		t.Fatalf("no full launch completed within 20 s of the restart")
	}
	t.Logf("first full launch completed %v after the restart", recovered.Sub(restarted).Round(time.Millisecond))
	if got := probe("readyz"); got != http.StatusOK {
		t.Errorf("readyz after the outage: %d, want 200", got)
	}

	counts := map[string]int{}
	for _, r := range results {
		last := r.steps[len(r.steps)-1]
		switch {
		case flowComplete(r.steps):
			counts["complete"]++
		case last.err != nil:
			t.Errorf("%s: no answer within %v: %v", last.name, outageAnswerWithin, last.err)
			counts["no answer"]++
		case last.status == http.StatusServiceUnavailable:
			if last.retryAfter == "" {
				t.Errorf("%s: 503 without Retry-After", last.name)
			}
			counts["503 at "+last.name]++
		case r.started.Before(restarted) && (last.status == http.StatusBadRequest && last.name == "callback" ||
			last.status == http.StatusUnauthorized && (last.name == "context" || last.name == "assessment")):
			// Begun before the restart: the emptied emulator lost it.
			counts[fmt.Sprintf("%d at %s (lost with the emulator's data)", last.status, last.name)]++
		default:
			t.Errorf("%s answered %d: want its success or 503", last.name, last.status)
			counts[fmt.Sprintf("%d at %s", last.status, last.name)]++
		}
	}
	t.Logf("%d full launches: %v", len(results), counts)
	if counts["complete"] == 0 || len(results) == counts["complete"] {
		t.Errorf("outcomes %v: want some complete and some refused during the outage", counts)
	}
}
