package calc

import (
	_ "embed"
	"encoding/json"
	"errors"

	"github.com/smartcalc-app/smartcalc/shared/strictjson"
)

//go:embed scoring.json
var embeddedConfig []byte

// Config is the scoring configuration: one versioned document holding every
// coefficient, truncation, band, threshold, unit conversion and code set.
// Obtain one from LoadConfig or ParseConfig, which validate it; a Config is
// read-only after that.
type Config struct {
	Format          int                    `json:"format"`
	Version         string                 `json:"version"`
	Title           string                 `json:"title"`
	Description     string                 `json:"description"`
	Rounding        Rounding               `json:"rounding"`
	Sources         map[string]Publication `json:"sources"`
	Quantities      map[string]Quantity    `json:"quantities"`
	Inputs          map[string]InputDef    `json:"inputs"`
	InputProvenance Provenance             `json:"input_provenance"`
	Calculators     []CalculatorDef        `json:"calculators"`
	Recommendations Recommendations        `json:"recommendations"`
	Summary         SummaryDef             `json:"summary"`
	FHIR            FHIRRules              `json:"fhir"`
	Codes           Codes                  `json:"codes"`
	Changes         []ConfigChange         `json:"changes"`

	// PlanDef is the guideline antithrombotic plan (the document's "plan";
	// Config.Plan selects from it, hence the field's name).
	PlanDef PlanDef `json:"plan"`

	raw           []byte
	etag          func() string
	texts         []ConfigText                  // templates and parameters, kept by fillTexts
	textIdx       map[string]int                // texts by key
	inputParamIdx map[string]map[string]float64 // inputParams by input, from indexInputParams
}

// ConfigChange is one entry of the configuration's change log, newest
// first: the version it produced, its date, and what changed and why.
type ConfigChange struct {
	Version string   `json:"version"`
	Date    string   `json:"date"`
	Changes []string `json:"changes"`
}

// Publication is a source that parameters cite by key.
type Publication struct {
	Citation string `json:"citation"`
	DOI      string `json:"doi,omitempty"`
	URL      string `json:"url,omitempty"`
}

// Provenance says where a parameter comes from and whether it has been
// checked against that source. Source is a key of Config.Sources; Table
// names the table, figure or section. A verified parameter quotes the
// passage it was checked against (Quote) and says where that passage was
// read (Where: the document, its section or page, and the copy read), as
// a verified plan citation does; Note says what is known and what was not
// read.
type Provenance struct {
	Source   string `json:"source"`
	Table    string `json:"table"`
	Verified *bool  `json:"verified"`
	Quote    string `json:"quote,omitempty"`
	Where    string `json:"where,omitempty"`
	Note     string `json:"note,omitempty"`
}

// IsVerified reports whether the parameter was checked against its source.
func (p Provenance) IsVerified() bool { return p.Verified != nil && *p.Verified }

// Rounding is the rule for score totals: half up after snapping to a
// multiple of Snap, so that binary floating-point error never turns x.5 into
// x.4999….
type Rounding struct {
	Method     string     `json:"method"`
	Snap       *float64   `json:"snap"`
	Provenance Provenance `json:"provenance"`
}

// Quantity is a kind of measurement with a canonical UCUM unit and the
// alternate units converted to it.
type Quantity struct {
	Label   string   `json:"label"`
	Unit    string   `json:"unit"`
	Aliases []string `json:"aliases,omitempty"`
	// Decimals is how many decimals a value in the canonical unit is
	// shown with: the precision the quantity is measured to (creatinine
	// 2, hemoglobin and weight 1), never the float a conversion gives.
	Decimals *int `json:"decimals"`
	Units    []UnitConversion
}

// UnitConversion converts a value in Code (or one of its aliases) to the
// quantity's canonical unit: multiply by Multiply, or divide by Divide.
type UnitConversion struct {
	Code    string   `json:"code"`
	Aliases []string `json:"aliases,omitempty"`
	// Decimals is how many decimals a value in this unit is shown with;
	// nil means the quantity's.
	Decimals   *int       `json:"decimals,omitempty"`
	Multiply   *float64   `json:"multiply,omitempty"`
	Divide     *float64   `json:"divide,omitempty"`
	Provenance Provenance `json:"provenance"`
}

