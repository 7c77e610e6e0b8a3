package calc

// Parameters lists the provenances of a calculator's own parameters, each
// with the name a client shows it by: a term's name (its input's, for a
// linear term, nomogram axis or flag), "base", "bands", "risk_curve",
// "criteria", "equation" (CKD-EPI and Cockcroft-Gault), and for the hazard
// model "baseline.<outcome>", each factor's id, "mortality_ratio", "zones"
// and "formula". A criterion's assumption is a rule for reading the record,
// not a parameter of the score, and is not listed.
func (cd *CalculatorDef) Parameters() []NamedProvenance {
	var out []NamedProvenance
	add := func(name string, p Provenance) { out = append(out, NamedProvenance{Name: name, Provenance: p}) }
	if m := cd.Points; m != nil {
		if m.Base != nil {
			add("base", m.Base.Provenance)
		}
		for _, t := range m.Linear {
			add(t.Name, t.Provenance)
		}
		for _, t := range m.Axes {
			add(t.Name, t.Provenance)
		}
		for _, t := range m.Flags {
			add(t.Name, t.Provenance)
		}
		for _, t := range m.AnyOf {
			add(t.Name, t.Provenance)
		}
		add("bands", m.BandsProvenance)
		if m.RiskCurve != nil {
			add("risk_curve", m.RiskCurve.Provenance)
		}
	}
	if m := cd.Criteria; m != nil {
		add("criteria", m.Provenance)
	}
	if m := cd.Hazard; m != nil {
		for _, o := range m.Outcomes {
			add("baseline."+o.Name, o.Provenance)
		}
		for _, f := range m.Factors {
			add(f.ID, f.Provenance)
		}
		if m.MortalityRatio != nil {
			add("mortality_ratio", m.MortalityRatio.Provenance)
		}
		if m.Zones != nil {
			add("zones", m.Zones.Provenance)
		}
		add("formula", m.FormulaProvenance)
	}
	if m := cd.CKDEPI; m != nil {
		add("equation", m.Provenance)
	}
	if m := cd.CockcroftGault; m != nil {
		add("equation", m.Provenance)
	}
	if cd.BandsProvenance != nil {
		add("bands", *cd.BandsProvenance)
	}
	return out
}

// NamedProvenance is one parameter's provenance under the name
// CalculatorDef.Parameters gives it.
type NamedProvenance struct {
	Name       string
	Provenance Provenance
}

// Unverified names the calculator's parameters that are not verified
// against a source that was read, in the order of Parameters: what the
// page, the print view and the CDS cards mark beside its result.
func (cd *CalculatorDef) Unverified() []string {
	out := []string{}
	for _, p := range cd.Parameters() {
		if !p.Provenance.IsVerified() {
			out = append(out, p.Name)
		}
	}
	return out
}
