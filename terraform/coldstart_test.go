package terraform

// TestColdStart measures what the brief's start-up targets are about, with
// the binary a deployment runs (the main the Cloud Functions Go build
// generates, see buildGeneratedMain): for each function, the time from exec
// to its first answer, and its resident memory before the first request,
// after it and under load. It only measures and logs: no figure is asserted,
// since timings on a shared machine say nothing about correctness. It is
// opt-in, as it takes a minute or more:
//
//	SMARTCALC_COLDSTART_RUNS=7 go test ./terraform/ -run TestColdStart -v -count=1
//
// SMARTCALC_COLDSTART_LOAD sets the requests of the load phase (default
// 10,000, 8 at a time; 0 skips it). SMARTCALC_COLDSTART_FIRESTORE=1 runs the
// functions against a Firestore emulator of the test's own instead of the
// in-memory store. SMARTCALC_COLDSTART_BASE=<commit> also measures that
// commit's generated main (from git archive, built with the plain go build
// environment, which is what Terraform's build used before it set one), its
// runs interleaved with this tree's so that both share the machine's load:
//
//	SMARTCALC_COLDSTART_RUNS=7 SMARTCALC_COLDSTART_BASE=d4af7bc go test ./terraform/ -run TestColdStart -v -count=1
//
// SMARTCALC_COLDSTART_BINS lists binaries built elsewhere (name=path, comma
// separated) to measure instead of this tree's.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// coldRequest is the first request sent to a function, and the one
// repeated under load.
type coldRequest struct {
	method, path, body string
	header             http.Header
	status             int // the answer expected
}

// coldCase is one function started cold: target is FUNCTION_TARGET.
type coldCase struct{ name, target string }

// coldCases are the starts measured: each function, and calculate once more
// with an API call as its first request.
var coldCases = []coldCase{{"launch", "launch"}, {"callback", "callback"}, {"calculate", "calculate"}, {"calc-api", "calculate"}}

// coldRequests are what each case asks: launch a real EHR launch
// (discovery against the fake EHR, the launch stored, a 302 with PKCE);
// callback a completion with the binding cookie for a state nobody
// started (the flow runs and the store answers: 400 unknown launch);
// calculate its liveness check first (the handler built, the scoring
// configuration loaded), then, under load, the standalone calculator's API
// (inputs parsed, a calculator evaluated, the answer written in zh-TW from
// the message catalogue); calc-api that API call first.
func coldRequests(name string) (first, load coldRequest) {
	evaluate := coldRequest{method: "POST", path: "/api/evaluate", status: http.StatusOK,
		header: http.Header{"Content-Type": {"application/json"}, "Accept-Language": {"zh-TW"}},
		body:   `{"calculator": "precise-hbr", "inputs": {"age": 72, "hemoglobin": {"value": 123, "unit": "g/L"}, "egfr": 50, "wbc": 8, "prior_bleeding": false, "oral_anticoagulation": true, "arc_hbr_other": false}}`}
	switch name {
	case "launch":
		q := url.Values{"iss": {fakeEHR.srv.URL + "/fhir"}, "launch": {"cold-start"}}
		r := coldRequest{method: "GET", path: "/?" + q.Encode(), status: http.StatusFound}
		return r, r
	case "callback":
		const state = "cold-start-state"
		h := http.Header{"Cookie": {web.BindingCookieName(smart.Correlation(state)) + "=nonce"}}
		r := coldRequest{method: "GET", path: "/?" + url.Values{"code": {"c"}, "state": {state}}.Encode(), header: h, status: http.StatusBadRequest}
		return r, r
	case "calculate":
		return coldRequest{method: "GET", path: "/healthz", status: http.StatusOK}, evaluate
	case "calc-api":
		return evaluate, evaluate
	}
	panic("no requests for " + name)
}

// coldRun is what one start of one function measured.
type coldRun struct {
	start        time.Duration // exec to the first answer
	listen       time.Duration // exec to listening
	cpu          time.Duration // CPU time of all its threads at the first answer
	before       procStatus    // idle, listening, before any request
	after        procStatus    // idle after the first answer
	load         []procStatus  // every loadSample requests
	loadRequests int
}

const loadSample = 2000

