package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// DecodeList decodes a JSON array of objects from a configuration variable
// (EHR registrations, CDS clients) strictly: unknown fields and trailing data
// are errors, so a misspelt field never silently falls back to a default.
// An error names the entry by index and, when it has one, by id; callers
// prefix it with their package and what the list holds.
func DecodeList[T any](data []byte) ([]T, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raws []json.RawMessage
	if err := dec.Decode(&raws); err != nil {
		return nil, fmt.Errorf("want a JSON array of objects: %w", err)
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON array")
	}
	out := make([]T, 0, len(raws))
	for i, raw := range raws {
		var v T
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("entry %d%s: %w", i, idHint(raw), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// idHint names an entry that failed to decode by its id, when it has one.
func idHint(raw json.RawMessage) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &v) == nil && v.ID != "" {
		return fmt.Sprintf(" (%q)", v.ID)
	}
	return ""
}
