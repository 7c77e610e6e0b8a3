package fhir

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// errDate is the cause of every ParseDate failure.
var errDate = errors.New("not a FHIR date or dateTime")

// ParseDate parses a FHIR date, dateTime or instant: YYYY, YYYY-MM,
// YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss[.fraction] with Z or ±hh:mm. A partial
// date gives the first instant of the year, month or day, in UTC (a FHIR date
// carries no zone). A dateTime without a zone, which FHIR forbids but some
// servers send, is read as UTC rather than refused.
func ParseDate(s string) (time.Time, error) {
	t, _, err := ParseDateSpan(s)
	return t, err
}

// ParseDateSpan is ParseDate that also returns the exclusive end of the span a
// partial date covers: "2024" spans [2024-01-01, 2025-01-01), "2024-02" the
// month, "2024-02-29" the day. For a full dateTime, end equals start. Time
// windows ("within 6 months") use it to tell "surely inside" from "maybe".
func ParseDateSpan(s string) (start, end time.Time, err error) {
	var layout string
	var next func(time.Time) time.Time
	switch {
	case len(s) == 4:
		layout, next = "2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	case len(s) == 7:
		layout, next = "2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	case len(s) == 10:
		layout, next = "2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	case len(s) > 10 && s[10] == 'T':
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, t, nil
		}
		if !strings.ContainsAny(s[10:], "Z+-") {
			if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
				return t, t, nil
			}
		}
		return time.Time{}, time.Time{}, fmt.Errorf("fhir: %q: %w", s, errDate)
	default:
		return time.Time{}, time.Time{}, fmt.Errorf("fhir: %q: %w", s, errDate)
	}
	t, err := time.Parse(layout, s)
	if err != nil || t.Year() == 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("fhir: %q: %w", s, errDate)
	}
	return t, next(t), nil
}

// parseOK is ParseDate for the helper methods: absent or unparseable is
// "not known".
func parseOK(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := ParseDate(s)
	return t, err == nil
}
