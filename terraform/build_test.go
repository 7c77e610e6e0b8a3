package terraform

// These tests check that the repository root is what the Cloud Functions Go
// build needs (gcp-platform reference §1.2): the build parses the root with
// go/parser (test files included, build tags ignored) and wants exactly one
// package; it generates a main that serves the registered functions only if
// the root package imports the functions-framework package; and the deployed
// function is chosen by FUNCTION_TARGET, which must name a registered
// function. They live here, with the deployment, because the root may hold
// only the one .go file the build needs: any test file there would be a
// second file, and an external test package (smartcalc_test) a second
// package, which breaks the deploy. The blank import of the root package
// links the registrations into this test binary, as the generated main does.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"golang.org/x/mod/modfile"

	_ "github.com/smartcalc-app/smartcalc"
	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
)

// root is the repository root, the Cloud Functions source root.
const root = ".."

const functionsPackage = "github.com/GoogleCloudPlatform/functions-framework-go/functions"

// fakeEHR serves the one document the launch function fetches before it
// redirects: the SMART configuration of its FHIR base, /fhir.
var fakeEHR struct {
	srv       *httptest.Server
	mu        sync.Mutex
	discovery int // requests for the SMART configuration
}

// baseURL is SMARTCALC_BASE_URL for the in-process functions; it only
// appears in the URLs they build.
const baseURL = "http://127.0.0.1:8080"

func TestMain(m *testing.M) {
	fakeEHR.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fhir/.well-known/smart-configuration" {
			http.NotFound(w, r)
			return
		}
		fakeEHR.mu.Lock()
		fakeEHR.discovery++
		fakeEHR.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"authorization_endpoint":           fakeEHR.srv.URL + "/authorize",
			"token_endpoint":                   fakeEHR.srv.URL + "/token",
			"code_challenge_methods_supported": []string{"S256"},
			"capabilities":                     []string{"launch-ehr", "client-public", "context-ehr-patient"},
		})
	}))
	regs, _ := json.Marshal([]map[string]any{{
		"id":            "fake",
		"iss":           fakeEHR.srv.URL + "/fhir",
		"client_id":     "smartcalc-root-test",
		"client_auth":   map[string]string{"type": "public"},
		"scope":         "launch openid fhirUser patient/Patient.rs",
		"launch":        []string{"ehr"},
		"allowed_hosts": []string{"127.0.0.1"},
	}})
	// The functions read their configuration once, on the first request, so
	// it is set for the whole process: a local (not deployed) configuration
	// with the in-memory store.
	env := map[string]string{
		"SMARTCALC_BASE_URL":           baseURL,
		"SMARTCALC_EHRS":               string(regs),
		"SMARTCALC_TOKEN_KEY":          base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"SMARTCALC_LAUNCH_KEY":         base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		"SMARTCALC_FIRESTORE_PROJECT":  "",
		"FIRESTORE_EMULATOR_HOST":      "",
		"SMARTCALC_EHRS_FILE":          "",
		"K_SERVICE":                    "",
		"LOG_LEVEL":                    "error",
		"SMARTCALC_FIRESTORE_DATABASE": "",
	}
	for k, v := range env {
		os.Setenv(k, v)
	}
	code := m.Run()
	fakeEHR.srv.Close()
	os.Exit(code)
}

// TestSourceRootIsOnePackage does what the buildpack's get_package step does
// with the root directory, and checks the imports that select the
// functions-framework main.
func TestSourceRootIsOnePackage(t *testing.T) {
	for _, p := range rootProblems(root) {
		t.Error(p)
	}
}

// TestRootProblemsFindsBrokenRoots shows that rootProblems catches the
// layouts that break a Cloud Functions deploy.
func TestRootProblemsFindsBrokenRoots(t *testing.T) {
	const gomod = "module example.com/fn\n\ngo 1.26.0\n"
	const good = "package fn\n\nimport (\n\t_ \"" + functionsPackage + "\"\n\t_ \"example.com/fn/functions/entrypoints\"\n)\n"
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"good", map[string]string{"go.mod": gomod, "go.sum": "", "fn.go": good}, ""},
		{"external test package", map[string]string{"go.mod": gomod, "go.sum": "", "fn.go": good, "fn_test.go": "package fn_test\n"}, "exactly one package"},
		{"ignored tool file", map[string]string{"go.mod": gomod, "go.sum": "", "fn.go": good, "gen.go": "//go:build ignore\n\npackage main\n"}, "exactly one package"},
		{"no Go files", map[string]string{"go.mod": gomod, "go.sum": ""}, "exactly one package"},
		{"registrations not imported", map[string]string{"go.mod": gomod, "go.sum": "", "fn.go": "package fn\n\nimport _ \"" + functionsPackage + "\"\n"}, "functions/entrypoints"},
		{"framework not imported", map[string]string{"go.mod": gomod, "go.sum": "", "fn.go": "package fn\n\nimport _ \"example.com/fn/functions/entrypoints\"\n"}, functionsPackage},
		{"import only in a test file", map[string]string{"go.mod": gomod, "go.sum": "", "fn.go": "package fn\n", "fn_test.go": good}, "functions/entrypoints"},
		{"no go.sum", map[string]string{"go.mod": gomod, "fn.go": good}, "go.sum"},
		{"module without a dot", map[string]string{"go.mod": "module fn\n\ngo 1.26.0\n", "go.sum": "", "fn.go": strings.ReplaceAll(good, "example.com/fn", "fn")}, "dot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			problems := strings.Join(rootProblems(dir), "\n")
			switch {
			case tc.want == "" && problems != "":
				t.Errorf("problems in a good root:\n%s", problems)
			case tc.want != "" && !strings.Contains(problems, tc.want):
				t.Errorf("problems %q do not mention %q", problems, tc.want)
			}
		})
	}
}