// quantityJSON mirrors Quantity for decoding ("units" is required).
type quantityJSON struct {
	Label    string            `json:"label"`
	Unit     string            `json:"unit"`
	Aliases  []string          `json:"aliases,omitempty"`
	Decimals *int              `json:"decimals"`
	Units    *[]UnitConversion `json:"units"`
}

// UnmarshalStrictJSON decodes a Quantity, requiring "units" (possibly
// empty).
func (q *Quantity) UnmarshalStrictJSON(d *strictjson.Decoder) error {
	var j quantityJSON
	if err := d.Decode(&j); err != nil {
		return err
	}
	if j.Units == nil {
		return errors.New(`missing field "units"`)
	}
	*q = Quantity{Label: j.Label, Unit: j.Unit, Aliases: j.Aliases, Decimals: j.Decimals, Units: *j.Units}
	return nil
}

// UnmarshalJSON decodes a Quantity, requiring "units" (possibly empty).
func (q *Quantity) UnmarshalJSON(b []byte) error { return strictjson.Unmarshal(b, q) }

// MarshalJSON encodes a Quantity.
func (q Quantity) MarshalJSON() ([]byte, error) {
	u := q.Units
	if u == nil {
		u = []UnitConversion{}
	}
	return json.Marshal(quantityJSON{Label: q.Label, Unit: q.Unit, Aliases: q.Aliases, Decimals: q.Decimals, Units: &u})
}

// Input types.
const (
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeEnum    = "enum"
	TypeSex     = "sex"
)

// Sexes the calculators distinguish. Any other value leaves sex-dependent
// parts undetermined.
const (
	Female = "female"
	Male   = "male"
)

// InputDef declares one input: its type, its quantity (numbers), its values
// (enums and sex), its validated domain and its plausible range.
type InputDef struct {
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Quantity    string   `json:"quantity,omitempty"`
	Values      []string `json:"values,omitempty"`
	Domain      *Range   `json:"domain,omitempty"`
	Plausible   *Range   `json:"plausible,omitempty"`
	Description string   `json:"description"`
}

// Range is a closed interval [Min, Max] in the canonical unit.
type Range struct {
	Min *float64 `json:"min"`
	Max *float64 `json:"max"`
}

// CalculatorDef is one calculator's declaration and parameters. Kind picks
// the implementation; the section of that kind holds its numbers.
// BandsRiskOutcome (here and in PointsModel) names what the bands'
// risk_percent ranges measure ("1-year BARC 3/5 bleeding"); it is required
// when they have ranges.
type CalculatorDef struct {
	ID               string            `json:"id"`
	Kind             string            `json:"kind"`
	Title            string            `json:"title"`
	Equation         Equation          `json:"equation"`
	Description      string            `json:"description"`
	References       []string          `json:"references"`
	Inputs           []CalculatorInput `json:"inputs"`
	Points           *PointsModel      `json:"points,omitempty"`
	Criteria         *CriteriaModel    `json:"criteria,omitempty"`
	Hazard           *HazardModel      `json:"hazard,omitempty"`
	CKDEPI           *CKDEPIModel      `json:"ckd_epi,omitempty"`
	CockcroftGault   *CGModel          `json:"cockcroft_gault,omitempty"`
	Bands            []Band            `json:"bands,omitempty"`
	BandsRiskOutcome string            `json:"bands_risk_outcome,omitempty"`
	BandsProvenance  *Provenance       `json:"bands_provenance,omitempty"`
}

// Calculator kinds.
const (
	KindPoints         = "points"
	KindCriteria       = "criteria"
	KindHazard         = "hazard"
	KindCKDEPI2021     = "ckd-epi-2021"
	KindCockcroftGault = "cockcroft-gault"
)

// Equation names the equation and its version.
type Equation struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// CalculatorInput lists an input a calculator reads. Role is "required" or
// "alternative"; Alternative names the inputs that can stand in for a
// required one (creatinine and sex for eGFR, for example).
type CalculatorInput struct {
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Alternative []string `json:"alternative,omitempty"`
}

