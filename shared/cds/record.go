package cds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// noServer is the FHIR base used when the request names none: requests to
// it are answered from the prefetch or not at all.
const noServer = "https://prefetch.invalid"

// source says where one resource type's records came from.
type source struct {
	typ, key  string
	prefetch  bool        // answered from the prefetch
	fetched   bool        // read from fhirServer
	skipped   message.Msg // why it was neither, or zero
	outcome   bool        // the prefetch value was the client's OperationOutcome
	nullValue bool        // the prefetch value was null
}

// readRecord builds the patient's record the way the app reads it: the
// plan of fhir.Query, each request answered from the prefetch when its key
// is there and otherwise sent to fhirServer with the fhirAuthorization
// token, all through fhir.Client.FetchRecord, so decoding, paging, patient
// checks and errors are the app's. ctx bounds the network reads, which hc sends.
func (s *Service) readRecord(ctx context.Context, k *call, now time.Time, hc *http.Client) (*fhir.Record, []source) {
	q := s.query(k.ctx.PatientID, now)
	plan := q.Plan()
	base := noServer
	if k.fhir != nil {
		base = k.fhir.String()
	}
	bu, _ := url.Parse(base)
	pt := &prefetchTransport{basePath: strings.TrimRight(bu.Path, "/"), plan: map[string]fhir.Request{}, values: map[string]json.RawMessage{}}
	var sources []source
	for _, r := range plan {
		key := prefetchKeys[r.Type]
		src := source{typ: r.Type, key: key}
		if v, ok := k.req.Prefetch[key]; ok {
			src.prefetch = true
			src.nullValue = len(bytes.TrimSpace(v)) == 0 || bytes.Equal(bytes.TrimSpace(v), []byte("null"))
			src.outcome = isOutcome(v)
			pt.plan[r.Type] = r
			pt.values[r.Type] = v
		} else {
			switch {
			case k.fhir == nil:
				src.skipped = message.New("cds.skipped", message.Args{"why": k.noFetch})
			case k.scope != "" && !assess.Allows(k.scope, r.Type, r.Interaction):
				src.skipped = message.New("cds.skipped", message.Args{"why": message.New("cds.nofetch.scope", nil)})
			default:
				src.fetched = true
			}
		}
		sources = append(sources, src)
	}
	if k.fhir != nil {
		pt.next = hc.Transport
		if pt.next == nil {
			pt.next = http.DefaultTransport
		}
	}
	q.Allowed = func(typ string, _ fhir.Interaction) bool {
		for _, src := range sources {
			if src.typ == typ {
				return src.prefetch || src.fetched
			}
		}
		return false
	}
	fc := *hc
	fc.Transport = pt
	fc.Timeout = 0 // ctx bounds every read
	client := &fhir.Client{
		Base:       base,
		HTTPClient: &fc,
		Token:      func(context.Context) (string, error) { return k.token, nil },
		MaxRetries: 1,
	}
	return client.FetchRecord(ctx, q), sources
}

// isOutcome reports whether a prefetch value is an OperationOutcome: the
// client tried and failed, and says why.
func isOutcome(v json.RawMessage) bool {
	var h struct {
		ResourceType string `json:"resourceType"`
	}
	return json.Unmarshal(v, &h) == nil && h.ResourceType == "OperationOutcome"
}

// prefetchTransport answers the plan's requests from the prefetch and
// sends the others (pages of a prefetched search, keys not prefetched) to
// next, the real FHIR server. With no next, nothing leaves the process.
type prefetchTransport struct {
	basePath string
	plan     map[string]fhir.Request // by resource type: the prefetched requests
	values   map[string]json.RawMessage
	next     http.RoundTripper
}

func (t *prefetchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if typ, ok := t.match(req); ok {
		return t.answer(req, typ), nil
	}
	if t.next == nil {
		return respond(req, http.StatusBadGateway, outcome("exception", "SMART Calc was given no FHIR access to read this.")), nil
	}
	return t.next.RoundTrip(req)
}

// match reports whether req is the plan's request for a prefetched type.
func (t *prefetchTransport) match(req *http.Request) (string, bool) {
	if req.Method != http.MethodGet {
		return "", false
	}
	rel, ok := strings.CutPrefix(req.URL.Path, t.basePath+"/")
	if !ok {
		return "", false
	}
	typ, id, read := strings.Cut(rel, "/")
	r, ok := t.plan[typ]
	if !ok {
		return "", false
	}
	if read {
		return typ, r.Interaction == fhir.InteractionRead && id == r.ID && req.URL.RawQuery == ""
	}
	return typ, r.Interaction == fhir.InteractionSearch && sameParams(req.URL.Query(), r.Params)
}

func sameParams(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || !slices.Equal(av, bv) {
			return false
		}
	}
	return true
}

// answer serves a prefetch value as the FHIR server would have: null is
// an empty search result (or no Patient), an OperationOutcome keeps its
// meaning (403 for a refusal, 404 for not-found, else a server error), and
// a Patient read also accepts a Bundle holding the Patient.
func (t *prefetchTransport) answer(req *http.Request, typ string) *http.Response {
	v := bytes.TrimSpace(t.values[typ])
	read := t.plan[typ].Interaction == fhir.InteractionRead
	switch {
	case len(v) == 0 || bytes.Equal(v, []byte("null")):
		if read {
			return respond(req, http.StatusNotFound, outcome("not-found", "The EHR has no data for this prefetch key (null)."))
		}
		return respond(req, http.StatusOK, []byte(`{"resourceType":"Bundle","type":"searchset","total":0}`))
	case isOutcome(v):
		var o fhir.OperationOutcome
		_ = json.Unmarshal(v, &o)
		status := http.StatusInternalServerError
		for _, is := range o.Issue {
			switch is.Code {
			case "forbidden", "security", "suppressed":
				status = http.StatusForbidden
			case "not-found":
				status = http.StatusNotFound
			}
		}
		return respond(req, status, v)
	case read:
		if p, ok := patientInBundle(v, t.plan[typ].ID); ok {
			return respond(req, http.StatusOK, p)
		}
	}
	return respond(req, http.StatusOK, v)
}

// patientInBundle returns the Patient id from a Bundle, for clients that
// answer a read template with a searchset.
func patientInBundle(v []byte, id string) ([]byte, bool) {
	res, err := fhir.ParseBundle(v)
	if err != nil {
		return nil, false
	}
	for _, e := range res.Entries {
		if e.ResourceType == "Patient" && e.ID == id {
			return e.Resource, true
		}
	}
	return nil, false
}

func respond(req *http.Request, status int, body []byte) *http.Response {
	return &http.Response{
		Status:        http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/fhir+json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

func outcome(code, text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []map[string]string{{"severity": "error", "code": code, "diagnostics": text}},
	})
	return b
}

// timedOut reports whether a type's read was cut short by the budget.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
