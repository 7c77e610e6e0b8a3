package terraform

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// example evaluates the configuration with terraform.tfvars.example.
func example(t *testing.T) (*module, *eval) {
	t.Helper()
	m := loadModule(t, ".")
	vals, err := m.inputs(readVars(t, exampleVars))
	if err != nil {
		t.Fatalf("%s does not pass the variables' types and validations:\n%v", exampleVars, err)
	}
	return m, m.evaluate(t, vals)
}

// fn is one function instance, as the checks see it.
type fn struct {
	name, entryPoint, runtime string
	env                       map[string]string // plain environment
	buildEnv                  map[string]string // environment of the build
	secretEnv                 map[string]string // env var => secret id
	secretVersion             map[string]string // env var => version
	serviceAccount            string
	service                   *hclsyntax.Body
	build                     *hclsyntax.Body
	ctx                       *hcl.EvalContext
}

func functionsOf(t *testing.T, e *eval) map[string]fn {
	t.Helper()
	out := map[string]fn{}
	for key, inst := range e.instances(t, "google_cloudfunctions2_function.function") {
		f := fn{
			name:          e.str(t, inst.body, inst.ctx, "name"),
			env:           map[string]string{},
			buildEnv:      map[string]string{},
			secretEnv:     map[string]string{},
			secretVersion: map[string]string{},
			ctx:           inst.ctx,
		}
		f.build = block(t, inst.body, "build_config")
		f.service = block(t, inst.body, "service_config")
		f.entryPoint = e.str(t, f.build, inst.ctx, "entry_point")
		f.runtime = e.str(t, f.build, inst.ctx, "runtime")
		f.serviceAccount = e.str(t, f.service, inst.ctx, "service_account_email")
		for _, env := range []struct {
			body *hclsyntax.Body
			into map[string]string
		}{{f.service, f.env}, {f.build, f.buildEnv}} {
			vars, ok := value(t, env.body, inst.ctx, "environment_variables")
			if !ok {
				continue
			}
			for it := vars.ElementIterator(); it.Next(); {
				k, v := it.Element()
				if !v.IsKnown() || v.IsNull() || !v.Type().Equals(cty.String) {
					t.Fatalf("function %s: %s is not a known string", key, k.AsString())
				}
				env.into[k.AsString()] = v.AsString()
			}
		}
		for _, s := range e.dynamic(t, f.service, inst.ctx, "secret_environment_variables") {
			k := e.str(t, s.body, s.ctx, "key")
			if _, dup := f.secretEnv[k]; dup {
				t.Fatalf("function %s: secret variable %s set twice", key, k)
			}
			f.secretEnv[k] = e.str(t, s.body, s.ctx, "secret")
			f.secretVersion[k] = e.str(t, s.body, s.ctx, "version")
			if p := e.str(t, s.body, s.ctx, "project_id"); p != e.project() {
				t.Errorf("function %s: secret %s read from project %q, want %q", key, k, p, e.project())
			}
		}
		for _, b := range f.service.Blocks {
			if b.Type == "secret_environment_variables" {
				t.Errorf("function %s: static secret_environment_variables block at %s; secrets come from local.functions", key, b.DefRange())
			}
		}
		out[key] = f
	}
	return out
}

func TestFormat(t *testing.T) {
	files, _ := filepath.Glob("*.tf")
	files = append(files, exampleVars)
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted (run terraform fmt); first difference at line %d", name, firstDiffLine(src, got))
		}
	}
	// Where a terraform or tofu binary is installed, its fmt (which also
	// normalises a few expressions beyond hclwrite) must agree.
	for _, bin := range []string{"tofu", "terraform"} {
		path, err := exec.LookPath(bin)
		if err != nil {
			continue
		}
		cmd := exec.Command(path, "fmt", "-check", "-diff", ".")
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s fmt -check: %v\n%s", bin, err, out)
		}
		break
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

func TestVersions(t *testing.T) {
	m := loadModule(t, ".")
	if len(m.terraform) != 1 {
		t.Fatalf("want one terraform block, found %d", len(m.terraform))
	}
	tf := m.terraform[0].Body
	if v, ok := value(t, tf, nil, "required_version"); !ok || !strings.HasPrefix(v.AsString(), ">=") {
		t.Errorf("terraform.required_version must set a minimum version")
	}
	rp := block(t, tf, "required_providers")
	for name, source := range map[string]string{"google": "hashicorp/google", "archive": "hashicorp/archive"} {
		p, ok := value(t, rp, nil, name)
		if !ok {
			t.Errorf("required_providers: %s missing", name)
			continue
		}
		attrs := p.AsValueMap()
		if got := attrs["source"]; got.IsNull() || got.AsString() != source {
			t.Errorf("required_providers.%s.source = %#v, want %q", name, got, source)
		}
		if v, ok := attrs["version"]; !ok || !regexp.MustCompile(`^(~>|>=|=)\s*[0-9]`).MatchString(v.AsString()) {
			t.Errorf("required_providers.%s needs a version constraint", name)
		}
	}
	// Every resource and data source type belongs to a pinned provider.
	for key, b := range m.resources {
		if p, _, _ := strings.Cut(b.Labels[0], "_"); p != "google" {
			t.Errorf("resource %s: provider %s is not in required_providers", key, p)
		}
	}
	for key, b := range m.data {
		if p, _, _ := strings.Cut(b.Labels[0], "_"); p != "google" && p != "archive" {
			t.Errorf("data %s: provider %s is not in required_providers", key, p)
		}
	}
}

