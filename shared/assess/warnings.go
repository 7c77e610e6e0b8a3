package assess

import (
	"slices"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// warningGroups orders an assessment's warnings: what could not be read
// first (it changes what every score means), then values not used as
// given, stale results, notes on the record, and the risk curve's limits.
var warningGroups = []string{mapping.WarnAccess, calc.WarnRange, calc.WarnPlausible, calc.WarnValue, calc.WarnConflict,
	mapping.WarnStale, mapping.WarnRecord, calc.WarnExtrapolate}

// gatherWarnings makes the assessment's one list of warnings: one per
// failed kind of read, naming every part of the record it left unread;
// then the mapping's and the calculators' warnings, once per problem and
// input however many calculators found it (each warning names them), in
// the order of warningGroups. The results' own lists are emptied.
func gatherWarnings(errs []DataError, mapped []calc.Warning, results []*calc.Result) []calc.Warning {
	out := readWarnings(errs)
	at := map[string]int{}
	add := func(w calc.Warning, calculator string) {
		k := w.WarningKey()
		if i, ok := at[k]; ok {
			if calculator != "" && !slices.Contains(out[i].Calculators, calculator) {
				out[i].Calculators = append(out[i].Calculators, calculator)
			}
			return
		}
		if calculator != "" {
			w.Calculators = []string{calculator}
		}
		at[k] = len(out)
		out = append(out, w)
	}
	for _, w := range mapped {
		add(w, "")
	}
	for _, r := range results {
		for _, w := range r.Warnings {
			add(w, r.Calculator)
		}
		r.Warnings = []calc.Warning{}
	}
	rank := func(kind string) int {
		if i := slices.Index(warningGroups, kind); i >= 0 {
			return i
		}
		return len(warningGroups)
	}
	slices.SortStableFunc(out, func(a, b calc.Warning) int { return rank(a.Kind) - rank(b.Kind) })
	return out
}

// readWarnings is one warning per way reads failed (not granted, refused,
// break-the-glass, no answer, too large, unusable), each naming the parts
// of the record it concerns: a refusal is said once, not once per
// resource type, calculator and input.
func readWarnings(errs []DataError) []calc.Warning {
	var keys []string
	byKey := map[string]message.List{}
	for _, de := range errs {
		var k string
		switch {
		case de.NotChecked():
			k = "access.not-checked"
		case de.Kind == KindScope:
			k = "access.scope"
		case de.BreakTheGlass:
			k = "access.break-the-glass"
		case de.Kind == KindForbidden:
			k = "access.forbidden"
		case de.TooLarge:
			k = "access.too-large"
		case de.Kind == KindBadResponse:
			k = "access.unusable"
		case de.Kind == KindUnauthorized:
			continue // the whole request fails: relaunch
		default:
			k = "access.unavailable"
		}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], mapping.ResourceMsg(de.Resource))
	}
	out := make([]calc.Warning, 0, len(keys))
	for _, k := range keys {
		out = append(out, calc.Warning{Kind: mapping.WarnAccess, Text: message.New(k, message.Args{"resources": byKey[k]})})
	}
	return out
}