// rootProblems lists what would stop the Cloud Functions Go build from
// building dir as a function source root.
func rootProblems(dir string) []string {
	var problems []string
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return []string{fmt.Sprintf("the source root needs go.mod: %v", err)}
	}
	module := modfile.ModulePath(gomod)
	if first, _, _ := strings.Cut(module, "/"); !strings.Contains(first, ".") {
		problems = append(problems, fmt.Sprintf("module path %q: the Go buildpack wants a dot in its first element", module))
	}
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); err != nil {
		problems = append(problems, "the source root needs go.sum (without it the build runs go mod tidy on an unpinned module)")
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return append(problems, err.Error())
	}
	fset := token.NewFileSet()
	packages := map[string][]string{} // package name => files
	imports := map[string]bool{}      // imports of the non-test files
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		// Like the buildpack: every .go file, test files included and
		// build constraints ignored.
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ImportsOnly)
		if err != nil {
			problems = append(problems, fmt.Sprintf("parse %s: %v", e.Name(), err))
			continue
		}
		packages[f.Name.Name] = append(packages[f.Name.Name], e.Name())
		if strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports[p] = true
		}
	}
	if len(packages) != 1 {
		problems = append(problems, fmt.Sprintf("the root must hold exactly one package (test files included, build tags ignored); found %v", packages))
	}
	for _, want := range []string{module + "/functions/entrypoints", functionsPackage} {
		if !imports[want] {
			problems = append(problems, fmt.Sprintf("the root package does not import %s; the deployed function would not be registered", want))
		}
	}
	return problems
}

// serve starts the functions framework in this process the way the
// generated main does, with FUNCTION_TARGET=target, on a free loopback port.
// It returns the address once the server listens, or the framework's error.
func serve(t *testing.T, target string) (string, error) {
	t.Helper()
	t.Setenv("FUNCTION_TARGET", target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	errc := make(chan error, 1)
	// The server runs until the test binary exits; the framework offers no
	// way to stop it.
	go func() { errc <- funcframework.StartHostPort("127.0.0.1", port) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return "", err
		default:
		}
		// Listening means initServer has already read FUNCTION_TARGET.
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return addr, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("FUNCTION_TARGET=%s: the server did not start listening", target)
	return "", nil
}

func TestFunctionTargetResolves(t *testing.T) {
	if !slices.Equal(slices.Sorted(slices.Values(entrypoints.Names)), []string{"calculate", "callback", "launch"}) {
		t.Errorf("entrypoints.Names = %v; Terraform deploys launch, callback and calculate", entrypoints.Names)
	}
	for _, name := range entrypoints.Names {
		if _, err := serve(t, name); err != nil {
			t.Errorf("FUNCTION_TARGET=%s: %v", name, err)
		}
	}
	// A target nobody registered fails the way a broken deploy does, which
	// shows the check above can fail.
	_, err := serve(t, "nosuchfunction")
	if err == nil || !strings.Contains(err.Error(), "no matching function") {
		t.Errorf("FUNCTION_TARGET=nosuchfunction: err = %v, want no matching function", err)
	}
}

// TestFunctionTargetLaunchIsTheLaunchHandler shows that with
// FUNCTION_TARGET=launch a request is answered by the launch handler: it
// discovers the EHR's endpoints and redirects to its authorize endpoint
// with PKCE, which no other function does.
func TestFunctionTargetLaunchIsTheLaunchHandler(t *testing.T) {
	iss := fakeEHR.srv.URL + "/fhir"
	query := "/?" + url.Values{"iss": {iss}, "launch": {"launch-123"}}.Encode()
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	addr, err := serve(t, "launch")
	if err != nil {
		t.Fatalf("FUNCTION_TARGET=launch: %v", err)
	}
	before := discoveries()
	resp, err := client.Get("http://" + addr + query)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("launch answered %s, want 302 to the EHR's authorize endpoint", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != fakeEHR.srv.URL+"/authorize" {
		t.Errorf("redirect to %s, want the discovered authorize endpoint", got)
	}
	q := loc.Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             "smartcalc-root-test",
		"redirect_uri":          baseURL + "/callback",
		"aud":                   iss,
		"launch":                "launch-123",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorize %s = %q, want %q", k, got, want)
		}
	}
	if len(q.Get("code_challenge")) != 43 || q.Get("state") == "" {
		t.Errorf("authorize request lacks a S256 challenge or a state: %v", q)
	}
	if discoveries() == before {
		t.Error("the launch handler did not fetch the EHR's SMART configuration")
	}

	// The same request to FUNCTION_TARGET=callback is not a launch.
	addr, err = serve(t, "callback")
	if err != nil {
		t.Fatalf("FUNCTION_TARGET=callback: %v", err)
	}
	resp, err = client.Get("http://" + addr + query)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound || resp.Header.Get("Location") != "" {
		t.Errorf("FUNCTION_TARGET=callback redirected (%s, %s): targets are not routed to their own handler", resp.Status, resp.Header.Get("Location"))
	}
}

