package assess

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Assessment is GET and POST /api/assessment: every calculator on one fetch
// of the patient's record, with what could not be read.
type Assessment struct {
	// Summary is the one bleeding-risk answer the page, the print and the
	// CDS cards give: built by calc.Config.Summarize from Results.
	Summary    calc.Summary            `json:"summary"`
	AssessedAt time.Time               `json:"assessed_at"`
	Patient    *Patient                `json:"patient"`
	Results    map[string]*calc.Result `json:"results"`
	// Warnings are every problem to check, once per problem and input
	// whichever calculators found it (each names its calculators), in
	// groups: what could not be read, values not used as given, stale
	// results, notes on the record, the risk curve. The results' own
	// lists are empty: their warnings are here.
	Warnings        []calc.Warning   `json:"warnings"`
	DataErrors      []DataError      `json:"data_errors"`
	Recommendations []Recommendation `json:"recommendations"`
	ConfigVersion   string           `json:"config_version"`
	// NeedsConfirmation names the inputs the record holds but the
	// clinician must confirm; Gaps says why each unset input is unset.
	NeedsConfirmation []string      `json:"needs_confirmation"`
	Gaps              []mapping.Gap `json:"gaps"`
	// DAPT and OAC are the medication findings the CDS Hooks services use.
	DAPT mapping.DAPT              `json:"dapt"`
	OAC  mapping.MedicationFinding `json:"oral_anticoagulant"`
	// FHIRRequests counts the HTTP requests this assessment sent to the EHR.
	FHIRRequests int `json:"fhir_requests"`
	// Language is the language its sentences are written in (the API
	// follows Accept-Language).
	Language string `json:"language,omitempty"`
}

// Recommendation is guidance shown because a result's category calls for
// it. Source is the citation, as the publication gives it.
type Recommendation struct {
	ID     string      `json:"id"`
	Title  message.Msg `json:"title"`
	Text   message.Msg `json:"text"`
	Source string      `json:"source"`
	// Verified is the configuration's mark: whether the recommendation
	// was checked against its source. The page, the print view and the
	// cards say it beside the recommendation.
	Verified bool `json:"verified"`
}

// Assess fetches the session patient's record once (every search
// concurrent, one round trip deep), maps it to inputs, overlays the
// clinician's entered values and runs every calculator.
func (s *Service) Assess(ctx context.Context, ss *Session, overrides calc.Inputs) (*Assessment, error) {
	now := s.now()
	st := ss.Store()
	fetchCtx, cancel := context.WithTimeout(ctx, s.assessTimeout())
	defer cancel()
	var requests atomic.Int64
	client := ss.FHIR()
	hc := *client.HTTPClient
	hc.Transport = countRequests{&requests, hc.Transport}
	client.HTTPClient = &hc
	rec := client.FetchRecord(fetchCtx, s.query(st, now))
	mapCtx, cancelMap := context.WithTimeout(ctx, DefaultMapTimeout)
	defer cancelMap()
	a, err := s.Evaluate(mapCtx, rec, overrides, now)
	if err != nil {
		return nil, err
	}
	for _, de := range a.DataErrors {
		if de.Kind == KindUnauthorized {
			return nil, de.sessionError()
		}
	}
	a.FHIRRequests = int(requests.Load())
	return a, nil
}

// DefaultMapTimeout bounds the mapping of a record once it is fetched, so an
// assessment answers within AssessTimeout + DefaultMapTimeout (30 s by
// default), well under the platform's 60 s, whatever the record's size.
const DefaultMapTimeout = 5 * time.Second

type countRequests struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (c countRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	next := c.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}
