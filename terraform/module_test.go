package terraform

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// This file reads the configuration the way Terraform's language layer does,
// without providers: variables (type constraints with optional defaults,
// validation rules), locals, for_each expansion and dynamic blocks. Resource
// attributes that only a provider knows are unknown, except for a few that
// the provider derives from the configuration (a service account's email from
// its account_id) and that the checks need; see module.state.

// exampleVars is the variable file the checks evaluate the configuration with.
const exampleVars = "terraform.tfvars.example"

type variable struct {
	name        string
	block       *hclsyntax.Block
	typ         cty.Type
	defaults    *typeexpr.Defaults
	hasType     bool
	def         cty.Value // cty.NilVal when the variable is required
	description string
	sensitive   bool
	validations []*hclsyntax.Block
}

type module struct {
	dir       string
	files     map[string]*hcl.File // by file name: every *.tf file
	sources   map[string][]byte
	variables map[string]*variable
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block // "type.name"
	data      map[string]*hclsyntax.Block // "type.name"
	outputs   map[string]*hclsyntax.Block
	terraform []*hclsyntax.Block
}

// loadModule parses every *.tf file in dir and indexes its blocks.
func loadModule(t *testing.T, dir string) *module {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no *.tf files in %s (%v)", dir, err)
	}
	m := &module{
		dir:       dir,
		files:     map[string]*hcl.File{},
		sources:   map[string][]byte{},
		variables: map[string]*variable{},
		locals:    map[string]*hclsyntax.Attribute{},
		resources: map[string]*hclsyntax.Block{},
		data:      map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
	}
	p := hclparse.NewParser()
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := p.ParseHCL(src, filepath.Base(name))
		if diags.HasErrors() {
			t.Fatalf("parse %s: %v", name, diags)
		}
		m.files[filepath.Base(name)] = f
		m.sources[filepath.Base(name)] = src
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if err := m.add(b); err != nil {
				t.Fatalf("%s: %v", b.DefRange(), err)
			}
		}
	}
	return m
}

func (m *module) add(b *hclsyntax.Block) error {
	key := strings.Join(b.Labels, ".")
	switch b.Type {
	case "variable":
		v := &variable{name: b.Labels[0], block: b, def: cty.NilVal}
		for name, a := range b.Body.Attributes {
			switch name {
			case "type":
				ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
				if diags.HasErrors() {
					return fmt.Errorf("variable %s: type: %v", v.name, diags)
				}
				v.typ, v.defaults, v.hasType = ty, defaults, true
			case "default":
				val, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					return fmt.Errorf("variable %s: default must be a literal: %v", v.name, diags)
				}
				v.def = val
			case "description":
				val, diags := a.Expr.Value(nil)
				if diags.HasErrors() || !val.Type().Equals(cty.String) {
					return fmt.Errorf("variable %s: description must be a string", v.name)
				}
				v.description = val.AsString()
			case "sensitive":
				val, diags := a.Expr.Value(nil)
				v.sensitive = !diags.HasErrors() && val.True()
			}
		}
		for _, vb := range b.Body.Blocks {
			if vb.Type == "validation" {
				v.validations = append(v.validations, vb)
			}
		}
		if _, dup := m.variables[v.name]; dup {
			return fmt.Errorf("variable %s declared twice", v.name)
		}
		m.variables[v.name] = v
	case "locals":
		for name, a := range b.Body.Attributes {
			if _, dup := m.locals[name]; dup {
				return fmt.Errorf("local %s declared twice", name)
			}
			m.locals[name] = a
		}
	case "resource":
		if _, dup := m.resources[key]; dup {
			return fmt.Errorf("resource %s declared twice", key)
		}
		m.resources[key] = b
	case "data":
		m.data[key] = b
	case "output":
		m.outputs[key] = b
	case "terraform":
		m.terraform = append(m.terraform, b)
	}
	return nil
}

// readVars parses a variable file (HCL attributes with literal values).
func readVars(t *testing.T, path string) map[string]cty.Value {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, filepath.Base(path))
	if diags.HasErrors() {
		t.Fatalf("parse %s: %v", path, diags)
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	vals := map[string]cty.Value{}
	for name, a := range attrs {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: %s must be a literal: %v", path, name, diags)
		}
		vals[name] = v
	}
	return vals
}

