package mapping

import (
	"strings"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
)

// ingredient names the ingredient a coding matched in medication set key
// stands for, or "" when the set does not tell.
//
// There is no terminology server: an RxNorm ingredient (IN) code or an ATC
// substance code is its own display; an RxNorm clinical or branded drug
// (SCD, SBD) listed in the set resolves to the set's ingredient whose name
// begins the product's name, as RxNorm names them ("ticagrelor 90 MG Oral
// Tablet [Brilinta]" → ticagrelor). A product the set does not list is not
// matched at all, unless its Medication resource lists the ingredient.
func (m *mapper) ingredient(key string, cd fhir.Coding) string {
	set, ok := m.cfg.Codes.Medications[key]
	if !ok {
		return ""
	}
	sys := m.key(cd.System)
	code := normCode(sys, cd.Code)
	for _, cm := range set.Include {
		if cm.System != sys {
			continue
		}
		for i, c := range cm.Codes {
			if c != code || i >= len(cm.Refs) {
				continue
			}
			ref := cm.Refs[i]
			switch {
			case cm.Match == "ingredient", sys == "atc" && cm.Match == "exact":
				return ref.Display
			case sys == "rxnorm" && cm.Match == "exact":
				name := ref.Display
				if name == "" {
					name = cd.Display
				}
				return ingredientOf(set, name)
			}
		}
	}
	return ""
}

// ingredientOf is the RxNorm ingredient of set whose name begins product.
func ingredientOf(set calc.CodeSet, product string) string {
	p := strings.ToLower(strings.TrimSpace(product))
	best := ""
	for _, cm := range set.Include {
		if cm.System != "rxnorm" || cm.Match != "ingredient" {
			continue
		}
		for _, r := range cm.Refs {
			n := strings.ToLower(strings.TrimSpace(r.Display))
			if n != "" && strings.HasPrefix(p, n+" ") && len(n) > len(best) {
				best = r.Display
			}
		}
	}
	return best
}

// regimenDrugs pairs sources with their ingredients (by reference and
// code), in the sources' order.
func regimenDrugs(srcs []calc.Source, ing map[string]string) []calc.RegimenDrug {
	out := make([]calc.RegimenDrug, 0, len(srcs))
	for _, s := range srcs {
		out = append(out, calc.RegimenDrug{Source: s, Ingredient: ing[s.Reference+"\x00"+s.Code]})
	}
	return out
}
