package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LoadLaunchesEnv sets the number of concurrent full launches
// TestConcurrentFullLaunches runs; unset, it runs a small smoke load.
const LoadLaunchesEnv = "SMARTCALC_LOAD_LAUNCHES"

// patientLaunch runs one full launch into patient (launch, authorize,
// callback, context) and returns the patient id the app's context names.
func patientLaunch(e *env, c *http.Client, patient string) (string, error) {
	_, got, err := launchInto(e, c, e.URL+"/ehr/launch?patient="+patient)
	return got, err
}

// launchInto follows an EHR launch from launchURL (the sandbox's
// /ehr/launch, faults included) through /launch, authorize, the callback
// and the hand-off, reads /api/context, and returns the session handle and
// the patient id the context names.
func launchInto(e *env, c *http.Client, launchURL string) (handle, patient string, err error) {
	c = ownBrowser(c)
	step := "/ehr/launch"
	resp, err := c.Get(launchURL)
	for hop := 0; err == nil && hop < 4 && resp.StatusCode/100 == 3; hop++ {
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if _, code, ok := strings.Cut(loc, "#handoff="); ok {
			handle, status, retryAfter, err := handoff(e, c, code)
			if err != nil {
				return "", "", err
			}
			if handle == "" {
				return "", "", &launchRefused{step: "/calculate/api/session", status: status, retryAfter: retryAfter}
			}
			req, _ := http.NewRequest("GET", e.URL+"/calculate/api/context", nil)
			req.Header.Set("Authorization", "Bearer "+handle)
			resp, err = c.Do(req)
			if err != nil {
				return "", "", err
			}
			defer resp.Body.Close()
			var ctx struct {
				Patient struct{ ID string } `json:"patient"`
			}
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&ctx) != nil {
				return "", "", &launchRefused{step: "/calculate/api/context", status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
			}
			return handle, ctx.Patient.ID, nil
		}
		var u = loc
		if strings.HasPrefix(loc, "/") {
			u = e.URL + loc
		}
		step, _, _ = strings.Cut(strings.TrimPrefix(u, e.URL), "?")
		resp, err = c.Get(u)
	}
	if err != nil {
		return "", "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return "", "", &launchRefused{step: step, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
}

// launchRefused is a launch that stopped at a non-redirect answer.
type launchRefused struct {
	step       string
	status     int
	retryAfter string
}

func (l *launchRefused) Error() string { return fmt.Sprintf("%s answered %d", l.step, l.status) }

// TestConcurrentFullLaunches runs N full launches at once against the
// Firestore emulator, each into one of the sandbox patients, and checks that
// every one ends in a session whose context names the patient it launched
// into, or is refused cleanly with 503 and Retry-After when the store does
// not answer within its deadline: none lost, none crossed.
//
//	SMARTCALC_LOAD_LAUNCHES=1000 go test ./functions/local/ -run TestConcurrentFullLaunches -v -count=1 -timeout 20m
func TestConcurrentFullLaunches(t *testing.T) {
	n := 20
	if v := os.Getenv(LoadLaunchesEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", LoadLaunchesEnv, v)
		}
	}
	e := start(t, firestoreStore, nil, nil, nil)
	var patients []string
	for id := range patientNames(e) {
		patients = append(patients, id)
	}
	sort.Strings(patients)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	c := &http.Client{Timeout: 5 * time.Minute, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var (
		mu       sync.Mutex
		lost     []string
		refused  = map[string]int{}
		crossed  int
		wg       sync.WaitGroup
		started  = time.Now()
		latency  = make([]time.Duration, n)
		startGun = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := patients[i%len(patients)]
			<-startGun
			t0 := time.Now()
			got, err := patientLaunch(e, c, want)
			latency[i] = time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			var lr *launchRefused
			switch {
			case errors.As(err, &lr) && lr.status == http.StatusServiceUnavailable && lr.retryAfter != "":
				refused[lr.step]++
			case err != nil:
				lost = append(lost, err.Error())
			case got != want:
				crossed++
			}
		}()
	}
	close(startGun)
	wg.Wait()
	wall := time.Since(started)
	sort.Slice(latency, func(a, b int) bool { return latency[a] < latency[b] })
	complete := n - len(lost) - crossed
	for _, k := range refused {
		complete -= k
	}
	t.Logf("%d concurrent full launches in %v: %d complete, refused with 503 %v, %d lost, %d crossed; latency p50 %v p99 %v max %v",
		n, wall.Round(time.Millisecond), complete, refused, len(lost), crossed,
		latency[n/2].Round(time.Millisecond), latency[n*99/100].Round(time.Millisecond), latency[n-1].Round(time.Millisecond))
	if len(lost) > 0 {
		t.Errorf("%d of %d launches lost, first: %s", len(lost), n, lost[0])
	}
	if crossed > 0 {
		t.Errorf("%d launches opened another patient", crossed)
	}
}

// ownBrowser is c with a cookie jar of its own: one browser per launch,
// which the fail-closed binding and the hand-off require.
func ownBrowser(c *http.Client) *http.Client {
	cc := *c
	cc.Jar, _ = cookiejar.New(nil)
	return &cc
}

// handoff is the app page's POST /calculate/api/session: it trades the
// callback's one-time code for the session handle, with the launching
// browser's cookies. A refusal returns no handle and the status.
func handoff(e *env, c *http.Client, code string) (handle string, status int, retryAfter string, err error) {
	resp, err := c.Post(e.URL+"/calculate/api/session", "application/json", strings.NewReader(`{"handoff":"`+code+`"}`))
	if err != nil {
		return "", 0, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Session string `json:"session"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return "", resp.StatusCode, resp.Header.Get("Retry-After"), nil
	}
	return body.Session, resp.StatusCode, "", nil
}