// PointsModel is an additive points score (PRECISE-HBR, PRECISE-DAPT):
// base + linear terms + nomogram axes + flags + any-of items, rounded half
// up, then banded; optionally a calibrated risk curve of the rounded score.
type PointsModel struct {
	Base             *FlagTerm    `json:"base,omitempty"`
	Linear           []LinearTerm `json:"linear"`
	Axes             []AxisTerm   `json:"axes"`
	Flags            []FlagTerm   `json:"flags"`
	AnyOf            []AnyOfTerm  `json:"any_of"`
	Bands            []Band       `json:"bands"`
	BandsRiskOutcome string       `json:"bands_risk_outcome,omitempty"`
	BandsProvenance  Provenance   `json:"bands_provenance"`
	RiskCurve        *RiskCurve   `json:"risk_curve,omitempty"`
}

// LinearTerm scores PointsPerUnit × (clamp(x, Truncate) − Pivot). The
// truncation is the score's own and is reported as a warning when applied.
type LinearTerm struct {
	Name          string     `json:"name"`
	Input         string     `json:"input"`
	Truncate      Range      `json:"truncate"`
	Pivot         *float64   `json:"pivot"`
	PointsPerUnit *float64   `json:"points_per_unit"`
	Provenance    Provenance `json:"provenance"`
}

// AxisTerm is a nomogram axis: 0 points at ZeroAt, MaxPoints at MaxAt,
// linear between and flat beyond either end.
type AxisTerm struct {
	Name       string     `json:"name"`
	Input      string     `json:"input"`
	ZeroAt     *float64   `json:"zero_at"`
	MaxAt      *float64   `json:"max_at"`
	MaxPoints  *float64   `json:"max_points"`
	Provenance Provenance `json:"provenance"`
}

// FlagTerm adds Points when a boolean input is true (or always, for a base).
type FlagTerm struct {
	Name       string     `json:"name,omitempty"`
	Input      string     `json:"input,omitempty"`
	Points     *float64   `json:"points"`
	Provenance Provenance `json:"provenance"`
}

// AnyOfTerm adds Points when its summary input is true or, when that is not
// given, when any of the named criteria of another calculator is met.
type AnyOfTerm struct {
	Name         string     `json:"name"`
	Input        string     `json:"input"`
	Points       *float64   `json:"points"`
	CriteriaFrom string     `json:"criteria_from"`
	Criteria     []string   `json:"criteria"`
	Provenance   Provenance `json:"provenance"`
}

// Band maps a value at or above From (no From: everything below the next
// band) to a category. Bands are listed in ascending order. RiskPercent is
// the risk range the publication gives the band, in numbers; Note is other
// text shown beside it.
type Band struct {
	Category    string        `json:"category"`
	Label       string        `json:"label"`
	From        *float64      `json:"from,omitempty"`
	RiskPercent *PercentRange `json:"risk_percent,omitempty"`
	Note        string        `json:"note,omitempty"`
	// Risk is the band's risk in English: RiskPercent written out with the
	// calculator's bands_risk_outcome ("4% to <6% 1-year BARC 3/5
	// bleeding"), or else the Note. ParseConfig writes it; the document has
	// no such field, so that every range is stated once, as numbers.
	Risk string `json:"-"`
}

// PercentRange is a published risk range in percent: Min inclusive, Max
// exclusive. The lowest band may leave Min out ("<4%") and the highest Max
// ("≥6%").
type PercentRange struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// RiskCurve is the calibrated complementary log-log curve
// risk% = 100 × (1 − exp(−exp(Intercept + Slope × score))).
type RiskCurve struct {
	Name       string     `json:"name"`
	Label      string     `json:"label"`
	Form       string     `json:"form"`
	Intercept  *float64   `json:"intercept"`
	Slope      *float64   `json:"slope"`
	Calibrated Range      `json:"calibrated"`
	Decimals   *int       `json:"decimals"`
	Provenance Provenance `json:"provenance"`
}

// CriteriaModel is a major/minor criteria evaluator (ARC-HBR).
type CriteriaModel struct {
	MinMajor   *int        `json:"min_major"`
	MinMinor   *int        `json:"min_minor"`
	Provenance Provenance  `json:"provenance"`
	Items      []Criterion `json:"items"`
}

