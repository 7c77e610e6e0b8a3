package calc

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
	FHIR            FHIRRules              `json:"fhir"`
	Codes           Codes                  `json:"codes"`
	Changes         []ConfigChange         `json:"changes"`

	raw   []byte
	etag  string
	texts []ConfigText // templates and parameters, kept by fillTexts
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
// names the table, figure or section.
type Provenance struct {
	Source   string `json:"source"`
	Table    string `json:"table"`
	Verified *bool  `json:"verified"`
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
	Units   []UnitConversion
}

// UnitConversion converts a value in Code (or one of its aliases) to the
// quantity's canonical unit: multiply by Multiply, or divide by Divide.
type UnitConversion struct {
	Code       string     `json:"code"`
	Aliases    []string   `json:"aliases,omitempty"`
	Multiply   *float64   `json:"multiply,omitempty"`
	Divide     *float64   `json:"divide,omitempty"`
	Provenance Provenance `json:"provenance"`
}

// quantityJSON mirrors Quantity for decoding ("units" is required).
type quantityJSON struct {
	Label   string            `json:"label"`
	Unit    string            `json:"unit"`
	Aliases []string          `json:"aliases,omitempty"`
	Units   *[]UnitConversion `json:"units"`
}

// UnmarshalJSON decodes a Quantity, requiring "units" (possibly empty).
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var j quantityJSON
	if err := strictDecode(b, &j); err != nil {
		return err
	}
	if j.Units == nil {
		return errors.New(`missing field "units"`)
	}
	*q = Quantity{Label: j.Label, Unit: j.Unit, Aliases: j.Aliases, Units: *j.Units}
	return nil
}

// MarshalJSON encodes a Quantity.
func (q Quantity) MarshalJSON() ([]byte, error) {
	u := q.Units
	if u == nil {
		u = []UnitConversion{}
	}
	return json.Marshal(quantityJSON{Label: q.Label, Unit: q.Unit, Aliases: q.Aliases, Units: &u})
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
	Caveat            string          `json:"caveat"`
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

// strictDecode decodes b into v, rejecting unknown fields and trailing data.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON document")
	}
	return nil
}

// LoadConfig parses and validates the configuration embedded in the binary.
// Call it once at start-up and stop on error.
func LoadConfig() (*Config, error) { return ParseConfig(embeddedConfig) }

// ParseConfig parses and validates a scoring configuration. Every missing or
// invalid field is reported as a *ConfigError naming it (joined with
// errors.Join); the configuration is never completed with defaults.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := strictDecode(b, &c); err != nil {
		return nil, &ConfigError{Path: "(document)", Reason: err.Error()}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.fillTexts()
	c.raw = append([]byte(nil), b...)
	sum := sha256.Sum256(c.raw)
	c.etag = `"` + c.Version + "-" + hex.EncodeToString(sum[:8]) + `"`
	return &c, nil
}

// Raw returns the configuration document exactly as parsed, for serving.
// Callers must not modify it.
func (c *Config) Raw() []byte { return c.raw }

// ETag is a strong entity tag for Raw: the version plus a content hash.
func (c *Config) ETag() string { return c.etag }

// Calculator returns the declaration of calculator id.
func (c *Config) Calculator(id string) (*CalculatorDef, bool) {
	for i := range c.Calculators {
		if c.Calculators[i].ID == id {
			return &c.Calculators[i], true
		}
	}
	return nil, false
}

// Convert converts value in unit to the canonical unit of quantity q. An
// empty unit means the canonical unit. It fails with ErrUnknownUnit for a
// unit the configuration does not list.
func (c *Config) Convert(q string, value float64, unit string) (float64, error) {
	qd, ok := c.Quantities[q]
	if !ok {
		return 0, fmt.Errorf("calc: unknown quantity %q", q)
	}
	unit = strings.TrimSpace(unit)
	if unit == "" || unit == qd.Unit || contains(qd.Aliases, unit) {
		return value, nil
	}
	for _, u := range qd.Units {
		if unit == u.Code || contains(u.Aliases, unit) {
			if u.Multiply != nil {
				return value * *u.Multiply, nil
			}
			return value / *u.Divide, nil
		}
	}
	return 0, fmt.Errorf("%w %q for %s (accepted: %s)", ErrUnknownUnit, unit, q, strings.Join(c.AcceptedUnits(q), ", "))
}

