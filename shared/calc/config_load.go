package calc

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/smartcalc-app/smartcalc/shared/strictjson"
)

// LoadConfig parses and validates the configuration embedded in the binary.
// Call it once at start-up and stop on error. Raw serves the embedded bytes
// themselves: they are read-only, so no copy is kept on the heap.
func LoadConfig() (*Config, error) { return parseConfig(embeddedConfig, false) }

// ParseConfig parses and validates a scoring configuration. Every missing or
// invalid field is reported as a *ConfigError naming it (joined with
// errors.Join); the configuration is never completed with defaults.
func ParseConfig(b []byte) (*Config, error) { return parseConfig(b, true) }

// parseConfig is ParseConfig; own says whether the Config needs a copy of b
// (the caller may change b later). The Config's strings share b's memory,
// or the copy's, which Raw serves.
func parseConfig(b []byte, own bool) (*Config, error) {
	if own {
		b = append([]byte(nil), b...)
	}
	var c Config
	if err := strictjson.UnmarshalShared(b, &c); err != nil {
		return nil, &ConfigError{Path: "(document)", Reason: err.Error()}
	}
	// The texts' parameters and the texts themselves are worked out once,
	// for validation and then for filling.
	c.inputParamIdx = c.indexInputParams()
	refs := c.textRefs()
	if err := c.validate(refs); err != nil {
		return nil, err
	}
	c.fillTexts(refs)
	c.raw = b
	// The entity tag hashes the whole document: only GET
	// /api/scoring-config needs it, so it is computed there, once.
	raw, version := c.raw, c.Version
	c.etag = sync.OnceValue(func() string {
		sum := sha256.Sum256(raw)
		return `"` + version + "-" + hex.EncodeToString(sum[:8]) + `"`
	})
	return &c, nil
}

// Raw returns the configuration document exactly as parsed, for serving.
// Callers must not modify it.
func (c *Config) Raw() []byte { return c.raw }

// ETag is a strong entity tag for Raw: the version plus a content hash.
func (c *Config) ETag() string { return c.etag() }

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

// Decimals is how many decimals a value of quantity q in unit (a code or
// alias; empty means canonical) is shown with.
func (c *Config) Decimals(q, unit string) int {
	qd, ok := c.Quantities[q]
	if !ok || qd.Decimals == nil {
		return 2
	}
	unit = strings.TrimSpace(unit)
	for _, u := range qd.Units {
		if (unit == u.Code || contains(u.Aliases, unit)) && u.Decimals != nil {
			return *u.Decimals
		}
	}
	return *qd.Decimals
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