func TestVariablesDeclaredTypedAndUsed(t *testing.T) {
	m := loadModule(t, ".")
	for name, v := range m.variables {
		if !v.hasType {
			t.Errorf("variable %s has no type", name)
		}
		if len(strings.TrimSpace(v.description)) < 10 {
			t.Errorf("variable %s has no description", name)
		}
		if v.sensitive {
			t.Errorf("variable %s is sensitive: secret values must not pass through Terraform at all", name)
		}
		if v.def != cty.NilVal && !v.def.IsNull() && len(v.validations) == 0 && v.typ.Equals(cty.String) {
			t.Errorf("variable %s: a string with a default needs a validation rule", name)
		}
	}
	used := m.references("var")
	for name, where := range used {
		if _, ok := m.variables[name]; !ok {
			t.Errorf("var.%s is used at %v but not declared", name, where[0])
		}
	}
	for name := range m.variables {
		if _, ok := used[name]; !ok {
			t.Errorf("variable %s is declared but never used", name)
		}
	}
	usedLocals := m.references("local")
	for name, where := range usedLocals {
		if _, ok := m.locals[name]; !ok {
			t.Errorf("local.%s is used at %v but not declared", name, where[0])
		}
	}
	for name := range m.locals {
		if _, ok := usedLocals[name]; !ok {
			t.Errorf("local %s is declared but never used", name)
		}
	}

	// The example names every required variable and nothing undeclared, and
	// the defaults alone (with the required variables) pass validation.
	if _, err := m.inputs(readVars(t, exampleVars)); err != nil {
		t.Errorf("%s: %v", exampleVars, err)
	}
	ex := readVars(t, exampleVars)
	minimal := map[string]cty.Value{}
	for name, v := range m.variables {
		if v.def == cty.NilVal {
			if _, ok := ex[name]; !ok {
				t.Errorf("%s does not set required variable %s", exampleVars, name)
			}
			minimal[name] = ex[name]
		}
	}
	if _, err := m.inputs(minimal); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestValidationRejects shows that the validation rules bite: each case
// changes the example in one way that a deployment must refuse at plan time.
func TestValidationRejects(t *testing.T) {
	m := loadModule(t, ".")
	base := readVars(t, exampleVars)
	ehr := func(edit func(map[string]cty.Value)) cty.Value {
		first := base["ehrs"].AsValueSlice()[0].AsValueMap()
		e := map[string]cty.Value{}
		for k, v := range first {
			e[k] = v
		}
		edit(e)
		return cty.TupleVal([]cty.Value{cty.ObjectVal(e)})
	}
	auth := func(kv ...string) cty.Value {
		m := map[string]cty.Value{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = cty.StringVal(kv[i+1])
		}
		return cty.ObjectVal(m)
	}
	tests := []struct {
		name string
		vars map[string]cty.Value
		want string // part of the error message
	}{
		{"no EHRs", map[string]cty.Value{"ehrs": cty.EmptyTupleVal}, "at least one EHR"},
		{"duplicate ids", map[string]cty.Value{"ehrs": cty.TupleVal(append(base["ehrs"].AsValueSlice(), base["ehrs"].AsValueSlice()[0]))}, "unique id"},
		{"http iss", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["iss"] = cty.StringVal("http://ehr.example.org/fhir") })}, "https URL"},
		{"iss and iss_pattern", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["iss_pattern"] = cty.StringVal("^https://ehr\\.example\\.org/.*$") })}, "exactly one of iss"},
		{"unanchored iss_pattern", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			delete(e, "iss")
			e["iss_pattern"] = cty.StringVal("https://ehr\\.example\\.org/.*")
		})}, "anchored"},
		{"unknown client auth", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["client_auth"] = auth("type", "client_secret_post") })}, "client_auth.type"},
		{"basic without secret", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["client_auth"] = auth("type", "client_secret_basic") })}, "client_secret_basic takes secret"},
		{"public with secret", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["client_auth"] = auth("type", "public", "secret", "x") })}, "public takes none"},
		{"jwt without kid", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			e["client_auth"] = auth("type", "private_key_jwt", "key", "k", "alg", "ES384")
		})}, "private_key_jwt takes key, kid and alg"},
		{"jwt with RS256", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			e["client_auth"] = auth("type", "private_key_jwt", "key", "k", "kid", "1", "alg", "RS256")
		})}, "ES384 or RS384"},
		{"secret value instead of name", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			e["client_auth"] = auth("type", "client_secret_basic", "secret", "s3cr3t/value+with=base64")
		})}, "Secret Manager ids"},
		{"reserved secret name", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			e["client_auth"] = auth("type", "client_secret_basic", "secret", "smartcalc-token-key")
		})}, "reserved"},
		{"reserved admin token name", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			e["client_auth"] = auth("type", "client_secret_basic", "secret", "smartcalc-admin-token")
		})}, "reserved"},
		{"reserved launch key name", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			e["client_auth"] = auth("type", "private_key_jwt", "key", "smartcalc-launch-key", "kid", "1", "alg", "ES384")
		})}, "reserved"},
		{"colliding secret names", map[string]cty.Value{"ehrs": cty.TupleVal([]cty.Value{
			ehr(func(e map[string]cty.Value) {
				e["client_auth"] = auth("type", "client_secret_basic", "secret", "oracle-prod")
			}).AsValueSlice()[0],
			ehr(func(e map[string]cty.Value) {
				e["id"] = cty.StringVal("second")
				e["client_auth"] = auth("type", "client_secret_basic", "secret", "oracle_prod")
			}).AsValueSlice()[0],
		})}, "same environment variable"},
		{"bad launch", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["launch"] = cty.TupleVal([]cty.Value{cty.StringVal("backend")}) })}, "launch must list"},
		{"EHR launch without launch scope", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["scope"] = cty.StringVal("openid fhirUser patient/Patient.rs") })}, "needs the launch scope"},
		{"no allowed hosts", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["allowed_hosts"] = cty.EmptyTupleVal })}, "allowed_hosts must list"},
		{"allowed hosts missing", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { delete(e, "allowed_hosts") })}, "allowed_hosts"},
		{"bad pkce", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["pkce"] = cty.StringVal("plain") })}, "pkce"},
		{"bad browser_binding", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) { e["browser_binding"] = cty.StringVal("no") })}, "browser_binding"},
		{"host with scheme", map[string]cty.Value{"ehrs": ehr(func(e map[string]cty.Value) {
			e["allowed_hosts"] = cty.TupleVal([]cty.Value{cty.StringVal("https://authorization.cerner.com")})
		})}, "allowed_hosts"},
		{"latest secret version", map[string]cty.Value{"secret_versions": cty.ObjectVal(map[string]cty.Value{"smartcalc-token-key": cty.StringVal("latest")})}, "version numbers"},
		{"no instances", map[string]cty.Value{"max_instances": cty.NumberIntVal(0)}, "1 to 100"},
		{"unbounded instances", map[string]cty.Value{"max_instances": cty.NumberIntVal(1000)}, "1 to 100"},
		{"bad memory", map[string]cty.Value{"memory": cty.ObjectVal(map[string]cty.Value{"calculate": cty.StringVal("lots")})}, "memory values"},
		{"bad duration", map[string]cty.Value{"launch_ttl": cty.StringVal("10 minutes")}, "launch_ttl"},
		{"frame ancestor with path", map[string]cty.Value{"frame_ancestors": cty.TupleVal([]cty.Value{cty.StringVal("https://ehr.example.org/app")})}, "frame_ancestors"},
		{"bad log level", map[string]cty.Value{"log_level": cty.StringVal("verbose")}, "log_level"},
		{"project number", map[string]cty.Value{"project_id": cty.StringVal("123456789012")}, "project_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]cty.Value{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tc.vars {
				vars[k] = v
			}
			_, err := m.inputs(vars)
			if err == nil {
				t.Fatalf("accepted; want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestFunctionsMatchRegistrations(t *testing.T) {
	_, e := example(t)
	fns := functionsOf(t, e)
	want := slices.Sorted(slices.Values(entrypoints.Names))
	if got := sortedKeys(fns); !slices.Equal(got, want) {
		t.Fatalf("functions %v, want the names registered in functions/entrypoints %v", got, want)
	}
	runtime := goRuntime(t)
	for key, f := range fns {
		if f.name != key || f.entryPoint != key {
			t.Errorf("function %s: name %q, entry_point %q; both must be %q (the registered name, and the URL's last segment)", key, f.name, f.entryPoint, key)
		}
		if f.runtime != runtime {
			t.Errorf("function %s: runtime %q, want %q from go.mod", key, f.runtime, runtime)
		}
		minI, _ := value(t, f.service, f.ctx, "min_instance_count")
		if minI == cty.NilVal || !minI.IsKnown() || !minI.RawEquals(cty.NumberIntVal(0)) {
			t.Errorf("function %s: min_instance_count = %#v, want 0 (no idle instances)", key, minI)
		}
		maxI, ok := value(t, f.service, f.ctx, "max_instance_count")
		if n, _ := maxI.AsBigFloat().Int64(); !ok || !maxI.IsKnown() || n < 1 || n > 100 {
			t.Errorf("function %s: max_instance_count must be a known bound from 1 to 100, got %#v", key, maxI)
		}
		mem := e.str(t, f.service, f.ctx, "available_memory")
		if !regexp.MustCompile(`^[0-9]+(M|Mi|G|Gi)$`).MatchString(mem) {
			t.Errorf("function %s: available_memory %q", key, mem)
		}
		timeout, ok := value(t, f.service, f.ctx, "timeout_seconds")
		if s, _ := timeout.AsBigFloat().Int64(); !ok || s < 10 || s > 540 {
			t.Errorf("function %s: timeout_seconds %#v, want 10 to 540", key, timeout)
		}
		if ing := e.str(t, f.service, f.ctx, "ingress_settings"); ing != "ALLOW_ALL" {
			t.Errorf("function %s: ingress_settings %q: the clinician's browser must reach it", key, ing)
		}
		// One source, one build: the binary the build makes, and so
		// what buildGeneratedMain builds and measures, is the same for
		// all three; statically linked.
		if !maps.Equal(f.buildEnv, fns[want[0]].buildEnv) {
			t.Errorf("function %s: build environment %v differs from %s's %v", key, f.buildEnv, want[0], fns[want[0]].buildEnv)
		}
		if f.buildEnv["CGO_ENABLED"] != "0" {
			t.Errorf("function %s: build environment %v lacks CGO_ENABLED=0 (a statically linked binary)", key, f.buildEnv)
		}
		src := block(t, block(t, f.build, "source"), "storage_source")
		if _, ok := src.Attributes["object"]; !ok {
			t.Errorf("function %s: no source object", key)
		}
	}
}

// goRuntime is the Cloud Functions runtime for go.mod's go directive
// ("go 1.26.0" => "go126").
func goRuntime(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go ([0-9]+)\.([0-9]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return "go" + string(m[1]) + string(m[2])
}

// TestEnvironmentMatchesConfigLoader checks every variable Terraform sets
// against config.Variables, and the per-function sets against the least
// privilege each function needs.
func TestEnvironmentMatchesConfigLoader(t *testing.T) {
	_, e := example(t)
	fns := functionsOf(t, e)

	known := map[string]config.Variable{}
	var prefixes []config.Variable
	for _, v := range config.Variables {
		if v.Prefix {
			prefixes = append(prefixes, v)
		} else {
			known[v.Name] = v
		}
	}
	lookup := func(name string) (config.Variable, bool) {
		if v, ok := known[name]; ok {
			return v, true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p.Name) && len(name) > len(p.Name) {
				return p, true
			}
		}
		return config.Variable{}, false
	}

	set := map[string]bool{} // config variable names set on some function
	for key, f := range fns {
		for name := range f.env {
			v, ok := lookup(name)
			switch {
			case !ok:
				t.Errorf("function %s: %s is not read by shared/config", key, name)
			case !v.Deployed:
				t.Errorf("function %s: %s is not a deployed variable (%s)", key, name, v.Doc)
			case v.Secret:
				t.Errorf("function %s: %s is a secret but is set as a plain environment variable", key, name)
			}
			set[v.Name] = true
		}
		for name, secret := range f.secretEnv {
			v, ok := lookup(name)
			switch {
			case !ok:
				t.Errorf("function %s: secret variable %s is not read by shared/config", key, name)
			case !v.Secret:
				t.Errorf("function %s: %s comes from Secret Manager but shared/config does not treat it as a secret", key, name)
			case v.Prefix && name != config.SecretVariable(secret):
				t.Errorf("function %s: secret %s is in %s, but config.SecretVariable gives %s", key, secret, name, config.SecretVariable(secret))
			}
			set[v.Name] = true
			if ver := f.secretVersion[name]; !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(ver) {
				t.Errorf("function %s: %s reads secret version %q, want a version number", key, name, ver)
			}
		}
	}
	for _, v := range config.Variables {
		if v.Deployed && !set[v.Name] {
			t.Errorf("%s is a deployed variable but no function sets it", v.Name)
		}
	}

	// Least privilege, per function.
	secretNames := exampleSecretNames(t)
	launchEnv := []string{config.EnvBaseURL, config.EnvEHRs, config.EnvFirestoreProject, config.EnvFirestoreDatabase,
		config.EnvLaunchTTL, config.EnvDiscoveryTTL, config.EnvFrameAncestors, config.EnvLogLevel}
	callbackEnv := append(slices.Clone(launchEnv), config.EnvSessionTTL)
	calculateEnv := append(slices.Clone(callbackEnv), config.EnvIdleTimeout, config.EnvCDSClients, config.EnvCDSBudget, config.EnvCDSLanguage, config.EnvLabLookback)
	clientSecrets := []string{config.EnvTokenKey}
	for _, n := range secretNames {
		clientSecrets = append(clientSecrets, config.SecretVariable(n))
	}
	// launch: exactly one secret, the key that seals verifiers; callback
	// opens them; calculate never sees it.
	want := map[string]struct{ env, secrets []string }{
		"launch":   {launchEnv, []string{config.EnvLaunchKey}},
		"callback": {callbackEnv, append(slices.Clone(clientSecrets), config.EnvLaunchKey)},
		// Only calculate serves the admin path, so only it reads its token.
		"calculate": {calculateEnv, append(slices.Clone(clientSecrets), config.EnvAdminToken)},
	}
	for key, w := range want {
		f, ok := fns[key]
		if !ok {
			t.Errorf("no function %s", key)
			continue
		}
		if got := sortedKeys(f.env); !slices.Equal(got, sorted(w.env)) {
			t.Errorf("function %s: environment %v, want %v", key, got, sorted(w.env))
		}
		if got := sortedKeys(f.secretEnv); !slices.Equal(got, sorted(w.secrets)) {
			t.Errorf("function %s: secrets %v, want %v", key, got, sorted(w.secrets))
		}
	}

	// What Terraform sets is a configuration the loader accepts, and its
	// URLs are the outputs the deployer registers with the EHRs.
	for key, f := range fns {
		env := map[string]string{config.EnvKService: key}
		for k, v := range f.env {
			env[k] = v
		}
		for k := range f.secretEnv {
			env[k] = "placeholder"
		}
		for _, k := range []string{config.EnvTokenKey, config.EnvLaunchKey} {
			if _, ok := f.secretEnv[k]; ok {
				env[k] = base64.StdEncoding.EncodeToString(make([]byte, 32))
			}
		}
		if _, ok := f.secretEnv[config.EnvAdminToken]; ok {
			env[config.EnvAdminToken] = strings.Repeat("a", 40)
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("function %s: config.Load rejects what Terraform sets: %v", key, err)
			continue
		}
		for out, got := range map[string]string{"launch_uri": cfg.LaunchURI(), "redirect_uri": cfg.RedirectURI(), "calculate_url": cfg.AppURL()} {
			if want := e.output(t, out).AsString(); got != want {
				t.Errorf("function %s: config gives %s %q, output says %q", key, out, got, want)
			}
		}
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// exampleSecretNames lists the secret names the example's registrations use.
func exampleSecretNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, e := range readVars(t, exampleVars)["ehrs"].AsValueSlice() {
		a := e.GetAttr("client_auth")
		for _, k := range []string{"secret", "key"} {
			if a.Type().HasAttribute(k) && !a.GetAttr(k).IsNull() {
				names = append(names, a.GetAttr(k).AsString())
			}
		}
	}
	if len(names) < 2 {
		t.Fatalf("%s should show a client secret and a private key; found %v", exampleVars, names)
	}
	return names
}

// TestEHRsVariable checks that SMARTCALC_EHRS carries the registrations in
// the JSON shape of README Design §4, with unset optional fields left out.
func TestEHRsVariable(t *testing.T) {
	m, e := example(t)
	raw := e.locals["ehrs_json"].AsString()
	var regs []map[string]any
	if err := json.Unmarshal([]byte(raw), &regs); err != nil {
		t.Fatalf("SMARTCALC_EHRS is not a JSON array of objects: %v", err)
	}
	ex := readVars(t, exampleVars)["ehrs"].AsValueSlice()
	if len(regs) != len(ex) {
		t.Fatalf("%d registrations, want %d", len(regs), len(ex))
	}
	fields := map[string]bool{"id": true, "iss": true, "iss_pattern": true, "client_id": true, "client_auth": true,
		"scope": true, "launch": true, "allowed_hosts": true, "id_token_issuer": true, "pkce": true, "browser_binding": true, "redirect_per_registration": true}
	authFields := map[string]bool{"type": true, "secret": true, "key": true, "kid": true, "alg": true}
	for i, r := range regs {
		for k, v := range r {
			if !fields[k] {
				t.Errorf("registration %d: unexpected field %q", i, k)
			}
			if v == nil {
				t.Errorf("registration %d: %s is null; unset fields must be left out", i, k)
			}
		}
		auth, _ := r["client_auth"].(map[string]any)
		for k, v := range auth {
			if !authFields[k] || v == nil {
				t.Errorf("registration %d: client_auth.%s = %v", i, k, v)
			}
		}
		// Every field the example sets arrives unchanged.
		want, err := ctyjson.Marshal(ex[i], ex[i].Type())
		if err != nil {
			t.Fatal(err)
		}
		var w map[string]any
		_ = json.Unmarshal(want, &w)
		for k, v := range w {
			if got, _ := json.Marshal(r[k]); string(got) != mustJSON(v) {
				t.Errorf("registration %d: %s = %s, example says %s", i, k, got, mustJSON(v))
			}
		}
		if r["launch"] == nil {
			t.Errorf("registration %d: launch has no default", i)
		}
	}

	// The variable's type has exactly the fields the Go registration has.
	ty := m.variables["ehrs"].typ.ElementType()
	if got, want := sortedKeys(ty.AttributeTypes()), jsonFields(reflect.TypeFor[smart.Registration]()); !slices.Equal(got, want) {
		t.Errorf("variable ehrs has fields %v; smart.Registration has %v", got, want)
	}
	if got, want := sortedKeys(ty.AttributeType("client_auth").AttributeTypes()), jsonFields(reflect.TypeFor[smart.ClientAuth]()); !slices.Equal(got, want) {
		t.Errorf("variable ehrs: client_auth has fields %v; smart.ClientAuth has %v", got, want)
	}

	// The functions' registry accepts them: strict decoding (no unknown
	// fields) and the same validation a deployed instance runs at start-up.
	parsed, err := smart.ParseRegistrations([]byte(raw))
	if err != nil {
		t.Fatalf("smart.ParseRegistrations rejects SMARTCALC_EHRS: %v", err)
	}
	if _, err := smart.NewRegistry(parsed, false); err != nil {
		t.Fatalf("smart.NewRegistry rejects SMARTCALC_EHRS: %v", err)
	}
}

// jsonFields lists the JSON names of a struct's exported fields.
func jsonFields(rt reflect.Type) []string {
	var names []string
	for f := range rt.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return sorted(names)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestFirestore(t *testing.T) {
	m, e := example(t)
	db := m.resources["google_firestore_database.main"]
	if db == nil {
		t.Fatal("no google_firestore_database.main")
	}
	if typ := e.str(t, db.Body, e.ctx, "type"); typ != "FIRESTORE_NATIVE" {
		t.Errorf("database type %q, want FIRESTORE_NATIVE", typ)
	}
	fields := e.instances(t, "google_firestore_field.ttl")
	want := []string{store.LaunchCollection, store.SessionCollection, store.ActivityCollection, store.ReplayCollection}
	var got []string
	for _, inst := range fields {
		coll := e.str(t, inst.body, inst.ctx, "collection")
		got = append(got, coll)
		if f := e.str(t, inst.body, inst.ctx, "field"); f != store.TTLField {
			t.Errorf("%s: TTL field %q, want %q (shared/store)", coll, f, store.TTLField)
		}
		block(t, inst.body, "ttl_config")
		idx := block(t, inst.body, "index_config")
		if len(idx.Blocks) != 0 || len(idx.Attributes) != 0 {
			t.Errorf("%s: index_config must be empty, turning the single-field indexes off", coll)
		}
		if !refersTo(inst.body.Attributes["database"].Expr, "google_firestore_database", "main") {
			t.Errorf("%s: the field must refer to google_firestore_database.main", coll)
		}
	}
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("TTL policies on %v, want %v", sorted(got), sorted(want))
	}
	// The database the functions use is the one Terraform creates.
	for key, f := range functionsOf(t, e) {
		if got, want := f.env[config.EnvFirestoreDatabase], e.str(t, db.Body, e.ctx, "name"); got != want {
			t.Errorf("function %s: %s = %q, database is %q", key, config.EnvFirestoreDatabase, got, want)
		}
		if got := f.env[config.EnvFirestoreProject]; got != e.project() {
			t.Errorf("function %s: %s = %q", key, config.EnvFirestoreProject, got)
		}
	}
}

func refersTo(expr hclsyntax.Expression, root, name string) bool {
	for _, tr := range expr.Variables() {
		if tr.RootName() == root && len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok && a.Name == name {
				return true
			}
		}
	}
	return false
}

// TestIAM checks least privilege: datastore.user for each function's own
// account, secretAccessor on exactly the secrets a function reads, the build
// account's roles, and public invocation through Cloud Run.
func TestIAM(t *testing.T) {
	m, e := example(t)
	fns := functionsOf(t, e)
	accounts := map[string]string{} // member => function
	for key, sa := range e.instances(t, "google_service_account.function") {
		email := e.str(t, sa.body, sa.ctx, "account_id") + "@" + e.project() + ".iam.gserviceaccount.com"
		accounts["serviceAccount:"+email] = key
		if f, ok := fns[key]; !ok || f.serviceAccount != email {
			t.Errorf("function %s runs as %q, want its own account %s", key, fns[key].serviceAccount, email)
		}
	}
	if len(accounts) != len(fns) {
		t.Errorf("%d runtime accounts for %d functions", len(accounts), len(fns))
	}

	// Project-level roles of the runtime accounts: datastore.user, each.
	datastore := map[string]bool{}
	for key, b := range m.resources {
		if b.Labels[0] != "google_project_iam_member" {
			continue
		}
		for _, inst := range e.instances(t, key) {
			member, role := e.str(t, inst.body, inst.ctx, "member"), e.str(t, inst.body, inst.ctx, "role")
			f, runtime := accounts[member]
			if !runtime {
				continue
			}
			if role != "roles/datastore.user" {
				t.Errorf("function %s's account has project role %s", f, role)
			}
			datastore[f] = true
		}
		if _, cond := b.Body.Attributes["condition"]; cond {
			t.Errorf("%s: unexpected IAM condition", key)
		}
	}
	for key := range fns {
		if !datastore[key] {
			t.Errorf("function %s's account lacks roles/datastore.user", key)
		}
	}

	// Secret access: exactly the secrets each function's environment names.
	secretIDs := map[string]string{} // secret resource id => secret id
	for _, inst := range e.instances(t, "google_secret_manager_secret.secret") {
		id := e.str(t, inst.body, inst.ctx, "secret_id")
		secretIDs["projects/"+e.project()+"/secrets/"+id] = id
	}
	granted := map[string][]string{}
	for _, key := range sortedKeys(m.resources) {
		typ := m.resources[key].Labels[0]
		if !strings.HasPrefix(typ, "google_secret_manager_secret_iam") {
			continue
		}
		if typ != "google_secret_manager_secret_iam_member" {
			t.Errorf("%s: grant secret access with _iam_member resources", key)
			continue
		}
		for _, inst := range e.instances(t, key) {
			if role := e.str(t, inst.body, inst.ctx, "role"); role != "roles/secretmanager.secretAccessor" {
				t.Errorf("secret grant %s[%s]: role %s", key, inst.key, role)
			}
			f, ok := accounts[e.str(t, inst.body, inst.ctx, "member")]
			if !ok {
				t.Errorf("secret grant %s[%s] is not to a function's account", key, inst.key)
				continue
			}
			granted[f] = append(granted[f], secretIDs[e.str(t, inst.body, inst.ctx, "secret_id")])
		}
	}
	// Any other IAM resource naming a runtime account is a privilege too many.
	for _, key := range sortedKeys(m.resources) {
		typ := m.resources[key].Labels[0]
		if !strings.Contains(typ, "_iam_") || typ == "google_project_iam_member" || strings.HasPrefix(typ, "google_secret_manager_secret_iam") {
			continue
		}
		for _, inst := range e.instances(t, key) {
			for _, attr := range []string{"member", "members"} {
				v, ok := value(t, inst.body, inst.ctx, attr)
				if !ok || !v.IsWhollyKnown() {
					continue
				}
				if !v.Type().IsPrimitiveType() {
					for it := v.ElementIterator(); it.Next(); {
						_, mv := it.Element()
						if f, runtime := accounts[mv.AsString()]; runtime {
							t.Errorf("%s[%s] grants function %s's account more", key, inst.key, f)
						}
					}
				} else if f, runtime := accounts[v.AsString()]; runtime {
					t.Errorf("%s[%s] grants function %s's account more", key, inst.key, f)
				}
			}
		}
	}
	for key, f := range fns {
		var reads []string
		for _, s := range f.secretEnv {
			reads = append(reads, s)
		}
		if got, want := sorted(granted[key]), sorted(reads); !slices.Equal(got, want) {
			t.Errorf("function %s: secretAccessor on %v, but it reads %v", key, got, want)
		}
	}
	// launch reads exactly one secret, the launch key; callback reads it
	// too, to open verifiers; calculate does not.
	if got := granted["launch"]; !slices.Equal(got, []string{"smartcalc-launch-key"}) {
		t.Errorf("launch may read the launch key alone, has %v", got)
	}
	if !slices.Contains(granted["callback"], "smartcalc-launch-key") || slices.Contains(granted["calculate"], "smartcalc-launch-key") {
		t.Errorf("launch key readers: callback %v, calculate %v; want callback and not calculate", granted["callback"], granted["calculate"])
	}
	var want []string
	for id := range secretIDs {
		want = append(want, secretIDs[id])
	}
	if granted["callback"] != nil && slices.Contains(granted["callback"], "smartcalc-admin-token") {
		t.Errorf("callback may not read the admin token: %v", granted["callback"])
	}
	if !slices.Contains(granted["calculate"], "smartcalc-admin-token") {
		t.Errorf("calculate cannot read the admin token: %v", granted["calculate"])
	}
	if got := sorted(append(exampleSecretNames(t), "smartcalc-token-key", "smartcalc-launch-key", "smartcalc-admin-token")); !slices.Equal(sorted(want), got) {
		t.Errorf("secrets %v, want the token key, the launch key, the admin token and one per registration secret %v", sorted(want), got)
	}

	// The build account: a custom one, with the roles the Go buildpack needs.
	build := e.instances(t, "google_service_account.build")[""]
	buildEmail := e.str(t, build.body, build.ctx, "account_id") + "@" + e.project() + ".iam.gserviceaccount.com"
	for key, f := range fns {
		if got := e.str(t, f.build, f.ctx, "service_account"); got != "projects/"+e.project()+"/serviceAccounts/"+buildEmail {
			t.Errorf("function %s builds as %q, want the build account", key, got)
		}
	}
	buildRoles := map[string]bool{}
	for _, key := range []string{"google_project_iam_member.build", "google_artifact_registry_repository_iam_member.build"} {
		for _, inst := range e.instances(t, key) {
			if e.str(t, inst.body, inst.ctx, "member") == "serviceAccount:"+buildEmail {
				buildRoles[e.str(t, inst.body, inst.ctx, "role")] = true
			}
		}
	}
	for _, r := range []string{"roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectViewer"} {
		if !buildRoles[r] {
			t.Errorf("build account lacks %s", r)
		}
	}

	// Public invocation: run.invoker for allUsers on each function's service.
	invokers := map[string]bool{}
	for _, inst := range e.instances(t, "google_cloud_run_v2_service_iam_member.public") {
		if e.str(t, inst.body, inst.ctx, "role") != "roles/run.invoker" || e.str(t, inst.body, inst.ctx, "member") != "allUsers" {
			t.Errorf("invoker %s: want roles/run.invoker for allUsers", inst.key)
		}
		if !refersTo(inst.body.Attributes["name"].Expr, "google_cloudfunctions2_function", "function") {
			t.Errorf("invoker %s: name must be the function's (its Cloud Run service)", inst.key)
		}
		invokers[inst.key] = true
	}
	for key := range fns {
		if !invokers[key] {
			t.Errorf("function %s is not publicly invocable", key)
		}
	}
	for key, b := range m.resources {
		if strings.HasPrefix(b.Labels[0], "google_cloudfunctions2_function_iam") || strings.HasPrefix(b.Labels[0], "google_project_iam_binding") || strings.HasPrefix(b.Labels[0], "google_project_iam_policy") {
			t.Errorf("%s: use member resources (and Cloud Run's invoker role), not %s", key, b.Labels[0])
		}
	}
}

// TestNoLiteralSecrets checks that no secret value can enter the
// configuration, its state or the example variables.
func TestNoLiteralSecrets(t *testing.T) {
	m := loadModule(t, ".")
	for key, b := range m.resources {
		if b.Labels[0] == "google_secret_manager_secret_version" {
			t.Errorf("resource %s would put a secret value in state", key)
		}
	}
	for key, b := range m.data {
		if strings.HasPrefix(b.Labels[0], "google_secret_manager_secret_version") {
			t.Errorf("data %s would read a secret value into state", key)
		}
	}
	files := map[string][]byte{}
	for name, src := range m.sources {
		files[name] = src
	}
	ex, err := os.ReadFile(exampleVars)
	if err != nil {
		t.Fatal(err)
	}
	files[exampleVars] = ex
	forbidden := regexp.MustCompile(`(?i)^(secret_data.*|password|client_secret|private_key|access_token|refresh_token|token_key)$`)
	for name, src := range files {
		f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
			switch n := n.(type) {
			case *hclsyntax.Attribute:
				if forbidden.MatchString(n.Name) {
					t.Errorf("%s: attribute %s", n.SrcRange, n.Name)
				}
			case *hclsyntax.ObjectConsKeyExpr:
				if k := hcl.ExprAsKeyword(n.Wrapped); forbidden.MatchString(k) {
					t.Errorf("%s: key %s", n.Range(), k)
				}
			case *hclsyntax.TemplateExpr:
				for _, p := range n.Parts {
					if lit, ok := p.(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type().Equals(cty.String) {
						if why := looksSecret(lit.Val.AsString()); why != "" {
							t.Errorf("%s: a string literal %s", lit.SrcRange, why)
						}
					}
				}
			}
			return nil
		})
		for _, line := range strings.Split(string(src), "\n") {
			if why := looksSecret(line); why != "" {
				t.Errorf("%s: %q %s", name, line, why)
			}
		}
	}
}