// AcceptedUnits lists the UCUM codes accepted for quantity q, canonical
// first.
func (c *Config) AcceptedUnits(q string) []string {
	qd, ok := c.Quantities[q]
	if !ok {
		return nil
	}
	out := []string{qd.Unit}
	for _, u := range qd.Units {
		out = append(out, u.Code)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validator collects configuration errors with their paths.
type validator struct {
	c    *Config
	errs []error
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, &ConfigError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (v *validator) text(path, s string) {
	if strings.TrimSpace(s) == "" {
		v.fail(path, "missing or empty")
	}
}

func (v *validator) num(path string, p *float64) bool {
	switch {
	case p == nil:
		v.fail(path, "missing")
		return false
	case math.IsNaN(*p) || math.IsInf(*p, 0):
		v.fail(path, "must be a finite number")
		return false
	}
	return true
}

func (v *validator) positive(path string, p *float64) {
	if v.num(path, p) && *p <= 0 {
		v.fail(path, "must be greater than 0, got %v", *p)
	}
}

func (v *validator) decimals(path string, p *int) {
	if p == nil {
		v.fail(path, "missing")
	} else if *p < 0 || *p > 6 {
		v.fail(path, "must be between 0 and 6, got %d", *p)
	}
}

func (v *validator) provenance(path string, p Provenance) {
	if p.Source == "" {
		v.fail(path+".source", "missing")
	} else if _, ok := v.c.Sources[p.Source]; !ok {
		v.fail(path+".source", "unknown source %q (not in sources)", p.Source)
	}
	v.text(path+".table", p.Table)
	if p.Verified == nil {
		v.fail(path+".verified", "missing (true or false)")
	}
}

func (v *validator) sexMap(path string, m map[string]float64, positive bool) {
	for _, s := range []string{Female, Male} {
		x, ok := m[s]
		if !ok {
			v.fail(path+"."+s, "missing")
			continue
		}
		if math.IsNaN(x) || math.IsInf(x, 0) || (positive && x <= 0) {
			v.fail(path+"."+s, "invalid value %v", x)
		}
	}
	for k := range m {
		if k != Female && k != Male {
			v.fail(path+"."+k, "unknown sex (want female or male)")
		}
	}
}

var versionRE = regexp.MustCompile(`^[0-9]{4}\.[0-9]+\.[0-9]+$`)

// requiredCalculators are the ids the API contract (architecture §5) names.
var requiredCalculators = []string{"precise-hbr", "arc-hbr", "precise-dapt", "arc-hbr-tradeoff", "egfr-ckd-epi-2021", "crcl-cockcroft-gault"}

func (c *Config) validate() error {
	v := &validator{c: c}
	if c.Format != 1 {
		v.fail("format", "unsupported format %d (want 1)", c.Format)
	}
	if !versionRE.MatchString(c.Version) {
		v.fail("version", "must look like YYYY.MINOR.PATCH, got %q", c.Version)
	}
	v.text("title", c.Title)
	if len(c.Sources) == 0 {
		v.fail("sources", "missing or empty")
	}
	for _, k := range sortedKeys(c.Sources) {
		v.text("sources."+k+".citation", c.Sources[k].Citation)
	}
	if c.Rounding.Method != "half-up" {
		v.fail("rounding.method", "must be \"half-up\" (never banker's rounding), got %q", c.Rounding.Method)
	}
	if v.num("rounding.snap", c.Rounding.Snap) {
		s := *c.Rounding.Snap
		if per := 1 / s; s < 1e-12 || s > 1e-3 || math.Abs(per-math.Round(per)) > 1e-3 {
			v.fail("rounding.snap", "must be 1/N for an integer N, between 1e-12 and 0.001, got %v", s)
		}
	}
	v.provenance("rounding.provenance", c.Rounding.Provenance)
	c.validateQuantities(v)
	c.validateInputs(v)
	v.provenance("input_provenance", c.InputProvenance)
	c.validateCalculators(v)
	c.validateRecommendations(v)
	c.validateFHIR(v)
	c.validateCodes(v)
	c.validateChanges(v)
	c.validateTexts(v)
	return errors.Join(v.errs...)
}

// validateChanges requires a change log whose newest entry is this version
// and whose versions are all distinct.
func (c *Config) validateChanges(v *validator) {
	if len(c.Changes) == 0 {
		v.fail("changes", "missing or empty")
		return
	}
	if c.Changes[0].Version != c.Version {
		v.fail("changes[0].version", "the newest entry is %q, want the configuration's version %q", c.Changes[0].Version, c.Version)
	}
	seen := map[string]bool{}
	for i, ch := range c.Changes {
		p := fmt.Sprintf("changes[%d]", i)
		v.text(p+".version", ch.Version)
		if seen[ch.Version] {
			v.fail(p+".version", "version %q listed twice", ch.Version)
		}
		seen[ch.Version] = true
		if !dateRE.MatchString(ch.Date) {
			v.fail(p+".date", "want YYYY-MM-DD, got %q", ch.Date)
		}
		if len(ch.Changes) == 0 {
			v.fail(p+".changes", "missing or empty")
		}
		for j, t := range ch.Changes {
			v.text(fmt.Sprintf("%s.changes[%d]", p, j), t)
		}
	}
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

func (c *Config) validateQuantities(v *validator) {
	if len(c.Quantities) == 0 {
		v.fail("quantities", "missing or empty")
	}
	for _, name := range sortedKeys(c.Quantities) {
		q := c.Quantities[name]
		p := "quantities." + name
		v.text(p+".label", q.Label)
		v.text(p+".unit", q.Unit)
		seen := map[string]bool{q.Unit: true}
		for _, a := range q.Aliases {
			if seen[a] {
				v.fail(p+".aliases", "unit %q listed twice", a)
			}
			seen[a] = true
		}
		for i, u := range q.Units {
			up := fmt.Sprintf("%s.units[%d]", p, i)
			v.text(up+".code", u.Code)
			for _, code := range append([]string{u.Code}, u.Aliases...) {
				if seen[code] {
					v.fail(up, "unit %q listed twice", code)
				}
				seen[code] = true
			}
			switch {
			case u.Multiply != nil && u.Divide != nil:
				v.fail(up, "give multiply or divide, not both")
			case u.Multiply != nil:
				v.positive(up+".multiply", u.Multiply)
			case u.Divide != nil:
				v.positive(up+".divide", u.Divide)
			default:
				v.fail(up, "missing multiply or divide")
			}
			v.provenance(up+".provenance", u.Provenance)
		}
	}
}

func (c *Config) validateInputs(v *validator) {
	if len(c.Inputs) == 0 {
		v.fail("inputs", "missing or empty")
	}
	for _, name := range sortedKeys(c.Inputs) {
		in := c.Inputs[name]
		p := "inputs." + name
		v.text(p+".label", in.Label)
		v.text(p+".description", in.Description)
		switch in.Type {
		case TypeNumber:
			if _, ok := c.Quantities[in.Quantity]; !ok {
				v.fail(p+".quantity", "unknown quantity %q", in.Quantity)
			}
			if in.Domain == nil {
				v.fail(p+".domain", "missing")
			} else {
				v.rangeOK(p+".domain", *in.Domain)
			}
			if in.Plausible == nil {
				v.fail(p+".plausible", "missing")
			} else if v.rangeOK(p+".plausible", *in.Plausible) && in.Domain != nil && in.Domain.Min != nil && in.Domain.Max != nil &&
				(*in.Plausible.Min < *in.Domain.Min || *in.Plausible.Max > *in.Domain.Max) {
				v.fail(p+".plausible", "must lie inside the domain")
			}
		case TypeBoolean:
		case TypeEnum:
			if len(in.Values) == 0 {
				v.fail(p+".values", "missing or empty")
			}
		case TypeSex:
			if len(in.Values) != 2 || !contains(in.Values, Female) || !contains(in.Values, Male) {
				v.fail(p+".values", "must be [\"female\", \"male\"]")
			}
		default:
			v.fail(p+".type", "unknown type %q (want number, boolean, enum or sex)", in.Type)
		}
	}
	// The engine derives eGFR and creatinine clearance from these by name.
	for _, name := range []string{"age", "creatinine", "egfr", "crcl", "weight"} {
		if in, ok := c.Inputs[name]; !ok || in.Type != TypeNumber {
			v.fail("inputs."+name, "missing or not of type number")
		}
	}
	if in, ok := c.Inputs["sex"]; !ok || in.Type != TypeSex {
		v.fail("inputs.sex", "missing or not of type sex")
	}
}

func (v *validator) rangeOK(path string, r Range) bool {
	a, b := v.num(path+".min", r.Min), v.num(path+".max", r.Max)
	if a && b && *r.Min > *r.Max {
		v.fail(path, "min %v is above max %v", *r.Min, *r.Max)
		return false
	}
	return a && b
}

func (c *Config) validateCalculators(v *validator) {
	ids := map[string]bool{}
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		p := fmt.Sprintf("calculators[%d]", i)
		if cd.ID == "" {
			v.fail(p+".id", "missing")
		} else {
			p = "calculators[" + cd.ID + "]"
			if ids[cd.ID] {
				v.fail(p+".id", "duplicate id")
			}
			ids[cd.ID] = true
		}
		v.text(p+".title", cd.Title)
		v.text(p+".equation.name", cd.Equation.Name)
		v.text(p+".equation.version", cd.Equation.Version)
		v.text(p+".description", cd.Description)
		if len(cd.References) == 0 {
			v.fail(p+".references", "missing or empty")
		}
		for j, r := range cd.References {
			if _, ok := c.Sources[r]; !ok {
				v.fail(fmt.Sprintf("%s.references[%d]", p, j), "unknown source %q", r)
			}
		}
		declared := map[string]bool{}
		if len(cd.Inputs) == 0 {
			v.fail(p+".inputs", "missing or empty")
		}
		for j, in := range cd.Inputs {
			ip := fmt.Sprintf("%s.inputs[%d]", p, j)
			if _, ok := c.Inputs[in.Name]; !ok {
				v.fail(ip+".name", "unknown input %q", in.Name)
			}
			if declared[in.Name] {
				v.fail(ip+".name", "input %q listed twice", in.Name)
			}
			declared[in.Name] = true
			if in.Role != "required" && in.Role != "alternative" {
				v.fail(ip+".role", "must be required or alternative, got %q", in.Role)
			}
		}
		for j, in := range cd.Inputs {
			for _, a := range in.Alternative {
				if !declared[a] {
					v.fail(fmt.Sprintf("%s.inputs[%d].alternative", p, j), "input %q is not declared by the calculator", a)
				}
			}
		}
		uses := func(path, name string) {
			if !declared[name] {
				v.fail(path, "input %q is not declared in %s.inputs", name, p)
			}
		}
		sections := 0
		for _, present := range []bool{cd.Points != nil, cd.Criteria != nil, cd.Hazard != nil, cd.CKDEPI != nil, cd.CockcroftGault != nil} {
			if present {
				sections++
			}
		}
		if sections > 1 {
			v.fail(p, "more than one model section")
		}
		switch cd.Kind {
		case KindPoints:
			if cd.Points == nil {
				v.fail(p+".points", "missing for kind points")
			} else {
				c.validatePoints(v, p+".points", cd.Points, uses)
			}
		case KindCriteria:
			if cd.Criteria == nil {
				v.fail(p+".criteria", "missing for kind criteria")
			} else {
				c.validateCriteria(v, p+".criteria", cd.Criteria, uses)
			}
		case KindHazard:
			if cd.Hazard == nil {
				v.fail(p+".hazard", "missing for kind hazard")
			} else {
				c.validateHazard(v, p+".hazard", cd.Hazard, uses)
			}
		case KindCKDEPI2021:
			if cd.CKDEPI == nil {
				v.fail(p+".ckd_epi", "missing for kind ckd-epi-2021")
			} else {
				m := cd.CKDEPI
				v.positive(p+".ckd_epi.multiplier", m.Multiplier)
				v.sexMap(p+".ckd_epi.kappa", m.Kappa, true)
				v.sexMap(p+".ckd_epi.alpha", m.Alpha, false)
				v.num(p+".ckd_epi.exponent_above", m.ExponentAbove)
				v.positive(p+".ckd_epi.age_base", m.AgeBase)
				v.sexMap(p+".ckd_epi.sex_factor", m.SexFactor, true)
				v.decimals(p+".ckd_epi.decimals", m.Decimals)
				v.provenance(p+".ckd_epi.provenance", m.Provenance)
			}
			for _, in := range []string{"age", "sex", "creatinine"} {
				uses(p+".inputs", in)
			}
			v.bands(p, cd.Bands, cd.BandsRiskOutcome)
			if cd.BandsProvenance == nil {
				v.fail(p+".bands_provenance", "missing")
			} else {
				v.provenance(p+".bands_provenance", *cd.BandsProvenance)
			}
		case KindCockcroftGault:
			if cd.CockcroftGault == nil {
				v.fail(p+".cockcroft_gault", "missing for kind cockcroft-gault")
			} else {
				m := cd.CockcroftGault
				v.positive(p+".cockcroft_gault.age_from", m.AgeFrom)
				v.positive(p+".cockcroft_gault.divisor", m.Divisor)
				v.sexMap(p+".cockcroft_gault.sex_factor", m.SexFactor, true)
				v.decimals(p+".cockcroft_gault.decimals", m.Decimals)
				v.provenance(p+".cockcroft_gault.provenance", m.Provenance)
				if age, ok := c.Inputs["age"]; ok && age.Domain != nil && age.Domain.Max != nil && m.AgeFrom != nil && *m.AgeFrom <= *age.Domain.Max {
					v.fail(p+".cockcroft_gault.age_from", "must exceed the age domain maximum %v, or clearance could be negative", *age.Domain.Max)
				}
			}
			for _, in := range []string{"age", "sex", "weight", "creatinine"} {
				uses(p+".inputs", in)
			}
		default:
			v.fail(p+".kind", "unknown kind %q", cd.Kind)
		}
	}
	for _, id := range requiredCalculators {
		if !ids[id] {
			v.fail("calculators", "missing calculator %q", id)
		}
	}
	// Cross-references need every calculator parsed first.
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		if cd.Points == nil {
			continue
		}
		for j, t := range cd.Points.AnyOf {
			p := fmt.Sprintf("calculators[%s].points.any_of[%d]", cd.ID, j)
			src, ok := c.Calculator(t.CriteriaFrom)
			if !ok || src.Criteria == nil {
				v.fail(p+".criteria_from", "no criteria calculator %q", t.CriteriaFrom)
				continue
			}
			declared := map[string]bool{}
			for _, in := range cd.Inputs {
				declared[in.Name] = true
			}
			for _, id := range t.Criteria {
				cr, ok := src.criterion(id)
				if !ok {
					v.fail(p+".criteria", "unknown criterion %q in %s", id, t.CriteriaFrom)
				} else if !declared[cr.Rule.Input] {
					v.fail(p+".criteria", "criterion %q reads input %q, which %s does not declare", id, cr.Rule.Input, cd.ID)
				}
			}
		}
	}
	for _, pair := range []struct{ calc, needs string }{{"egfr", "egfr-ckd-epi-2021"}, {"crcl", "crcl-cockcroft-gault"}} {
		if _, ok := c.Calculator(pair.needs); !ok {
			v.fail("calculators", "%s derivation needs calculator %q", pair.calc, pair.needs)
		}
	}
}

func (cd *CalculatorDef) criterion(id string) (*Criterion, bool) {
	if cd.Criteria == nil {
		return nil, false
	}
	for i := range cd.Criteria.Items {
		if cd.Criteria.Items[i].ID == id {
			return &cd.Criteria.Items[i], true
		}
	}
	return nil, false
}

func (c *Config) validatePoints(v *validator, p string, m *PointsModel, uses func(string, string)) {
	names := map[string]bool{}
	name := func(path, n string) {
		v.text(path+".name", n)
		if names[n] {
			v.fail(path+".name", "component %q listed twice", n)
		}
		names[n] = true
	}
	numeric := func(path, in string) {
		uses(path+".input", in)
		if d, ok := c.Inputs[in]; ok && d.Type != TypeNumber {
			v.fail(path+".input", "input %q is not a number", in)
		}
	}
	boolean := func(path, in string) {
		uses(path+".input", in)
		if d, ok := c.Inputs[in]; ok && d.Type != TypeBoolean {
			v.fail(path+".input", "input %q is not a boolean", in)
		}
	}
	if m.Base != nil {
		v.num(p+".base.points", m.Base.Points)
		v.provenance(p+".base.provenance", m.Base.Provenance)
	}
	for i, t := range m.Linear {
		tp := fmt.Sprintf("%s.linear[%d]", p, i)
		name(tp, t.Name)
		numeric(tp, t.Input)
		v.rangeOK(tp+".truncate", t.Truncate)
		v.num(tp+".pivot", t.Pivot)
		v.num(tp+".points_per_unit", t.PointsPerUnit)
		if t.Truncate.Min != nil && t.Truncate.Max != nil && t.Pivot != nil && t.PointsPerUnit != nil {
			// Points must be ≥ 0 over the truncated range: the score's
			// lower bound with missing inputs relies on it.
			lo := *t.PointsPerUnit * (*t.Truncate.Min - *t.Pivot)
			hi := *t.PointsPerUnit * (*t.Truncate.Max - *t.Pivot)
			if lo < -1e-12 || hi < -1e-12 {
				v.fail(tp, "points must not be negative over the truncated range")
			}
		}
		v.provenance(tp+".provenance", t.Provenance)
	}
	for i, t := range m.Axes {
		tp := fmt.Sprintf("%s.axes[%d]", p, i)
		name(tp, t.Name)
		numeric(tp, t.Input)
		a, b := v.num(tp+".zero_at", t.ZeroAt), v.num(tp+".max_at", t.MaxAt)
		if a && b && *t.ZeroAt == *t.MaxAt {
			v.fail(tp, "zero_at and max_at must differ")
		}
		v.positive(tp+".max_points", t.MaxPoints)
		v.provenance(tp+".provenance", t.Provenance)
	}
	for i, t := range m.Flags {
		tp := fmt.Sprintf("%s.flags[%d]", p, i)
		name(tp, t.Name)
		boolean(tp, t.Input)
		v.positive(tp+".points", t.Points)
		v.provenance(tp+".provenance", t.Provenance)
	}
	for i, t := range m.AnyOf {
		tp := fmt.Sprintf("%s.any_of[%d]", p, i)
		name(tp, t.Name)
		boolean(tp, t.Input)
		v.positive(tp+".points", t.Points)
		if len(t.Criteria) == 0 {
			v.fail(tp+".criteria", "missing or empty")
		}
		v.provenance(tp+".provenance", t.Provenance)
	}
	if len(names) == 0 {
		v.fail(p, "no terms")
	}
	bandsOK := v.bands(p, m.Bands, m.BandsRiskOutcome)
	v.provenance(p+".bands_provenance", m.BandsProvenance)
	if rc := m.RiskCurve; rc != nil {
		rp := p + ".risk_curve"
		v.text(rp+".name", rc.Name)
		v.text(rp+".label", rc.Label)
		if rc.Form != "cloglog" {
			v.fail(rp+".form", "must be \"cloglog\", got %q", rc.Form)
		}
		a, b := v.num(rp+".intercept", rc.Intercept), v.num(rp+".slope", rc.Slope)
		cal := v.rangeOK(rp+".calibrated", rc.Calibrated)
		v.decimals(rp+".decimals", rc.Decimals)
		v.provenance(rp+".provenance", rc.Provenance)
		if bandsOK && a && b && cal && rc.Decimals != nil {
			v.curveMatchesBands(p, m.Bands, rc)
		}
	}
}

// curveMatchesBands checks the published risk ranges of score bands against
// the calibrated risk curve: where a band with a lower risk bound starts,
// the curve (rounded as shown) must reach that bound, and one point lower
// it must not. Scores outside the calibrated range are not checked.
func (v *validator) curveMatchesBands(p string, bands []Band, rc *RiskCurve) {
	scale := math.Pow(10, float64(*rc.Decimals))
	risk := func(score float64) float64 {
		r := 100 * (1 - math.Exp(-math.Exp(*rc.Intercept+*rc.Slope*score)))
		return math.Floor(r*scale+0.5) / scale
	}
	for i, b := range bands {
		if b.From == nil || b.RiskPercent == nil || b.RiskPercent.Min == nil {
			continue
		}
		from, lo := *b.From, *b.RiskPercent.Min
		if from-1 < *rc.Calibrated.Min || from > *rc.Calibrated.Max {
			continue
		}
		if at, below := risk(from), risk(from-1); at < lo || below >= lo {
			v.fail(fmt.Sprintf("%s.bands[%d].risk_percent.min", p, i),
				"%v%% does not match the risk curve, which gives %v%% at score %v (where the band starts) and %v%% at %v", lo, at, from, below, from-1)
		}
	}
}

// bands checks the bands of the calculator section at p and their risk
// ranges, and reports whether they are valid.
func (v *validator) bands(p string, bands []Band, outcome string) bool {
	n := len(v.errs)
	v.bandList(p+".bands", bands)
	v.bandRisks(p, bands, outcome)
	return len(v.errs) == n
}

// bandRisks checks the bands' risk_percent ranges: every band has one or
// none does; they ascend with the bands, each starting where the previous
// one ends; only the lowest may leave its lower end open and only the
// highest its upper end.
func (v *validator) bandRisks(p string, bands []Band, outcome string) {
	with := 0
	for _, b := range bands {
		if b.RiskPercent != nil {
			with++
		}
	}
	switch {
	case with == 0:
		if outcome != "" {
			v.fail(p+".bands_risk_outcome", "given, but no band has a risk_percent")
		}
		return
	case with < len(bands):
		v.fail(p+".bands", "%d of %d bands have a risk_percent: give it for every band or for none", with, len(bands))
		return
	}
	v.text(p+".bands_risk_outcome", outcome)
	for i, b := range bands {
		rp := fmt.Sprintf("%s.bands[%d].risk_percent", p, i)
		r := b.RiskPercent
		ok := true
		for _, e := range []struct {
			name string
			x    *float64
		}{{"min", r.Min}, {"max", r.Max}} {
			if e.x != nil && (math.IsNaN(*e.x) || math.IsInf(*e.x, 0) || *e.x < 0 || *e.x > 100) {
				v.fail(rp+"."+e.name, "must be a percentage from 0 to 100, got %v", *e.x)
				ok = false
			}
		}
		switch {
		case r.Min == nil && r.Max == nil:
			v.fail(rp, "empty: give min, max or both")
			continue
		case i > 0 && r.Min == nil:
			v.fail(rp+".min", "missing: only the lowest band may leave its lower end open")
		case i < len(bands)-1 && r.Max == nil:
			v.fail(rp+".max", "missing: only the highest band may leave its upper end open")
		}
		if !ok {
			continue
		}
		if r.Min != nil && r.Max != nil && *r.Min >= *r.Max {
			v.fail(rp, "min %v must be below max %v", *r.Min, *r.Max)
		}
		if i > 0 {
			if prev := bands[i-1].RiskPercent; prev.Max != nil && r.Min != nil && *r.Min != *prev.Max {
				v.fail(rp+".min", "%v must equal the previous band's max %v: the ranges ascend with the bands, without gap or overlap", *r.Min, *prev.Max)
			}
		}
	}
}

func (v *validator) bandList(p string, bands []Band) {
	if len(bands) == 0 {
		v.fail(p, "missing or empty")
		return
	}
	seen := map[string]bool{}
	for i, b := range bands {
		bp := fmt.Sprintf("%s[%d]", p, i)
		v.text(bp+".category", b.Category)
		v.text(bp+".label", b.Label)
		if seen[b.Category] {
			v.fail(bp+".category", "category %q listed twice", b.Category)
		}
		seen[b.Category] = true
		if i == 0 {
			if b.From != nil {
				v.fail(bp+".from", "the first band has no lower bound")
			}
			continue
		}
		if v.num(bp+".from", b.From) && i > 1 && bands[i-1].From != nil && *b.From <= *bands[i-1].From {
			v.fail(bp+".from", "bands must ascend")
		}
	}
}

func (c *Config) validateRule(v *validator, p string, r Rule, uses func(string, string)) {
	uses(p+".input", r.Input)
	in, ok := c.Inputs[r.Input]
	if !ok {
		return
	}
	switch r.Type {
	case "flag":
		if in.Type != TypeBoolean {
			v.fail(p+".input", "flag needs a boolean input, %q is %s", r.Input, in.Type)
		}
	case "equals":
		if in.Type != TypeEnum || !contains(in.Values, r.Value) {
			v.fail(p+".value", "%q is not a value of enum input %q", r.Value, r.Input)
		}
	case "at_least", "below":
		if in.Type != TypeNumber {
			v.fail(p+".input", "%s needs a number input, %q is %s", r.Type, r.Input, in.Type)
		}
		v.num(p+".threshold", r.Threshold)
	case "range":
		if in.Type != TypeNumber {
			v.fail(p+".input", "range needs a number input, %q is %s", r.Input, in.Type)
		}
		v.num(p+".min", r.Min)
		switch {
		case r.Max != nil && r.MaxBySex != nil:
			v.fail(p, "give max or max_by_sex, not both")
		case r.Max != nil:
			if v.num(p+".max", r.Max) && r.Min != nil && *r.Max <= *r.Min {
				v.fail(p+".max", "must exceed min")
			}
		case r.MaxBySex != nil:
			v.sexMap(p+".max_by_sex", r.MaxBySex, false)
			for s, m := range r.MaxBySex {
				if r.Min != nil && m <= *r.Min {
					v.fail(p+".max_by_sex."+s, "must exceed min")
				}
			}
			uses(p+".input", "sex")
		default:
			v.fail(p+".max", "missing (max or max_by_sex)")
		}
	default:
		v.fail(p+".type", "unknown rule type %q", r.Type)
	}
}

func (c *Config) validateCriteria(v *validator, p string, m *CriteriaModel, uses func(string, string)) {
	if m.MinMajor == nil || *m.MinMajor < 1 {
		v.fail(p+".min_major", "missing or below 1")
	}
	if m.MinMinor == nil || *m.MinMinor < 1 {
		v.fail(p+".min_minor", "missing or below 1")
	}
	v.provenance(p+".provenance", m.Provenance)
	if len(m.Items) == 0 {
		v.fail(p+".items", "missing or empty")
	}
	ids := map[string]bool{}
	levels := map[string]map[string]*Criterion{}
	for i := range m.Items {
		cr := &m.Items[i]
		ip := fmt.Sprintf("%s.items[%d]", p, i)
		if cr.ID == "" {
			v.fail(ip+".id", "missing")
		} else if ids[cr.ID] {
			v.fail(ip+".id", "duplicate id %q", cr.ID)
		}
		ids[cr.ID] = true
		v.text(ip+".domain", cr.Domain)
		v.text(ip+".name", cr.Name)
		if cr.Level != Major && cr.Level != Minor {
			v.fail(ip+".level", "must be major or minor, got %q", cr.Level)
		}
		if levels[cr.Domain] == nil {
			levels[cr.Domain] = map[string]*Criterion{}
		}
		if levels[cr.Domain][cr.Level] != nil {
			v.fail(ip+".level", "domain %q already has a %s criterion", cr.Domain, cr.Level)
		}
		levels[cr.Domain][cr.Level] = cr
		c.validateRule(v, ip+".rule", cr.Rule, uses)
	}
	// A domain with both levels must have mutually exclusive rules, so that
	// a criterion is major or minor, never both.
	for _, d := range sortedKeys(levels) {
		maj, mnr := levels[d][Major], levels[d][Minor]
		if maj == nil || mnr == nil {
			continue
		}
		if maj.Rule.Input != mnr.Rule.Input {
			v.fail(p+".items", "domain %q: major and minor read different inputs", d)
			continue
		}
		switch {
		case maj.Rule.Type == "equals" && mnr.Rule.Type == "equals":
			if maj.Rule.Value == mnr.Rule.Value {
				v.fail(p+".items", "domain %q: major and minor match the same value", d)
			}
		case maj.Rule.Type == "below" && mnr.Rule.Type == "range":
			if maj.Rule.Threshold != nil && mnr.Rule.Min != nil && *maj.Rule.Threshold > *mnr.Rule.Min {
				v.fail(p+".items", "domain %q: major and minor ranges overlap", d)
			}
		default:
			v.fail(p+".items", "domain %q: cannot prove the major and minor rules exclusive", d)
		}
	}
}

func (c *Config) validateHazard(v *validator, p string, m *HazardModel, uses func(string, string)) {
	v.text(p+".caveat", m.Caveat)
	v.decimals(p+".decimals", m.Decimals)
	outcomes := map[string]bool{}
	if len(m.Outcomes) == 0 {
		v.fail(p+".outcomes", "missing or empty")
	}
	for i, o := range m.Outcomes {
		op := fmt.Sprintf("%s.outcomes[%d]", p, i)
		v.text(op+".name", o.Name)
		v.text(op+".label", o.Label)
		if outcomes[o.Name] {
			v.fail(op+".name", "duplicate outcome %q", o.Name)
		}
		outcomes[o.Name] = true
		if v.num(op+".baseline_percent", o.BaselinePercent) && (*o.BaselinePercent <= 0 || *o.BaselinePercent >= 100) {
			v.fail(op+".baseline_percent", "must be in (0, 100), got %v", *o.BaselinePercent)
		}
		v.provenance(op+".provenance", o.Provenance)
	}
	if m.MortalityRatio != nil {
		v.positive(p+".mortality_ratio.value", m.MortalityRatio.Value)
		v.provenance(p+".mortality_ratio.provenance", m.MortalityRatio.Provenance)
	}
	if z := m.Zones; z != nil {
		v.positive(p+".zones.equivalent_min_ratio", z.EquivalentMinRatio)
		v.positive(p+".zones.equivalent_max_ratio", z.EquivalentMaxRatio)
		if z.EquivalentMinRatio != nil && z.EquivalentMaxRatio != nil && *z.EquivalentMinRatio >= *z.EquivalentMaxRatio {
			v.fail(p+".zones", "equivalent_min_ratio must be below equivalent_max_ratio")
		}
		v.provenance(p+".zones.provenance", z.Provenance)
	}
	ids := map[string]bool{}
	for i, f := range m.Factors {
		fp := fmt.Sprintf("%s.factors[%d]", p, i)
		if f.ID == "" || ids[f.ID] {
			v.fail(fp+".id", "missing or duplicate")
		}
		ids[f.ID] = true
		v.text(fp+".label", f.Label)
		c.validateRule(v, fp+".rule", f.Rule, uses)
		if len(f.HazardRatios) == 0 {
			v.fail(fp+".hazard_ratios", "missing or empty")
		}
		for _, o := range sortedKeys(f.HazardRatios) {
			hr := f.HazardRatios[o]
			if !outcomes[o] {
				v.fail(fp+".hazard_ratios."+o, "unknown outcome")
			}
			if math.IsNaN(hr) || math.IsInf(hr, 0) || hr <= 0 || hr > 100 {
				v.fail(fp+".hazard_ratios."+o, "must be in (0, 100], got %v", hr)
			}
		}
		v.provenance(fp+".provenance", f.Provenance)
	}
	v.provenance(p+".formula_provenance", m.FormulaProvenance)
}

func (c *Config) validateRecommendations(v *validator) {
	v.text("recommendations.disclaimer", c.Recommendations.Disclaimer)
	for i, r := range c.Recommendations.Items {
		p := fmt.Sprintf("recommendations.items[%d]", i)
		v.text(p+".id", r.ID)
		v.text(p+".title", r.Title)
		v.text(p+".text", r.Text)
		if len(r.AppliesTo) == 0 {
			v.fail(p+".applies_to", "missing or empty")
		}
		for j, a := range r.AppliesTo {
			ap := fmt.Sprintf("%s.applies_to[%d]", p, j)
			cd, ok := c.Calculator(a.Calculator)
			if !ok {
				v.fail(ap+".calculator", "unknown calculator %q", a.Calculator)
				continue
			}
			cats := cd.categories()
			for _, cat := range a.Categories {
				if !contains(cats, cat) {
					v.fail(ap+".categories", "%q is not a category of %s", cat, a.Calculator)
				}
			}
		}
		v.provenance(p+".provenance", r.Provenance)
	}
}

// categories lists the result categories a calculator can produce.
func (cd *CalculatorDef) categories() []string {
	var out []string
	bands := cd.Bands
	if cd.Points != nil {
		bands = cd.Points.Bands
	}
	for _, b := range bands {
		out = append(out, b.Category)
	}
	if cd.Criteria != nil {
		out = append(out, categoryHBR, categoryNotHBR)
	}
	return out
}

func (c *Config) validateFHIR(v *validator) {
	f := c.FHIR
	for name, list := range map[string][]string{
		"fhir.observation_status":             f.ObservationStatus,
		"fhir.condition_exclude_verification": f.ConditionExcludeVerification,
		"fhir.condition_active_status":        f.ConditionActiveStatus,
		"fhir.medication_request_status":      f.MedicationRequestStatus,
		"fhir.medication_request_intent":      f.MedicationRequestIntent,
		"fhir.medication_statement_status":    f.MedicationStatementStatus,
	} {
		if len(list) == 0 {
			v.fail(name, "missing or empty")
		}
	}
	w := f.Windows
	for _, x := range []struct {
		name string
		v    *int
	}{
		{"bleeding_major_months", w.BleedingMajorMonths}, {"bleeding_minor_months", w.BleedingMinorMonths},
		{"long_term_min_days_per_week", w.LongTermMinDaysPerWeek}, {"long_term_min_days", w.LongTermMinDays},
		{"recent_days", w.RecentDays},
	} {
		if x.v == nil || *x.v <= 0 {
			v.fail("fhir.windows."+x.name, "missing or not positive")
		}
	}
	if w.BleedingMajorMonths != nil && w.BleedingMinorMonths != nil && *w.BleedingMinorMonths <= *w.BleedingMajorMonths {
		v.fail("fhir.windows.bleeding_minor_months", "must be above bleeding_major_months")
	}
	if w.LongTermMinDaysPerWeek != nil && *w.LongTermMinDaysPerWeek > 7 {
		v.fail("fhir.windows.long_term_min_days_per_week", "at most 7")
	}
	v.positive("fhir.windows.rivaroxaban_vascular_mg", w.RivaroxabanVascularMg)
	v.provenance("fhir.windows.provenance", w.Provenance)
	if f.LookbackDays == nil || *f.LookbackDays <= 0 {
		v.fail("fhir.lookback_days", "missing or not positive")
	}
	v.provenance("fhir.provenance", f.Provenance)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ConfigText is one of the configuration's human-readable texts: a label or
// sentence that the engine reports and the UI shows and translates. Numbers
// that the configuration holds as parameters are not written into a text
// but named as {placeholders}, filled from the parameters, so that a text
// cannot state an old number after the parameter changes.
type ConfigText struct {
	// Key names the text in the UI's translations (config_text in
	// static/i18n.json): "criterion.age", "band.precise-hbr.hbr",
	// "rec.short-dapt-precise-dapt.text", …
	Key string
	// Template is the English as the document writes it, placeholders
	// unfilled. The parsed Config holds it filled.
	Template string
	// Params are the numbers the text may name, by placeholder: a rule's
	// threshold, min, max, max_minus_one and max_<sex>; the window_months,
	// window_days and major_at_least of the code sets feeding the rule's
	// input; the mapping's windows (fhir.windows: bleeding_major_months,
	// bleeding_minor_months, long_term_min_days_per_week,
	// long_term_min_days, rivaroxaban_vascular_mg, recent_days) in every
	// input's and rule's texts; a band's from, next_from and
	// next_from_minus_one; the lowest band a recommendation applies to
	// (from); a criteria calculator's min_major and min_minor.
	Params map[string]float64
}

// Texts lists the configuration's texts with their keys and parameters, in
// document order. static/scoring.js derives the same parameters for the
// UI, which fills them into both languages.
func (c *Config) Texts() []ConfigText {
	out := make([]ConfigText, len(c.texts))
	for i, t := range c.texts {
		p := make(map[string]float64, len(t.Params))
		for k, x := range t.Params {
			p[k] = x
		}
		out[i] = ConfigText{Key: t.Key, Template: t.Template, Params: p}
	}
	return out
}

// textRef is a ConfigText with its document path and a way to write it back.
type textRef struct {
	ConfigText
	path string
	set  func(string)
}

var placeholderRE = regexp.MustCompile(`\{(\w+)\}`)

// textRefs lists the texts in document order.
func (c *Config) textRefs() []textRef {
	var out []textRef
	add := func(key, path, s string, params map[string]float64, set func(string)) {
		if s == "" {
			return
		}
		if params == nil {
			params = map[string]float64{}
		}
		out = append(out, textRef{ConfigText{Key: key, Template: s, Params: params}, path, set})
	}
	field := func(key, path string, s *string, params map[string]float64) {
		add(key, path, *s, params, func(x string) { *s = x })
	}
	for _, name := range sortedKeys(c.Quantities) {
		add("quantity."+name, "quantities."+name+".label", c.Quantities[name].Label, nil, func(x string) {
			q := c.Quantities[name]
			q.Label = x
			c.Quantities[name] = q
		})
	}
	for _, name := range sortedKeys(c.Inputs) {
		add("input."+name, "inputs."+name+".label", c.Inputs[name].Label, nil, func(x string) {
			d := c.Inputs[name]
			d.Label = x
			c.Inputs[name] = d
		})
		add("input."+name+".description", "inputs."+name+".description", c.Inputs[name].Description, c.inputParams(name), func(x string) {
			d := c.Inputs[name]
			d.Description = x
			c.Inputs[name] = d
		})
	}
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		p := fmt.Sprintf("calculators[%s]", cd.ID)
		var calcParams map[string]float64
		if m := cd.Criteria; m != nil {
			calcParams = map[string]float64{}
			if m.MinMajor != nil {
				calcParams["min_major"] = float64(*m.MinMajor)
			}
			if m.MinMinor != nil {
				calcParams["min_minor"] = float64(*m.MinMinor)
			}
		}
		field("calc."+cd.ID+".title", p+".title", &cd.Title, nil)
		field("calc."+cd.ID+".description", p+".description", &cd.Description, calcParams)
		if h := cd.Hazard; h != nil {
			field("calc."+cd.ID+".caveat", p+".hazard.caveat", &h.Caveat, nil)
		}
		bp, bands, outcome := p, cd.Bands, &cd.BandsRiskOutcome
		if cd.Points != nil {
			bp, bands, outcome = p+".points", cd.Points.Bands, &cd.Points.BandsRiskOutcome
		}
		for j := range bands {
			b := &bands[j]
			params := bandParams(bands, j)
			key := "band." + cd.ID + "." + b.Category
			field(key, fmt.Sprintf("%s.bands[%d].label", bp, j), &b.Label, params)
			field(key+".note", fmt.Sprintf("%s.bands[%d].note", bp, j), &b.Note, params)
		}
		field("bands."+cd.ID+".risk_outcome", bp+".bands_risk_outcome", outcome, nil)
		if m := cd.Criteria; m != nil {
			for j := range m.Items {
				cr := &m.Items[j]
				field("criterion."+cr.ID, fmt.Sprintf("%s.criteria.items[%d].name", p, j), &cr.Name, c.ruleParams(cr.Rule))
			}
		}
		if h := cd.Hazard; h != nil {
			for j := range h.Factors {
				f := &h.Factors[j]
				field("factor."+f.ID, fmt.Sprintf("%s.hazard.factors[%d].label", p, j), &f.Label, c.ruleParams(f.Rule))
			}
		}
	}
	for i := range c.Recommendations.Items {
		r := &c.Recommendations.Items[i]
		p := fmt.Sprintf("recommendations.items[%d]", i)
		params := c.recParams(*r)
		field("rec."+r.ID+".title", p+".title", &r.Title, params)
		field("rec."+r.ID+".text", p+".text", &r.Text, params)
	}
	field("rec.disclaimer", "recommendations.disclaimer", &c.Recommendations.Disclaimer, nil)
	return out
}

// inputParams are the numbers that decide an input: the window_months and
// window_days of its condition, medication and procedure sets, the
// major_at_least of its coded observations, and the mapping's windows
// (windowParams). A number the sets disagree on is left out: a text cannot
// name it.
func (c *Config) inputParams(input string) map[string]float64 {
	p := c.windowParams()
	ambiguous := map[string]bool{}
	put := func(k string, x float64) {
		if old, ok := p[k]; ok && old != x {
			ambiguous[k] = true
		}
		p[k] = x
	}
	for _, sets := range []map[string]CodeSet{c.Codes.Conditions, c.Codes.Medications, c.Codes.Procedures} {
		for _, k := range sortedKeys(sets) {
			s := sets[k]
			if s.Input != input {
				continue
			}
			if s.WindowMonths > 0 {
				put("window_months", float64(s.WindowMonths))
			}
			if s.WindowDays > 0 {
				put("window_days", float64(s.WindowDays))
			}
		}
	}
	for _, k := range sortedKeys(c.Codes.Observations) {
		if o := c.Codes.Observations[k]; o.Input == input && o.MajorAtLeast != nil {
			put("major_at_least", *o.MajorAtLeast)
		}
	}
	for k := range ambiguous {
		delete(p, k)
	}
	return p
}

// windowParams are the mapping's time and dose rules (fhir.windows) by
// their JSON names. They decide inputs without belonging to one code set,
// so the texts of every input and rule may name them.
func (c *Config) windowParams() map[string]float64 {
	p := map[string]float64{}
	w := c.FHIR.Windows
	for k, x := range map[string]*int{
		"bleeding_major_months":       w.BleedingMajorMonths,
		"bleeding_minor_months":       w.BleedingMinorMonths,
		"long_term_min_days_per_week": w.LongTermMinDaysPerWeek,
		"long_term_min_days":          w.LongTermMinDays,
		"recent_days":                 w.RecentDays,
	} {
		if x != nil {
			p[k] = float64(*x)
		}
	}
	if w.RivaroxabanVascularMg != nil {
		p["rivaroxaban_vascular_mg"] = *w.RivaroxabanVascularMg
	}
	return p
}

// ruleParams are a rule's numbers and those deciding its input
// (inputParams).
func (c *Config) ruleParams(r Rule) map[string]float64 {
	p := c.inputParams(r.Input)
	if r.Threshold != nil {
		p["threshold"] = *r.Threshold
	}
	if r.Min != nil {
		p["min"] = *r.Min
	}
	if r.Max != nil {
		p["max"] = *r.Max
		p["max_minus_one"] = *r.Max - 1
	}
	for s, x := range r.MaxBySex {
		p["max_"+s] = x
	}
	return p
}

// bandParams are a band's bounds: from, and the next band's from (the
// band's exclusive upper bound) and that minus one (its last integer).
func bandParams(bands []Band, i int) map[string]float64 {
	p := map[string]float64{}
	if f := bands[i].From; f != nil {
		p["from"] = *f
	}
	if i+1 < len(bands) && bands[i+1].From != nil {
		p["next_from"] = *bands[i+1].From
		p["next_from_minus_one"] = *bands[i+1].From - 1
	}
	return p
}

// recParams gives a recommendation the lowest bound (from) of the bands it
// applies to, when it applies to the bands of exactly one calculator and
// not to its lowest band.
func (c *Config) recParams(r Recommendation) map[string]float64 {
	p := map[string]float64{}
	banded, lo, open := 0, math.Inf(1), false
	for _, a := range r.AppliesTo {
		cd, ok := c.Calculator(a.Calculator)
		if !ok || len(cd.bandList()) == 0 {
			continue
		}
		banded++
		for _, b := range cd.bandList() {
			if !contains(a.Categories, b.Category) {
				continue
			}
			if b.From == nil {
				open = true
			} else {
				lo = math.Min(lo, *b.From)
			}
		}
	}
	if banded == 1 && !open && !math.IsInf(lo, 1) {
		p["from"] = lo
	}
	return p
}

// bandList returns a calculator's bands, wherever its kind keeps them.
func (cd *CalculatorDef) bandList() []Band {
	if cd.Points != nil {
		return cd.Points.Bands
	}
	return cd.Bands
}

// validateTexts checks that text keys are unique and that every placeholder
// names a parameter of its text.
func (c *Config) validateTexts(v *validator) {
	seen := map[string]string{}
	for _, t := range c.textRefs() {
		if prev, dup := seen[t.Key]; dup {
			v.fail(t.path, "its translation key %q is also that of %s: ids must differ", t.Key, prev)
		}
		seen[t.Key] = t.path
		for _, m := range placeholderRE.FindAllStringSubmatch(t.Template, -1) {
			if _, ok := t.Params[m[1]]; !ok {
				names := sortedKeys(t.Params)
				if len(names) == 0 {
					names = []string{"none"}
				}
				v.fail(t.path, "{%s} names no number of this item (it may name: %s)", m[1], strings.Join(names, ", "))
			}
		}
	}
}

// fillText replaces the placeholders of s with their numbers.
func fillText(s string, params map[string]float64) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		if x, ok := params[m[1:len(m)-1]]; ok {
			return formatNumber(x)
		}
		return m
	})
}

