package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/assess"
)

// TestOneScopeList holds the README, the Terraform example and the local
// runner to the one recommended scope list, so that a deployer who copies
// either gets the scopes the mapping reads (MedicationStatement among them).
func TestOneScopeList(t *testing.T) {
	v2, v1 := assess.RecommendedScope(false), assess.RecommendedScope(true)
	if SandboxScope != v2 {
		t.Errorf("SandboxScope = %q, want %q", SandboxScope, v2)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{v2, v1} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).Match(readme) {
			t.Errorf("README does not give the scope %q", want)
		}
	}
	tfvars, err := os.ReadFile("../../terraform/terraform.tfvars.example")
	if err != nil {
		t.Fatal(err)
	}
	scopes := regexp.MustCompile(`(?m)^\s*scope\s*=\s*"([^"]*)"`).FindAllSubmatch(tfvars, -1)
	if len(scopes) == 0 {
		t.Fatal("terraform.tfvars.example has no scope")
	}
	for _, m := range scopes {
		if s := string(m[1]); s != v2 && s != v1 {
			t.Errorf("terraform.tfvars.example scope %q is neither the v2 nor the v1 recommended scope", s)
		}
	}
}
