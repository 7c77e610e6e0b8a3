package cds

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Response is a hook's answer.
type Response struct {
	Cards []Card `json:"cards"`
}

// reserve is the part of the budget kept for mapping, scoring and writing
// the answer after the FHIR reads are cut off: a tenth, between 20 ms and
// 200 ms.
func reserve(budget time.Duration) time.Duration {
	return min(max(budget/10, 20*time.Millisecond), 200*time.Millisecond)
}

// answer computes the cards of an authenticated, parsed call. ctx carries
// the budget's deadline; the FHIR reads stop a reserve earlier.
func (s *Service) answer(ctx context.Context, k *call, start time.Time) (Response, *hookStats) {
	now := s.now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(s.budget())
	}
	fetchCtx, cancel := context.WithDeadline(ctx, deadline.Add(-reserve(s.budget())))
	defer cancel()

	var requests atomic.Int64
	rec, sources := s.readRecord(fetchCtx, k, now, s.countingHTTPClient(&requests))
	timed := map[string]bool{}
	for typ, err := range rec.Errors {
		if timedOut(err) {
			timed[typ] = true
		}
	}
	st := stats(sources, timed, int(requests.Load()))

	// The mapping stops a little before the budget's end, keeping time to
	// score and write the answer: what it has not examined by then is
	// reported as not checked.
	mapCtx, cancelMap := context.WithDeadline(ctx, deadline.Add(-reserve(s.budget())/4))
	defer cancelMap()
	if s.beforeMap != nil {
		s.beforeMap(mapCtx, deadline)
	}
	a, err := s.Assess.Evaluate(mapCtx, rec, nil, now)
	if err != nil {
		// The engine refused the inputs: a configuration fault, not the
		// patient's. Say so rather than guess.
		if k.req.Hook == HookPatientView {
			return Response{Cards: []Card{s.failureCard()}}, st
		}
		return Response{Cards: []Card{}}, st
	}
	unmapped := map[string]bool{}
	for _, de := range a.DataErrors {
		if de.NotChecked() {
			unmapped[de.Resource] = true
		}
	}
	st.unmapped = slices.Sorted(maps.Keys(unmapped))
	notes := s.notChecked(sources, rec, a, timed, unmapped)
	v := s.view(a, notes, len(sources))
	switch k.req.Hook {
	case HookPatientView:
		return Response{Cards: []Card{s.patientCard(v)}}, st
	default:
		d := s.draftFindings(k, a)
		if c, ok := s.orderCard(v, d); ok {
			return Response{Cards: []Card{c}}, st
		}
		return Response{Cards: []Card{}}, st
	}
}

// countingHTTPClient is the service's HTTP client with a transport that
// counts the requests that leave for the EHR (for the log line).
func (s *Service) countingHTTPClient(n *atomic.Int64) *http.Client {
	hc := *s.httpClient()
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return next.RoundTrip(r)
	})
	return &hc
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// note is one part of the record that was not checked, and why.
type note struct {
	Resource string      // FHIR type
	Reason   message.Msg // for a person
	Inputs   []string    // the inputs left unset because of it
}

// notChecked lists the resource types the assessment could not use, with
// the reason a clinician can act on.
func (s *Service) notChecked(sources []source, rec *fhir.Record, a *assess.Assessment, timed, unmapped map[string]bool) []note {
	inputs := map[string][]string{}
	for _, de := range a.DataErrors {
		inputs[de.Resource] = append(inputs[de.Resource], de.Inputs...)
	}
	var out []note
	for _, src := range sources {
		n := note{Resource: src.typ, Inputs: inputs[src.typ]}
		err := rec.Errors[src.typ]
		reason := func(key string, args message.Args) message.Msg { return message.New("cds.reason."+key, args) }
		switch {
		case !src.skipped.IsZero():
			n.Reason = src.skipped
		case timed[src.typ]:
			n.Reason = reason("budget", message.Args{"budget": s.budget().String()})
		case unmapped[src.typ]:
			n.Reason = reason("unmapped", message.Args{"budget": s.budget().String()})
		case err == nil:
			continue
		case src.outcome:
			n.Reason = reason("prefetch", nil)
			var fe *fhir.Error
			if errors.As(err, &fe) && fe.Outcome != nil {
				if t := fe.Outcome.Text(); t != "" {
					n.Reason = reason("prefetch.said", message.Args{"text": t})
				}
			}
		case errors.Is(err, fhir.ErrScope):
			n.Reason = reason("scope", nil)
		case errors.Is(err, fhir.ErrForbidden):
			n.Reason = reason("forbidden", nil)
		case errors.Is(err, fhir.ErrUnauthorized):
			n.Reason = reason("unauthorized", nil)
		case errors.Is(err, fhir.ErrNotFound) && src.typ == "Patient":
			n.Reason = reason("no-patient", nil)
		case errors.Is(err, fhir.ErrUnavailable):
			n.Reason = reason("unavailable", nil)
		default:
			n.Reason = reason("unusable", nil)
		}
		out = append(out, n)
	}
	return out
}