func TestColdStart(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("SMARTCALC_COLDSTART_RUNS"))
	if runs <= 0 {
		t.Skip("set SMARTCALC_COLDSTART_RUNS to measure cold starts")
	}
	load := 10000
	if s := os.Getenv("SMARTCALC_COLDSTART_LOAD"); s != "" {
		load, _ = strconv.Atoi(s)
	}
	type binary struct{ name, path string }
	var bins []binary
	if s := os.Getenv("SMARTCALC_COLDSTART_BINS"); s != "" {
		for _, nb := range strings.Split(s, ",") {
			name, path, ok := strings.Cut(nb, "=")
			if !ok {
				t.Fatalf("SMARTCALC_COLDSTART_BINS: %q is not name=path", nb)
			}
			bins = append(bins, binary{name, path})
		}
	} else {
		bins = []binary{{"this tree", buildGeneratedMain(t)}}
	}
	if rev := os.Getenv("SMARTCALC_COLDSTART_BASE"); rev != "" {
		bins = append([]binary{{rev, buildCommit(t, rev)}}, bins...)
	}
	env := []string{"LOG_LEVEL=error"}
	store := "in-memory store"
	if os.Getenv("SMARTCALC_COLDSTART_FIRESTORE") == "1" {
		emu := smarttest.StartFirestoreEmulator(t)
		env = append(env, "SMARTCALC_FIRESTORE_PROJECT=smartcalc-coldstart", smarttest.EmulatorHostEnv+"="+emu.Host())
		store = "Firestore emulator"
	}

	results := map[string]map[string][]coldRun{} // binary => target => runs
	for _, b := range bins {
		results[b.name] = map[string][]coldRun{}
	}
	for i := range runs {
		for _, c := range coldCases {
			for _, b := range bins {
				// The load phase, when asked for, runs on the
				// first start of each function.
				n := 0
				if i == 0 && c.name != "calc-api" {
					n = load
				}
				r := measureColdStart(t, b.path, c, env, n)
				results[b.name][c.name] = append(results[b.name][c.name], r)
			}
		}
	}

	var out strings.Builder
	fmt.Fprintf(&out, "cold start and RSS, %d runs, %s (VmRSS MiB; RssAnon in brackets)\n", runs, store)
	for _, b := range bins {
		for _, c := range coldCases {
			target := c.name
			rs := results[b.name][target]
			var starts, listens, cpus []time.Duration
			var before, after, anonBefore, anonAfter []float64
			for _, r := range rs {
				starts, listens, cpus = append(starts, r.start), append(listens, r.listen), append(cpus, r.cpu)
				before, after = append(before, r.before.rss), append(after, r.after.rss)
				anonBefore, anonAfter = append(anonBefore, r.before.anon), append(anonAfter, r.after.anon)
			}
			fmt.Fprintf(&out, "%-10s %-9s cold start %s ms (listening %s, CPU %s); RSS before the first request %s (%s), after %s (%s)\n",
				b.name, target, durations(starts), durations(listens), durations(cpus),
				span(before), span(anonBefore), span(after), span(anonAfter))
			if l := rs[0].load; len(l) > 0 {
				var s []string
				for _, p := range l {
					s = append(s, fmt.Sprintf("%.1f", p.rss))
				}
				fmt.Fprintf(&out, "%-10s %-9s under load (%d requests, 8 at a time), every %d: %s MiB\n", b.name, target, rs[0].loadRequests, loadSample, strings.Join(s, " "))
			}
		}
	}
	t.Log("\n" + out.String())
}