// inputs returns the variables' final values for the given raw values, as
// Terraform computes them: the given value or the default, optional
// attributes' defaults applied, converted to the type constraint; then every
// validation rule is checked. The error lists the failed rules' messages.
func (m *module) inputs(given map[string]cty.Value) (map[string]cty.Value, error) {
	vals := map[string]cty.Value{}
	for name := range given {
		if _, ok := m.variables[name]; !ok {
			return nil, fmt.Errorf("value for undeclared variable %q", name)
		}
	}
	var errs []error
	for name, v := range m.variables {
		raw, ok := given[name]
		if !ok {
			if v.def == cty.NilVal {
				errs = append(errs, fmt.Errorf("variable %q is required", name))
				continue
			}
			raw = v.def
		}
		if v.defaults != nil && !raw.IsNull() {
			raw = v.defaults.Apply(raw)
		}
		val, err := convert.Convert(raw, v.typ)
		if err != nil {
			errs = append(errs, fmt.Errorf("variable %q: %v", name, err))
			continue
		}
		vals[name] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vals)},
		Functions: functions(),
	}
	for _, name := range sortedKeys(m.variables) {
		for _, vb := range m.variables[name].validations {
			cond, diags := vb.Body.Attributes["condition"].Expr.Value(ctx)
			if diags.HasErrors() {
				errs = append(errs, fmt.Errorf("variable %q: validation %s does not evaluate: %v", name, vb.DefRange(), diags))
				continue
			}
			if cond.IsNull() || !cond.IsKnown() || !cond.Type().Equals(cty.Bool) {
				errs = append(errs, fmt.Errorf("variable %q: validation %s is not a known bool", name, vb.DefRange()))
				continue
			}
			if cond.False() {
				msg, _ := vb.Body.Attributes["error_message"].Expr.Value(ctx)
				errs = append(errs, fmt.Errorf("variable %q: %s", name, msg.AsString()))
			}
		}
	}
	return vals, errors.Join(errs...)
}

// eval is the configuration evaluated for one set of variable values.
type eval struct {
	m      *module
	vars   map[string]cty.Value
	locals map[string]cty.Value
	ctx    *hcl.EvalContext
}

// evaluate computes the locals for vals and returns the context in which
// resources, data sources and outputs are evaluated. Resources are unknown
// (cty.DynamicVal) except those that state simulates.
func (m *module) evaluate(t *testing.T, vals map[string]cty.Value) *eval {
	t.Helper()
	e := &eval{m: m, vars: vals, locals: map[string]cty.Value{}}
	e.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":       cty.ObjectVal(vals),
			"local":     cty.EmptyObjectVal,
			"path":      cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal("."), "root": cty.StringVal("."), "cwd": cty.StringVal(".")}),
			"terraform": cty.ObjectVal(map[string]cty.Value{"workspace": cty.StringVal("default")}),
			"data":      cty.DynamicVal,
		},
		Functions: functions(),
	}
	e.setState(nil)

	// Locals may refer to each other in any order: evaluate until every one
	// has a value, and fail if a round makes no progress.
	pending := map[string]*hclsyntax.Attribute{}
	for k, a := range m.locals {
		pending[k] = a
	}
	for len(pending) > 0 {
		progress := false
		var last hcl.Diagnostics
		for _, name := range sortedKeys(pending) {
			v, diags := pending[name].Expr.Value(e.ctx)
			if diags.HasErrors() {
				last = diags
				continue
			}
			e.locals[name] = v
			delete(pending, name)
			progress = true
		}
		e.ctx.Variables["local"] = cty.ObjectVal(e.locals)
		if !progress {
			t.Fatalf("locals %v do not evaluate: %v", sortedKeys(pending), last)
		}
	}

	// Simulate the provider-computed attributes the checks follow.
	sim := map[string]map[string]cty.Value{}
	for key, inst := range e.instances(t, "google_service_account.function") {
		sim["google_service_account.function"] = addInst(sim["google_service_account.function"], key, e.serviceAccount(t, inst))
	}
	build := e.instances(t, "google_service_account.build")
	sim["google_service_account.build"] = map[string]cty.Value{"": e.serviceAccount(t, build[""])}
	for key, inst := range e.instances(t, "google_secret_manager_secret.secret") {
		id := e.str(t, inst.body, inst.ctx, "secret_id")
		sim["google_secret_manager_secret.secret"] = addInst(sim["google_secret_manager_secret.secret"], key, cty.ObjectVal(map[string]cty.Value{
			"secret_id": cty.StringVal(id),
			"id":        cty.StringVal("projects/" + e.project() + "/secrets/" + id),
			"name":      cty.StringVal("projects/" + e.project() + "/secrets/" + id),
		}))
	}
	e.setState(sim)
	return e
}

func addInst(m map[string]cty.Value, key string, v cty.Value) map[string]cty.Value {
	if m == nil {
		m = map[string]cty.Value{}
	}
	m[key] = v
	return m
}

func (e *eval) project() string { return e.vars["project_id"].AsString() }

