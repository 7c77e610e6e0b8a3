// Package terraform holds the offline checks of SMART Calc's Terraform
// configuration, the *.tf files in this folder. It has no code of its own.
//
// Terraform cannot validate or plan without downloading its providers, which
// CI cannot do, so the tests read the configuration with hcl/v2 the way
// Terraform does: they convert terraform.tfvars.example and the defaults to
// the variables' types, run the variables' validation rules, evaluate the
// locals with Terraform's functions, and expand the for_each resources. They
// then check the result against the Go code it deploys: the function names
// registered in functions/entrypoints, the environment variables
// shared/config reads, and the Firestore collections shared/store writes.
package terraform
