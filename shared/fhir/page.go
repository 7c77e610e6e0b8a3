package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// entrySink receives one search's entries as they are decoded. A page's
// entries are staged while the page streams in, then kept (commit) once the
// page has been read to its end or cut at the entry cap, or dropped with
// the page (drop) when it fails: a page is used whole or not at all, but it
// is never held as bytes.
type entrySink interface {
	stage(Entry)
	commit()
	drop()
}

// pageInfo is what decodePage learned of one page besides its entries.
type pageInfo struct {
	next     string
	outcomes []OperationOutcome
	entries  int  // match and include entries staged
	full     bool // stopped at room: the page had more entries
}

// decodePage decodes one searchset Bundle from r token by token, handing
// each match or include entry to stage as soon as it is decoded, so only
// one entry at a time is held as JSON. It stages at most room entries; one
// more and it stops reading (full). OperationOutcome entries (search mode
// "outcome") are returned, not staged. ctx is checked between entries, so a
// deadline stops the decoding too, not only the network read.
//
// Errors: the reader's own (the caps, the network), ctx's, an *Error for a
// 200 whose body is an OperationOutcome, or a decoding error.
func decodePage(ctx context.Context, r io.Reader, room int, stage func(Entry)) (pageInfo, error) {
	p, err := decodeBundle(ctx, r, room, stage)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the stream ended inside the Bundle
	}
	return p, err
}

func decodeBundle(ctx context.Context, r io.Reader, room int, stage func(Entry)) (pageInfo, error) {
	var p pageInfo
	dec := json.NewDecoder(r)
	if err := delim(dec, '{'); err != nil {
		return p, err
	}
	var (
		rt     string
		seenRT bool
		links  []BundleLink
		issues []OperationOutcomeIssue
		early  []BundleEntry // entries before resourceType: rare, kept until it is known
	)
	take := func(be BundleEntry) (stop bool, err error) {
		e, outcome, ok, err := entryOf(be)
		switch {
		case err != nil:
			return true, err
		case !ok:
			return false, nil
		case outcome != nil:
			p.outcomes = append(p.outcomes, *outcome)
			return false, nil
		case p.entries == room:
			p.full = true
			return true, nil
		}
		p.entries++
		stage(e)
		return false, nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return p, err
		}
		switch key, _ := tok.(string); key {
		case "resourceType":
			if err := dec.Decode(&rt); err != nil {
				return p, err
			}
			seenRT = true
		case "link":
			if err := dec.Decode(&links); err != nil {
				return p, err
			}
		case "issue":
			if err := dec.Decode(&issues); err != nil {
				return p, err
			}
		case "entry":
			if seenRT && rt != "Bundle" {
				if err := skip(dec); err != nil {
					return p, err
				}
				continue
			}
			if err := delim(dec, '['); err != nil {
				return p, err
			}
			for dec.More() {
				if err := ctx.Err(); err != nil {
					return p, err
				}
				var be BundleEntry
				if err := dec.Decode(&be); err != nil {
					return p, err
				}
				if !seenRT {
					early = append(early, be)
					continue
				}
				if stop, err := take(be); stop || err != nil {
					return p, err
				}
			}
			if err := delim(dec, ']'); err != nil {
				return p, err
			}
		default:
			if err := skip(dec); err != nil {
				return p, err
			}
		}
	}
	if err := delim(dec, '}'); err != nil {
		return p, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("malformed JSON: data after the Bundle")
		}
		return p, err
	}
	switch rt {
	case "Bundle":
	case "OperationOutcome":
		return p, outcomeError("", "", &OperationOutcome{ResourceType: rt, Issue: issues})
	default:
		return p, fmt.Errorf("expected a Bundle, got resourceType %q", rt)
	}
	for _, be := range early {
		if stop, err := take(be); stop || err != nil {
			return p, err
		}
	}
	for _, l := range links {
		if l.Relation == "next" {
			p.next = l.URL
			break
		}
	}
	return p, nil
}

// entryOf sorts one Bundle entry: ok is false for an entry without a
// resource; outcome is set for an OperationOutcome entry.
func entryOf(be BundleEntry) (e Entry, outcome *OperationOutcome, ok bool, err error) {
	if len(be.Resource) == 0 || bytes.Equal(be.Resource, []byte("null")) {
		return Entry{}, nil, false, nil
	}
	var h resourceHeader
	if err := json.Unmarshal(be.Resource, &h); err != nil {
		return Entry{}, nil, false, fmt.Errorf("bundle entry: %w", jsonError(err))
	}
	mode := ""
	if be.Search != nil {
		mode = be.Search.Mode
	}
	if h.ResourceType == "OperationOutcome" || mode == "outcome" {
		o := new(OperationOutcome)
		if err := json.Unmarshal(be.Resource, o); err != nil {
			return Entry{}, nil, false, fmt.Errorf("bundle entry: %w", jsonError(err))
		}
		return Entry{}, o, true, nil
	}
	return Entry{ResourceType: h.ResourceType, ID: h.ID, FullURL: be.FullURL, Mode: mode, Resource: be.Resource}, nil, true, nil
}

// delim reads the next token and requires it to be d.
func delim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		want := reflect.TypeFor[map[string]any]()
		if d == '[' || d == ']' {
			want = reflect.TypeFor[[]any]()
		}
		return &json.UnmarshalTypeError{Value: tokenKind(tok), Type: want, Offset: dec.InputOffset()}
	}
	return nil
}

func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "delimiter " + fmt.Sprint(tok)
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

// skip consumes one value of any kind without keeping it.
func skip(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// rawSink keeps entries as they are (Search's result).
type rawSink struct {
	res    *SearchResult
	staged []Entry
}

func (s *rawSink) stage(e Entry) { s.staged = append(s.staged, e) }
func (s *rawSink) commit() {
	s.res.Entries = append(s.res.Entries, s.staged...)
	s.staged = nil
}
func (s *rawSink) drop() { s.staged = nil }