// Criterion is one criterion at one level. Criteria sharing a Domain are one
// criterion at two levels: at most one of them can be met.
type Criterion struct {
	ID     string `json:"id"`
	Domain string `json:"domain"`
	Name   string `json:"name"`
	Level  string `json:"level"`
	Rule   Rule   `json:"rule"`
	// Assume, when set, decides a criterion that no record can show (a
	// plan, not a fact) while its input is not given: the verdict is
	// given from what the record shows, with the assumption stated. An
	// answer from the clinician replaces it.
	Assume *Assumption `json:"assume,omitempty"`
}

// Assumption is what a criterion is taken to be until the clinician
// answers, and the sentence that says so beside the verdict.
type Assumption struct {
	Met        bool       `json:"met"`
	Statement  string     `json:"statement"`
	Provenance Provenance `json:"provenance"`
}

// Criterion levels.
const (
	Major = "major"
	Minor = "minor"
)

// Rule is a test on one input: "flag" (true), "equals" (an enum value),
// "at_least" (x ≥ threshold), "below" (x < threshold) or "range"
// (min ≤ x < max, where max may depend on sex).
type Rule struct {
	Type      string             `json:"type"`
	Input     string             `json:"input"`
	Value     string             `json:"value,omitempty"`
	Threshold *float64           `json:"threshold,omitempty"`
	Min       *float64           `json:"min,omitempty"`
	Max       *float64           `json:"max,omitempty"`
	MaxBySex  map[string]float64 `json:"max_by_sex,omitempty"`
}

// HazardModel is a proportional-hazards model with a baseline risk per
// outcome: p = 1 − (1 − p0)^HR, HR the product of the factors present.
type HazardModel struct {
	Caveat string `json:"caveat"`
	// PercentNote labels the model's percentages wherever they appear
	// (Value.Note): they come from a different model than PRECISE-HBR,
	// the summary's bleeding figure, and its parameters are unverified.
	PercentNote       string          `json:"percent_note"`
	Decimals          *int            `json:"decimals"`
	Outcomes          []HazardOutcome `json:"outcomes"`
	MortalityRatio    *ValueParam     `json:"mortality_ratio,omitempty"`
	Zones             *ChartZones     `json:"zones,omitempty"`
	Factors           []HazardFactor  `json:"factors"`
	FormulaProvenance Provenance      `json:"formula_provenance"`
}

// HazardOutcome is one modelled outcome and its baseline 1-year risk in %.
type HazardOutcome struct {
	Name            string     `json:"name"`
	Label           string     `json:"label"`
	BaselinePercent *float64   `json:"baseline_percent"`
	Provenance      Provenance `json:"provenance"`
}

// HazardFactor is a predictor with its hazard ratio per outcome.
type HazardFactor struct {
	ID           string             `json:"id"`
	Label        string             `json:"label"`
	Rule         Rule               `json:"rule"`
	HazardRatios map[string]float64 `json:"hazard_ratios"`
	Provenance   Provenance         `json:"provenance"`
}

// ValueParam is a single number with its provenance.
// ChartZones are the trade-off chart's zones, as ratios of thrombotic to
// bleeding risk: above EquivalentMaxRatio the thrombotic risk is higher,
// below EquivalentMinRatio the bleeding risk is; between them the two are
// taken as equivalent. The UI draws them from here.
type ChartZones struct {
	EquivalentMinRatio *float64   `json:"equivalent_min_ratio"`
	EquivalentMaxRatio *float64   `json:"equivalent_max_ratio"`
	Provenance         Provenance `json:"provenance"`
}

type ValueParam struct {
	Value      *float64   `json:"value"`
	Provenance Provenance `json:"provenance"`
}