var (
	pemHeader  = regexp.MustCompile(`-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----`)
	jwtLike    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.`)
	tokenLike  = regexp.MustCompile(`[A-Za-z0-9+/_=-]{24,}`)
	uuidLike   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	mixedCases = []*regexp.Regexp{regexp.MustCompile(`[a-z]`), regexp.MustCompile(`[A-Z]`), regexp.MustCompile(`[0-9]`)}
)

// looksSecret says why s looks like a secret value (a PEM key, a JWT, or a
// long high-entropy token such as a client secret or a base64 key), or "".
func looksSecret(s string) string {
	switch {
	case pemHeader.MatchString(s):
		return "holds a PEM key"
	case jwtLike.MatchString(s):
		return "holds a JWT"
	}
	for _, tok := range tokenLike.FindAllString(s, -1) {
		if uuidLike.MatchString(strings.ToLower(tok)) {
			continue
		}
		classes := 0
		for _, re := range mixedCases {
			if re.MatchString(tok) {
				classes++
			}
		}
		// Words, paths and hex ids have few character classes or low entropy.
		if classes == 3 && entropy(tok) > 4.3 {
			return fmt.Sprintf("holds a high-entropy token (%.1f bits/char)", entropy(tok))
		}
	}
	return ""
}

// TestLooksSecret shows that the detector finds the secrets a deployer might
// paste, and leaves the configuration's ordinary strings alone.
func TestLooksSecret(t *testing.T) {
	secrets := []string{
		base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789ABCDEF")), // a token key
		"Kq8vZ2xR5nT1wY7bM3cF9hJ6dL0pS4aE",                                            // a client secret
		"-----BEGIN PRIVATE KEY-----",
		"-----BEGIN EC PRIVATE KEY-----",
		"eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJl",
	}
	for _, s := range secrets {
		if looksSecret(s) == "" {
			t.Errorf("looksSecret(%q) = \"\", want it flagged", s)
		}
	}
	ordinary := []string{
		"https://fhir-ehr-code.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
		"https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4",
		"launch openid fhirUser patient/Patient.rs patient/Observation.rs patient/MedicationRequest.rs online_access",
		"roles/secretmanager.secretAccessor",
		"google_artifact_registry_repository_iam_member",
		"SMARTCALC_SECRET_ORACLE_PROD_CLIENT_SECRET",
	}
	for _, s := range ordinary {
		if why := looksSecret(s); why != "" {
			t.Errorf("looksSecret(%q) = %q, want it left alone", s, why)
		}
	}
}

func TestOutputs(t *testing.T) {
	_, e := example(t)
	base := "https://" + e.vars["region"].AsString() + "-" + e.project() + ".cloudfunctions.net"
	want := map[string]string{
		"launch_uri":       base + "/launch",
		"redirect_uri":     base + "/callback",
		"calculate_url":    base + "/calculate/",
		"cds_services_url": base + "/calculate/cds-services",
	}
	for name, w := range want {
		if got := e.output(t, name); !got.IsKnown() || got.AsString() != w {
			t.Errorf("output %s = %#v, want %q", name, got, w)
		}
	}
	// The URLs the functions get are the deterministic ones, so nothing
	// depends on a function's computed url.
	for key, f := range functionsOf(t, e) {
		if got := f.env[config.EnvBaseURL]; got != base {
			t.Errorf("function %s: %s = %q, want %q", key, config.EnvBaseURL, got, base)
		}
		for _, a := range f.service.Attributes {
			if refersTo(a.Expr, "google_cloudfunctions2_function", "function") {
				t.Errorf("function %s: %s refers to a function's computed attributes", key, a.Name)
			}
		}
	}
	secrets := e.output(t, "secrets")
	var names []string
	for it := secrets.ElementIterator(); it.Next(); {
		_, v := it.Element()
		names = append(names, v.AsString())
	}
	if want := sorted(append(exampleSecretNames(t), "smartcalc-token-key", "smartcalc-launch-key", "smartcalc-admin-token")); !slices.Equal(names, want) {
		t.Errorf("output secrets = %v, want %v", names, want)
	}
}

func TestAPIs(t *testing.T) {
	_, e := example(t)
	apis := e.instances(t, "google_project_service.api")
	for _, api := range []string{"artifactregistry", "cloudbuild", "cloudfunctions", "firestore", "iam", "run", "secretmanager", "storage"} {
		inst, ok := apis[api+".googleapis.com"]
		if !ok {
			t.Errorf("API %s.googleapis.com is not enabled", api)
			continue
		}
		if v, ok := value(t, inst.body, inst.ctx, "disable_on_destroy"); !ok || v.True() {
			t.Errorf("%s: disable_on_destroy must be false", api)
		}
	}
}

// TestSourceArchive checks that the zip the functions are built from is the
// repository root minus what the Cloud Functions Go build must not see, and
// that it is named by its content hash.
func TestSourceArchive(t *testing.T) {
	m, e := example(t)
	a := m.data["archive_file.source"]
	if a == nil {
		t.Fatal("no data.archive_file.source")
	}
	dir := e.str(t, a.Body, e.ctx, "source_dir")
	root, _ := filepath.Abs("..")
	if got, _ := filepath.Abs(dir); got != root {
		t.Errorf("source_dir %q is %s, want the repository root %s", dir, got, root)
	}
	out := e.str(t, a.Body, e.ctx, "output_path")
	if rel, err := filepath.Rel(".", out); err != nil || strings.HasPrefix(rel, "..") {
		t.Errorf("output_path %q must be inside terraform/, which the zip excludes", out)
	}
	exv, _ := value(t, a.Body, e.ctx, "excludes")
	var excludes []string
	for it := exv.ElementIterator(); it.Next(); {
		_, v := it.Element()
		excludes = append(excludes, v.AsString())
	}

	// Walk the repository as the archive provider does (doublestar globs on
	// slash paths relative to source_dir; an excluded directory is skipped).
	var kept []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if excluded(rel, excludes) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			kept = append(kept, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, k := range kept {
		has[k] = true
		switch {
		case strings.HasPrefix(k, "terraform/"):
			t.Errorf("zip contains %s", k)
		case strings.HasSuffix(k, "_test.go"):
			t.Errorf("zip contains test file %s", k)
		case strings.Contains("/"+k, "/testdata/"):
			t.Errorf("zip contains test data %s", k)
		case strings.HasPrefix(k, ".git/"):
			t.Errorf("zip contains %s", k)
		}
	}
	for _, need := range []string{"go.mod", "go.sum", "smartcalc.go"} {
		if !has[need] {
			t.Errorf("zip lacks %s", need)
		}
	}

	obj := m.resources["google_storage_bucket_object.source"]
	if obj == nil {
		t.Fatal("no google_storage_bucket_object.source")
	}
	hashed := false
	for _, tr := range obj.Body.Attributes["name"].Expr.Variables() {
		if tr.RootName() == "data" && len(tr) == 4 {
			if attr, ok := tr[3].(hcl.TraverseAttr); ok && strings.HasPrefix(attr.Name, "output_") && (strings.Contains(attr.Name, "sha") || strings.Contains(attr.Name, "md5")) {
				hashed = true
			}
		}
	}
	if !hashed {
		t.Error("the source object's name must contain the zip's content hash, or source changes will not redeploy")
	}
	for key, f := range functionsOf(t, e) {
		src := block(t, block(t, f.build, "source"), "storage_source")
		if !refersTo(src.Attributes["object"].Expr, "google_storage_bucket_object", "source") {
			t.Errorf("function %s is not built from google_storage_bucket_object.source", key)
		}
	}
}

// excluded reports whether rel matches one of the doublestar patterns used
// in excludes: "**" is any number of path segments, "*" any part of one.
func excluded(rel string, patterns []string) bool {
	for _, p := range patterns {
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "/**") && i+3 == len(p):
				re.WriteString("(/.*)?")
				i += 2
			case p[i] == '*':
				re.WriteString("[^/]*")
			default:
				re.WriteString(regexp.QuoteMeta(string(p[i])))
			}
		}
		re.WriteString("$")
		if regexp.MustCompile(re.String()).MatchString(rel) {
			return true
		}
	}
	return false
}

func TestExcludedGlobs(t *testing.T) {
	tests := []struct {
		rel, pattern string
		want         bool
	}{
		{"terraform", "terraform/**", true},
		{"terraform/.terraform/providers/x", "terraform/**", true},
		{"terraformer.go", "terraform/**", false},
		{"smartcalc_test.go", "**/*_test.go", true},
		{"shared/store/store_test.go", "**/*_test.go", true},
		{"shared/store/store.go", "**/*_test.go", false},
		{"shared/calc/testdata/x.json", "**/testdata/**", true},
		{"shared/calc/testdata", "**/testdata/**", true},
		{"shared/calc/data.json", "**/testdata/**", false},
	}
	for _, tc := range tests {
		if got := excluded(tc.rel, []string{tc.pattern}); got != tc.want {
			t.Errorf("excluded(%q, %q) = %v, want %v", tc.rel, tc.pattern, got, tc.want)
		}
	}
}

// TestPostconditionGuardsURLs checks that apply fails loudly if a function's
// real URL ever differs from the deterministic one the EHRs are given.
func TestPostconditionGuardsURLs(t *testing.T) {
	m := loadModule(t, ".")
	b := m.resources["google_cloudfunctions2_function.function"]
	lc := block(t, b.Body, "lifecycle")
	pc := block(t, lc, "postcondition")
	cond := pc.Attributes["condition"].Expr
	var self, base bool
	for _, tr := range cond.Variables() {
		switch {
		case tr.RootName() == "self" && len(tr) > 1:
			if a, ok := tr[1].(hcl.TraverseAttr); ok && a.Name == "url" {
				self = true
			}
		case tr.RootName() == "local" && len(tr) > 1:
			if a, ok := tr[1].(hcl.TraverseAttr); ok && a.Name == "base_url" {
				base = true
			}
		}
	}
	if !self || !base {
		t.Error("the functions' postcondition must compare self.url with local.base_url")
	}
}

// TestMemoryDocumented keeps the sizing decision next to its basis.
func TestMemoryDocumented(t *testing.T) {
	m := loadModule(t, ".")
	src := string(m.sources["main.tf"])
	if !strings.Contains(src, "Memory:") {
		t.Error("main.tf must say what the functions' memory is based on")
	}
	_, e := example(t)
	for key, f := range functionsOf(t, e) {
		mem := e.str(t, f.service, f.ctx, "available_memory")
		n, _ := strconv.Atoi(strings.TrimRight(mem, "MGi"))
		if strings.HasSuffix(mem, "M") || strings.HasSuffix(mem, "Mi") {
			if n < 128 {
				t.Errorf("function %s: %s is below the Go runtime's needs", key, mem)
			}
		}
	}
}