func discoveries() int {
	fakeEHR.mu.Lock()
	defer fakeEHR.mu.Unlock()
	return fakeEHR.discovery
}

// mainTemplate is the main package the Cloud Functions Go build generates for
// a root package that imports the functions-framework package (the
// buildpack's declarative template).
const mainTemplate = `// Binary main file implements an HTTP server that loads and runs user's code
// on incoming HTTP requests.
package main

import (
	"log"
	"net/http"
	"os"

	_ "%s"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	http.HandleFunc("/robots.txt", http.NotFound)
	http.HandleFunc("/favicon.ico", http.NotFound)

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("Function failed to start: %%v\n", err)
	}
}
`

// TestGeneratedMainServesLaunch builds the main the Cloud Functions build
// generates, which imports only the root package, and runs it as the
// deployed launch function: FUNCTION_TARGET=launch must resolve through the
// root package's imports alone (this test binary's own import of
// entrypoints does not reach it).
func TestGeneratedMainServesLaunch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function binary")
	}
	bin := buildGeneratedMain(t)

	run := func(target string) (addr string, exited <-chan error, output *strings.Builder) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		_, port, _ := net.SplitHostPort(addr)
		l.Close()
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "FUNCTION_TARGET="+target, "PORT="+port)
		output = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = output, output
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1) // receives Wait's result, for the test
		waited := make(chan struct{})
		go func() {
			done <- cmd.Wait()
			close(waited)
		}()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-waited
		})
		return addr, done, output
	}

	// An unregistered target fails at start, as a broken deploy does.
	_, exited, out := run("nosuchfunction")
	select {
	case <-exited:
		if !strings.Contains(out.String(), "no matching function") {
			t.Errorf("FUNCTION_TARGET=nosuchfunction exited with %q, want no matching function", out.String())
		}
	case <-time.After(20 * time.Second):
		t.Error("FUNCTION_TARGET=nosuchfunction: the function started")
	}

	addr, exited, out := run("launch")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("FUNCTION_TARGET=launch: the function exited (%v): %s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("FUNCTION_TARGET=launch: the function did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	iss := fakeEHR.srv.URL + "/fhir"
	resp, err := client.Get("http://" + addr + "/?" + url.Values{"iss": {iss}, "launch": {"x"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code_challenge_method") != "S256" {
		t.Errorf("the deployed launch function answered %s (Location %q), want a PKCE redirect to the EHR", resp.Status, resp.Header.Get("Location"))
	}
}

// buildGeneratedMain builds the main the Cloud Functions build generates
// (mainTemplate importing the root package), with the build environment
// Terraform gives the deployment's build, into a temporary directory and
// returns the binary's path.
func buildGeneratedMain(t *testing.T) string {
	t.Helper()
	_, e := example(t)
	var env []string
	for k, v := range functionsOf(t, e)["launch"].buildEnv {
		env = append(env, k+"="+v)
	}
	module := modfile.ModulePath(mustRead(t, filepath.Join(root, "go.mod")))
	// A directory starting with _ inside the module, so the main resolves
	// the module's packages; the go tool's ./... patterns ignore it.
	dir, err := os.MkdirTemp(root, "_generated_main")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(fmt.Sprintf(mainTemplate, module)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "function")
	build := exec.Command("go", "build", "-o", bin, "./"+filepath.Base(dir))
	build.Dir = root
	build.Env = append(os.Environ(), env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the generated main: %v\n%s", err, out)
	}
	return bin
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