func (e *eval) serviceAccount(t *testing.T, inst instance) cty.Value {
	t.Helper()
	email := e.str(t, inst.body, inst.ctx, "account_id") + "@" + e.project() + ".iam.gserviceaccount.com"
	return cty.ObjectVal(map[string]cty.Value{
		"email":  cty.StringVal(email),
		"member": cty.StringVal("serviceAccount:" + email),
		"id":     cty.StringVal("projects/" + e.project() + "/serviceAccounts/" + email),
		"name":   cty.StringVal("projects/" + e.project() + "/serviceAccounts/" + email),
	})
}

// setState makes every resource type a root variable: an object of the
// module's resources of that type, unknown unless sim has their instances
// (keyed by for_each key; "" for a resource without for_each).
func (e *eval) setState(sim map[string]map[string]cty.Value) {
	byType := map[string]map[string]cty.Value{}
	for key, b := range e.m.resources {
		typ, name := b.Labels[0], b.Labels[1]
		if byType[typ] == nil {
			byType[typ] = map[string]cty.Value{}
		}
		v := cty.DynamicVal
		if insts, ok := sim[key]; ok {
			if one, single := insts[""]; single && len(insts) == 1 {
				v = one
			} else {
				v = cty.ObjectVal(insts)
			}
		}
		byType[typ][name] = v
	}
	for typ, names := range byType {
		e.ctx.Variables[typ] = cty.ObjectVal(names)
	}
}

// instance is one expanded instance of a resource, data source or dynamic
// block: its body and the context to evaluate it in (with each.key,
// each.value or the dynamic block's iterator).
type instance struct {
	key  string
	body *hclsyntax.Body
	ctx  *hcl.EvalContext
}

// instances expands a resource ("type.name") by its for_each, which must be
// known from the variables alone, as Terraform requires for planning.
func (e *eval) instances(t *testing.T, key string) map[string]instance {
	t.Helper()
	b, ok := e.m.resources[key]
	if !ok {
		t.Fatalf("no resource %s", key)
	}
	return e.expand(t, key, b.Body)
}

func (e *eval) expand(t *testing.T, what string, body *hclsyntax.Body) map[string]instance {
	t.Helper()
	fe, ok := body.Attributes["for_each"]
	if !ok {
		return map[string]instance{"": {key: "", body: body, ctx: e.ctx}}
	}
	coll, diags := fe.Expr.Value(e.ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: for_each: %v", what, diags)
	}
	if !coll.IsWhollyKnown() || coll.IsNull() {
		t.Fatalf("%s: for_each is not known before apply; Terraform cannot plan it", what)
	}
	out := map[string]instance{}
	for it := coll.ElementIterator(); it.Next(); {
		k, v := it.Element()
		if coll.Type().IsSetType() {
			k = v
		}
		if !k.Type().Equals(cty.String) {
			t.Fatalf("%s: for_each key %#v is not a string", what, k)
		}
		child := e.ctx.NewChild()
		child.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
		out[k.AsString()] = instance{key: k.AsString(), body: body, ctx: child}
	}
	return out
}

// block returns the single nested block of type typ in body.
func block(t *testing.T, body *hclsyntax.Body, typ string) *hclsyntax.Body {
	t.Helper()
	var found []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one %s block, found %d", body.SrcRange, typ, len(found))
	}
	return found[0].Body
}

// dynamic expands the dynamic blocks of type typ in body.
func (e *eval) dynamic(t *testing.T, body *hclsyntax.Body, ctx *hcl.EvalContext, typ string) []instance {
	t.Helper()
	var out []instance
	for _, b := range body.Blocks {
		if b.Type != "dynamic" || len(b.Labels) != 1 || b.Labels[0] != typ {
			continue
		}
		iter := typ
		if a, ok := b.Body.Attributes["iterator"]; ok {
			iter = hcl.ExprAsKeyword(a.Expr)
		}
		coll, diags := b.Body.Attributes["for_each"].Expr.Value(ctx)
		if diags.HasErrors() || !coll.IsWhollyKnown() {
			t.Fatalf("dynamic %s: for_each is not known: %v", typ, diags)
		}
		content := block(t, b.Body, "content")
		for it := coll.ElementIterator(); it.Next(); {
			k, v := it.Element()
			if coll.Type().IsSetType() {
				k = v
			}
			child := ctx.NewChild()
			child.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
			out = append(out, instance{key: k.AsString(), body: content, ctx: child})
		}
	}
	return out
}

// value evaluates attribute name of body; ok is false when it is absent.
func value(t *testing.T, body *hclsyntax.Body, ctx *hcl.EvalContext, name string) (v cty.Value, ok bool) {
	t.Helper()
	a, ok := body.Attributes[name]
	if !ok {
		return cty.NilVal, false
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", a.SrcRange, diags)
	}
	return v, true
}