// buildCommit builds the generated main of commit rev of this repository,
// extracted with git archive into a temporary directory.
func buildCommit(t *testing.T, rev string) string {
	t.Helper()
	dir := t.TempDir()
	archive := exec.Command("git", "archive", "--format=tar", rev)
	archive.Dir = root
	tarball, err := archive.Output()
	if err != nil {
		t.Fatalf("git archive %s: %v", rev, err)
	}
	extract := exec.Command("tar", "-x", "-C", dir)
	extract.Stdin = bytes.NewReader(tarball)
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v\n%s", rev, err, out)
	}
	module := modfile.ModulePath(mustRead(t, filepath.Join(dir, "go.mod")))
	if err := os.MkdirAll(filepath.Join(dir, "_generated_main"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_generated_main", "main.go"), []byte(fmt.Sprintf(mainTemplate, module)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "function-"+rev)
	build := exec.Command("go", "build", "-o", bin, "./_generated_main")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", rev, err, out)
	}
	return bin
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// durations gives min–max (median) in milliseconds.
func durations(d []time.Duration) string {
	d = slices.Sorted(slices.Values(d))
	return fmt.Sprintf("%.1f–%.1f (median %.1f)", ms(d[0]), ms(d[len(d)-1]), ms(d[len(d)/2]))
}

func span(v []float64) string {
	lo, hi := slices.Min(v), slices.Max(v)
	if fmt.Sprintf("%.1f", lo) == fmt.Sprintf("%.1f", hi) {
		return fmt.Sprintf("%.1f", lo)
	}
	return fmt.Sprintf("%.1f–%.1f", lo, hi)
}

// measureColdStart starts bin as target twice: once to read its memory
// before any request, once to time its first answer, read its memory after
// it and, with load > 0, under load.
func measureColdStart(t *testing.T, bin string, c coldCase, env []string, load int) coldRun {
	t.Helper()
	first, repeat := coldRequests(c.name)
	target := c.target
	var r coldRun

	// Memory before the first request: started, listening, idle.
	p := startFunction(t, bin, target, env)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", p.addr, 100*time.Millisecond); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start listening: %s", target, p.output())
		}
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(100 * time.Millisecond)
	r.before = readStatus(t, p.cmd.Process.Pid)
	p.stop()

	// The cold start: exec to the first answer, sent as soon as the
	// function accepts a connection (tried every 0.2 ms).
	client := &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t0 := time.Now()
	p = startFunction(t, bin, target, env)
	defer p.stop()
	for {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			r.listen = time.Since(t0)
			c.Close()
			break
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("%s did not start listening: %s", target, p.output())
		}
		time.Sleep(200 * time.Microsecond)
	}
	status, err := send(client, p.addr, first)
	r.start = time.Since(t0)
	r.cpu = cpuTime(t, p.cmd.Process.Pid)
	if err != nil || status != first.status {
		t.Fatalf("%s: first answer %d (%v), want %d: %s", target, status, err, first.status, p.output())
	}
	time.Sleep(100 * time.Millisecond)
	r.after = readStatus(t, p.cmd.Process.Pid)

	if load > 0 {
		var next atomic.Int64
		var wg sync.WaitGroup
		var samples sync.Mutex
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := next.Add(1)
					if n > int64(load) {
						return
					}
					status, err := send(client, p.addr, repeat)
					if err == nil && status != repeat.status {
						err = fmt.Errorf("answer %d, want %d", status, repeat.status)
					}
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
					if n%loadSample == 0 {
						st := readStatus(t, p.cmd.Process.Pid)
						samples.Lock()
						r.load = append(r.load, st)
						samples.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			t.Fatalf("%s under load: %v: %s", target, err, p.output())
		}
		slices.SortFunc(r.load, func(a, b procStatus) int { return a.seq - b.seq })
		r.loadRequests = load
	}
	return r
}

// send sends one request and reads its answer whole.
func send(c *http.Client, addr string, r coldRequest) (int, error) {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, "http://"+addr+r.path, body)
	if err != nil {
		return 0, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// coldFunction is a started function binary.
type coldFunction struct {
	cmd  *exec.Cmd
	addr string
	out  *lockedBuffer
	done chan struct{}
}

func startFunction(t *testing.T, bin, target string, env []string) *coldFunction {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), env...), "FUNCTION_TARGET="+target, "PORT="+port)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &coldFunction{cmd: cmd, addr: addr, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(f.done) }()
	return f
}

func (f *coldFunction) stop() {
	f.cmd.Process.Kill()
	<-f.done
}

func (f *coldFunction) output() string { return f.out.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// procStatus is a process's resident memory from /proc/PID/status, in MiB.
type procStatus struct {
	rss, anon, file float64
	seq             int
}

// cpuTime is the CPU time pid's threads have run, from the scheduler's
// statistics (nanoseconds, unlike the clock ticks of /proc/PID/stat):
// less sensitive than wall time to other work on a shared machine.
func cpuTime(t *testing.T, pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Error(err)
		return 0
	}
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// statusSeq orders the samples taken by concurrent load workers.
var statusSeq atomic.Int64

// readStatus reads pid's memory; it may run on any goroutine.
func readStatus(t *testing.T, pid int) procStatus {
	s := procStatus{seq: int(statusSeq.Add(1))}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Error(err)
		return s
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseFloat(f[0], 64)
		switch k {
		case "VmRSS":
			s.rss = kb / 1024
		case "RssAnon":
			s.anon = kb / 1024
		case "RssFile":
			s.file = kb / 1024
		}
	}
	return s
}
