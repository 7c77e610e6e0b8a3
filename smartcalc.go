// Package smartcalc is the source root that the Cloud Functions Go build
// compiles. It holds no code of its own: it imports the one package that
// registers the launch, callback and calculate functions, and the
// functions-framework package, whose presence makes the build generate a main
// that serves the function named by FUNCTION_TARGET.
package smartcalc

import (
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	_ "github.com/smartcalc-app/smartcalc/functions/entrypoints"
)
