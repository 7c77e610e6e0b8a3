package calc

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPureImports holds the calculators to what they are: pure functions
// of their inputs and the scoring configuration. Reading a record is
// shared/mapping's work, and talking to anything is the functions'.
func TestPureImports(t *testing.T) {
	forbidden := []string{
		"net/http",
		"github.com/smartcalc-app/smartcalc/shared/fhir",
		"github.com/smartcalc-app/smartcalc/shared/mapping",
		"os",
	}
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files found: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}