// str evaluates attribute name of body as a known string.
func (e *eval) str(t *testing.T, body *hclsyntax.Body, ctx *hcl.EvalContext, name string) string {
	t.Helper()
	v, ok := value(t, body, ctx, name)
	if !ok {
		t.Fatalf("%s: no attribute %s", body.SrcRange, name)
	}
	v, err := convert.Convert(v, cty.String)
	if err != nil || !v.IsKnown() || v.IsNull() {
		t.Fatalf("%s: %s is not a known string (%v)", body.SrcRange, name, err)
	}
	return v.AsString()
}

// output evaluates an output's value.
func (e *eval) output(t *testing.T, name string) cty.Value {
	t.Helper()
	b, ok := e.m.outputs[name]
	if !ok {
		t.Fatalf("no output %q", name)
	}
	v, _ := value(t, b.Body, e.ctx, "value")
	return v
}

// references returns every traversal of the module's expressions whose root
// is root ("var", "local", "data", a resource type), with where it occurs.
func (m *module) references(root string) map[string][]hcl.Range {
	refs := map[string][]hcl.Range{}
	for _, f := range m.files {
		hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
			a, ok := n.(*hclsyntax.Attribute)
			if !ok {
				return nil
			}
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != root || len(tr) < 2 {
					continue
				}
				if attr, ok := tr[1].(hcl.TraverseAttr); ok {
					refs[attr.Name] = append(refs[attr.Name], tr.SourceRange())
				}
			}
			return nil
		})
	}
	return refs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// functions returns the Terraform functions the configuration uses, with
// Terraform's semantics: most are go-cty's stdlib, which Terraform itself
// calls; length, replace and alltrue follow Terraform's definitions. A
// configuration that calls a function missing here fails to evaluate, so a
// new function is added deliberately.
func functions() map[string]function.Function {
	return map[string]function.Function{
		"alltrue":    allTrue,
		"can":        tryfunc.CanFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"compact":    stdlib.CompactFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"distinct":   stdlib.DistinctFunc,
		"flatten":    stdlib.FlattenFunc,
		"floor":      stdlib.FloorFunc,
		"format":     stdlib.FormatFunc,
		"join":       stdlib.JoinFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"keys":       stdlib.KeysFunc,
		"length":     tfLength,
		"lookup":     stdlib.LookupFunc,
		"lower":      stdlib.LowerFunc,
		"merge":      stdlib.MergeFunc,
		"regex":      stdlib.RegexFunc,
		"regexall":   stdlib.RegexAllFunc,
		"replace":    tfReplace,
		"sort":       stdlib.SortFunc,
		"split":      stdlib.SplitFunc,
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"trimspace":  stdlib.TrimSpaceFunc,
		"try":        tryfunc.TryFunc,
		"upper":      stdlib.UpperFunc,
		"values":     stdlib.ValuesFunc,
	}
}

// allTrue is Terraform's alltrue: true when every element of a list of
// bools is true (and for an empty list).
var allTrue = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		result := cty.True
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if !v.IsKnown() {
				return cty.UnknownVal(cty.Bool), nil
			}
			if v.IsNull() {
				return cty.False, nil
			}
			result = result.And(v)
			if result.False() {
				return cty.False, nil
			}
		}
		return result, nil
	},
})

// tfLength is Terraform's length: characters of a string, elements of a
// collection or structure.
var tfLength = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		switch {
		case v.Type().Equals(cty.String):
			return stdlib.Strlen(v)
		case v.Type().IsTupleType(), v.Type().IsObjectType():
			if v.Type().IsTupleType() {
				return cty.NumberIntVal(int64(len(v.Type().TupleElementTypes()))), nil
			}
			return cty.NumberIntVal(int64(len(v.Type().AttributeTypes()))), nil
		case v.Type().IsCollectionType():
			if !v.IsKnown() {
				return cty.UnknownVal(cty.Number), nil
			}
			return v.Length(), nil
		}
		return cty.UnknownVal(cty.Number), fmt.Errorf("length: %s has no length", v.Type().FriendlyName())
	},
})

// tfReplace is Terraform's replace: a substring, or a regular expression when
// the search string is wrapped in slashes.
var tfReplace = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "str", Type: cty.String},
		{Name: "substr", Type: cty.String},
		{Name: "replace", Type: cty.String},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		s := args[1].AsString()
		if len(s) > 1 && s[0] == '/' && s[len(s)-1] == '/' {
			return stdlib.RegexReplace(args[0], cty.StringVal(s[1:len(s)-1]), args[2])
		}
		return stdlib.Replace(args[0], args[1], args[2])
	},
})

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	counts := map[rune]float64{}
	n := 0.0
	for _, r := range s {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := c / n
		h -= p * math.Log2(p)
	}
	return h
}