// formatNumber writes x as the UI's String(x) does: shortest form, no
// exponent for the magnitudes texts hold.
func formatNumber(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// fillTexts keeps the texts' templates and parameters, fills the texts in
// place and writes each band's Risk. It runs on a validated Config.
func (c *Config) fillTexts() {
	refs := c.textRefs()
	c.texts = make([]ConfigText, len(refs))
	for i, r := range refs {
		c.texts[i] = r.ConfigText
		r.set(fillText(r.Template, r.Params))
	}
	for i := range c.Calculators {
		cd := &c.Calculators[i]
		bands, outcome := cd.Bands, cd.BandsRiskOutcome
		if cd.Points != nil {
			bands, outcome = cd.Points.Bands, cd.Points.BandsRiskOutcome
		}
		for j := range bands {
			b := &bands[j]
			b.Risk = b.Note
			if b.RiskPercent != nil {
				b.Risk = riskText(*b.RiskPercent, outcome)
			}
		}
	}
}

// riskText writes a risk range out in English, as the UI's English strings
// risk.below, risk.between and risk.at-least do.
func riskText(r PercentRange, outcome string) string {
	switch {
	case r.Min != nil && r.Max != nil:
		return formatNumber(*r.Min) + "% to <" + formatNumber(*r.Max) + "% " + outcome
	case r.Max != nil:
		return "<" + formatNumber(*r.Max) + "% " + outcome
	case r.Min != nil:
		return "≥" + formatNumber(*r.Min) + "% " + outcome
	}
	return ""
}