// CKDEPIModel holds the CKD-EPI 2021 creatinine equation's constants:
// eGFR = Multiplier × min(Scr/κ,1)^α × max(Scr/κ,1)^ExponentAbove ×
// AgeBase^age × SexFactor.
type CKDEPIModel struct {
	Multiplier    *float64           `json:"multiplier"`
	Kappa         map[string]float64 `json:"kappa"`
	Alpha         map[string]float64 `json:"alpha"`
	ExponentAbove *float64           `json:"exponent_above"`
	AgeBase       *float64           `json:"age_base"`
	SexFactor     map[string]float64 `json:"sex_factor"`
	Decimals      *int               `json:"decimals"`
	Provenance    Provenance         `json:"provenance"`
}

// CGModel holds the Cockcroft-Gault constants:
// CrCl = (AgeFrom − age) × weight / (Divisor × Scr) × SexFactor.
type CGModel struct {
	AgeFrom    *float64           `json:"age_from"`
	Divisor    *float64           `json:"divisor"`
	SexFactor  map[string]float64 `json:"sex_factor"`
	Decimals   *int               `json:"decimals"`
	Provenance Provenance         `json:"provenance"`
}

// SummaryDef is how an assessment's calculators combine into one
// bleeding-risk verdict (see Summarize): which results say "high bleeding
// risk", and the sentence that explains each verdict.
type SummaryDef struct {
	// HBRCategories are, per calculator, the categories that mean high
	// bleeding risk: PRECISE-HBR's HBR bands, ARC-HBR's definition met.
	HBRCategories map[string][]string `json:"hbr_categories"`
	// Risk names the calculator and value whose risk the summary shows:
	// one bleeding figure, PRECISE-HBR's calibrated one.
	Risk struct {
		Calculator string `json:"calculator"`
		Value      string `json:"value"`
		Label      string `json:"label"`
	} `json:"risk"`
	// NotWeighed are the ARC-HBR inputs that PRECISE-HBR neither scores
	// nor summarises: a criterion on one of them can make ARC-HBR say HBR
	// while PRECISE-HBR does not.
	NotWeighed []string `json:"precise_hbr_not_weighed"`
	// Texts explain each verdict, keyed by the Reason constants.
	Texts      map[string]string `json:"texts"`
	Provenance Provenance        `json:"provenance"`
}

// Recommendations is the guidance text shown beside a result.
type Recommendations struct {
	Disclaimer string           `json:"disclaimer"`
	Items      []Recommendation `json:"items"`
}

// Recommendation is shown when a calculator's category is one of AppliesTo.
type Recommendation struct {
	ID         string      `json:"id"`
	Title      string      `json:"title"`
	Text       string      `json:"text"`
	AppliesTo  []AppliesTo `json:"applies_to"`
	Provenance Provenance  `json:"provenance"`
}

// AppliesTo names a calculator and the result categories a recommendation
// applies to.
type AppliesTo struct {
	Calculator string   `json:"calculator"`
	Categories []string `json:"categories"`
}

// FHIRRules are the record-reading rules the FHIR mapping applies.
type FHIRRules struct {
	ObservationStatus            []string   `json:"observation_status"`
	LookbackDays                 *int       `json:"lookback_days"`
	ConditionExcludeVerification []string   `json:"condition_exclude_verification"`
	ConditionActiveStatus        []string   `json:"condition_active_status"`
	MedicationRequestStatus      []string   `json:"medication_request_status"`
	MedicationRequestIntent      []string   `json:"medication_request_intent"`
	MedicationStatementStatus    []string   `json:"medication_statement_status"`
	Provenance                   Provenance `json:"provenance"`
	// Windows are the time and dose rules of the criteria that the code
	// sets do not carry (ARC-HBR prior bleeding, long-term drug use, the
	// vascular-protection rivaroxaban dose, recent events).
	Windows MappingWindows `json:"windows"`
}

// MappingWindows are the mapping's time and dose rules.
type MappingWindows struct {
	BleedingMajorMonths    *int       `json:"bleeding_major_months"`
	BleedingMinorMonths    *int       `json:"bleeding_minor_months"`
	LongTermMinDaysPerWeek *int       `json:"long_term_min_days_per_week"`
	LongTermMinDays        *int       `json:"long_term_min_days"`
	RivaroxabanVascularMg  *float64   `json:"rivaroxaban_vascular_mg"`
	RecentDays             *int       `json:"recent_days"`
	Provenance             Provenance `json:"provenance"`
}
